//! Idle-state expiry (`SET 'state.ttl'`) for the operators whose state has
//! no window to end it: an aggregate without a window drops a group, and a
//! ranking without a window a partition, once the watermark has gone the
//! time-to-live past the watermark at its last update.
//!
//! Time is event time as the watermark tells it, so a replay drops the same
//! state at the same point of the stream (when the operator reads its
//! source through one exchange: behind two, the watermark a row meets
//! depends on how the workers interleave). Sweeps run when the watermark
//! crosses a multiple of a sixteenth of the TTL: state is kept at least the
//! TTL and at most a sixteenth longer, and the cost of a sweep (a pass over
//! the state) is paid at most sixteen times per TTL of event time.
//! Expired state goes silently, as in Flink: its last result stays
//! downstream, and a later row of its key starts it over (`+I`).

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array};
use arrow::record_batch::RecordBatch;

use crate::error::ExecResult;
use crate::exec::grouped_state::{state_batch, state_value};

/// The name of the clock's part in an operator's state.
pub(crate) const CLOCK_PART: &str = "ttl_clock";

/// The clock of one operator's expiry.
#[derive(Debug, Clone)]
pub(crate) struct Expiry {
    ttl: i64,
    step: i64,
    watermark: i64,
    /// The first watermark this operator received: state stamped before it
    /// (`i64::MIN`) counts as updated then.
    first: Option<i64>,
    /// The next multiple of `step` whose crossing sweeps.
    next_sweep: i64,
}

impl Expiry {
    /// A clock for state kept `ttl` ms of event time after its last update.
    pub fn new(ttl: i64) -> Self {
        let ttl = ttl.max(1);
        Self {
            ttl,
            step: (ttl / 16).max(1),
            watermark: i64::MIN,
            first: None,
            next_sweep: i64::MIN,
        }
    }

    /// The stamp of an update now: the watermark (`i64::MIN` before the first).
    #[inline]
    pub fn now(&self) -> i64 {
        self.watermark
    }

    /// Takes a watermark; when a sweep is due, returns the point at or
    /// before which a stamp has expired.
    pub fn advance(&mut self, watermark: i64) -> Option<i64> {
        if watermark <= self.watermark {
            return None;
        }
        self.watermark = watermark;
        let first = *self.first.get_or_insert(watermark);
        if watermark < self.next_sweep {
            return None;
        }
        let boundary = watermark - watermark.rem_euclid(self.step);
        self.next_sweep = boundary.saturating_add(self.step);
        let cutoff = boundary.saturating_sub(self.ttl);
        // nothing stamped before the first watermark can have expired yet
        (cutoff >= first).then_some(cutoff)
    }

    /// The clock as a one-row state part: `watermark`, `first`
    /// (`i64::MIN`: none yet), `next_sweep`.
    ///
    /// # Errors
    /// An Arrow failure (a bug).
    pub fn snapshot(&self) -> ExecResult<RecordBatch> {
        let one = |v: i64| Arc::new(Int64Array::from(vec![v])) as ArrayRef;
        state_batch(
            vec![
                ("watermark".into(), one(self.watermark)),
                ("first".into(), one(self.first.unwrap_or(i64::MIN))),
                ("next_sweep".into(), one(self.next_sweep)),
            ],
            1,
        )
    }

    /// Loads a [`Expiry::snapshot`] (the same on every worker: after a
    /// rescale, any of theirs).
    ///
    /// # Errors
    /// A part of another shape.
    pub fn restore(&mut self, part: &RecordBatch) -> ExecResult<()> {
        self.watermark = state_value(part, "watermark")?;
        let first = state_value(part, "first")?;
        self.first = (first != i64::MIN).then_some(first);
        self.next_sweep = state_value(part, "next_sweep")?;
        Ok(())
    }

    /// Whether state stamped `stamp` has expired at `cutoff` (from
    /// [`Expiry::advance`]).
    #[inline]
    pub fn expired(&self, stamp: i64, cutoff: i64) -> bool {
        let stamp = if stamp == i64::MIN {
            self.first.unwrap_or(i64::MIN)
        } else {
            stamp
        };
        stamp <= cutoff
    }
}

#[cfg(test)]
mod tests {
    use super::Expiry;

    #[test]
    fn sweeps_once_per_sixteenth_and_expires_after_the_ttl() {
        let mut e = Expiry::new(1600);
        assert_eq!(e.now(), i64::MIN);
        // the first watermark: nothing can have expired
        assert_eq!(e.advance(10_000), None);
        let stamp = e.now();
        assert_eq!(stamp, 10_000);
        // no sweep before the next multiple of 100, nor while nothing is old enough
        assert_eq!(e.advance(10_050), None);
        assert_eq!(e.advance(10_120), None);
        // 1600 past the stamp: swept with the cutoff at the crossed multiple
        let cut = e.advance(11_620).unwrap();
        assert_eq!(cut, 10_000);
        assert!(e.expired(stamp, cut));
        assert!(!e.expired(10_001, cut));
        // once per step
        assert_eq!(e.advance(11_650), None);
        // a watermark that does not advance does nothing
        assert_eq!(e.advance(11_000), None);
        assert_eq!(e.advance(11_700), Some(10_100));
    }

    #[test]
    fn state_stamped_before_the_first_watermark_counts_from_it() {
        let mut e = Expiry::new(1600);
        let early = e.now();
        assert_eq!(e.advance(5_000), None);
        assert_eq!(e.advance(6_500), None);
        let cut = e.advance(6_600).unwrap();
        assert!(e.expired(early, cut));
        assert!(!e.expired(5_001, cut));
    }
}
