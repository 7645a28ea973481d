//! Session windows per group key: a row at `t` opens the interval
//! `[t, t + gap)`; intervals of one key that overlap or touch merge into one
//! session `[first, last + gap)`, combining their partial aggregates (frozen
//! states merged through `merge_batch`, never recomputed from raw rows). A
//! session closes once the watermark minus the allowed lateness reaches its
//! end (EMIT FINAL emits it then); a row whose own interval already ends
//! before that is too late. Under EMIT CHANGES every batch reports the
//! sessions it changed: `-U` for each session it replaced (extended or
//! merged), then `+U` (or `+I` for a brand-new session) for the result.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array, TimestampMillisecondArray, UInt32Array};
use arrow::compute::{concat_batches, take};
use arrow::datatypes::DataType;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use crate::error::{ExecError, ExecResult};
use crate::exec::aggregate::{
    AggregateSpec, Evaluated, GroupedState, Rejects, state_batch, state_value,
};
use crate::exec::changelog::{INSERT, UPDATE_AFTER, UPDATE_BEFORE};
use crate::exec::group_table::GroupTable;
use crate::exec::metrics::QueryMetrics;
use crate::exec::operator::{Collector, Message, OperatorState};
use crate::exec::window::{Window, WindowAssigner, WindowKind, WindowSyntax};
use crate::plan::explain::Params;
use crate::plan::logical::EmitMode;
use crate::types::format_interval_ms;

/// `SESSION(stream, time, gap)` / `WINDOW SESSION(gap)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Session {
    /// Inactivity gap in ms.
    pub gap_ms: i64,
}

impl Session {
    pub(crate) const SYNTAX: WindowSyntax = WindowSyntax {
        function: "SESSION",
        function_args: &["gap"],
        function_usage: "write SESSION(stream, time_column, INTERVAL '5' SECOND): the gap",
        clause: "SESSION",
        clause_args: &[("gap", 0)],
        clause_usage: "write WINDOW SESSION(INTERVAL '5' SECOND): the gap",
        make: |a| Window::Session(Session { gap_ms: a[0] }),
    };
}

impl WindowKind for Session {
    fn explain_name(&self) -> &'static str {
        "SessionWindowAggregate"
    }

    fn explain_params(&self, _emit: EmitMode) -> Params {
        vec![("gap".into(), format_interval_ms(self.gap_ms))]
    }

    fn assigner(
        &self,
        spec: AggregateSpec,
        emit: EmitMode,
        _metrics: &Arc<QueryMetrics>,
    ) -> ExecResult<Box<dyn WindowAssigner>> {
        Ok(Box::new(Sessions::new(spec, self.gap_ms, emit)?))
    }
}

