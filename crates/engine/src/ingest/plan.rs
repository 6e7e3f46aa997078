//! A mapping layout compiled against a file's columns, and the evaluation of one source row.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use chrono::{Datelike, NaiveDate, NaiveTime};
use chrono_tz::Tz;

use crate::error::{Error, Result};
use crate::ingest::mapping::{Agg, Cond, Layout, Reference, Synth, Unmapped, ValueSpec};
use crate::ingest::value::{TsParser, Val, parse_bool, parse_float, parse_int, parse_money};
use crate::storage::schema::{Kind, Table};

mod columns;
pub(crate) use columns::Records;

/// What the evaluation of a row knows about its file.
#[derive(Debug, Clone)]
pub(crate) struct FileCtx {
    pub(crate) file_name: String,
    pub(crate) hash8: String,
}

/// One source row as the plan sees it.
#[derive(Debug)]
pub(crate) struct RowCtx<'r, 'a> {
    pub(crate) fields: &'r [Cow<'a, str>],
    pub(crate) line: u64,
    pub(crate) row: u64,
}

/// Why a row cannot be stored: the offending column and the reason.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RowError {
    pub(crate) column: String,
    pub(crate) reason: String,
}

impl RowError {
    /// A row that no table of the mapping takes (every table's `when` is false).
    pub(crate) fn no_table() -> RowError {
        row_err("*", "the row matches no table of the mapping")
    }
}

fn row_err(column: &str, reason: impl Into<String>) -> RowError {
    RowError {
        column: column.to_string(),
        reason: reason.into(),
    }
}

#[derive(Debug)]
enum CondC {
    StartsWith(usize, String),
    Equals(usize, String),
    In(usize, HashSet<String>),
    Cmp(usize, std::cmp::Ordering, bool, f64),
    Empty(usize, bool),
    All(Vec<CondC>),
    Any(Vec<CondC>),
    Not(Box<CondC>),
}

#[derive(Debug)]
enum Src {
    Slot(usize),
    Const(String),
    Synth(Synth),
    Json(Vec<(String, usize)>),
    Sequence(SeqPlan),
    Cases(Vec<(CondC, CaseVal)>, Option<usize>),
    Default,
}

#[derive(Debug)]
enum CaseVal {
    Const(String),
    Slot(usize),
}

#[derive(Debug)]
struct SeqPlan {
    group: usize,
    gap: usize,
    cap: Option<i64>,
    weekday: Option<usize>,
    hour: Option<usize>,
    start: NaiveDate,
}

#[derive(Debug)]
pub(crate) struct ColPlan {
    kind: Kind,
    label: String,
    src: Src,
    default: Option<String>,
    strip_prefix: Option<String>,
    strip_suffix: Option<String>,
    /// Value map as a list: maps are small, and a scan beats hashing short strings.
    map: Option<Vec<(String, String)>>,
    unmapped: Unmapped,
    plus: Vec<(usize, String)>,
    times: Option<(usize, String)>,
    divide_by: Option<(usize, String)>,
    abs: bool,
    ts: TsParser,
    pub(crate) agg: Agg,
}

/// A compiled reference check.
#[derive(Debug, Clone)]
pub(crate) struct RefPlan {
    pub(crate) column: usize,
    pub(crate) to_table: Table,
    pub(crate) to_column: String,
    pub(crate) exclude: bool,
    pub(crate) reason: String,
}

#[derive(Debug)]
pub(crate) struct TablePlan {
    pub(crate) table: Table,
    when: Option<CondC>,
    pub(crate) group_by: Vec<usize>,
    pub(crate) for_each_item: bool,
    pub(crate) cols: Vec<Option<ColPlan>>,
    pub(crate) references: Option<RefPlan>,
    /// Key column indices checked for duplicates (empty when synthesised or grouped).
    pub(crate) checked_key: Vec<usize>,
}

/// A layout compiled against a file's columns.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) tables: Vec<TablePlan>,
    pub(crate) sequential: bool,
}

