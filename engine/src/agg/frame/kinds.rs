//! The built-in frames: COUNT, SUM/AVG and MIN/MAX over one group's frame.

use std::collections::VecDeque;
use std::sync::Arc;

use arrow::array::{AsArray, BooleanArray};
use arrow::datatypes::Int64Type;

use super::{Arg, Frame, Num, Part, column, group_column, ints, part, row_groups};
use crate::error::{ExecError, ExecResult};
use crate::exec::grouped_state::{state_batch, state_value};

/// `COUNT(*)` (`flag`) or `COUNT(x)`: per row of the frame whether it counts.
#[derive(Default)]
pub(super) struct CountFrame {
    counted: VecDeque<bool>,
    n: i64,
}

impl Frame for CountFrame {
    type Out = i64;

    #[inline]
    fn push(&mut self, arg: &Arg, row: usize, star: bool) {
        let ok = star || arg.valid(row);
        self.n += i64::from(ok);
        self.counted.push_back(ok);
    }

    #[inline]
    fn pop(&mut self) {
        self.n -= i64::from(self.counted.pop_front().unwrap_or(false));
    }

    #[inline]
    fn value(&self, _star: bool) -> Option<i64> {
        Some(self.n)
    }

    fn save(groups: &[Self]) -> ExecResult<Vec<Part>> {
        let per_group = state_batch(
            vec![("n".into(), ints(groups.iter().map(|f| f.n)))],
            groups.len(),
        )?;
        let flags: BooleanArray = groups
            .iter()
            .flat_map(|f| f.counted.iter().map(|&b| Some(b)))
            .collect();
        let rows = flags.len();
        let per_row = state_batch(
            vec![
                ("group".into(), group_column(groups, |f| f.counted.len())),
                ("counted".into(), Arc::new(flags)),
            ],
            rows,
        )?;
        Ok(vec![("groups".into(), per_group), ("rows".into(), per_row)])
    }

    fn load(groups: &mut [Self], parts: &[Part]) -> ExecResult<()> {
        let per_group = part(parts, "groups")?;
        for (g, f) in groups.iter_mut().enumerate() {
            f.n = state_value(&per_group.slice(g, 1), "n")?;
        }
        let per_row = part(parts, "rows")?;
        let counted = column(per_row, "counted")?.as_boolean();
        for (r, g) in row_groups(per_row, groups.len())?.into_iter().enumerate() {
            groups[g].counted.push_back(counted.value(r));
        }
        Ok(())
    }
}

/// `SUM(x)` or `AVG(x)` (`flag`): the running sum and count of the
/// non-NULL values in the frame, and the frame's values to retract. A
/// float sum is kept as it runs (snapshots too), not recomputed, so it
/// rounds the same way.
pub(super) struct SumFrame<T> {
    values: VecDeque<Option<T>>,
    sum: Option<T>,
    valid: i64,
}

impl<T> Default for SumFrame<T> {
    fn default() -> Self {
        Self {
            values: VecDeque::new(),
            sum: None,
            valid: 0,
        }
    }
}

/// The AVG of a sum and a count, in the sum's type.
pub(super) trait Mean: Num {
    fn mean(sum: Self, n: i64) -> Self;
}

impl Mean for i64 {
    fn mean(sum: Self, n: i64) -> Self {
        sum / n.max(1)
    }
}

impl Mean for f64 {
    fn mean(sum: Self, n: i64) -> Self {
        sum / n as f64
    }
}

impl<T: Mean> Frame for SumFrame<T> {
    type Out = T;

    #[inline]
    fn push(&mut self, arg: &Arg, row: usize, _avg: bool) {
        let v = T::read(arg, row);
        if let Some(x) = v {
            self.sum = Some(self.sum.unwrap_or(T::ZERO).add(x));
            self.valid += 1;
        }
        self.values.push_back(v);
    }

    #[inline]
    fn pop(&mut self) {
        if let Some(Some(x)) = self.values.pop_front() {
            self.valid -= 1;
            self.sum = if self.valid == 0 {
                None
            } else {
                self.sum.map(|s| s.sub(x))
            };
        }
    }

    #[inline]
    fn value(&self, avg: bool) -> Option<T> {
        if avg {
            self.sum.map(|s| T::mean(s, self.valid))
        } else {
            self.sum
        }
    }

