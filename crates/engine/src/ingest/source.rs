//! Reading source files: decompression, decoding, and splitting text into records.
//!
//! Delimited text is split by a small RFC 4180 parser (quoted fields may hold delimiters, quotes
//! and line breaks), or on runs of spaces and tabs. The body is cut into chunks at record
//! boundaries (quote-aware) so that chunks parse in parallel, each knowing its first line number.

use std::borrow::Cow;
use std::io::Read;
use std::path::Path;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::ingest::mapping::{Encoding, Format, Source};

/// A source file's bytes (decompressed) and the hash of its content as stored on disk.
pub(crate) struct Loaded {
    pub(crate) bytes: Bytes,
    /// `blake3:<hex>` of the file's bytes.
    pub(crate) content_hash: String,
}

/// A file's content: mapped from the page cache, or read (small files) or decompressed.
pub(crate) enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// Lets go of a file's bytes; a mapped file is unmapped on a thread of its own (20 ms for 330 MB
/// that the commit's flush to disk need not wait for).
pub(crate) fn release(bytes: Bytes) {
    if let Bytes::Mapped(map) = bytes {
        std::thread::spawn(move || drop(map));
    }
}

/// Files from this size on are mapped rather than read.
const MAP_FROM: u64 = 1 << 20;

/// Reads a file, gunzipping it when it starts with the gzip magic bytes.
pub(crate) fn load(path: &Path) -> Result<Loaded> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let raw = if len >= MAP_FROM {
        // Reading a large file copies it into freshly faulted pages: 0.5 s of one core for 330 MB,
        // before parsing can start. Mapped, its pages are the page cache's, touched where parsed.
        #[allow(unsafe_code, reason = "mapping an input file read-only")]
        // SAFETY: the map is read-only and private to this ingest. Another process truncating
        // or rewriting the file while it is ingested would change the bytes under it (or end
        // the process on a truncation); the ingest then fails or stores what was read, and the
        // workspace stays as it was until the commit publishes. The README asks not to change a
        // file while it is being ingested.
        let map =
            unsafe { memmap2::MmapOptions::new().map(&file) }.map_err(|e| Error::io(path, e))?;
        Bytes::Mapped(map)
    } else {
        let mut v = Vec::with_capacity(len as usize);
        (&file)
            .read_to_end(&mut v)
            .map_err(|e| Error::io(path, e))?;
        Bytes::Owned(v)
    };
    // BLAKE3 splits a large input into a tree: both cores hash it (0.3 s → 0.15 s for 329 MB),
    // and so also fault in the mapped pages between them (mapping with MAP_POPULATE took one
    // core 50 ms for 329 MB while the other waited).
    let content_hash = format!(
        "blake3:{}",
        blake3::Hasher::new().update_rayon(&raw).finalize().to_hex()
    );
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 6);
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::BadFile {
                file: path.display().to_string(),
                reason: format!("broken gzip data: {e}"),
            })?;
        Bytes::Owned(out)
    } else {
        raw
    };
    Ok(Loaded {
        bytes,
        content_hash,
    })
}

/// How text records are delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delim {
    Byte(u8),
    Whitespace,
}

/// Text splitting rules of a layout.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TextSpec {
    pub(crate) delim: Delim,
    pub(crate) quoting: bool,
    pub(crate) encoding: Encoding,
}

impl TextSpec {
    pub(crate) fn of(source: &Source, origin: &str) -> Result<TextSpec> {
        let delim = match source.delimiter.as_deref() {
            None => Delim::Byte(b','),
            Some("whitespace") | Some("spaces") => Delim::Whitespace,
            Some("\\t") | Some("\t") | Some("tab") => Delim::Byte(b'\t'),
            Some(d) if d.len() == 1 => Delim::Byte(d.as_bytes()[0]),
            Some(d) => {
                return Err(Error::Mapping {
                    origin: origin.to_string(),
                    reason: format!(
                        "delimiter `{d}` must be one ASCII character, `\\t` or `whitespace`"
                    ),
                });
            }
        };
        Ok(TextSpec {
            delim,
            quoting: source.format == Format::Csv && delim != Delim::Whitespace,
            encoding: source.encoding,
        })
    }
}

