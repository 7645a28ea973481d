//! SUM, MIN, MAX and AVG of DECIMALs, exact on `i128` values.
//!
//! * SUM of DECIMAL(p, s) is DECIMAL(38, s); a sum past 38 digits fails the
//!   query with an overflow error (never wraps, never rounds).
//! * AVG is DECIMAL(38, max(s, 6)): the exact sum divided by the count,
//!   rounded half away from zero. Its state is (sum, count).
//! * MIN and MAX keep the argument's type.

use arrow::array::{ArrayRef, AsArray, Int64Array};
use arrow::datatypes::Int64Type;

use crate::agg::Accumulator;
use crate::agg::util::{is_null_type, validity};
use crate::error::{ExecError, ExecResult};
use crate::types::decimal::{self as dec, decimal_array, decimals, overflow};

/// How a [`DecimalFold`] combines values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fold {
    Sum,
    Min,
    Max,
}

/// Per-group SUM, MIN or MAX of DECIMALs of scale `ty.1`.
#[derive(Debug)]
pub(crate) struct DecimalFold {
    fold: Fold,
    /// The result type.
    ty: (u8, u8),
    values: Vec<i128>,
    seen: Vec<bool>,
}

impl DecimalFold {
    pub fn new(fold: Fold, ty: (u8, u8)) -> Self {
        Self {
            fold,
            ty,
            values: Vec::new(),
            seen: Vec::new(),
        }
    }

    fn grow(&mut self, n: usize) {
        self.values.resize(n, 0);
        self.seen.resize(n, false);
    }
}

/// The first argument as DECIMAL values at scale `s` (an input of a smaller
/// scale, as a merged state never is, is rescaled).
fn arg_at_scale(values: &[ArrayRef], s: u8, what: &str) -> ExecResult<Vec<Option<i128>>> {
    let a = values
        .first()
        .ok_or_else(|| ExecError::Internal(format!("{what} needs an argument")))?;
    let d = decimals(a)?;
    let from = d.scale() as u8;
    d.iter()
        .map(|v| {
            v.map(|v| {
                dec::rescale(v, from, s).ok_or_else(|| overflow(dec::format(v, from), (38, s)))
            })
            .transpose()
        })
        .collect()
}

impl Accumulator for DecimalFold {
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
        let (p, s) = self.ty;
        let name = match self.fold {
            Fold::Sum => "sum",
            Fold::Min => "min",
            Fold::Max => "max",
        };
        let v = arg_at_scale(values, s, name)?;
        for (&g, x) in group_indices.iter().zip(v) {
            let (Some(x), g) = (x, g as usize) else {
                continue;
            };
            let acc = &mut self.values[g];
            *acc = if !self.seen[g] {
                x
            } else {
                match self.fold {
                    Fold::Sum => {
                        acc.checked_add(x)
                            .filter(|v| dec::fits(*v, p))
                            .ok_or_else(|| {
                                overflow(
                                    format!(
                                        "SUM: {} + {}",
                                        dec::format(*acc, s),
                                        dec::format(x, s)
                                    ),
                                    self.ty,
                                )
                            })?
                    }
                    Fold::Min => (*acc).min(x),
                    Fold::Max => (*acc).max(x),
                }
            };
            self.seen[g] = true;
        }
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
        self.grow(total_num_groups);
        let values = std::mem::take(&mut self.values);
        let seen = std::mem::take(&mut self.seen);
        decimal_array(values, validity(&seen), self.ty)
    }

    fn evaluate_groups(&self, groups: &[u32]) -> ExecResult<ArrayRef> {
        let at = |g: &u32| self.seen.get(*g as usize).copied().unwrap_or(false);
        let values = groups
            .iter()
            .map(|g| self.values.get(*g as usize).copied().unwrap_or(0))
            .collect();
        let seen: Vec<bool> = groups.iter().map(at).collect();
        decimal_array(values, validity(&seen), self.ty)
    }

    fn state(&mut self, total_num_groups: usize) -> ExecResult<Vec<ArrayRef>> {
        Ok(vec![self.evaluate(total_num_groups)?])
    }

    fn size(&self) -> usize {
        self.values.capacity() * 16 + self.seen.capacity()
    }
}

/// Per-group exact sum (at the argument's scale) and count of DECIMALs.
#[derive(Debug)]
pub(crate) struct DecimalAvg {
    /// The argument's scale, which the sums keep.
    scale: u8,
    /// The result type.
    out: (u8, u8),
    sums: Vec<i128>,
    counts: Vec<i64>,
}

impl DecimalAvg {
    pub fn new(scale: u8, out: (u8, u8)) -> Self {
        Self {
            scale,
            out,
            sums: Vec::new(),
            counts: Vec::new(),
        }
    }

    fn grow(&mut self, n: usize) {
        self.sums.resize(n, 0);
        self.counts.resize(n, 0);
    }

    fn add(&mut self, g: usize, sum: i128, count: i64) -> ExecResult<()> {
        let s = self.scale;
        self.sums[g] = self.sums[g]
            .checked_add(sum)
            .filter(|v| dec::fits(*v, dec::MAX_PRECISION))
            .ok_or_else(|| {
                overflow(
                    format!(
                        "AVG's sum {} + {}",
                        dec::format(self.sums[g], s),
                        dec::format(sum, s)
                    ),
                    (dec::MAX_PRECISION, s),
                )
            })?;
        self.counts[g] += count;
        Ok(())
    }

