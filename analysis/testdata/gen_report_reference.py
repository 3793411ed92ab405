#!/usr/bin/python3
"""Reference values for the analyzer's end-to-end computation.

Generates a deterministic set of result events (several results per user,
a few redelivered duplicates with the same event_id) for a three-variant
test, and computes with SciPy what the analysis must report: per variant the
number of users, the mean and standard deviation of the per-user means, the
Student-t confidence interval of the mean, and for each treatment against
control Welch's t-test (scipy.stats.ttest_ind(equal_var=False)) with its
confidence interval.

It also computes the report of the same events under declared metrics:
"conversion" binary (Wald intervals of each rate, statsmodels
proportion_confint(method="normal"); a user is 1 when any of their results is non-zero;
users assigned without any result, listed in "assigned_only", count as 0;
the two-proportion z-test with the unpooled variance, statsmodels
test_proportions_2indep(method="wald")) and "revenue" winsorized at the 95th
percentile (per-user means capped at the value of rank floor(0.95 n) among
all users' sorted means, ClickHouse's quantileExact; then Welch).

Re-run with Debian's python (python3-scipy, python3-numpy):
    /usr/bin/python3 analysis/testdata/gen_report_reference.py
It writes analysis/testdata/report_reference.json next to this script.
"""
import json
import os

import numpy as np
import scipy
from scipy import stats

LEVEL = 0.95
rng = np.random.default_rng(20261126)
variants = {"control": (10.0, 3.0, 0.10), "b": (10.6, 3.2, 0.13), "c": (9.9, 2.5, 0.09)}
users = {"control": 300, "b": 320, "c": 150}

events = []
per_user = {}  # (metric, variant) -> {user: [values]}
seq = 0
for v, (mu, sd, p) in variants.items():
    for i in range(users[v]):
        user = f"{v}-user-{i}"
        k = int(rng.integers(1, 4))  # 1 to 3 results per user
        for j in range(k):
            rev = float(np.round(rng.normal(mu, sd), 6))
            conv = float(rng.random() < p)
            seq += 1
            ev = {"event_id": f"e{seq}", "user_id": user, "variant_id": v,
                  "metrics": {"revenue": rev, "conversion": conv}}
            events.append(ev)
            per_user.setdefault(("revenue", v), {}).setdefault(user, []).append(rev)
            per_user.setdefault(("conversion", v), {}).setdefault(user, []).append(conv)
            if seq % 97 == 0:  # a redelivered duplicate: must count once
                events.append(dict(ev))

expected = {}
for metric in ("revenue", "conversion"):
    arms = {}
    for v in variants:
        xs = np.array([np.mean(vals) for vals in per_user[(metric, v)].values()])
        n = len(xs)
        mean = float(np.mean(xs))
        sd = float(np.std(xs, ddof=1))
        half = stats.t.ppf(1 - (1 - LEVEL) / 2, n - 1) * sd / np.sqrt(n)
        arms[v] = {"n": n, "mean": mean, "std_dev": sd, "ci_lower": mean - half, "ci_upper": mean + half, "xs": xs}
    comps = {}
    c = arms["control"]
    for v in ("b", "c"):
        t = arms[v]
        res = stats.ttest_ind(t["xs"], c["xs"], equal_var=False)
        va, vb = c["std_dev"] ** 2 / c["n"], t["std_dev"] ** 2 / t["n"]
        se = np.sqrt(va + vb)
        dof = (va + vb) ** 2 / (va ** 2 / (c["n"] - 1) + vb ** 2 / (t["n"] - 1))
        crit = stats.t.ppf(1 - (1 - LEVEL) / 2, dof)
        diff = t["mean"] - c["mean"]
        comps[v] = {"diff": diff, "t": float(res.statistic), "dof": float(dof), "p_value": float(res.pvalue),
                    "ci_lower": float(diff - crit * se), "ci_upper": float(diff + crit * se)}
    for a in arms.values():
        del a["xs"]
    expected[metric] = {"variants": arms, "comparisons": comps}

# Declared metrics.
from statsmodels.stats.proportion import (confint_proportions_2indep, proportion_confint,
                                          test_proportions_2indep)

assigned_only = {v: [f"{v}-silent-{i}" for i in range(k)] for v, k in (("control", 40), ("b", 25), ("c", 10))}
declared = {"conversion": {"variants": {}, "comparisons": {}}, "revenue": {"variants": {}, "comparisons": {}}}
conv = {}
for v in variants:
    users_conv = [1.0 if any(x != 0 for x in vals) else 0.0 for vals in per_user[("conversion", v)].values()]
    n = len(users_conv) + len(assigned_only[v])
    s_ = int(sum(users_conv))
    conv[v] = (s_, n)
    lo, hi = proportion_confint(s_, n, alpha=1 - LEVEL, method="normal")
    declared["conversion"]["variants"][v] = {"n": n, "successes": s_, "ci_lower": float(lo), "ci_upper": float(hi)}
for v in ("b", "c"):
    (sc, nc), (st, nt) = conv["control"], conv[v]
    r = test_proportions_2indep(st, nt, sc, nc, method="wald", compare="diff", return_results=True)
    lo, hi = confint_proportions_2indep(st, nt, sc, nc, method="wald", compare="diff", alpha=1 - LEVEL)
    declared["conversion"]["comparisons"][v] = {"diff": st / nt - sc / nc, "z": float(r.statistic),
                                                "p_value": float(r.pvalue), "ci_lower": float(lo), "ci_upper": float(hi)}
means = {v: np.array([np.mean(vals) for vals in per_user[("revenue", v)].values()]) for v in variants}
pooled = np.sort(np.concatenate(list(means.values())))
cap = float(pooled[int(0.95 * len(pooled))])
declared["revenue"]["cap"] = cap
capped = {v: np.minimum(xs, cap) for v, xs in means.items()}
for v, xs in capped.items():
    declared["revenue"]["variants"][v] = {"n": len(xs), "mean": float(np.mean(xs)), "std_dev": float(np.std(xs, ddof=1))}
for v in ("b", "c"):
    res = stats.ttest_ind(capped[v], capped["control"], equal_var=False)
    declared["revenue"]["comparisons"][v] = {"diff": float(np.mean(capped[v]) - np.mean(capped["control"])),
                                             "t": float(res.statistic), "p_value": float(res.pvalue)}

out = {
    "assigned_only": assigned_only,
    "expected_declared": declared,
    "generator": "gen_report_reference.py",
    "scipy_version": scipy.__version__,
    "numpy_version": np.__version__,
    "confidence_level": LEVEL,
    "events": events,
    "expected": expected,
}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "report_reference.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1, sort_keys=True)
    f.write("\n")
print(f"wrote {path}: {len(events)} events")
