//! The collector's write-ahead log: events are acknowledged once they are in it, compacted into
//! the tables later, and read from it by every query in the meantime.
//!
//! The log is a sequence of segment files `wal/<n>.wal` (n = 1, 2, …, zero-padded). Each holds
//! records framed as
//!
//! ```text
//! u32 little-endian  payload length
//! u32 little-endian  CRC-32 (IEEE) of the payload
//! payload
//! ```
//!
//! A record is valid only when its whole payload is present and its checksum matches; reading
//! stops at the first record that is not (a torn tail left by a crash), and the writer truncates
//! it away on open, so a half-written record is never applied. The manifest's
//! [`WalPosition`] says how far the log has been compacted into the tables; readers apply the
//! records after it.

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Segments roll over at this size.
pub const SEGMENT_BYTES: u64 = 64 << 20;
/// The largest payload a record may have (a frame length above it is a torn or foreign tail).
pub const MAX_RECORD: usize = 64 << 20;
const HEADER: usize = 8;

/// A place in the log: a segment and a byte offset in it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    Default,
    schemars::JsonSchema,
)]
pub struct WalPosition {
    /// Segment number (1-based; 0 = before the first segment).
    pub segment: u64,
    /// Byte offset in the segment.
    pub offset: u64,
}

/// The log directory of a workspace root.
pub fn dir(root: &Path) -> PathBuf {
    root.join("wal")
}

/// The file of segment `n`.
pub fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:012}.wal"))
}

/// Segment numbers present, ascending.
pub fn segments(dir: &Path) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for e in entries {
        let e = e.map_err(|e| Error::io(dir, e))?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name
            .strip_suffix(".wal")
            .and_then(|s| s.parse::<u64>().ok())
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Frames a payload.
pub fn frame(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// The valid records of `bytes` from `start`: (end offset of each record, payload), and the
/// offset where valid data ends.
fn parse(bytes: &[u8], start: usize) -> (Vec<(u64, &[u8])>, usize) {
    let mut at = start;
    let mut out = Vec::new();
    while bytes.len() - at >= HEADER {
        let len =
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        let crc = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]);
        if len > MAX_RECORD || bytes.len() - at - HEADER < len {
            break;
        }
        let payload = &bytes[at + HEADER..at + HEADER + len];
        if crc32fast::hash(payload) != crc {
            break;
        }
        at += HEADER + len;
        out.push((at as u64, payload));
    }
    (out, at)
}

/// Calls `f(position after the record, payload)` for every valid record after `from`, in log
/// order, and returns the position where the valid log ends. Readers tolerate a torn tail (a
/// record being written) by stopping before it.
pub fn read_from(
    dir: &Path,
    from: WalPosition,
    mut f: impl FnMut(WalPosition, &[u8]) -> Result<()>,
) -> Result<WalPosition> {
    let mut end = from;
    for n in segments(dir)? {
        if n < from.segment {
            continue;
        }
        let path = segment_path(dir, n);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            // Compaction removed it after we listed it: its records are in the tables now, and
            // the caller's manifest is stale; the caller retries with a fresh one.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::LogMoved { path });
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        let start = if n == from.segment {
            (from.offset as usize).min(bytes.len())
        } else {
            0
        };
        let (records, valid_end) = parse(&bytes, start);
        for (off, payload) in records {
            f(
                WalPosition {
                    segment: n,
                    offset: off,
                },
                payload,
            )?;
        }
        end = WalPosition {
            segment: n,
            offset: valid_end as u64,
        };
    }
    Ok(end)
}

/// Removes the segments wholly before `upto` (their records are compacted).
pub fn remove_before(dir: &Path, upto: WalPosition) -> Result<()> {
    for n in segments(dir)? {
        if n < upto.segment {
            let p = segment_path(dir, n);
            fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
        }
    }
    Ok(())
}

/// The appending end of the log (one per workspace: the collector, under the writer lock).
#[derive(Debug)]
pub struct WalWriter {
    dir: PathBuf,
    file: File,
    position: WalPosition,
}

