//! The durable intake: deduplication by messageId, the write-ahead log with group commit, and
//! background compaction into the tables.
//!
//! A request's messages are checked, those not seen before are framed as one log record and
//! queued; one writer thread appends everything queued, calls fdatasync once for the lot (group
//! commit) and then releases every request it covered. A request is answered only after that.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use shoplens_engine::collector::{self, Accepted, Rejected};
use shoplens_engine::storage::wal::{self, WalPosition, WalWriter};
use shoplens_engine::storage::workspace::{Workspace, Writer};
use tokio::sync::watch;

use crate::dedup::{self, DedupBounds, Window};
use crate::metrics::Metrics;
use crate::{Error, Result, now_micros};

#[derive(Debug, Default)]
struct Queue {
    /// messageId keys seen recently (compacted, in the log, or queued), within the bounds.
    seen: Window,
    /// Framed records waiting for the writer.
    pending: Vec<u8>,
    /// Messages in `pending`.
    pending_messages: u64,
    /// Sequence number of the last queued record.
    queued: u64,
    closing: bool,
}

/// State shared by the request handlers, the log writer and the compactor.
#[derive(Debug)]
pub(crate) struct Intake {
    queue: Mutex<Queue>,
    wake: Condvar,
    /// (last durable sequence number, the log failed).
    durable: watch::Sender<(u64, bool)>,
    /// Where the durable log ends.
    durable_at: Mutex<WalPosition>,
    /// Messages durable in the log and not yet compacted.
    pub(crate) uncompacted: AtomicU64,
    pub(crate) metrics: Arc<Metrics>,
    root: PathBuf,
    /// One compaction at a time (the background one and the one at shutdown).
    compacting: Mutex<()>,
}

/// What became of a request's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Messages stored now.
    pub(crate) stored: usize,
    /// Messages already stored earlier (same messageId).
    pub(crate) duplicates: usize,
}

impl Intake {
    /// Opens the log under the workspace (replaying it into the deduplication set) and starts
    /// the writer thread.
    pub(crate) fn start(
        ws: &Workspace,
        metrics: Arc<Metrics>,
        bounds: DedupBounds,
    ) -> Result<(Arc<Intake>, std::thread::JoinHandle<()>)> {
        let root = ws.root().to_path_buf();
        let manifest = ws.manifest()?;
        let from = manifest.collector.unwrap_or_default();
        let mut seen = Window::new(bounds);
        dedup::load(&root, &mut seen, now_micros())?;
        let mut replayed = 0u64;
        let mut bad: Option<shoplens_engine::Error> = None;
        let writer = WalWriter::open(&root, from, |_, payload| {
            match collector::message_ids(payload) {
                Ok((received, ids)) => {
                    replayed += ids.len() as u64;
                    for i in &ids {
                        seen.insert(collector::id_key(i), received);
                    }
                }
                Err(e) => bad = Some(e),
            }
            Ok(())
        })?;
        if let Some(e) = bad {
            return Err(e.into());
        }
        let (durable, _) = watch::channel((0, false));
        let intake = Arc::new(Intake {
            queue: Mutex::new(Queue {
                seen,
                ..Queue::default()
            }),
            wake: Condvar::new(),
            durable,
            durable_at: Mutex::new(writer.position()),
            uncompacted: AtomicU64::new(replayed),
            metrics,
            root,
            compacting: Mutex::new(()),
        });
        intake
            .metrics
            .wal_bytes
            .store(wal_size(&wal::dir(&intake.root)), Ordering::Relaxed);
        let me = Arc::clone(&intake);
        let handle = std::thread::Builder::new()
            .name("shoplens-wal".into())
            .spawn(move || me.write_loop(writer))
            .map_err(|e| Error::Io("wal thread".into(), e))?;
        Ok((intake, handle))
    }

    fn write_loop(&self, mut writer: WalWriter) {
        loop {
            let (buf, seq, messages) = {
                let Ok(mut q) = self.queue.lock() else { return };
                while q.pending.is_empty() && !q.closing {
                    q = match self.wake.wait(q) {
                        Ok(q) => q,
                        Err(_) => return,
                    };
                }
                if q.pending.is_empty() {
                    return;
                }
                let m = q.pending_messages;
                q.pending_messages = 0;
                (std::mem::take(&mut q.pending), q.queued, m)
            };
            let t = Instant::now();
            let ok = writer.append(&buf).and_then(|()| writer.sync());
            let secs = t.elapsed().as_secs_f64();
            match ok {
                Ok(()) => {
                    self.metrics.fsync(secs, messages, buf.len() as u64);
                    if let Ok(mut at) = self.durable_at.lock() {
                        *at = writer.position();
                    }
                    self.uncompacted.fetch_add(messages, Ordering::Relaxed);
                    self.durable.send_replace((seq, false));
                }
                Err(e) => {
                    tracing::error!(error = %e, "write-ahead log append failed; refusing writes");
                    self.durable.send_replace((seq.saturating_sub(1), true));
                    return;
                }
            }
        }
    }

