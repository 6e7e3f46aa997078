//! Column-at-a-time evaluation of a chunk of records.
//!
//! The row path evaluates a record into a vector of values and pushes them through every table's
//! builders, one cell dispatch after another. When no table depends on earlier rows, groups rows
//! or repeats a row per basket item, a chunk's records are instead kept as borrowed fields and
//! each target column is filled in one pass over them, straight into its Arrow builder. The
//! outcome is the row path's, row for row: a record stored or quarantined with the first error in
//! table order then column order, and a record no table takes rejected with the same reason.

use std::borrow::Cow;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, NullBufferBuilder, StringArray, new_null_array,
};
use datafusion::arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use datafusion::arrow::compute::filter;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;

use super::{ColPlan, FileCtx, Plan, RowCtx, RowError, SeqState, Src, TablePlan, eval_cond};
use crate::error::Result;
use crate::ingest::build::ColBuilder;
use crate::ingest::mapping::{Synth, Unmapped};
use crate::ingest::value::Val;
use crate::storage::schema::{Column, Kind};

/// A chunk's records, in file order. A field is a span of the chunk's text (8 bytes, where a
/// borrowed string would take 24 and a copy more), or, when it is not a plain slice of the text
/// (an unescaped quoted field, a decoded GBK field), an owned string.
pub(crate) struct Records<'a> {
    /// The chunk's text, when it is valid UTF-8.
    text: &'a str,
    spans: Vec<Span>,
    owned: Vec<String>,
    /// Record i's fields are `spans[starts[i]..starts[i + 1]]`.
    starts: Vec<usize>,
    lines: Vec<u64>,
    rows: Vec<u64>,
    raws: Vec<&'a [u8]>,
    /// The width every record has so far, or `MIXED` once two differ.
    width: usize,
    /// One all-null column per type, sliced for every chunk's unfed columns.
    nulls: std::cell::RefCell<Vec<ArrayRef>>,
}

/// `text[start..end]`, or `owned[end]` when `start` is [`Span::OWNED`].
#[derive(Clone, Copy)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    const OWNED: u32 = u32::MAX;
}

/// [`Records::width`] before the first record.
const NO_RECORD: usize = usize::MAX;
/// [`Records::width`] once records of two widths were added.
const MIXED: usize = usize::MAX - 1;

