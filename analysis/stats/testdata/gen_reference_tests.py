#!/usr/bin/env python3
"""Reference values for the proportion test, Fieller intervals, p-value
adjustment, the SRM check and power calculations of analysis/stats,
computed with statsmodels and SciPy.

Re-run from the repository root after changing or adding a case:

    python3 analysis/stats/testdata/gen_reference_tests.py

Needs NumPy, SciPy and statsmodels (Debian: python3-statsmodels). The output
is deterministic. It rewrites, next to this file:

  proportions.json  two-proportion z-tests, treatment minus control:
                    statsmodels test_proportions_2indep(method="wald",
                    compare="diff") for the unpooled statistic and p-value,
                    confint_proportions_2indep(method="wald") for the
                    interval, proportions_ztest for the pooled statistic.
  fieller.json      Fieller intervals of the relative lift, found as the
                    roots of (mt - R mc)^2 = c^2 (vt + R^2 vc) with brentq
                    (an independent check of the closed form in Go).
  adjust.json       statsmodels multipletests(method="holm" and "fdr_bh").
  srm.json          scipy.stats.chisquare with expected counts from weights.
  power.json        statsmodels NormalIndPower.power (continuous) and
                    normal_power_het (binary, unpooled variance) for power;
                    sample sizes and MDEs are the roots of those functions
                    found with brentq at full precision (solve_power stops
                    earlier) and are cross-checked against solve_power.
"""
import json
import math
import os

import numpy as np
import scipy
import statsmodels
from scipy import optimize, stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower, normal_power_het
from statsmodels.stats.proportion import (confint_proportions_2indep,
                                          proportions_ztest,
                                          test_proportions_2indep)

HERE = os.path.dirname(os.path.abspath(__file__))


def write(name, cases):
    out = {"generator": os.path.basename(__file__), "scipy_version": scipy.__version__,
           "statsmodels_version": statsmodels.__version__, "cases": cases}
    with open(os.path.join(HERE, name), "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")


def root(f, lo, hi):
    return float(optimize.brentq(f, lo, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=1000))


# ---- proportions: name, (successes, n) control, (successes, n) treatment, level
PROPS = [
    ("stats_md_100_of_1000_vs_130_of_1000", (100, 1000), (130, 1000), 0.95),
    ("small_3_of_5_vs_1_of_4", (3, 5), (1, 4), 0.95),
    ("small_1_of_2_vs_2_of_2", (1, 2), (2, 2), 0.90),
    ("control_all_zero", (0, 50), (5, 50), 0.95),
    ("treatment_all_zero", (7, 60), (0, 55), 0.95),
    ("control_all_one", (40, 40), (30, 40), 0.95),
    ("treatment_all_one", (18, 30), (25, 25), 0.99),
    ("equal_rates", (120, 1000), (240, 2000), 0.95),
    ("large_n_1e8", (10_000_000, 10**8), (10_006_000, 10**8), 0.95),
    ("large_n_1e9_tiny_p", (100_000_000, 10**9), (100_400_000, 10**9), 0.95),
    ("unequal_n", (50, 400), (9000, 60000), 0.80),
    ("rare_events", (3, 100000), (17, 100000), 0.95),
]
cases = []
for name, (sc, nc), (st, nt), level in PROPS:
    # NumPy scalars: statsmodels divides by 1 - p (odds ratio, unused here),
    # which must give inf rather than raise for all-1 arms.
    with np.errstate(divide="ignore", invalid="ignore"):
        wald = test_proportions_2indep(np.float64(st), nt, np.float64(sc), nc, method="wald",
                                       compare="diff", return_results=True)
    lo, hi = confint_proportions_2indep(st, nt, sc, nc, method="wald", compare="diff", alpha=1 - level)
    zp, pp = proportions_ztest([st, sc], [nt, nc])
    pc, pt = sc / nc, st / nt
    cases.append({"name": name, "level": level, "control": {"n": nc, "successes": sc},
                  "treatment": {"n": nt, "successes": st}, "diff": pt - pc,
                  "std_err": math.sqrt(pc * (1 - pc) / nc + pt * (1 - pt) / nt),
                  "z": float(wald.statistic), "p_value": float(wald.pvalue),
                  "ci_lower": float(lo), "ci_upper": float(hi),
                  "z_pooled": float(zp), "p_value_pooled": float(pp)})
write("proportions.json", cases)

# ---- Fieller: name, control mean, var of mean, treatment mean, var of mean, crit
z95 = float(stats.norm.isf(0.025))
FIELLER = [
    ("stats_md_binary", 0.1, 0.1 * 0.9 / 1000, 0.13, 0.13 * 0.87 / 1000, z95),
    ("continuous", 10.0, 9 / 500, 10.6, 3.2**2 / 520, float(stats.t.isf(0.025, 1017.4))),
    ("negative_control_mean", -5.0, 0.3, -4.0, 0.2, z95),
    ("large_n", 0.05, 0.05 * 0.95 / 1e8, 0.0501, 0.0501 * 0.9499 / 1e8, z95),
    ("small_sample_t", 2.0, 0.25, 3.5, 0.5, float(stats.t.isf(0.05, 3.2))),
    ("treatment_mean_zero", 1.0, 0.01, 0.0, 0.001, z95),
]
cases = []
for name, mc, vc, mt, vt, c in FIELLER:
    f = lambda r: (mt - r * mc) ** 2 - c * c * (vt + r * r * vc)
    rhat = mt / mc
    # The roots straddle rhat; widen the brackets until the sign changes.
    step = 1.0
    while f(rhat - step) < 0:
        step *= 2
    lo = root(f, rhat - step, rhat)
    step = 1.0
    while f(rhat + step) < 0:
        step *= 2
    hi = root(f, rhat, rhat + step)
    if mc > 0:
        lift = (lo - 1, hi - 1)
    else:
        lift = (1 - hi, 1 - lo)
    cases.append({"name": name, "mc": mc, "vc": vc, "mt": mt, "vt": vt, "crit": c,
                  "lower": lift[0], "upper": lift[1]})
