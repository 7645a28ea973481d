//! Example aggregate UDFs: `median(x)`, `p90(x)`, `percentile(x, q)`,
//! `weighted_avg(x, w)` and `ema(x, alpha)`.
//!
//! Percentiles are *continuous* (as PostgreSQL's `percentile_cont`): over the
//! n sorted non-NULL values, the value at position q × (n − 1), interpolated
//! linearly between the two nearest ranks. So the median of an even count is
//! the mean of the two middle values, a single value is every percentile,
//! ties are values like any other, NULLs are ignored, and no values give NULL.

use eddy_udf::Aggregate;

/// The q-th continuous percentile of `values` (sorted in place).
pub fn percentile_cont(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() || !(0.0..=1.0).contains(&q) {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let pos = q * (values.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    let frac = pos - lo as f64;
    Some(values[lo] + (values[hi] - values[lo]) * frac)
}

fn to_bytes(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn from_bytes(bytes: &[u8]) -> Option<Vec<f64>> {
    if !bytes.len().is_multiple_of(8) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect(),
    )
}

/// `median(x)`: the middle value (the mean of the two middle ones for an
/// even count).
#[derive(Default)]
pub struct Median(Vec<f64>);

#[eddy_udf::aggregate]
impl Aggregate for Median {
    type Input<'a> = f64;
    type Output = f64;

    fn update(&mut self, x: f64) {
        self.0.push(x);
    }

    fn merge(&mut self, other: Self) {
        self.0.extend(other.0);
    }

    fn retract(&mut self, x: f64) -> bool {
        match self.0.iter().position(|v| v.to_bits() == x.to_bits()) {
            Some(i) => {
                self.0.swap_remove(i);
                true
            }
            None => false,
        }
    }

    fn finish(&self) -> Option<f64> {
        percentile_cont(&mut self.0.clone(), 0.5)
    }

    fn to_bytes(&self) -> Vec<u8> {
        to_bytes(&self.0)
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        from_bytes(bytes).map(Median)
    }
}

/// `p90(x)`: the 90th percentile.
#[derive(Default)]
pub struct P90(Vec<f64>);

#[eddy_udf::aggregate(name = "p90")]
impl Aggregate for P90 {
    type Input<'a> = f64;
    type Output = f64;

    fn update(&mut self, x: f64) {
        self.0.push(x);
    }

    fn merge(&mut self, other: Self) {
        self.0.extend(other.0);
    }

    fn finish(&self) -> Option<f64> {
        percentile_cont(&mut self.0.clone(), 0.9)
    }

    fn to_bytes(&self) -> Vec<u8> {
        to_bytes(&self.0)
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        from_bytes(bytes).map(P90)
    }
}

/// `percentile(x, q)`: the q-th percentile (q in [0, 1], taken from the
/// first row; a q outside [0, 1] gives NULL).
#[derive(Default)]
pub struct Percentile {
    q: Option<f64>,
    values: Vec<f64>,
}

#[eddy_udf::aggregate]
impl Aggregate for Percentile {
    type Input<'a> = (f64, f64);
    type Output = f64;

    fn update(&mut self, (x, q): (f64, f64)) {
        self.q.get_or_insert(q);
        self.values.push(x);
    }

    fn merge(&mut self, other: Self) {
        if self.q.is_none() {
            self.q = other.q;
        }
        self.values.extend(other.values);
    }

    fn finish(&self) -> Option<f64> {
        percentile_cont(&mut self.values.clone(), self.q?)
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.q.unwrap_or(f64::NAN).to_le_bytes().to_vec();
        out.extend(to_bytes(&self.values));
        out
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (q, rest) = bytes.split_at_checked(8)?;
        let q = f64::from_le_bytes(q.try_into().ok()?);
        Some(Percentile {
            q: (!q.is_nan()).then_some(q),
            values: from_bytes(rest)?,
        })
    }
}

/// `weighted_avg(x, w)`: Σ x·w / Σ w over rows with both values; NULL when
/// the weights sum to 0.
#[derive(Default)]
pub struct WeightedAvg {
    sum: f64,
    weights: f64,
}

#[eddy_udf::aggregate]
impl Aggregate for WeightedAvg {
    type Input<'a> = (f64, f64);
    type Output = f64;

    fn update(&mut self, (x, w): (f64, f64)) {
        self.sum += x * w;
        self.weights += w;
    }

    fn merge(&mut self, other: Self) {
        self.sum += other.sum;
        self.weights += other.weights;
    }

    fn retract(&mut self, (x, w): (f64, f64)) -> bool {
        self.sum -= x * w;
        self.weights -= w;
        true
    }

    fn finish(&self) -> Option<f64> {
        (self.weights != 0.0).then(|| self.sum / self.weights)
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.sum.to_le_bytes().to_vec();
        out.extend(self.weights.to_le_bytes());
        out
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let f =
            |r: std::ops::Range<usize>| Some(f64::from_le_bytes(bytes.get(r)?.try_into().ok()?));
        (bytes.len() == 16).then_some(())?;
        Some(WeightedAvg {
            sum: f(0..8)?,
            weights: f(8..16)?,
        })
    }
}

/// `ema(x, alpha)`: the exponential moving average of a group's values in
/// the order they arrive, E = alpha·x + (1 − alpha)·E, starting at the first
/// value (alpha taken from the first row). Stateful across rows: the state
/// carries the average so far, the count, and the first value, so two
/// partial states of consecutive rows merge exactly (the earlier one first).
#[derive(Default)]
pub struct Ema {
    alpha: f64,
    value: f64,
    first: f64,
    n: u64,
}

impl Ema {
    /// (1 − alpha)^k.
    fn decay(&self, k: u64) -> f64 {
        (1.0 - self.alpha).powi(k.min(i32::MAX as u64) as i32)
    }
}

#[eddy_udf::aggregate]
impl Aggregate for Ema {
    type Input<'a> = (f64, f64);
    type Output = f64;

    fn update(&mut self, (x, alpha): (f64, f64)) {
        if self.n == 0 {
            self.alpha = alpha;
            self.value = x;
            self.first = x;
        } else {
            self.value = self.alpha * x + (1.0 - self.alpha) * self.value;
        }
        self.n += 1;
    }

    /// `other` holds the rows that came after this state's.
    fn merge(&mut self, other: Self) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = other;
            return;
        }
        // other started at its first value instead of at this average
        let d = other.decay(other.n);
        self.value = other.value - d * other.first + d * self.value;
        self.n += other.n;
    }

    fn finish(&self) -> Option<f64> {
        (self.n > 0).then_some(self.value)
    }

    fn to_bytes(&self) -> Vec<u8> {
        [self.alpha, self.value, self.first, self.n as f64]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect()
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let v = from_bytes(bytes)?;
        let [alpha, value, first, n] = v.as_slice() else {
            return None;
        };
        Some(Ema {
            alpha: *alpha,
            value: *value,
            first: *first,
            n: *n as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_at_the_edges() {
        assert_eq!(percentile_cont(&mut [], 0.5), None);
        assert_eq!(percentile_cont(&mut [7.0], 0.9), Some(7.0));
        assert_eq!(percentile_cont(&mut [1.0, 4.0], 0.5), Some(2.5));
        assert_eq!(percentile_cont(&mut [3.0, 1.0, 2.0], 0.5), Some(2.0));
        assert_eq!(percentile_cont(&mut [5.0, 5.0, 5.0, 9.0], 0.5), Some(5.0));
        let p90 = percentile_cont(
            &mut [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0],
            0.9,
        );
        assert!((p90.unwrap_or(0.0) - 9.1).abs() < 1e-12);
        assert_eq!(percentile_cont(&mut [1.0], 1.5), None);
    }

    #[test]
    fn ema_merges_consecutive_parts_exactly() {
        let xs = [3.0, 8.0, 1.0, 4.0, 9.0, 2.0];
        let mut whole = Ema::default();
        xs.iter().for_each(|&x| whole.update((x, 0.3)));
        for cut in 1..xs.len() {
            let (mut a, mut b) = (Ema::default(), Ema::default());
            xs[..cut].iter().for_each(|&x| a.update((x, 0.3)));
            xs[cut..].iter().for_each(|&x| b.update((x, 0.3)));
            a.merge(Ema::from_bytes(&b.to_bytes()).unwrap_or_default());
            let (w, m) = (whole.finish().unwrap_or(0.0), a.finish().unwrap_or(0.0));
            assert!((w - m).abs() < 1e-12, "cut {cut}: {w} vs {m}");
        }
    }

    #[test]
    fn states_round_trip_and_merge() {
        let mut a = Median::default();
        a.update(1.0);
        a.update(3.0);
        let mut b = Median::from_bytes(&a.to_bytes()).unwrap_or_default();
        b.merge(Median(vec![10.0, 20.0]));
        assert_eq!(b.finish(), Some(6.5));
        let mut w = WeightedAvg::default();
        w.update((10.0, 1.0));
        w.update((20.0, 3.0));
        assert_eq!(
            WeightedAvg::from_bytes(&w.to_bytes()).and_then(|w| w.finish()),
            Some(17.5)
        );
    }
}
