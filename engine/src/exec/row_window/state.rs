//! Snapshot and restore of the row window operator: the rows waiting for
//! the watermark, the partition keys in id order, and every partition's
//! frame with each aggregate's running state exactly as it is (a running
//! float sum is kept, not recomputed, so it rounds the same way).

use std::collections::VecDeque;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, RecordBatch};
use arrow::datatypes::{Float64Type, Int64Type};

use super::{CallState, Partition, RowWindowOp, Sum};
use crate::error::{ExecError, ExecResult};
use crate::exec::aggregate::{state_batch, state_value};
use crate::exec::operator::OperatorState;

fn ints(v: impl IntoIterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(Int64Array::from_iter(v))
}

fn doubles(v: impl IntoIterator<Item = Option<f64>>) -> ArrayRef {
    Arc::new(Float64Array::from_iter(v))
}

fn column<'a>(b: &'a RecordBatch, name: &str) -> ExecResult<&'a ArrayRef> {
    b.column_by_name(name)
        .ok_or_else(|| ExecError::Internal(format!("a row window state lacks '{name}'")))
}

fn int_column<'a>(
    b: &'a RecordBatch,
    name: &str,
) -> ExecResult<&'a arrow::array::PrimitiveArray<Int64Type>> {
    column(b, name)?
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| ExecError::Internal(format!("'{name}' is not BIGINT")))
}

fn value<T: arrow::datatypes::ArrowPrimitiveType>(
    a: &arrow::array::PrimitiveArray<T>,
    i: usize,
) -> Option<T::Native> {
    a.is_valid(i).then(|| a.value(i))
}

impl RowWindowOp {
    /// Parts: `clock`; `keys` (partition keys in id order); `pending`
    /// (rows not yet released, as they arrived); `partitions` (per partition:
    /// `first` row number and each call's scalars `c{k}.sum`, `c{k}.valid`,
    /// `c{k}.n`); `frame` (per frame row, partition by partition: `partition`,
    /// `time` and each call's queued value `c{k}`); `extreme{k}` (a MIN/MAX
    /// call's monotonic queue: `partition`, `seq`, `value`); and the parts
    /// of aggregate UDFs (see `UdafFrames::snapshot`).
    pub(super) fn snapshot_state(&mut self) -> ExecResult<OperatorState> {
        let mut out = OperatorState::default();
        if let Some(u) = &mut self.udafs {
            u.snapshot(&mut out)?;
        }
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
        let mut scalars = vec![(
            "first".to_string(),
            ints(ps.iter().map(|p| Some(p.first as i64))),
        )];
        let mut frame = vec![
            (
                "partition".to_string(),
                ints(
                    ps.iter()
                        .enumerate()
                        .flat_map(|(i, p)| std::iter::repeat_n(Some(i as i64), p.times.len())),
                ),
            ),
            (
                "time".to_string(),
                ints(ps.iter().flat_map(|p| p.times.iter().map(|&t| Some(t)))),
            ),
        ];
        let calls = |k: usize| ps.iter().map(move |p| &p.calls[k]);
        for k in 0..self.calls.len() {
            let name = |what: &str| format!("c{k}{what}");
            match ps.first().map(|p| &p.calls[k]) {
                Some(CallState::Count(..)) => {
                    scalars.push((
                        name(".n"),
                        ints(calls(k).map(|c| match c {
                            CallState::Count(_, n) => Some(*n),
                            _ => None,
                        })),
                    ));
                    let flags: BooleanArray = calls(k)
                        .flat_map(|c| match c {
                            CallState::Count(v, _) => v.iter().map(|&b| Some(b)).collect(),
                            _ => Vec::new(),
                        })
                        .collect();
                    frame.push((name(""), Arc::new(flags)));
                }
                Some(CallState::SumInt(_)) => {
                    let sums = || {
                        calls(k).filter_map(|c| match c {
                            CallState::SumInt(s) => Some(s),
                            _ => None,
                        })
                    };
                    scalars.push((name(".sum"), ints(sums().map(|s| s.sum))));
                    scalars.push((name(".valid"), ints(sums().map(|s| Some(s.valid)))));
                    frame.push((name(""), ints(sums().flat_map(|s| s.values.clone()))));
                }
                Some(CallState::SumDouble(_) | CallState::Avg(_)) => {
                    let sums = || {
                        calls(k).filter_map(|c| match c {
                            CallState::SumDouble(s) | CallState::Avg(s) => Some(s),
                            _ => None,
                        })
                    };
                    scalars.push((name(".sum"), doubles(sums().map(|s| s.sum))));
                    scalars.push((name(".valid"), ints(sums().map(|s| Some(s.valid)))));
                    frame.push((name(""), doubles(sums().flat_map(|s| s.values.clone()))));
                }
                Some(CallState::MinMaxInt(..) | CallState::MinMaxDouble(..)) => {
                    let mut part = vec![];
                    let (mut pid, mut seq) = (Vec::new(), Vec::new());
                    let (mut iv, mut dv) = (Vec::new(), Vec::new());
                    for (i, c) in calls(k).enumerate() {
                        match c {
                            CallState::MinMaxInt(e, _) => e.queue.iter().for_each(|&(s, v)| {
                                pid.push(Some(i as i64));
                                seq.push(Some(s as i64));
                                iv.push(Some(v));
                            }),
                            CallState::MinMaxDouble(e, _) => e.queue.iter().for_each(|&(s, v)| {
                                pid.push(Some(i as i64));
                                seq.push(Some(s as i64));
                                dv.push(Some(v));
                            }),
                            _ => {}
                        }
                    }
                    let rows = pid.len();
                    part.push(("partition".to_string(), ints(pid)));
                    part.push(("seq".to_string(), ints(seq)));
                    let double = matches!(ps[0].calls[k], CallState::MinMaxDouble(..));
                    part.push((
                        "value".to_string(),
                        if double { doubles(dv) } else { ints(iv) },
                    ));
                    out.push(&format!("extreme{k}"), state_batch(part, rows)?);
                }
                Some(CallState::CountStar) | None => {}
            }
        }
        out.push("partitions", state_batch(scalars, ps.len())?);
        let rows = ps.iter().map(|p| p.times.len()).sum();
        out.push("frame", state_batch(frame, rows)?);
        Ok(out)
    }

