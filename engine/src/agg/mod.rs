//! Aggregate functions behind one group-indexed [`Accumulator`] contract.
//!
//! One accumulator instance holds the state of *many* groups, indexed by a
//! dense `u32` group index that the caller assigns (see `exec::group_table`).
//! A batch is applied in one call with a group-index column, so the inner
//! loops are tight and a WASM aggregate can be one more implementation that
//! receives the same group-index column.

use arrow::array::ArrayRef;
use arrow::datatypes::DataType;

use crate::error::ExecResult;
use crate::types::SqlType;

/// The state of one aggregate function for many groups.
///
/// Group indexes are dense: every call passes `total_num_groups`, which is
/// one more than the largest index used so far, and the accumulator grows its
/// per-group state to that size (new groups start empty).
pub trait Accumulator: Send {
    /// Adds the rows of a batch: `values` are the argument columns (empty for
    /// `COUNT(*)`), `group_indices[r]` is the group of row `r`.
    ///
    /// # Errors
    /// An argument column of an unexpected type (a planner bug) or an Arrow failure.
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[u32],
        total_num_groups: usize,
    ) -> ExecResult<()>;

    /// Merges partial states, as produced by [`Accumulator::state`] of another
    /// accumulator of the same function, into groups: row `r` of `states` is
    /// merged into group `group_indices[r]`.
    ///
    /// # Errors
    /// State columns of an unexpected type or an Arrow failure.
    fn merge_batch(
        &mut self,
        states: &[ArrayRef],
        group_indices: &[u32],
        total_num_groups: usize,
    ) -> ExecResult<()>;

    /// The final value of every group `0..total_num_groups`, as one array.
    /// Takes the state out: the accumulator is empty afterwards.
    ///
    /// # Errors
    /// An Arrow failure while building the array.
    fn evaluate(&mut self, total_num_groups: usize) -> ExecResult<ArrayRef>;

    /// The current value of the groups in `groups` (in that order), without
    /// changing any state: what EMIT CHANGES reports after each batch. A group
    /// never updated reads as an empty group.
    ///
    /// # Errors
    /// An Arrow failure while building the array.
    fn evaluate_groups(&self, groups: &[u32]) -> ExecResult<ArrayRef>;

    /// The partial state of every group `0..total_num_groups`, one array per
    /// state field (see [`AggregateFunction::state_types`]). Takes the state out.
    ///
    /// # Errors
    /// An Arrow failure while building the arrays.
    fn state(&mut self, total_num_groups: usize) -> ExecResult<Vec<ArrayRef>>;

    /// Approximate heap bytes held, for memory accounting.
    fn size(&self) -> usize;
}

/// A built-in aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum AggregateFunction {
    /// `COUNT(*)`: rows; no argument.
    CountStar,
    /// `COUNT(x)`: non-NULL values.
    Count,
    /// `COUNT(DISTINCT x)`: distinct non-NULL values.
    CountDistinct,
    /// `SUM(x)`: INT/BIGINT → BIGINT (wrapping on overflow), DOUBLE → DOUBLE,
    /// DECIMAL(p, s) → DECIMAL(38, s) (an error on overflow); NULL when no non-NULL input.
    Sum,
    /// `MIN(x)`: any orderable type; NULL when no non-NULL input.
    Min,
    /// `MAX(x)`.
    Max,
    /// `AVG(x)`: DECIMAL(p, s) → DECIMAL(38, max(s, 6)), other numbers → DOUBLE.
    Avg,
    /// `STDDEV_SAMP(x)` (also `STDDEV`): numeric → DOUBLE, NULL for fewer than two values.
    StddevSamp,
    /// `VAR_SAMP(x)` (also `VARIANCE`): numeric → DOUBLE, NULL for fewer than two values.
    VarSamp,
    /// A WebAssembly aggregate (the call carries which one, see
    /// [`crate::plan::logical::AggregateCall::udaf`]).
    Wasm,
}

