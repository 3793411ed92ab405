#!/usr/bin/env python3
"""Reference values for the Go package analysis/stats, computed with SciPy.

Re-run from the repository root after changing or adding a case:

    python3 analysis/stats/testdata/gen_reference.py

Use a python3 that has NumPy and SciPy (on Debian or Ubuntu:
apt-get install python3-numpy python3-scipy python3-mpmath). mpmath is
optional: with it, every value is also recomputed at 60 significant digits
and the script fails if SciPy disagrees by more than CHECK_RTOL; without it
that cross-check is skipped with a warning. The output is deterministic
(fixed NumPy seed), so re-running it must leave the JSON files unchanged
unless the cases or the SciPy version change.

It rewrites, next to this file:

  welch.json          Welch t-tests, treatment minus control. "from_stats"
                      cases go through scipy.stats.ttest_ind_from_stats;
                      "raw" cases store the per-user values and go through
                      scipy.stats.ttest_ind on the arrays.
  mean_interval.json  Student-t confidence intervals of one arm's mean.
  student_t.json      Two-sided tail probabilities and critical values of the
                      Student t distribution on a grid of degrees of freedom.

Critical values. scipy.stats.t.ppf (special.stdtrit, CDFLIB's cdft in SciPy
<= 1.11) stops its root search at a relative tolerance of 1e-8; against
mpmath it is off by up to 2e-9 for small degrees of freedom (e.g. df=2.7 or
10 at q=0.995). Each ppf value is therefore polished with Newton steps on
SciPy's own t.sf (special.stdtr, accurate to ~1e-13), which makes it agree
with mpmath to ~1e-15. p-values are SciPy's as returned.
"""

import json
import math
import os
import sys

import numpy as np
import scipy
from scipy import special, stats

try:
    import mpmath
except ImportError:  # the cross-check is optional
    mpmath = None

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 20260101
CHECK_RTOL = 1e-12
CHECK_ATOL = 1e-300


def critical(level, df):
    """Returns c with P(|T_df| >= c) = 1 - level: t.ppf(1 - (1-level)/2, df), polished."""
    alpha = 1.0 - level
    c = float(stats.t.ppf(1.0 - alpha / 2.0, df))
    for _ in range(4):
        c += (float(special.stdtr(df, -c)) - alpha / 2.0) / float(stats.t.pdf(c, df))
    return c


def welch_dof_se(nc, vc, nt, vt):
    """Welch-Satterthwaite dof and standard error, as in SciPy's _unequal_var_ttest_denom."""
    a = vc / nc
    b = vt / nt
    dof = (a + b) ** 2 / (a**2 / (nc - 1) + b**2 / (nt - 1))
    return float(dof), float(np.sqrt(a + b))


def arm(n, mean, sd):
    return {"n": int(n), "mean": float(mean), "variance": float(sd) * float(sd)}