impl<'a> Records<'a> {
    pub(crate) fn with_capacity(records: usize, width: usize) -> Records<'a> {
        let mut starts = Vec::with_capacity(records + 1);
        starts.push(0);
        Records {
            text: "",
            spans: Vec::with_capacity(records * width),
            owned: Vec::new(),
            starts,
            lines: Vec::with_capacity(records),
            rows: Vec::with_capacity(records),
            raws: Vec::with_capacity(records),
            width: NO_RECORD,
            nulls: std::cell::RefCell::new(Vec::new()),
        }
    }

    /// Empties the records and keeps their buffers for the chunk `bytes`: a chunk's vectors are
    /// tens of megabytes, and fresh pages from the system cost more than filling them.
    pub(crate) fn reset(&mut self, bytes: &'a [u8]) {
        self.text = match std::str::from_utf8(bytes) {
            Ok(t) if t.len() < Span::OWNED as usize => t,
            _ => "",
        };
        self.spans.clear();
        self.owned.clear();
        self.starts.truncate(1);
        self.lines.clear();
        self.rows.clear();
        self.raws.clear();
        self.width = NO_RECORD;
    }

    /// The chunk's text, when it is valid UTF-8 (and so can be split by [`Records::split`]).
    pub(crate) fn text(&self) -> Option<&'a str> {
        (!self.text.is_empty()).then_some(self.text)
    }

    /// Adds a record: its line, its data row number, its fields and its raw bytes.
    pub(crate) fn push(&mut self, line: u64, row: u64, fields: &[Cow<'a, str>], raw: &'a [u8]) {
        let base = self.text.as_ptr() as usize;
        for f in fields {
            let at = (f.as_ptr() as usize).wrapping_sub(base);
            let span = match f {
                Cow::Borrowed(b) if at <= self.text.len() && b.len() <= self.text.len() - at => {
                    Span {
                        start: at as u32,
                        end: (at + b.len()) as u32,
                    }
                }
                _ => {
                    self.owned.push(f.to_string());
                    Span {
                        start: Span::OWNED,
                        end: (self.owned.len() - 1) as u32,
                    }
                }
            };
            self.spans.push(span);
        }
        self.end_record(line, row, raw);
    }

    fn end_record(&mut self, line: u64, row: u64, raw: &'a [u8]) {
        let width = self.spans.len() - self.starts[self.starts.len() - 1];
        if self.width != width {
            self.width = if self.width == NO_RECORD {
                width
            } else {
                MIXED
            };
        }
        self.starts.push(self.spans.len());
        self.lines.push(line);
        self.rows.push(row);
        self.raws.push(raw);
    }

    /// Splits the chunk's text (see [`Records::text`]) into records of fields separated by
    /// `delim`, one record per line (LF or CRLF), with no quoting: the reader's plain shape,
    /// in one pass over the delimiters and line ends. Blank lines are skipped; a record whose
    /// field count is not `width` is handed to `wrong` (line, fields found, raw bytes) instead.
    /// `first_line` is the chunk's; `read` counts records handed out, numbering their rows.
    pub(crate) fn split(
        &mut self,
        delim: u8,
        width: Option<usize>,
        first_line: u64,
        read: &mut u64,
        mut wrong: impl FnMut(u64, usize, &'a [u8]),
    ) {
        let text = self.text;
        let b = text.as_bytes();
        let mut line = first_line;
        let mut rec_start = 0usize;
        let mut field_start = 0usize;
        let mut ends = Marks::new(b, delim, b'\n');
        loop {
            let (at, eol) = match ends.next() {
                Some(at) => (at, b[at] == b'\n'),
                None if rec_start < b.len() => (b.len(), true),
                None => break,
            };
            if !eol {
                self.spans.push(Span {
                    start: field_start as u32,
                    end: at as u32,
                });
                field_start = at + 1;
                continue;
            }
            let end = if at > rec_start && b[at - 1] == b'\r' {
                at - 1
            } else {
                at
            };
            let next = (at + 1).min(b.len());
            // The line's fields so far are those after the last record's.
            let fields = self.spans.len() - self.starts[self.starts.len() - 1] + 1;
            let raw = &b[rec_start..next];
            if fields == 1 && b[rec_start..end].iter().all(u8::is_ascii_whitespace) {
                // A blank line: no record.
            } else if width.is_some_and(|w| w != fields) {
                *read += 1;
                wrong(line, fields, raw);
            } else {
                self.spans.push(Span {
                    start: field_start.min(end) as u32,
                    end: end as u32,
                });
                *read += 1;
                self.end_record(line, *read, raw);
            }
            // A line that is no record leaves no fields behind.
            self.spans.truncate(self.starts[self.starts.len() - 1]);
            line += 1;
            rec_start = next;
            field_start = next;
            if at >= b.len() {
                break;
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.lines.len()
    }

    /// `n` nulls of type `dt`: a slice of the column kept for that type, made again only when
    /// a chunk is longer (its zeroed buffers are fresh pages every time otherwise).
    fn nulls(&self, dt: &DataType, n: usize) -> ArrayRef {
        let Ok(mut cache) = self.nulls.try_borrow_mut() else {
            return new_null_array(dt, n);
        };
        match cache.iter_mut().find(|a| a.data_type() == dt) {
            Some(a) if a.len() >= n => a.slice(0, n),
            Some(a) => {
                *a = new_null_array(dt, n);
                a.clone()
            }
            None => {
                let a = new_null_array(dt, n);
                cache.push(a.clone());
                a
            }
        }
    }

    fn get(&self, s: Span) -> &str {
        if s.start == Span::OWNED {
            self.owned.get(s.end as usize).map_or("", String::as_str)
        } else {
            self.text
                .get(s.start as usize..s.end as usize)
                .unwrap_or("")
        }
    }

    /// How fields are found: by position when every record has the same width and every field
    /// is a slice of the text (the plain split's records).
    fn layout(&self) -> Fields<'_> {
        match self.width {
            w if w < MIXED && self.owned.is_empty() => Fields::Uniform {
                text: self.text.as_bytes(),
                spans: &self.spans,
                width: w,
            },
            _ => Fields::Any(self),
        }
    }

    /// Field `slot` of record `i`, if the record has it.
    fn field(&self, i: usize, slot: usize) -> Option<&str> {
        let at = self.starts[i] + slot;
        (at < self.starts[i + 1]).then(|| self.get(self.spans[at]))
    }

    /// Calls `f` with record `i` as a row of fields (on the stack when there are few).
    fn with_row<R>(&self, i: usize, f: impl FnOnce(RowCtx<'_, '_>) -> R) -> R {
        const ON_STACK: usize = 16;
        let spans = &self.spans[self.starts[i]..self.starts[i + 1]];
        let row = |fields| RowCtx {
            fields,
            line: self.lines[i],
            row: self.rows[i],
        };
        if spans.len() <= ON_STACK {
            let fields: [Cow<'_, str>; ON_STACK] =
                std::array::from_fn(|k| Cow::Borrowed(spans.get(k).map_or("", |s| self.get(*s))));
            f(row(&fields[..spans.len()]))
        } else {
            let fields: Vec<Cow<'_, str>> =
                spans.iter().map(|s| Cow::Borrowed(self.get(*s))).collect();
            f(row(&fields))
        }
    }

    pub(crate) fn line(&self, i: usize) -> u64 {
        self.lines[i]
    }

    pub(crate) fn raw(&self, i: usize) -> &'a [u8] {
        self.raws[i]
    }
}

/// Positions of the bytes `a` and `b` in a text, in order, found 64 bytes at a time as a bit
/// mask (eight 8-byte words compared at once). Fields of an event log are a few bytes long:
/// a search call per field (`memchr2`) spends more in its set-up than in its search, where a
/// mask yields each position with a count of trailing zeros (2.3× faster on a Taobao log).
struct Marks<'t> {
    text: &'t [u8],
    /// Start of the block `mask` covers.
    block: usize,
    /// The block's positions not yet yielded, one bit per byte.
    mask: u64,
    a: u8,
    b: u8,
}

impl<'t> Marks<'t> {
    fn new(text: &'t [u8], a: u8, b: u8) -> Marks<'t> {
        let mut m = Marks {
            text,
            block: 0,
            mask: 0,
            a,
            b,
        };
        m.mask = m.load(0);
        m
    }

    /// The mask of the block starting at `at`.
    fn load(&self, at: usize) -> u64 {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        /// The high bit of each byte of `v` that is zero (exactly: no borrow crosses bytes).
        fn zero_bytes(v: u64) -> u64 {
            !(((v & !HIGH).wrapping_add(!HIGH)) | v) & HIGH
        }
        let (pa, pb) = (ONES * u64::from(self.a), ONES * u64::from(self.b));
        let word_mask = |w: u64| {
            let z = zero_bytes(w ^ pa) | zero_bytes(w ^ pb);
            // Byte k's high bit, moved to bit k of the top byte.
            (z >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56
        };
        let rest = self.text.get(at..).unwrap_or_default();
        let mut m = 0u64;
        if let Some(block) = rest.first_chunk::<64>() {
            for (k, word) in block.chunks_exact(8).enumerate() {
                m |= word_mask(u64::from_le_bytes(word.try_into().unwrap_or_default())) << (k * 8);
            }
            return m;
        }
        for (k, word) in rest.chunks(8).enumerate() {
            let mut w = [0u8; 8];
            w[..word.len()].copy_from_slice(word);
            // Bytes past the end read as zero; they are masked off below unless a or b is 0.
            let mut bits = word_mask(u64::from_le_bytes(w));
            if word.len() < 8 {
                bits &= (1 << word.len()) - 1;
            }
            m |= bits << (k * 8);
        }
        m
    }
}

impl Iterator for Marks<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        while self.mask == 0 {
            self.block += 64;
            if self.block >= self.text.len() {
                return None;
            }
            self.mask = self.load(self.block);
        }
        let bit = self.mask.trailing_zeros() as usize;
        self.mask &= self.mask - 1;
        Some(self.block + bit)
    }
}

/// Record fields as bytes, found by position where records are uniform (see
/// [`Records::layout`]).
enum Fields<'r> {
    Uniform {
        text: &'r [u8],
        spans: &'r [Span],
        width: usize,
    },
    Any(&'r Records<'r>),
}