/// Per-file state of sequence timestamps.
#[derive(Debug, Default)]
pub(crate) struct SeqState {
    last: HashMap<String, NaiveDate>,
}

/// Resolves a source column reference (a name, or `#N` for the N-th field) to a field index.
struct Resolver<'h> {
    header: &'h [String],
    missing: Vec<String>,
}

impl Resolver<'_> {
    fn slot(&mut self, name: &str) -> usize {
        if let Some(n) = name.strip_prefix('#').and_then(|n| n.parse::<usize>().ok())
            && n >= 1
        {
            return n - 1;
        }
        if let Some(i) = self.header.iter().position(|h| h == name) {
            return i;
        }
        if let Some(i) = self
            .header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name.trim()))
        {
            return i;
        }
        if !self.missing.iter().any(|m| m == name) {
            self.missing.push(name.to_string());
        }
        0
    }

    fn cond(&mut self, c: &Cond) -> CondC {
        use std::cmp::Ordering::{Greater, Less};
        let mut parts = Vec::new();
        if let Some(col) = &c.column {
            let s = self.slot(col);
            if let Some(v) = &c.starts_with {
                parts.push(CondC::StartsWith(s, v.clone()));
            }
            if let Some(v) = &c.equals {
                parts.push(CondC::Equals(s, v.clone()));
            }
            if !c.one_of.is_empty() {
                parts.push(CondC::In(s, c.one_of.iter().cloned().collect()));
            }
            for (v, ord, or_equal) in [
                (c.lt, Less, false),
                (c.gt, Greater, false),
                (c.le, Less, true),
                (c.ge, Greater, true),
            ] {
                if let Some(v) = v {
                    parts.push(CondC::Cmp(s, ord, or_equal, v));
                }
            }
            if let Some(e) = c.empty {
                parts.push(CondC::Empty(s, e));
            }
        }
        if !c.all.is_empty() {
            parts.push(CondC::All(c.all.iter().map(|x| self.cond(x)).collect()));
        }
        if !c.any.is_empty() {
            parts.push(CondC::Any(c.any.iter().map(|x| self.cond(x)).collect()));
        }
        if let Some(n) = &c.not {
            parts.push(CondC::Not(Box::new(self.cond(n))));
        }
        if parts.len() == 1 {
            parts.remove(0)
        } else {
            CondC::All(parts)
        }
    }
}

