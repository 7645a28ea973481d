//! A regular join whose output is a changelog: either input updates (a
//! `GROUP BY` without a window, a ranking kept up to date), or an outer
//! join pads rows that may match later. Flink's regular join over retract
//! streams.
//!
//! Each input's rows are kept forever, per encoded key, with how many rows
//! of the other input they match. A row added (`+I`, `+U`, or any row of
//! an append-only input) is kept and joined with the other side's rows of
//! its key; a row taken back (`-U`, `-D`) is removed and its joined rows
//! are taken back. Joined rows carry the input row's `_op`. An outer join
//! emits a row without a match padded with NULLs (`+I`), takes the padded
//! row back (`-D`) when its first match comes, and pads it again when its
//! last match goes.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, Rows, SortField};
use rustc_hash::FxHashMap;

use crate::error::{ExecError, ExecResult};
use crate::exec::changelog::INSERT;
use crate::exec::expr::CompiledExpr;
use crate::exec::operator::{Collector, Message, Operator, OperatorState};
use crate::exec::rank::DELETE;
use crate::plan::logical::OP_COLUMN;

use super::JoinKind;

/// A kept row: its columns but `_op`, encoded, and its matches.
struct Stored {
    row: Box<[u8]>,
    matches: u32,
}

/// One input.
pub(super) struct Input {
    /// The input's columns (with its `_op`, if it updates).
    pub schema: SchemaRef,
    pub keys: Vec<CompiledExpr>,
    /// Every column but `_op`.
    payload: Vec<usize>,
    op: Option<usize>,
    rows: RowConverter,
    kept: FxHashMap<Box<[u8]>, Vec<Stored>>,
}

impl Input {
    pub(super) fn new(schema: SchemaRef, keys: Vec<CompiledExpr>) -> ExecResult<Self> {
        let op = schema.index_of(OP_COLUMN).ok();
        let payload: Vec<usize> = (0..schema.fields().len())
            .filter(|&c| Some(c) != op)
            .collect();
        let rows = RowConverter::new(
            payload
                .iter()
                .map(|&c| SortField::new(schema.field(c).data_type().clone()))
                .collect(),
        )
        .map_err(|e| ExecError::arrow("join rows", e))?;
        Ok(Self {
            schema,
            keys,
            payload,
            op,
            rows,
            kept: FxHashMap::default(),
        })
    }

    /// Encoded rows back as columns (the input's, with `+I` as `_op`).
    fn decode<'a>(&self, rows: impl Iterator<Item = &'a [u8]>) -> ExecResult<Vec<ArrayRef>> {
        let parser = self.rows.parser();
        let mut values = self
            .rows
            .convert_rows(rows.map(|r| parser.parse(r)))
            .map_err(|e| ExecError::arrow("join rows", e))?;
        if let Some(op) = self.op {
            let n = values.first().map_or(0, |v| v.len());
            values.insert(op, Arc::new(StringArray::from(vec![INSERT; n])));
        }
        Ok(values)
    }
}

/// A row of output: the left and right rows (`None`: padded) and its `_op`.
type Out<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, &'static str);