    /// Stores a request's accepted messages (skipping messageIds already stored) and rejected
    /// ones (for the quarantine) durably, then returns.
    pub(crate) async fn submit(
        &self,
        received: i64,
        accepted: Vec<Accepted>,
        rejected: &[Rejected],
    ) -> Result<Outcome> {
        let keys: Vec<u128> = accepted
            .iter()
            .map(|a| collector::id_key(&a.message_id))
            .collect();
        let (seq, outcome) = {
            let mut q = self
                .queue
                .lock()
                .map_err(|_| Error::Unavailable("intake lock poisoned".into()))?;
            if self.durable.borrow().1 {
                return Err(Error::Unavailable("the write-ahead log failed".into()));
            }
            let total = accepted.len();
            let mut fresh = Vec::with_capacity(total);
            let mut batch_keys = HashSet::new();
            for (a, k) in accepted.into_iter().zip(keys) {
                // A messageId repeated inside one request is stored once too.
                if !q.seen.contains(k) && batch_keys.insert(k) {
                    fresh.push(a);
                }
            }
            let stored = fresh.len();
            if stored > 0 || !rejected.is_empty() {
                for k in &batch_keys {
                    q.seen.insert(*k, received);
                }
                let payload = collector::encode(received, &fresh, rejected);
                wal::frame(&payload, &mut q.pending);
                q.pending_messages += stored as u64;
                q.queued += 1;
                self.wake.notify_one();
            }
            (
                q.queued,
                Outcome {
                    stored,
                    duplicates: total - stored,
                },
            )
        };
        // Wait until the record (or, for duplicates only, everything queued before, which holds
        // the first copy) is durable.
        let mut rx = self.durable.subscribe();
        let state = rx
            .wait_for(|(d, failed)| *d >= seq || *failed)
            .await
            .map_err(|_| Error::Unavailable("the write-ahead log stopped".into()))?;
        if state.1 && state.0 < seq {
            return Err(Error::Unavailable("the write-ahead log failed".into()));
        }
        Ok(outcome)
    }

    /// The durable end of the log.
    pub(crate) fn durable_position(&self) -> WalPosition {
        self.durable_at
            .lock()
            .map_or(WalPosition::default(), |p| *p)
    }

    /// Compacts the durable log into the tables (with the writer lock held by the server).
    pub(crate) fn compact(&self, writer: &Writer) -> Result<collector::Compacted> {
        let _one = self
            .compacting
            .lock()
            .map_err(|_| Error::Unavailable("compaction lock poisoned".into()))?;
        let upto = self.durable_position();
        let t = Instant::now();
        // Files the previous compaction merged away have had a compaction interval for their
        // readers to finish.
        writer.sweep()?;
        // Keys of the messages about to leave the log go to the id file before the tables are
        // published, so a crash between the two never forgets a stored message.
        let done = collector::compact(writer, upto, |ids| {
            let failed = |e: String| shoplens_engine::Error::Internal(e);
            let (keys, rewrite) = {
                let q = self
                    .queue
                    .lock()
                    .map_err(|_| failed("intake lock poisoned".into()))?;
                let now = now_micros();
                let keys: Vec<(u128, i64)> = ids
                    .iter()
                    .map(|id| {
                        let k = collector::id_key(id);
                        (k, q.seen.arrived(k).unwrap_or(now))
                    })
                    .collect();
                (keys, dedup::rewrite_due(&self.root, &q.seen))
            };
            dedup::append(&self.root, &keys, rewrite).map_err(|e| failed(e.to_string()))
        })?;
        self.uncompacted.fetch_sub(
            done.messages.min(self.uncompacted.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        self.metrics
            .compacted(done.messages, t.elapsed().as_secs_f64());
        self.metrics
            .wal_bytes
            .store(wal_size(&wal::dir(&self.root)), Ordering::Relaxed);
        Ok(done)
    }

    /// Stops the writer thread after it has written everything queued.
    pub(crate) fn close(&self) {
        if let Ok(mut q) = self.queue.lock() {
            q.closing = true;
        }
        self.wake.notify_all();
    }
}

fn wal_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |d| {
        d.flatten()
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()
    })
}
