#!/usr/bin/env python3
"""Reference values for the statistics beyond the anchor platforms in
analysis/stats: sequential tests, CUPED, Bayesian summaries, ratio metrics,
non-inferiority and the segment heterogeneity scan.

Re-run from the repository root after changing or adding a case, with a
python3 that has NumPy, SciPy, statsmodels and mpmath:

    python3 analysis/stats/testdata/gen_reference_options.py

The output, options.json next to this file, is deterministic (fixed seeds).
Each section is computed independently of the Go formulas where possible:

  sequential      GrowthBook's confidence sequence in the form STATS.md gives
                  (sigma = sqrt(N SE^2), rho from alpha and N*), and the
                  always-valid p-value as 1/Lambda of Johari et al.'s mSPRT
                  with mixing variance tau^2, in mpmath at 50 digits. With an
                  explicit tau^2 the half-width is found as the root of
                  Lambda(d) = 1/alpha.
  sequential_srm  the Dirichlet-multinomial Bayes factor of Lindon & Malek
                  with mpmath log-gamma at 50 digits.
  cuped           seeded raw data: statsmodels OLS of y on treatment and the
                  centred covariate for theta and the point estimate, SciPy
                  Welch test and statsmodels interval on the per-user
                  adjusted values.
  bayes           posterior by numerical integration of prior x likelihood,
                  chance to win and risks as integrals of the posterior
                  (mpmath quad, checked against scipy.integrate.quad).
  ratio           seeded per-user numerators and denominators; delta-method
                  variance as the quadratic form of the gradient with NumPy's
                  covariance matrix, normal test, Fieller lift by brentq.
  noninferiority  statsmodels ttest_ind(value=, alternative=) and
                  tconfint_diff on seeded raw values; statsmodels
                  test_proportions_2indep(method="wald", value=) for rates.
  segments        statsmodels combine_effects (fixed-effect pooled effect,
                  Cochran's Q, I^2), leave-one-out z-tests in NumPy/SciPy,
                  statsmodels multipletests.
"""
import json
import math
import os

import mpmath
import numpy as np
import scipy
import statsmodels
import statsmodels.api as sm
from scipy import integrate, optimize, stats
from statsmodels.stats.meta_analysis import combine_effects
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import test_proportions_2indep
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW, ttest_ind

mpmath.mp.dps = 50
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = {"generator": os.path.basename(__file__), "scipy_version": scipy.__version__,
       "statsmodels_version": statsmodels.__version__, "numpy_version": np.__version__}


def f(x):
    return float(x)


# ---------------------------------------------------------------- sequential
def mixture_p(diff, se2, tau2):
    """Johari et al. mSPRT with N(0, tau2) mixing: p = min(1, 1/Lambda)."""
    d, v, t = mpmath.mpf(diff), mpmath.mpf(se2), mpmath.mpf(tau2)
    loglam = 0.5 * mpmath.log(v / (v + t)) + t * d * d / (2 * v * (v + t))
    return loglam, min(mpmath.mpf(1), mpmath.exp(-loglam))


def gbstats_halfwidth(se2, n, alpha, n_star):
    rho = math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / n_star)
    sigma = math.sqrt(n * se2)
    a, r2 = mpmath.mpf(n), mpmath.mpf(rho) ** 2
    hw = mpmath.sqrt(n * mpmath.mpf(se2)) * mpmath.sqrt(2 * (a * r2 + 1) / (a * a * r2) *
                                                       mpmath.log(mpmath.sqrt(a * r2 + 1) / alpha))
    return rho, sigma, hw


