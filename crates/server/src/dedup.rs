//! The messageId deduplication window: the keys of messages stored recently, kept for a bounded
//! time and up to a bounded count, oldest evicted first, in memory and in the workspace's id
//! file.
//!
//! A message whose key is in the window is a duplicate. A retry that arrives after its first copy
//! left the window (older than the window, or pushed out by the count) is stored again, as
//! Segment's own deduplication does outside its window: docs/collector.md.

use std::collections::{HashMap, VecDeque};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{Error, Result};

/// How long and how many messageIds are remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupBounds {
    /// A key is forgotten once it is older than this (by the server's arrival clock).
    pub window: Duration,
    /// At most this many keys; beyond it the oldest are forgotten first.
    pub max_ids: usize,
}

impl Default for DedupBounds {
    fn default() -> DedupBounds {
        DedupBounds {
            window: Duration::from_secs(7 * 24 * 3600),
            max_ids: 5_000_000,
        }
    }
}

/// The keys in the window with their arrival (µs since the epoch), in arrival order.
#[derive(Debug, Default)]
pub(crate) struct Window {
    bounds: DedupBounds,
    at: HashMap<u128, i64>,
    order: VecDeque<(u128, i64)>,
}

impl Window {
    pub(crate) fn new(bounds: DedupBounds) -> Window {
        Window {
            bounds,
            at: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub(crate) fn contains(&self, key: u128) -> bool {
        self.at.contains_key(&key)
    }

    /// Keys held now.
    pub(crate) fn len(&self) -> usize {
        self.at.len()
    }

    /// When `key` arrived, if it is in the window.
    pub(crate) fn arrived(&self, key: u128) -> Option<i64> {
        self.at.get(&key).copied()
    }

    /// Remembers `key` as arrived at `t` (a key already held keeps its first arrival), then
    /// forgets what is outside the bounds as of `t`.
    pub(crate) fn insert(&mut self, key: u128, t: i64) {
        if let std::collections::hash_map::Entry::Vacant(v) = self.at.entry(key) {
            v.insert(t);
            self.order.push_back((key, t));
        }
        self.evict(t);
    }

    /// Forgets keys older than the window as of `now`, and the oldest beyond the count.
    pub(crate) fn evict(&mut self, now: i64) {
        let window = i64::try_from(self.bounds.window.as_micros()).unwrap_or(i64::MAX);
        let oldest = now.saturating_sub(window);
        while let Some(&(k, t)) = self.order.front() {
            if self.order.len() <= self.bounds.max_ids && t >= oldest {
                break;
            }
            self.order.pop_front();
            self.at.remove(&k);
        }
    }

    /// The keys held, oldest first.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (u128, i64)> + '_ {
        self.order.iter().copied()
    }
}

/// The id file: one record of 24 bytes per key (the key, then its arrival), little-endian.
const IDS_FILE: &str = "collector/message_ids.v2.bin";
/// The first layout: 16-byte keys with no arrival. Read once, then replaced.
const OLD_IDS_FILE: &str = "collector/message_ids.bin";
const RECORD: usize = 24;

fn ids_path(root: &Path) -> PathBuf {
    root.join(IDS_FILE)
}

/// Reads the id file into `w`. Keys of the first layout, which kept no arrival, count as
/// arriving `now`, so they are kept for one more window.
pub(crate) fn load(root: &Path, w: &mut Window, now: i64) -> Result<()> {
    let read = |path: PathBuf| -> Result<Vec<u8>> {
        match std::fs::read(&path) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::Io(path.display().to_string(), e)),
        }
    };
    // A torn last record (a crash while appending) is ignored: its message is still in the log.
    for r in read(ids_path(root))?.chunks_exact(RECORD) {
        let mut t = [0u8; 8];
        t.copy_from_slice(&r[16..]);
        w.insert(u128_at(&r[..16]), i64::from_le_bytes(t));
    }
    for k in read(root.join(OLD_IDS_FILE))?.chunks_exact(16) {
        w.insert(u128_at(k), now);
    }
    w.evict(now);
    Ok(())
}

fn u128_at(b: &[u8]) -> u128 {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    u128::from_le_bytes(a)
}

fn encode(keys: impl Iterator<Item = (u128, i64)>) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, t) in keys {
        out.extend_from_slice(&k.to_le_bytes());
        out.extend_from_slice(&t.to_le_bytes());
    }
    out
}

/// The window's records, when the id file has grown to more than twice what the window holds
/// (and over a megabyte): then [`append`] rewrites the file from them instead of appending, so
/// the file stays bounded too. Also when the first layout's file is still there, to replace it.
/// Taken under the intake's lock; the writing happens outside it.
pub(crate) fn rewrite_due(root: &Path, w: &Window) -> Option<Vec<u8>> {
    let len = std::fs::metadata(ids_path(root)).map_or(0, |m| m.len());
    let live = (w.len() * RECORD) as u64;
    let due = root.join(OLD_IDS_FILE).exists() || (len > 2 * live && len > 1 << 20);
    // The window holds every key being appended (they were inserted on arrival), unless the
    // bounds already pushed them out, and then they need not be kept.
    due.then(|| encode(w.entries()))
}