impl AggregateFunction {
    /// Looks a function up by its SQL name (case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "count" => AggregateFunction::Count,
            "sum" => AggregateFunction::Sum,
            "min" => AggregateFunction::Min,
            "max" => AggregateFunction::Max,
            "avg" => AggregateFunction::Avg,
            "stddev_samp" | "stddev" => AggregateFunction::StddevSamp,
            "var_samp" | "variance" => AggregateFunction::VarSamp,
            _ => return None,
        })
    }

    /// SQL name, as in EXPLAIN.
    pub fn name(self) -> &'static str {
        match self {
            AggregateFunction::CountStar | AggregateFunction::Count => "count",
            AggregateFunction::CountDistinct => "count_distinct",
            AggregateFunction::Sum => "sum",
            AggregateFunction::Min => "min",
            AggregateFunction::Max => "max",
            AggregateFunction::Avg => "avg",
            AggregateFunction::StddevSamp => "stddev_samp",
            AggregateFunction::VarSamp => "var_samp",
            AggregateFunction::Wasm => "wasm",
        }
    }

    /// The result type for an argument of type `arg` (`None` for `COUNT(*)`),
    /// or `None` when the function does not accept that type.
    pub fn return_type(self, arg: Option<SqlType>) -> Option<SqlType> {
        use AggregateFunction as F;
        match (self, arg) {
            (F::CountStar, _) | (F::Count | F::CountDistinct, Some(_)) => Some(SqlType::BigInt),
            (F::Sum, Some(SqlType::Int | SqlType::BigInt | SqlType::Null)) => Some(SqlType::BigInt),
            (F::Sum, Some(SqlType::Double)) => Some(SqlType::Double),
            (F::Sum, Some(SqlType::Decimal(p, s))) => {
                let (p, s) = crate::types::decimal::sum_type((p, s));
                Some(SqlType::Decimal(p, s))
            }
            (F::Avg, Some(SqlType::Decimal(p, s))) => {
                let (p, s) = crate::types::decimal::avg_type((p, s));
                Some(SqlType::Decimal(p, s))
            }
            (F::Min | F::Max, Some(t)) if t != SqlType::Interval => Some(if t == SqlType::Null {
                SqlType::BigInt
            } else {
                t
            }),
            (F::Avg | F::StddevSamp | F::VarSamp, Some(t))
                if t.is_numeric() || t == SqlType::Null =>
            {
                Some(SqlType::Double)
            }
            _ => None,
        }
    }

    /// The Arrow types of the partial state columns (see [`Accumulator::state`]).
    pub fn state_types(self, arg: Option<SqlType>) -> Vec<DataType> {
        use AggregateFunction as F;
        let ret = self.return_type(arg).unwrap_or(SqlType::BigInt).to_arrow();
        match self {
            F::CountStar | F::Count => vec![DataType::Int64],
            F::Sum | F::Min | F::Max => vec![ret],
            F::Avg => match arg {
                Some(SqlType::Decimal(_, s)) => vec![
                    DataType::Decimal128(crate::types::decimal::MAX_PRECISION, s as i8),
                    DataType::Int64,
                ],
                _ => vec![DataType::Float64, DataType::Int64],
            },
            F::StddevSamp | F::VarSamp => vec![
                DataType::Int64,
                DataType::Float64,
                DataType::Float64,
                DataType::Int32,
            ],
            F::CountDistinct => {
                let item = arg.unwrap_or(SqlType::BigInt).to_arrow();
                vec![DataType::new_list(item, true)]
            }
            F::Wasm => vec![DataType::Binary],
        }
    }
}

