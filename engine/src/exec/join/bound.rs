//! The kinds of join and how long a join keeps its rows.

use arrow::array::{Array, BooleanArray};
use arrow::record_batch::RecordBatch;

use crate::error::{ExecError, ExecResult};

/// Which unmatched rows a join emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum JoinKind {
    /// Matches only.
    Inner,
    /// And left rows that never match.
    Left,
    /// And right rows that never match.
    Right,
    /// And rows of either side that never match.
    Full,
}

impl JoinKind {
    /// As written in SQL.
    pub fn name(self) -> &'static str {
        match self {
            JoinKind::Inner => "INNER",
            JoinKind::Left => "LEFT",
            JoinKind::Right => "RIGHT",
            JoinKind::Full => "FULL",
        }
    }

    pub(super) fn pads(self, side: usize) -> bool {
        matches!(
            (self, side),
            (JoinKind::Left | JoinKind::Full, 0) | (JoinKind::Right | JoinKind::Full, 1)
        )
    }
}

/// How long a join keeps its inputs' rows (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum JoinBound {
    /// Kept forever, or `ttl` ms of event time past the rows' time columns.
    Regular {
        /// (left time column, right time column, time-to-live ms).
        ttl: Option<(usize, usize, i64)>,
    },
    /// `right.t - left.t` within `[lower, upper]` ms.
    Interval {
        /// Left time column.
        left_time: usize,
        /// Right time column (of the right input).
        right_time: usize,
        /// Least `right.t - left.t`.
        lower: i64,
        /// Most `right.t - left.t`.
        upper: i64,
    },
    /// A row is done once the other input's watermark passes one of its
    /// own TIMESTAMP columns plus an offset (`b.t <= a.expires`: an
    /// auction is done once the bids' watermark passes its expiry);
    /// `None`: that side's rows are kept forever.
    Columns {
        /// Left event-time column.
        left_time: usize,
        /// Right event-time column.
        right_time: usize,
        /// (left column, ms added).
        left: Option<(usize, i64)>,
        /// (right column, ms added).
        right: Option<(usize, i64)>,
    },
    /// A lookup join: the right input is a bounded table, kept whole;
    /// left rows wait until it has been read, then look it up and go.
    Lookup,
    /// Both inputs are window results joined on their window ends.
    Window {
        /// Left `window_end` column.
        left_end: usize,
        /// Right `window_end` column.
        right_end: usize,
        /// Allowed lateness of the left input's windows (ms).
        left_lateness: i64,
        /// Allowed lateness of the right input's windows (ms).
        right_lateness: i64,
    },
}

/// `mask` and, per joined row, whether its left and right event times
/// (columns `l` and `r`) are at most `ttl` apart. A regular join under a
/// TTL keeps a row that long after its event time; a row of the other
/// input that comes later than that matches it in no order of arrival, and
/// this makes one that comes sooner (ahead of its watermark) match it in
/// none either: what the join emits does not depend on how the inputs
/// interleave.
pub(super) fn within(
    joined: &RecordBatch,
    l: usize,
    r: usize,
    ttl: i64,
    mask: &BooleanArray,
) -> ExecResult<BooleanArray> {
    let time = |c: usize| {
        joined
            .column(c)
            .as_any()
            .downcast_ref::<arrow::array::TimestampMillisecondArray>()
            .ok_or_else(|| ExecError::Internal("a join time column is not a TIMESTAMP".into()))
    };
    let (lt, rt) = (time(l)?, time(r)?);
    Ok((0..joined.num_rows())
        .map(|i| {
            Some(
                mask.value(i)
                    && lt.is_valid(i)
                    && rt.is_valid(i)
                    && lt.value(i).abs_diff(rt.value(i)) <= ttl.unsigned_abs(),
            )
        })
        .collect())
}
