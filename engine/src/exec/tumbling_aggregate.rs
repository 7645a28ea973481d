//! Tumbling-window aggregation: rows go to the window `[start, start + size)`
//! (aligned to the epoch) containing their event time; each window holds its
//! own group table and accumulators, emitted and released once the
//! watermark reaches its end. Rows for an already-emitted window are dropped
//! and counted as late.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arrow::array::{Array, TimestampMillisecondArray};
use arrow::record_batch::RecordBatch;

use crate::error::{ExecError, ExecResult};
use crate::exec::aggregate::{
    AggregateSpec, GroupedState, NO_WINDOW, split_by_window, time_column, window_prefix,
};
use crate::exec::metrics::QueryMetrics;
use crate::exec::operator::{Message, Operator};

/// The tumbling window aggregate operator.
pub(crate) struct TumblingAggregateOp {
    spec: AggregateSpec,
    time_column: usize,
    size_ms: i64,
    /// Open windows by start.
    windows: BTreeMap<i64, GroupedState>,
    /// Windows ending at or before this have been emitted.
    watermark: i64,
    metrics: Arc<QueryMetrics>,
    starts: Vec<i64>,
}

impl TumblingAggregateOp {
    pub fn new(
        spec: AggregateSpec,
        time_column: usize,
        size_ms: i64,
        metrics: Arc<QueryMetrics>,
    ) -> Self {
        Self {
            spec,
            time_column,
            size_ms,
            windows: BTreeMap::new(),
            watermark: i64::MIN,
            metrics,
            starts: Vec::new(),
        }
    }

    fn window_start(&self, ts: i64) -> i64 {
        ts - ts.rem_euclid(self.size_ms)
    }

    /// Fills `self.starts` with each row's window start (or NO_WINDOW) and
    /// returns the single start shared by all rows, if there is one.
    fn assign(&mut self, ts: &TimestampMillisecondArray) -> Option<i64> {
        let size = self.size_ms;
        let wm = self.watermark;
        let mut starts = std::mem::take(&mut self.starts);
        starts.clear();
        let (mut late, mut null_time) = (0u64, 0u64);
        let mut cur = i64::MIN;
        let mut uniform = true;
        let mut first: Option<i64> = None;
        for (i, &t) in ts.values().iter().enumerate() {
            if ts.is_null(i) {
                null_time += 1;
                starts.push(NO_WINDOW);
                uniform = false;
                continue;
            }
            // most rows fall in the same window as the previous one: skip the division
            if !(t >= cur && t < cur.saturating_add(size)) {
                cur = self.window_start(t);
            }
            let s = if cur.saturating_add(size) <= wm {
                late += 1;
                uniform = false;
                NO_WINDOW
            } else {
                cur
            };
            match first {
                None => first = Some(s),
                Some(f) if f != s => uniform = false,
                _ => {}
            }
            starts.push(s);
        }
        QueryMetrics::add(&self.metrics.late_rows, late);
        QueryMetrics::add(&self.metrics.null_time_rows, null_time);
        self.starts = starts;
        if uniform { first } else { None }
    }

    fn state_for(&mut self, start: i64) -> ExecResult<&mut GroupedState> {
        if !self.windows.contains_key(&start) {
            self.windows.insert(start, self.spec.new_state()?);
        }
        self.windows
            .get_mut(&start)
            .ok_or_else(|| ExecError::Internal("window state vanished".into()))
    }

    fn emit(&mut self, start: i64, state: GroupedState, out: &mut Vec<Message>) -> ExecResult<()> {
        let n = state.len();
        if n == 0 {
            return Ok(());
        }
        let prefix = window_prefix(start, start + self.size_ms, n);
        out.push(Message::Batch(state.finish(prefix, &self.spec.schema)?));
        Ok(())
    }

    /// Emits every window ending at or before `until`, oldest first.
    fn emit_until(&mut self, until: i64, out: &mut Vec<Message>) -> ExecResult<()> {
        while let Some(entry) = self.windows.first_entry() {
            if entry.key().saturating_add(self.size_ms) > until {
                break;
            }
            let (start, state) = entry.remove_entry();
            self.emit(start, state, out)?;
        }
        self.report_state();
        Ok(())
    }

    /// Publishes the approximate bytes of state held.
    fn report_state(&self) {
        let bytes: usize = self.windows.values().map(GroupedState::size).sum();
        self.metrics
            .state_bytes
            .store(bytes as u64, Ordering::Relaxed);
        self.metrics
            .open_windows
            .store(self.windows.len() as u64, Ordering::Relaxed);
    }
}

impl Operator for TumblingAggregateOp {
    fn name(&self) -> &'static str {
        "tumbling_aggregate"
    }

    fn process_batch(&mut self, batch: RecordBatch, _out: &mut Vec<Message>) -> ExecResult<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let ts = time_column(&batch, self.time_column)?;
        let uniform = self.assign(&ts);
        let rows = self.spec.evaluate(&batch)?;
        if let Some(start) = uniform {
            self.state_for(start)?.update(&rows)?;
            self.report_state();
            return Ok(());
        }
        // rows span several windows (or some are dropped): split by window
        for (start, part) in split_by_window(&self.starts, &rows)? {
            self.state_for(start)?.update(&part)?;
        }
        self.report_state();
        Ok(())
    }

    fn handle_watermark(&mut self, watermark: i64, out: &mut Vec<Message>) -> ExecResult<()> {
        if watermark > self.watermark {
            self.watermark = watermark;
            self.emit_until(watermark, out)?;
        }
        out.push(Message::Watermark(watermark));
        Ok(())
    }

    fn on_close(&mut self, out: &mut Vec<Message>) -> ExecResult<()> {
        self.emit_until(i64::MAX, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::pipeline::Pipeline;
    use arrow::array::{Int64Array, TimestampMillisecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    fn batch(keys: std::ops::Range<i64>, ts: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("t", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        ]));
        let n = (keys.end - keys.start) as usize;
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from_iter_values(keys)),
                Arc::new(TimestampMillisecondArray::from(vec![ts; n])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn emitting_a_window_releases_its_state() {
        let script = crate::plan_script(
            "CREATE STREAM s (k BIGINT, t TIMESTAMP, WATERMARK FOR t AS t) WITH (connector = 'file', path = 'x');
             SELECT k, COUNT(*) AS n FROM TUMBLE(s, t, INTERVAL '1' SECOND) GROUP BY k, window_start, window_end",
        )
        .unwrap();
        let metrics = Arc::new(QueryMetrics::default());
        let mut p = Pipeline::build(&script.queries[0], &metrics).unwrap();
        // 100,000 keys in window [0, 1000): nothing emitted yet, state held
        assert!(
            p.push(Message::Batch(batch(0..100_000, 500)))
                .unwrap()
                .is_empty()
        );
        let held = metrics.state_bytes.load(Ordering::Relaxed);
        assert!(held > 1_000_000, "{held} bytes");
        assert_eq!(metrics.open_windows.load(Ordering::Relaxed), 1);
        // a row at 1000 moves the watermark to 1000: the first window is emitted and dropped
        let out = p.push(Message::Batch(batch(0..1, 1000))).unwrap();
        assert_eq!(
            out.iter().map(RecordBatch::num_rows).sum::<usize>(),
            100_000
        );
        assert_eq!(metrics.open_windows.load(Ordering::Relaxed), 1);
        let after = metrics.state_bytes.load(Ordering::Relaxed);
        assert!(
            after < held / 100,
            "{after} bytes still held after emitting"
        );
    }
}
