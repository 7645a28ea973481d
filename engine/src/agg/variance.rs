//! `VAR_SAMP(x)` and `STDDEV_SAMP(x)`: Welford's online algorithm per group,
//! partial states merged with Chan et al.'s parallel formula. State is
//! (count, mean, m2, scale).
//!
//! Values are scaled by a power of two per group (exact), chosen from the
//! largest magnitude seen, so deviations and their squares never overflow:
//! `STDDEV` of `[1e308, 1e308, -1e308]` is 1.15e308, not 0 or infinity
//! (its `VAR_SAMP`, 1.3e616, is out of the DOUBLE range: NULL, as is a
//! result after an infinite value).

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Float64Array, Int32Array, Int64Array};
use arrow::datatypes::{Float64Type, Int32Type, Int64Type};

use crate::agg::Accumulator;
use crate::agg::util::{for_each_valid, is_null_type, primitive_arg};
use crate::error::{ExecError, ExecResult};

/// Per-group count, mean and sum of squared deviations, both divided by
/// `2^scale`.
#[derive(Debug, Default)]
pub(crate) struct VarianceAccumulator {
    stddev: bool,
    counts: Vec<i64>,
    means: Vec<f64>,
    m2s: Vec<f64>,
    /// Every finite value seen is below `2^scale` in magnitude.
    scales: Vec<i32>,
}

/// The scale of a group with no value yet (every finite value is above it).
const NO_SCALE: i32 = -1100;

/// `2^k`, exactly (0 below the smallest subnormal).
fn pow2(k: i32) -> f64 {
    if k >= -1022 {
        f64::from_bits(((k.min(1023) + 1023) as u64) << 52)
    } else if k >= -1074 {
        f64::from_bits(1u64 << (k + 1074))
    } else {
        0.0
    }
}

/// `x * 2^k`, in steps, so a factor out of range on its own does not
/// overflow (or vanish) where the product does not.
fn times_pow2(mut x: f64, mut k: i32) -> f64 {
    while k > 1000 {
        x *= pow2(1000);
        k -= 1000;
    }
    while k < -1000 {
        x *= pow2(-1000);
        k += 1000;
    }
    x * pow2(k)
}

/// The smallest `e` with `|x| < 2^e`, for a finite `x` (zero: [`NO_SCALE`]).
fn scale_of(x: f64) -> i32 {
    let biased = ((x.to_bits() >> 52) & 0x7ff) as i32;
    match biased {
        0 if x == 0.0 => NO_SCALE,
        0 => -1022,
        b => b - 1022,
    }
}

