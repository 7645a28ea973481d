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

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use arrow::record_batch::RecordBatch;

use crate::agg::AggregateFunction;
use crate::error::{ExecError, ExecResult};
use crate::exec::rescale::{Remaps, concat, keep_keyed_rows, remap_ids};
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

    /// The share of old workers' snapshots (`old`, by worker) that a new
    /// worker keeps, renumbered: `remaps[w][g]` is old worker `w`'s group
    /// `g` on the new worker (`None`: another worker's now).
    ///
    /// # Errors
    /// Parts of another shape.
    fn split(&self, old: Vec<Vec<Part>>, remaps: &Remaps) -> ExecResult<Vec<Part>>;
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

    /// `groups` (row `g`: group `g`) keeps the owned groups' rows, `rows`
    /// (a `group` column) the owned groups' rows, renumbered.
    fn split(&self, old: Vec<Vec<Part>>, remaps: &Remaps) -> ExecResult<Vec<Part>> {
        let (mut groups, mut rows) = (Vec::new(), Vec::new());
        for (parts, remap) in old.iter().zip(remaps) {
            groups.push(keep_keyed_rows(part(parts, "groups")?, remap)?);
            rows.push(remap_ids(part(parts, "rows")?, "group", remap)?);
        }
        let mut out = Vec::new();
        for (name, batches) in [("groups", groups), ("rows", rows)] {
            if let Some(b) = concat(batches)? {
                out.push((name.to_string(), b));
            }
        }
        Ok(out)
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

mod kinds;
#[cfg(test)]
mod tests;

use kinds::{CountFrame, ExtremeFrame, SumFrame};