impl Plan {
    /// Compiles `layout` for a file whose columns are `header`; fails listing expected vs found
    /// columns when the file does not have what the mapping reads.
    pub(crate) fn compile(
        layout: &Layout,
        header: &[String],
        tz: Tz,
        file: &str,
        mapping: &str,
    ) -> Result<Plan> {
        let mut r = Resolver {
            header,
            missing: Vec::new(),
        };
        let mut tables = Vec::new();
        let mut sequential = false;
        for tm in &layout.tables {
            let table = Table::from_name(&tm.name)
                .ok_or_else(|| Error::Internal(format!("table {}", tm.name)))?;
            let mut cols = Vec::new();
            for c in table.columns() {
                let plan = match tm.columns.get(c.name) {
                    None => None,
                    Some(spec) => {
                        let s = spec.full();
                        let p = compile_col(&s, c.kind, c.name, tz, &mut r, mapping)?;
                        sequential |= matches!(p.src, Src::Sequence(_) | Src::Synth(Synth::Row));
                        Some(p)
                    }
                };
                cols.push(plan);
            }
            let idx = |name: &str| {
                table
                    .columns()
                    .iter()
                    .position(|c| c.name == name)
                    .unwrap_or(0)
            };
            let group_by: Vec<usize> = tm.group_by.iter().map(|g| idx(g)).collect();
            let synthesised_key = table.key().iter().any(|k| {
                tm.columns.get(*k).is_some_and(|s| {
                    matches!(
                        s.full().synth,
                        Some(Synth::Line | Synth::Row | Synth::RowId)
                    )
                })
            });
            let checked_key = if group_by.is_empty() && !synthesised_key && !tm.for_each_item {
                table.key().iter().map(|k| idx(k)).collect()
            } else {
                Vec::new()
            };
            let references = tm.references.as_ref().map(|rf| compile_ref(rf, &idx));
            tables.push(TablePlan {
                table,
                when: tm.when.as_ref().map(|c| r.cond(c)),
                group_by,
                for_each_item: tm.for_each_item,
                cols,
                references,
                checked_key,
            });
        }
        if !r.missing.is_empty() {
            return Err(Error::ColumnMismatch {
                file: file.to_string(),
                mapping: mapping.to_string(),
                expected: r
                    .missing
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                found: if header.is_empty() {
                    "no columns".into()
                } else {
                    header
                        .iter()
                        .map(|h| format!("`{h}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            });
        }
        Ok(Plan { tables, sequential })
    }

    /// Evaluates one source row into `(table index, values)` pairs; `items` are a basket's items.
    pub(crate) fn eval<'s>(
        &'s self,
        row: &RowCtx<'s, '_>,
        items: &'s [Cow<'_, str>],
        file: &'s FileCtx,
        seq: &mut SeqState,
        out: &mut Vec<(usize, u64, Vec<Val<'s>>)>,
    ) -> Result<(), RowError> {
        for (ti, tp) in self.tables.iter().enumerate() {
            if let Some(c) = &tp.when
                && !eval_cond(c, row.fields)?
            {
                continue;
            }
            if tp.for_each_item {
                for (pos, item) in items.iter().enumerate() {
                    let vals = tp.eval_values(row, Some((pos + 1, item)), file, seq)?;
                    out.push((ti, row.line, vals));
                }
            } else {
                let vals = tp.eval_values(row, None, file, seq)?;
                out.push((ti, row.line, vals));
            }
        }
        Ok(())
    }
}

fn compile_ref(rf: &Reference, idx: &dyn Fn(&str) -> usize) -> RefPlan {
    // Mappings are validated first: the target always resolves.
    let (t, c) = rf.target().unwrap_or((Table::Orders, ""));
    RefPlan {
        column: idx(&rf.column),
        to_table: t,
        to_column: c.to_string(),
        exclude: rf.exclude,
        reason: rf
            .reason
            .clone()
            .unwrap_or_else(|| format!("`{}` not found in {}", rf.column, rf.to)),
    }
}

fn compile_col(
    s: &ValueSpec,
    kind: Kind,
    target: &str,
    tz: Tz,
    r: &mut Resolver<'_>,
    mapping: &str,
) -> Result<ColPlan> {
    let bad = |reason: String| Error::Mapping {
        origin: mapping.to_string(),
        reason,
    };
    let col_tz = match &s.timezone {
        Some(z) => z
            .parse::<Tz>()
            .map_err(|_| bad(format!("unknown time zone `{z}` for `{target}`")))?,
        None => tz,
    };
    let src = if let (Some(c), true) = (&s.column, s.cases.is_empty()) {
        Src::Slot(r.slot(c))
    } else if let Some(v) = &s.value {
        Src::Const(v.clone())
    } else if let Some(sy) = s.synth {
        Src::Synth(sy)
    } else if let Some(cols) = &s.json {
        Src::Json(cols.iter().map(|c| (c.clone(), r.slot(c))).collect())
    } else if let Some(q) = &s.sequence {
        let start = NaiveDate::parse_from_str(&q.start, "%Y-%m-%d")
            .map_err(|_| bad(format!("sequence start `{}` is not YYYY-MM-DD", q.start)))?;
        Src::Sequence(SeqPlan {
            group: r.slot(&q.group),
            gap: r.slot(&q.gap_days),
            cap: q.cap,
            weekday: q.weekday.as_ref().map(|w| r.slot(w)),
            hour: q.hour.as_ref().map(|h| r.slot(h)),
            start,
        })
    } else if !s.cases.is_empty() {
        let mut cases = Vec::new();
        for c in &s.cases {
            let v = match (&c.value, &c.column) {
                (Some(v), None) => CaseVal::Const(v.clone()),
                (None, Some(col)) => CaseVal::Slot(r.slot(col)),
                _ => {
                    return Err(bad(format!(
                        "a case of `{target}` needs exactly one of value or column"
                    )));
                }
            };
            cases.push((r.cond(&c.when), v));
        }
        Src::Cases(cases, s.column.as_ref().map(|c| r.slot(c)))
    } else {
        Src::Default
    };
    let label = s.column.clone().unwrap_or_else(|| target.to_string());
    Ok(ColPlan {
        kind,
        label,
        src,
        default: s.default.clone(),
        strip_prefix: s.strip_prefix.clone(),
        strip_suffix: s.strip_suffix.clone(),
        map: s
            .map
            .as_ref()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        unmapped: s.unmapped.unwrap_or_default(),
        plus: s.plus.iter().map(|t| (r.slot(t), t.clone())).collect(),
        times: s.times.as_ref().map(|t| (r.slot(t), t.clone())),
        divide_by: s.divide_by.as_ref().map(|t| (r.slot(t), t.clone())),
        abs: s.abs,
        ts: TsParser {
            format: s.format.clone(),
            epoch: s.epoch,
            tz: col_tz,
        },
        agg: s.agg,
    })
}

fn field<'r, 'a>(fields: &'r [Cow<'a, str>], slot: usize) -> Result<&'r Cow<'a, str>, RowError> {
    fields.get(slot).ok_or_else(|| {
        row_err(
            &format!("#{}", slot + 1),
            format!(
                "row has {} fields, needs at least {}",
                fields.len(),
                slot + 1
            ),
        )
    })
}

fn eval_cond(c: &CondC, f: &[Cow<'_, str>]) -> Result<bool, RowError> {
    Ok(match c {
        CondC::StartsWith(s, v) => field(f, *s)?.trim().starts_with(v.as_str()),
        CondC::Equals(s, v) => field(f, *s)?.trim() == v,
        CondC::In(s, set) => set.contains(field(f, *s)?.trim()),
        CondC::Empty(s, e) => field(f, *s)?.trim().is_empty() == *e,
        CondC::Cmp(s, ord, or_equal, v) => {
            let x = parse_float(field(f, *s)?).map_err(|e| row_err(&format!("#{}", s + 1), e))?;
            match x.partial_cmp(v) {
                Some(o) => o == *ord || (*or_equal && o == std::cmp::Ordering::Equal),
                None => false,
            }
        }
        CondC::All(cs) => {
            for c in cs {
                if !eval_cond(c, f)? {
                    return Ok(false);
                }
            }
            true
        }
        CondC::Any(cs) => {
            for c in cs {
                if eval_cond(c, f)? {
                    return Ok(true);
                }
            }
            false
        }
        CondC::Not(c) => !eval_cond(c, f)?,
    })
}

impl TablePlan {
    fn eval_values<'s>(
        &'s self,
        row: &RowCtx<'s, '_>,
        item: Option<(usize, &'s Cow<'_, str>)>,
        file: &'s FileCtx,
        seq: &mut SeqState,
    ) -> Result<Vec<Val<'s>>, RowError> {
        let mut vals = Vec::with_capacity(self.cols.len());
        for (c, def) in self.cols.iter().zip(self.table.columns()) {
            let v = match c {
                None => Val::Null,
                Some(cp) => cp.eval(row, item, file, seq)?,
            };
            if def.required && v.is_null() {
                return Err(self.missing(c.as_ref(), def));
            }
            vals.push(v);
        }
        Ok(vals)
    }
}

impl TablePlan {
    /// The error of a row without a value for the required column `def` (fed by `c`).
    fn missing(&self, c: Option<&ColPlan>, def: &crate::storage::schema::Column) -> RowError {
        row_err(
            c.map_or(def.name, |cp| cp.label.as_str()),
            format!(
                "missing value for required `{}.{}`",
                self.table.name(),
                def.name
            ),
        )
    }

    /// The source column (or target name) behind target column `i`, for messages.
    pub(crate) fn label(&self, i: usize) -> String {
        match self.cols.get(i).and_then(Option::as_ref) {
            Some(c) => c.label.clone(),
            None => self
                .table
                .columns()
                .get(i)
                .map_or_else(String::new, |c| c.name.to_string()),
        }
    }
}

impl ColPlan {
    /// The value of this column for one row. Text borrows from the row, the plan or the file
    /// wherever it can: this runs once per cell.
    fn eval<'s>(
        &'s self,
        row: &RowCtx<'s, '_>,
        item: Option<(usize, &'s Cow<'_, str>)>,
        file: &'s FileCtx,
        seq: &mut SeqState,
    ) -> Result<Val<'s>, RowError> {
        let raw: Option<Cow<'s, str>> = match &self.src {
            Src::Slot(s) => Some(Cow::Borrowed(field(row.fields, *s)?.as_ref())),
            Src::Const(v) => Some(Cow::Borrowed(v.as_str())),
            Src::Default => None,
            Src::Synth(sy) => Some(match sy {
                Synth::Line => Cow::Owned(row.line.to_string()),
                Synth::Row => Cow::Owned(row.row.to_string()),
                Synth::RowId => Cow::Owned(row_id(&file.hash8, row.line)),
                Synth::FileName => Cow::Borrowed(file.file_name.as_str()),
                Synth::ItemPosition => Cow::Owned(item.map_or(0, |(p, _)| p).to_string()),
                Synth::Item => item.map_or(Cow::Borrowed(""), |(_, it)| Cow::Borrowed(it.as_ref())),
            }),
            Src::Json(cols) => return Ok(Val::Text(Cow::Owned(json_object(cols, row.fields)?))),
            Src::Sequence(q) => return self.sequence(q, row.fields, seq).map(Val::Ts),
            Src::Cases(cases, fallback) => {
                let mut hit = match fallback {
                    Some(s) => Some(Cow::Borrowed(field(row.fields, *s)?.as_ref())),
                    None => None,
                };
                for (cond, v) in cases {
                    if eval_cond(cond, row.fields)? {
                        hit = Some(match v {
                            CaseVal::Const(c) => Cow::Borrowed(c.as_str()),
                            CaseVal::Slot(s) => Cow::Borrowed(field(row.fields, *s)?.as_ref()),
                        });
                        break;
                    }
                }
                hit
            }
        };
        let mut text = match raw {
            Some(t) if !t.trim().is_empty() => trim_cow(t),
            _ => match &self.default {
                Some(d) => Cow::Borrowed(d.as_str()),
                None => return Ok(Val::Null),
            },
        };
        if let Some(p) = &self.strip_prefix
            && let Some(rest) = text.strip_prefix(p.as_str())
        {
            text = Cow::Owned(rest.to_string());
        }
        if let Some(p) = &self.strip_suffix
            && let Some(rest) = text.strip_suffix(p.as_str())
        {
            text = Cow::Owned(rest.to_string());
        }
        if let Some(map) = &self.map {
            match map.iter().find(|(k, _)| k.as_str() == text.as_ref()) {
                Some((_, v)) => text = Cow::Borrowed(v.as_str()),
                None => match self.unmapped {
                    Unmapped::Keep => {}
                    Unmapped::Null => return Ok(Val::Null),
                    Unmapped::Error => {
                        let known: Vec<&str> = map.iter().map(|(k, _)| k.as_str()).collect();
                        return Err(row_err(
                            &self.label,
                            format!("unmapped value `{text}` (mapped: {})", known.join(", ")),
                        ));
                    }
                },
            }
        }
        let mut v = self.typed(text)?;
        for (slot, name) in &self.plus {
            let other = field(row.fields, *slot)?;
            v = add(v, other).map_err(|e| row_err(name, e))?;
        }
        if let Some((slot, name)) = &self.times {
            let other = field(row.fields, *slot)?;
            v = multiply(v, other).map_err(|e| row_err(name, e))?;
        }
        if let Some((slot, name)) = &self.divide_by {
            let other = field(row.fields, *slot)?;
            v = divide(v, other).map_err(|e| row_err(name, e))?;
        }
        if self.abs {
            v = match v {
                Val::Int(x) => Val::Int(x.abs()),
                Val::Float(x) => Val::Float(x.abs()),
                Val::Money(x) => Val::Money(x.abs()),
                other => other,
            };
        }
        Ok(v)
    }

    fn typed<'a>(&self, text: Cow<'a, str>) -> Result<Val<'a>, RowError> {
        let e = |reason: String| row_err(&self.label, reason);
        Ok(match self.kind {
            Kind::Text => Val::Text(text),
            Kind::Int => Val::Int(parse_int(&text).map_err(e)?),
            Kind::Float => Val::Float(parse_float(&text).map_err(e)?),
            Kind::Money => Val::Money(parse_money(&text).map_err(e)?),
            Kind::Bool => Val::Bool(parse_bool(&text).map_err(e)?),
            Kind::Timestamp => Val::Ts(self.ts.parse(&text).map_err(e)?),
            Kind::Date => Val::Date(self.ts.parse_date(&text).map_err(e)?),
            Kind::Json => {
                serde_json::from_str::<serde_json::Value>(&text)
                    .map_err(|x| e(format!("not JSON: {x}")))?;
                Val::Text(text)
            }
        })
    }

    fn sequence(
        &self,
        q: &SeqPlan,
        f: &[Cow<'_, str>],
        seq: &mut SeqState,
    ) -> Result<i64, RowError> {
        let group = field(f, q.group)?.trim().to_string();
        let gap_text = field(f, q.gap)?.trim();
        let weekday = match q.weekday {
            Some(s) => {
                Some(parse_int(field(f, s)?).map_err(|e| row_err(&format!("#{}", s + 1), e))?)
            }
            None => None,
        };
        let hour = match q.hour {
            Some(s) => parse_int(field(f, s)?).map_err(|e| row_err(&format!("#{}", s + 1), e))?,
            None => 0,
        };
        if !(0..24).contains(&hour) {
            return Err(row_err("hour", format!("hour {hour} is not 0–23")));
        }
        let prev = seq.last.get(&group).copied();
        let (mut date, may_move) = match (prev, gap_text.is_empty()) {
            (Some(p), false) => {
                let gap = parse_float(gap_text).map_err(|e| row_err("gap_days", e))? as i64;
                (
                    p + chrono::Duration::days(gap),
                    q.cap.is_some_and(|c| gap >= c),
                )
            }
            _ => (q.start, true),
        };
        if let Some(w) = weekday
            && may_move
        {
            // Move forward to the first day with the stated weekday (0 = Sunday): a first row,
            // or a capped gap whose true length is at least the cap.
            let want = w.rem_euclid(7) as u32;
            while date.weekday().num_days_from_sunday() != want {
                date += chrono::Duration::days(1);
            }
        }
        seq.last.insert(group, date);
        let t = NaiveTime::from_hms_opt(hour as u32, 0, 0).unwrap_or(NaiveTime::MIN);
        Ok(crate::calendar::local_to_utc_micros(
            &self.ts.tz,
            date.and_time(t),
        ))
    }
}