write("fieller.json", cases)

# ---- p-value adjustment
ADJ = [
    ("three", [0.01, 0.04, 0.03]),
    ("one", [0.02]),
    ("ties", [0.01, 0.01, 0.02, 0.5]),
    ("capped_at_one", [0.4, 0.6, 0.9, 0.3]),
    ("tiny", [1e-300, 1e-12, 0.049, 0.051, 0.2]),
    ("unsorted_five", [0.2, 0.001, 0.03, 0.012, 0.04]),
]
cases = []
for name, ps in ADJ:
    cases.append({"name": name, "p": ps,
                  "holm": [float(x) for x in multipletests(ps, method="holm")[1]],
                  "benjamini_hochberg": [float(x) for x in multipletests(ps, method="fdr_bh")[1]]})
write("adjust.json", cases)

# ---- SRM
SRM = [
    ("balanced", [1000, 1000], [50, 50]),
    ("mismatch", [1204, 1050], [50, 50]),
    ("three_way", [3400, 3300, 3300], [34, 33, 33]),
    ("severe", [50000, 48000, 2000], [40, 40, 20]),
    ("small", [3, 7], [50, 50]),
    ("empty_variant", [0, 10, 12], [20, 40, 40]),
    ("large", [50_010_000, 49_990_000], [50, 50]),
]
cases = []
for name, obs, w in SRM:
    tot = sum(obs)
    exp = [tot * x / sum(w) for x in w]
    r = stats.chisquare(obs, exp)
    cases.append({"name": name, "observed": obs, "weights": w, "chi_square": float(r.statistic),
                  "p_value": float(r.pvalue), "expected": exp})
write("srm.json", cases)

# ---- power
def cont_power(delta, n, sd, ratio, alpha):
    return float(NormalIndPower().power(effect_size=delta / sd, nobs1=n, alpha=alpha, ratio=ratio))


def bin_power(delta, n, pc, ratio, alpha):
    pt = pc + delta
    s = math.sqrt(pt * (1 - pt) + pc * (1 - pc) / ratio)
    return float(normal_power_het(delta, n, alpha, std_null=s, std_alternative=s))


POWER = [
    # name, binary, baseline, sd, ratio, alpha, delta, n, target power
    ("continuous_equal_split", False, 10.0, 3.0, 1.0, 0.05, 0.3, 1000, 0.8),
    ("continuous_unequal_split", False, 10.0, 3.0, 2.0, 0.05, 0.2, 5000, 0.9),
    ("continuous_bonferroni_3", False, 100.0, 40.0, 1.0, 0.05 / 3, 2.0, 20000, 0.8),
    ("continuous_small_n", False, 1.0, 1.0, 1.0, 0.05, 1.5, 4, 0.8),
    ("continuous_large_n", False, 1.0, 1.0, 1.0, 0.01, 0.001, 5e7, 0.95),
    ("binary_10pct_plus_2pts", True, 0.10, 0, 1.0, 0.05, 0.02, 3000, 0.8),
    ("binary_rare", True, 0.01, 0, 1.0, 0.05, 0.001, 200000, 0.8),
    ("binary_unequal_split", True, 0.3, 0, 0.5, 0.10, 0.05, 800, 0.9),
    ("binary_high_rate", True, 0.95, 0, 1.0, 0.05, 0.02, 1500, 0.8),
]
cases = []
for name, binary, base, sd, ratio, alpha, delta, n, target in POWER:
    if binary:
        pw = lambda d, m: bin_power(d, m, base, ratio, alpha)
        dmax = 1 - base
    else:
        pw = lambda d, m: cont_power(d, m, sd, ratio, alpha)
        dmax = 1e6
    power = pw(delta, n)
    nn = root(lambda m: pw(delta, m) - target, 1e-6, 1e12)
    mde = root(lambda d: pw(d, n) - target, 1e-15, dmax * (1 - 1e-15))
    if not binary:  # cross-check the root against statsmodels' own solver
        sm = NormalIndPower().solve_power(effect_size=delta / sd, alpha=alpha, power=target, ratio=ratio)
        assert abs(sm - nn) <= 1e-6 * nn, (name, sm, nn)
    cases.append({"name": name, "binary": binary, "baseline": base, "std_dev": sd, "ratio": ratio,
                  "alpha": alpha, "delta": delta, "n": n, "target_power": target,
                  "power": power, "sample_size": nn, "mde": mde})
# Current MDE: k standard errors, normal_power(k) = 0.8 at alpha.
for alpha in (0.05, 0.01, 0.1):
    k = root(lambda k: float(normal_power_het(k, 1, alpha)) - 0.8, 0.1, 20)
    cases.append({"name": f"current_mde_k_alpha_{alpha}", "alpha": alpha, "target_power": 0.8, "k": k})
write("power.json", cases)
print("wrote proportions.json fieller.json adjust.json srm.json power.json")