/// One record: its first physical line, its decoded fields, and the first field that is not
/// valid in the file's encoding (the record is then unusable).
pub(crate) struct Record<'r, 'a> {
    pub(crate) line: u64,
    pub(crate) fields: &'r [Cow<'a, str>],
    pub(crate) bad_field: Option<usize>,
    pub(crate) raw: &'a [u8],
}

/// A piece of the body that starts at a record boundary.
pub(crate) struct Chunk<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) first_line: u64,
    /// Whether the chunk holds a double quote (when the layout quotes fields).
    pub(crate) quoted: bool,
}

/// Skips a UTF-8 byte-order mark.
pub(crate) fn strip_bom(b: &[u8]) -> &[u8] {
    b.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(b)
}

/// Cuts `body` (whose first byte is on line `first_line`) into chunks of about `target` bytes
/// for `workers` threads. Towards the end chunks shrink (to an eighth of `target`), so that the
/// workers run out of work together rather than one finishing a full chunk alone.
pub(crate) fn chunks(
    body: &[u8],
    first_line: u64,
    target: usize,
    workers: usize,
    quoting: bool,
) -> Vec<Chunk<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut line = first_line;
    // Whether any field is quoted, looked for on every worker.
    let has_quotes = quoting
        && body
            .par_chunks(1 << 20)
            .any(|part| memchr::memchr(b'"', part).is_some());
    let mut counts = Vec::new();
    while start < body.len() {
        let share = (body.len() - start).div_ceil(2 * workers.max(1));
        let want = start.saturating_add(share.clamp((target / 8).max(1), target.max(1)));
        let end = if want >= body.len() {
            body.len()
        } else if has_quotes {
            boundary_quoted(body, start, want)
        } else {
            memchr::memchr(b'\n', &body[want..]).map_or(body.len(), |i| want + i + 1)
        };
        out.push(Chunk {
            bytes: &body[start..end],
            first_line: 0,
            quoted: has_quotes,
        });
        start = end;
    }
    // Each chunk's first line (the lines of the chunks before it) and whether it holds a
    // quote, found on every worker.
    out.par_iter()
        .map(|c| {
            let lines = memchr::memchr_iter(b'\n', c.bytes).count() as u64;
            (lines, c.quoted && memchr::memchr(b'"', c.bytes).is_some())
        })
        .collect_into_vec(&mut counts);
    for (c, (n, quoted)) in out.iter_mut().zip(counts) {
        c.first_line = line;
        c.quoted = quoted;
        line += n;
    }
    out
}

/// The start of `body` up to the end of its first record that is not blank, with its line end
/// (a quoted field may hold line ends).
pub(crate) fn first_record(body: &[u8], quoting: bool) -> &[u8] {
    let mut end = 0;
    while end < body.len() {
        let start = end;
        // The quote-aware scan stops at the first line end outside quotes: no need to look
        // through the whole body for a quote first.
        end = if quoting {
            boundary_quoted(body, start, start)
        } else {
            memchr::memchr(b'\n', &body[start..]).map_or(body.len(), |i| start + i + 1)
        };
        if !body[start..end].iter().all(u8::is_ascii_whitespace) {
            break;
        }
    }
    &body[..end]
}

/// The first record boundary at or after `want`, scanning quotes from `start` (a boundary).
fn boundary_quoted(body: &[u8], start: usize, want: usize) -> usize {
    let mut in_quotes = false;
    let mut pos = start;
    while let Some(i) = memchr::memchr2(b'"', b'\n', &body[pos..]) {
        let at = pos + i;
        if body[at] == b'"' {
            in_quotes = !in_quotes;
        } else if !in_quotes && at >= want {
            return at + 1;
        }
        pos = at + 1;
    }
    body.len()
}