    fn mean(&self, g: usize) -> Option<i128> {
        let c = *self.counts.get(g)?;
        // sum / 10^scale / c at scale out.1 (≥ scale)
        (c > 0).then(|| {
            dec::divide(self.sums[g], self.scale, i128::from(c), 0, self.out.1)
                .expect("a mean is no larger than the largest value")
        })
    }

    fn means(&self, groups: impl Iterator<Item = usize>) -> ExecResult<ArrayRef> {
        let (mut values, mut seen) = (Vec::new(), Vec::new());
        for g in groups {
            let m = self.mean(g);
            values.push(m.unwrap_or(0));
            seen.push(m.is_some());
        }
        decimal_array(values, validity(&seen), self.out)
    }
}

impl Accumulator for DecimalAvg {
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
        for (&g, x) in group_indices
            .iter()
            .zip(arg_at_scale(values, self.scale, "avg")?)
        {
            if let Some(x) = x {
                self.add(g as usize, x, 1)?;
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
        self.grow(total_num_groups);
        let sums = arg_at_scale(states, self.scale, "avg")?;
        let counts = states
            .get(1)
            .and_then(|c| c.as_primitive_opt::<Int64Type>())
            .ok_or_else(|| ExecError::Internal("AVG state must be (DECIMAL, BIGINT)".into()))?;
        for ((&g, s), c) in group_indices.iter().zip(sums).zip(counts.values()) {
            self.add(g as usize, s.unwrap_or(0), *c)?;
        }
        Ok(())
    }

    fn evaluate(&mut self, total_num_groups: usize) -> ExecResult<ArrayRef> {
        self.grow(total_num_groups);
        let out = self.means(0..total_num_groups);
        self.sums = Vec::new();
        self.counts = Vec::new();
        out
    }

    fn evaluate_groups(&self, groups: &[u32]) -> ExecResult<ArrayRef> {
        self.means(groups.iter().map(|&g| g as usize))
    }

    fn state(&mut self, total_num_groups: usize) -> ExecResult<Vec<ArrayRef>> {
        self.grow(total_num_groups);
        let sums = std::mem::take(&mut self.sums);
        let counts = std::mem::take(&mut self.counts);
        let sums = decimal_array(sums, None, (dec::MAX_PRECISION, self.scale))?;
        Ok(vec![sums, std::sync::Arc::new(Int64Array::from(counts))])
    }

    fn size(&self) -> usize {
        self.sums.capacity() * 16 + self.counts.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Array;

    fn d(values: &[Option<i128>], p: u8, s: u8) -> ArrayRef {
        decimal_array(
            values.iter().map(|v| v.unwrap_or(0)).collect(),
            Some(
                values
                    .iter()
                    .map(Option::is_some)
                    .collect::<Vec<_>>()
                    .into(),
            ),
            (p, s),
        )
        .unwrap()
    }

    #[test]
    fn a_million_tenths_sum_to_exactly_100000() {
        let mut sum = DecimalFold::new(Fold::Sum, (38, 1));
        let tenths = d(&[Some(1); 1000], 10, 1);
        for _ in 0..1000 {
            sum.update_batch(std::slice::from_ref(&tenths), &[0; 1000], 1)
                .unwrap();
        }
        let out = sum.evaluate(1).unwrap();
        assert_eq!(decimals(&out).unwrap().value(0), 1_000_000);
        assert_eq!(
            out.data_type(),
            &arrow::datatypes::DataType::Decimal128(38, 1)
        );
    }

    #[test]
    fn a_sum_past_38_digits_is_an_error() {
        let mut sum = DecimalFold::new(Fold::Sum, (38, 0));
        let big = d(&[Some(dec::pow10(38) - 1), Some(1)], 38, 0);
        let e = sum.update_batch(&[big], &[0, 0], 1).unwrap_err();
        assert!(e.to_string().contains("DECIMAL overflow"), "{e}");
    }

    #[test]
    fn avg_rounds_half_up_and_merges_its_state() {
        let mut a = DecimalAvg::new(2, (38, 6));
        // 1.00, 2.00, 2.00 → 1.666667; group 1 has only NULL
        a.update_batch(&[d(&[Some(100), Some(200), None], 5, 2)], &[0, 0, 1], 2)
            .unwrap();
        let state = a.state(2).unwrap();
        let mut b = DecimalAvg::new(2, (38, 6));
        b.update_batch(&[d(&[Some(200)], 5, 2)], &[0], 1).unwrap();
        b.merge_batch(&state, &[0, 1], 2).unwrap();
        let out = b.evaluate(2).unwrap();
        let out = decimals(&out).unwrap();
        assert_eq!(out.value(0), 1_666_667);
        assert!(out.is_null(1));
        let mut mins = DecimalFold::new(Fold::Min, (5, 2));
        mins.update_batch(&[d(&[Some(5), Some(-7), None], 5, 2)], &[0, 0, 1], 2)
            .unwrap();
        let m = mins.evaluate_groups(&[0, 1]).unwrap();
        assert_eq!(decimals(&m).unwrap().value(0), -7);
        assert!(m.is_null(1));
    }
}
