#!/usr/bin/env python3
"""Expected always-valid (sequential) results for the Hillstrom e-mail experiment, from GrowthBook's
gbstats package: its SequentialTwoSidedTTest (the asymptotic confidence sequence of Waudby-Smith et
al.) with the default tuning of 5,000 users and alpha 0.05.

Writes crates/cli/tests/fixtures/hillstrom_gbstats_sequential.json, which the CLI tests compare with
`shoplens experiment analyze-file … --sequential` to 1e-9 relative. Each e-mail arm against
"No E-Mail": visit and conversion as proportions, spend as a mean, spend/visit as a ratio (both
parts as sample means, i.e. n − 1 variances), absolute and relative differences.
Usage: python scripts/sequential_gbstats.py   (needs pandas and gbstats, e.g. pip install gbstats)
"""
import json, os
import pandas as pd
from gbstats.frequentist.tests import SequentialConfig, SequentialTwoSidedTTest
from gbstats.models.statistics import ProportionStatistic, RatioStatistic, SampleMeanStatistic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
df = pd.read_csv(os.path.join(ROOT, "..", "shared", "data", "hillstrom",
                              "Kevin_Hillstrom_MineThatData_E-MailAnalytics_DataMiningChallenge_2008.03.20.csv"))


def mean_stat(x):
    x = x.astype(float)
    return SampleMeanStatistic(n=len(x), sum=float(x.sum()), sum_squares=float((x * x).sum()))


def stat(g, metric):
    if metric in ("visit", "conversion"):
        return ProportionStatistic(n=len(g), sum=float(g[metric].sum()))
    if metric == "spend":
        return mean_stat(g.spend)
    m, d = g.spend.astype(float), g.visit.astype(float)
    return RatioStatistic(n=len(g), m_statistic=mean_stat(m), d_statistic=mean_stat(d),
                          m_d_sum_of_products=float((m * d).sum()))


ctrl = df[df.segment == "No E-Mail"]
out = {"tuning": 5000, "alpha": 0.05, "results": []}
for arm in ["Mens E-Mail", "Womens E-Mail"]:
    v = df[df.segment == arm]
    for metric in ["visit", "conversion", "spend", "spend/visit"]:
        row = {"variant": arm, "metric": metric}
        for kind in ["absolute", "relative"]:
            t = SequentialTwoSidedTTest(stat(ctrl, metric), stat(v, metric),
                                        SequentialConfig(difference_type=kind, sequential_tuning_parameter=5000))
            lo, hi = t.confidence_interval
            pre = "" if kind == "absolute" else "relative_"
            row[pre + "ci_low"], row[pre + "ci_high"] = float(lo), float(hi)
            if kind == "absolute":
                row["p_value"] = float(t.p_value)
        out["results"].append(row)
with open(os.path.join(ROOT, "crates", "cli", "tests", "fixtures", "hillstrom_gbstats_sequential.json"), "w") as f:
    json.dump(out, f, indent=1)