impl<'r> Fields<'r> {
    /// Field `slot` of record `i`, if the record has it.
    #[inline]
    fn get(&self, i: usize, slot: usize) -> Option<&'r [u8]> {
        match *self {
            Fields::Uniform { text, spans, width } => {
                let s = spans.get(i * width + slot).filter(|_| slot < width)?;
                text.get(s.start as usize..s.end as usize)
            }
            Fields::Any(recs) => recs.field(i, slot).map(str::as_bytes),
        }
    }

    /// The text the fields are slices of, if they all are.
    fn text(&self) -> &'r [u8] {
        match *self {
            Fields::Uniform { text, .. } => text,
            Fields::Any(_) => &[],
        }
    }
}

/// A text column built straight from field bytes: Arrow's string builder copies each value with
/// a call sized at run time, where most fields here are a few bytes.
struct TextCol {
    values: Vec<u8>,
    offsets: Vec<i32>,
    nulls: NullBufferBuilder,
    /// The values outgrew 32-bit offsets.
    overflow: bool,
}

impl TextCol {
    fn new(rows: usize, bytes: usize) -> TextCol {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        TextCol {
            values: Vec::with_capacity(bytes + 16),
            offsets,
            nulls: NullBufferBuilder::new(rows),
            overflow: false,
        }
    }

    /// Ends the value written so far (see the `Write` impl).
    #[inline]
    fn end_value(&mut self) {
        let end = i32::try_from(self.values.len()).unwrap_or_else(|_| {
            self.overflow = true;
            0
        });
        self.offsets.push(end);
        self.nulls.append_non_null();
    }

    #[inline]
    fn push(&mut self, v: &[u8]) {
        self.values.extend_from_slice(v);
        self.end_value();
    }

    /// Pushes `v`, a slice of `text`: a value of up to 16 bytes is copied as 16 (a fixed-size
    /// copy) when the text has them after it, and the excess cut off.
    #[inline]
    fn push_from(&mut self, text: &[u8], v: &[u8]) {
        let start = (v.as_ptr() as usize).wrapping_sub(text.as_ptr() as usize);
        match text.get(start..start.wrapping_add(16)) {
            Some(block) if v.len() <= 16 => {
                let at = self.values.len();
                self.values.extend_from_slice(block);
                self.values.truncate(at + v.len());
                self.end_value();
            }
            _ => self.push(v),
        }
    }