/// Calls `f` with every non-blank record of a chunk. Buffers are reused from record to record,
/// and a UTF-8 chunk is validated once, so fields are borrowed slices of the chunk.
pub(crate) fn for_each_record<'a>(
    chunk: &Chunk<'a>,
    spec: &TextSpec,
    mut f: impl FnMut(Record<'_, 'a>),
) {
    let b = chunk.bytes;
    let text = if spec.encoding == Encoding::Utf8 {
        std::str::from_utf8(b).ok()
    } else {
        None
    };
    let base = b.as_ptr() as usize;
    let mut raw_fields: Vec<Cow<'a, [u8]>> = Vec::new();
    let mut fields: Vec<Cow<'a, str>> = Vec::new();
    let mut pos = 0;
    let mut line = chunk.first_line;
    while pos < b.len() {
        raw_fields.clear();
        let (next, newlines) = match spec.delim {
            Delim::Whitespace => whitespace_record(b, pos, &mut raw_fields),
            Delim::Byte(d) => delimited_record(b, pos, d, spec.quoting, &mut raw_fields),
        };
        let blank = raw_fields.len() <= 1
            && raw_fields
                .first()
                .is_none_or(|x| x.iter().all(u8::is_ascii_whitespace));
        if !blank {
            fields.clear();
            let mut bad_field = None;
            for (i, rf) in raw_fields.drain(..).enumerate() {
                let decoded = match (rf, text) {
                    (Cow::Borrowed(s), Some(t)) => {
                        let off = s.as_ptr() as usize - base;
                        t.get(off..off + s.len()).map(Cow::Borrowed)
                    }
                    (rf, _) => decode(rf, spec.encoding),
                };
                match decoded {
                    Some(d) => fields.push(d),
                    None => {
                        bad_field.get_or_insert(i);
                        fields.push(Cow::Borrowed(""));
                    }
                }
            }
            f(Record {
                line,
                fields: &fields,
                bad_field,
                raw: &b[pos..next],
            });
        }
        line += newlines;
        pos = next;
    }
}

fn line_end(b: &[u8], pos: usize) -> (usize, usize) {
    match memchr::memchr(b'\n', &b[pos..]) {
        Some(i) => {
            let end = pos + i;
            let content_end = if end > pos && b[end - 1] == b'\r' {
                end - 1
            } else {
                end
            };
            (content_end, end + 1)
        }
        None => {
            let end = b.len();
            let content_end = if end > pos && b[end - 1] == b'\r' {
                end - 1
            } else {
                end
            };
            (content_end, end)
        }
    }
}

fn whitespace_record<'a>(b: &'a [u8], pos: usize, fields: &mut Vec<Cow<'a, [u8]>>) -> (usize, u64) {
    let (content_end, next) = line_end(b, pos);
    fields.extend(
        b[pos..content_end]
            .split(|c| *c == b' ' || *c == b'\t')
            .filter(|f| !f.is_empty())
            .map(Cow::Borrowed),
    );
    (next, 1)
}

fn delimited_record<'a>(
    b: &'a [u8],
    start: usize,
    d: u8,
    quoting: bool,
    fields: &mut Vec<Cow<'a, [u8]>>,
) -> (usize, u64) {
    let mut pos = start;
    let mut newlines = 0u64;
    loop {
        if quoting && pos < b.len() && b[pos] == b'"' {
            // Quoted field: "" is an escaped quote; anything up to the next delimiter after the
            // closing quote is kept as written.
            let mut owned: Option<Vec<u8>> = None;
            let mut seg_start = pos + 1;
            let mut p = pos + 1;
            let end_quote;
            loop {
                match memchr::memchr(b'"', &b[p..]) {
                    Some(i) => {
                        let q = p + i;
                        if q + 1 < b.len() && b[q + 1] == b'"' {
                            let o = owned.get_or_insert_with(Vec::new);
                            o.extend_from_slice(&b[seg_start..=q]);
                            p = q + 2;
                            seg_start = p;
                        } else {
                            end_quote = q;
                            break;
                        }
                    }
                    None => {
                        end_quote = b.len();
                        break;
                    }
                }
            }
            newlines += memchr::memchr_iter(b'\n', &b[pos..end_quote]).count() as u64;
            let field: Cow<'a, [u8]> = match owned {
                Some(mut o) => {
                    o.extend_from_slice(&b[seg_start..end_quote]);
                    Cow::Owned(o)
                }
                None => Cow::Borrowed(&b[seg_start..end_quote]),
            };
            pos = (end_quote + 1).min(b.len());
            // Text after the closing quote up to the delimiter or line end is appended.
            let tail_end = memchr::memchr3(d, b'\n', b'\r', &b[pos..]).map_or(b.len(), |i| pos + i);
            let field = if tail_end > pos {
                let mut o = field.into_owned();
                o.extend_from_slice(&b[pos..tail_end]);
                Cow::Owned(o)
            } else {
                field
            };
            fields.push(field);
            pos = tail_end;
        } else {
            let end = memchr::memchr2(d, b'\n', &b[pos..]).map_or(b.len(), |i| pos + i);
            let mut content_end = end;
            if (end == b.len() || b[end] == b'\n')
                && content_end > pos
                && b[content_end - 1] == b'\r'
            {
                content_end -= 1;
            }
            fields.push(Cow::Borrowed(&b[pos..content_end]));
            pos = end;
        }
        if pos >= b.len() {
            return (b.len(), newlines + 1);
        }
        match b[pos] {
            c if c == d => pos += 1,
            b'\r' if pos + 1 < b.len() && b[pos + 1] == b'\n' => {
                return (pos + 2, newlines + 1);
            }
            b'\r' => pos += 1,
            _ => return (pos + 1, newlines + 1),
        }
    }
}

