//! A window operator's event-time clock and the rows it cannot use (too
//! late for every window, or without an event time).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, TimestampMillisecondArray, UInt32Array};
use arrow::datatypes::TimestampMillisecondType;
use arrow::record_batch::RecordBatch;

use crate::catalog::LatePolicy;
use crate::error::{ExecError, ExecResult};
use crate::exec::grouped_state::{state_batch, state_value};
use crate::exec::metrics::QueryMetrics;
use crate::exec::operator::{Collector, DeadLetter, Message};
use crate::plan::logical::Lateness;

/// The event-time column of a window operator's input.
///
/// # Errors
/// A column that is not a TIMESTAMP (a planner bug).
pub(crate) fn time_column(
    batch: &RecordBatch,
    index: usize,
) -> ExecResult<TimestampMillisecondArray> {
    batch
        .column(index)
        .as_primitive_opt::<TimestampMillisecondType>()
        .cloned()
        .ok_or_else(|| ExecError::Internal("window time column is not a TIMESTAMP".into()))
}

/// A window operator's event-time clock and late rows: it tracks the
/// watermark and the point before which windows are closed (watermark minus
/// the allowed lateness), and tallies the rows of a batch the operator cannot
/// use, handing them on: counted, and under `late_policy = 'dead_letter'`
/// sent on as a [`DeadLetter`] message.
pub(crate) struct Rejects {
    lateness: Lateness,
    metrics: Arc<QueryMetrics>,
    /// The watermark as received.
    watermark: i64,
    /// Windows ending at or before this are closed: watermark − lateness.
    closed_until: i64,
    late: Vec<u32>,
    null_time: Vec<u32>,
    accepted: u64,
}

impl Rejects {
    pub fn new(lateness: Lateness, metrics: Arc<QueryMetrics>) -> Self {
        Self {
            lateness,
            metrics,
            watermark: i64::MIN,
            closed_until: i64::MIN,
            late: Vec::new(),
            null_time: Vec::new(),
            accepted: 0,
        }
    }

    /// Takes a new watermark; returns the new close point (watermark minus
    /// the allowed lateness) when it advanced, `None` otherwise.
    pub fn advance(&mut self, watermark: i64) -> Option<i64> {
        if watermark <= self.watermark {
            return None;
        }
        self.watermark = watermark;
        self.closed_until = watermark.saturating_sub(self.lateness.allowed_ms);
        Some(self.closed_until)
    }

    /// The event clock as a one-row state part: `watermark`, `closed_until`.
    ///
    /// # Errors
    /// An Arrow failure (a bug).
    pub fn snapshot(&self) -> ExecResult<RecordBatch> {
        let one = |v: i64| Arc::new(Int64Array::from(vec![v])) as ArrayRef;
        state_batch(
            vec![
                ("watermark".into(), one(self.watermark)),
                ("closed_until".into(), one(self.closed_until)),
            ],
            1,
        )
    }

    /// Loads a [`Rejects::snapshot`].
    ///
    /// # Errors
    /// A part of another shape.
    pub fn restore(&mut self, clock: &RecordBatch) -> ExecResult<()> {
        self.watermark = state_value(clock, "watermark")?;
        self.closed_until = state_value(clock, "closed_until")?;
        Ok(())
    }

    /// The watermark as received.
    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    /// Windows ending at or before this are closed.
    pub fn closed_until(&self) -> i64 {
        self.closed_until
    }

    /// Row `i` is too late for every window it belongs to.
    #[inline]
    pub fn late(&mut self, i: usize) {
        self.late.push(i as u32);
    }

    /// Row `i` has no event time.
    #[inline]
    pub fn null_time(&mut self, i: usize) {
        self.null_time.push(i as u32);
    }

    /// A row behind the watermark was still in time (within the lateness).
    #[inline]
    pub fn accepted(&mut self) {
        self.accepted += 1;
    }

    /// Counts this batch's rejects and, under the dead-letter policy, pushes
    /// them (with their reason) to `out`; starts over for the next batch.
    ///
    /// # Errors
    /// An Arrow failure while gathering the rows.
    pub fn finish(
        &mut self,
        batch: &RecordBatch,
        ts: &TimestampMillisecondArray,
        out: &mut Collector,
    ) -> ExecResult<()> {
        let watermark = self.watermark;
        QueryMetrics::add(&self.metrics.late_rows, self.late.len() as u64);
        QueryMetrics::add(&self.metrics.null_time_rows, self.null_time.len() as u64);
        QueryMetrics::add(&self.metrics.late_accepted, self.accepted);
        self.accepted = 0;
        let late = std::mem::take(&mut self.late);
        let null_time = std::mem::take(&mut self.null_time);
        if self.lateness.policy != LatePolicy::DeadLetter {
            self.late = late;
            self.late.clear();
            self.null_time = null_time;
            self.null_time.clear();
            return Ok(());
        }
        let lateness = crate::types::format_interval_ms(self.lateness.allowed_ms);
        for (idx, reason) in [
            (
                late,
                format!(
                    "too late: every window of the row closed (the watermark passed its end by more than the allowed lateness, {lateness})"
                ),
            ),
            (null_time, "the event-time column is NULL".to_string()),
        ] {
            if idx.is_empty() {
                continue;
            }
            let event_times = idx
                .iter()
                .map(|&i| ts.is_valid(i as usize).then(|| ts.value(i as usize)))
                .collect();
            let indices = UInt32Array::from(idx);
            let rows = arrow::compute::take_record_batch(batch, &indices)
                .map_err(|e| ExecError::arrow("dead letters", e))?;
            QueryMetrics::add(&self.metrics.dead_letters, rows.num_rows() as u64);
            out.push(Message::DeadLetter(DeadLetter {
                rows,
                reason,
                event_times,
                watermark,
            }));
        }
        Ok(())
    }
}
