//! Row windows: `agg(x) OVER (PARTITION BY k ORDER BY time ROWS|RANGE ...
//! PRECEDING AND CURRENT ROW)`, one output row per input row.
//!
//! Rows wait until the watermark (minus the allowed lateness) passes their
//! event time, then are processed in event-time order (ties in arrival
//! order), as Flink does, so the result does not depend on arrival order.
//! Each partition keeps its frame as a queue; every aggregate is updated
//! incrementally: sums and counts add the new row and retract the rows that
//! leave the frame, MIN/MAX keep a monotonic queue (each row enters and
//! leaves it once), so a row costs O(1) amortised whatever the frame size.

use std::collections::VecDeque;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, UInt32Array};
use arrow::compute::{cast, concat_batches, take_record_batch};
use arrow::datatypes::{DataType, Float64Type, Int64Type, SchemaRef};
use arrow::record_batch::RecordBatch;

use crate::agg::AggregateFunction as F;
use crate::error::{ExecError, ExecResult};
use crate::exec::aggregate::{Rejects, time_column};
use crate::exec::expr::{CompiledExpr, compile};
use crate::exec::group_table::GroupTable;
use crate::exec::metrics::QueryMetrics;
use crate::exec::operator::{Collector, Message, Operator, OperatorState};
use crate::exec::row_window_udaf::UdafFrames;
use crate::plan::explain::{Params, aggs, named, with_lateness};
use crate::plan::expr::Expr;
use crate::plan::logical::{AggregateCall, Frame, Lateness};
use crate::plan::physical::{BuildContext, NodeKind};
use crate::types::{SqlType, format_interval_ms};

/// Aggregates over a frame of preceding rows, per partition, in event-time
/// order: one output row per input row.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RowWindowNode {
    /// Output columns: the input's, then one per call.
    #[serde(with = "crate::plan::serde_plan::schema")]
    pub output_schema: SchemaRef,
    /// Partition keys.
    pub partition: Vec<(Expr, String)>,
    /// Event-time column.
    pub time_column: usize,
    /// Its name.
    pub time_name: String,
    /// The frame.
    pub frame: Frame,
    /// Aggregates.
    pub calls: Vec<AggregateCall>,
    /// When rows are final.
    pub lateness: Lateness,
}

impl NodeKind for RowWindowNode {
    fn explain(&self) -> (&'static str, Params) {
        let frame = match self.frame {
            Frame::Rows(n) => format!("ROWS {n} PRECEDING"),
            Frame::Range(ms) => format!("RANGE {} PRECEDING", format_interval_ms(ms)),
            Frame::Unbounded => "ROWS UNBOUNDED PRECEDING".into(),
        };
        let mut params = vec![
            ("partition".to_string(), named(&self.partition)),
            ("order".to_string(), self.time_name.clone()),
            ("frame".to_string(), frame),
            ("aggs".to_string(), aggs(&self.calls)),
        ];
        with_lateness(&mut params, &self.lateness);
        ("RowWindowAggregate", params)
    }

    fn output_schema(&self, _input: &SchemaRef) -> SchemaRef {
        self.output_schema.clone()
    }

    fn build(&self, ctx: &BuildContext<'_>) -> ExecResult<Option<Box<dyn Operator>>> {
        Ok(Some(Box::new(RowWindowOp::new(
            &self.partition,
            &self.calls,
            self.time_column,
            self.frame,
            self.output_schema.clone(),
            self.lateness,
            ctx.metrics.clone(),
        )?)))
    }
}

mod state;

/// A value an aggregate folds: BIGINT-like or DOUBLE.
trait Num: Copy + PartialOrd {
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    const ZERO: Self;
}

impl Num for i64 {
    fn add(self, o: Self) -> Self {
        self.wrapping_add(o)
    }
    fn sub(self, o: Self) -> Self {
        self.wrapping_sub(o)
    }
    const ZERO: Self = 0;
}

impl Num for f64 {
    fn add(self, o: Self) -> Self {
        self + o
    }
    fn sub(self, o: Self) -> Self {
        self - o
    }
    const ZERO: Self = 0.0;
}

