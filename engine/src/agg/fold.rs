//! One accumulator for every aggregate that folds primitive values with a
//! binary operation and keeps "has a value" per group: SUM, MIN and MAX of
//! numbers and timestamps. Its state is its result, so merging is folding.

use std::marker::PhantomData;
use std::sync::Arc;

use arrow::array::{ArrayRef, ArrowPrimitiveType, PrimitiveArray};
use arrow::datatypes::ArrowNativeTypeOp;

use crate::agg::Accumulator;
use crate::agg::util::{for_each_valid, is_null_type, primitive_arg, validity};
use crate::error::ExecResult;

/// The folding operation of a [`PrimitiveFold`].
pub(crate) trait FoldOp<N>: Send + 'static {
    /// Function name, for messages.
    const NAME: &'static str;
    /// Combines a group's value with the next input value.
    fn combine(acc: N, x: N) -> N;
}

/// Per-group fold of `T` values with `O`; NULL for groups with no value.
pub(crate) struct PrimitiveFold<T: ArrowPrimitiveType, O> {
    values: Vec<T::Native>,
    seen: Vec<bool>,
    _t: PhantomData<fn() -> (T, O)>,
}

impl<T: ArrowPrimitiveType, O: FoldOp<T::Native>> PrimitiveFold<T, O> {
    pub fn new() -> Self {
        Self {
            values: Vec::new(),
            seen: Vec::new(),
            _t: PhantomData,
        }
    }
}

impl<T: ArrowPrimitiveType, O: FoldOp<T::Native>> Accumulator for PrimitiveFold<T, O> {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[u32],
        total_num_groups: usize,
    ) -> ExecResult<()> {
        self.values.resize(total_num_groups, T::Native::ZERO);
        self.seen.resize(total_num_groups, false);
        if is_null_type(values) {
            return Ok(());
        }
        let v = primitive_arg::<T>(values, O::NAME)?;
        let (acc, seen) = (&mut self.values, &mut self.seen);
        for_each_valid(&v, group_indices, |g, x| {
            acc[g] = if seen[g] { O::combine(acc[g], x) } else { x };
            seen[g] = true;
        });
        Ok(())
    }

    fn merge_batch(
        &mut self,
        states: &[ArrayRef],
        group_indices: &[u32],
        total_num_groups: usize,
    ) -> ExecResult<()> {
        self.update_batch(states, group_indices, total_num_groups)
    }

    fn evaluate(&mut self, total_num_groups: usize) -> ExecResult<ArrayRef> {
        let mut values = std::mem::take(&mut self.values);
        let mut seen = std::mem::take(&mut self.seen);
        values.resize(total_num_groups, T::Native::ZERO);
        seen.resize(total_num_groups, false);
        Ok(Arc::new(PrimitiveArray::<T>::new(
            values.into(),
            validity(&seen),
        )))
    }

    fn evaluate_groups(&self, groups: &[u32]) -> ExecResult<ArrayRef> {
        let at = |g: &u32| self.seen.get(*g as usize).copied().unwrap_or(false);
        let values: Vec<T::Native> = groups
            .iter()
            .map(|g| {
                self.values
                    .get(*g as usize)
                    .copied()
                    .unwrap_or(T::Native::ZERO)
            })
            .collect();
        let seen: Vec<bool> = groups.iter().map(at).collect();
        Ok(Arc::new(PrimitiveArray::<T>::new(
            values.into(),
            validity(&seen),
        )))
    }

    fn state(&mut self, total_num_groups: usize) -> ExecResult<Vec<ArrayRef>> {
        Ok(vec![self.evaluate(total_num_groups)?])
    }

    fn size(&self) -> usize {
        self.values.capacity() * std::mem::size_of::<T::Native>() + self.seen.capacity()
    }
}
