//! The fallback for aggregate UDFs in row windows: a WebAssembly aggregate
//! cannot retract a row, so each output row's frame is aggregated afresh —
//! still one update call per released batch (every frame's rows, with the
//! output row as the group index) and one finish call, never a call per row.
//! Costs O(rows × frame size) data; the built-in aggregates stay incremental.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use arrow::array::ArrayRef;
use arrow::compute::interleave;
use arrow::record_batch::RecordBatch;

use crate::agg::Accumulator;
use crate::agg::wasm::{SharedInstance, WasmAccumulator};
use crate::error::{ExecError, ExecResult};
use crate::exec::expr::{CompiledExpr, compile};
use crate::plan::logical::AggregateCall;
use crate::types::SqlType;
use crate::udf::UdfInstance;

/// One aggregate UDF of the row window.
struct Call {
    /// Its position among the operator's calls.
    index: usize,
    args: Vec<CompiledExpr>,
    instance: SharedInstance,
    name: String,
    ret: SqlType,
}

/// Frames of the aggregate UDF calls, as references to released rows.
pub(crate) struct UdafFrames {
    calls: Vec<Call>,
    /// Per released batch (by id): per call, its argument columns.
    history: BTreeMap<u64, Vec<Vec<ArrayRef>>>,
    next_batch: u64,
    /// Per partition: the frame's rows, oldest first.
    frames: Vec<VecDeque<(u64, u32)>>,
    /// This release: the rows to aggregate and each one's output row.
    rows: Vec<(u64, u32)>,
    groups: Vec<u32>,
}

impl UdafFrames {
    /// The frames of the aggregate UDFs among `calls`; `None` when there are none.
    ///
    /// # Errors
    /// An argument that does not compile or a module that does not instantiate.
    pub fn new(calls: &[AggregateCall]) -> ExecResult<Option<Self>> {
        let mut out = Vec::new();
        for (index, c) in calls.iter().enumerate() {
            let Some(u) = &c.udaf else { continue };
            out.push(Call {
                index,
                args: u.args.iter().map(compile).collect::<ExecResult<_>>()?,
                instance: Arc::new(Mutex::new(UdfInstance::new(&u.udf.module)?)),
                name: u.udf.signature.name.clone(),
                ret: c.ret,
            });
        }
        Ok((!out.is_empty()).then(|| UdafFrames {
            calls: out,
            history: BTreeMap::new(),
            next_batch: 0,
            frames: Vec::new(),
            rows: Vec::new(),
            groups: Vec::new(),
        }))
    }

    /// Keeps the arguments of a released batch; returns its id.
    ///
    /// # Errors
    /// An argument that fails to evaluate.
    pub fn begin(&mut self, rows: &RecordBatch, partitions: usize) -> ExecResult<u64> {
        let args = self
            .calls
            .iter()
            .map(|c| c.args.iter().map(|a| a.evaluate(rows)).collect())
            .collect::<ExecResult<_>>()?;
        let id = self.next_batch;
        self.next_batch += 1;
        self.history.insert(id, args);
        if self.frames.len() < partitions {
            self.frames.resize_with(partitions, VecDeque::new);
        }
        Ok(id)
    }

    /// Row `row` of batch `batch` enters partition `p`'s frame.
    pub fn push(&mut self, p: usize, batch: u64, row: u32) {
        self.frames[p].push_back((batch, row));
    }

    /// The oldest row leaves partition `p`'s frame.
    pub fn evict(&mut self, p: usize) {
        self.frames[p].pop_front();
    }

    /// Output row `out` aggregates partition `p`'s current frame.
    pub fn record(&mut self, p: usize, out: u32) {
        for &r in &self.frames[p] {
            self.rows.push(r);
            self.groups.push(out);
        }
    }

    /// The results of the release's `n` output rows, per call in order.
    ///
    /// # Errors
    /// The UDF fails.
    pub fn finish(&mut self, n: usize) -> ExecResult<Vec<(usize, ArrayRef)>> {
        let err = |e| ExecError::arrow("row window UDF", e);
        let rows = std::mem::take(&mut self.rows);
        let groups = std::mem::take(&mut self.groups);
        // the batches these frames touch, as positions for interleave
        let ids: Vec<u64> = self.history.keys().copied().collect();
        let position = |id: u64| ids.binary_search(&id).unwrap_or(0);
        let picks: Vec<(usize, usize)> = rows
            .iter()
            .map(|&(b, r)| (position(b), r as usize))
            .collect();
        let mut out = Vec::with_capacity(self.calls.len());
        for (k, call) in self.calls.iter().enumerate() {
            let mut args = Vec::with_capacity(call.args.len());
            for a in 0..call.args.len() {
                let arrays: Vec<&dyn arrow::array::Array> = ids
                    .iter()
                    .map(|id| self.history[id][k][a].as_ref())
                    .collect();
                args.push(interleave(&arrays, &picks).map_err(err)?);
            }
            let mut acc = WasmAccumulator::new(call.instance.clone(), &call.name, call.ret)?;
            acc.update_batch(&args, &groups, n)?;
            out.push((call.index, acc.evaluate(n)?));
        }
        // batches no frame refers to any more are dropped
        let oldest = self
            .frames
            .iter()
            .filter_map(|f| f.front().map(|&(b, _)| b))
            .min()
            .unwrap_or(self.next_batch);
        self.history.retain(|&id, _| id >= oldest);
        Ok(out)
    }
}
