//! One input of a join: the rows kept for matching, indexed by their
//! encoded equi-join key, with the time each stops being needed.
//!
//! Rows are kept in the batches they came in (no copy per row); a batch
//! goes once every row of it has expired. A row's *expiry* is the event
//! time after which no row of the other input can match it (its interval's
//! end, its window's end; `i64::MAX` for a join that keeps rows forever).
//! An expired row matches nothing any more (even while its batch is held
//! for other rows), so what a join emits never depends on how its input
//! was batched; an outer join's unmatched rows are emitted, once, when
//! they expire.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, Int64Array, TimestampMillisecondArray};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, Rows, SortField};
use rustc_hash::FxHashMap;

use crate::error::{ExecError, ExecResult};
use crate::exec::expr::CompiledExpr;

/// A kept batch.
struct Kept {
    id: u64,
    batch: RecordBatch,
    /// Each row's encoded key (`None`: a NULL in the key, never matches).
    keys: Rows,
    valid: Vec<bool>,
    expiry: Vec<i64>,
    /// Matched at least once (outer joins emit the rows that never were).
    matched: Vec<bool>,
    /// Expired and dealt with.
    done: Vec<bool>,
    min_expiry: i64,
    max_expiry: i64,
}

/// The kept rows of one input.
pub(super) struct Side {
    pub(super) schema: SchemaRef,
    pub(super) keys: Vec<CompiledExpr>,
    converter: RowConverter,
    /// Column holding each row's expiry base (event time or window end)
    /// and what is added to it; `None`: rows never expire.
    expiry: Option<(usize, i64)>,
    kept: Vec<Kept>,
    next_id: u64,
    /// Encoded key → (kept batch, row); looked up by the probing rows'
    /// encodings without copying them.
    index: FxHashMap<Box<[u8]>, Vec<(u64, u32)>>,
    rows: usize,
}

/// A candidate match: a row of the probing batch and a kept row.
pub(super) struct Candidate {
    pub probe: u32,
    pub kept: u64,
    pub row: u32,
}

impl Side {
    pub(super) fn new(
        schema: SchemaRef,
        keys: Vec<CompiledExpr>,
        key_types: Vec<DataType>,
        expiry: Option<(usize, i64)>,
    ) -> ExecResult<Self> {
        let converter = RowConverter::new(key_types.into_iter().map(SortField::new).collect())
            .map_err(|e| ExecError::arrow("join keys", e))?;
        Ok(Self {
            schema,
            keys,
            converter,
            expiry,
            kept: Vec::new(),
            next_id: 0,
            index: FxHashMap::default(),
            rows: 0,
        })
    }

    /// Rows kept.
    pub(super) fn rows(&self) -> usize {
        self.rows
    }

    /// The encoded keys of `batch` and which rows have no NULL in them.
    pub(super) fn encode(&self, batch: &RecordBatch) -> ExecResult<(Rows, Vec<bool>)> {
        let cols: Vec<ArrayRef> = self
            .keys
            .iter()
            .map(|k| k.evaluate(batch))
            .collect::<ExecResult<_>>()?;
        let valid = (0..batch.num_rows())
            .map(|i| cols.iter().all(|c| c.is_valid(i)))
            .collect();
        let rows = self
            .converter
            .convert_columns(&cols)
            .map_err(|e| ExecError::arrow("join keys", e))?;
        Ok((rows, valid))
    }

    /// The key values of `batch` (for snapshots: `key0`, ...).
    pub(super) fn key_columns(&self, batch: &RecordBatch) -> ExecResult<Vec<ArrayRef>> {
        self.keys.iter().map(|k| k.evaluate(batch)).collect()
    }

    /// The kept rows whose key equals row `i` of `keys` (of another side's
    /// encoding of the same key types).
    pub(super) fn lookup(&self, keys: &Rows, valid: &[bool], out: &mut Vec<Candidate>) {
        for (i, &ok) in valid.iter().enumerate() {
            if !ok {
                continue;
            }
            if let Some(hits) = self.index.get(keys.row(i).as_ref()) {
                // an expired row matches nothing, whether its batch is
                // still held or not
                out.extend(
                    hits.iter()
                        .filter(|&&(kept, row)| {
                            self.find(kept).is_some_and(|k| !k.done[row as usize])
                        })
                        .map(|&(kept, row)| Candidate {
                            probe: i as u32,
                            kept,
                            row,
                        }),
                );
            }
        }
    }

    /// Row `row` of kept batch `id`, for building output.
    pub(super) fn batch(&self, id: u64) -> Option<&RecordBatch> {
        self.find(id).map(|k| &k.batch)
    }

    fn find(&self, id: u64) -> Option<&Kept> {
        let at = self.kept.partition_point(|k| k.id < id);
        self.kept.get(at).filter(|k| k.id == id)
    }

    fn find_mut(&mut self, id: u64) -> Option<&mut Kept> {
        let at = self.kept.partition_point(|k| k.id < id);
        self.kept.get_mut(at).filter(|k| k.id == id)
    }

    /// Marks kept row `row` of batch `id` as matched.
    pub(super) fn mark(&mut self, id: u64, row: u32) {
        if let Some(k) = self.find_mut(id) {
            k.matched[row as usize] = true;
        }
    }