impl WalWriter {
    /// Opens the log for appending: the last segment's torn tail, if any, is cut off (it was
    /// never acknowledged), and every valid payload from `from` on is passed to `replay`.
    pub fn open(
        root: &Path,
        from: WalPosition,
        replay: impl FnMut(WalPosition, &[u8]) -> Result<()>,
    ) -> Result<WalWriter> {
        let dir = dir(root);
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let end = read_from(&dir, from, replay)?;
        let last = segments(&dir)?.last().copied();
        let position = match last {
            Some(n) => {
                // The valid end of the last segment (read_from stops at the torn tail).
                let mut valid = 0u64;
                if n == end.segment {
                    valid = end.offset;
                } else {
                    read_from(
                        &dir,
                        WalPosition {
                            segment: n,
                            offset: 0,
                        },
                        |p, _| {
                            valid = p.offset;
                            Ok(())
                        },
                    )?;
                }
                WalPosition {
                    segment: n,
                    offset: valid,
                }
            }
            None => WalPosition {
                segment: from.segment.max(1),
                offset: 0,
            },
        };
        let path = segment_path(&dir, position.segment);
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let len = file.metadata().map_err(|e| Error::io(&path, e))?.len();
        if len > position.offset {
            file.set_len(position.offset)
                .map_err(|e| Error::io(&path, e))?;
            file.sync_all().map_err(|e| Error::io(&path, e))?;
        }
        file.seek(SeekFrom::Start(position.offset))
            .map_err(|e| Error::io(&path, e))?;
        sync_dir(&dir)?;
        Ok(WalWriter {
            dir,
            file,
            position,
        })
    }

    /// Where the next record goes.
    pub fn position(&self) -> WalPosition {
        self.position
    }

    /// Appends already framed records (see [`frame`]) without syncing; rolls to a new segment
    /// first when the current one is full.
    pub fn append(&mut self, framed: &[u8]) -> Result<()> {
        if self.position.offset > 0 && self.position.offset + framed.len() as u64 > SEGMENT_BYTES {
            self.sync()?;
            let n = self.position.segment + 1;
            let path = segment_path(&self.dir, n);
            self.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| Error::io(&path, e))?;
            sync_dir(&self.dir)?;
            self.position = WalPosition {
                segment: n,
                offset: 0,
            };
        }
        self.file
            .write_all(framed)
            .map_err(|e| Error::io(&self.dir, e))?;
        self.position.offset += framed.len() as u64;
        Ok(())
    }

    /// Makes everything appended durable (fdatasync).
    pub fn sync(&mut self) -> Result<()> {
        self.file.sync_data().map_err(|e| Error::io(&self.dir, e))
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(root: &Path) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        read_from(&dir(root), WalPosition::default(), |_, p| {
            out.push(p.to_vec());
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn a_torn_tail_is_dropped_and_cut_off_on_open() {
        let t = tempfile::tempdir().unwrap();
        let mut w = WalWriter::open(t.path(), WalPosition::default(), |_, _| Ok(())).unwrap();
        for p in [b"one".as_slice(), b"two", b"three"] {
            let mut f = Vec::new();
            frame(p, &mut f);
            w.append(&f).unwrap();
        }
        w.sync().unwrap();
        let end = w.position();
        drop(w);
        let seg = segment_path(&dir(t.path()), 1);
        // A crash mid-write: half of a fourth record, then a record whose checksum is wrong.
        let mut bytes = fs::read(&seg).unwrap();
        let mut torn = Vec::new();
        frame(b"four-is-long", &mut torn);
        bytes.extend_from_slice(&torn[..torn.len() - 3]);
        fs::write(&seg, &bytes).unwrap();
        assert_eq!(
            records(t.path()),
            vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
        );
        let mut seen = 0;
        let mut w = WalWriter::open(t.path(), WalPosition::default(), |_, _| {
            seen += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!((seen, w.position()), (3, end));
        assert_eq!(fs::metadata(&seg).unwrap().len(), end.offset);
        // A flipped byte in the last record's payload: that record is dropped too.
        let mut f = Vec::new();
        frame(b"five", &mut f);
        w.append(&f).unwrap();
        w.sync().unwrap();
        drop(w);
        let mut bytes = fs::read(&seg).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 0xff;
        fs::write(&seg, &bytes).unwrap();
        assert_eq!(records(t.path()).len(), 3);
    }

    #[test]
    fn reading_resumes_from_a_position_across_segments() {
        let t = tempfile::tempdir().unwrap();
        let mut w = WalWriter::open(t.path(), WalPosition::default(), |_, _| Ok(())).unwrap();
        let mut f = Vec::new();
        frame(b"a", &mut f);
        w.append(&f).unwrap();
        let mid = w.position();
        // Force a roll-over by a record that does not fit the segment.
        let big = vec![7u8; (SEGMENT_BYTES - 4) as usize];
        let mut f = Vec::new();
        frame(&big, &mut f);
        w.append(&f).unwrap();
        w.sync().unwrap();
        assert_eq!(w.position().segment, 2);
        let mut got = Vec::new();
        read_from(&dir(t.path()), mid, |p, payload| {
            got.push((p.segment, payload.len()));
            Ok(())
        })
        .unwrap();
        assert_eq!(got, vec![(2, big.len())]);
        remove_before(
            &dir(t.path()),
            WalPosition {
                segment: 2,
                offset: 0,
            },
        )
        .unwrap();
        assert_eq!(segments(&dir(t.path())).unwrap(), vec![2]);
    }
}