SEQ = [
    # name, kind, control, treatment, alpha, N*, tau2
    ("stats_md_binary", "prop", (100, 1000), (130, 1000), 0.05, 5000, 0),
    ("binary_large", "prop", (10_000, 100_000), (10_300, 100_000), 0.05, 5000, 0),
    ("binary_tuned_1e5", "prop", (5_000, 50_000), (5_200, 50_000), 0.05, 100_000, 0),
    ("binary_alpha_01", "prop", (300, 2000), (360, 2000), 0.01, 5000, 0),
    ("continuous_stats_md", "mean", (500, 10.0, 9.0), (520, 10.6, 10.24), 0.05, 5000, 0),
    ("continuous_null", "mean", (4000, 3.0, 4.0), (4100, 3.0, 4.4), 0.05, 5000, 0),
    ("continuous_tiny_p", "mean", (50_000, 1.0, 1.0), (50_000, 1.1, 1.0), 0.05, 5000, 0),
    ("continuous_negative", "mean", (800, 5.0, 2.0), (790, 4.7, 2.5), 0.10, 2000, 0),
    ("msprt_tau2", "mean", (1000, 10.0, 9.0), (1000, 10.4, 9.0), 0.05, 0, 0.04),
    ("msprt_tau2_binary", "prop", (200, 2000), (250, 2000), 0.05, 0, 0.0004),
]
cases = []
for name, kind, c, t, alpha, nstar, tau2 in SEQ:
    if kind == "prop":
        (sc, nc), (st, nt) = c, t
        pc, pt = sc / nc, st / nt
        diff = pt - pc
        se2 = pc * (1 - pc) / nc + pt * (1 - pt) / nt
        case = {"control": {"n": nc, "successes": sc}, "treatment": {"n": nt, "successes": st}}
    else:
        (nc, mc, vc), (nt, mt, vt) = c, t
        diff = mt - mc
        se2 = vc / nc + vt / nt
        case = {"control": {"n": nc, "mean": mc, "variance": vc},
                "treatment": {"n": nt, "mean": mt, "variance": vt}}
    n = nc + nt
    if tau2 == 0:
        rho, sigma, hw = gbstats_halfwidth(se2, n, alpha, nstar)
        t2 = mpmath.mpf(rho) ** 2 * n * mpmath.mpf(se2)
    else:
        t2 = mpmath.mpf(tau2)
        # half-width: the |diff| at which 1/Lambda = alpha
        hw = mpmath.findroot(lambda d: mixture_p(d, se2, t2)[0] - mpmath.log(1 / mpmath.mpf(alpha)),
                             math.sqrt(se2) * 3)
    loglam, p = mixture_p(diff, se2, t2)
    case.update({"name": name, "kind": kind, "alpha": alpha, "tuning_n": nstar, "mixing_variance": tau2,
                 "diff": diff, "std_err": math.sqrt(se2), "lower": f(diff - hw), "upper": f(diff + hw),
                 "p_value": f(p), "log_lr": f(loglam), "tau2": f(t2)})
    cases.append(case)
OUT["sequential"] = cases

SRM = [
    # name, observed, weights, concentration
    ("balanced", [1000, 1000], [50, 50], 100),
    ("mismatch", [1204, 1050], [50, 50], 100),
    ("three_way", [3400, 3300, 3300], [34, 33, 33], 100),
    ("severe", [5000, 4800, 200], [40, 40, 20], 100),
    ("small", [3, 7], [50, 50], 100),
    ("empty_variant", [0, 10, 12], [20, 40, 40], 100),
    ("concentration_10", [520, 480], [1, 1], 10),
    ("concentration_1000", [52_000, 48_000], [1, 1], 1000),
    ("moderate_n", [100_600, 99_400], [50, 50], 100),
    ("large_n_1e6_three_way", [400_900, 299_000, 300_100], [40, 30, 30], 100),
    ("large_n_1e8", [50_004_000, 49_996_000], [1, 1], 100),
    ("large_n_1e8_mismatch", [50_030_000, 49_970_000], [1, 1], 100),
    ("large_n_1e9_unequal", [250_010_000, 749_990_000], [1, 3], 100),
    ("tiny_concentration", [12, 30], [1, 1], 0.5),
]
cases = []
for name, obs, w, k in SRM:
    th = [mpmath.mpf(x) / sum(w) for x in w]
    n = sum(obs)
    k = mpmath.mpf(k)
    lbf = mpmath.loggamma(k) - mpmath.loggamma(k + n)
    for x, t in zip(obs, th):
        lbf += mpmath.loggamma(k * t + x) - mpmath.loggamma(k * t) - x * mpmath.log(t)
    p = min(mpmath.mpf(1), mpmath.exp(-lbf))
    cases.append({"name": name, "observed": obs, "weights": w, "concentration": f(k),
                  "log_bayes_factor": f(lbf), "p_value": f(p)})