# name, control (n, mean, sd), treatment (n, mean, sd), level
FROM_STATS = [
    # STATS.md continuous example: dof 1017.4, diff 0.6, CI (0.219, 0.981), p 0.00205.
    ("stats_md_continuous_level95", (500, 10, 3), (520, 10.6, 3.2), 0.95),
    ("stats_md_continuous_level80", (500, 10, 3), (520, 10.6, 3.2), 0.80),
    ("stats_md_continuous_level90", (500, 10, 3), (520, 10.6, 3.2), 0.90),
    ("stats_md_continuous_level99", (500, 10, 3), (520, 10.6, 3.2), 0.99),
    ("tiny_n2_vs_n2", (2, 1.0, 0.5), (2, 2.5, 1.5), 0.95),
    ("tiny_n2_vs_n3_level90", (2, 3.1, 2.2), (3, 0.4, 0.7), 0.90),
    ("tiny_n3_vs_n3_level99", (3, 10, 1), (3, 14, 2), 0.99),
    ("unequal_n_2_vs_100000", (2, 5, 1), (100000, 5.3, 1), 0.95),
    ("unequal_var_noisy_small_control", (50, 100, 80), (5000, 110, 2), 0.95),
    ("unequal_n_and_var_level90", (10000, 0.5, 0.1), (20, 0.7, 5), 0.90),
    ("large_n_1e6", (10**6, 10, 3), (10**6, 10.01, 3.1), 0.95),
    ("large_n_1e6_level999", (10**6, 10, 3), (10**6, 10.01, 3.1), 0.999),
    ("large_n_1e8_binary_rates", (10**8, 0.1, math.sqrt(0.1 * 0.9)),
     (10**8, 0.10006, math.sqrt(0.10006 * 0.89994)), 0.95),
    ("tiny_p_t10", (1000, 0, 1), (1000, 0.45, 1), 0.95),
    ("tiny_p_t20", (2000, 50, 10), (2000, 56.4, 10.5), 0.95),
    ("tiny_p_t30_below_1e100", (5000, 1, 2), (4000, 2.3, 2.1), 0.95),
    ("tiny_p_t47_small_dof", (5, 0, 0.01), (5, 0.3, 0.01), 0.95),
    ("tiny_p_t35_below_1e250", (10**6, 0, 1), (10**6, 0.05, 1), 0.95),
    ("tiny_p_t37_near_1e-300", (10**8, 0, 1), (10**8, 0.0052, 1), 0.95),
    ("equal_means_p_1", (100, 3, 1), (120, 3, 2), 0.95),
    ("near_equal_means_t_1e-8", (400, 0, 2), (400, 1.5e-9, 2), 0.95),
    ("near_equal_means_small_dof", (3, 0, 1), (4, 2e-8, 1), 0.95),
    ("near_equal_means_large_n", (10**7, 0, 1), (10**7, 3e-12, 1), 0.95),
    ("negative_diff", (800, 20, 5), (750, 19.4, 6), 0.95),
    ("control_zero_variance_dof_99", (100, 1, 0), (100, 1.2, 0.5), 0.95),
    ("control_zero_variance_dof_149", (100, 1, 0), (150, 1.2, 0.5), 0.95),
    ("dof_exactly_100", (51, 0, 1), (51, 0.5, 1), 0.95),
    ("dof_just_above_100", (52, 0, 1), (52, 0.5, 1), 0.95),
    ("binary_stats_md_100_of_1000_vs_130_of_1000", (1000, 0.1, math.sqrt(0.1 * 0.9 * 1000 / 999)),
     (1000, 0.13, math.sqrt(0.13 * 0.87 * 1000 / 999)), 0.95),
    ("binary_1e6_5pct_vs_5_05pct", (10**6, 0.05, math.sqrt(0.05 * 0.95 * 1e6 / (1e6 - 1))),
     (10**6, 0.0505, math.sqrt(0.0505 * 0.9495 * 1e6 / (1e6 - 1))), 0.90),
    ("large_values", (1000, 1e9, 1e6), (1000, 1.0001e9, 1.1e6), 0.95),
]


def raw_cases():
    rng = np.random.default_rng(SEED)
    r6 = lambda a: np.round(a, 6)
    return [
        ("raw_normal_n20_vs_n25", r6(rng.normal(10, 2, 20)), r6(rng.normal(11, 2.5, 25)), 0.95),
        ("raw_lognormal_revenue", np.round(rng.lognormal(1, 1, 300), 2),
         np.round(rng.lognormal(1.1, 1, 280), 2), 0.95),
        ("raw_binary_conversions", rng.binomial(1, 0.10, 2000).astype(float),
         rng.binomial(1, 0.12, 2000).astype(float), 0.95),
        ("raw_binary_sparse_level99", rng.binomial(1, 0.02, 500).astype(float),
         rng.binomial(1, 0.04, 500).astype(float), 0.99),
        ("raw_tiny_n2_vs_n3_level90", r6(rng.normal(0, 1, 2)), r6(rng.normal(1, 1, 3)), 0.90),
        ("raw_poisson_counts_level80", rng.poisson(3, 150).astype(float),
         rng.poisson(3.4, 160).astype(float), 0.80),
    ]


def welch_reference():
    cases = []
    for name, c, t, level in FROM_STATS:
        control, treatment = arm(*c), arm(*t)
        # SciPy's t is mean1 - mean2, so treatment goes first. Passing sd
        # makes SciPy square exactly the doubles whose squares we store.
        tstat, p = stats.ttest_ind_from_stats(
            t[1], t[2], t[0], c[1], c[2], c[0], equal_var=False)
        cases.append(finish_welch(name, "from_stats", control, treatment, level, tstat, p))
    for name, xc, xt, level in raw_cases():
        control = {"n": len(xc), "mean": float(np.mean(xc)), "variance": float(np.var(xc, ddof=1))}
        treatment = {"n": len(xt), "mean": float(np.mean(xt)), "variance": float(np.var(xt, ddof=1))}
        tstat, p = stats.ttest_ind(xt, xc, equal_var=False)
        case = finish_welch(name, "raw", control, treatment, level, tstat, p)
        case["control_values"] = [float(x) for x in xc]
        case["treatment_values"] = [float(x) for x in xt]
        cases.append(case)
    return cases


