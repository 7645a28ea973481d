//! Aggregates over sliding row frames (row windows): per group (a window
//! partition) a frame of rows that enter at the back and leave from the
//! front, and the aggregate's value after every entry. Built-in aggregates
//! update incrementally: sums and counts add the entering row and retract
//! the leaving one, MIN/MAX keep a monotonic queue (each row enters and
//! leaves it once), so a row costs O(1) amortised whatever the frame size.
//! WebAssembly aggregates slide in the guest or recompute each frame
//! (`agg/wasm_frames.rs`).
//!
//! The operator drives an accumulator per call through one release of rows:
//! [`FrameAccumulator::begin`] with the rows' argument columns, then per
//! row in order `push`, any `pop`s, `emit`, and [`FrameAccumulator::finish`]
//! for the column of values.

use std::collections::VecDeque;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use arrow::record_batch::RecordBatch;

use crate::agg::AggregateFunction;
use crate::error::{ExecError, ExecResult};
use crate::exec::grouped_state::{state_batch, state_value};
use crate::types::SqlType;

/// A state part: (name, rows).
pub type Part = (String, RecordBatch);

/// An aggregate over one frame per group.
pub trait FrameAccumulator: Send {
    /// A release of rows begins: their argument columns, and how many
    /// groups there are now.
    ///
    /// # Errors
    /// An argument column of a type the aggregate cannot read.
    fn begin(&mut self, args: &[ArrayRef], groups: usize) -> ExecResult<()>;

    /// Row `row` of the release enters `group`'s frame.
    fn push(&mut self, group: u32, row: u32);

    /// The oldest row of `group`'s frame leaves it.
    fn pop(&mut self, group: u32);

    /// `group`'s current value is the next output row.
    fn emit(&mut self, group: u32);

    /// The values emitted since `begin`, in order.
    ///
    /// # Errors
    /// An Arrow failure, or a WebAssembly aggregate that fails.
    fn finish(&mut self) -> ExecResult<ArrayRef>;

    /// The frames' state as named parts (the operator prefixes the names).
    ///
    /// # Errors
    /// An Arrow failure, or a guest that cannot give its state.
    fn snapshot(&mut self, out: &mut Vec<Part>) -> ExecResult<()>;

    /// Loads what [`Self::snapshot`] wrote into this fresh accumulator.
    ///
    /// # Errors
    /// Parts of another shape.
    fn restore(&mut self, parts: &[Part]) -> ExecResult<()>;
}

/// The frame accumulator of a built-in aggregate over an argument of type
/// `arg` (`None` for `COUNT(*)`).
///
/// # Errors
/// An aggregate row windows do not run (the planner rejects those first).
pub fn frame_accumulator(
    func: AggregateFunction,
    arg: Option<SqlType>,
) -> ExecResult<Box<dyn FrameAccumulator>> {
    use AggregateFunction as F;
    let double = arg == Some(SqlType::Double);
    Ok(match func {
        F::CountStar => Box::new(Frames::<CountFrame>::new(true)),
        F::Count => Box::new(Frames::<CountFrame>::new(false)),
        F::Sum if double => Box::new(Frames::<SumFrame<f64>>::new(false)),
        F::Sum => Box::new(Frames::<SumFrame<i64>>::new(false)),
        F::Avg => Box::new(Frames::<SumFrame<f64>>::new(true)),
        F::Min | F::Max if double => Box::new(Frames::<ExtremeFrame<f64>>::new(func == F::Max)),
        F::Min | F::Max => Box::new(Frames::<ExtremeFrame<i64>>::new(func == F::Max)),
        F::CountDistinct | F::StddevSamp | F::VarSamp | F::Wasm => {
            return Err(ExecError::Internal(format!(
                "{}(...) OVER (...) has no frame accumulator",
                func.name()
            )));
        }
    })
}

/// An argument column as the frames read it.
enum Arg {
    None,
    Int(Int64Array),
    Double(Float64Array),
}

impl Arg {
    fn of(args: &[ArrayRef]) -> ExecResult<Self> {
        let err = |e| ExecError::arrow("row window argument", e);
        let Some(v) = args.first() else {
            return Ok(Arg::None);
        };
        Ok(match v.data_type() {
            DataType::Float64 => Arg::Double(v.as_primitive::<Float64Type>().clone()),
            DataType::Null => Arg::None,
            _ => Arg::Int(
                cast(v, &DataType::Int64)
                    .map_err(err)?
                    .as_primitive::<Int64Type>()
                    .clone(),
            ),
        })
    }

    #[inline]
    fn valid(&self, row: usize) -> bool {
        match self {
            Arg::Int(v) => v.is_valid(row),
            Arg::Double(v) => v.is_valid(row),
            Arg::None => false,
        }
    }
}