    fn push_null(&mut self) {
        let end = self.offsets.last().copied().unwrap_or_default();
        self.offsets.push(end);
        self.nulls.append_null();
    }

    fn finish(mut self) -> Result<ArrayRef> {
        if self.overflow {
            return Err(crate::error::Error::Internal(
                "a chunk's text column holds more than 2 GiB".into(),
            ));
        }
        let offsets = OffsetBuffer::new(ScalarBuffer::from(self.offsets));
        let array =
            StringArray::try_new(offsets, Buffer::from_vec(self.values), self.nulls.finish())?;
        Ok(std::sync::Arc::new(array))
    }
}

impl std::fmt::Write for TextCol {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.values.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// What a chunk evaluated to.
pub(crate) struct Evaluated {
    /// Per table of the plan: its rows and each row's source line (when asked for).
    pub(crate) tables: Vec<(RecordBatch, Vec<u64>)>,
    /// Records set aside (index into the records) with their reason, in record order.
    pub(crate) rejected: Vec<(usize, RowError)>,
}

/// The first error of each record, if any.
struct Errors {
    bad: Vec<bool>,
    first: Vec<(usize, RowError)>,
}

impl Errors {
    fn mark(&mut self, r: usize, e: RowError) {
        if !self.bad[r] {
            self.bad[r] = true;
            self.first.push((r, e));
        }
    }
}

impl Plan {
    /// Whether a chunk may be evaluated a column at a time: no row depends on earlier rows, and
    /// each record gives at most one row per table.
    pub(crate) fn columnar(&self) -> bool {
        !self.sequential
            && self
                .tables
                .iter()
                .all(|t| t.group_by.is_empty() && !t.for_each_item)
    }

    /// Evaluates every record of a chunk, table by table and column by column.
    /// `lines`: whether each table's rows come with their source lines (rows written straight
    /// to their file need none).
    pub(crate) fn eval_columns(
        &self,
        recs: &Records<'_>,
        file: &FileCtx,
        lines: bool,
    ) -> Result<Evaluated> {
        let n = recs.len();
        let mut errs = Errors {
            bad: vec![false; n],
            first: Vec::new(),
        };
        let mut fed = vec![false; n];
        let mut built = Vec::with_capacity(self.tables.len());
        for tp in &self.tables {
            let mut sel = Vec::with_capacity(n);
            for (r, fed) in fed.iter_mut().enumerate() {
                if errs.bad[r] {
                    continue;
                }
                let take = match &tp.when {
                    None => true,
                    Some(c) => match recs.with_row(r, |row| eval_cond(c, row.fields)) {
                        Ok(t) => t,
                        Err(e) => {
                            errs.mark(r, e);
                            false
                        }
                    },
                };
                if take {
                    sel.push(r);
                    *fed = true;
                }
            }
            let cols = tp
                .cols
                .iter()
                .zip(tp.table.columns())
                .map(|(cp, def)| match cp {
                    None => Ok(recs.nulls(&def.kind.data_type(), sel.len())),
                    Some(cp) => tp.column(cp, def, &sel, recs, file, &mut errs),
                })
                .collect::<Result<Vec<ArrayRef>>>()?;
            built.push((sel, cols));
        }
        for (r, f) in fed.iter().enumerate() {
            if !f {
                errs.mark(r, RowError::no_table());
            }
        }
        let mut tables = Vec::with_capacity(built.len());
        for (tp, (sel, cols)) in self.tables.iter().zip(built) {
            // Placeholders of failed records go before the batch exists: a required column
            // holds no null.
            let cols = if sel.iter().any(|&r| errs.bad[r]) {
                let keep: BooleanArray = sel.iter().map(|&r| Some(!errs.bad[r])).collect();
                cols.iter()
                    .map(|c| filter(c, &keep))
                    .collect::<std::result::Result<Vec<_>, _>>()?
            } else {
                cols
            };
            let batch = RecordBatch::try_new(tp.table.schema(), cols)?;
            let lines = if lines {
                sel.iter()
                    .filter(|&&r| !errs.bad[r])
                    .map(|&r| recs.line(r))
                    .collect()
            } else {
                Vec::new()
            };
            tables.push((batch, lines));
        }
        let mut rejected = errs.first;
        rejected.sort_by_key(|(r, _)| *r);
        Ok(Evaluated { tables, rejected })
    }
}

impl TablePlan {
    /// Column `def` (fed by `cp`) for the selected records; a record that fails gets a null
    /// placeholder here and is marked bad, to be filtered out of every table.
    fn column(
        &self,
        cp: &ColPlan,
        def: &Column,
        sel: &[usize],
        recs: &Records<'_>,
        file: &FileCtx,
        errs: &mut Errors,
    ) -> Result<ArrayRef> {
        let fields = recs.layout();
        // The common shapes read the field straight into the column; any value they cannot
        // settle alone (blank, padded, unmapped, not plain digits) takes the general path.
        match (def.kind, cp.fast()) {
            (Kind::Text | Kind::Json, Some(Fast::RowId)) => {
                let mut col = TextCol::new(sel.len(), sel.len() * (file.hash8.len() + 9));
                for &r in sel {
                    if errs.bad[r] {
                        col.push_null();
                    } else {
                        super::push_row_id(&mut col, &file.hash8, recs.line(r));
                        col.end_value();
                    }
                }
                col.finish()
            }
            (Kind::Text | Kind::Json, Some(Fast::Text { slot, map, keep })) => {
                let text = fields.text();
                let mut col = TextCol::new(sel.len(), sel.len() * 8);
                // A cell by the general path, pushed onto the column.
                let general = |r, errs: &mut Errors, col: &mut TextCol| {
                    self.cell(cp, def, r, recs, file, errs, |v| match v {
                        Val::Text(t) => col.push(t.as_bytes()),
                        _ => col.push_null(),
                    })
                };
                for &r in sel {
                    if errs.bad[r] {
                        col.push_null();
                        continue;
                    }
                    let Some(v) = fields.get(r, slot).filter(|v| bare(v)) else {
                        general(r, errs, &mut col);
                        continue;
                    };
                    match map {
                        None => col.push_from(text, v),
                        Some(m) => match m.iter().find(|(k, _)| short_eq(k.as_bytes(), v)) {
                            Some((_, to)) => col.push(to.as_bytes()),
                            None if keep => col.push_from(text, v),
                            None => general(r, errs, &mut col),
                        },
                    }
                }
                col.finish()
            }
            (Kind::Timestamp, Some(Fast::Epoch { slot, micros })) => {
                let mut tb = ColBuilder::timestamps(sel.len());
                for &r in sel {
                    if errs.bad[r] {
                        tb.append_null();
                        continue;
                    }
                    let hit = fields
                        .get(r, slot)
                        .and_then(digits)
                        .and_then(|v| v.checked_mul(micros));
                    match hit {
                        Some(t) => tb.append_value(t),
                        None => self.cell(cp, def, r, recs, file, errs, |v| match v {
                            Val::Ts(t) => tb.append_value(t),
                            _ => tb.append_null(),
                        }),
                    }
                }
                Ok(std::sync::Arc::new(tb.finish()))
            }
            _ => {
                let mut b = ColBuilder::new(def.kind, sel.len());
                for &r in sel {
                    if errs.bad[r] {
                        b.append(&Val::Null)?;
                    } else {
                        self.cell(cp, def, r, recs, file, errs, |v| b.append(&v))?;
                    }
                }
                Ok(b.finish())
            }
        }
    }