def finish_welch(name, source, control, treatment, level, tstat, p):
    dof, se = welch_dof_se(control["n"], control["variance"], treatment["n"], treatment["variance"])
    diff = treatment["mean"] - control["mean"]
    if not math.isclose(float(tstat), diff / se, rel_tol=1e-13, abs_tol=1e-300):
        sys.exit(f"{name}: SciPy t {tstat!r} != diff/se {diff / se!r}")
    h = critical(level, dof) * se
    return {
        "name": name, "source": source, "level": level,
        "control": control, "treatment": treatment,
        "diff": diff, "std_err": se, "t": float(tstat), "dof": dof, "p_value": float(p),
        "ci_lower": diff - h, "ci_upper": diff + h,
    }


def mean_interval_reference(welch_cases):
    seen = set()
    cases = []

    def add(name, s, level):
        key = (s["n"], s["mean"], s["variance"], level)
        if key in seen:
            return
        seen.add(key)
        se = math.sqrt(s["variance"] / s["n"])
        h = critical(level, s["n"] - 1) * se
        lo, hi = s["mean"] - h, s["mean"] + h
        # Sanity check against SciPy's own interval (ppf is only good to ~1e-8).
        slo, shi = stats.t.interval(level, s["n"] - 1, loc=s["mean"], scale=se) if se > 0 else (lo, hi)
        for got, want in ((lo, slo), (hi, shi)):
            if not math.isclose(got, want, rel_tol=1e-7, abs_tol=1e-12):
                sys.exit(f"{name}: polished interval {got!r} far from t.interval {want!r}")
        cases.append({"name": name, "level": level, "sample": s, "lower": lo, "upper": hi})

    for c in welch_cases:
        add(c["name"] + "/control", c["control"], c["level"])
        add(c["name"] + "/treatment", c["treatment"], c["level"])
    add("n2_level99", arm(2, 4.2, 1.3), 0.99)
    add("n2_level80", arm(2, -4.2, 1.3), 0.80)
    add("zero_variance", arm(40, 2.5, 0), 0.95)
    add("n1e8_level95", arm(10**8, 0.3, 0.5), 0.95)
    add("n101_level90", arm(101, 12, 3), 0.90)
    return cases


DOFS = [1, 1.5, 2.7, 10, 29.9, 99.99, 100, 100.5, 1017.4, 1e4, 1e6, 2e8, 1e12]
TS = [1e-9, 0.01, 0.5, 0.999, 1, 1.5, 1.96, 3, 10, 30, 37, 1e3]
ALPHAS = [0.5, 0.2, 0.1, 0.05, 0.01, 0.001]


def student_t_reference():
    tails = []
    for df in DOFS:
        for t in TS:
            tails.append({"dof": df, "t": t, "two_tail": 2 * float(special.stdtr(df, -t))})
    crits = []
    for df in DOFS:
        for alpha in ALPHAS:
            crits.append({"dof": df, "alpha": alpha, "critical": critical(1 - alpha, df)})
    return {"two_tail": tails, "critical": crits}