/// `<hash8>-<line>` without the formatting machinery (it runs once per row).
fn row_id(hash8: &str, line: u64) -> String {
    let mut s = String::with_capacity(hash8.len() + 21);
    push_row_id(&mut s, hash8, line);
    s
}

/// Appends `<hash8>-<line>` to `s`.
fn push_row_id(s: &mut impl std::fmt::Write, hash8: &str, line: u64) {
    let mut digits = [0u8; 20];
    let mut n = line;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Digits are ASCII, and a String or Arrow string builder never fails to take text.
    let digits = std::str::from_utf8(&digits[i..]).unwrap_or_default();
    let _ = s.write_str(hash8);
    let _ = s.write_char('-');
    let _ = s.write_str(digits);
}

fn trim_cow(t: Cow<'_, str>) -> Cow<'_, str> {
    match t {
        Cow::Borrowed(b) => Cow::Borrowed(b.trim()),
        Cow::Owned(o) => {
            let tr = o.trim();
            if tr.len() == o.len() {
                Cow::Owned(o)
            } else {
                Cow::Owned(tr.to_string())
            }
        }
    }
}

fn multiply<'a>(v: Val<'a>, other: &str) -> Result<Val<'a>, String> {
    Ok(match v {
        Val::Int(x) => Val::Int(
            x.checked_mul(parse_int(other)?)
                .ok_or("product out of range")?,
        ),
        Val::Float(x) => Val::Float(x * parse_float(other)?),
        Val::Money(x) => {
            let y = parse_money(other)?;
            Val::Money(x.checked_mul(y).ok_or("product out of range")? / 10_000)
        }
        Val::Null => Val::Null,
        _ => return Err("`times` needs a number".into()),
    })
}

