//! Snapshot and restore of the row window operator: the rows waiting for
//! the watermark, the partition keys in id order, every partition's frame
//! times, and each call's frame accumulator exactly as it is (a running
//! float sum is kept, not recomputed, so it rounds the same way).

use std::collections::VecDeque;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Int64Array};
use arrow::datatypes::Int64Type;
use arrow::record_batch::RecordBatch;

use super::RowWindowOp;
use crate::error::{ExecError, ExecResult};
use crate::exec::aggregate::state_batch;
use crate::exec::operator::OperatorState;
use crate::exec::rescale::{Owns, concat, keep_keyed_rows, keep_rows, remap_ids};

impl RowWindowOp {
    /// Parts: `clock`; `keys` (partition keys in id order); `pending` (rows
    /// not yet released, as they arrived); `times` (per frame row, partition
    /// by partition: `partition`, `time`); and per call `k` its frame
    /// accumulator's parts, named `c{k}.<part>` (see `agg/frame.rs` and
    /// `agg/wasm_frames.rs`).
    pub(super) fn snapshot_state(&mut self) -> ExecResult<OperatorState> {
        let mut out = OperatorState::default();
        out.push("clock", self.rejects.snapshot()?);
        let keys = self.table.key_columns()?;
        let keys = keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| (format!("key{i}"), k))
            .collect();
        out.push("keys", state_batch(keys, self.table.len())?);
        for b in &self.pending {
            out.push("pending", b.clone());
        }
        let ps = &self.partitions;
        let partition: ArrayRef = Arc::new(Int64Array::from_iter_values(
            ps.iter()
                .enumerate()
                .flat_map(|(i, p)| std::iter::repeat_n(i as i64, p.len())),
        ));
        let time: ArrayRef = Arc::new(Int64Array::from_iter_values(
            ps.iter().flat_map(|p| p.iter().copied()),
        ));
        let rows = time.len();
        out.push(
            "times",
            state_batch(
                vec![("partition".into(), partition), ("time".into(), time)],
                rows,
            )?,
        );
        for (k, f) in self.frames.iter_mut().enumerate() {
            let mut parts = Vec::new();
            f.snapshot(&mut parts)?;
            for (name, batch) in parts {
                out.push(&format!("c{k}.{name}"), batch);
            }
        }
        Ok(out)
    }

    /// Loads [`RowWindowOp::snapshot_state`] into this fresh operator.
    pub(super) fn restore_state(&mut self, state: OperatorState) -> ExecResult<()> {
        self.rejects.restore(state.part("clock")?)?;
        let keys = state.part("keys")?;
        let mut ids = Vec::new();
        self.table
            .intern(keys.columns(), keys.num_rows(), &mut ids)?;
        self.pending = state.parts("pending").cloned().collect();
        self.partitions = vec![VecDeque::new(); self.table.len()];
        let times = state.part("times")?;
        let int = |name: &str| {
            times
                .column_by_name(name)
                .and_then(|c| c.as_primitive_opt::<Int64Type>())
                .ok_or_else(|| ExecError::Internal(format!("a row window state lacks '{name}'")))
        };
        let (partition, time) = (int("partition")?, int("time")?);
        for (p, t) in partition.values().iter().zip(time.values()) {
            self.partitions
                .get_mut(*p as usize)
                .ok_or_else(|| ExecError::Internal("a frame row of no partition".into()))?
                .push_back(*t);
        }
        for (k, f) in self.frames.iter_mut().enumerate() {
            let prefix = format!("c{k}.");
            let parts: Vec<(String, arrow::record_batch::RecordBatch)> = state
                .parts
                .iter()
                .filter_map(|(n, b)| n.strip_prefix(&prefix).map(|n| (n.to_string(), b.clone())))
                .collect();
            f.restore(&parts)?;
        }
        Ok(())
    }

    /// The share of old workers' states ([`RowWindowOp::snapshot_state`],
    /// by worker) that a new worker owning the partition keys `owns`
    /// accepts holds: its partitions renumbered worker by worker, their
    /// frame times and accumulators, and the waiting rows of its keys.
    pub(super) fn split_states(
        &self,
        old: Vec<OperatorState>,
        owns: &Owns<'_>,
    ) -> ExecResult<OperatorState> {
        let mut out = OperatorState::default();
        let mut remaps = Vec::new();
        let (mut keys, mut times, mut next) = (Vec::new(), Vec::new(), 0u32);
        for (w, state) in old.iter().enumerate() {
            if w == 0 {
                out.push("clock", state.part("clock")?.clone());
            }
            let k = state.part("keys")?;
            let mine = owns(k.columns())?;
            let remap: Vec<Option<u32>> = mine
                .iter()
                .map(|&m| {
                    m.then(|| {
                        next += 1;
                        next - 1
                    })
                })
                .collect();
            keys.push(keep_keyed_rows(k, &remap)?);
            times.push(remap_ids(state.part("times")?, "partition", &remap)?);
            for p in state.parts("pending") {
                let key_values: Vec<ArrayRef> = self
                    .keys
                    .iter()
                    .map(|e| e.evaluate(p))
                    .collect::<ExecResult<_>>()?;
                let kept = keep_rows(p, &owns(&key_values)?)?;
                if kept.num_rows() > 0 {
                    out.push("pending", kept);
                }
            }
            remaps.push(remap);
        }
        for (name, parts) in [("keys", keys), ("times", times)] {
            if let Some(b) = concat(parts)? {
                out.push(name, b);
            }
        }
        for (k, f) in self.frames.iter().enumerate() {
            let prefix = format!("c{k}.");
            let per_worker: Vec<Vec<(String, RecordBatch)>> = old
                .iter()
                .map(|state| {
                    state
                        .parts
                        .iter()
                        .filter_map(|(n, b)| {
                            n.strip_prefix(&prefix).map(|n| (n.to_string(), b.clone()))
                        })
                        .collect()
                })
                .collect();
            for (name, batch) in f.split(per_worker, &remaps)? {
                out.push(&format!("{prefix}{name}"), batch);
            }
        }
        Ok(out)
    }
}
