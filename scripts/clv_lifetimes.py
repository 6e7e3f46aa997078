"""Fits BG/NBD and Gamma-Gamma on the CDNOW sample with the Python `lifetimes` package and writes
the parameters and per-customer P(alive) and expected purchases as a test fixture for `shoplens clv`.

Usage: python scripts/clv_lifetimes.py ../shared/data/cdnow/CDNOW_sample.txt > crates/cli/tests/fixtures/cdnow_lifetimes.json

The summary follows docs/metrics.md ("Lifetime value"): daily purchase granularity, weeks,
calibration ending 1997-09-30 inclusive, holdout 39 weeks.
"""
import json
import sys

import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter

path = sys.argv[1]
df = pd.read_csv(path, sep=r"\s+", header=None, names=["cust", "sample", "date", "cds", "dollars"], dtype={"cust": str})
df["date"] = pd.to_datetime(df["date"].astype(str), format="%Y%m%d")
end = pd.Timestamp("1997-09-30")
days = df.groupby(["cust", "date"], as_index=False)["dollars"].sum()
cal = days[days["date"] <= end]
rows = []
for cust, g in cal.groupby("cust"):
    g = g.sort_values("date")
    first, last = g["date"].iloc[0], g["date"].iloc[-1]
    x = len(g) - 1
    rows.append({
        "user_id": cust,
        "frequency": x,
        "recency": (last - first).days / 7.0,
        "T": (end - first).days / 7.0,
        "monetary": g["dollars"].iloc[1:].mean() if x > 0 else 0.0,
    })
s = pd.DataFrame(rows)
bg = BetaGeoFitter(penalizer_coef=0.0)
bg.fit(s["frequency"], s["recency"], s["T"], tol=1e-10)
rep = s[s["frequency"] > 0]
gg = GammaGammaFitter(penalizer_coef=0.0)
gg.fit(rep["frequency"], rep["monetary"])
s["p_alive"] = bg.conditional_probability_alive(s["frequency"], s["recency"], s["T"])
s["expected_purchases"] = bg.conditional_expected_number_of_purchases_up_to_time(39, s["frequency"], s["recency"], s["T"])
s["expected_order_value"] = gg.conditional_expected_average_profit(s["frequency"], s["monetary"])
out = {
    "source": "lifetimes " + __import__("lifetimes").__version__,
    "bgnbd": {k: float(v) for k, v in bg.params_.items()},

    "gamma_gamma": {k: float(v) for k, v in gg.params_.items()},
    "customers": [
        [r.user_id, int(r.frequency), round(float(r.p_alive), 12), round(float(r.expected_purchases), 12), round(float(r.expected_order_value), 10)]
        for r in s.itertuples()
    ],
}
json.dump(out, sys.stdout, separators=(",", ":"))