fn add<'a>(v: Val<'a>, other: &str) -> Result<Val<'a>, String> {
    let other = other.trim();
    if other.is_empty() {
        return Ok(v);
    }
    Ok(match v {
        Val::Int(x) => Val::Int(x.checked_add(parse_int(other)?).ok_or("sum out of range")?),
        Val::Float(x) => Val::Float(x + parse_float(other)?),
        Val::Money(x) => Val::Money(x + parse_money(other)?),
        Val::Null => Val::Null,
        _ => return Err("`plus` needs a number".into()),
    })
}

fn divide<'a>(v: Val<'a>, other: &str) -> Result<Val<'a>, String> {
    let other = other.trim();
    if other.is_empty() {
        return Ok(Val::Null);
    }
    Ok(match v {
        Val::Money(x) => {
            let d = parse_money(other)?;
            if d == 0 {
                Val::Null
            } else {
                // Round half away from zero at four decimals.
                let n = x * 10_000;
                let q = n / d;
                let r = n % d;
                Val::Money(if 2 * r.abs() >= d.abs() {
                    q + n.signum() * d.signum()
                } else {
                    q
                })
            }
        }
        Val::Float(x) => {
            let d = parse_float(other)?;
            if d == 0.0 {
                Val::Null
            } else {
                Val::Float(x / d)
            }
        }
        Val::Null => Val::Null,
        _ => return Err("`divide_by` needs money or a float".into()),
    })
}

