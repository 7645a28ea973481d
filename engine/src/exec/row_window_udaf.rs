//! Aggregate UDFs in row windows. When the aggregate can retract a row
//! (`Aggregate::retract`), the frame slides: each release is one guest call
//! that replays, in order, the rows entering (update) and leaving (retract)
//! each partition's frame and reads the result after each row (finish), on a
//! group table that persists across releases — every row crosses the
//! boundary at most twice. When it cannot, each output row's frame is
//! aggregated afresh: one update call per release with every frame's rows
//! (the output row as the group index) and one finish call — work that grows
//! with the frame size. Never a call per row.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use arrow::compute::interleave;
use arrow::datatypes::Int64Type;
use arrow::record_batch::RecordBatch;

use crate::agg::Accumulator;
use crate::agg::wasm::{SharedInstance, WasmAccumulator};
use crate::error::{ExecError, ExecResult};
use crate::exec::aggregate::{state_batch, state_value};
use crate::exec::expr::{CompiledExpr, compile};
use crate::exec::operator::OperatorState;
use crate::plan::logical::AggregateCall;
use crate::types::SqlType;
use crate::udf::{UdfModule, runtime};

/// How a call's frames are computed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Not known yet: try sliding, fall back if the aggregate cannot retract.
    Unknown = 0,
    Slide = 1,
    Recompute = 2,
}

/// One aggregate UDF of the row window.
struct Call {
    /// Its position among the operator's calls.
    index: usize,
    args: Vec<CompiledExpr>,
    module: Arc<UdfModule>,
    /// This thread's instance of the module, once used (the sliding table
    /// lives in it).
    instance: Option<SharedInstance>,
    name: String,
    ret: SqlType,
    mode: Mode,
    /// The sliding group table (one group per partition).
    table: Option<u32>,
}

impl Call {
    /// This thread's instance of the module, kept once used.
    fn instance(&mut self) -> ExecResult<SharedInstance> {
        match &self.instance {
            Some(i) => Ok(i.clone()),
            None => Ok(self
                .instance
                .insert(runtime::instance(&self.module)?)
                .clone()),
        }
    }
}

/// A released row: (batch id, row).
type RowRef = (u64, u32);