/// Creates an empty accumulator for `func` over an argument of type `arg`.
///
/// # Errors
/// [`crate::ExecError::Internal`] when the function does not accept the type
/// (the planner checks this first, so it is a bug if it happens).
pub fn create_accumulator(
    func: AggregateFunction,
    arg: Option<SqlType>,
) -> ExecResult<Box<dyn Accumulator>> {
    use AggregateFunction as F;
    use arrow::datatypes::{Float64Type, Int32Type, Int64Type, TimestampMillisecondType};
    use fold::PrimitiveFold;
    type Min<T> = PrimitiveFold<T, min_max::MinMaxOp<false>>;
    type Max<T> = PrimitiveFold<T, min_max::MinMaxOp<true>>;
    let unsupported = || {
        crate::ExecError::Internal(format!(
            "{}({}) has no accumulator",
            func.name(),
            arg.map_or("*".to_string(), |t| t.to_string())
        ))
    };
    if func.return_type(arg).is_none() {
        return Err(unsupported());
    }
    Ok(match (func, arg) {
        (F::CountStar, _) => Box::new(count::CountAccumulator::new(true)),
        (F::Count, _) => Box::new(count::CountAccumulator::new(false)),
        (F::CountDistinct, Some(t)) => Box::new(count_distinct::CountDistinctAccumulator::new(t)),
        (F::Sum, Some(SqlType::Double)) => {
            Box::new(PrimitiveFold::<Float64Type, sum::SumOp>::new())
        }
        (F::Sum, Some(SqlType::Decimal(p, s))) => Box::new(decimal::DecimalFold::new(
            decimal::Fold::Sum,
            crate::types::decimal::sum_type((p, s)),
        )),
        (F::Sum, _) => Box::new(PrimitiveFold::<Int64Type, sum::SumOp>::new()),
        (F::Min, Some(SqlType::Decimal(p, s))) => {
            Box::new(decimal::DecimalFold::new(decimal::Fold::Min, (p, s)))
        }
        (F::Max, Some(SqlType::Decimal(p, s))) => {
            Box::new(decimal::DecimalFold::new(decimal::Fold::Max, (p, s)))
        }
        (F::Min | F::Max, Some(t)) => match (t, func == F::Max) {
            (SqlType::Int, false) => Box::new(Min::<Int32Type>::new()),
            (SqlType::Int, true) => Box::new(Max::<Int32Type>::new()),
            (SqlType::BigInt | SqlType::Null, false) => Box::new(Min::<Int64Type>::new()),
            (SqlType::BigInt | SqlType::Null, true) => Box::new(Max::<Int64Type>::new()),
            (SqlType::Double, false) => Box::new(Min::<Float64Type>::new()),
            (SqlType::Double, true) => Box::new(Max::<Float64Type>::new()),
            (SqlType::Timestamp, false) => Box::new(Min::<TimestampMillisecondType>::new()),
            (SqlType::Timestamp, true) => Box::new(Max::<TimestampMillisecondType>::new()),
            (SqlType::Boolean, max) => Box::new(min_max::BoolMinMax::new(max)),
            (SqlType::Varchar, max) => Box::new(min_max::StringMinMax::new(max)),
            (SqlType::Interval | SqlType::Decimal(..), _) => return Err(unsupported()),
        },
        (F::Avg, Some(SqlType::Decimal(p, s))) => Box::new(decimal::DecimalAvg::new(
            s,
            crate::types::decimal::avg_type((p, s)),
        )),
        (F::Avg, _) => Box::new(avg::AvgAccumulator::default()),
        (F::StddevSamp, _) => Box::new(variance::VarianceAccumulator::new(true)),
        (F::VarSamp, _) => Box::new(variance::VarianceAccumulator::new(false)),
        (F::CountDistinct | F::Min | F::Max, None) | (F::Wasm, _) => return Err(unsupported()),
    })
}

mod avg;
mod count;
mod count_distinct;
mod decimal;
mod fold;
pub mod frame;
mod min_max;
mod sum;
mod util;
mod variance;
pub mod wasm;
pub mod wasm_frames;

#[cfg(test)]
mod tests;