/// Running sum and count of the non-NULL values in the frame.
#[derive(Default)]
struct Sum<T> {
    values: VecDeque<Option<T>>,
    sum: Option<T>,
    valid: i64,
}

impl<T: Num> Sum<T> {
    #[inline]
    fn push(&mut self, v: Option<T>) {
        if let Some(x) = v {
            self.sum = Some(self.sum.unwrap_or(T::ZERO).add(x));
            self.valid += 1;
        }
        self.values.push_back(v);
    }

    #[inline]
    fn evict(&mut self) {
        if let Some(Some(x)) = self.values.pop_front() {
            self.valid -= 1;
            self.sum = if self.valid == 0 {
                None
            } else {
                self.sum.map(|s| s.sub(x))
            };
        }
    }
}

/// MIN or MAX: a queue of (row number, value) whose values only get worse
/// from front to back; the front is the answer.
#[derive(Default)]
struct Extreme<T> {
    queue: VecDeque<(u64, T)>,
}

impl<T: Num> Extreme<T> {
    #[inline]
    fn push(&mut self, seq: u64, v: Option<T>, max: bool) {
        let Some(x) = v else { return };
        while let Some(&(_, b)) = self.queue.back() {
            let dominated = if max { b <= x } else { b >= x };
            if !dominated {
                break;
            }
            self.queue.pop_back();
        }
        self.queue.push_back((seq, x));
    }

    /// Row `seq` left the frame.
    #[inline]
    fn evict(&mut self, seq: u64) {
        if self.queue.front().is_some_and(|&(s, _)| s == seq) {
            self.queue.pop_front();
        }
    }

    #[inline]
    fn value(&self) -> Option<T> {
        self.queue.front().map(|&(_, v)| v)
    }
}

/// One aggregate's state over one partition's frame.
enum CallState {
    CountStar,
    Count(VecDeque<bool>, i64),
    SumInt(Sum<i64>),
    SumDouble(Sum<f64>),
    Avg(Sum<f64>),
    MinMaxInt(Extreme<i64>, bool),
    MinMaxDouble(Extreme<f64>, bool),
}

/// An argument column as the state folds it.
enum Arg {
    None,
    Int(Int64Array),
    Double(Float64Array),
}

impl CallState {
    fn new(call: &AggregateCall) -> Self {
        let double = call.arg.as_ref().map(Expr::sql_type) == Some(SqlType::Double);
        match call.func {
            F::CountStar => CallState::CountStar,
            F::Sum if double => CallState::SumDouble(Sum::default()),
            F::Sum => CallState::SumInt(Sum::default()),
            F::Avg => CallState::Avg(Sum::default()),
            F::Min | F::Max if double => {
                CallState::MinMaxDouble(Extreme::default(), call.func == F::Max)
            }
            F::Min | F::Max => CallState::MinMaxInt(Extreme::default(), call.func == F::Max),
            // computed by the aggregate UDF fallback, not here
            F::Wasm => CallState::CountStar,
            _ => CallState::Count(VecDeque::new(), 0),
        }
    }

    #[inline]
    fn push(&mut self, seq: u64, arg: &Arg, row: usize) {
        let int = |a: &Arg| match a {
            Arg::Int(v) => v.is_valid(row).then(|| v.value(row)),
            _ => None,
        };
        let double = |a: &Arg| match a {
            Arg::Double(v) => v.is_valid(row).then(|| v.value(row)),
            Arg::Int(v) => v.is_valid(row).then(|| v.value(row) as f64),
            Arg::None => None,
        };
        match self {
            CallState::CountStar => {}
            CallState::Count(valid, n) => {
                let ok = match arg {
                    Arg::Int(v) => v.is_valid(row),
                    Arg::Double(v) => v.is_valid(row),
                    Arg::None => false,
                };
                *n += i64::from(ok);
                valid.push_back(ok);
            }
            CallState::SumInt(s) => s.push(int(arg)),
            CallState::SumDouble(s) | CallState::Avg(s) => s.push(double(arg)),
            CallState::MinMaxInt(e, max) => e.push(seq, int(arg), *max),
            CallState::MinMaxDouble(e, max) => e.push(seq, double(arg), *max),
        }
    }

