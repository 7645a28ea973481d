//! Windows aligned to the epoch, each with its own group table and
//! accumulators. `TUMBLE(stream, time, size)`: a row goes to the one window
//! `[start, start + size)` containing its event time. The same assigner
//! ([`AlignedWindows`]) runs hopping windows under EMIT CHANGES (a row goes
//! to each of the windows of `size` starting every `slide` that cover it, so
//! every window can report its current value; see `hop.rs`).
//!
//! A window closes once the watermark minus the allowed lateness reaches its
//! end: EMIT FINAL emits it then, EMIT CHANGES has reported it batch by batch.
//! Its state is released either way. Rows for a closed window are too late:
//! counted, and dropped or sent to the dead-letter sink.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array, TimestampMillisecondArray, UInt32Array};

use crate::error::{ExecError, ExecResult};
use crate::exec::aggregate::{AggregateSpec, Evaluated, GroupedState, Rejects, state_value};
use crate::exec::metrics::QueryMetrics;
use crate::exec::operator::{Collector, Message, OperatorState};
use crate::exec::window::{
    NO_WINDOW, Window, WindowAssigner, WindowKind, WindowSyntax, split_by_window, window_prefix,
};
use crate::plan::explain::Params;
use crate::plan::expr::ScalarFunc;
use crate::plan::logical::EmitMode;
use crate::types::format_interval_ms;

/// `TUMBLE(stream, time, size)` / `WINDOW TUMBLING(size)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tumble {
    /// Window size in ms.
    pub size_ms: i64,
}

impl Tumble {
    pub(crate) const SYNTAX: WindowSyntax = WindowSyntax {
        function: "TUMBLE",
        function_args: &["size"],
        function_usage: "write TUMBLE(stream, time_column, INTERVAL '10' SECOND)",
        clause: "TUMBLING",
        clause_args: &[("size", 0)],
        clause_usage: "write WINDOW TUMBLING(INTERVAL '10' SECOND)",
        make: |a| Window::Tumble(Tumble { size_ms: a[0] }),
    };
}

impl WindowKind for Tumble {
    fn explain_name(&self) -> &'static str {
        "TumblingWindowAggregate"
    }

    fn explain_params(&self, _emit: EmitMode) -> Params {
        vec![("size".into(), format_interval_ms(self.size_ms))]
    }

    fn row_bounds(&self) -> Option<(ScalarFunc, ScalarFunc)> {
        Some((
            ScalarFunc::TumbleStart(self.size_ms),
            ScalarFunc::TumbleEnd(self.size_ms),
        ))
    }

    fn assigner(
        &self,
        spec: AggregateSpec,
        emit: EmitMode,
        metrics: &Arc<QueryMetrics>,
    ) -> ExecResult<Box<dyn WindowAssigner>> {
        let geometry = Aligned {
            size_ms: self.size_ms,
            slide_ms: self.size_ms,
        };
        Ok(Box::new(AlignedWindows::new(spec, geometry, emit, metrics)))
    }
}

/// Window geometry: `size`, a new window every `slide` (= size when tumbling).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Aligned {
    pub size_ms: i64,
    pub slide_ms: i64,
}

/// Aligned windows, each with its own state.
pub(crate) struct AlignedWindows {
    spec: AggregateSpec,
    geometry: Aligned,
    emit: EmitMode,
    /// Open windows by start.
    windows: BTreeMap<i64, GroupedState>,
    starts: Vec<i64>,
}

impl AlignedWindows {
    pub(crate) fn new(
        spec: AggregateSpec,
        geometry: Aligned,
        emit: EmitMode,
        _metrics: &Arc<QueryMetrics>,
    ) -> Self {
        Self {
            spec,
            geometry,
            emit,
            windows: BTreeMap::new(),
            starts: Vec::new(),
        }
    }