/// An output row whose rows are copied out of the state.
type OwnedOut = (Option<Box<[u8]>>, Option<Box<[u8]>>, &'static str);

/// The operator.
pub(super) struct UpdatingJoinOp {
    pub kind: JoinKind,
    pub inputs: [Input; 2],
    pub keys: RowConverter,
    /// Over the joined row (the left input's columns, then the right's).
    pub filter: Option<CompiledExpr>,
    pub output: SchemaRef,
    /// The minimum of the two inputs' watermarks.
    pub clock: crate::exec::union::InputsClock,
}

impl UpdatingJoinOp {
    fn probe(&mut self, side: usize, batch: &RecordBatch, out: &mut Collector) -> ExecResult<()> {
        let err = |e| ExecError::arrow("join", e);
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let this = &self.inputs[side];
        let key_cols = this
            .keys
            .iter()
            .map(|k| k.evaluate(batch))
            .collect::<ExecResult<Vec<_>>>()?;
        let valid: Vec<bool> = (0..n)
            .map(|i| key_cols.iter().all(|c| c.is_valid(i)))
            .collect();
        let keys: Rows = self.keys.convert_columns(&key_cols).map_err(err)?;
        let pick: Vec<ArrayRef> = this
            .payload
            .iter()
            .map(|&c| batch.column(c).clone())
            .collect();
        let rows = this.rows.convert_columns(&pick).map_err(err)?;
        let ops = this.op.map(|c| batch.column(c).as_string::<i32>().clone());
        // candidates: (row, index among the other side's rows of its key)
        let other = &self.inputs[1 - side];
        let mut candidates: Vec<(u32, u32)> = Vec::new();
        for (i, _) in valid.iter().enumerate().filter(|(_, v)| **v) {
            if let Some(list) = other.kept.get(keys.row(i).as_ref()) {
                candidates.extend((0..list.len() as u32).map(|j| (i as u32, j)));
            }
        }
        let pass = self.check(side, batch, &keys, &candidates)?;
        let matched: Vec<(u32, u32)> = candidates
            .into_iter()
            .zip(pass)
            .filter_map(|(c, ok)| ok.then_some(c))
            .collect();
        // apply the rows in order; the other side's rows only change counts
        let pads_this = self.kind.pads(side);
        let pads_other = self.kind.pads(1 - side);
        let [a, b] = &mut self.inputs;
        let (this, other) = if side == 0 { (a, b) } else { (b, a) };
        let mut emitted: Vec<OwnedOut> = Vec::new();
        let mut push = |mine: Option<&[u8]>, theirs: Option<&[u8]>, op: &'static str| {
            let (l, r) = if side == 0 {
                (mine, theirs)
            } else {
                (theirs, mine)
            };
            emitted.push((l.map(Into::into), r.map(Into::into), op));
        };
        let mut m = 0;
        for (i, &valid) in valid.iter().enumerate() {
            let op = ops.as_ref().map_or(INSERT, |o| op_of(o, i));
            let add = !op.starts_with('-');
            let start = m;
            while m < matched.len() && matched[m].0 == i as u32 {
                m += 1;
            }
            let key = keys.row(i);
            let row = rows.row(i);
            let list = other.kept.get_mut(key.as_ref());
            let mine = if add {
                Some(row.as_ref())
            } else {
                // a row taken back that is not kept was never added: nothing to undo
                let kept = this.kept.get_mut(key.as_ref());
                let Some(at) = kept
                    .as_ref()
                    .and_then(|k| k.iter().position(|s| s.row.as_ref() == row.as_ref()))
                else {
                    continue;
                };
                if let Some(k) = kept {
                    k.swap_remove(at);
                    if k.is_empty() {
                        this.kept.remove(key.as_ref());
                    }
                }
                Some(row.as_ref())
            };
            if let Some(list) = list {
                for &(_, j) in &matched[start..m] {
                    let o = &mut list[j as usize];
                    if add {
                        if pads_other && o.matches == 0 {
                            push(None, Some(o.row.as_ref()), DELETE);
                        }
                        o.matches += 1;
                        push(mine, Some(o.row.as_ref()), op);
                    } else {
                        o.matches = o.matches.saturating_sub(1);
                        push(mine, Some(o.row.as_ref()), op);
                        if pads_other && o.matches == 0 {
                            push(None, Some(o.row.as_ref()), INSERT);
                        }
                    }
                }
            }
            let count = (m - start) as u32;
            if pads_this && count == 0 {
                push(mine, None, if add { INSERT } else { DELETE });
            }
            // a NULL key matches nothing: kept only to be padded and taken back
            if add && (valid || pads_this) {
                this.kept
                    .entry(key.as_ref().into())
                    .or_default()
                    .push(Stored {
                        row: row.as_ref().into(),
                        matches: count,
                    });
            }
        }
        if !emitted.is_empty() {
            let refs: Vec<Out<'_>> = emitted
                .iter()
                .map(|(l, r, op)| (l.as_deref(), r.as_deref(), *op))
                .collect();
            out.push(Message::Batch(self.assemble(&refs)?));
        }
        Ok(())
    }

    /// Which candidate pairs meet the rest of the condition.
    fn check(
        &self,
        side: usize,
        batch: &RecordBatch,
        keys: &Rows,
        candidates: &[(u32, u32)],
    ) -> ExecResult<Vec<bool>> {
        let Some(filter) = &self.filter else {
            return Ok(vec![true; candidates.len()]);
        };
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let err = |e| ExecError::arrow("join", e);
        let idx = UInt32Array::from_iter_values(candidates.iter().map(|c| c.0));
        let mine = batch
            .columns()
            .iter()
            .map(|c| take(c.as_ref(), &idx, None).map_err(err))
            .collect::<ExecResult<Vec<_>>>()?;
        let other = &self.inputs[1 - side];
        let theirs = other.decode(candidates.iter().map(|&(i, j)| {
            other.kept[keys.row(i as usize).as_ref()][j as usize]
                .row
                .as_ref()
        }))?;
        let (l, r) = if side == 0 {
            (mine, theirs)
        } else {
            (theirs, mine)
        };
        let fields: Vec<Field> = self.inputs[0]
            .schema
            .fields()
            .iter()
            .chain(self.inputs[1].schema.fields())
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect();
        let joined = RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            l.into_iter().chain(r).collect(),
        )
        .map_err(err)?;
        Ok(filter
            .evaluate_predicate(&joined)?
            .values()
            .iter()
            .collect())
    }

    /// The output rows: the left's columns but `_op`, the right's, `_op`.
    fn assemble(&self, rows: &[Out<'_>]) -> ExecResult<RecordBatch> {
        let err = |e| ExecError::arrow("join output", e);
        let mut columns: Vec<ArrayRef> = Vec::new();
        for (side, input) in self.inputs.iter().enumerate() {
            let present: Vec<&[u8]> = rows
                .iter()
                .filter_map(|r| if side == 0 { r.0 } else { r.1 })
                .collect();
            let parser = input.rows.parser();
            let values = input
                .rows
                .convert_rows(present.iter().map(|r| parser.parse(r)))
                .map_err(err)?;
            // padded rows take NULLs
            let mut next = 0u32;
            let idx: UInt32Array = rows
                .iter()
                .map(|r| {
                    let has = if side == 0 { r.0 } else { r.1 };
                    has.map(|_| {
                        next += 1;
                        next - 1
                    })
                })
                .collect();
            for v in values {
                columns.push(take(v.as_ref(), &idx, None).map_err(err)?);
            }
        }
        columns.push(Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.2),
        )));
        RecordBatch::try_new(self.output.clone(), columns).map_err(err)
    }
}

