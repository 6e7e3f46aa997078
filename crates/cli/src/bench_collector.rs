//! `shoplens bench collector`: sustained batched tracking with durability on, from a load
//! generator on loopback, and the disk's own fsync rate beside it.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Value, json};
use shoplens_engine::Workspace;
use shoplens_server::ServeConfig;
use tokio::runtime::Runtime;

use crate::Global;
use crate::render::{Format, Frame, write_json};

#[derive(Debug, Args)]
pub(crate) struct CollectorBench {
    /// Events to send.
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Events per /v1/batch request.
    #[arg(long, default_value_t = 250)]
    batch: usize,
    /// Client threads (connections) sending at once.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Directory for the workspace (its disk is what is measured); a fresh subdirectory is used.
    #[arg(long, default_value = "bench-data/collector")]
    dir: PathBuf,
}

/// A quantile of sorted latencies (the project's one definition, linear interpolation).
pub(crate) fn percentile(sorted: &[f64], q: f64) -> f64 {
    shoplens_engine::models::stats::quantile(sorted, q).unwrap_or(f64::NAN)
}

/// fdatasync calls per second on small appends in `dir` for about two seconds: the disk's limit
/// on group commits.
fn fsync_rate(dir: &std::path::Path) -> Result<f64> {
    let path = dir.join("fsync-probe");
    let mut f = std::fs::File::create(&path)?;
    let block = vec![7u8; 4096];
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < Duration::from_secs(2) {
        f.write_all(&block)?;
        f.sync_data()?;
        n += 1;
    }
    let rate = n as f64 / t.elapsed().as_secs_f64();
    drop(f);
    std::fs::remove_file(&path)?;
    Ok(rate)
}

/// The server on a free loopback port in this process: its URL, the switch that stops it, and
/// its task.
pub(crate) fn serve_in_process(
    rt: &Runtime,
    ws: Workspace,
    cfg: ServeConfig,
) -> Result<(
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<shoplens_server::Result<()>>,
)> {
    let listener = rt.block_on(shoplens_server::bind(([127, 0, 0, 1], 0).into()))?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(shoplens_server::serve(ws, cfg, listener, async move {
        let _ = stop_rx.await;
    }));
    Ok((url, stop_tx, server))
}

pub(crate) fn collector_bench(
    g: &Global,
    b: &CollectorBench,
    rt: &Runtime,
    out: &mut dyn Write,
) -> Result<()> {
    if b.batch == 0 || b.batch > 2500 || b.clients == 0 || b.events < b.batch {
        bail!("--batch must be 1–2500, --clients ≥ 1 and --events ≥ --batch");
    }
    let root = b.dir.join(format!("run-{}", std::process::id()));
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let ws = Workspace::open(&root)?;
    let key = "bench-key".to_string();
    let cfg = ServeConfig {
        write_keys: vec![key.clone()],
        read_token: "bench-read-token-0123456789abcdef".into(),
        rate_limit: 0,
        ..ServeConfig::default()
    };
    let (url, stop_tx, server) = serve_in_process(rt, ws, cfg)?;
    // Bodies built before the clock starts: the generator should measure the server.
    let batches = b.events / b.batch;
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..batches)
            .map(|i| {
                let msgs: Vec<Value> = (i * b.batch..(i + 1) * b.batch)
                    .map(|n| {
                        json!({"type": "track", "userId": format!("u{}", n % 50_000),
                            "event": "Product Viewed", "messageId": format!("bench-{n}"),
                            "timestamp": "2026-11-26T10:00:00.000Z",
                            "properties": {"product_id": format!("p{}", n % 5_000), "price": 19.99, "category": "shoes"},
                            "context": {"device": {"type": "mobile"}, "campaign": {"source": "search"}}})
                    })
                    .collect();
                json!({"batch": msgs, "writeKey": key, "sentAt": "2026-11-26T10:00:01.000Z"})
                    .to_string()
                    .into_bytes()
            })
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let threads: Vec<_> = (0..b.clients)
        .map(|_| {
            let (bodies, next, url) = (Arc::clone(&bodies), Arc::clone(&next), url.clone());
            std::thread::spawn(move || -> Result<Vec<f64>> {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                let mut lat = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= bodies.len() {
                        return Ok(lat);
                    }
                    let s = Instant::now();
                    let mut r = agent
                        .post(format!("{url}/v1/batch"))
                        .header("Content-Type", "application/json")
                        .send(&bodies[i][..])?;
                    let _ = r.body_mut().read_to_string()?;
                    if r.status().as_u16() != 200 {
                        bail!("batch {i} answered {}", r.status());
                    }
                    lat.push(s.elapsed().as_secs_f64() * 1000.0);
                }
            })
        })
        .collect();
    let mut lat = Vec::new();
    for th in threads {
        lat.extend(
            th.join()
                .map_err(|_| anyhow::anyhow!("a client thread panicked"))??,
        );
    }
    let secs = t.elapsed().as_secs_f64();
    // The server's own fsync figures.
    let metrics = ureq::get(format!("{url}/metrics"))
        .header("Authorization", "Bearer bench-read-token-0123456789abcdef")
        .call()?
        .body_mut()
        .read_to_string()?;
    let metric = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(f64::NAN)
    };
    let syncs = metric("shoplens_wal_fsync_seconds_count ");
    let sync_secs = metric("shoplens_wal_fsync_seconds_sum ");
    let synced = metric("shoplens_wal_fsync_batch_messages_total ");
    let _ = stop_tx.send(());
    rt.block_on(server)??;
    let disk = fsync_rate(&root)?;
    std::fs::remove_dir_all(&root).ok();
    lat.sort_by(f64::total_cmp);
    let sent = batches * b.batch;
    let rate = sent as f64 / secs;
    let v = json!({
        "events": sent, "batch": b.batch, "clients": b.clients, "seconds": secs,
        "events_per_second": rate, "p50_ms": percentile(&lat, 0.5), "p99_ms": percentile(&lat, 0.99),
        "fsyncs": syncs, "mean_fsync_ms": sync_secs / syncs * 1000.0,
        "events_per_fsync": synced / syncs, "fsyncs_per_second": syncs / secs,
        "disk_fsyncs_per_second": disk,
    });
    if g.format == Format::Json {
        return write_json(out, &v);
    }
    let mut f = Frame::new(&["measure", "value"]);
    for (k, val) in [
        ("events sent (batched, durable)", format!("{sent}")),
        (
            "events per request / clients",
            format!("{} / {}", b.batch, b.clients),
        ),
        ("events/s sustained", format!("{rate:.0}")),
        (
            "request latency p50 / p99",
            format!(
                "{:.2} ms / {:.2} ms",
                percentile(&lat, 0.5),
                percentile(&lat, 0.99)
            ),
        ),
        (
            "group commits (fdatasync)",
            format!(
                "{syncs:.0}, {:.0}/s, mean {:.2} ms",
                syncs / secs,
                sync_secs / syncs * 1000.0
            ),
        ),
        ("events per fsync (mean)", format!("{:.0}", synced / syncs)),
        (
            "disk alone: 4 KB append + fdatasync",
            format!("{disk:.0}/s"),
        ),
    ] {
        f.push(vec![Value::from(k), Value::from(val)]);
    }
    f.write(out, g.output())
}