    /// Fills `self.starts` with each row's window start (or NO_WINDOW) and
    /// returns the single start shared by all rows, if there is one.
    /// Tumbling windows only.
    fn assign(&mut self, ts: &TimestampMillisecondArray, clock: &mut Rejects) -> Option<i64> {
        let size = self.geometry.size_ms;
        let (wm, closed) = (clock.watermark(), clock.closed_until());
        let mut starts = std::mem::take(&mut self.starts);
        starts.clear();
        let mut cur = i64::MIN;
        let mut uniform = true;
        let mut first: Option<i64> = None;
        for (i, &t) in ts.values().iter().enumerate() {
            if ts.is_null(i) {
                clock.null_time(i);
                starts.push(NO_WINDOW);
                uniform = false;
                continue;
            }
            // most rows fall in the same window as the previous one: skip the division
            if !(t >= cur && t < cur.saturating_add(size)) {
                cur = t - t.rem_euclid(size);
            }
            let end = cur.saturating_add(size);
            let s = if end <= closed {
                clock.late(i);
                uniform = false;
                NO_WINDOW
            } else {
                if end <= wm {
                    clock.accepted();
                }
                cur
            };
            match first {
                None => first = Some(s),
                Some(f) if f != s => uniform = false,
                _ => {}
            }
            starts.push(s);
        }
        self.starts = starts;
        if uniform { first } else { None }
    }

    /// Hopping windows: (window start, row) for every open window covering
    /// each row.
    fn assign_hopping(
        &mut self,
        ts: &TimestampMillisecondArray,
        clock: &mut Rejects,
    ) -> (Vec<i64>, Vec<u32>) {
        let Aligned { size_ms, slide_ms } = self.geometry;
        let (wm, closed) = (clock.watermark(), clock.closed_until());
        let (mut starts, mut rows) = (Vec::new(), Vec::new());
        for (i, &t) in ts.values().iter().enumerate() {
            if ts.is_null(i) {
                clock.null_time(i);
                continue;
            }
            let last = t - t.rem_euclid(slide_ms);
            let (mut any, mut behind) = (false, false);
            let mut s = last;
            while t < s.saturating_add(size_ms) {
                let end = s.saturating_add(size_ms);
                // late: the watermark passed the end of one of its windows
                behind |= end <= wm;
                if end > closed {
                    any = true;
                    starts.push(s);
                    rows.push(i as u32);
                }
                s -= slide_ms;
            }
            // a row in a gap between windows (slide > size) belongs to none: not late
            if !any && t < last.saturating_add(size_ms) {
                clock.late(i);
            } else if behind {
                clock.accepted();
            }
        }
        (starts, rows)
    }

    fn state_for(&mut self, start: i64) -> ExecResult<&mut GroupedState> {
        if !self.windows.contains_key(&start) {
            let state = match self.emit {
                EmitMode::Final => self.spec.new_state()?,
                EmitMode::Changes => self.spec.new_tracked_state()?,
            };
            self.windows.insert(start, state);
        }
        self.windows
            .get_mut(&start)
            .ok_or_else(|| ExecError::Internal("window state vanished".into()))
    }

    fn emit(&mut self, start: i64, state: GroupedState, out: &mut Collector) -> ExecResult<()> {
        let n = state.len();
        if n == 0 || self.emit == EmitMode::Changes {
            return Ok(());
        }
        let prefix = window_prefix(start, start + self.geometry.size_ms, n);
        out.push(Message::Batch(state.finish(prefix, &self.spec.schema)?));
        Ok(())
    }
}