/// One changelog row: op, session bounds, key id, aggregate values (one row each).
type Change = (&'static str, i64, i64, u32, Vec<ArrayRef>);

/// One open session of one key.
struct OpenSession {
    start: i64,
    end: i64,
    state: GroupedState,
}

/// What a merge sweep combines: an existing session or new rows (a range
/// of the key's rows, which are sorted by time).
enum Piece {
    Old(Box<OpenSession>),
    New {
        start: i64,
        end: i64,
        rows: std::ops::Range<usize>,
    },
}

impl Piece {
    fn bounds(&self) -> (i64, i64) {
        match self {
            Piece::Old(s) => (s.start, s.end),
            Piece::New { start, end, .. } => (*start, *end),
        }
    }
}

/// Sessions per group key.
pub(crate) struct Sessions {
    spec: AggregateSpec,
    gap_ms: i64,
    keys: GroupTable,
    /// Open sessions per key id, sorted by start, never overlapping.
    sessions: Vec<Vec<OpenSession>>,
    /// When to look at a key's sessions next: (time, key id), at most one
    /// live entry per key, no later than the end of its earliest session.
    /// A session that grows does not touch the heap: when its key comes up,
    /// sessions that ended are closed and the key is scheduled again.
    checks: BinaryHeap<Reverse<(i64, u32)>>,
    /// Per key id, the time of its live entry in `checks` (`i64::MAX`: none).
    next_check: Vec<i64>,
    emit: EmitMode,
    /// EMIT CHANGES rows of the current batch.
    changes: Vec<Change>,
    key_ids: Vec<u32>,
}

impl Sessions {
    /// # Errors
    /// Key types the group table cannot hold.
    pub(crate) fn new(spec: AggregateSpec, gap_ms: i64, emit: EmitMode) -> ExecResult<Self> {
        let keys = GroupTable::new(spec.key_types())?;
        Ok(Self {
            spec,
            gap_ms,
            keys,
            sessions: Vec::new(),
            checks: BinaryHeap::new(),
            next_check: Vec::new(),
            emit,
            changes: Vec::new(),
            key_ids: Vec::new(),
        })
    }

    /// Merges one key's new rows into its sessions: `times` are their event
    /// times, ascending, and `rows` their arguments in the same order.
    fn add_key(&mut self, key: u32, times: &[i64], rows: &Evaluated) -> ExecResult<()> {
        if !self.extend_single(key, times, rows)? {
            self.merge_pieces(key, times, rows)?;
        }
        self.schedule(key);
        Ok(())
    }

    /// Makes sure the key is looked at no later than its earliest session's end.
    fn schedule(&mut self, key: u32) {
        let k = key as usize;
        let Some(end) = self.sessions[k].iter().map(|s| s.end).min() else {
            return;
        };
        if end < self.next_check[k] {
            self.next_check[k] = end;
            self.checks.push(Reverse((end, key)));
        }
    }

    /// The common case: the key has one session and the new rows form one
    /// run that overlaps or touches it: the session grows in place.
    fn extend_single(&mut self, key: u32, times: &[i64], rows: &Evaluated) -> ExecResult<bool> {
        let gap = self.gap_ms;
        let [session] = self.sessions[key as usize].as_mut_slice() else {
            return Ok(false);
        };
        let Some(&start) = times.first() else {
            return Ok(true);
        };
        let mut end = start.saturating_add(gap);
        for &t in &times[1..] {
            if t > end {
                return Ok(false);
            }
            end = end.max(t.saturating_add(gap));
        }
        if start > session.end || end < session.start {
            return Ok(false);
        }
        let track = self.emit == EmitMode::Changes;
        if track {
            let values = session.state.values_of(&[0])?;
            self.changes
                .push((UPDATE_BEFORE, session.start, session.end, key, values));
        }
        session.state.update(rows)?;
        session.start = session.start.min(start);
        session.end = session.end.max(end);
        if track {
            let values = session.state.values_of(&[0])?;
            self.changes
                .push((UPDATE_AFTER, session.start, session.end, key, values));
        }
        Ok(true)
    }

    /// The general case: sessions and runs of new rows that overlap merge.
    fn merge_pieces(&mut self, key: u32, times: &[i64], rows: &Evaluated) -> ExecResult<()> {
        let gap = self.gap_ms;
        let mut pieces: Vec<Piece> = std::mem::take(&mut self.sessions[key as usize])
            .into_iter()
            .map(|s| Piece::Old(Box::new(s)))
            .collect();
        let olds = pieces.len();
        // runs of new rows no further than `gap` apart
        let mut first = 0;
        while first < times.len() {
            let start = times[first];
            let mut end = start.saturating_add(gap);
            let mut last = first + 1;
            while last < times.len() && times[last] <= end {
                end = end.max(times[last].saturating_add(gap));
                last += 1;
            }
            pieces.push(Piece::New {
                start,
                end,
                rows: first..last,
            });
            first = last;
        }
        if olds > 0 {
            pieces.sort_by_key(|p| p.bounds().0);
        }
        // sweep: pieces that overlap or touch become one session
        let mut merged: Vec<OpenSession> = Vec::new();
        let mut group: Vec<Piece> = Vec::new();
        let mut group_end = i64::MIN;
        for p in pieces {
            let (start, end) = p.bounds();
            if !group.is_empty() && start > group_end {
                merged.push(self.combine(key, std::mem::take(&mut group), rows)?);
                group_end = i64::MIN;
            }
            group_end = group_end.max(end);
            group.push(p);
        }
        if !group.is_empty() {
            merged.push(self.combine(key, group, rows)?);
        }
        self.sessions[key as usize] = merged;
        Ok(())
    }

    /// One session from pieces that overlap: existing states merged, new rows added.
    fn combine(
        &mut self,
        key: u32,
        pieces: Vec<Piece>,
        rows: &Evaluated,
    ) -> ExecResult<OpenSession> {
        let changed = !matches!(pieces.as_slice(), [Piece::Old(_)]);
        let track = changed && self.emit == EmitMode::Changes;
        let mut had_old = false;
        if track {
            for p in &pieces {
                if let Piece::Old(old) = p {
                    had_old = true;
                    let values = old.state.values_of(&[0])?;
                    self.changes
                        .push((UPDATE_BEFORE, old.start, old.end, key, values));
                }
            }
        }
        let (mut start, mut end) = (i64::MAX, i64::MIN);
        let mut olds = Vec::new();
        let mut new_rows: Option<std::ops::Range<usize>> = None;
        for p in pieces {
            let (s, e) = p.bounds();
            start = start.min(s);
            end = end.max(e);
            match p {
                Piece::Old(session) => olds.push(session.state),
                // the new rows of one session are consecutive in time order
                Piece::New { rows: r, .. } => {
                    new_rows = Some(match new_rows {
                        Some(n) => n.start.min(r.start)..n.end.max(r.end),
                        None => r,
                    })
                }
            }
        }
        let mut state = match olds.len() {
            1 => olds
                .pop()
                .ok_or_else(|| ExecError::Internal("session vanished".into()))?,
            _ => {
                let mut s = self.spec.new_state_keyed_by(&[])?;
                for old in olds {
                    s.merge(&old.freeze()?)?;
                }
                s
            }
        };
        if let Some(r) = new_rows {
            state.update(&rows.slice(r.start, r.len()))?;
        }
        if track {
            let op = if had_old { UPDATE_AFTER } else { INSERT };
            self.changes
                .push((op, start, end, key, state.values_of(&[0])?));
        }
        Ok(OpenSession { start, end, state })
    }

    /// Emits every session ending at or before `until`, in order of end.
    fn emit_until(&mut self, until: i64, out: &mut Collector) -> ExecResult<()> {
        let mut closing: Vec<(u32, OpenSession)> = Vec::new();
        while let Some(&Reverse((at, key))) = self.checks.peek() {
            if at > until {
                break;
            }
            self.checks.pop();
            let k = key as usize;
            if self.next_check[k] != at {
                continue; // superseded by an earlier entry for this key
            }
            self.next_check[k] = i64::MAX;
            let list = std::mem::take(&mut self.sessions[k]);
            let (done, open): (Vec<OpenSession>, Vec<OpenSession>) =
                list.into_iter().partition(|s| s.end <= until);
            closing.extend(done.into_iter().map(|s| (key, s)));
            self.sessions[k] = open;
            self.schedule(key);
        }
        // in order of end, as they close
        closing.sort_by_key(|(key, s)| (s.end, *key, s.start));
        let closed = !closing.is_empty();
        if closed && self.emit == EmitMode::Final {
            out.push(Message::Batch(self.output(closing)?));
        }
        Ok(())
    }

    fn output(&self, closing: Vec<(u32, OpenSession)>) -> ExecResult<RecordBatch> {
        let n = closing.len();
        let mut values = self.spec.new_state_keyed_by(&[DataType::Int64])?;
        let (mut starts, mut ends, mut key_ids) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for (i, (key, s)) in closing.into_iter().enumerate() {
            starts.push(s.start);
            ends.push(s.end);
            key_ids.push(key);
            let slot: ArrayRef = Arc::new(Int64Array::from(vec![i as i64]));
            values.merge_as(&[slot], &s.state.freeze()?)?;
        }
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(TimestampMillisecondArray::from(starts)),
            Arc::new(TimestampMillisecondArray::from(ends)),
        ];
        let ids = UInt32Array::from(key_ids);
        for k in self.keys.key_columns()? {
            columns.push(
                take(k.as_ref(), &ids, None).map_err(|e| ExecError::arrow("session keys", e))?,
            );
        }
        columns.extend(values.finish_values()?);
        let options = RecordBatchOptions::new().with_row_count(Some(n));
        RecordBatch::try_new_with_options(self.spec.schema.clone(), columns, &options)
            .map_err(|e| ExecError::arrow("session output", e))
    }

    /// The EMIT CHANGES rows of the batch just processed.
    fn changelog(&mut self) -> ExecResult<Option<RecordBatch>> {
        if self.changes.is_empty() {
            return Ok(None);
        }
        let changes = std::mem::take(&mut self.changes);
        let n = changes.len();
        let err = |e| ExecError::arrow("session changelog", e);
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(TimestampMillisecondArray::from_iter_values(
                changes.iter().map(|c| c.1),
            )),
            Arc::new(TimestampMillisecondArray::from_iter_values(
                changes.iter().map(|c| c.2),
            )),
        ];
        let ids = UInt32Array::from_iter_values(changes.iter().map(|c| c.3));
        for k in self.keys.key_columns_of(ids.values())? {
            columns.push(k);
        }
        let naggs = changes.first().map_or(0, |c| c.4.len());
        for a in 0..naggs {
            let parts: Vec<&dyn Array> = changes.iter().map(|c| c.4[a].as_ref()).collect();
            columns.push(arrow::compute::concat(&parts).map_err(err)?);
        }
        columns.push(Arc::new(arrow::array::StringArray::from_iter_values(
            changes.iter().map(|c| c.0),
        )));
        let options = RecordBatchOptions::new().with_row_count(Some(n));
        RecordBatch::try_new_with_options(self.spec.schema.clone(), columns, &options)
            .map(Some)
            .map_err(|e| ExecError::arrow("session changelog", e))
    }
}