    /// Loads [`RowWindowOp::snapshot_state`] into this fresh operator.
    pub(super) fn restore_state(&mut self, state: OperatorState) -> ExecResult<()> {
        self.rejects.restore(state.part("clock")?)?;
        if let Some(u) = &mut self.udafs {
            u.restore(&state)?;
        }
        let keys = state.part("keys")?;
        let mut ids = Vec::new();
        self.table
            .intern(keys.columns(), keys.num_rows(), &mut ids)?;
        self.pending = state.parts("pending").cloned().collect();
        let scalars = state.part("partitions")?;
        let frame = state.part("frame")?;
        let first = int_column(scalars, "first")?;
        let frame_partition = int_column(frame, "partition")?;
        let times = int_column(frame, "time")?;
        let mut partitions: Vec<Partition> = (0..scalars.num_rows())
            .map(|i| Partition {
                times: VecDeque::new(),
                first: first.value(i) as u64,
                calls: self.calls.iter().map(CallState::new).collect(),
            })
            .collect();
        // frame rows come partition by partition: each partition's range
        let mut ranges = vec![0..0; partitions.len()];
        for i in 0..frame.num_rows() {
            let pid = frame_partition.value(i) as usize;
            let p = partitions
                .get_mut(pid)
                .ok_or_else(|| ExecError::Internal("a frame row of no partition".into()))?;
            p.times.push_back(times.value(i));
            if ranges[pid].is_empty() {
                ranges[pid] = i..i;
            }
            ranges[pid].end = i + 1;
        }
        for k in 0..self.calls.len() {
            let name = |what: &str| format!("c{k}{what}");
            let extreme_name = format!("extreme{k}");
            let extreme = state.parts(&extreme_name).next();
            for (i, p) in partitions.iter_mut().enumerate() {
                let rows = ranges[i].clone();
                match &mut p.calls[k] {
                    CallState::Count(flags, n) => {
                        *n = state_value(&scalars.slice(i, 1), &name(".n"))?;
                        let col = column(frame, &name(""))?.as_boolean();
                        flags.extend(rows.map(|r| col.value(r)));
                    }
                    CallState::SumInt(s) => {
                        restore_sum(s, scalars, frame, i, rows, &name(""), |a, r| {
                            value(a.as_primitive::<Int64Type>(), r)
                        })?
                    }
                    CallState::SumDouble(s) | CallState::Avg(s) => {
                        restore_sum(s, scalars, frame, i, rows, &name(""), |a, r| {
                            value(a.as_primitive::<Float64Type>(), r)
                        })?
                    }
                    CallState::MinMaxInt(..)
                    | CallState::MinMaxDouble(..)
                    | CallState::CountStar => {}
                }
            }
            // a MIN/MAX queue: one pass, each entry to its partition
            if let Some(part) = extreme {
                let pids = int_column(part, "partition")?;
                let seqs = int_column(part, "seq")?;
                let values = column(part, "value")?;
                for r in 0..part.num_rows() {
                    let seq = seqs.value(r) as u64;
                    match partitions
                        .get_mut(pids.value(r) as usize)
                        .map(|p| &mut p.calls[k])
                    {
                        Some(CallState::MinMaxInt(e, _)) => {
                            if let Some(v) = value(values.as_primitive::<Int64Type>(), r) {
                                e.queue.push_back((seq, v));
                            }
                        }
                        Some(CallState::MinMaxDouble(e, _)) => {
                            if let Some(v) = value(values.as_primitive::<Float64Type>(), r) {
                                e.queue.push_back((seq, v));
                            }
                        }
                        _ => {
                            return Err(ExecError::Internal(
                                "a MIN/MAX queue entry of no partition".into(),
                            ));
                        }
                    }
                }
            }
        }
        self.partitions = partitions;
        Ok(())
    }
}

/// One partition's running sum: the scalars and the queued values.
fn restore_sum<T: Copy>(
    s: &mut Sum<T>,
    scalars: &RecordBatch,
    frame: &RecordBatch,
    partition: usize,
    rows: std::ops::Range<usize>,
    name: &str,
    get: impl Fn(&ArrayRef, usize) -> Option<T>,
) -> ExecResult<()> {
    s.sum = get(column(scalars, &format!("{name}.sum"))?, partition);
    s.valid = state_value(&scalars.slice(partition, 1), &format!("{name}.valid"))?;
    let col = column(frame, name)?;
    s.values.extend(rows.map(|r| get(col, r)));
    Ok(())
}