/// Frames of the aggregate UDF calls, as references to released rows.
pub(crate) struct UdafFrames {
    calls: Vec<Call>,
    /// Per released batch (by id): per call, its argument columns.
    history: BTreeMap<u64, Vec<Vec<ArrayRef>>>,
    next_batch: u64,
    /// Per partition: the frame's rows, oldest first.
    frames: Vec<VecDeque<RowRef>>,
    /// This release, for recomputing: every frame's rows and their output row.
    rows: Vec<RowRef>,
    groups: Vec<u32>,
    /// This release, for sliding: (op, partition, row) in order.
    ops: Vec<(u32, u32, RowRef)>,
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
                module: u.udf.module.clone(),
                instance: None,
                name: u.udf.signature.name.clone(),
                ret: c.ret,
                mode: Mode::Unknown,
                table: None,
            });
        }
        Ok((!out.is_empty()).then(|| UdafFrames {
            calls: out,
            history: BTreeMap::new(),
            next_batch: 0,
            frames: Vec::new(),
            rows: Vec::new(),
            groups: Vec::new(),
            ops: Vec::new(),
        }))
    }

    fn recomputing(&self) -> bool {
        self.calls.iter().any(|c| c.mode != Mode::Slide)
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
        self.ops.push((0, p as u32, (batch, row)));
    }

    /// The oldest row leaves partition `p`'s frame.
    pub fn evict(&mut self, p: usize) {
        if let Some(r) = self.frames[p].pop_front() {
            self.ops.push((1, p as u32, r));
        }
    }

    /// Output row `out` aggregates partition `p`'s current frame.
    pub fn record(&mut self, p: usize, out: u32) {
        self.ops.push((2, p as u32, (0, 0)));
        if self.recomputing() {
            for &r in &self.frames[p] {
                self.rows.push(r);
                self.groups.push(out);
            }
        }
    }

    /// The argument columns of `refs`, gathered from the kept batches.
    fn gather(&self, call: usize, refs: &[RowRef]) -> ExecResult<Vec<ArrayRef>> {
        let ids: Vec<u64> = self.history.keys().copied().collect();
        let picks: Vec<(usize, usize)> = refs
            .iter()
            .map(|&(b, r)| (ids.binary_search(&b).unwrap_or(0), r as usize))
            .collect();
        let nargs = self.calls[call].args.len();
        (0..nargs)
            .map(|a| {
                let arrays: Vec<&dyn arrow::array::Array> = ids
                    .iter()
                    .map(|id| self.history[id][call][a].as_ref())
                    .collect();
                interleave(&arrays, &picks).map_err(|e| ExecError::arrow("row window UDF", e))
            })
            .collect()
    }

    /// The results of the release's `n` output rows, per call.
    ///
    /// # Errors
    /// The UDF fails.
    pub fn finish(&mut self, n: usize) -> ExecResult<Vec<(usize, ArrayRef)>> {
        let ops = std::mem::take(&mut self.ops);
        let mut out = Vec::with_capacity(self.calls.len());
        for k in 0..self.calls.len() {
            if self.calls[k].mode != Mode::Recompute
                && let Some(result) = self.slide(k, &ops)?
            {
                // sliding is settled once a retraction has worked
                if ops.iter().any(|o| o.0 == 1) {
                    self.calls[k].mode = Mode::Slide;
                }
                out.push((self.calls[k].index, result));
                continue;
            }
            self.calls[k].mode = Mode::Recompute;
            out.push((self.calls[k].index, self.recompute(k, n)?));
        }
        self.rows.clear();
        self.groups.clear();
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

    /// One sliding call for this release; `None` if the aggregate cannot retract.
    fn slide(&mut self, k: usize, ops: &[(u32, u32, RowRef)]) -> ExecResult<Option<ArrayRef>> {
        let refs: Vec<RowRef> = ops.iter().filter(|o| o.0 != 2).map(|o| o.2).collect();
        let args = self.gather(k, &refs)?;
        let mut triples = Vec::with_capacity(ops.len() * 3);
        let mut next_row = 0u32;
        for &(op, group, _) in ops {
            let row = if op == 2 {
                0
            } else {
                next_row += 1;
                next_row - 1
            };
            triples.extend([op, group, row]);
        }
        let call = &mut self.calls[k];
        let instance = call.instance()?;
        let mut i = runtime::lock(&instance);
        let table = match call.table {
            Some(t) => t,
            None => *call
                .table
                .insert(runtime::checked(&instance, i.agg_new(&call.name))?),
        };
        let slid = i.agg_slide(&call.name, table, &args, &triples, call.ret);
        Ok(runtime::checked(&instance, slid)?)
    }

    /// Parts: `udaf` (one row: `next_batch`, each call's `mode{k}`),
    /// `udaf_frames` (per frame row, partition by partition: `partition`,
    /// `batch`, `row`), `udaf_args` (per kept batch and call: `batch`,
    /// `call`, then the call's argument columns) and `udaf_table` (a sliding
    /// call's guest table: `call`, then one BINARY state per partition, in
    /// the module's own bytes).
    pub fn snapshot(&mut self, out: &mut OperatorState) -> ExecResult<()> {
        let one = |v: i64| Arc::new(Int64Array::from(vec![v])) as ArrayRef;
        let mut head = vec![("next_batch".to_string(), one(self.next_batch as i64))];
        for (k, c) in self.calls.iter().enumerate() {
            head.push((format!("mode{k}"), one(c.mode as i64)));
        }
        out.push("udaf", state_batch(head, 1)?);
        let (mut pid, mut bid, mut rid) = (Vec::new(), Vec::new(), Vec::new());
        for (p, frame) in self.frames.iter().enumerate() {
            for &(b, r) in frame {
                pid.push(p as i64);
                bid.push(b as i64);
                rid.push(i64::from(r));
            }
        }
        let rows = pid.len();
        let col = |v: Vec<i64>| Arc::new(Int64Array::from(v)) as ArrayRef;
        let frames = vec![
            ("partition".to_string(), col(pid)),
            ("batch".to_string(), col(bid)),
            ("row".to_string(), col(rid)),
        ];
        out.push("udaf_frames", state_batch(frames, rows)?);
        for (&id, per_call) in &self.history {
            for (k, args) in per_call.iter().enumerate() {
                let n = args.first().map_or(0, |a| a.len());
                let mut columns = vec![
                    ("batch".to_string(), col(vec![id as i64; n])),
                    ("call".to_string(), col(vec![k as i64; n])),
                ];
                columns.extend(
                    args.iter()
                        .enumerate()
                        .map(|(a, arr)| (format!("arg{a}"), arr.clone())),
                );
                out.push("udaf_args", state_batch(columns, n)?);
            }
        }
        let partitions = self.frames.len();
        for k in 0..self.calls.len() {
            let call = &mut self.calls[k];
            let Some(table) = call.table else { continue };
            let instance = call.instance()?;
            let mut i = runtime::lock(&instance);
            // taking the states empties the table: merge them straight back
            let states = runtime::checked(&instance, i.agg_state(&call.name, table, partitions))?;
            let groups: Vec<u32> = (0..partitions as u32).collect();
            let back = i.agg_update(
                &call.name,
                table,
                std::slice::from_ref(&states),
                &groups,
                partitions,
                true,
            );
            runtime::checked(&instance, back)?;
            let columns = vec![
                ("call".to_string(), col(vec![k as i64; partitions])),
                ("state".to_string(), states),
            ];
            out.push("udaf_table", state_batch(columns, partitions)?);
        }
        Ok(())
    }

    /// Loads [`UdafFrames::snapshot`] into these fresh frames.
    ///
    /// # Errors
    /// Parts of another shape, or the guest refuses a state.
    pub fn restore(&mut self, state: &OperatorState) -> ExecResult<()> {
        let head = state.part("udaf")?;
        self.next_batch = state_value(head, "next_batch")? as u64;
        for (k, c) in self.calls.iter_mut().enumerate() {
            c.mode = match state_value(head, &format!("mode{k}"))? {
                1 => Mode::Slide,
                2 => Mode::Recompute,
                _ => Mode::Unknown,
            };
        }
        let ints = |b: &RecordBatch, name: &str| -> ExecResult<Vec<i64>> {
            b.column_by_name(name)
                .and_then(|c| c.as_primitive_opt::<Int64Type>())
                .map(|c| c.values().to_vec())
                .ok_or_else(|| {
                    ExecError::Internal(format!("a row window UDF state lacks '{name}'"))
                })
        };
        let frames = state.part("udaf_frames")?;
        let (pid, bid, rid) = (
            ints(frames, "partition")?,
            ints(frames, "batch")?,
            ints(frames, "row")?,
        );
        for ((p, b), r) in pid.into_iter().zip(bid).zip(rid) {
            let p = p as usize;
            if self.frames.len() <= p {
                self.frames.resize_with(p + 1, VecDeque::new);
            }
            self.frames[p].push_back((b as u64, r as u32));
        }
        for part in state.parts("udaf_args") {
            let (ids, calls) = (ints(part, "batch")?, ints(part, "call")?);
            let (Some(&id), Some(&k)) = (ids.first(), calls.first()) else {
                continue;
            };
            let args: Vec<ArrayRef> = part.columns()[2..].to_vec();
            let entry = self
                .history
                .entry(id as u64)
                .or_insert_with(|| vec![Vec::new(); self.calls.len()]);
            if let Some(slot) = entry.get_mut(k as usize) {
                *slot = args;
            }
        }
        for part in state.parts("udaf_table") {
            let k = ints(part, "call")?.first().copied().unwrap_or(-1);
            let call = self
                .calls
                .get_mut(k as usize)
                .ok_or_else(|| ExecError::Internal("a UDF table of an unknown call".into()))?;
            let states = part
                .column_by_name("state")
                .cloned()
                .ok_or_else(|| ExecError::Internal("a UDF table without states".into()))?;
            let instance = call.instance()?;
            let mut i = runtime::lock(&instance);
            let table = runtime::checked(&instance, i.agg_new(&call.name))?;
            call.table = Some(table);
            let n = states.len();
            let groups: Vec<u32> = (0..n as u32).collect();
            let merged = i.agg_update(&call.name, table, &[states], &groups, n, true);
            runtime::checked(&instance, merged)?;
        }
        Ok(())
    }

    /// Aggregates every output row's frame afresh.
    fn recompute(&mut self, k: usize, n: usize) -> ExecResult<ArrayRef> {
        let args = self.gather(k, &self.rows)?;
        let call = &mut self.calls[k];
        let mut acc = WasmAccumulator::new(call.instance()?, &call.name, call.ret)?;
        acc.update_batch(&args, &self.groups, n)?;
        acc.evaluate(n)
    }
}