/// Brings a group's (mean, m2) from scale `from` to the larger `to`.
fn rescale(mean: &mut f64, m2: &mut f64, from: i32, to: i32) {
    if from == NO_SCALE {
        return;
    }
    let f = pow2(from - to);
    *mean *= f;
    *m2 *= f * f;
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
        self.scales.resize(n, NO_SCALE);
    }

    /// The result for a group of `n` values with squared-deviation sum
    /// `m2 * 4^scale`.
    fn finish(&self, n: i64, m2: f64, scale: i32) -> Option<f64> {
        // NULL, not infinity or NaN, past the DOUBLE range or after an infinite value
        (n >= 2)
            .then(|| {
                // rounding may leave m2 a hair below 0; NaN (an infinite
                // value was seen) stays NaN
                let var = m2 / (n - 1) as f64;
                let var = if var < 0.0 { 0.0 } else { var };
                if self.stddev {
                    times_pow2(var.sqrt(), scale)
                } else {
                    times_pow2(var, 2 * scale)
                }
            })
            .filter(|v| v.is_finite())
    }

    fn take(&mut self, n: usize) -> (Vec<i64>, Vec<f64>, Vec<f64>, Vec<i32>) {
        self.grow(n);
        (
            std::mem::take(&mut self.counts),
            std::mem::take(&mut self.means),
            std::mem::take(&mut self.m2s),
            std::mem::take(&mut self.scales),
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
        let (counts, means, m2s, scales) = (
            &mut self.counts,
            &mut self.means,
            &mut self.m2s,
            &mut self.scales,
        );
        for_each_valid(&v, group_indices, |g, x| {
            if x.is_finite() && scale_of(x) > scales[g] {
                let to = scale_of(x);
                rescale(&mut means[g], &mut m2s[g], scales[g], to);
                scales[g] = to;
            }
            let x = x * pow2(-scales[g]);
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
        let bad =
            || ExecError::Internal("VAR_SAMP state must be (BIGINT, DOUBLE, DOUBLE, INT)".into());
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
        let scales = states
            .get(3)
            .and_then(|s| s.as_primitive_opt::<Int32Type>())
            .ok_or_else(bad)?;
        for (i, &g) in group_indices.iter().enumerate() {
            let (nb, mut mb, mut m2b, sb) = (
                counts.value(i),
                means.value(i),
                m2s.value(i),
                scales.value(i),
            );
            if nb == 0 {
                continue;
            }
            let g = g as usize;
            // both at the larger scale
            let sa = self.scales[g];
            if sb > sa {
                rescale(&mut self.means[g], &mut self.m2s[g], sa, sb);
                self.scales[g] = sb;
            } else {
                rescale(&mut mb, &mut m2b, sb, sa);
            }
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
        let (counts, _, m2s, scales) = self.take(total_num_groups);
        let out: Float64Array = (0..counts.len())
            .map(|g| self.finish(counts[g], m2s[g], scales[g]))
            .collect();
        Ok(Arc::new(out))
    }

    fn evaluate_groups(&self, groups: &[u32]) -> ExecResult<ArrayRef> {
        let out: Float64Array = groups
            .iter()
            .map(|&g| {
                let g = g as usize;
                let n = self.counts.get(g).copied().unwrap_or(0);
                self.finish(
                    n,
                    self.m2s.get(g).copied().unwrap_or(0.0),
                    self.scales.get(g).copied().unwrap_or(NO_SCALE),
                )
            })
            .collect();
        Ok(Arc::new(out))
    }

    fn state(&mut self, total_num_groups: usize) -> ExecResult<Vec<ArrayRef>> {
        let (counts, means, m2s, scales) = self.take(total_num_groups);
        Ok(vec![
            Arc::new(Int64Array::from(counts)),
            Arc::new(Float64Array::from(means)),
            Arc::new(Float64Array::from(m2s)),
            Arc::new(Int32Array::from(scales)),
        ])
    }

    fn size(&self) -> usize {
        self.counts.capacity() * 28
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(values: &[f64], stddev: bool) -> Option<f64> {
        let mut acc = VarianceAccumulator::new(stddev);
        let v: ArrayRef = Arc::new(Float64Array::from(values.to_vec()));
        acc.update_batch(&[v], &vec![0; values.len()], 1).unwrap();
        let out = acc.evaluate(1).unwrap();
        let out = out.as_primitive::<Float64Type>();
        (!arrow::array::Array::is_null(out, 0)).then(|| out.value(0))
    }

    #[test]
    fn extreme_magnitudes_neither_overflow_nor_vanish() {
        // exact: mean 1e308/3, deviations 2e308/3, 2e308/3, -4e308/3
        let s = run(&[1e308, 1e308, -1e308], true).unwrap();
        let exact = (4.0f64 / 3.0).sqrt() * 1e308;
        assert!((s - exact).abs() / exact < 1e-12, "{s} vs {exact}");
        assert_eq!(run(&[1e308, 1e308, -1e308], false), None);
        // tiny values keep their precision
        let s = run(&[1e-300, 2e-300, 3e-300], true).unwrap();
        assert!((s - 1e-300).abs() / 1e-300 < 1e-12, "{s}");
        // small values after a huge one do not disturb it, nor the reverse
        let s = run(&[1.0, 3.0, 1e300], true).unwrap();
        let t = run(&[1e300, 1.0, 3.0], true).unwrap();
        assert!((s - t).abs() / t < 1e-12, "{s} {t}");
        assert_eq!(
            run(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0], false),
            Some(32.0 / 7.0)
        );
        assert_eq!(run(&[1.0, f64::INFINITY], true), None);
    }

    #[test]
    fn merging_states_of_different_scales() {
        let values = [1e-10, 5e-11, 1e200, -3e199, 7.0, 1e200];
        let mut whole = VarianceAccumulator::new(true);
        let all: ArrayRef = Arc::new(Float64Array::from(values.to_vec()));
        whole.update_batch(&[all], &[0; 6], 1).unwrap();
        let mut merged = VarianceAccumulator::new(true);
        for part in values.chunks(2) {
            let mut a = VarianceAccumulator::new(true);
            let v: ArrayRef = Arc::new(Float64Array::from(part.to_vec()));
            a.update_batch(&[v], &[0; 2], 1).unwrap();
            merged.merge_batch(&a.state(1).unwrap(), &[0], 1).unwrap();
        }
        let (w, m) = (whole.evaluate(1).unwrap(), merged.evaluate(1).unwrap());
        let (w, m) = (
            w.as_primitive::<Float64Type>().value(0),
            m.as_primitive::<Float64Type>().value(0),
        );
        assert!((w - m).abs() / w < 1e-12, "{w} vs {m}");
    }
}