    fn save(groups: &[Self]) -> ExecResult<Vec<Part>> {
        let per_group = state_batch(
            vec![
                (
                    "sum".into(),
                    T::column(groups.iter().map(|f| f.sum).collect()),
                ),
                ("valid".into(), ints(groups.iter().map(|f| f.valid))),
            ],
            groups.len(),
        )?;
        let values: Vec<Option<T>> = groups.iter().flat_map(|f| f.values.clone()).collect();
        let rows = values.len();
        let per_row = state_batch(
            vec![
                ("group".into(), group_column(groups, |f| f.values.len())),
                ("value".into(), T::column(values)),
            ],
            rows,
        )?;
        Ok(vec![("groups".into(), per_group), ("rows".into(), per_row)])
    }

    fn load(groups: &mut [Self], parts: &[Part]) -> ExecResult<()> {
        let per_group = part(parts, "groups")?;
        let sums = T::values(column(per_group, "sum")?)?;
        for (g, (f, sum)) in groups.iter_mut().zip(sums).enumerate() {
            f.sum = sum;
            f.valid = state_value(&per_group.slice(g, 1), "valid")?;
        }
        let per_row = part(parts, "rows")?;
        let values = T::values(column(per_row, "value")?)?;
        for (g, v) in row_groups(per_row, groups.len())?.into_iter().zip(values) {
            groups[g].values.push_back(v);
        }
        Ok(())
    }
}

/// `MIN(x)` or `MAX(x)` (`flag`): a queue of (row number, value) whose
/// values only get worse from front to back; the front is the answer.
pub(super) struct ExtremeFrame<T> {
    queue: VecDeque<(u64, T)>,
    /// Rows pushed and popped so far (row numbers of the frame's ends).
    pushed: u64,
    popped: u64,
}

impl<T> Default for ExtremeFrame<T> {
    fn default() -> Self {
        Self {
            queue: VecDeque::new(),
            pushed: 0,
            popped: 0,
        }
    }
}

impl<T: Num> Frame for ExtremeFrame<T> {
    type Out = T;

    #[inline]
    fn push(&mut self, arg: &Arg, row: usize, max: bool) {
        let seq = self.pushed;
        self.pushed += 1;
        let Some(x) = T::read(arg, row) else { return };
        while let Some(&(_, b)) = self.queue.back() {
            let dominated = if max { b <= x } else { b >= x };
            if !dominated {
                break;
            }
            self.queue.pop_back();
        }
        self.queue.push_back((seq, x));
    }

    #[inline]
    fn pop(&mut self) {
        if self.queue.front().is_some_and(|&(s, _)| s == self.popped) {
            self.queue.pop_front();
        }
        self.popped += 1;
    }

    #[inline]
    fn value(&self, _max: bool) -> Option<T> {
        self.queue.front().map(|&(_, v)| v)
    }

    fn save(groups: &[Self]) -> ExecResult<Vec<Part>> {
        let per_group = state_batch(
            vec![
                (
                    "pushed".into(),
                    ints(groups.iter().map(|f| f.pushed as i64)),
                ),
                (
                    "popped".into(),
                    ints(groups.iter().map(|f| f.popped as i64)),
                ),
            ],
            groups.len(),
        )?;
        let rows: usize = groups.iter().map(|f| f.queue.len()).sum();
        let per_row = state_batch(
            vec![
                ("group".into(), group_column(groups, |f| f.queue.len())),
                (
                    "seq".into(),
                    ints(
                        groups
                            .iter()
                            .flat_map(|f| f.queue.iter().map(|q| q.0 as i64)),
                    ),
                ),
                (
                    "value".into(),
                    T::column(
                        groups
                            .iter()
                            .flat_map(|f| f.queue.iter().map(|q| Some(q.1)))
                            .collect(),
                    ),
                ),
            ],
            rows,
        )?;
        Ok(vec![("groups".into(), per_group), ("rows".into(), per_row)])
    }

    fn load(groups: &mut [Self], parts: &[Part]) -> ExecResult<()> {
        let per_group = part(parts, "groups")?;
        for (g, f) in groups.iter_mut().enumerate() {
            let one = per_group.slice(g, 1);
            f.pushed = state_value(&one, "pushed")? as u64;
            f.popped = state_value(&one, "popped")? as u64;
        }
        let per_row = part(parts, "rows")?;
        let seqs = column(per_row, "seq")?
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| ExecError::Internal("a MIN/MAX queue's seq is not BIGINT".into()))?;
        let values = T::values(column(per_row, "value")?)?;
        for (r, (g, v)) in row_groups(per_row, groups.len())?
            .into_iter()
            .zip(values)
            .enumerate()
        {
            if let Some(v) = v {
                groups[g].queue.push_back((seqs.value(r) as u64, v));
            }
        }
        Ok(())
    }
}