fn json_object(cols: &[(String, usize)], f: &[Cow<'_, str>]) -> Result<String, RowError> {
    let mut m = serde_json::Map::new();
    for (name, slot) in cols {
        let v = field(f, *slot)?.trim();
        if v.is_empty() {
            continue;
        }
        // Ids such as `0001` stay text; short zero-padded numbers such as an hour `08` are numbers.
        let leading_zero = v.len() > 2 && v.starts_with('0') && !v.starts_with("0.");
        let j = if leading_zero {
            serde_json::Value::String(v.to_string())
        } else if let Ok(i) = v.parse::<i64>() {
            serde_json::Value::from(i)
        } else if let Some(x) = v.parse::<f64>().ok().filter(|x| x.is_finite()) {
            serde_json::Value::from(x)
        } else {
            serde_json::Value::String(v.to_string())
        };
        m.insert(name.clone(), j);
    }
    Ok(serde_json::Value::Object(m).to_string())
}

/// The text form of a value used for keys and references.
pub(crate) fn key_text(v: &Val<'_>) -> String {
    match v {
        Val::Null => String::new(),
        Val::Text(t) => t.to_string(),
        Val::Int(x) => x.to_string(),
        Val::Float(x) => x.to_string(),
        Val::Money(x) => x.to_string(),
        Val::Ts(x) => x.to_string(),
        Val::Date(x) => x.to_string(),
        Val::Bool(x) => x.to_string(),
    }
}
