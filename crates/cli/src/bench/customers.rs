//! `shoplens bench customers`: RFM clusters and CLV fits beside scikit-learn and lifetimes.

use super::*;

pub(super) fn customers_bench(
    g: &Global,
    b: &CustomersBench,
    rt: &Runtime,
    out: &mut dyn Write,
) -> Result<()> {
    use shoplens_engine::customers::clv::{ClvSpec, clv};
    use shoplens_engine::models::clv::{self as m, BgNbd, GammaGamma, Rft};
    use shoplens_engine::models::rfm;
    std::fs::create_dir_all(&b.peers.dir)
        .with_context(|| format!("creating {}", b.peers.dir.display()))?;
    // The CDNOW sample's calibration summaries, through the same path as `shoplens clv`.
    let ws_dir = b.peers.dir.join("cdnow-sample-ws");
    if !ws_dir.exists() {
        let ws = Workspace::open(&ws_dir)?;
        let p = presets::preset("cdnow")?;
        let file = PathBuf::from("../shared/data/cdnow/CDNOW_sample.txt");
        ingest::ingest(&ws, &[file], &p, &IngestOptions::default(), &|_| {})?;
    }
    let ws = Workspace::open_existing(&ws_dir)?;
    let spec = ClvSpec {
        calibration_end: chrono::NaiveDate::from_ymd_opt(1997, 9, 30),
        horizon: 39,
        ..ClvSpec::default()
    };
    let report = rt.block_on(clv(&ws, &spec))?;
    let sample: Vec<Rft> = report
        .customers
        .iter()
        .map(|c| Rft::new(c.frequency, c.recency, c.t))
        .collect();
    let cdnow: Vec<Rft> = (0..1000).flat_map(|_| sample.iter().copied()).collect();
    note(g, &format!("simulating {} customers …", b.customers));
    let truth = BgNbd {
        r: 0.25,
        alpha: 4.0,
        a: 0.8,
        b: 2.5,
    };
    let synthetic = m::simulate(&truth, b.customers, 364, 7.0, 42);
    let mut rows: Vec<Value> = Vec::new();
    for (name, base) in [("cdnow ×1000", &cdnow), ("synthetic", &synthetic)] {
        let (mut times, fit) = timed(b.peers.runs, || Ok(m::fit_bgnbd(base)?))?;
        let f = figure("shoplens", "bgnbd fit", base.len() as u64, 0.0, &mut times);
        let p = fit.params;
        rows.push(serde_json::json!({"tool": "shoplens", "task": format!("BG/NBD {name}"), "customers": base.len(),
            "best_s": f.best_s, "median_s": f.median_s, "params": [p.r, p.alpha, p.a, p.b]}));
        if b.peer_max == 0 || base.len() > b.peer_max {
            continue;
        }
        let file = b.peers.dir.join(format!("bgnbd-{}.f64", base.len()));
        write_columns(
            &file,
            &[
                base.iter().map(|c| f64::from(c.frequency)).collect(),
                base.iter().map(|c| c.recency).collect(),
                base.iter().map(|c| c.t).collect(),
            ],
        )?;
        note(g, &format!("lifetimes on {} customers …", base.len()));
        let script = r#"
import sys, time, json
import numpy as np
from lifetimes import BetaGeoFitter
a = np.fromfile(sys.argv[1], dtype="<f8").reshape(3, -1)
t = time.perf_counter()
bg = BetaGeoFitter().fit(a[0], a[1], a[2])
s = time.perf_counter() - t
p = bg.params_
print(json.dumps({"seconds": s, "params": [p["r"], p["alpha"], p["a"], p["b"]]}))
"#;
        match run_python(&b.peers.python, script, &[&file.display().to_string()]) {
            Ok(o) => {
                let v: Value = serde_json::from_str(o.trim())?;
                let theirs: Vec<f64> = v["params"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_f64).collect())
                    .unwrap_or_default();
                let diff = theirs
                    .iter()
                    .zip([p.r, p.alpha, p.a, p.b])
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
                rows.push(serde_json::json!({"tool": "lifetimes", "task": format!("BG/NBD {name}"), "customers": base.len(),
                    "best_s": v["seconds"], "median_s": v["seconds"], "params": theirs, "max_param_diff": diff}));
            }
            Err(e) => note(g, &format!("lifetimes skipped: {e}")),
        }
        let _ = std::fs::remove_file(&file);
    }
    // k-means on standardised log R, F, M of a synthetic base with Gamma-Gamma spend.
    let base = &synthetic[..b.kmeans.min(synthetic.len())];
    let spend = m::simulate_spend(
        &GammaGamma {
            p: 6.25,
            q: 3.74,
            v: 15.44,
        },
        base,
        43,
    );
    let mut pts: Vec<[f64; 3]> = base
        .iter()
        .zip(&spend)
        .map(|(c, s)| {
            [
                ((c.t - c.recency) * 7.0).ln_1p(),
                f64::from(c.frequency + 1).ln(),
                (s * f64::from(c.frequency + 1)).ln_1p(),
            ]
        })
        .collect();
    rfm::standardise(&mut pts);
    let (mut times, km) = timed(b.peers.runs, || {
        rfm::kmeans(&pts, b.k, 42, 3).context("k-means needs more points than clusters")
    })?;
    let f = figure("shoplens", "kmeans", pts.len() as u64, 0.0, &mut times);
    rows.push(serde_json::json!({"tool": "shoplens", "task": format!("k-means k={} n_init=3", b.k), "customers": pts.len(),
        "best_s": f.best_s, "median_s": f.median_s, "inertia": km.inertia}));
    let file = b.peers.dir.join("kmeans.f64");
    write_columns(
        &file,
        &(0..3)
            .map(|d| pts.iter().map(|p| p[d]).collect())
            .collect::<Vec<_>>(),
    )?;
    let script = r#"
