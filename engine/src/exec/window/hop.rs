//! Hopping (sliding) window aggregation with panes: windows of `size` start
//! every `slide` (aligned to the epoch). Each row is aggregated once, into
//! the pane of `gcd(size, slide)` containing it; when the watermark reaches a
//! window's end, the window merges its panes' partial states (the
//! accumulators' `state` / `merge_batch`) and is emitted. A pane is dropped
//! once the last window covering it has been emitted. Windows close when the
//! watermark minus the allowed lateness reaches their end. This is the EMIT
//! FINAL strategy ([`Panes`]); under EMIT CHANGES every window must report
//! its current value after each batch, which a pane cannot do without a
//! merge, so HOP then runs on [`AlignedWindows`] with a state per window.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, TimestampMillisecondArray};

use crate::error::{ExecError, ExecResult};
use crate::exec::aggregate::{
    AggregateSpec, Evaluated, Frozen, GroupedState, Rejects, state_batch, state_value,
};
use crate::exec::metrics::QueryMetrics;
use crate::exec::operator::{Collector, Message, OperatorState};
use crate::exec::window::tumble::{Aligned, AlignedWindows};
use crate::exec::window::{
    NO_WINDOW, Window, WindowAssigner, WindowKind, WindowSyntax, split_by_window, window_prefix,
};
use crate::plan::explain::Params;
use crate::plan::logical::EmitMode;
use crate::types::format_interval_ms;

/// `HOP(stream, time, slide, size)` / `WINDOW SLIDING(size, advance)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Hop {
    /// Distance between window starts in ms.
    pub slide_ms: i64,
    /// Window size in ms.
    pub size_ms: i64,
}

impl Hop {
    pub(crate) const SYNTAX: WindowSyntax = WindowSyntax {
        function: "HOP",
        function_args: &["slide", "size"],
        function_usage: "write HOP(stream, time_column, INTERVAL '2' SECOND, INTERVAL '10' SECOND): the slide, then the size",
        clause: "SLIDING",
        clause_args: &[("size", 1), ("advance", 0)],
        clause_usage: "write WINDOW SLIDING(INTERVAL '10' SECOND, INTERVAL '2' SECOND): the size, then the advance",
        make: |a| {
            Window::Hop(Hop {
                slide_ms: a[0],
                size_ms: a[1],
            })
        },
    };

    /// The pane size: every window is a whole number of panes.
    pub(crate) fn pane_ms(&self) -> i64 {
        gcd(self.size_ms, self.slide_ms)
    }
}

/// Greatest common divisor (both positive).
fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl WindowKind for Hop {
    fn explain_name(&self) -> &'static str {
        "HoppingWindowAggregate"
    }

    fn check_limits(&self) -> Result<(), (String, String)> {
        use super::{MAX_PANES_PER_WINDOW, MAX_WINDOWS_PER_ROW};
        let ceil = |a: i64, b: i64| (a + b - 1) / b.max(1);
        let per_row = ceil(self.size_ms, self.slide_ms);
        if per_row > MAX_WINDOWS_PER_ROW {
            return Err((
                format!(
                    "a hopping window of {} every {} puts each row into {per_row} windows, more than the limit of {MAX_WINDOWS_PER_ROW}",
                    format_interval_ms(self.size_ms),
                    format_interval_ms(self.slide_ms)
                ),
                format!(
                    "make the slide at least 1/{MAX_WINDOWS_PER_ROW} of the size, e.g. {}",
                    format_interval_ms(ceil(self.size_ms, MAX_WINDOWS_PER_ROW))
                ),
            ));
        }
        let panes = self.size_ms / self.pane_ms().max(1);
        if panes > MAX_PANES_PER_WINDOW {
            return Err((
                format!(
                    "a hopping window of {} every {} is made of {panes} panes of {} (their greatest common divisor), more than the limit of {MAX_PANES_PER_WINDOW}",
                    format_interval_ms(self.size_ms),
                    format_interval_ms(self.slide_ms),
                    format_interval_ms(self.pane_ms())
                ),
                "choose a slide that divides the size (e.g. 10 SECOND every 2 SECOND)".to_string(),
            ));
        }
        Ok(())
    }

    fn explain_params(&self, emit: EmitMode) -> Params {
        let mut params = vec![
            ("size".to_string(), format_interval_ms(self.size_ms)),
            ("slide".to_string(), format_interval_ms(self.slide_ms)),
        ];
        // EMIT CHANGES keeps one state per window, so updates read directly
        if emit == EmitMode::Final {
            params.push(("pane".into(), format_interval_ms(self.pane_ms())));
        }
        params
    }

    fn assigner(
        &self,
        spec: AggregateSpec,
        emit: EmitMode,
        metrics: &Arc<QueryMetrics>,
    ) -> ExecResult<Box<dyn WindowAssigner>> {
        Ok(match emit {
            EmitMode::Final => Box::new(Panes::new(
                spec,
                self.size_ms,
                self.slide_ms,
                self.pane_ms(),
            )),
            EmitMode::Changes => {
                let geometry = Aligned {
                    size_ms: self.size_ms,
                    slide_ms: self.slide_ms,
                };
                Box::new(AlignedWindows::new(spec, geometry, emit, metrics))
            }
        })
    }
}

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

/// Hopping windows over panes (EMIT FINAL).
pub(crate) struct Panes {
    spec: AggregateSpec,
    size_ms: i64,
    slide_ms: i64,
    pane_ms: i64,
    panes: BTreeMap<i64, Pane>,
    /// The next window start to consider emitting.
    next_start: Option<i64>,
    pane_of_row: Vec<i64>,
}