/// A value a frame folds: BIGINT-like or DOUBLE.
trait Num: Copy + PartialOrd + Send + 'static {
    const ZERO: Self;
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn read(arg: &Arg, row: usize) -> Option<Self>;
    fn column(values: Vec<Option<Self>>) -> ArrayRef;
    fn values(a: &ArrayRef) -> ExecResult<Vec<Option<Self>>>;
}

impl Num for i64 {
    const ZERO: Self = 0;
    fn add(self, o: Self) -> Self {
        self.wrapping_add(o)
    }
    fn sub(self, o: Self) -> Self {
        self.wrapping_sub(o)
    }
    #[inline]
    fn read(arg: &Arg, row: usize) -> Option<Self> {
        match arg {
            Arg::Int(v) => v.is_valid(row).then(|| v.value(row)),
            _ => None,
        }
    }
    fn column(values: Vec<Option<Self>>) -> ArrayRef {
        Arc::new(Int64Array::from(values))
    }
    fn values(a: &ArrayRef) -> ExecResult<Vec<Option<Self>>> {
        a.as_primitive_opt::<Int64Type>()
            .map(|c| c.iter().collect())
            .ok_or_else(|| ExecError::Internal("a frame state column is not BIGINT".into()))
    }
}

impl Num for f64 {
    const ZERO: Self = 0.0;
    fn add(self, o: Self) -> Self {
        self + o
    }
    fn sub(self, o: Self) -> Self {
        self - o
    }
    #[inline]
    fn read(arg: &Arg, row: usize) -> Option<Self> {
        match arg {
            Arg::Double(v) => v.is_valid(row).then(|| v.value(row)),
            Arg::Int(v) => v.is_valid(row).then(|| v.value(row) as f64),
            Arg::None => None,
        }
    }
    fn column(values: Vec<Option<Self>>) -> ArrayRef {
        Arc::new(Float64Array::from(values))
    }
    fn values(a: &ArrayRef) -> ExecResult<Vec<Option<Self>>> {
        a.as_primitive_opt::<Float64Type>()
            .map(|c| c.iter().collect())
            .ok_or_else(|| ExecError::Internal("a frame state column is not DOUBLE".into()))
    }
}

/// One group's frame of a built-in aggregate. `flag` is the aggregate's
/// variant: COUNT(*) vs COUNT(x), AVG vs SUM, MAX vs MIN.
trait Frame: Default + Send + 'static {
    type Out: Num;
    fn push(&mut self, arg: &Arg, row: usize, flag: bool);
    fn pop(&mut self);
    fn value(&self, flag: bool) -> Option<Self::Out>;
    /// Per-group scalars and per-frame-row values of `groups`, each
    /// per-row part with a `group` column first.
    fn save(groups: &[Self]) -> ExecResult<Vec<Part>>;
    /// Loads [`Frame::save`]'s parts into `groups` (already sized).
    fn load(groups: &mut [Self], parts: &[Part]) -> ExecResult<()>;
}

/// The built-in frame accumulator: one [`Frame`] per group.
struct Frames<F: Frame> {
    groups: Vec<F>,
    flag: bool,
    arg: Arg,
    out: Vec<Option<F::Out>>,
}

impl<F: Frame> Frames<F> {
    fn new(flag: bool) -> Self {
        Self {
            groups: Vec::new(),
            flag,
            arg: Arg::None,
            out: Vec::new(),
        }
    }
}

impl<F: Frame> FrameAccumulator for Frames<F> {
    fn begin(&mut self, args: &[ArrayRef], groups: usize) -> ExecResult<()> {
        self.arg = Arg::of(args)?;
        if self.groups.len() < groups {
            self.groups.resize_with(groups, F::default);
        }
        Ok(())
    }

    #[inline]
    fn push(&mut self, group: u32, row: u32) {
        self.groups[group as usize].push(&self.arg, row as usize, self.flag);
    }

    #[inline]
    fn pop(&mut self, group: u32) {
        self.groups[group as usize].pop();
    }

    #[inline]
    fn emit(&mut self, group: u32) {
        let v = self.groups[group as usize].value(self.flag);
        self.out.push(v);
    }

    fn finish(&mut self) -> ExecResult<ArrayRef> {
        self.arg = Arg::None;
        Ok(F::Out::column(std::mem::take(&mut self.out)))
    }

    fn snapshot(&mut self, out: &mut Vec<Part>) -> ExecResult<()> {
        out.extend(F::save(&self.groups)?);
        Ok(())
    }

    fn restore(&mut self, parts: &[Part]) -> ExecResult<()> {
        let n = parts
            .iter()
            .find(|(name, _)| name == "groups")
            .map_or(0, |(_, b)| b.num_rows());
        self.groups.resize_with(n, F::default);
        F::load(&mut self.groups, parts)
    }
}

