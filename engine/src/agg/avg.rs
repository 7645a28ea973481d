//! `AVG(x)`: the mean as DOUBLE; state is (sum, count).

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Float64Array, Int64Array};
use arrow::datatypes::{Float64Type, Int64Type};

use crate::agg::Accumulator;
use crate::agg::util::{for_each_valid, is_null_type, primitive_arg};
use crate::error::{ExecError, ExecResult};

/// Per-group sum and count of non-NULL values.
#[derive(Debug, Default)]
pub(crate) struct AvgAccumulator {
    sums: Vec<f64>,
    counts: Vec<i64>,
}

impl AvgAccumulator {
    fn grow(&mut self, n: usize) {
        self.sums.resize(n, 0.0);
        self.counts.resize(n, 0);
    }

    fn take(&mut self, n: usize) -> (Vec<f64>, Vec<i64>) {
        self.grow(n);
        (
            std::mem::take(&mut self.sums),
            std::mem::take(&mut self.counts),
        )
    }
}

impl Accumulator for AvgAccumulator {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[u32],
        total_num_groups: usize,
    ) -> ExecResult<()> {
        self.grow(total_num_groups);
        if is_null_type(values) {
            return Ok(());
        }
        let v = primitive_arg::<Float64Type>(values, "avg")?;
        let (sums, counts) = (&mut self.sums, &mut self.counts);
        for_each_valid(&v, group_indices, |g, x| {
            sums[g] += x;
            counts[g] += 1;
        });
        Ok(())
    }

    fn merge_batch(
        &mut self,
        states: &[ArrayRef],
        group_indices: &[u32],
        total_num_groups: usize,
    ) -> ExecResult<()> {
        self.grow(total_num_groups);
        let bad = || ExecError::Internal("AVG state must be (DOUBLE, BIGINT)".into());
        let sums = states
            .first()
            .and_then(|s| s.as_primitive_opt::<Float64Type>())
            .ok_or_else(bad)?;
        let counts = states
            .get(1)
            .and_then(|s| s.as_primitive_opt::<Int64Type>())
            .ok_or_else(bad)?;
        for ((&g, s), c) in group_indices.iter().zip(sums.values()).zip(counts.values()) {
            self.sums[g as usize] += s;
            self.counts[g as usize] += c;
        }
        Ok(())
    }

    fn evaluate(&mut self, total_num_groups: usize) -> ExecResult<ArrayRef> {
        let (sums, counts) = self.take(total_num_groups);
        let means: Float64Array = sums
            .iter()
            .zip(&counts)
            .map(|(s, &c)| (c > 0).then(|| s / c as f64))
            .collect();
        Ok(Arc::new(means))
    }

    fn evaluate_groups(&self, groups: &[u32]) -> ExecResult<ArrayRef> {
        let means: Float64Array = groups
            .iter()
            .map(|&g| {
                let g = g as usize;
                let c = self.counts.get(g).copied().unwrap_or(0);
                (c > 0).then(|| self.sums[g] / c as f64)
            })
            .collect();
        Ok(Arc::new(means))
    }

    fn state(&mut self, total_num_groups: usize) -> ExecResult<Vec<ArrayRef>> {
        let (sums, counts) = self.take(total_num_groups);
        Ok(vec![
            Arc::new(Float64Array::from(sums)),
            Arc::new(Int64Array::from(counts)),
        ])
    }

    fn size(&self) -> usize {
        self.sums.capacity() * 8 + self.counts.capacity() * 8
    }
}