OUT["sequential_srm"] = cases

# ---------------------------------------------------------------- CUPED
# Raw per-user data (seeded); the arms' moments come from NumPy. The point
# estimate is the treatment coefficient of statsmodels OLS
# y ~ 1 + treatment + (x - mean x); the test is Welch's on the per-user
# adjusted values y - theta (x - mean x) (scipy ttest_ind, statsmodels
# CompareMeans for the interval).

rng = np.random.default_rng(20260102)
CUPED = [
    # name, nc, nt, rho, effect, x shift of treatment, level
    ("rho_0.7", 400, 420, 0.7, 0.15, 0.0, 0.95),
    ("rho_0.3_unequal", 150, 900, 0.3, 0.3, 0.0, 0.95),
    ("rho_0.95_small", 12, 15, 0.95, 0.5, 0.0, 0.90),
    ("x_imbalance", 1000, 1000, 0.6, 0.05, 0.1, 0.95),
    ("negative_rho", 300, 310, -0.8, -0.2, 0.0, 0.99),
    ("no_correlation", 500, 500, 0.0, 0.1, 0.0, 0.95),
]
cases = []
for name, nc, nt, rho, eff, shift, level in CUPED:
    arms = []
    for n, e, s in ((nc, 0.0, 0.0), (nt, eff, shift)):
        x = rng.normal(5 + s, 2, n)
        y = 10 + e + rho * 3 / 2 * (x - 5 - s) + 3 * math.sqrt(1 - rho * rho) * rng.normal(0, 1, n) + s
        arms.append((x, y))
    (xc, yc), (xt, yt) = arms
    x_all = np.concatenate([xc, xt])
    y_all = np.concatenate([yc, yt])
    tr = np.concatenate([np.zeros(nc), np.ones(nt)])
    design = np.column_stack([np.ones(nc + nt), tr, x_all - x_all.mean()])
    ols = sm.OLS(y_all, design).fit()
    theta = float(ols.params[2])
    adj_c = yc - theta * (xc - x_all.mean())
    adj_t = yt - theta * (xt - x_all.mean())
    tt = stats.ttest_ind(adj_t, adj_c, equal_var=False)
    lo, hi = CompareMeans(DescrStatsW(adj_t), DescrStatsW(adj_c)).tconfint_diff(alpha=1 - level, usevar="unequal")
    un = stats.ttest_ind(yt, yc, equal_var=False)
    se_adj2 = adj_c.var(ddof=1) / nc + adj_t.var(ddof=1) / nt
    se_un2 = yc.var(ddof=1) / nc + yt.var(ddof=1) / nt

    def moments(x, y):
        return {"n": len(x), "mean": float(y.mean()), "variance": float(y.var(ddof=1)),
                "covariate_mean": float(x.mean()), "covariate_variance": float(x.var(ddof=1)),
                "covariance": float(np.cov(x, y, ddof=1)[0, 1])}

    cases.append({"name": name, "level": level, "control": moments(xc, yc), "treatment": moments(xt, yt),
                  "theta": theta, "diff": float(ols.params[1]),
                  "adjusted_control_mean": float(adj_c.mean()), "adjusted_treatment_mean": float(adj_t.mean()),
                  "adjusted_control_variance": float(adj_c.var(ddof=1)),
                  "adjusted_treatment_variance": float(adj_t.var(ddof=1)),
                  "t": float(tt.statistic), "p_value": float(tt.pvalue), "ci_lower": float(lo), "ci_upper": float(hi),
                  "unadjusted_p_value": float(un.pvalue), "variance_reduction": 1 - se_adj2 / se_un2})
OUT["cuped"] = cases

