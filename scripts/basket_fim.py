"""Reference association rules from pyfim (Borgelt's C implementation of FP-growth/apriori).

Writes crates/engine/tests/fixtures/basket_rules_fim.json.gz: for each data set and threshold set,
the number of baskets and every single-consequent rule (antecedent, consequent, support, confidence,
lift as pyfim reports them).

Baskets are built here from the raw files, independently of shoplens:
- groceries: one basket per line, items comma-separated and trimmed;
- online retail: one basket per InvoiceNo, the distinct StockCodes of its lines with Quantity > 0.

Run from the repository root with pyfim installed:  python scripts/basket_fim.py
"""

import csv
import gzip
import io
import json
from collections import defaultdict

import fim

DATA = "../shared/data"


def groceries():
    with open(f"{DATA}/groceries/groceries.csv", encoding="utf-8") as f:
        out = []
        for line in f:
            items = sorted({x.strip() for x in line.rstrip("\r\n").split(",") if x.strip()})
            if items:
                out.append(items)
        return out


def online_retail():
    baskets = defaultdict(set)
    with gzip.open(f"{DATA}/online_retail/online_retail.csv.gz", "rt", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if int(row["Quantity"]) > 0:
                baskets[row["InvoiceNo"]].add(row["StockCode"])
    return [sorted(b) for b in baskets.values() if b]


def rules(tracts, supp, conf, zmax=10):
    # supp and conf in percent; zmin=2: no rules with an empty antecedent; mode "o": rule support
    # is the support of antecedent ∪ consequent (arules' definition), not of the antecedent alone.
    found = fim.arules(tracts, supp=supp * 100, conf=conf * 100, zmin=2, zmax=zmax, report="scl", mode="o")
    out = []
    for head, body, s, c, l in found:
        out.append({"antecedent": sorted(body), "consequent": [head], "support": s, "confidence": c, "lift": l})
    out.sort(key=lambda r: (r["antecedent"], r["consequent"]))
    return out


def main():
    sets = []
    g = groceries()
    for supp, conf in [(0.001, 0.5), (0.002, 0.3), (0.01, 0.1)]:
        sets.append({"data": "groceries", "min_support": supp, "min_confidence": conf, "baskets": len(g), "rules": rules(g, supp, conf)})
    r = online_retail()
    for supp, conf in [(0.01, 0.5), (0.02, 0.2)]:
        sets.append({"data": "online_retail", "min_support": supp, "min_confidence": conf, "baskets": len(r), "rules": rules(r, supp, conf)})
    for s in sets:
        print(s["data"], s["min_support"], s["min_confidence"], s["baskets"], "baskets", len(s["rules"]), "rules")
    raw = json.dumps(sets, separators=(",", ":")).encode()
    with open("crates/engine/tests/fixtures/basket_rules_fim.json.gz", "wb") as f:
        # mtime 0: the same input gives the same bytes.
        with gzip.GzipFile(fileobj=f, mode="wb", mtime=0) as z:
            z.write(raw)


if __name__ == "__main__":
    main()