impl WindowAssigner for AlignedWindows {
    fn name(&self) -> &'static str {
        if self.geometry.slide_ms == self.geometry.size_ms {
            "tumbling_aggregate"
        } else {
            "hopping_aggregate"
        }
    }

    fn spec(&self) -> &AggregateSpec {
        &self.spec
    }

    fn add(
        &mut self,
        ts: &TimestampMillisecondArray,
        rows: Evaluated,
        clock: &mut Rejects,
    ) -> ExecResult<()> {
        if self.geometry.slide_ms != self.geometry.size_ms {
            let (starts, idx) = self.assign_hopping(ts, clock);
            let rows = rows.take(&UInt32Array::from(idx))?;
            for (start, part) in split_by_window(&starts, &rows)? {
                self.state_for(start)?.update(&part)?;
            }
        } else if let Some(start) = self.assign(ts, clock) {
            self.state_for(start)?.update(&rows)?;
        } else {
            // rows span several windows (or some are dropped): split by window
            let starts = std::mem::take(&mut self.starts);
            for (start, part) in split_by_window(&starts, &rows)? {
                self.state_for(start)?.update(&part)?;
            }
            self.starts = starts;
        }
        Ok(())
    }

    /// Under EMIT CHANGES, the changelog of every window a batch changed.
    fn changes(&mut self, out: &mut Collector) -> ExecResult<()> {
        if self.emit != EmitMode::Changes {
            return Ok(());
        }
        let size = self.geometry.size_ms;
        for (&start, state) in self.windows.iter_mut() {
            let prefix = |n| window_prefix(start, start + size, n);
            if let Some(b) = state.take_changes(prefix, &self.spec.schema)? {
                out.push(Message::Batch(b));
            }
        }
        Ok(())
    }

    fn close_until(&mut self, until: i64, out: &mut Collector) -> ExecResult<()> {
        while let Some(entry) = self.windows.first_entry() {
            if entry.key().saturating_add(self.geometry.size_ms) > until {
                break;
            }
            let (start, state) = entry.remove_entry();
            self.emit(start, state, out)?;
        }
        Ok(())
    }

    fn held(&self) -> (usize, usize) {
        let bytes: usize = self.windows.values().map(GroupedState::size).sum();
        (bytes, self.windows.len())
    }

    /// Parts: one `window` per open window with groups: `window_start`,
    /// then [`GroupedState::snapshot`].
    fn snapshot(&mut self, out: &mut OperatorState) -> ExecResult<()> {
        for (&start, state) in self.windows.iter_mut() {
            let n = state.len();
            if n == 0 {
                continue;
            }
            let starts = Arc::new(Int64Array::from(vec![start; n])) as ArrayRef;
            out.push(
                "window",
                state.snapshot(vec![("window_start".into(), starts)])?,
            );
        }
        Ok(())
    }

    fn restore(&mut self, state: &OperatorState) -> ExecResult<()> {
        for part in state.parts("window") {
            let start = state_value(part, "window_start")?;
            self.state_for(start)?.restore(part, 1)?;
        }
        Ok(())
    }

    fn retained_event_time(&self) -> Option<i64> {
        // rows older than the oldest open window's start are in emitted windows
        self.windows.keys().next().copied()
    }

    /// `window` parts hold one row per (window, key); `clock` is the same
    /// on every worker.
    fn rescalable(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::pipeline::Pipeline;
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use arrow::record_batch::RecordBatch;
    use std::sync::atomic::Ordering;

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
        let out = p.push(Message::Batch(batch(0..100_000, 500))).unwrap();
        assert!(!out.iter().any(|m| matches!(m, Message::Batch(_))));
        let held = metrics.state_bytes.load(Ordering::Relaxed);
        assert!(held > 1_000_000, "{held} bytes");
        assert_eq!(metrics.open_windows.load(Ordering::Relaxed), 1);
        // a row at 1000 moves the watermark to 1000: the first window is emitted and dropped
        let out = p.push(Message::Batch(batch(0..1, 1000))).unwrap();
        let rows: usize = out
            .iter()
            .map(|m| match m {
                Message::Batch(b) => b.num_rows(),
                _ => 0,
            })
            .sum();
        assert_eq!(rows, 100_000);
        assert_eq!(metrics.open_windows.load(Ordering::Relaxed), 1);
        let after = metrics.state_bytes.load(Ordering::Relaxed);
        assert!(
            after < held / 100,
            "{after} bytes still held after emitting"
        );
    }
}
