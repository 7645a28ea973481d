//! Row windows: `agg(x) OVER (PARTITION BY k ORDER BY time ROWS|RANGE ...
//! PRECEDING AND CURRENT ROW)`, one output row per input row.
//!
//! Rows wait until the watermark (minus the allowed lateness) passes their
//! event time, then are processed in event-time order (ties in arrival
//! order), as Flink does, so the result does not depend on arrival order.
//! Each partition keeps its frame's event times as a queue; every aggregate
//! runs on a frame accumulator from `agg/` (`agg/frame.rs` for the
//! built-ins, updated incrementally as rows enter and leave, and
//! `agg/wasm_frames.rs` for aggregate UDFs).

use std::collections::VecDeque;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, UInt32Array};
use arrow::compute::{cast, concat_batches, take_record_batch};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;

use crate::agg::frame::{FrameAccumulator, frame_accumulator};
use crate::agg::wasm_frames::WasmFrames;
use crate::error::{ExecError, ExecResult};
use crate::exec::aggregate::{Rejects, time_column};
use crate::exec::expr::{CompiledExpr, compile};
use crate::exec::group_table::GroupTable;
use crate::exec::metrics::QueryMetrics;
use crate::exec::operator::{Collector, Message, Operator, OperatorState};
use crate::plan::explain::{Params, aggs, named, with_lateness};
use crate::plan::expr::Expr;
use crate::plan::logical::{AggregateCall, Frame, Lateness};
use crate::plan::physical::{BuildContext, NodeKind};
use crate::types::format_interval_ms;

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

/// The row window operator.
pub(crate) struct RowWindowOp {
    keys: Vec<CompiledExpr>,
    table: GroupTable,
    /// Per call, its argument expressions.
    args: Vec<Vec<CompiledExpr>>,
    calls: Vec<AggregateCall>,
    /// Per call, its frames (`agg/frame.rs`, `agg/wasm_frames.rs`).
    frames: Vec<Box<dyn FrameAccumulator>>,
    time_column: usize,
    frame: Frame,
    schema: SchemaRef,
    /// Per partition (a `table` id), the event times of its frame's rows.
    partitions: Vec<VecDeque<i64>>,
    /// Rows waiting for the watermark, in arrival order.
    pending: Vec<RecordBatch>,
    rejects: Rejects,
    ids: Vec<u32>,
}

/// The frame accumulator of one call.
fn frames_of(call: &AggregateCall) -> ExecResult<Box<dyn FrameAccumulator>> {
    match &call.udaf {
        Some(u) => Ok(Box::new(WasmFrames::new(
            u.udf.module.clone(),
            &u.udf.signature.name,
            call.ret,
        ))),
        None => frame_accumulator(call.func, call.arg.as_ref().map(Expr::sql_type)),
    }
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
                .map(|c| c.inputs().into_iter().map(compile).collect())
                .collect::<ExecResult<_>>()?,
            frames: calls.iter().map(frames_of).collect::<ExecResult<_>>()?,
            calls: calls.to_vec(),
            time_column,
            frame,
            schema,
            partitions: Vec::new(),
            pending: Vec::new(),
            rejects: Rejects::new(lateness, metrics),
            ids: Vec::new(),
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
        self.partitions.resize_with(self.table.len(), VecDeque::new);
        for (frames, args) in self.frames.iter_mut().zip(&self.args) {
            let values: Vec<ArrayRef> = args
                .iter()
                .map(|a| a.evaluate(rows))
                .collect::<ExecResult<_>>()?;
            frames.begin(&values, self.partitions.len())?;
        }
        let ts = time_column(rows, self.time_column)?;
        for (r, &id) in ids.iter().enumerate() {
            let t = ts.value(r);
            let times = &mut self.partitions[id as usize];
            times.push_back(t);
            for f in &mut self.frames {
                f.push(id, r as u32);
            }
            // rows that leave the frame, oldest first
            loop {
                let leave = match self.frame {
                    Frame::Rows(k) => times.len() as u64 > k + 1,
                    Frame::Range(ms) => times.front().is_some_and(|&f| f < t.saturating_sub(ms)),
                    Frame::Unbounded => false,
                };
                if !leave {
                    break;
                }
                times.pop_front();
                for f in &mut self.frames {
                    f.pop(id);
                }
            }
            for f in &mut self.frames {
                f.emit(id);
            }
        }
        self.ids = ids;
        let mut columns = rows.columns().to_vec();
        for (f, call) in self.frames.iter_mut().zip(&self.calls) {
            let a = f.finish()?;
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

    /// Partitions renumber as they move (see `row_window/state.rs`).
    fn rescalable(&self) -> bool {
        true
    }

    fn split_state(
        &self,
        parts: Vec<OperatorState>,
        owns: &crate::exec::rescale::Owns<'_>,
    ) -> ExecResult<OperatorState> {
        self.split_states(parts, owns)
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