fn op_of(ops: &StringArray, i: usize) -> &'static str {
    match ops.is_valid(i).then(|| ops.value(i)) {
        Some("-U") => "-U",
        Some("+U") => "+U",
        Some("-D") => DELETE,
        _ => INSERT,
    }
}

impl Operator for UpdatingJoinOp {
    fn name(&self) -> &'static str {
        "join"
    }

    fn process_batch(&mut self, batch: RecordBatch, out: &mut Collector) -> ExecResult<()> {
        self.probe(0, &batch, out)
    }

    fn process_input(
        &mut self,
        port: usize,
        batch: RecordBatch,
        out: &mut Collector,
    ) -> ExecResult<()> {
        self.probe(port.min(1), &batch, out)
    }

    fn handle_watermark(&mut self, watermark: i64, out: &mut Collector) -> ExecResult<()> {
        self.handle_input_watermark(0, watermark, out)
    }

    fn handle_input_watermark(
        &mut self,
        port: usize,
        watermark: i64,
        out: &mut Collector,
    ) -> ExecResult<()> {
        self.clock.advance(port.min(1), watermark, out);
        Ok(())
    }

    /// Parts `left` and `right`: every kept row as its key values (`key0`,
    /// ...), its columns but `_op` (`v0`, ...) and its `matches`.
    fn snapshot(&mut self) -> ExecResult<OperatorState> {
        let err = |e| ExecError::arrow("join snapshot", e);
        let mut out = OperatorState::default();
        for (name, input) in ["left", "right"].into_iter().zip(&self.inputs) {
            let all: Vec<(&[u8], &Stored)> = input
                .kept
                .iter()
                .flat_map(|(k, list)| list.iter().map(move |s| (k.as_ref(), s)))
                .collect();
            if all.is_empty() {
                continue;
            }
            let parser = self.keys.parser();
            let keys = self
                .keys
                .convert_rows(all.iter().map(|(k, _)| parser.parse(k)))
                .map_err(err)?;
            let parser = input.rows.parser();
            let values = input
                .rows
                .convert_rows(all.iter().map(|(_, s)| parser.parse(&s.row)))
                .map_err(err)?;
            let mut columns: Vec<(String, ArrayRef)> = Vec::new();
            for (i, k) in keys.into_iter().enumerate() {
                columns.push((format!("key{i}"), k));
            }
            for (i, v) in values.into_iter().enumerate() {
                columns.push((format!("v{i}"), v));
            }
            let matches = UInt32Array::from_iter_values(all.iter().map(|(_, s)| s.matches));
            columns.push(("matches".into(), Arc::new(matches)));
            out.push(
                name,
                crate::exec::grouped_state::state_batch(columns, all.len())?,
            );
        }
        Ok(out)
    }

    fn restore(&mut self, state: OperatorState) -> ExecResult<()> {
        let err = |e| ExecError::arrow("join restore", e);
        let nk = self.inputs[0].keys.len();
        for (side, name) in ["left", "right"].into_iter().enumerate() {
            for part in state.parts(name) {
                let width = self.inputs[side].payload.len();
                if part.num_columns() != nk + width + 1 {
                    return Err(ExecError::Internal(format!(
                        "a join state of {} columns does not fit {nk} keys and {width} columns",
                        part.num_columns()
                    )));
                }
                let keys = self
                    .keys
                    .convert_columns(&part.columns()[..nk])
                    .map_err(err)?;
                let input = &mut self.inputs[side];
                let rows = input
                    .rows
                    .convert_columns(&part.columns()[nk..nk + width])
                    .map_err(err)?;
                let matches = part
                    .column(nk + width)
                    .as_primitive_opt::<arrow::datatypes::UInt32Type>()
                    .ok_or_else(|| ExecError::Internal("a join state without 'matches'".into()))?;
                for i in 0..part.num_rows() {
                    input
                        .kept
                        .entry(keys.row(i).as_ref().into())
                        .or_default()
                        .push(Stored {
                            row: rows.row(i).as_ref().into(),
                            matches: matches.value(i),
                        });
                }
            }
        }
        Ok(())
    }

    fn rescalable(&self) -> bool {
        true
    }
}

/// The output columns of an updating join of `left` and `right`: each
/// input's columns but its `_op`, then `_op`.
pub(crate) fn output_schema(left: &SchemaRef, right: &SchemaRef) -> SchemaRef {
    let mut fields: Vec<Field> = left
        .fields()
        .iter()
        .chain(right.fields())
        .filter(|f| f.name() != OP_COLUMN)
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    fields.push(Field::new(OP_COLUMN, DataType::Utf8, false));
    Arc::new(Schema::new(fields))
}