impl WindowAssigner for Sessions {
    fn name(&self) -> &'static str {
        "session_aggregate"
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
        let mut ids = std::mem::take(&mut self.key_ids);
        self.keys.intern(&rows.keys, rows.rows, &mut ids)?;
        self.sessions.resize_with(self.keys.len(), Vec::new);
        self.next_check.resize(self.keys.len(), i64::MAX);
        let values = ts.values();
        let mut order: Vec<u32> = Vec::with_capacity(ids.len());
        for i in 0..ids.len() {
            if ts.is_null(i) {
                clock.null_time(i);
                continue;
            }
            let end = values[i].saturating_add(self.gap_ms);
            if end <= clock.closed_until() {
                clock.late(i);
                continue;
            }
            if end <= clock.watermark() {
                clock.accepted();
            }
            order.push(i as u32);
        }
        // rows by key, then time: each key's rows are one slice
        order.sort_unstable_by_key(|&i| (ids[i as usize], values[i as usize]));
        let times: Vec<i64> = order.iter().map(|&i| values[i as usize]).collect();
        let keys_in_order: Vec<u32> = order.iter().map(|&i| ids[i as usize]).collect();
        let sorted = rows.take_args(&UInt32Array::from(order))?;
        let mut first = 0;
        while first < keys_in_order.len() {
            let key = keys_in_order[first];
            let mut last = first + 1;
            while last < keys_in_order.len() && keys_in_order[last] == key {
                last += 1;
            }
            self.add_key(key, &times[first..last], &sorted.slice(first, last - first))?;
            first = last;
        }
        self.key_ids = ids;
        Ok(())
    }

    fn changes(&mut self, out: &mut Collector) -> ExecResult<()> {
        if let Some(b) = self.changelog()? {
            out.push(Message::Batch(b));
        }
        Ok(())
    }

    fn close_until(&mut self, until: i64, out: &mut Collector) -> ExecResult<()> {
        self.emit_until(until, out)
    }

    fn held(&self) -> (usize, usize) {
        let bytes: usize = self
            .sessions
            .iter()
            .flatten()
            .map(|s| s.state.size())
            .sum::<usize>()
            + self.keys.size();
        let open: usize = self.sessions.iter().map(Vec::len).sum();
        (bytes, open)
    }

    fn report_every(&self) -> u64 {
        // summing every session's size is not free: publish it now and then
        32
    }

    /// Parts: `keys`: every key the operator has seen, in key-id order
    /// (ids decide the output order of sessions that end together);
    /// `sessions`: one row per open session, in each key's order — `start`,
    /// `end`, the key (`key0`, ...), then its one-group state laid out as
    /// [`GroupedState::snapshot`]. Every row stands alone, so the state
    /// splits by key group.
    fn snapshot(&mut self, out: &mut OperatorState) -> ExecResult<()> {
        let key_columns = self.keys.key_columns()?;
        let keys: Vec<(String, ArrayRef)> = key_columns
            .iter()
            .enumerate()
            .map(|(i, k)| (format!("key{i}"), k.clone()))
            .collect();
        out.push("keys", state_batch(keys, self.keys.len())?);
        let mut rows = Vec::new();
        for (key, list) in self.sessions.iter_mut().enumerate() {
            for s in list {
                let one = |v: i64| Arc::new(Int64Array::from(vec![v])) as ArrayRef;
                let mut prefix = vec![("start".into(), one(s.start)), ("end".into(), one(s.end))];
                prefix.extend(
                    key_columns
                        .iter()
                        .enumerate()
                        .map(|(i, k)| (format!("key{i}"), k.slice(key, 1))),
                );
                rows.push(s.state.snapshot(prefix)?);
            }
        }
        if let Some(first) = rows.first() {
            let all = concat_batches(&first.schema(), &rows)
                .map_err(|e| ExecError::arrow("session snapshot", e))?;
            out.push("sessions", all);
        }
        Ok(())
    }

    /// Loads [`Sessions::snapshot`]s: one, or the parts of several workers'
    /// (another number of workers), whose keys are disjoint.
    fn restore(&mut self, state: &OperatorState) -> ExecResult<()> {
        let mut ids = Vec::new();
        for keys in state.parts("keys") {
            self.keys
                .intern(keys.columns(), keys.num_rows(), &mut ids)?;
        }
        for part in state.parts("sessions") {
            let key_columns: Vec<ArrayRef> = part
                .schema()
                .fields()
                .iter()
                .enumerate()
                .filter(|(_, f)| f.name().starts_with("key"))
                .map(|(i, _)| part.column(i).clone())
                .collect();
            let skip = 2 + key_columns.len();
            self.keys.intern(&key_columns, part.num_rows(), &mut ids)?;
            self.sessions.resize_with(self.keys.len(), Vec::new);
            for (i, &key) in ids.iter().enumerate() {
                let row = part.slice(i, 1);
                let mut s = self.spec.new_state_keyed_by(&[])?;
                s.restore(&row, skip)?;
                self.sessions[key as usize].push(OpenSession {
                    start: state_value(&row, "start")?,
                    end: state_value(&row, "end")?,
                    state: s,
                });
            }
        }
        self.sessions.resize_with(self.keys.len(), Vec::new);
        self.next_check.resize(self.keys.len(), i64::MAX);
        for key in 0..self.sessions.len() as u32 {
            self.schedule(key);
        }
        Ok(())
    }

    /// `keys` and `sessions` hold one row per key and per (session, key).
    fn rescalable(&self) -> bool {
        true
    }

    fn retained_event_time(&self) -> Option<i64> {
        self.sessions.iter().flatten().map(|s| s.start).min()
    }
}