    #[inline]
    fn evict(&mut self, seq: u64) {
        match self {
            CallState::CountStar => {}
            CallState::Count(valid, n) => *n -= i64::from(valid.pop_front().unwrap_or(false)),
            CallState::SumInt(s) => s.evict(),
            CallState::SumDouble(s) | CallState::Avg(s) => s.evict(),
            CallState::MinMaxInt(e, _) => e.evict(seq),
            CallState::MinMaxDouble(e, _) => e.evict(seq),
        }
    }
}

/// One partition's frame.
struct Partition {
    times: VecDeque<i64>,
    /// Row number of `times[0]`.
    first: u64,
    calls: Vec<CallState>,
}

/// Output values of one call, built row by row.
enum Out {
    Int(Vec<Option<i64>>),
    Double(Vec<Option<f64>>),
}

/// The row window operator.
pub(crate) struct RowWindowOp {
    keys: Vec<CompiledExpr>,
    table: GroupTable,
    args: Vec<Option<CompiledExpr>>,
    calls: Vec<AggregateCall>,
    time_column: usize,
    frame: Frame,
    schema: SchemaRef,
    partitions: Vec<Partition>,
    /// Rows waiting for the watermark, in arrival order.
    pending: Vec<RecordBatch>,
    rejects: Rejects,
    ids: Vec<u32>,
    /// Aggregate UDFs, recomputed per frame (see `row_window_udaf`).
    udafs: Option<UdafFrames>,
}

