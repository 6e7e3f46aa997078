#!/usr/bin/env python3
"""Expected A/B statistics for the Hillstrom e-mail experiment, from scipy and statsmodels.

Writes crates/cli/tests/fixtures/hillstrom_scipy.json, which the CLI tests compare with
`shoplens experiment analyze-file` to 1e-9 relative. Each e-mail arm against "No E-Mail":
visit and conversion by statsmodels' proportions_ztest (pooled) and Wald interval (unpooled),
spend by scipy's Welch t test, spend/visit as a ratio metric by the delta method (numpy), and the
sample-ratio chi-square by scipy.stats.chisquare.
Usage: python scripts/abtest_fixture.py   (needs pandas, scipy, statsmodels)
"""
import json, os
import numpy as np, pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportions_ztest, confint_proportions_2indep

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
df = pd.read_csv(os.path.join(ROOT, "..", "shared", "data", "hillstrom",
                              "Kevin_Hillstrom_MineThatData_E-MailAnalytics_DataMiningChallenge_2008.03.20.csv"))
ctrl = df[df.segment == "No E-Mail"]
out = {"results": []}


def delta(g):
    n, d = g.spend.to_numpy(), g.visit.to_numpy().astype(float)
    k = len(n)
    mn, md = n.mean(), d.mean()
    r = mn / md
    c = np.cov(n, d, ddof=1)
    return r, (c[0, 0] - 2 * r * c[0, 1] + r * r * c[1, 1]) / (md * md * k)


for arm in ["Mens E-Mail", "Womens E-Mail"]:
    v = df[df.segment == arm]
    for m in ["visit", "conversion"]:
        x, n = [v[m].sum(), ctrl[m].sum()], [len(v), len(ctrl)]
        z, p = proportions_ztest(x, n)
        lo, hi = confint_proportions_2indep(x[0], n[0], x[1], n[1], method="wald", compare="diff", alpha=0.05)
        out["results"].append({"variant": arm, "metric": m, "statistic": z, "p_value": p, "ci_low": lo, "ci_high": hi})
    t = stats.ttest_ind(v.spend, ctrl.spend, equal_var=False)
    ci = t.confidence_interval(0.95)
    out["results"].append({"variant": arm, "metric": "spend", "statistic": t.statistic, "p_value": t.pvalue,
                           "ci_low": ci.low, "ci_high": ci.high, "df": t.df})
    (rc, vc), (rv, vv) = delta(ctrl), delta(v)
    se = np.sqrt(vc + vv)
    z = (rv - rc) / se
    q = stats.norm.ppf(0.975)
    out["results"].append({"variant": arm, "metric": "spend/visit", "statistic": z, "p_value": 2 * stats.norm.sf(abs(z)),
                           "ci_low": rv - rc - q * se, "ci_high": rv - rc + q * se})
counts = df.segment.value_counts()
chi2, p = stats.chisquare([counts["Mens E-Mail"], counts["No E-Mail"], counts["Womens E-Mail"]])
out["srm"] = {"chi2": chi2, "p_value": p}
with open(os.path.join(ROOT, "crates", "cli", "tests", "fixtures", "hillstrom_scipy.json"), "w") as f:
    json.dump(out, f, indent=1)
