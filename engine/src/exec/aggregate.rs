//! Grouped aggregation state shared by the window operators, and the
//! non-windowed GROUP BY operator (emits when its input ends).

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, TimestampMillisecondArray, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::{DataType, SchemaRef, TimestampMillisecondType};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use crate::agg::{Accumulator, create_accumulator};
use crate::error::{ExecError, ExecResult};
use crate::exec::expr::{CompiledExpr, compile};
use crate::exec::group_table::GroupTable;
use crate::exec::operator::{Message, Operator};
use crate::plan::expr::Expr;
use crate::plan::logical::AggregateCall;

/// The compiled key and argument expressions of an aggregate, and what it needs
/// to create state.
pub(crate) struct AggregateSpec {
    keys: Vec<CompiledExpr>,
    key_types: Vec<DataType>,
    args: Vec<Option<CompiledExpr>>,
    calls: Vec<AggregateCall>,
    /// Output schema: [window_start, window_end,] keys, aggregates.
    pub schema: SchemaRef,
}

/// Key and argument columns evaluated for one batch.
pub(crate) struct Evaluated {
    pub keys: Vec<ArrayRef>,
    pub args: Vec<Vec<ArrayRef>>,
    pub rows: usize,
}

impl Evaluated {
    /// The argument columns of the rows at `indices` only (keys left out).
    pub fn take_args(&self, indices: &UInt32Array) -> ExecResult<Evaluated> {
        let t = |a: &ArrayRef| {
            take(a.as_ref(), indices, None).map_err(|e| ExecError::arrow("aggregate", e))
        };
        Ok(Evaluated {
            keys: vec![],
            args: self
                .args
                .iter()
                .map(|v| v.iter().map(t).collect::<ExecResult<_>>())
                .collect::<ExecResult<_>>()?,
            rows: indices.len(),
        })
    }

    /// The rows at `indices` only.
    pub fn take(&self, indices: &UInt32Array) -> ExecResult<Evaluated> {
        let t = |a: &ArrayRef| {
            take(a.as_ref(), indices, None).map_err(|e| ExecError::arrow("aggregate", e))
        };
        Ok(Evaluated {
            keys: self.keys.iter().map(t).collect::<ExecResult<_>>()?,
            args: self
                .args
                .iter()
                .map(|v| v.iter().map(t).collect::<ExecResult<_>>())
                .collect::<ExecResult<_>>()?,
            rows: indices.len(),
        })
    }
}

impl AggregateSpec {
    /// Compiles keys and arguments.
    ///
    /// # Errors
    /// An expression that cannot be compiled.
    pub fn new(
        keys: &[(Expr, String)],
        calls: &[AggregateCall],
        schema: SchemaRef,
    ) -> ExecResult<Self> {
        Ok(Self {
            keys: keys
                .iter()
                .map(|(e, _)| compile(e))
                .collect::<ExecResult<_>>()?,
            key_types: keys.iter().map(|(e, _)| e.sql_type().to_arrow()).collect(),
            args: calls
                .iter()
                .map(|c| c.arg.as_ref().map(compile).transpose())
                .collect::<ExecResult<_>>()?,
            calls: calls.to_vec(),
            schema,
        })
    }

    /// Evaluates keys and arguments over a batch.
    ///
    /// # Errors
    /// An evaluation failure.
    pub fn evaluate(&self, batch: &RecordBatch) -> ExecResult<Evaluated> {
        Ok(Evaluated {
            keys: self
                .keys
                .iter()
                .map(|k| k.evaluate(batch))
                .collect::<ExecResult<_>>()?,
            args: self
                .args
                .iter()
                .map(|a| {
                    a.as_ref()
                        .map(|e| e.evaluate(batch).map(|c| vec![c]))
                        .unwrap_or(Ok(vec![]))
                })
                .collect::<ExecResult<_>>()?,
            rows: batch.num_rows(),
        })
    }