impl RowWindowOp {
    /// # Errors
    /// A key or argument that cannot be compiled.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        partition: &[(Expr, String)],
        calls: &[AggregateCall],
        time_column: usize,
        frame: Frame,
        schema: SchemaRef,
        lateness: Lateness,
        metrics: Arc<QueryMetrics>,
    ) -> ExecResult<Self> {
        let key_types: Vec<DataType> = partition
            .iter()
            .map(|(e, _)| e.sql_type().to_arrow())
            .collect();
        Ok(Self {
            keys: partition
                .iter()
                .map(|(e, _)| compile(e))
                .collect::<ExecResult<_>>()?,
            table: GroupTable::new(&key_types)?,
            args: calls
                .iter()
                .map(|c| c.arg.as_ref().map(compile).transpose())
                .collect::<ExecResult<_>>()?,
            calls: calls.to_vec(),
            time_column,
            frame,
            schema,
            partitions: Vec::new(),
            pending: Vec::new(),
            rejects: Rejects::new(lateness, metrics),
            ids: Vec::new(),
            udafs: UdafFrames::new(calls)?,
        })
    }

    /// Processes, in event-time order, the waiting rows at or before `until`.
    fn release(&mut self, until: i64, out: &mut Collector) -> ExecResult<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let err = |e| ExecError::arrow("row window", e);
        let input_schema = self.pending[0].schema();
        let all = concat_batches(&input_schema, &self.pending).map_err(err)?;
        self.pending.clear();
        let ts = time_column(&all, self.time_column)?;
        let (mut ready, mut wait): (Vec<u32>, Vec<u32>) = (Vec::new(), Vec::new());
        for i in 0..all.num_rows() {
            if ts.value(i) <= until {
                ready.push(i as u32);
            } else {
                wait.push(i as u32);
            }
        }
        if !wait.is_empty() {
            self.pending
                .push(take_record_batch(&all, &UInt32Array::from(wait)).map_err(err)?);
        }
        if ready.is_empty() {
            return Ok(());
        }
        // stable: rows with equal times keep their arrival order
        ready.sort_by_key(|&i| ts.value(i as usize));
        let rows = take_record_batch(&all, &UInt32Array::from(ready)).map_err(err)?;
        out.push(Message::Batch(self.compute(&rows)?));
        Ok(())
    }

    /// The output for rows in processing order: their columns, then the aggregates.
    fn compute(&mut self, rows: &RecordBatch) -> ExecResult<RecordBatch> {
        let err = |e| ExecError::arrow("row window", e);
        let n = rows.num_rows();
        let keys: Vec<ArrayRef> = self
            .keys
            .iter()
            .map(|k| k.evaluate(rows))
            .collect::<ExecResult<_>>()?;
        let mut ids = std::mem::take(&mut self.ids);
        self.table.intern(&keys, n, &mut ids)?;
        while self.partitions.len() < self.table.len() {
            self.partitions.push(Partition {
                times: VecDeque::new(),
                first: 0,
                calls: self.calls.iter().map(CallState::new).collect(),
            });
        }
        let args: Vec<Arg> = self
            .args
            .iter()
            .map(|a| -> ExecResult<Arg> {
                let Some(a) = a else { return Ok(Arg::None) };
                let v = a.evaluate(rows)?;
                Ok(match v.data_type() {
                    DataType::Float64 => Arg::Double(v.as_primitive::<Float64Type>().clone()),
                    DataType::Null => Arg::None,
                    _ => Arg::Int(
                        cast(&v, &DataType::Int64)
                            .map_err(err)?
                            .as_primitive::<Int64Type>()
                            .clone(),
                    ),
                })
            })
            .collect::<ExecResult<_>>()?;
        let mut outs: Vec<Out> = self
            .calls
            .iter()
            .map(|c| match c.ret {
                SqlType::Double => Out::Double(Vec::with_capacity(n)),
                _ => Out::Int(Vec::with_capacity(n)),
            })
            .collect();
        let ts = time_column(rows, self.time_column)?;
        let batch_id = match &mut self.udafs {
            Some(u) => u.begin(rows, self.partitions.len())?,
            None => 0,
        };
        for (r, &id) in ids.iter().enumerate() {
            let t = ts.value(r);
            let p = &mut self.partitions[id as usize];
            let seq = p.first + p.times.len() as u64;
            p.times.push_back(t);
            if let Some(u) = &mut self.udafs {
                u.push(id as usize, batch_id, r as u32);
            }
            for (state, arg) in p.calls.iter_mut().zip(&args) {
                state.push(seq, arg, r);
            }
            // rows that leave the frame, oldest first
            loop {
                let leave = match self.frame {
                    Frame::Rows(k) => p.times.len() as u64 > k + 1,
                    Frame::Range(ms) => p.times.front().is_some_and(|&f| f < t.saturating_sub(ms)),
                    Frame::Unbounded => false,
                };
                if !leave {
                    break;
                }
                p.times.pop_front();
                for state in &mut p.calls {
                    state.evict(p.first);
                }
                p.first += 1;
                if let Some(u) = &mut self.udafs {
                    u.evict(id as usize);
                }
            }
            if let Some(u) = &mut self.udafs {
                u.record(id as usize, r as u32);
            }
            let len = p.times.len() as i64;
            for (state, out) in p.calls.iter().zip(&mut outs) {
                match (state, out) {
                    (CallState::CountStar, Out::Int(o)) => o.push(Some(len)),
                    // an aggregate UDF's placeholder: its column comes from the fallback
                    (CallState::CountStar, Out::Double(o)) => o.push(None),
                    (CallState::Count(_, c), Out::Int(o)) => o.push(Some(*c)),
                    (CallState::SumInt(s), Out::Int(o)) => o.push(s.sum),
                    (CallState::SumDouble(s), Out::Double(o)) => o.push(s.sum),
                    (CallState::Avg(s), Out::Double(o)) => {
                        o.push(s.sum.map(|x| x / s.valid as f64));
                    }
                    (CallState::MinMaxInt(e, _), Out::Int(o)) => o.push(e.value()),
                    (CallState::MinMaxDouble(e, _), Out::Double(o)) => o.push(e.value()),
                    _ => return Err(ExecError::Internal("row window state mismatch".into())),
                }
            }
        }
        self.ids = ids;
        let mut udaf_results = match &mut self.udafs {
            Some(u) => u.finish(n)?,
            None => Vec::new(),
        };
        let mut columns = rows.columns().to_vec();
        for (k, (out, call)) in outs.into_iter().zip(&self.calls).enumerate() {
            if let Some(pos) = udaf_results.iter().position(|(i, _)| *i == k) {
                columns.push(udaf_results.swap_remove(pos).1);
                continue;
            }
            let a: ArrayRef = match out {
                Out::Int(v) => Arc::new(Int64Array::from(v)),
                Out::Double(v) => Arc::new(Float64Array::from(v)),
            };
            let target = call.ret.to_arrow();
            columns.push(if a.data_type() == &target {
                a
            } else {
                cast(&a, &target).map_err(err)?
            });
        }
        RecordBatch::try_new(self.schema.clone(), columns).map_err(err)
    }
}