impl Panes {
    pub(crate) fn new(spec: AggregateSpec, size_ms: i64, slide_ms: i64, pane_ms: i64) -> Self {
        Self {
            spec,
            size_ms,
            slide_ms,
            pane_ms,
            panes: BTreeMap::new(),
            next_start: None,
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
    fn assign(&mut self, ts: &TimestampMillisecondArray, clock: &mut Rejects) -> Option<i64> {
        let (size, slide, pane) = (self.size_ms, self.slide_ms, self.pane_ms);
        let (wm, closed) = (clock.watermark(), clock.closed_until());
        let mut panes = std::mem::take(&mut self.pane_of_row);
        panes.clear();
        let mut uniform: Option<Option<i64>> = None;
        for (i, &t) in ts.values().iter().enumerate() {
            let p = if ts.is_null(i) {
                clock.null_time(i);
                NO_WINDOW
            } else {
                let last_start = t - t.rem_euclid(slide);
                let last_end = last_start.saturating_add(size);
                if t >= last_end {
                    NO_WINDOW // in a gap between windows (slide > size): no window covers it
                } else if last_end <= closed {
                    clock.late(i);
                    NO_WINDOW
                } else {
                    // late: the watermark passed the end of its first window
                    if self.first_window_covering(t).saturating_add(size) <= wm {
                        clock.accepted();
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

    fn update_pane(&mut self, pane: i64, rows: &Evaluated, closed_until: i64) -> ExecResult<()> {
        // windows ending at or before the watermark are decided: start from the first open one
        let open = self.first_window_covering(closed_until);
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
        Ok(())
    }
}

impl WindowAssigner for Panes {
    fn name(&self) -> &'static str {
        "hopping_aggregate"
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
        let uniform = self.assign(ts, clock);
        let closed = clock.closed_until();
        if let Some(pane) = uniform {
            self.update_pane(pane, &rows, closed)?;
        } else {
            let slots = std::mem::take(&mut self.pane_of_row);
            for (pane, part) in split_by_window(&slots, &rows)? {
                self.update_pane(pane, &part, closed)?;
            }
            self.pane_of_row = slots;
        }
        Ok(())
    }

    fn changes(&mut self, _out: &mut Collector) -> ExecResult<()> {
        Ok(()) // EMIT FINAL only
    }

    fn close_until(&mut self, until: i64, out: &mut Collector) -> ExecResult<()> {
        self.emit_until(until, out)
    }

    fn held(&self) -> (usize, usize) {
        let bytes: usize = self.panes.values().map(Pane::size).sum();
        (bytes, self.panes.len())
    }

    /// Parts: `next_start` (one row, NULL when none), then per pane in time
    /// order its `frozen` parts and its `live` part, each a `pane` column
    /// (the pane's start) before the layout of [`GroupedState::snapshot`].
    /// Every keyed row stands alone, so the state splits by key group; a
    /// pane's parts keep their order, so windows merge them in the same
    /// order (and float sums round the same way).
    fn snapshot(&mut self, out: &mut OperatorState) -> ExecResult<()> {
        let next = Arc::new(Int64Array::from(vec![self.next_start])) as ArrayRef;
        out.push(
            "next_start",
            state_batch(vec![("next_start".into(), next)], 1)?,
        );
        let pane = |start: i64, n: usize| {
            vec![(
                "pane".to_string(),
                Arc::new(Int64Array::from(vec![start; n])) as ArrayRef,
            )]
        };
        for (&start, p) in self.panes.iter_mut() {
            for part in p.frozen.iter().filter(|f| f.len() > 0) {
                out.push("frozen", part.to_batch(pane(start, part.len()))?);
            }
            if let Some(live) = p.live.as_mut().filter(|l| l.len() > 0) {
                let n = live.len();
                out.push("live", live.snapshot(pane(start, n))?);
            }
        }
        Ok(())
    }

    /// Loads [`Panes::snapshot`]s: one, or the parts of several workers'
    /// (another number of workers), whose keys are disjoint. Windows from
    /// the earliest `next_start` on are still to be emitted: before a
    /// worker's own `next_start` none covers its panes.
    fn restore(&mut self, state: &OperatorState) -> ExecResult<()> {
        for (name, part) in &state.parts {
            match name.as_str() {
                "clock" => {}
                "next_start" => {
                    let next = part
                        .column(0)
                        .as_primitive_opt::<arrow::datatypes::Int64Type>()
                        .filter(|c| c.is_valid(0))
                        .map(|c| c.value(0));
                    self.next_start = match (self.next_start, next) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
                "frozen" => {
                    let start = state_value(part, "pane")?;
                    let pane = self.panes.entry(start).or_default();
                    pane.frozen.push(Frozen::from_batch(part, 1));
                }
                "live" => {
                    let start = state_value(part, "pane")?;
                    let pane = self.panes.entry(start).or_default();
                    if pane.live.is_none() {
                        pane.live = Some(self.spec.new_state()?);
                    }
                    if let Some(live) = &mut pane.live {
                        live.restore(part, 1)?;
                    }
                }
                other => {
                    return Err(ExecError::Internal(format!(
                        "a hopping window state has an unknown part '{other}'"
                    )));
                }
            }
        }
        Ok(())
    }

    /// `frozen` and `live` parts hold one row per (pane, key); `next_start`
    /// combines by minimum.
    fn rescalable(&self) -> bool {
        true
    }

    fn retained_event_time(&self) -> Option<i64> {
        // a row lives in its pane until the last window over it is emitted
        self.panes.keys().next().copied()
    }
}