    /// Keeps `batch` (its rows `matched` already matched).
    pub(super) fn keep(
        &mut self,
        batch: RecordBatch,
        (keys, valid): (Rows, Vec<bool>),
        matched: Vec<bool>,
    ) -> ExecResult<()> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let expiry: Vec<i64> = match self.expiry {
            None => vec![i64::MAX; n],
            Some((col, plus)) => {
                let t = batch
                    .column(col)
                    .as_any()
                    .downcast_ref::<TimestampMillisecondArray>()
                    .ok_or_else(|| {
                        ExecError::Internal("a join time column is not a TIMESTAMP".into())
                    })?;
                // a row without a time expires at once (it can match nothing in time)
                (0..n)
                    .map(|i| {
                        if t.is_valid(i) {
                            t.value(i).saturating_add(plus)
                        } else {
                            i64::MIN
                        }
                    })
                    .collect()
            }
        };
        let id = self.next_id;
        self.next_id += 1;
        for (i, &ok) in valid.iter().enumerate() {
            if ok {
                self.index
                    .entry(Box::from(keys.row(i).as_ref()))
                    .or_default()
                    .push((id, i as u32));
            }
        }
        self.rows += n;
        self.kept.push(Kept {
            id,
            min_expiry: expiry.iter().copied().min().unwrap_or(i64::MAX),
            max_expiry: expiry.iter().copied().max().unwrap_or(i64::MAX),
            batch,
            keys,
            valid,
            expiry,
            matched,
            done: vec![false; n],
        });
        Ok(())
    }

    /// Rows whose expiry is before `time`: dropped; of those never
    /// matched, the ones an outer join must emit are returned (`unmatched`).
    pub(super) fn expire(&mut self, time: i64, unmatched: bool) -> ExecResult<Vec<RecordBatch>> {
        let mut out = Vec::new();
        let mut gone = Vec::new();
        for k in &mut self.kept {
            if k.min_expiry >= time {
                continue;
            }
            let mut lonely = Vec::new();
            for i in 0..k.expiry.len() {
                if !k.done[i] && k.expiry[i] < time {
                    k.done[i] = true;
                    if unmatched && !k.matched[i] {
                        lonely.push(i as u32);
                    }
                }
            }
            if !lonely.is_empty() {
                let idx = arrow::array::UInt32Array::from(lonely);
                out.push(
                    arrow::compute::take_record_batch(&k.batch, &idx)
                        .map_err(|e| ExecError::arrow("join", e))?,
                );
            }
            k.min_expiry = (0..k.expiry.len())
                .filter(|&i| !k.done[i])
                .map(|i| k.expiry[i])
                .min()
                .unwrap_or(i64::MAX);
            if k.max_expiry < time {
                gone.push(k.id);
            }
        }
        for id in gone {
            self.drop_batch(id);
        }
        Ok(out)
    }

    fn drop_batch(&mut self, id: u64) {
        let at = self.kept.partition_point(|k| k.id < id);
        if self.kept.get(at).is_none_or(|k| k.id != id) {
            return;
        }
        let k = self.kept.remove(at);
        self.rows -= k.batch.num_rows();
        for (i, &ok) in k.valid.iter().enumerate() {
            if !ok {
                continue;
            }
            let key = k.keys.row(i);
            if let Some(hits) = self.index.get_mut(key.as_ref()) {
                hits.retain(|&(b, _)| b != id);
                if hits.is_empty() {
                    self.index.remove(key.as_ref());
                }
            }
        }
    }

    /// The kept rows not yet expired, as one batch: `key0`.. (the key
    /// values, so a restore with another number of workers can split it),
    /// the columns `c0`.., then `matched`.
    pub(super) fn snapshot(&self) -> ExecResult<Option<RecordBatch>> {
        let mut parts = Vec::new();
        for k in &self.kept {
            let live: Vec<bool> = k.done.iter().map(|d| !d).collect();
            let mask = BooleanArray::from(live);
            let rows = arrow::compute::filter_record_batch(&k.batch, &mask)
                .map_err(|e| ExecError::arrow("join snapshot", e))?;
            if rows.num_rows() == 0 {
                continue;
            }
            let matched = arrow::compute::filter(&BooleanArray::from(k.matched.clone()), &mask)
                .map_err(|e| ExecError::arrow("join snapshot", e))?;
            let mut fields = Vec::new();
            let mut columns = Vec::new();
            for (i, c) in self.key_columns(&rows)?.into_iter().enumerate() {
                fields.push(Field::new(format!("key{i}"), c.data_type().clone(), true));
                columns.push(c);
            }
            for (i, c) in rows.columns().iter().enumerate() {
                fields.push(Field::new(format!("c{i}"), c.data_type().clone(), true));
                columns.push(c.clone());
            }
            fields.push(Field::new("matched", DataType::Boolean, true));
            columns.push(matched);
            parts.push(
                RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
                    .map_err(|e| ExecError::arrow("join snapshot", e))?,
            );
        }
        let Some(first) = parts.first() else {
            return Ok(None);
        };
        concat_batches(&first.schema(), &parts)
            .map(Some)
            .map_err(|e| ExecError::arrow("join snapshot", e))
    }

    /// Keeps the rows of a [`Side::snapshot`] again.
    pub(super) fn restore(&mut self, part: &RecordBatch) -> ExecResult<()> {
        let width = self.schema.fields().len();
        let keys = self.keys.len();
        if part.num_columns() != keys + width + 1 {
            return Err(ExecError::Internal(format!(
                "a join state of {} columns does not fit {keys} keys and {width} columns",
                part.num_columns()
            )));
        }
        let columns = part.columns()[keys..keys + width].to_vec();
        let batch = RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| ExecError::arrow("join restore", e))?;
        let matched = part
            .column(keys + width)
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or_else(|| ExecError::Internal("a join state without 'matched'".into()))?;
        let matched: Vec<bool> = (0..matched.len()).map(|i| matched.value(i)).collect();
        let encoded = self.encode(&batch)?;
        self.keep(batch, encoded, matched)
    }
}

/// A one-value column for snapshots.
pub(super) fn one(v: i64) -> ArrayRef {
    Arc::new(Int64Array::from(vec![v]))
}
