//! Turning evaluated rows into Arrow record batches of a canonical table, with `group_by`
//! aggregation.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder,
    StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::record_batch::RecordBatch;

use crate::error::{Error, Result};
use crate::ingest::mapping::Agg;
use crate::ingest::plan::key_text;
use crate::ingest::value::Val;
use crate::storage::schema::{Kind, MONEY_PRECISION, MONEY_SCALE, Table};

/// A builder for one column of a canonical table.
pub(crate) enum ColBuilder {
    Text(StringBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Money(Decimal128Builder),
    Ts(TimestampMicrosecondBuilder),
    Date(Date32Builder),
    Bool(BooleanBuilder),
}

impl ColBuilder {
    pub(crate) fn new(kind: Kind, capacity: usize) -> ColBuilder {
        match kind {
            Kind::Text | Kind::Json => {
                ColBuilder::Text(StringBuilder::with_capacity(capacity, capacity * 8))
            }
            Kind::Int => ColBuilder::Int(Int64Builder::with_capacity(capacity)),
            Kind::Float => ColBuilder::Float(Float64Builder::with_capacity(capacity)),
            Kind::Money => ColBuilder::Money(
                Decimal128Builder::with_capacity(capacity)
                    .with_precision_and_scale(MONEY_PRECISION, MONEY_SCALE)
                    .unwrap_or_else(|_| Decimal128Builder::with_capacity(capacity)),
            ),
            Kind::Timestamp => ColBuilder::Ts(ColBuilder::timestamps(capacity)),
            Kind::Date => ColBuilder::Date(Date32Builder::with_capacity(capacity)),
            Kind::Bool => ColBuilder::Bool(BooleanBuilder::with_capacity(capacity)),
        }
    }

    /// A builder of UTC timestamps, as every timestamp column stores them.
    pub(crate) fn timestamps(capacity: usize) -> TimestampMicrosecondBuilder {
        TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC")
    }

    pub(crate) fn append(&mut self, v: &Val<'_>) -> Result<()> {
        match (self, v) {
            (ColBuilder::Text(b), Val::Text(t)) => b.append_value(t),
            (ColBuilder::Text(b), Val::Null) => b.append_null(),
            (ColBuilder::Int(b), Val::Int(x)) => b.append_value(*x),
            (ColBuilder::Int(b), Val::Null) => b.append_null(),
            (ColBuilder::Float(b), Val::Float(x)) => b.append_value(*x),
            (ColBuilder::Float(b), Val::Null) => b.append_null(),
            (ColBuilder::Money(b), Val::Money(x)) => b.append_value(*x),
            (ColBuilder::Money(b), Val::Null) => b.append_null(),
            (ColBuilder::Ts(b), Val::Ts(x)) => b.append_value(*x),
            (ColBuilder::Ts(b), Val::Null) => b.append_null(),
            (ColBuilder::Date(b), Val::Date(x)) => b.append_value(*x),
            (ColBuilder::Date(b), Val::Null) => b.append_null(),
            (ColBuilder::Bool(b), Val::Bool(x)) => b.append_value(*x),
            (ColBuilder::Bool(b), Val::Null) => b.append_null(),
            (_, v) => {
                return Err(Error::Internal(format!(
                    "value {v:?} does not fit its column"
                )));
            }
        }
        Ok(())
    }

    pub(crate) fn finish(self) -> ArrayRef {
        match self {
            ColBuilder::Text(mut b) => Arc::new(b.finish()),
            ColBuilder::Int(mut b) => Arc::new(b.finish()),
            ColBuilder::Float(mut b) => Arc::new(b.finish()),
            ColBuilder::Money(mut b) => Arc::new(b.finish()),
            ColBuilder::Ts(mut b) => Arc::new(b.finish()),
            ColBuilder::Date(mut b) => Arc::new(b.finish()),
            ColBuilder::Bool(mut b) => Arc::new(b.finish()),
        }
    }
}

/// Rows of one table, as Arrow builders.
pub(crate) struct TableBuilder {
    table: Table,
    /// A builder per column, or none for a column no value ever feeds (all null at the end).
    cols: Vec<Option<ColBuilder>>,
    rows: usize,
}

impl TableBuilder {
    pub(crate) fn new(table: Table, capacity: usize) -> TableBuilder {
        TableBuilder::with_columns(table, capacity, &vec![true; table.columns().len()])
    }

