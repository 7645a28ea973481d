//! Hopping (sliding) window aggregation with panes: windows of `size` start
//! every `slide` (aligned to the epoch). Each row is aggregated once, into
//! the pane of `gcd(size, slide)` containing it; when the watermark reaches a
//! window's end, the window merges its panes' partial states (the
//! accumulators' `state` / `merge_batch`) and is emitted. A pane is dropped
//! once the last window covering it has been emitted. Windows close when the
//! watermark minus the allowed lateness reaches their end. This is the EMIT
//! FINAL strategy; EMIT CHANGES keeps a state per window (`tumbling_aggregate`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, TimestampMillisecondArray};
use arrow::record_batch::RecordBatch;

use crate::error::{ExecError, ExecResult};
use crate::exec::aggregate::{
    AggregateSpec, Frozen, GroupedState, NO_WINDOW, Rejects, split_by_window, state_batch,
    state_value, time_column, window_prefix,
};
use crate::exec::metrics::QueryMetrics;
use crate::exec::operator::{Collector, Message, Operator, OperatorState};

/// One pane: rows still arriving (`live`) and parts already frozen for merging.
#[derive(Default)]
struct Pane {
    live: Option<GroupedState>,
    frozen: Vec<Frozen>,
}

impl Pane {
    /// Freezes the live part so the pane can be merged (repeatedly).
    fn freeze(&mut self) -> ExecResult<()> {
        if let Some(live) = self.live.take() {
            self.frozen.push(live.freeze()?);
        }
        Ok(())
    }

    fn size(&self) -> usize {
        self.live.as_ref().map_or(0, GroupedState::size)
            + self.frozen.iter().map(Frozen::size).sum::<usize>()
    }
}

/// The hopping window aggregate operator.
pub(crate) struct HoppingAggregateOp {
    spec: AggregateSpec,
    time_column: usize,
    size_ms: i64,
    slide_ms: i64,
    pane_ms: i64,
    panes: BTreeMap<i64, Pane>,
    /// The next window start to consider emitting.
    next_start: Option<i64>,
    rejects: Rejects,
    metrics: Arc<QueryMetrics>,
    pane_of_row: Vec<i64>,
}

impl HoppingAggregateOp {
    pub fn new(
        spec: AggregateSpec,
        time_column: usize,
        size_ms: i64,
        slide_ms: i64,
        pane_ms: i64,
        lateness: crate::plan::logical::Lateness,
        metrics: Arc<QueryMetrics>,
    ) -> Self {
        Self {
            spec,
            time_column,
            size_ms,
            slide_ms,
            pane_ms,
            panes: BTreeMap::new(),
            next_start: None,
            rejects: Rejects::new(lateness, metrics.clone()),
            metrics,
            pane_of_row: Vec::new(),
        }
    }

    /// The first window start whose window covers time `t` (or, for a pane
    /// start, the pane).
    fn first_window_covering(&self, t: i64) -> i64 {
        // i128: `t` may be the i64::MIN "no watermark yet" sentinel
        let (size, slide) = (i128::from(self.size_ms), i128::from(self.slide_ms));
        let s = (i128::from(t) - size).div_euclid(slide) * slide + slide;
        s.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    /// Fills `pane_of_row`; returns the pane shared by every row, if one is.
    fn assign(&mut self, ts: &TimestampMillisecondArray) -> Option<i64> {
        let (size, slide, pane) = (self.size_ms, self.slide_ms, self.pane_ms);
        let (wm, closed) = (self.rejects.watermark(), self.rejects.closed_until());
        let mut panes = std::mem::take(&mut self.pane_of_row);
        panes.clear();
        let mut uniform: Option<Option<i64>> = None;
        for (i, &t) in ts.values().iter().enumerate() {
            let p = if ts.is_null(i) {
                self.rejects.null_time(i);
                NO_WINDOW
            } else {
                let last_start = t - t.rem_euclid(slide);
                let last_end = last_start.saturating_add(size);
                if t >= last_end {
                    NO_WINDOW // in a gap between windows (slide > size): no window covers it
                } else if last_end <= closed {
                    self.rejects.late(i);
                    NO_WINDOW
                } else {
                    // late: the watermark passed the end of its first window
                    if self.first_window_covering(t).saturating_add(size) <= wm {
                        self.rejects.accepted();
                    }
                    t - t.rem_euclid(pane)
                }
            };
            uniform = match uniform {
                None => Some(Some(p)),
                Some(Some(u)) if u == p => Some(Some(u)),
                _ => Some(None),
            };
            panes.push(p);
        }
        self.pane_of_row = panes;
        uniform.flatten().filter(|&p| p != NO_WINDOW)
    }

    fn update_pane(
        &mut self,
        pane: i64,
        rows: &crate::exec::aggregate::Evaluated,
    ) -> ExecResult<()> {
        // windows ending at or before the watermark are decided: start from the first open one
        let open = self.first_window_covering(self.rejects.closed_until());
        let first = self.first_window_covering(pane).max(open);
        self.next_start = Some(self.next_start.map_or(first, |n| n.min(first)));
        let entry = self.panes.entry(pane).or_default();
        if entry.live.is_none() {
            entry.live = Some(self.spec.new_state()?);
        }
        match entry.live.as_mut() {
            Some(live) => live.update(rows),
            None => Err(ExecError::Internal("pane state vanished".into())),
        }
    }

    /// Emits, in order, every window ending at or before `until`.
    fn emit_until(&mut self, until: i64, out: &mut Collector) -> ExecResult<()> {
        while let Some(start) = self.next_start {
            let end = start.saturating_add(self.size_ms);
            if end > until {
                break;
            }
            let mut window: Option<GroupedState> = None;
            for (_, pane) in self.panes.range_mut(start..end) {
                pane.freeze()?;
                let state = match &mut window {
                    Some(s) => s,
                    None => window.insert(self.spec.new_state()?),
                };
                for part in &pane.frozen {
                    state.merge(part)?;
                }
            }
            if let Some(state) = window.filter(|s| s.len() > 0) {
                let n = state.len();
                out.push(Message::Batch(
                    state.finish(window_prefix(start, end, n), &self.spec.schema)?,
                ));
            }
            // later windows start at start + slide: earlier panes are done
            let keep = self.panes.split_off(&(start + self.slide_ms));
            self.panes = keep;
            self.next_start = self
                .panes
                .keys()
                .next()
                .map(|&p| self.first_window_covering(p).max(start + self.slide_ms));
        }
        self.report_state();
        Ok(())
    }

    fn report_state(&self) {
        let bytes: usize = self.panes.values().map(Pane::size).sum();
        self.metrics
            .state_bytes
            .store(bytes as u64, Ordering::Relaxed);
        self.metrics
            .open_windows
            .store(self.panes.len() as u64, Ordering::Relaxed);
    }
}

impl Operator for HoppingAggregateOp {
    fn name(&self) -> &'static str {
        "hopping_aggregate"
    }