    /// One cell by the general path (the row path's evaluation), handed to `f`; null when the
    /// record fails, which is marked with its error.
    #[expect(
        clippy::too_many_arguments,
        reason = "a cell's whole context and its consumer"
    )]
    fn cell<R>(
        &self,
        cp: &ColPlan,
        def: &Column,
        r: usize,
        recs: &Records<'_>,
        file: &FileCtx,
        errs: &mut Errors,
        f: impl FnOnce(Val<'_>) -> R,
    ) -> R {
        // Column plans of a columnar chunk never keep sequence state; this one stays empty.
        let mut seq = SeqState::default();
        recs.with_row(r, |row| match cp.eval(&row, None, file, &mut seq) {
            Ok(v) if def.required && v.is_null() => {
                errs.mark(r, self.missing(Some(cp), def));
                f(Val::Null)
            }
            Ok(v) => f(v),
            Err(e) => {
                errs.mark(r, e);
                f(Val::Null)
            }
        })
    }
}

/// Shapes of column plans with a direct kernel.
enum Fast<'p> {
    /// A source field as text, optionally through a value map (`keep`: unmapped values stay).
    Text {
        slot: usize,
        map: Option<&'p [(String, String)]>,
        keep: bool,
    },
    /// A source field of epoch numbers.
    Epoch { slot: usize, micros: i64 },
    /// The synthesised `<hash8>-<line>` id, written straight into the string buffer (it is
    /// never empty, so no default applies).
    RowId,
}

/// Whether `b` is not empty and has nothing trimming could remove (its ends are printable
/// ASCII, and so also where UTF-8 characters start and end).
#[inline]
fn bare(b: &[u8]) -> bool {
    let plain = |c: &u8| (b'!'..=b'~').contains(c);
    b.first().is_some_and(plain) && b.last().is_some_and(plain)
}

/// Byte equality compared in line: value-map keys are a few bytes, shorter than the call a
/// general comparison makes.
#[inline]
fn short_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// A non-negative integer of at most 18 plain digits (it cannot overflow).
#[inline]
fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 18 {
        return None;
    }
    let mut v = 0i64;
    for &d in b {
        let d = d.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + i64::from(d);
    }
    Some(v)
}