    /// Empty state grouped by the given key types instead of the query's keys.
    ///
    /// # Errors
    /// Unsupported key or argument types (a planner bug).
    pub fn new_state_keyed_by(&self, key_types: &[DataType]) -> ExecResult<GroupedState> {
        let mut s = self.new_state()?;
        s.groups = GroupTable::new(key_types)?;
        Ok(s)
    }

    /// The query's key types.
    pub fn key_types(&self) -> &[DataType] {
        &self.key_types
    }

    /// Empty state for one window (or the whole stream).
    ///
    /// # Errors
    /// Unsupported key or argument types (a planner bug).
    pub fn new_state(&self) -> ExecResult<GroupedState> {
        Ok(GroupedState {
            groups: GroupTable::new(&self.key_types)?,
            accumulators: self
                .calls
                .iter()
                .map(|c| create_accumulator(c.func, c.arg.as_ref().map(Expr::sql_type)))
                .collect::<ExecResult<_>>()?,
            group_ids: Vec::new(),
        })
    }
}

/// A finished partial aggregate: group keys and each accumulator's state,
/// as arrays that can be merged into other states any number of times.
pub(crate) struct Frozen {
    keys: Vec<ArrayRef>,
    states: Vec<Vec<ArrayRef>>,
    rows: usize,
}

impl Frozen {
    /// Approximate bytes held.
    pub fn size(&self) -> usize {
        let arrays = self.keys.iter().chain(self.states.iter().flatten());
        arrays.map(|a| a.get_array_memory_size()).sum()
    }
}

/// Groups and their accumulators for one window.
pub(crate) struct GroupedState {
    groups: GroupTable,
    accumulators: Vec<Box<dyn Accumulator>>,
    group_ids: Vec<u32>,
}

impl GroupedState {
    /// Adds evaluated rows.
    ///
    /// # Errors
    /// An accumulator failure.
    pub fn update(&mut self, rows: &Evaluated) -> ExecResult<()> {
        self.groups
            .intern(&rows.keys, rows.rows, &mut self.group_ids)?;
        let n = self.groups.len();
        for (acc, args) in self.accumulators.iter_mut().zip(&rows.args) {
            acc.update_batch(args, &self.group_ids, n)?;
        }
        Ok(())
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Takes the keys and partial states out, as arrays.
    ///
    /// # Errors
    /// An Arrow failure while building them.
    pub fn freeze(mut self) -> ExecResult<Frozen> {
        let rows = self.groups.len();
        let keys = self.groups.key_columns()?;
        let states = self
            .accumulators
            .iter_mut()
            .map(|a| a.state(rows))
            .collect::<ExecResult<_>>()?;
        Ok(Frozen { keys, states, rows })
    }

    /// Merges a frozen partial aggregate under other keys (one row per group
    /// of `part`): e.g. many one-group sessions into one output state.
    ///
    /// # Errors
    /// An accumulator failure.
    pub fn merge_as(&mut self, keys: &[ArrayRef], part: &Frozen) -> ExecResult<()> {
        self.groups.intern(keys, part.rows, &mut self.group_ids)?;
        let n = self.groups.len();
        for (acc, state) in self.accumulators.iter_mut().zip(&part.states) {
            acc.merge_batch(state, &self.group_ids, n)?;
        }
        Ok(())
    }

    /// The final aggregate values of every group, without the keys.
    ///
    /// # Errors
    /// An accumulator failure.
    pub fn finish_values(mut self) -> ExecResult<Vec<ArrayRef>> {
        let n = self.groups.len();
        self.accumulators
            .iter_mut()
            .map(|a| a.evaluate(n))
            .collect()
    }

    /// Merges a frozen partial aggregate into this one, group by group.
    ///
    /// # Errors
    /// An accumulator failure.
    pub fn merge(&mut self, part: &Frozen) -> ExecResult<()> {
        self.merge_as(&part.keys, part)
    }

    /// Approximate heap bytes held.
    pub fn size(&self) -> usize {
        self.groups.size() + self.accumulators.iter().map(|a| a.size()).sum::<usize>()
    }

    /// One row per group: `prefix` columns (e.g. window bounds, already of
    /// the right length), keys, final aggregate values. Consumes the state.
    ///
    /// # Errors
    /// An Arrow failure building the batch.
    pub fn finish(mut self, prefix: Vec<ArrayRef>, schema: &SchemaRef) -> ExecResult<RecordBatch> {
        let n = self.groups.len();
        let mut columns = prefix;
        columns.extend(self.groups.key_columns()?);
        for acc in &mut self.accumulators {
            columns.push(acc.evaluate(n)?);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(n));
        RecordBatch::try_new_with_options(schema.clone(), columns, &options)
            .map_err(|e| ExecError::arrow("aggregate output", e))
    }
}

/// GROUP BY without a window: one state for the whole input, emitted when
/// the input ends.
pub(crate) struct GroupAggregateOp {
    spec: AggregateSpec,
    state: Option<GroupedState>,
}

impl GroupAggregateOp {
    pub fn new(spec: AggregateSpec) -> ExecResult<Self> {
        let state = Some(spec.new_state()?);
        Ok(Self { spec, state })
    }
}

impl Operator for GroupAggregateOp {
    fn name(&self) -> &'static str {
        "group_aggregate"
    }