impl Operator for RowWindowOp {
    fn name(&self) -> &'static str {
        "row_window"
    }

    /// See `row_window/state.rs` for the parts.
    fn snapshot(&mut self) -> ExecResult<OperatorState> {
        self.snapshot_state()
    }

    fn restore(&mut self, state: OperatorState) -> ExecResult<()> {
        self.restore_state(state)
    }

    fn retained_event_time(&self) -> Option<i64> {
        // rows not yet released (their outputs are still to come)
        self.pending
            .iter()
            .filter_map(|b| {
                let ts = time_column(b, self.time_column).ok()?;
                arrow::compute::min(&ts)
            })
            .min()
    }

    fn process_batch(&mut self, batch: RecordBatch, out: &mut Collector) -> ExecResult<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let ts = time_column(&batch, self.time_column)?;
        let mut keep = Vec::with_capacity(batch.num_rows());
        for i in 0..batch.num_rows() {
            if ts.is_null(i) {
                self.rejects.null_time(i);
            } else if ts.value(i) < self.rejects.closed_until() {
                // rows up to the watermark have been processed: too late
                self.rejects.late(i);
            } else {
                if ts.value(i) < self.rejects.watermark() {
                    self.rejects.accepted();
                }
                keep.push(i as u32);
            }
        }
        self.rejects.finish(&batch, &ts, out)?;
        if keep.len() == batch.num_rows() {
            self.pending.push(batch);
        } else if !keep.is_empty() {
            let kept = take_record_batch(&batch, &UInt32Array::from(keep))
                .map_err(|e| ExecError::arrow("row window", e))?;
            self.pending.push(kept);
        }
        Ok(())
    }

    fn handle_watermark(&mut self, watermark: i64, out: &mut Collector) -> ExecResult<()> {
        if let Some(closed) = self.rejects.advance(watermark) {
            self.release(closed, out)?;
        }
        out.push(Message::Watermark(watermark));
        Ok(())
    }

    fn on_close(&mut self, out: &mut Collector) -> ExecResult<()> {
        self.release(i64::MAX, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Monotonic queues against a rescan of every frame, on random data.
    #[test]
    fn extremes_and_sums_match_a_rescan() {
        let mut x: u64 = 99;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for width in [1usize, 2, 5, 17] {
            let mut max = Extreme::<i64>::default();
            let mut min = Extreme::<i64>::default();
            let mut sum = Sum::<i64>::default();
            let mut frame: VecDeque<Option<i64>> = VecDeque::new();
            let mut first = 0u64;
            for seq in 0..2000u64 {
                let v = (next() % 7 != 0).then(|| (next() % 100) as i64 - 50);
                frame.push_back(v);
                max.push(seq, v, true);
                min.push(seq, v, false);
                sum.push(v);
                while frame.len() > width {
                    frame.pop_front();
                    max.evict(first);
                    min.evict(first);
                    sum.evict();
                    first += 1;
                }
                let vals: Vec<i64> = frame.iter().flatten().copied().collect();
                assert_eq!(
                    max.value(),
                    vals.iter().max().copied(),
                    "max, width {width}"
                );
                assert_eq!(
                    min.value(),
                    vals.iter().min().copied(),
                    "min, width {width}"
                );
                let s = (!vals.is_empty()).then(|| vals.iter().sum::<i64>());
                assert_eq!(sum.sum, s, "sum, width {width}");
            }
        }
    }
}
