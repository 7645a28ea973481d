//! `COUNT(*)` and `COUNT(x)`.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use arrow::datatypes::Int64Type;

use crate::agg::Accumulator;
use crate::error::{ExecError, ExecResult};

/// Counts rows (`COUNT(*)`) or non-NULL values (`COUNT(x)`) per group.
#[derive(Debug, Default)]
pub(crate) struct CountAccumulator {
    star: bool,
    counts: Vec<i64>,
}

impl CountAccumulator {
    pub fn new(star: bool) -> Self {
        Self {
            star,
            counts: Vec::new(),
        }
    }
}

impl Accumulator for CountAccumulator {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[u32],
        total_num_groups: usize,
    ) -> ExecResult<()> {
        self.counts.resize(total_num_groups, 0);
        let nulls = if self.star {
            None
        } else {
            values.first().and_then(|v| v.logical_nulls())
        };
        match nulls {
            None => {
                for &g in group_indices {
                    self.counts[g as usize] += 1;
                }
            }
            Some(n) => {
                for (&g, valid) in group_indices.iter().zip(n.iter()) {
                    self.counts[g as usize] += i64::from(valid);
                }
            }
        }
        Ok(())
    }

    fn merge_batch(
        &mut self,
        states: &[ArrayRef],
        group_indices: &[u32],
        total_num_groups: usize,
    ) -> ExecResult<()> {
        self.counts.resize(total_num_groups, 0);
        let partial = states
            .first()
            .and_then(|s| s.as_primitive_opt::<Int64Type>())
            .ok_or_else(|| ExecError::Internal("COUNT state must be BIGINT".into()))?;
        for (&g, c) in group_indices.iter().zip(partial.iter()) {
            self.counts[g as usize] += c.unwrap_or(0);
        }
        Ok(())
    }

    fn evaluate(&mut self, total_num_groups: usize) -> ExecResult<ArrayRef> {
        let mut counts = std::mem::take(&mut self.counts);
        counts.resize(total_num_groups, 0);
        Ok(Arc::new(Int64Array::from(counts)))
    }

    fn evaluate_groups(&self, groups: &[u32]) -> ExecResult<ArrayRef> {
        Ok(Arc::new(Int64Array::from_iter_values(groups.iter().map(
            |g| self.counts.get(*g as usize).copied().unwrap_or(0),
        ))))
    }

    fn state(&mut self, total_num_groups: usize) -> ExecResult<Vec<ArrayRef>> {
        Ok(vec![self.evaluate(total_num_groups)?])
    }

    fn size(&self) -> usize {
        self.counts.capacity() * 8
    }
}