/// Decodes one field; `None` when its bytes are not valid in the encoding.
pub(crate) fn decode(bytes: Cow<'_, [u8]>, encoding: Encoding) -> Option<Cow<'_, str>> {
    match encoding {
        Encoding::Utf8 => match bytes {
            Cow::Borrowed(b) => std::str::from_utf8(b).ok().map(Cow::Borrowed),
            Cow::Owned(o) => String::from_utf8(o).ok().map(Cow::Owned),
        },
        Encoding::Gbk | Encoding::Gb18030 => {
            if bytes.is_ascii() {
                return match bytes {
                    Cow::Borrowed(b) => std::str::from_utf8(b).ok().map(Cow::Borrowed),
                    Cow::Owned(o) => String::from_utf8(o).ok().map(Cow::Owned),
                };
            }
            encoding_rs::GB18030
                .decode_without_bom_handling_and_without_replacement(&bytes)
                .map(|c| Cow::Owned(c.into_owned()))
        }
    }
}

/// The physical line `line` (1-based) of `body`, for quarantine records.
pub(crate) fn physical_lines(
    body: &[u8],
    wanted: &std::collections::BTreeSet<u64>,
) -> std::collections::HashMap<u64, String> {
    let mut out = std::collections::HashMap::new();
    let Some(&last) = wanted.iter().next_back() else {
        return out;
    };
    let mut line = 1u64;
    let mut pos = 0;
    while pos <= body.len() && line <= last {
        let end = memchr::memchr(b'\n', &body[pos..]).map_or(body.len(), |i| pos + i);
        if wanted.contains(&line) {
            out.insert(line, raw_text(&body[pos..end]));
        }
        line += 1;
        pos = end + 1;
    }
    out
}

/// Raw bytes shown in a quarantine record: lossy UTF-8, at most 1,000 characters.
pub(crate) fn raw_text(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    let s = s.trim_end_matches(['\r', '\n']);
    s.chars().take(1000).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The content hash of a file is BLAKE3's, however many threads computed it: workspaces
    /// remember files by it.
    #[test]
    fn content_hash_is_plain_blake3() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("big.csv");
        let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &body).unwrap_or_else(|e| panic!("{e}"));
        let loaded = load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            loaded.content_hash,
            format!("blake3:{}", blake3::hash(&body).to_hex())
        );
    }

    fn records(text: &str, delim: Delim, quoting: bool) -> Vec<(u64, Vec<String>)> {
        let spec = TextSpec {
            delim,
            quoting,
            encoding: Encoding::Utf8,
        };
        let mut out = Vec::new();
        for c in chunks(text.as_bytes(), 1, 7, 1, quoting) {
            for_each_record(&c, &spec, |r| {
                out.push((r.line, r.fields.iter().map(|f| f.to_string()).collect()));
            });
        }
        out
    }

    #[test]
    fn quoted_fields_with_delimiters_quotes_and_newlines() {
        let got = records(
            "a,b\r\n\"x,1\",\"say \"\"hi\"\"\"\n\"multi\nline\",2\n\n3,\n",
            Delim::Byte(b','),
            true,
        );
        assert_eq!(
            got,
            vec![
                (1, vec!["a".into(), "b".into()]),
                (2, vec!["x,1".into(), "say \"hi\"".into()]),
                (3, vec!["multi\nline".into(), "2".into()]),
                (6, vec!["3".into(), "".into()]),
            ]
        );
    }

    #[test]
    fn runs_of_spaces_and_crlf() {
        let got = records(
            " 00004 0001 19970101  2   29.33\r\n 00004 0001 19970118  2   29.73\r\n",
            Delim::Whitespace,
            false,
        );
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[1],
            (
                2,
                vec![
                    "00004".into(),
                    "0001".into(),
                    "19970118".into(),
                    "2".into(),
                    "29.73".into()
                ]
            )
        );
    }

    #[test]
    fn chunks_cut_only_at_record_boundaries() {
        let text = "\"a\nb\",1\n\"c\nd\",2\n\"e\nf\",3\n";
        let cs = chunks(text.as_bytes(), 1, 3, 1, true);
        let starts: Vec<u64> = cs.iter().map(|c| c.first_line).collect();
        assert_eq!(starts, vec![1, 3, 5]);
    }

    #[test]
    fn chunks_shrink_towards_the_end_and_cover_the_body() {
        // 10,000 lines of 10 bytes; chunks of about 8,000 bytes for two workers.
        let text: String = (0..10_000).map(|i| format!("{i:09}\n")).collect();
        let cs = chunks(text.as_bytes(), 1, 8_000, 2, false);
        let sizes: Vec<usize> = cs.iter().map(|c| c.bytes.len()).collect();
        assert_eq!(sizes.iter().sum::<usize>(), text.len());
        assert_eq!(
            cs.iter().map(|c| c.bytes).collect::<Vec<_>>().concat(),
            text.as_bytes()
        );
        // Full chunks while a quarter of the rest is more, then smaller ones down to an eighth.
        assert_eq!(
            sizes[0], 8_010,
            "a chunk ends with the line it reaches into"
        );
        assert!(sizes.windows(2).all(|w| w[1] <= w[0]), "{sizes:?}");
        let last = sizes[sizes.len() - 2];
        assert!((1_000..1_100).contains(&last), "{sizes:?}");
        assert!(sizes.len() > 100_000 / 8_000 + 3, "{sizes:?}");
        for c in &cs {
            let first: u64 = std::str::from_utf8(&c.bytes[..9]).unwrap().parse().unwrap();
            assert_eq!(c.first_line, first + 1);
        }
    }

    #[test]
    fn the_first_record_skips_blank_lines_and_keeps_quoted_line_ends() {
        assert_eq!(first_record(b"a,b\nc,d\n", true), b"a,b\n");
        assert_eq!(first_record(b"\n \r\na,b\r\nc\n", true), b"\n \r\na,b\r\n");
        assert_eq!(first_record(b"\"a\nb\",c\nd\n", true), b"\"a\nb\",c\n");
        assert_eq!(first_record(b"\"a\nb\",c\nd\n", false), b"\"a\n");
        assert_eq!(first_record(b"a,b", true), b"a,b");
        assert_eq!(first_record(b"\n\n", true), b"\n\n");
        assert_eq!(first_record(b"", true), b"");
    }

    #[test]
    fn chunks_know_whether_they_hold_a_quote() {
        let text = format!("{}\"q\",1\n{}", "a,1\n".repeat(100), "b,2\n".repeat(100));
        let quoted: Vec<bool> = chunks(text.as_bytes(), 1, 40, 1, true)
            .iter()
            .map(|c| c.quoted)
            .collect();
        assert_eq!(quoted.iter().filter(|q| **q).count(), 1, "{quoted:?}");
        assert!(
            chunks(text.as_bytes(), 1, 40, 1, false)
                .iter()
                .all(|c| !c.quoted)
        );
    }

    #[test]
    fn gbk_decodes_and_invalid_bytes_are_reported() {
        let (gbk, _, _) = encoding_rs::GBK.encode("女装");
        assert_eq!(
            decode(Cow::Borrowed(&gbk), Encoding::Gbk).as_deref(),
            Some("女装")
        );
        assert!(decode(Cow::Borrowed(&[0xff, 0xfe, 0x41][..]), Encoding::Utf8).is_none());
        assert!(decode(Cow::Borrowed(&[0x81][..]), Encoding::Gbk).is_none());
    }
}
