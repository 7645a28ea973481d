//! `SUM(x)`: integers sum as BIGINT (wrapping on overflow), doubles as DOUBLE.

use std::marker::PhantomData;
use std::sync::Arc;

use arrow::array::{ArrayRef, ArrowPrimitiveType, PrimitiveArray};
use arrow::datatypes::ArrowNativeTypeOp;

use crate::agg::Accumulator;
use crate::agg::util::{for_each_valid, is_null_type, primitive_arg, validity};
use crate::error::ExecResult;

/// Per-group sums in `T` (Int64 or Float64); NULL for groups with no value.
#[derive(Debug)]
pub(crate) struct SumAccumulator<T: ArrowPrimitiveType> {
    sums: Vec<T::Native>,
    seen: Vec<bool>,
    _t: PhantomData<fn() -> T>,
}

impl<T: ArrowPrimitiveType> SumAccumulator<T> {
    pub fn new() -> Self {
        Self {
            sums: Vec::new(),
            seen: Vec::new(),
            _t: PhantomData,
        }
    }

    fn add(&mut self, values: &[ArrayRef], group_indices: &[u32], total: usize) -> ExecResult<()> {
        self.sums.resize(total, T::Native::ZERO);
        self.seen.resize(total, false);
        if is_null_type(values) {
            return Ok(());
        }
        let v = primitive_arg::<T>(values, "sum")?;
        let (sums, seen) = (&mut self.sums, &mut self.seen);
        for_each_valid(&v, group_indices, |g, x| {
            sums[g] = sums[g].add_wrapping(x);
            seen[g] = true;
        });
        Ok(())
    }
}

impl<T: ArrowPrimitiveType> Accumulator for SumAccumulator<T> {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[u32],
        total_num_groups: usize,
    ) -> ExecResult<()> {
        self.add(values, group_indices, total_num_groups)
    }

    fn merge_batch(
        &mut self,
        states: &[ArrayRef],
        group_indices: &[u32],
        total_num_groups: usize,
    ) -> ExecResult<()> {
        self.add(states, group_indices, total_num_groups)
    }

    fn evaluate(&mut self, total_num_groups: usize) -> ExecResult<ArrayRef> {
        let mut sums = std::mem::take(&mut self.sums);
        let mut seen = std::mem::take(&mut self.seen);
        sums.resize(total_num_groups, T::Native::ZERO);
        seen.resize(total_num_groups, false);
        Ok(Arc::new(PrimitiveArray::<T>::new(
            sums.into(),
            validity(&seen),
        )))
    }

    fn state(&mut self, total_num_groups: usize) -> ExecResult<Vec<ArrayRef>> {
        Ok(vec![self.evaluate(total_num_groups)?])
    }

    fn size(&self) -> usize {
        self.sums.capacity() * std::mem::size_of::<T::Native>() + self.seen.capacity()
    }
}