    /// Parts: `clock` (see [`Rejects::snapshot`]), `next_start` (one row,
    /// NULL when none), then per pane in time order a `pane` row (its start)
    /// followed by its `frozen` parts and its `live` part, each laid out as
    /// [`GroupedState::snapshot`]; parts keep their order, so windows merge
    /// them in the same order (and float sums round the same way).
    fn snapshot(&mut self) -> ExecResult<OperatorState> {
        let mut out = OperatorState::default();
        out.push("clock", self.rejects.snapshot()?);
        let next = Arc::new(Int64Array::from(vec![self.next_start])) as ArrayRef;
        out.push(
            "next_start",
            state_batch(vec![("next_start".into(), next)], 1)?,
        );
        for (&start, pane) in self.panes.iter_mut() {
            let at = Arc::new(Int64Array::from(vec![start])) as ArrayRef;
            out.push("pane", state_batch(vec![("pane".into(), at)], 1)?);
            for part in &pane.frozen {
                out.push("frozen", part.to_batch(Vec::new())?);
            }
            if let Some(live) = &mut pane.live {
                out.push("live", live.snapshot(Vec::new())?);
            }
        }
        Ok(out)
    }

    fn restore(&mut self, state: OperatorState) -> ExecResult<()> {
        let mut pane: Option<i64> = None;
        for (name, part) in &state.parts {
            match name.as_str() {
                "clock" => self.rejects.restore(part)?,
                "next_start" => {
                    self.next_start = part
                        .column(0)
                        .as_primitive_opt::<arrow::datatypes::Int64Type>()
                        .filter(|c| c.is_valid(0))
                        .map(|c| c.value(0));
                }
                "pane" => {
                    let start = state_value(part, "pane")?;
                    self.panes.insert(start, Pane::default());
                    pane = Some(start);
                }
                "frozen" | "live" => {
                    let p = pane
                        .and_then(|s| self.panes.get_mut(&s))
                        .ok_or_else(|| ExecError::Internal("a pane part before its pane".into()))?;
                    if name == "frozen" {
                        p.frozen.push(Frozen::from_batch(part, 0));
                    } else {
                        let mut live = self.spec.new_state()?;
                        live.restore(part, 0)?;
                        p.live = Some(live);
                    }
                }
                other => {
                    return Err(ExecError::Internal(format!(
                        "a hopping window state has an unknown part '{other}'"
                    )));
                }
            }
        }
        self.report_state();
        Ok(())
    }

    fn retained_event_time(&self) -> Option<i64> {
        // a row lives in its pane until the last window over it is emitted
        self.panes.keys().next().copied()
    }

    fn process_batch(&mut self, batch: RecordBatch, out: &mut Collector) -> ExecResult<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let ts = time_column(&batch, self.time_column)?;
        let uniform = self.assign(&ts);
        let rows = self.spec.evaluate(&batch)?;
        if let Some(pane) = uniform {
            self.update_pane(pane, &rows)?;
        } else {
            for (pane, part) in split_by_window(&self.pane_of_row, &rows)? {
                self.update_pane(pane, &part)?;
            }
        }
        self.rejects.finish(&batch, &ts, out)?;
        self.report_state();
        Ok(())
    }

    fn handle_watermark(&mut self, watermark: i64, out: &mut Collector) -> ExecResult<()> {
        if let Some(closed) = self.rejects.advance(watermark) {
            self.emit_until(closed, out)?;
        }
        out.push(Message::Watermark(watermark));
        Ok(())
    }

    fn on_close(&mut self, out: &mut Collector) -> ExecResult<()> {
        self.emit_until(i64::MAX, out)
    }
}
