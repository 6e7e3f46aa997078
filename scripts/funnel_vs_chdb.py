#!/usr/bin/env python3
"""Compare shoplens funnels with ClickHouse's windowFunnel (through chDB), rerunnably.

1. The hand-checked cases in crates/engine/tests/fixtures/window_funnel_cases.json: each expected
   level must equal chDB's in every mode (the Rust tests check shoplens against the same file).
2. Generated Taobao-layout logs (seeded; dense timestamps so ties, repeats, out-of-order steps and
   window edges are common): ingested with `shoplens ingest --preset taobao`, then
   - per-user levels from `shoplens sql "SELECT user_id, window_funnel(...)"` and
   - per-step users from `shoplens funnel --steps ... --format json`
   must equal chDB's windowFunnel on the same CSV, in each mode.

Usage: python scripts/funnel_vs_chdb.py [--shoplens PATH] [--users N] [--seeds 1,2,3]
Needs: pip install chdb (4.4, ClickHouse 26.9). Exit status 1 on any difference.
"""
import argparse, json, os, random, subprocess, sys, tempfile

import chdb

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODES = [("default", ""), ("strict-order", ", 'strict_order'"), ("strict-increase", ", 'strict_increase'")]
STEPS = ["product_view", "add_to_cart", "order"]
RAW = {"product_view": "pv", "add_to_cart": "cart", "order": "buy", "favorite": "fav"}


def chdb_fixture_check():
    f = json.load(open(os.path.join(ROOT, "crates/engine/tests/fixtures/window_funnel_cases.json")))
    bad = 0
    for c in f["cases"]:
        vals = ",".join(f"({t},'{e}')" for t, e in c["rows"])
        for key, arg in [("default", ""), ("strict_order", ", 'strict_order'"), ("strict_increase", ", 'strict_increase'")]:
            q = (f"SELECT windowFunnel({f['window']}{arg})(toDateTime(t, 'UTC'), e = 'pv', e = 'cart', e = 'buy') "
                 f"FROM values('t UInt32, e String', {vals})")
            got = int(chdb.query(q, "CSV").data().strip())
            if got != c[key]:
                bad += 1
                print(f"fixture {c['name']} {key}: chDB {got}, expected {c[key]}")
    print(f"fixtures: {len(f['cases'])} cases x 3 modes, {bad} differences")
    return bad


def generate(path, users, seed):
    rng = random.Random(seed)
    with open(path, "w") as out:
        for u in range(1, users + 1):
            t = 1_511_539_200 + rng.randrange(0, 86_400)
            for _ in range(rng.randrange(1, 40)):
                # Small steps (many equal seconds) and occasional jumps across the 24 h window.
                t += rng.choice([0, 0, 1, 5, 60, 600, 3_600, 20_000, 43_200, 86_400, 86_401])
                b = rng.choices(["pv", "cart", "buy", "fav"], weights=[50, 25, 15, 10])[0]
                out.write(f"{u},{rng.randrange(1, 50)},{rng.randrange(1, 9)},{b},{t}\n")


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stderr}")
    return p.stdout


def chdb_levels(csv, arg):
    q = (f"SELECT toString(u), windowFunnel(86400{arg})(toDateTime(t, 'UTC'), b = 'pv', b = 'cart', b = 'buy') "
         f"FROM file('{csv}', CSV, 'u UInt64, i UInt64, c UInt64, b String, t UInt32') GROUP BY u")
    return {l.split(",")[0].strip('"'): int(l.split(",")[1]) for l in chdb.query(q, "CSV").data().split("\n") if l}


def compare_log(shoplens, users, seed, given=None):
    bad = 0
    with tempfile.TemporaryDirectory() as d:
        csv = given or os.path.join(d, "log.csv")
        ws = os.path.join(d, "ws")
        if not given:
            generate(csv, users, seed)
        run([shoplens, "--workspace", ws, "-q", "ingest", "--preset", "taobao", csv])
        for mode, arg in MODES:
            want = chdb_levels(csv, arg)
            conds = ", ".join(f"event = '{s}'" for s in STEPS)
            out = run([shoplens, "--workspace", ws, "--format", "csv", "sql",
                       f"SELECT user_id, window_funnel(86400, '{mode}', ts, {conds}) AS level FROM events GROUP BY user_id"])
            got = {l.split(",")[0]: int(l.split(",")[1]) for l in out.strip().split("\n")[1:]}
            diff = [u for u in want if got.get(u) != want[u]]
            if diff or len(got) != len(want):
                bad += 1
                print(f"seed {seed} {mode}: {len(diff)} users differ, e.g. {[(u, got.get(u), want[u]) for u in diff[:5]]}")
            report = json.loads(run([shoplens, "--workspace", ws, "--format", "json", "funnel",
                                     "--steps", ",".join(STEPS), "--window", "24h", "--mode", mode]))
            steps = [s["users"] for s in report["steps"]]
            want_steps = [sum(1 for l in want.values() if l >= k) for k in range(1, 4)]
            if steps != want_steps or report["users_total"] != len(want):
                bad += 1
                print(f"seed {seed} {mode}: funnel {report['users_total']} {steps}, chDB {len(want)} {want_steps}")
            print(f"seed {seed} {mode:>15}: {len(want)} users, levels {'equal' if not diff else 'DIFFER'}, steps {want_steps}")
    return bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoplens", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "shoplens"))
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--csv", action="append", default=[],
                    help="also compare on this Taobao-layout CSV (repeatable); default: the taobao sample in ../shared/data")
    a = ap.parse_args()
    bad = chdb_fixture_check()
    sample = os.path.join(ROOT, "..", "shared", "data", "taobao_sample", "UserBehavior_head_sample.csv")
    for c in a.csv or ([sample] if os.path.exists(sample) else []):
        bad += compare_log(a.shoplens, 0, os.path.basename(c), os.path.abspath(c))
    for s in a.seeds.split(","):
        bad += compare_log(a.shoplens, a.users, int(s))
    print("all equal" if bad == 0 else f"{bad} differences")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