# ---------------------------------------------------------------- Bayesian
# The likelihood of the effect is gbstats' normal approximation (absolute
# difference, or the delta-method relative lift (mt - mc)/|mc|). The
# posterior under a proper prior is found by numerical integration of
# prior x likelihood (mpmath quad), not by the conjugate formula; chance to
# win and both risks are integrals of the posterior density (mpmath quad,
# cross-checked with scipy.integrate.quad).
BAYES = [
    # name, kind, control, treatment, relative, direction, prior (mean, var), level, risk threshold
    ("stats_md_absolute", "prop", (100, 1000), (130, 1000), False, "higher", None, 0.95, 0),
    ("stats_md_relative", "prop", (100, 1000), (130, 1000), True, "higher", None, 0.95, 0),
    ("stats_md_relative_prior", "prop", (100, 1000), (130, 1000), True, "higher", (0, 0.09), 0.95, 0),
    ("lower_is_better", "mean", (500, 10.0, 9.0), (520, 10.6, 10.24), False, "lower", None, 0.90, 0),
    ("continuous_relative_prior", "mean", (500, 10.0, 9.0), (520, 10.6, 10.24), True, "higher", (0.01, 0.0004), 0.95, 0),
    ("sure_winner", "mean", (50_000, 1.0, 1.0), (50_000, 1.05, 1.0), False, "higher", None, 0.95, 0),
    ("negative_control_relative", "mean", (300, -4.0, 2.0), (310, -3.8, 2.5), True, "higher", None, 0.99, 0.01),
    ("flat_effect_large_n", "prop", (10_000, 100_000), (10_010, 100_000), True, "higher", None, 0.95, 0),
    ("prior_dominates", "mean", (20, 1.0, 4.0), (20, 2.0, 4.0), False, "higher", (0, 0.01), 0.95, 0.05),
]


def npdf(x, m, v):
    return mpmath.exp(-(x - m) ** 2 / (2 * v)) / mpmath.sqrt(2 * mpmath.pi * v)


cases = []
for name, kind, c, t, relative, direction, prior, level, thr in BAYES:
    if kind == "prop":
        (sc, nc), (st, nt) = c, t
        mc, mt = sc / nc, st / nt
        vc, vt = mc * (1 - mc) / nc, mt * (1 - mt) / nt
        case = {"control": {"n": nc, "successes": sc}, "treatment": {"n": nt, "successes": st}}
    else:
        (nc, mc, sc2), (nt, mt, st2) = c, t
        vc, vt = sc2 / nc, st2 / nt
        case = {"control": {"n": nc, "mean": mc, "variance": sc2},
                "treatment": {"n": nt, "mean": mt, "variance": st2}}
    mc_, mt_, vc_, vt_ = (mpmath.mpf(x) for x in (mc, mt, vc, vt))
    if relative:
        eff = (mt_ - mc_) / abs(mc_)
        var = vt_ / mc_ ** 2 + vc_ * mt_ ** 2 / mc_ ** 4
    else:
        eff, var = mt_ - mc_, vc_ + vt_
    sd = mpmath.sqrt(var)
    if prior is None:
        pm, pv = eff, var
    else:
        m0, v0 = mpmath.mpf(prior[0]), mpmath.mpf(prior[1])
        dens = lambda x: npdf(x, m0, v0) * npdf(eff, x, var)
        lo_, hi_ = eff - 40 * sd, eff + 40 * sd
        pts = [lo_, min(eff, m0), max(eff, m0), hi_]
        z = mpmath.quad(dens, pts)
        pm = mpmath.quad(lambda x: x * dens(x), pts) / z
        pv = mpmath.quad(lambda x: (x - pm) ** 2 * dens(x), pts) / z
    ps = mpmath.sqrt(pv)
    sign = 1 if direction == "higher" else -1
    post = lambda x: npdf(x, pm, pv)
    lo_, hi_ = pm - 40 * ps, pm + 40 * ps
    # gain G = sign * effect
    win = mpmath.quad(lambda x: post(x), [0, hi_] if sign > 0 else [lo_, 0]) if lo_ < 0 < hi_ else (
        mpmath.mpf(1) if (pm * sign > 0) else mpmath.mpf(0))
    risk_t = mpmath.quad(lambda x: max(0, -sign * x) * post(x), [lo_, 0, hi_] if lo_ < 0 < hi_ else [lo_, hi_])
    risk_c = mpmath.quad(lambda x: max(0, sign * x) * post(x), [lo_, 0, hi_] if lo_ < 0 < hi_ else [lo_, hi_])
    # scipy.integrate.quad cross-check of the mpmath integrals
    pmf, psf = float(pm), float(ps)
    sq = integrate.quad(lambda x: max(0.0, -sign * x) * stats.norm.pdf(x, pmf, psf), pmf - 40 * psf, pmf + 40 * psf,
                        points=[0.0] if pmf - 40 * psf < 0 < pmf + 40 * psf else None, epsabs=0, epsrel=1e-12, limit=200)[0]
    assert abs(sq - float(risk_t)) <= 1e-8 * float(risk_t) + 1e-300, (name, sq, float(risk_t))
    q = mpmath.sqrt(2) * mpmath.erfinv(level)
    threshold = (thr or 0.0025) * (1 if relative else abs(mc))
    if risk_t < threshold and risk_t <= risk_c:
        decision = "ship_treatment"
    elif risk_c < threshold:
        decision = "keep_control"
    else:
        decision = "keep_running"
    case.update({"name": name, "kind": kind, "relative": relative, "direction": direction,
                 "prior": None if prior is None else {"mean": prior[0], "variance": prior[1]},
                 "level": level, "risk_threshold": thr, "mean": f(pm), "std_dev": f(ps),
                 "ci_lower": f(pm - q * ps), "ci_upper": f(pm + q * ps), "chance_to_win": f(win),
                 "risk_treatment": f(risk_t), "risk_control": f(risk_c), "decision": decision})
    cases.append(case)