impl ColPlan {
    /// The direct kernel for this column, if its shape has one: no prefix, suffix or
    /// arithmetic, and a source field read as text (value map allowed) or as epoch numbers, or
    /// the synthesised row id as text without a value map.
    fn fast(&self) -> Option<Fast<'_>> {
        if self.strip_prefix.is_some()
            || self.strip_suffix.is_some()
            || !self.plus.is_empty()
            || self.times.is_some()
            || self.divide_by.is_some()
            || self.abs
        {
            return None;
        }
        match (&self.src, self.kind) {
            (&Src::Slot(slot), Kind::Text) => Some(Fast::Text {
                slot,
                map: self.map.as_deref(),
                keep: self.unmapped == Unmapped::Keep,
            }),
            (&Src::Slot(slot), Kind::Timestamp) => self.ts.epoch.map(|e| Fast::Epoch {
                slot,
                micros: e.micros(),
            }),
            (Src::Synth(Synth::RowId), Kind::Text) if self.map.is_none() => Some(Fast::RowId),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

    use std::borrow::Cow;

    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::DataType;
    use datafusion::arrow::util::pretty::pretty_format_batches;

    use super::{Records, SeqState};
    use crate::ingest::build::TableBuilder;
    use crate::ingest::mapping::MappingFile;
    use crate::ingest::plan::{FileCtx, Plan, RowCtx, RowError};

    /// Two tables: events from every row but `skip` ones (direct text, a value map that
    /// quarantines unknown values, epoch seconds, a default, a kept-unmapped map), and orders
    /// from `buy` rows (arithmetic, cases, a required id).
    const MAPPING: &str = r#"
name = "mixed"
timezone = "UTC"
[source]
header = true

[[table]]
name = "events"
when = { not = { column = "b", equals = "skip" } }
[table.columns]
event_id = { synth = "row_id" }
ts = { column = "t", epoch = "s" }
user_id = "u"
event = { column = "b", map = { pv = "product_view", buy = "order", zz = "zz" } }
item_id = { column = "i", default = "none" }
category = { column = "c", map = { x = "X" }, unmapped = "keep" }

[[table]]
name = "orders"
when = { column = "b", equals = "buy" }
[table.columns]
order_id = { column = "u", strip_prefix = "u" }
user_id = "u"
ts = { column = "t", epoch = "ms" }
net_amount = { column = "q", times = "p" }
status = { column = "b", cases = [{ when = { column = "q", equals = "0" }, value = "cancelled" }], default = "completed" }
"#;

    const HEADER: [&str; 7] = ["u", "t", "b", "i", "c", "q", "p"];

    /// Rows touching every kernel and fallback: padded (also by a Unicode space) and blank fields,
    /// unmapped and skipped rows, bad epochs and numbers, a row without a user, a short row.
    const ROWS: &[&str] = &[
        "u1,1511544070,pv,i1,x,,",
        "u2, 1511544071 ,buy,,y,2,1.5",
        " u3 ,1511544072,cart,i3,x,,",
        "u4,15115440xx,pv,i4,x,,",
        ",1511544074,pv,i5,x,,",
        "u6,1511544075,skip,i6,x,,",
        "u7,1511544076,buy,i7,z,0,9.99",
        "u8,1511544077,buy,i8,z,two,1",
        "u9,-5,zz,i9,,,",
        "u10,1511544079,pv",
        "u11,123456789012345678901,pv,i11,x,,",
        "u12,1511544080,\u{3000}pv\u{3000},i12,\u{3000}x,,",
    ];

    #[test]
    fn marks_find_what_memchr2_finds() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        // Every length around the 64-byte blocks, bytes from a small alphabet (so the marks are
        // dense) including bytes above 0x7f and zero.
        let alphabet = [b',', b'\n', b'a', b'7', 0, 0x80, 0xff, b'\t'];
        for len in 0..300 {
            let text: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            for (a, b) in [(b',', b'\n'), (b'\t', b'\n'), (0xff, 0)] {
                let want: Vec<usize> = memchr::memchr2_iter(a, b, &text).collect();
                let got: Vec<usize> = super::Marks::new(&text, a, b).collect();
                assert_eq!(got, want, "len {len}, marks {a} {b}");
            }
        }
    }

    fn plan() -> Plan {
        let m = MappingFile::parse(MAPPING, "test").unwrap();
        let header: Vec<String> = HEADER.iter().map(|h| (*h).to_string()).collect();
        Plan::compile(&m.layouts()[0], &header, chrono_tz::UTC, "f.csv", "mixed").unwrap()
    }

    /// Every record of `recs` as (line, row, fields, raw).
    fn dump(recs: &Records<'_>) -> Vec<(u64, u64, Vec<String>, String)> {
        (0..recs.len())
            .map(|i| {
                let n = recs.starts[i + 1] - recs.starts[i];
                let f = (0..n)
                    .map(|k| recs.field(i, k).unwrap().to_string())
                    .collect();
                let raw = String::from_utf8(recs.raw(i).to_vec()).unwrap();
                (recs.line(i), recs.rows[i], f, raw)
            })
            .collect()
    }