import sys, time, json
import numpy as np
from sklearn.cluster import KMeans
x = np.ascontiguousarray(np.fromfile(sys.argv[1], dtype="<f8").reshape(3, -1).T)
k = int(sys.argv[2])
times = []
for _ in range(int(sys.argv[3])):
    t = time.perf_counter()
    km = KMeans(n_clusters=k, n_init=3, init="k-means++", algorithm="lloyd", random_state=0).fit(x)
    times.append(time.perf_counter() - t)
print(json.dumps({"times": times, "inertia": km.inertia_}))
"#;
    match run_python(
        &b.peers.python,
        script,
        &[
            &file.display().to_string(),
            &b.k.to_string(),
            &b.peers.runs.to_string(),
        ],
    ) {
        Ok(o) => {
            let v: Value = serde_json::from_str(o.trim())?;
            let mut t: Vec<f64> = v["times"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default();
            if !t.is_empty() {
                let f = figure("scikit-learn", "kmeans", pts.len() as u64, 0.0, &mut t);
                rows.push(serde_json::json!({"tool": "scikit-learn", "task": format!("k-means k={} n_init=3", b.k), "customers": pts.len(),
                    "best_s": f.best_s, "median_s": f.median_s, "inertia": v["inertia"]}));
            }
        }
        Err(e) => note(g, &format!("scikit-learn skipped: {e}")),
    }
    let _ = std::fs::remove_file(&file);
    // The whole automatic clustering of `shoplens rfm`: k = 2..8 chosen by silhouette on a
    // sample, then the chosen k fitted on everyone.
    let (mut times, _) = timed(1, || {
        let (_, k) = rfm::choose_k(&pts, &(2..=8).collect::<Vec<_>>(), 42).context("no k")?;
        rfm::kmeans(&pts, k, 42, 3).context("k-means needs more points than clusters")
    })?;
    let f = figure("shoplens", "kmeans auto", pts.len() as u64, 0.0, &mut times);
    rows.push(serde_json::json!({"tool": "shoplens", "task": "rfm clustering (k=2..8 by silhouette)", "customers": pts.len(),
        "best_s": f.best_s, "median_s": f.median_s}));
    if g.format == Format::Json {
        return write_json(
            out,
            &serde_json::json!({"bench": "customers", "figures": rows}),
        );
    }
    let mut t = Frame::new(&["tool", "task", "customers", "best s", "median s", "check"]);
    for r in &rows {
        let check = if let Some(d) = r["max_param_diff"].as_f64() {
            format!("max |Δparam| {d:.1e}")
        } else if let Some(i) = r["inertia"].as_f64() {
            format!("inertia {i:.1}")
        } else if let Some(p) = r["params"].as_array() {
            p.iter()
                .filter_map(Value::as_f64)
                .map(|v| format!("{v:.4}"))
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            String::new()
        };
        t.push(vec![
            r["tool"].clone(),
            r["task"].clone(),
            r["customers"].clone(),
            Value::from(format!("{:.3}", r["best_s"].as_f64().unwrap_or(f64::NAN))),
            Value::from(format!("{:.3}", r["median_s"].as_f64().unwrap_or(f64::NAN))),
            Value::from(check),
        ]);
    }
    t.write(out, g.output())
}