    /// A builder whose columns marked false are known to stay null.
    pub(crate) fn with_columns(table: Table, capacity: usize, fed: &[bool]) -> TableBuilder {
        TableBuilder {
            table,
            cols: table
                .columns()
                .iter()
                .zip(fed)
                .map(|(c, f)| f.then(|| ColBuilder::new(c.kind, capacity)))
                .collect(),
            rows: 0,
        }
    }

    pub(crate) fn push(&mut self, vals: &[Val<'_>]) -> Result<()> {
        for (b, v) in self.cols.iter_mut().zip(vals) {
            match b {
                Some(b) => b.append(v)?,
                None if v.is_null() => {}
                None => {
                    return Err(Error::Internal(format!(
                        "value {v:?} for a column never fed"
                    )));
                }
            }
        }
        self.rows += 1;
        Ok(())
    }

    pub(crate) fn finish(self) -> Result<RecordBatch> {
        let rows = self.rows;
        let cols: Vec<ArrayRef> = self
            .cols
            .into_iter()
            .zip(self.table.columns())
            .map(|(b, c)| match b {
                Some(b) => b.finish(),
                None => datafusion::arrow::array::new_null_array(&c.kind.data_type(), rows),
            })
            .collect();
        Ok(RecordBatch::try_new(self.table.schema(), cols)?)
    }
}

/// Groups rows by key columns and aggregates the other columns.
pub(crate) struct Grouper {
    key: Vec<usize>,
    aggs: Vec<Agg>,
    index: HashMap<Vec<String>, usize>,
    groups: Vec<Vec<Val<'static>>>,
}

impl Grouper {
    pub(crate) fn new(key: Vec<usize>, aggs: Vec<Agg>) -> Grouper {
        Grouper {
            key,
            aggs,
            index: HashMap::new(),
            groups: Vec::new(),
        }
    }

    pub(crate) fn add(&mut self, vals: Vec<Val<'static>>) -> Result<()> {
        let k: Vec<String> = self.key.iter().map(|i| key_text(&vals[*i])).collect();
        match self.index.get(&k) {
            None => {
                self.index.insert(k, self.groups.len());
                let mut vals = vals;
                for (v, a) in vals.iter_mut().zip(&self.aggs) {
                    if *a == Agg::Count {
                        *v = Val::Int(1);
                    }
                }
                self.groups.push(vals);
            }
            Some(&g) => {
                let acc = &mut self.groups[g];
                for ((slot, v), agg) in acc.iter_mut().zip(vals).zip(&self.aggs) {
                    combine(slot, v, *agg)?;
                }
            }
        }
        Ok(())
    }

    pub(crate) fn into_rows(self) -> Vec<Vec<Val<'static>>> {
        self.groups
    }
}

fn combine(acc: &mut Val<'static>, v: Val<'static>, agg: Agg) -> Result<()> {
    match agg {
        Agg::First => {
            if acc.is_null() {
                *acc = v;
            }
        }
        Agg::Count => {
            if let Val::Int(c) = acc {
                *c += 1;
            }
        }
        Agg::Sum => {
            *acc = match (&*acc, v) {
                (Val::Null, v) => v,
                (_, Val::Null) => return Ok(()),
                (Val::Int(a), Val::Int(b)) => Val::Int(a.saturating_add(b)),
                (Val::Float(a), Val::Float(b)) => Val::Float(a + b),
                (Val::Money(a), Val::Money(b)) => Val::Money(a + b),
                (a, b) => return Err(Error::Internal(format!("cannot sum {a:?} and {b:?}"))),
            }
        }
        Agg::Min | Agg::Max => {
            if v.is_null() {
                return Ok(());
            }
            if acc.is_null() {
                *acc = v;
                return Ok(());
            }
            let ord = compare(acc, &v);
            let replace = match agg {
                Agg::Min => ord == std::cmp::Ordering::Greater,
                _ => ord == std::cmp::Ordering::Less,
            };
            if replace {
                *acc = v;
            }
        }
    }
    Ok(())
}

fn compare(a: &Val<'_>, b: &Val<'_>) -> std::cmp::Ordering {
    match (a, b) {
        (Val::Int(x), Val::Int(y)) => x.cmp(y),
        (Val::Money(x), Val::Money(y)) => x.cmp(y),
        (Val::Ts(x), Val::Ts(y)) => x.cmp(y),
        (Val::Date(x), Val::Date(y)) => x.cmp(y),
        (Val::Float(x), Val::Float(y)) => x.total_cmp(y),
        (Val::Text(x), Val::Text(y)) => x.cmp(y),
        (Val::Bool(x), Val::Bool(y)) => x.cmp(y),
        _ => std::cmp::Ordering::Equal,
    }
}