OUT["bayes"] = cases

# ---------------------------------------------------------------- ratio metrics
# Seeded per-user numerators and denominators; the arms' moments come from
# NumPy. The delta-method variance is the quadratic form g' S g / n with the
# gradient g = (1/mu_D, -mu_N/mu_D^2) of mu_N/mu_D and NumPy's 2x2
# covariance matrix S; the lift interval is Fieller's, found as the roots of
# (rt - R rc)^2 = z^2 (vt + R^2 vc) with brentq.
rng = np.random.default_rng(20260103)
RATIO = [
    # name, nc, nt, sessions mean, revenue per session (control, treatment), level
    ("revenue_per_session", 2000, 2100, 3.0, (2.0, 2.1), 0.95),
    ("small_arms", 30, 25, 1.5, (5.0, 4.0), 0.90),
    ("no_effect_large", 50_000, 50_000, 4.0, (1.0, 1.0), 0.95),
    ("clicks_per_view", 800, 400, 10.0, (0.1, 0.12), 0.99),
]
cases = []
for name, nc, nt, smean, rps, level in RATIO:
    arms = []
    for n, r in ((nc, rps[0]), (nt, rps[1])):
        den = rng.poisson(smean, n) + 1.0
        num = den * r * rng.gamma(2.0, 0.5, n) + rng.normal(0, 0.5, n)
        arms.append((num, den))

    def moments(num, den):
        s = np.cov(np.vstack([num, den]), ddof=1)
        return {"n": len(num), "numerator_mean": float(num.mean()), "numerator_variance": float(s[0, 0]),
                "denominator_mean": float(den.mean()), "denominator_variance": float(s[1, 1]),
                "covariance": float(s[0, 1])}

    def ratio_var(num, den):
        mn, md = num.mean(), den.mean()
        g = np.array([1 / md, -mn / md ** 2])
        return float(g @ np.cov(np.vstack([num, den]), ddof=1) @ g / len(num)), float(mn / md)

    (vc, rc), (vt, rt) = ratio_var(*arms[0]), ratio_var(*arms[1])
    se = math.sqrt(vc + vt)
    z = (rt - rc) / se
    crit = float(stats.norm.isf((1 - level) / 2))
    fl = lambda R: (rt - R * rc) ** 2 - crit ** 2 * (vt + R * R * vc)
    rhat = rt / rc
    lo = optimize.brentq(fl, rhat - 10, rhat, xtol=1e-300, rtol=4 * np.finfo(float).eps)
    hi = optimize.brentq(fl, rhat, rhat + 10, xtol=1e-300, rtol=4 * np.finfo(float).eps)
    cases.append({"name": name, "level": level, "control": moments(*arms[0]), "treatment": moments(*arms[1]),
                  "control_ratio": rc, "treatment_ratio": rt, "control_variance": vc, "treatment_variance": vt,
                  "diff": rt - rc, "std_err": se, "z": z, "p_value": float(2 * stats.norm.sf(abs(z))),
                  "ci_lower": rt - rc - crit * se, "ci_upper": rt - rc + crit * se,
                  "lift_lower": lo - 1, "lift_upper": hi - 1})