    #[test]
    fn the_plain_split_reads_records_as_the_general_splitter_does() {
        use crate::ingest::mapping::Encoding;
        use crate::ingest::source::{Chunk, Delim, TextSpec, for_each_record};
        let texts = [
            "a,b,c\nd,e,f\n",
            "a,b,c\r\n\r\n,,\r\nx,y\n  \t\nlast,line,nonl",
            "1,2,3\n\n4,5,6,7\n8,9,\r\n,\n é,ü ,中\r\n",
            "\n\n",
            "",
            "a\rb,c,d\n",
        ];
        // One set of records serves every chunk, as the reader's pool does, with a known width
        // and with any width.
        let mut plain = Records::with_capacity(1, 3);
        for (text, width) in texts.iter().flat_map(|t| [(t, Some(3)), (t, None)]) {
            let chunk = Chunk {
                bytes: text.as_bytes(),
                first_line: 7,
                quoted: true,
            };
            let spec = TextSpec {
                delim: Delim::Byte(b','),
                quoting: true,
                encoding: Encoding::Utf8,
            };
            // The general splitter, as the reader feeds the records.
            let mut general = Records::with_capacity(4, 3);
            general.reset(chunk.bytes);
            let (mut read, mut wrong_general) = (0u64, Vec::new());
            for_each_record(&chunk, &spec, |r| {
                read += 1;
                if width.is_none_or(|w| r.fields.len() == w) {
                    general.push(r.line, read, r.fields, r.raw);
                } else {
                    wrong_general.push((r.line, r.fields.len(), r.raw));
                }
            });
            plain.reset(chunk.bytes);
            let (mut read_plain, mut wrong_plain) = (0u64, Vec::new());
            plain.split(b',', width, 7, &mut read_plain, |l, n, raw| {
                wrong_plain.push((l, n, raw))
            });
            assert_eq!(dump(&plain), dump(&general), "{text:?} {width:?}");
            assert_eq!(wrong_plain, wrong_general, "{text:?}");
            assert_eq!(read_plain, read, "{text:?}");
        }
        // Hand-checked: the second text's records.
        let mut r = Records::with_capacity(1, 3);
        r.reset(texts[1].as_bytes());
        let mut wrong = Vec::new();
        r.split(b',', Some(3), 1, &mut 0, |l, n, _| wrong.push((l, n)));
        let got: Vec<(u64, Vec<String>)> =
            dump(&r).into_iter().map(|(l, _, f, _)| (l, f)).collect();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            got,
            vec![
                (1, s(&["a", "b", "c"])),
                (3, s(&["", "", ""])),
                (6, s(&["last", "line", "nonl"]))
            ]
        );
        assert_eq!(wrong, vec![(4, 2)]);
    }

    fn fields(row: &str) -> Vec<Cow<'_, str>> {
        row.split(',').map(Cow::Borrowed).collect()
    }

    /// Records of the plain split are read by position (their fields are uniform slices of the
    /// chunk); the outcome is that of records read field by field.
    #[test]
    fn fields_by_position_evaluate_as_fields_by_record() {
        let plan = plan();
        let ctx = FileCtx {
            file_name: "f.csv".into(),
            hash8: "0123abcd".into(),
        };
        let text = ROWS.join("\n");
        let mut plain = Records::with_capacity(4, HEADER.len());
        plain.reset(text.as_bytes());
        let mut wrong = Vec::new();
        plain.split(b',', Some(HEADER.len()), 2, &mut 0, |l, _, _| wrong.push(l));
        assert_eq!(wrong, [11], "the short row is no record");
        assert!(matches!(
            plain.layout(),
            super::Fields::Uniform { width: 7, .. }
        ));
        // The same records with every field owned: found record by record.
        let mut general = Records::with_capacity(4, HEADER.len());
        general.reset(text.as_bytes());
        for i in 0..plain.len() {
            plain.with_row(i, |row| {
                let owned: Vec<Cow<'_, str>> = row
                    .fields
                    .iter()
                    .map(|f| Cow::Owned(f.to_string()))
                    .collect();
                general.push(row.line, row.row, &owned, plain.raw(i));
            });
        }
        assert!(matches!(general.layout(), super::Fields::Any(_)));
        let (a, b) = (
            plan.eval_columns(&plain, &ctx, true).unwrap(),
            plan.eval_columns(&general, &ctx, true).unwrap(),
        );
        let rejected = |ev: &super::Evaluated, recs: &Records<'_>| -> Vec<(u64, RowError)> {
            ev.rejected
                .iter()
                .map(|(r, e)| (recs.line(*r), e.clone()))
                .collect()
        };
        assert_eq!(rejected(&a, &plain), rejected(&b, &general));
        assert_eq!(a.rejected.len(), 5);
        for ((x, lx), (y, ly)) in a.tables.iter().zip(&b.tables) {
            assert_eq!(lx, ly);
            assert_eq!(x, y);
        }
        assert_eq!(a.tables[0].0.num_rows(), 6);
    }

    #[test]
    fn columns_match_the_row_path_row_for_row() {
        let plan = plan();
        assert!(plan.columnar());
        let ctx = FileCtx {
            file_name: "f.csv".into(),
            hash8: "0123abcd".into(),
        };

        // The row path, as the reader runs it for a plan that is not columnar.
        let mut builders: Vec<(TableBuilder, Vec<u64>)> = plan
            .tables
            .iter()
            .map(|t| (TableBuilder::new(t.table, 4), Vec::new()))
            .collect();
        let mut rejected: Vec<(u64, RowError)> = Vec::new();
        for (i, row) in ROWS.iter().enumerate() {
            let f = fields(row);
            let line = i as u64 + 2;
            let rc = RowCtx {
                fields: &f,
                line,
                row: i as u64 + 1,
            };
            let mut out = Vec::new();
            match plan.eval(&rc, &[], &ctx, &mut SeqState::default(), &mut out) {
                Err(e) => rejected.push((line, e)),
                Ok(()) if out.is_empty() => rejected.push((line, RowError::no_table())),
                Ok(()) => {
                    for (ti, l, vals) in out {
                        builders[ti].0.push(&vals).unwrap();
                        builders[ti].1.push(l);
                    }
                }
            }
        }
        let by_rows: Vec<_> = builders
            .into_iter()
            .map(|(b, lines)| (b.finish().unwrap(), lines))
            .collect();

        // The column path over the same records.
        let owned: Vec<Vec<Cow<'_, str>>> = ROWS.iter().map(|r| fields(r)).collect();
        let mut recs = Records::with_capacity(ROWS.len(), HEADER.len());
        for (i, f) in owned.iter().enumerate() {
            recs.push(i as u64 + 2, i as u64 + 1, f, ROWS[i].as_bytes());
        }
        let ev = plan.eval_columns(&recs, &ctx, true).unwrap();
        let by_columns: Vec<(u64, RowError)> = ev
            .rejected
            .iter()
            .map(|(r, e)| (recs.line(*r), e.clone()))
            .collect();

        assert_eq!(by_columns, rejected);
        // Hand-checked: which rows fail and why.
        let reasons: Vec<String> = rejected
            .iter()
            .map(|(l, e)| format!("{l} {} {}", e.column, e.reason))
            .collect();
        assert_eq!(
            reasons,
            [
                "4 b unmapped value `cart` (mapped: buy, pv, zz)",
                "5 t `15115440xx` is not an epoch number",
                "7 * the row matches no table of the mapping",
                "9 q `two` is not a decimal number",
                "11 #4 row has 3 fields, needs at least 4",
                "12 t `123456789012345678901` is not an epoch number",
            ],
            "{reasons:#?}"
        );
        for ((a, la), (b, lb)) in by_rows.iter().zip(&ev.tables) {
            assert_eq!(la, lb);
            assert_eq!(
                pretty_format_batches(std::slice::from_ref(a))
                    .unwrap()
                    .to_string(),
                pretty_format_batches(std::slice::from_ref(b))
                    .unwrap()
                    .to_string()
            );
        }
        // Hand-checked values: maps applied after trimming (a Unicode space too), unmapped
        // categories kept, a blank one null, a padded epoch read.
        let events = &ev.tables[0].0;
        let text = |c: &str| -> Vec<Option<String>> {
            let a = cast(events.column_by_name(c).unwrap(), &DataType::Utf8).unwrap();
            a.as_string::<i32>()
                .iter()
                .map(|v| v.map(str::to_string))
                .collect()
        };
        let some = |v: &[&str]| -> Vec<Option<String>> {
            v.iter()
                .map(|s| (!s.is_empty()).then(|| (*s).to_string()))
                .collect()
        };
        assert_eq!(
            text("event"),
            some(&[
                "product_view",
                "order",
                "product_view",
                "order",
                "zz",
                "product_view"
            ])
        );
        assert_eq!(text("category"), some(&["X", "y", "X", "z", "", "X"]));
        assert_eq!(
            text("item_id"),
            some(&["i1", "none", "i5", "i7", "i9", "i12"])
        );
        assert_eq!(
            text("event_id"),
            some(&[
                "0123abcd-2",
                "0123abcd-3",
                "0123abcd-6",
                "0123abcd-8",
                "0123abcd-10",
                "0123abcd-13"
            ])
        );
        assert_eq!(text("ts")[1].as_deref(), Some("2017-11-24T17:21:11Z"));
        assert_eq!(ev.tables[0].1, vec![2, 3, 6, 8, 10, 13]);
        assert_eq!(ev.tables[1].1, vec![3, 8]);
    }
}