    fn process_batch(&mut self, batch: RecordBatch, _out: &mut Vec<Message>) -> ExecResult<()> {
        let rows = self.spec.evaluate(&batch)?;
        match &mut self.state {
            Some(s) => s.update(&rows),
            None => Err(ExecError::Internal(
                "group aggregate received rows after close".into(),
            )),
        }
    }

    fn on_close(&mut self, out: &mut Vec<Message>) -> ExecResult<()> {
        if let Some(state) = self.state.take() {
            // SQL: an aggregate without GROUP BY yields one row even on empty input.
            if state.len() > 0 || self.spec.keys.is_empty() {
                let mut state = state;
                if state.len() == 0 {
                    let empty = Evaluated {
                        keys: vec![],
                        args: vec![vec![]; self.spec.calls.len()],
                        rows: 0,
                    };
                    state.groups.intern(&empty.keys, 1, &mut state.group_ids)?;
                }
                out.push(Message::Batch(state.finish(vec![], &self.spec.schema)?));
            }
        }
        Ok(())
    }
}

/// The `window_start`, `window_end` columns of `n` rows of one window.
pub(crate) fn window_prefix(start: i64, end: i64, n: usize) -> Vec<ArrayRef> {
    let bound = |v: i64| -> ArrayRef { Arc::new(TimestampMillisecondArray::from(vec![v; n])) };
    vec![bound(start), bound(end)]
}

/// Marks a row that belongs to no open window (late, NULL time, in a gap).
pub(crate) const NO_WINDOW: i64 = i64::MIN;

/// The event-time column of a window operator's input.
///
/// # Errors
/// A column that is not a TIMESTAMP (a planner bug).
pub(crate) fn time_column(
    batch: &RecordBatch,
    index: usize,
) -> ExecResult<TimestampMillisecondArray> {
    batch
        .column(index)
        .as_primitive_opt::<TimestampMillisecondType>()
        .cloned()
        .ok_or_else(|| ExecError::Internal("window time column is not a TIMESTAMP".into()))
}

/// Splits evaluated rows by the window (or pane) each belongs to, skipping
/// rows marked [`NO_WINDOW`]; windows come out in order.
///
/// # Errors
/// An Arrow failure while gathering rows.
pub(crate) fn split_by_window(
    slots: &[i64],
    rows: &Evaluated,
) -> ExecResult<Vec<(i64, Evaluated)>> {
    let mut by_window: std::collections::BTreeMap<i64, Vec<u32>> =
        std::collections::BTreeMap::new();
    for (i, &s) in slots.iter().enumerate() {
        if s != NO_WINDOW {
            by_window.entry(s).or_default().push(i as u32);
        }
    }
    by_window
        .into_iter()
        .map(|(s, idx)| Ok((s, rows.take(&UInt32Array::from(idx))?)))
        .collect()
}