OUT["ratio"] = cases

# ---------------------------------------------------------------- non-inferiority
# Continuous: statsmodels ttest_ind(usevar="unequal", value, alternative) on
# seeded raw values, CompareMeans.tconfint_diff(alternative=...) for the
# one-sided bound. Binary: statsmodels test_proportions_2indep(method="wald",
# compare="diff", value, alternative) and the one-sided Wald bound.

rng = np.random.default_rng(20260104)
NI = [
    # name, kind, control, treatment, margin, relative, direction, alpha
    ("higher_absolute_not_worse", "mean", (400, 10.0, 3.0), (410, 9.9, 3.1), 0.5, False, "higher", 0.05),
    ("higher_relative_inconclusive", "mean", (200, 10.0, 3.0), (190, 9.7, 3.3), 0.02, True, "higher", 0.05),
    ("lower_absolute_latency", "mean", (300, 250.0, 40.0), (320, 252.0, 45.0), 10.0, False, "lower", 0.025),
    ("lower_relative_worse", "mean", (150, 5.0, 1.0), (150, 5.6, 1.2), 0.05, True, "lower", 0.05),
    ("small_arms", "mean", (8, 1.0, 0.5), (9, 1.1, 0.4), 0.2, False, "higher", 0.10),
    ("prop_higher_relative", "prop", (1000, 10000), (990, 10000), 0.05, True, "higher", 0.05),
    ("prop_lower_absolute", "prop", (50, 2000), (62, 2000), 0.01, False, "lower", 0.05),
    ("prop_clearly_fine", "prop", (3000, 20000), (3150, 20000), 0.005, False, "higher", 0.01),
]
cases = []
for name, kind, c, t, margin, relative, direction, alpha in NI:
    alt = "larger" if direction == "higher" else "smaller"
    if kind == "mean":
        (nc, mc, sc), (nt, mt, st) = c, t
        xc, xt = rng.normal(mc, sc, nc), rng.normal(mt, st, nt)
        m = margin * abs(xc.mean()) if relative else margin
        value = -m if direction == "higher" else m
        stat, p, dof = ttest_ind(xt, xc, alternative=alt, usevar="unequal", value=value)
        cm = CompareMeans(DescrStatsW(xt), DescrStatsW(xc))
        lo, hi = cm.tconfint_diff(alpha=alpha, alternative=alt, usevar="unequal")
        bound = lo if direction == "higher" else hi
        diff = xt.mean() - xc.mean()
        se = math.sqrt(xc.var(ddof=1) / nc + xt.var(ddof=1) / nt)
        case = {"control": {"n": nc, "mean": float(xc.mean()), "variance": float(xc.var(ddof=1))},
                "treatment": {"n": nt, "mean": float(xt.mean()), "variance": float(xt.var(ddof=1))},
                "dof": float(dof)}
    else:
        (sc, nc), (st, nt) = c, t
        pc, pt = sc / nc, st / nt
        m = margin * pc if relative else margin
        value = -m if direction == "higher" else m
        res = test_proportions_2indep(st, nt, sc, nc, value=value, method="wald", compare="diff",
                                      alternative=alt, return_results=True)
        stat, p = float(res.statistic), float(res.pvalue)
        diff = pt - pc
        se = math.sqrt(pc * (1 - pc) / nc + pt * (1 - pt) / nt)
        assert abs(stat - (diff - value) / se) < 1e-12 * abs(stat), (name, stat)
        z = float(stats.norm.isf(alpha))
        bound = diff - z * se if direction == "higher" else diff + z * se
        case = {"control": {"n": nc, "successes": sc}, "treatment": {"n": nt, "successes": st}}
    case.update({"name": name, "kind": kind, "margin": margin, "relative": relative, "direction": direction,
                 "alpha": alpha, "diff": float(diff), "std_err": se, "abs_margin": float(m),
                 "statistic": float(stat), "p_value": float(p), "bound": float(bound),
                 "not_worse": bool(p <= alpha)})
    cases.append(case)