/// Appends keys (with their arrival) to the id file, or replaces the file with `rewrite`, the
/// whole window's records from [`rewrite_due`]. Durable on return.
pub(crate) fn append(root: &Path, keys: &[(u128, i64)], rewrite: Option<Vec<u8>>) -> Result<()> {
    let path = ids_path(root);
    let io = |e| Error::Io(path.display().to_string(), e);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    if let Some(bytes) = rewrite {
        let tmp = path.with_extension("bin.tmp");
        let io_tmp = |e| Error::Io(tmp.display().to_string(), e);
        let mut f = std::fs::File::create(&tmp).map_err(io_tmp)?;
        f.write_all(&bytes).map_err(io_tmp)?;
        f.sync_all().map_err(io_tmp)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        let old = root.join(OLD_IDS_FILE);
        if old.exists() {
            std::fs::remove_file(&old).map_err(|e| Error::Io(old.display().to_string(), e))?;
        }
        return Ok(());
    }
    if keys.is_empty() {
        return Ok(());
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io)?;
    // Drop a torn record a crash may have left, so records stay aligned.
    let len = f.metadata().map_err(io)?.len();
    if len % RECORD as u64 != 0 {
        f.set_len(len - len % RECORD as u64).map_err(io)?;
    }
    f.write_all(&encode(keys.iter().copied())).map_err(io)?;
    f.sync_data().map_err(io)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    const DAY: i64 = 24 * 3600 * 1_000_000;

    fn bounds(days: u64, max_ids: usize) -> DedupBounds {
        DedupBounds {
            window: Duration::from_secs(days * 24 * 3600),
            max_ids,
        }
    }

    #[test]
    fn the_window_forgets_by_age_and_by_count_and_keeps_the_rest() {
        let mut w = Window::new(bounds(7, 1000));
        // Past the count: 5000 keys a second apart hold at most 1000.
        const SEC: i64 = 1_000_000;
        for i in 0..5000u128 {
            w.insert(i, i as i64 * SEC);
            assert!(w.len() <= 1000);
            assert_eq!(w.order.len(), w.at.len());
        }
        assert_eq!(w.len(), 1000);
        // The newest are still duplicates; the oldest are forgotten.
        assert!(w.contains(4999) && w.contains(4000));
        assert!(!w.contains(3999) && !w.contains(0));
        // Past the window: 7 days after key 4499 arrived, keys before it are gone.
        w.evict(4499 * SEC + 7 * DAY);
        assert!(w.contains(4499) && w.contains(4999));
        assert!(!w.contains(4498));
        assert_eq!(w.len(), 501);
        // Ages alone: keys at day 0..10 seen from day 10 keep days 3..=10.
        let mut w = Window::new(bounds(7, 1_000_000));
        for d in 0..=10i64 {
            w.insert(d as u128, d * DAY);
        }
        let held: Vec<u128> = w.entries().map(|(k, _)| k).collect();
        assert_eq!(held, (3..=10).collect::<Vec<u128>>());
    }

    #[test]
    fn a_key_keeps_its_first_arrival() {
        let mut w = Window::new(bounds(7, 10));
        w.insert(1, 0);
        w.insert(1, 5 * DAY);
        assert_eq!(w.arrived(1), Some(0));
        assert_eq!(w.len(), 1);
        w.insert(2, 7 * DAY + 1);
        assert!(!w.contains(1), "the first arrival sets when a key leaves");
    }

    #[test]
    fn the_id_file_stays_bounded_and_reloads_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // A first-layout file: its keys are read as arriving now, then the file is replaced.
        std::fs::create_dir_all(root.join("collector")).unwrap();
        std::fs::write(root.join(OLD_IDS_FILE), 77u128.to_le_bytes()).unwrap();
        let b = bounds(7, 50_000);
        let mut w = Window::new(b);
        load(root, &mut w, 0).unwrap();
        assert!(w.contains(77));
        let mut t = 0;
        for chunk in 0..200u128 {
            let keys: Vec<(u128, i64)> = (0..1000u128)
                .map(|i| {
                    t += 1_000_000;
                    (1000 + chunk * 1000 + i, t)
                })
                .collect();
            for &(k, at) in &keys {
                w.insert(k, at);
            }
            let rewrite = rewrite_due(root, &w);
            append(root, &keys, rewrite).unwrap();
            let len = std::fs::metadata(ids_path(root)).unwrap().len();
            assert!(
                len <= (2 * 50_000 * RECORD as u64).max(1 << 20) + 1000 * RECORD as u64,
                "{len} bytes after {chunk} appends"
            );
        }
        assert!(!root.join(OLD_IDS_FILE).exists());
        // 200,000 keys written, 50,000 kept: a reload holds the newest 50,000 exactly.
        let mut again = Window::new(b);
        load(root, &mut again, t).unwrap();
        assert_eq!(again.len(), 50_000);
        let a: Vec<_> = w.entries().collect();
        let r: Vec<_> = again.entries().collect();
        assert_eq!(a, r);
    }
}
