//! `VAR_SAMP(x)` and `STDDEV_SAMP(x)`: Welford's online algorithm per group,
//! partial states merged with Chan et al.'s parallel formula. State is
//! (count, mean, m2).

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Float64Array, Int64Array};
use arrow::datatypes::{Float64Type, Int64Type};

use crate::agg::Accumulator;
use crate::agg::util::{for_each_valid, is_null_type, primitive_arg};
use crate::error::{ExecError, ExecResult};

/// Per-group count, mean and sum of squared deviations.
#[derive(Debug, Default)]
pub(crate) struct VarianceAccumulator {
    stddev: bool,
    counts: Vec<i64>,
    means: Vec<f64>,
    m2s: Vec<f64>,
}

impl VarianceAccumulator {
    pub fn new(stddev: bool) -> Self {
        Self {
            stddev,
            ..Self::default()
        }
    }

    fn grow(&mut self, n: usize) {
        self.counts.resize(n, 0);
        self.means.resize(n, 0.0);
        self.m2s.resize(n, 0.0);
    }

    /// The result for a group of `n` values with squared-deviation sum `m2`.
    fn finish(&self, n: i64, m2: f64) -> Option<f64> {
        (n >= 2).then(|| {
            let var = (m2 / (n - 1) as f64).max(0.0);
            if self.stddev { var.sqrt() } else { var }
        })
    }

    fn take(&mut self, n: usize) -> (Vec<i64>, Vec<f64>, Vec<f64>) {
        self.grow(n);
        (
            std::mem::take(&mut self.counts),
            std::mem::take(&mut self.means),
            std::mem::take(&mut self.m2s),
        )
    }
}

impl Accumulator for VarianceAccumulator {
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
        let v = primitive_arg::<Float64Type>(values, "var_samp")?;
        let (counts, means, m2s) = (&mut self.counts, &mut self.means, &mut self.m2s);
        for_each_valid(&v, group_indices, |g, x| {
            counts[g] += 1;
            let delta = x - means[g];
            means[g] += delta / counts[g] as f64;
            m2s[g] += delta * (x - means[g]);
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
        let bad = || ExecError::Internal("VAR_SAMP state must be (BIGINT, DOUBLE, DOUBLE)".into());
        let counts = states
            .first()
            .and_then(|s| s.as_primitive_opt::<Int64Type>())
            .ok_or_else(bad)?;
        let means = states
            .get(1)
            .and_then(|s| s.as_primitive_opt::<Float64Type>())
            .ok_or_else(bad)?;
        let m2s = states
            .get(2)
            .and_then(|s| s.as_primitive_opt::<Float64Type>())
            .ok_or_else(bad)?;
        for (i, &g) in group_indices.iter().enumerate() {
            let (nb, mb, m2b) = (counts.value(i), means.value(i), m2s.value(i));
            if nb == 0 {
                continue;
            }
            let g = g as usize;
            let na = self.counts[g];
            let n = na + nb;
            let delta = mb - self.means[g];
            self.means[g] += delta * nb as f64 / n as f64;
            self.m2s[g] += m2b + delta * delta * (na as f64) * (nb as f64) / n as f64;
            self.counts[g] = n;
        }
        Ok(())
    }

    fn evaluate(&mut self, total_num_groups: usize) -> ExecResult<ArrayRef> {
        let (counts, _, m2s) = self.take(total_num_groups);
        let out: Float64Array = counts
            .iter()
            .zip(&m2s)
            .map(|(&n, &m2)| self.finish(n, m2))
            .collect();
        Ok(Arc::new(out))
    }

    fn evaluate_groups(&self, groups: &[u32]) -> ExecResult<ArrayRef> {
        let out: Float64Array = groups
            .iter()
            .map(|&g| {
                let g = g as usize;
                let n = self.counts.get(g).copied().unwrap_or(0);
                self.finish(n, self.m2s.get(g).copied().unwrap_or(0.0))
            })
            .collect();
        Ok(Arc::new(out))
    }

    fn state(&mut self, total_num_groups: usize) -> ExecResult<Vec<ArrayRef>> {
        let (counts, means, m2s) = self.take(total_num_groups);
        Ok(vec![
            Arc::new(Int64Array::from(counts)),
            Arc::new(Float64Array::from(means)),
            Arc::new(Float64Array::from(m2s)),
        ])
    }

    fn size(&self) -> usize {
        self.counts.capacity() * 24
    }
}
