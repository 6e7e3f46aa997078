//! `shoplens bench baskets`: association rules beside pyfim and mlxtend.

use super::*;

pub(super) fn baskets_bench(
    g: &Global,
    b: &BasketsBench,
    rt: &Runtime,
    out: &mut dyn Write,
) -> Result<()> {
    use shoplens_engine::goods::baskets::{BasketSpec, load};
    use shoplens_engine::models::baskets::{self as mb, Baskets, Threshold};
    std::fs::create_dir_all(&b.peers.dir)
        .with_context(|| format!("creating {}", b.peers.dir.display()))?;
    let mut sets: Vec<(String, Baskets, Threshold)> = Vec::new();
    note(g, &format!("generating {} baskets …", b.baskets));
    sets.push((
        format!("synthetic {}k", b.baskets / 1000),
        mb::generate(b.baskets, b.items, 42),
        Threshold::parse(&b.support).map_err(anyhow::Error::msg)?,
    ));
    let ws = online_retail_ws(&b.peers.dir, &b.online_retail)?;
    let t = Threshold::parse(&b.online_retail_support).map_err(anyhow::Error::msg)?;
    let loaded = rt.block_on(load(&ws, &BasketSpec::new(t, t)))?;
    sets.push(("online retail".into(), loaded.baskets, t));
    let mut rows: Vec<Value> = Vec::new();
    for (name, baskets, t) in &sets {
        let min = t.min_count(baskets.len() as u64);
        // Reset the peak-memory mark (Linux), so the figure is the mining's, not the ingest's.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let before = status_mb("VmRSS:");
        let (mut times, found) = timed(b.peers.runs, || {
            Ok(mb::frequent_itemsets(baskets, min, usize::MAX))
        })?;
        let f = figure(
            "shoplens",
            "fp-growth",
            baskets.len() as u64,
            0.0,
            &mut times,
        );
        rows.push(serde_json::json!({"tool": "shoplens", "set": name, "baskets": baskets.len(), "min_count": min,
            "itemsets": found.len(), "best_s": f.best_s, "median_s": f.median_s,
            "peak_rss_mb": peak_rss_mb(), "baskets_mb": baskets.heap_bytes() as f64 / 1e6,
            "mining_mb": peak_rss_mb().zip(before).map(|(p, b)| p - b)}));
        drop(found);
        let file = b.peers.dir.join("baskets.txt");
        let mut text = String::with_capacity(baskets.len() * 24);
        for k in 0..baskets.len() {
            let line: Vec<String> = baskets.get(k).iter().map(u32::to_string).collect();
            text.push_str(&line.join(","));
            text.push('\n');
        }
        std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
        let script = r#"
import sys, time, json
def status(key):
    for l in open("/proc/self/status"):
        if l.startswith(key):
            return int(l.split()[1]) / 1024
tool, path, min_count, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
tracts = [l.rstrip("\n").split(",") for l in open(path)]
base = status("VmRSS:")
times, n = [], 0
for _ in range(runs):
    if tool == "pyfim":
        from fim import fpgrowth
        t = time.perf_counter()
        n = len(fpgrowth(tracts, target="s", supp=-min_count, zmin=1, report="a"))
    else:
        import pandas as pd
        from mlxtend.preprocessing import TransactionEncoder
        from mlxtend.frequent_patterns import fpgrowth
        te = TransactionEncoder()
        m = te.fit(tracts).transform(tracts, sparse=True)
        df = pd.DataFrame.sparse.from_spmatrix(m, columns=te.columns_)
        t = time.perf_counter()
        n = len(fpgrowth(df, min_support=min_count / len(tracts) - 1e-12, use_colnames=False))
    times.append(time.perf_counter() - t)
peak = status("VmHWM:")
print(json.dumps({"times": times, "itemsets": n, "peak_rss_mb": peak, "input_rss_mb": base}))
"#;
        for tool in ["pyfim", "mlxtend"] {
            if tool == "mlxtend" && (b.mlxtend_max == 0 || baskets.len() > b.mlxtend_max) {
                continue;
            }
            note(g, &format!("{tool} on {name} …"));
            let runs = if tool == "mlxtend" { 1 } else { b.peers.runs };
            match run_python(
                &b.peers.python,
                script,
                &[
                    tool,
                    &file.display().to_string(),
                    &min.to_string(),
                    &runs.to_string(),
                ],
            ) {
                Ok(o) => {
                    let v: Value = serde_json::from_str(o.trim())?;
                    let mut t: Vec<f64> = v["times"]
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_f64).collect())
                        .unwrap_or_default();
                    if !t.is_empty() {
                        let f = figure(tool, "fp-growth", baskets.len() as u64, 0.0, &mut t);
                        rows.push(serde_json::json!({"tool": tool, "set": name, "baskets": baskets.len(), "min_count": min,
                            "itemsets": v["itemsets"], "best_s": f.best_s, "median_s": f.median_s,
                            "peak_rss_mb": v["peak_rss_mb"], "baskets_mb": v["input_rss_mb"],
                            "mining_mb": v["peak_rss_mb"].as_f64().zip(v["input_rss_mb"].as_f64()).map(|(p, b)| p - b)}));
                    }
                }
                Err(e) => note(g, &format!("{tool} skipped: {e}")),
            }
        }
        let _ = std::fs::remove_file(&file);
    }
    if g.format == Format::Json {
        return write_json(
            out,
            &serde_json::json!({"bench": "baskets", "figures": rows}),
        );
    }
    let mut t = Frame::new(&[
        "tool",
        "set",
        "baskets",
        "min count",
        "itemsets",
        "best s",
        "median s",
        "peak RSS MB",
        "mining MB",
    ]);
    for r in &rows {
        let mb = |v: &Value| {
            v.as_f64()
                .map_or(Value::Null, |x| Value::from(format!("{x:.0}")))
        };
        t.push(vec![
            r["tool"].clone(),
            r["set"].clone(),
            r["baskets"].clone(),
            r["min_count"].clone(),
            r["itemsets"].clone(),
            Value::from(format!("{:.3}", r["best_s"].as_f64().unwrap_or(f64::NAN))),
            Value::from(format!("{:.3}", r["median_s"].as_f64().unwrap_or(f64::NAN))),
            mb(&r["peak_rss_mb"]),
            mb(&r["mining_mb"]),
        ]);
    }
    t.write(out, g.output())
}

/// The online-retail workspace of the benchmarks (ingested once into the bench folder).
pub(super) fn online_retail_ws(dir: &Path, file: &Path) -> Result<Workspace> {
    let ws_dir = dir.join("online-retail-ws");
    if !ws_dir.exists() {
        let ws = Workspace::open(&ws_dir)?;
        let p = presets::preset("online-retail")?;
        ingest::ingest(
            &ws,
            &[file.to_path_buf()],
            &p,
            &IngestOptions::default(),
            &|_| {},
        )?;
    }
    Ok(Workspace::open_existing(&ws_dir)?)
}

/// Writes (user, item, value) triples as three little-endian columns (u32, u32, f32).
pub(super) fn write_triples(path: &Path, t: &[(u32, u32, f32)]) -> Result<()> {
    let mut buf = Vec::with_capacity(t.len() * 12);
    for (u, _, _) in t {
        buf.extend_from_slice(&u.to_le_bytes());
    }
    for (_, i, _) in t {
        buf.extend_from_slice(&i.to_le_bytes());
    }
    for (_, _, w) in t {
        buf.extend_from_slice(&w.to_le_bytes());
    }
    std::fs::write(path, buf).with_context(|| format!("writing {}", path.display()))
}
