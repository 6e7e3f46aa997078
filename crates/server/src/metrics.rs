//! Counters of the collector, exposed at /metrics in Prometheus's text format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (seconds) of the fsync latency histogram.
const FSYNC_BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0,
];

/// Everything counted.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    pub(crate) accepted: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
    pub(crate) wal_bytes: AtomicU64,
    fsync: Mutex<Fsync>,
    compaction: Mutex<Compaction>,
}

#[derive(Debug, Default)]
struct Fsync {
    count: u64,
    seconds: f64,
    buckets: [u64; FSYNC_BUCKETS.len()],
    messages: u64,
    bytes: u64,
    max_messages: u64,
}

#[derive(Debug, Default)]
struct Compaction {
    runs: u64,
    messages: u64,
    seconds: f64,
}

impl Metrics {
    /// Counts a request to `endpoint` answered with `status`.
    pub(crate) fn request(&self, endpoint: &str, status: u16) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((endpoint.to_string(), status)).or_default() += 1;
        }
    }

    /// Records one group commit: its fsync time, messages and bytes.
    pub(crate) fn fsync(&self, seconds: f64, messages: u64, bytes: u64) {
        if let Ok(mut f) = self.fsync.lock() {
            f.count += 1;
            f.seconds += seconds;
            for (b, le) in f.buckets.iter_mut().zip(FSYNC_BUCKETS) {
                if seconds <= le {
                    *b += 1;
                }
            }
            f.messages += messages;
            f.bytes += bytes;
            f.max_messages = f.max_messages.max(messages);
        }
    }

    /// Records one compaction.
    pub(crate) fn compacted(&self, messages: u64, seconds: f64) {
        if let Ok(mut c) = self.compaction.lock() {
            c.runs += 1;
            c.messages += messages;
            c.seconds += seconds;
        }
    }

    /// The Prometheus text exposition; `uncompacted` and `lag_seconds` describe the log.
    pub(crate) fn render(&self, uncompacted: u64, lag_seconds: f64) -> String {
        let mut o = String::new();
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        counter(
            "shoplens_events_accepted_total",
            "Messages stored (acknowledged durable).",
            self.accepted.load(Ordering::Relaxed),
        );
        counter(
            "shoplens_events_rejected_total",
            "Messages refused and set aside in the quarantine.",
            self.rejected.load(Ordering::Relaxed),
        );
        counter(
            "shoplens_events_duplicate_total",
            "Messages whose messageId was already stored (answered, not stored again).",
            self.duplicates.load(Ordering::Relaxed),
        );
        counter(
            "shoplens_requests_rate_limited_total",
            "Requests refused by a write key's rate limit.",
            self.rate_limited.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            o,
            "# HELP shoplens_requests_total HTTP requests by endpoint and status.\n# TYPE shoplens_requests_total counter"
        );
        if let Ok(m) = self.requests.lock() {
            for ((e, s), n) in m.iter() {
                let _ = writeln!(
                    o,
                    "shoplens_requests_total{{endpoint=\"{e}\",status=\"{s}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            o,
            "# HELP shoplens_wal_bytes Bytes in the write-ahead log.\n# TYPE shoplens_wal_bytes gauge\nshoplens_wal_bytes {}",
            self.wal_bytes.load(Ordering::Relaxed)
        );
        if let Ok(f) = self.fsync.lock() {
            let _ = writeln!(
                o,
                "# HELP shoplens_wal_fsync_seconds Latency of the log's fdatasync (one per group commit).\n# TYPE shoplens_wal_fsync_seconds histogram"
            );
            for (b, le) in f.buckets.iter().zip(FSYNC_BUCKETS) {
                let _ = writeln!(o, "shoplens_wal_fsync_seconds_bucket{{le=\"{le}\"}} {b}");
            }
            let _ = writeln!(
                o,
                "shoplens_wal_fsync_seconds_bucket{{le=\"+Inf\"}} {}\nshoplens_wal_fsync_seconds_sum {}\nshoplens_wal_fsync_seconds_count {}",
                f.count, f.seconds, f.count
            );
            let _ = writeln!(
                o,
                "# HELP shoplens_wal_fsync_batch_messages_total Messages made durable by group commits.\n# TYPE shoplens_wal_fsync_batch_messages_total counter\nshoplens_wal_fsync_batch_messages_total {}",
                f.messages
            );
            let _ = writeln!(
                o,
                "# HELP shoplens_wal_fsync_batch_messages_max The most messages one fsync covered.\n# TYPE shoplens_wal_fsync_batch_messages_max gauge\nshoplens_wal_fsync_batch_messages_max {}",
                f.max_messages
            );
            let _ = writeln!(
                o,
                "# HELP shoplens_wal_written_bytes_total Bytes appended to the log.\n# TYPE shoplens_wal_written_bytes_total counter\nshoplens_wal_written_bytes_total {}",
                f.bytes
            );
        }
        if let Ok(c) = self.compaction.lock() {
            let _ = writeln!(
                o,
                "# HELP shoplens_compactions_total Compactions of the log into the tables.\n# TYPE shoplens_compactions_total counter\nshoplens_compactions_total {}\n# HELP shoplens_compacted_messages_total Messages moved from the log into the tables.\n# TYPE shoplens_compacted_messages_total counter\nshoplens_compacted_messages_total {}\n# HELP shoplens_compaction_seconds_total Time spent compacting.\n# TYPE shoplens_compaction_seconds_total counter\nshoplens_compaction_seconds_total {}",
                c.runs, c.messages, c.seconds
            );
        }
        let _ = writeln!(
            o,
            "# HELP shoplens_compaction_lag_messages Durable messages not yet compacted (read from the log by queries).\n# TYPE shoplens_compaction_lag_messages gauge\nshoplens_compaction_lag_messages {uncompacted}\n# HELP shoplens_compaction_lag_seconds Seconds since the last compaction finished.\n# TYPE shoplens_compaction_lag_seconds gauge\nshoplens_compaction_lag_seconds {lag_seconds}"
        );
        o
    }
}