fn part<'a>(parts: &'a [Part], name: &str) -> ExecResult<&'a RecordBatch> {
    parts
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, b)| b)
        .ok_or_else(|| ExecError::Internal(format!("a frame state lacks its '{name}' part")))
}

fn column<'a>(b: &'a RecordBatch, name: &str) -> ExecResult<&'a ArrayRef> {
    b.column_by_name(name)
        .ok_or_else(|| ExecError::Internal(format!("a frame state lacks '{name}'")))
}

fn ints(values: impl IntoIterator<Item = i64>) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(values))
}

/// Per frame row, its group: `rows_of(len)` for groups in order.
fn group_column<F>(groups: &[F], len: impl Fn(&F) -> usize) -> ArrayRef {
    ints(
        groups
            .iter()
            .enumerate()
            .flat_map(|(g, f)| std::iter::repeat_n(g as i64, len(f))),
    )
}

/// The per-row part's `group` column, as indexes.
fn row_groups(b: &RecordBatch, groups: usize) -> ExecResult<Vec<usize>> {
    let g = column(b, "group")?
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| ExecError::Internal("a frame state's group is not BIGINT".into()))?;
    g.values()
        .iter()
        .map(|&v| {
            usize::try_from(v)
                .ok()
                .filter(|&v| v < groups)
                .ok_or_else(|| ExecError::Internal("a frame row of no group".into()))
        })
        .collect()
}

/// `COUNT(*)` (`flag`) or `COUNT(x)`: per row of the frame whether it counts.
#[derive(Default)]
struct CountFrame {
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
struct SumFrame<T> {
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
trait Mean: Num {
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
struct ExtremeFrame<T> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every built-in frame against a rescan of every frame, on random data,
    /// with a snapshot → restore into a fresh accumulator halfway.
    #[test]
    fn frames_match_a_rescan_across_a_restore() {
        let mut x: u64 = 99;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        use AggregateFunction as F;
        for width in [1usize, 2, 5, 17] {
            for (func, arg) in [
                (F::Max, SqlType::BigInt),
                (F::Min, SqlType::BigInt),
                (F::Sum, SqlType::BigInt),
                (F::Count, SqlType::BigInt),
                (F::CountStar, SqlType::BigInt),
                (F::Avg, SqlType::Double),
                (F::Max, SqlType::Double),
            ] {
                let mut acc = frame_accumulator(func, Some(arg)).unwrap();
                let mut frame: VecDeque<Option<i64>> = VecDeque::new();
                let values: Vec<Option<i64>> = (0..2000)
                    .map(|_| (next() % 7 != 0).then(|| (next() % 100) as i64 - 50))
                    .collect();
                let mut got: Vec<Option<f64>> = Vec::new();
                let mut want: Vec<Option<f64>> = Vec::new();
                for (half, rows) in values.chunks(1000).enumerate() {
                    if half == 1 {
                        let mut parts = Vec::new();
                        acc.snapshot(&mut parts).unwrap();
                        acc = frame_accumulator(func, Some(arg)).unwrap();
                        acc.restore(&parts).unwrap();
                    }
                    let col: ArrayRef = if arg == SqlType::Double {
                        Arc::new(Float64Array::from_iter(
                            rows.iter().map(|v| v.map(|x| x as f64)),
                        ))
                    } else {
                        Arc::new(Int64Array::from(rows.to_vec()))
                    };
                    acc.begin(&[col], 1).unwrap();
                    for (r, v) in rows.iter().enumerate() {
                        frame.push_back(*v);
                        acc.push(0, r as u32);
                        while frame.len() > width {
                            frame.pop_front();
                            acc.pop(0);
                        }
                        acc.emit(0);
                        let vals: Vec<i64> = frame.iter().flatten().copied().collect();
                        let n = vals.len() as f64;
                        let sum = vals.iter().sum::<i64>() as f64;
                        want.push(match func {
                            F::Max => vals.iter().max().map(|&v| v as f64),
                            F::Min => vals.iter().min().map(|&v| v as f64),
                            F::Sum => (!vals.is_empty()).then_some(sum),
                            F::Count => Some(n),
                            F::CountStar => Some(frame.len() as f64),
                            _ => (!vals.is_empty()).then(|| sum / n),
                        });
                    }
                    let out = cast(&acc.finish().unwrap(), &DataType::Float64).unwrap();
                    got.extend(out.as_primitive::<Float64Type>().iter());
                }
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    let close = match (g, w) {
                        (Some(a), Some(b)) => (a - b).abs() < 1e-9,
                        (a, b) => a == b,
                    };
                    assert!(
                        close,
                        "{func:?}({arg}), width {width}, row {i}: {g:?} vs {w:?}"
                    );
                }
            }
        }
    }
}