OUT["noninferiority"] = cases

# ---------------------------------------------------------------- segments
# Cochran's Q, I^2 and the fixed-effect pooled effect from statsmodels'
# combine_effects; each segment against the inverse-variance pooled rest,
# two-sided normal p-values, statsmodels multipletests for the correction.

SEG = [
    # name, effects, standard errors, alpha, correction
    ("one_outlier", [0.10, 0.12, 0.09, 0.45, 0.11], [0.05, 0.04, 0.06, 0.08, 0.05], 0.05, "holm"),
    ("homogeneous", [0.02, 0.025, 0.018], [0.01, 0.012, 0.009], 0.05, "holm"),
    ("two_segments", [1.0, -0.5], [0.4, 0.3], 0.05, "holm"),
    ("opposite_signs_bh", [0.3, -0.2, 0.25, -0.3, 0.05, 0.0], [0.1, 0.1, 0.12, 0.11, 0.05, 0.2], 0.10, "benjamini_hochberg"),
    ("dominant_segment", [0.01, 0.2, 0.15], [0.001, 0.05, 0.07], 0.05, "holm"),
]
cases = []
for name, eff, se, alpha, corr in SEG:
    e, s = np.array(eff), np.array(se)
    with np.errstate(invalid="ignore"):  # an unused random-effects term
        res = combine_effects(e, s ** 2, method_re="chi2")
    w = 1 / s ** 2
    rows = []
    for i in range(len(e)):
        m = np.arange(len(e)) != i
        rest = float(np.sum(w[m] * e[m]) / np.sum(w[m]))
        rse = float(math.sqrt(1 / np.sum(w[m])))
        dse = math.sqrt(s[i] ** 2 + rse ** 2)
        z = (e[i] - rest) / dse
        rows.append({"rest": rest, "rest_std_err": rse, "diff": float(e[i] - rest), "diff_std_err": dse,
                     "z": float(z), "p_value": float(2 * stats.norm.sf(abs(z)))})
    adj = multipletests([r["p_value"] for r in rows], method={"holm": "holm", "benjamini_hochberg": "fdr_bh"}[corr])[1]
    for r, a in zip(rows, adj):
        r["adjusted_p_value"] = float(a)
        r["flagged"] = bool(a <= alpha)
    q = float(res.q)
    dof = len(e) - 1
    cases.append({"name": name, "effects": eff, "std_errs": se, "alpha": alpha, "correction": corr,
                  "pooled": float(res.mean_effect_fe), "pooled_std_err": float(res.sd_eff_w_fe),
                  "q": q, "dof": dof, "q_p_value": float(stats.chi2.sf(q, dof)),
                  # Higgins' I^2 is truncated at 0; statsmodels reports (Q-df)/Q.
                  "i2": max(0.0, float(res.i2)), "segments": rows})
OUT["segments"] = cases

with open(os.path.join(HERE, "options.json"), "w") as fh:
    json.dump(OUT, fh, indent=1, sort_keys=True)
    fh.write("\n")
print("wrote options.json")
