//! `shoplens bench recommend`: the recommenders beside implicit.

use super::*;

pub(super) fn recommend_bench(
    g: &Global,
    b: &RecommendBench,
    rt: &Runtime,
    out: &mut dyn Write,
) -> Result<()> {
    use shoplens_engine::customers::recommend::{RecommendSpec, split_data};
    use shoplens_engine::models::recommend::{
        self as mr, Als, AlsParams, Interactions, ItemItem, list_metrics, top_items,
    };
    std::fs::create_dir_all(&b.peers.dir)
        .with_context(|| format!("creating {}", b.peers.dir.display()))?;
    let ws = online_retail_ws(&b.peers.dir, &b.online_retail)?;
    let tz = shoplens_engine::calendar::zone(&ws.manifest()?.settings);
    let Some(split) = calendar::parse_instant(&b.split_at, &tz) else {
        bail!("--split-at `{}` is not a date", b.split_at);
    };
    let sd = rt.block_on(split_data(&ws, &RecommendSpec::default(), split))?;
    note(
        g,
        &format!("generating {} users × {} items …", b.users, b.items),
    );
    let synthetic = mr::generate(b.users, b.items, b.per_user, 42);
    let params = AlsParams {
        factors: b.factors,
        iterations: b.iterations,
        ..AlsParams::default()
    };
    let triples = |m: &Interactions| -> Vec<(u32, u32, f32)> {
        (0..m.n_users())
            .flat_map(|u| {
                let (items, w) = m.user(u);
                items
                    .iter()
                    .zip(w)
                    .map(move |(&i, &w)| (u as u32, i, 1.0 + params.alpha * w))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let mut rows: Vec<Value> = Vec::new();
    let script = r#"
import sys, time, json
import numpy as np, scipy.sparse as sp
import implicit
from implicit.als import AlternatingLeastSquares
from implicit.nearest_neighbours import CosineRecommender
def triples(path, shape):
    a = np.fromfile(path, dtype="<u4")
    n = len(a) // 3
    u, i, w = a[:n], a[n:2 * n], a[2 * n:].view("<f4")
    return sp.csr_matrix((w, (u, i)), shape=shape, dtype=np.float32)
train_path, n_users, n_items, factors, iterations, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
shape = (n_users, n_items)
conf = triples(train_path, shape)
out = {"als": [], "cosine": []}
for _ in range(runs):
    m = AlternatingLeastSquares(factors=factors, regularization=0.01, alpha=1.0, iterations=iterations, use_cg=True, calculate_training_loss=False, random_state=42)
    t = time.perf_counter(); m.fit(conf, show_progress=False); out["als"].append(time.perf_counter() - t)
    binary = conf.copy(); binary.data[:] = 1
    c = CosineRecommender(K=50)
    t = time.perf_counter(); c.fit(binary, show_progress=False); out["cosine"].append(time.perf_counter() - t)
if len(sys.argv) > 7:
    bought, test = triples(sys.argv[7], shape), triples(sys.argv[8], shape)
    users = np.unique(test.nonzero()[0])
    for name, model in [("als", m), ("cosine", c)]:
        ids, _ = model.recommend(users, bought[users], N=10, filter_already_liked_items=True)
        rec = [len(set(ids[k]) & set(test[u].indices)) / len(test[u].indices) for k, u in enumerate(users)]
        out[name + "_recall"] = float(np.mean(rec))
    out["test_users"] = int(len(users))
print(json.dumps(out))
"#;
    for (name, m, test) in [
        ("online retail", &sd.train, Some(&sd)),
        ("synthetic", &synthetic, None),
    ] {
        note(g, &format!("shoplens on {name} …"));
        let runs = if test.is_some() { b.peers.runs } else { 1 };
        let (mut t_als, als) = timed(runs, || Ok(Als::fit(m, &params)))?;
        let (mut t_ii, ii) = timed(runs, || Ok(ItemItem::fit(m, 50, 0.5)))?;
        let (mut als_recall, mut ii_recall) = (None, None);
        if let Some(sd) = test {
            let mut buf = vec![0f32; m.n_items()];
            let (mut ra, mut ri) = (0.0, 0.0);
            for (u, rel) in &sd.test {
                let ex = sd.bought.user(*u as usize).0;
                als.scores(*u as usize, &mut buf);
                let l: Vec<u32> = top_items(&buf, ex, 10).into_iter().map(|x| x.0).collect();
                ra += list_metrics(&l, rel, 10).recall;
                // Scored as implicit scores: each held item weighted by its confidence.
                let (held, w) = m.user(*u as usize);
                let conf: Vec<f32> = w.iter().map(|&w| 1.0 + params.alpha * w).collect();
                ii.scores_weighted(held, &conf, &mut buf);
                let l: Vec<u32> = top_items(&buf, ex, 10).into_iter().map(|x| x.0).collect();
                ri += list_metrics(&l, rel, 10).recall;
            }
            als_recall = Some(ra / sd.test.len() as f64);
            ii_recall = Some(ri / sd.test.len() as f64);
        }
        let fa = figure("shoplens", "als", m.nnz() as u64, 0.0, &mut t_als);
        let fi = figure("shoplens", "item-item", m.nnz() as u64, 0.0, &mut t_ii);
        rows.push(serde_json::json!({"tool": "shoplens", "set": name, "task": "ALS", "users": m.n_users(), "items": m.n_items(),
            "interactions": m.nnz(), "best_s": fa.best_s, "median_s": fa.median_s, "recall_at_10": als_recall}));
        rows.push(serde_json::json!({"tool": "shoplens", "set": name, "task": "item-item (cosine, K=50)", "users": m.n_users(), "items": m.n_items(),
            "interactions": m.nnz(), "best_s": fi.best_s, "median_s": fi.median_s, "recall_at_10": ii_recall}));
        drop((als, ii));
        let train_file = b.peers.dir.join("train.bin");
        write_triples(&train_file, &triples(m))?;
        let mut args = vec![
            train_file.display().to_string(),
            m.n_users().to_string(),
            m.n_items().to_string(),
            b.factors.to_string(),
            b.iterations.to_string(),
            runs.to_string(),
        ];
        if let Some(sd) = test {
            let (bf, tf) = (b.peers.dir.join("bought.bin"), b.peers.dir.join("test.bin"));
            write_triples(&bf, &triples(&sd.bought))?;
            let t: Vec<(u32, u32, f32)> = sd
                .test
                .iter()
                .flat_map(|(u, rel)| rel.iter().map(move |&i| (*u, i, 1.0)))
                .collect();
            write_triples(&tf, &t)?;
            args.push(bf.display().to_string());
            args.push(tf.display().to_string());
        }
        note(g, &format!("implicit on {name} …"));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        match run_python(&b.peers.python, script, &argv) {
            Ok(o) => {
                let v: Value = serde_json::from_str(o.trim())?;
                for (key, task, recall) in [
                    ("als", "ALS", "als_recall"),
                    ("cosine", "item-item (cosine, K=50)", "cosine_recall"),
                ] {
                    let mut t: Vec<f64> = v[key]
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_f64).collect())
                        .unwrap_or_default();
                    if t.is_empty() {
                        continue;
                    }
                    let f = figure("implicit", task, m.nnz() as u64, 0.0, &mut t);
                    rows.push(serde_json::json!({"tool": "implicit", "set": name, "task": task, "users": m.n_users(), "items": m.n_items(),
                        "interactions": m.nnz(), "best_s": f.best_s, "median_s": f.median_s, "recall_at_10": v[recall]}));
                }
            }
            Err(e) => note(g, &format!("implicit skipped: {e}")),
        }
        for f in ["train.bin", "bought.bin", "test.bin"] {
            let _ = std::fs::remove_file(b.peers.dir.join(f));
        }
    }
    if g.format == Format::Json {
        return write_json(
            out,
            &serde_json::json!({"bench": "recommend", "figures": rows}),
        );
    }
    let mut t = Frame::new(&[
        "tool",
        "set",
        "task",
        "interactions",
        "best s",
        "median s",
        "recall@10",
    ]);
    for r in &rows {
        t.push(vec![
            r["tool"].clone(),
            r["set"].clone(),
            r["task"].clone(),
            r["interactions"].clone(),
            Value::from(format!("{:.3}", r["best_s"].as_f64().unwrap_or(f64::NAN))),
            Value::from(format!("{:.3}", r["median_s"].as_f64().unwrap_or(f64::NAN))),
            r["recall_at_10"]
                .as_f64()
                .map_or(Value::Null, |x| Value::from(format!("{x:.4}"))),
        ]);
    }
    t.write(out, g.output())
}