class Checker:
    """Recomputes values with mpmath and records SciPy's worst relative disagreement."""

    def __init__(self):
        self.worst = (0.0, "")
        if mpmath is not None:
            mpmath.mp.dps = 60

    def two_tail(self, df, t):
        df, t = mpmath.mpf(df), abs(mpmath.mpf(t))
        if t == 0:
            return mpmath.mpf(1)
        half = mpmath.mpf(1) / 2
        if t < 1:  # the complement is below 0.7: no cancellation
            return 1 - mpmath.betainc(half, df / 2, 0, t * t / (df + t * t), regularized=True)
        return mpmath.betainc(df / 2, half, 0, df / (df + t * t), regularized=True)

    def underflow(self, what, df, t):
        """Checks that a tail SciPy reports as 0 is below the smallest double.

        mpmath's hypergeometric series does not converge there, so this uses the
        bound P(T > t) <= f(t)·(df + t²)/((df - 1)·t), valid for df > 1.
        """
        df, t = mpmath.mpf(df), mpmath.mpf(t)
        logpdf = (mpmath.loggamma((df + 1) / 2) - mpmath.loggamma(df / 2)
                  - mpmath.log(df * mpmath.pi) / 2 - (df + 1) / 2 * mpmath.log1p(t * t / df))
        bound = 2 * mpmath.exp(logpdf) * (df + t * t) / ((df - 1) * t)
        if bound >= mpmath.mpf(2) ** -1075:
            sys.exit(f"{what}: SciPy returned 0 but the tail may be as large as {mpmath.nstr(bound, 5)}")

    def critical(self, level, df):
        alpha = 1 - mpmath.mpf(level)
        start = mpmath.mpf(critical(level, float(df)))
        return mpmath.findroot(lambda c: self.two_tail(df, c) - alpha, start)

    def check(self, what, got, want):
        want = mpmath.mpf(want)
        err = abs(mpmath.mpf(got) - want)
        rel = float(err / abs(want)) if want != 0 else float(err)
        if rel > self.worst[0]:
            self.worst = (rel, what)
        if err > CHECK_ATOL and rel > CHECK_RTOL:
            sys.exit(f"{what}: SciPy {got!r} vs mpmath {mpmath.nstr(want, 20)} (rel {rel:.2e})")

    def welch(self, c):
        mp = mpmath.mpf
        nc, nt = mp(c["control"]["n"]), mp(c["treatment"]["n"])
        a = mp(c["control"]["variance"]) / nc
        b = mp(c["treatment"]["variance"]) / nt
        se = mpmath.sqrt(a + b)
        diff = mp(c["treatment"]["mean"]) - mp(c["control"]["mean"])
        dof = (a + b) ** 2 / (a**2 / (nc - 1) + b**2 / (nt - 1))
        t = diff / se
        h = self.critical(c["level"], dof) * se
        for field, want in (("t", t), ("dof", dof), ("std_err", se), ("diff", diff),
                            ("p_value", self.two_tail(dof, t)),
                            ("ci_lower", diff - h), ("ci_upper", diff + h)):
            self.check(f"welch {c['name']} {field}", c[field], want)

    def mean_interval(self, c):
        s = c["sample"]
        se = mpmath.sqrt(mpmath.mpf(s["variance"]) / s["n"])
        h = self.critical(c["level"], s["n"] - 1) * se if se > 0 else 0
        self.check(f"mean_interval {c['name']} lower", c["lower"], s["mean"] - h)
        self.check(f"mean_interval {c['name']} upper", c["upper"], s["mean"] + h)


def write(name, **payload):
    doc = {
        "generated_by": "analysis/stats/testdata/gen_reference.py",
        "scipy_version": scipy.__version__,
        "numpy_version": np.__version__,
        "seed": SEED,
        **payload,
    }
    with open(os.path.join(HERE, name), "w") as f:
        json.dump(doc, f, indent=1, allow_nan=False)
        f.write("\n")


def main():
    welch = welch_reference()
    intervals = mean_interval_reference(welch)
    student = student_t_reference()

    if mpmath is None:
        print("warning: mpmath not installed, skipping the high-precision cross-check", file=sys.stderr)
    else:
        chk = Checker()
        for c in welch:
            chk.welch(c)
        for c in intervals:
            chk.mean_interval(c)
        for c in student["two_tail"]:
            what = f"two_tail dof={c['dof']} t={c['t']}"
            if c["two_tail"] == 0:
                chk.underflow(what, c["dof"], c["t"])
            else:
                chk.check(what, c["two_tail"], chk.two_tail(c["dof"], c["t"]))
        for c in student["critical"]:
            chk.check(f"critical dof={c['dof']} alpha={c['alpha']}", c["critical"],
                      chk.critical(1 - c["alpha"], c["dof"]))
        print(f"mpmath cross-check passed; worst relative disagreement {chk.worst[0]:.2e} ({chk.worst[1]})")

    write("welch.json", cases=welch)
    write("mean_interval.json", cases=intervals)
    write("student_t.json", **student)
    print(f"wrote {len(welch)} Welch, {len(intervals)} mean-interval, "
          f"{len(student['two_tail'])} tail and {len(student['critical'])} critical-value cases")


if __name__ == "__main__":
    main()
