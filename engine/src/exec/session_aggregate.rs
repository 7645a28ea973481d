//! Session windows per group key: a row at `t` opens the interval
//! `[t, t + gap)`; intervals of one key that overlap or touch merge into one
//! session `[first, last + gap)`, combining their partial aggregates (frozen
//! states merged through `merge_batch`, never recomputed from raw rows). A
//! session closes once the watermark minus the allowed lateness reaches its
//! end (EMIT FINAL emits it then); a row whose own interval already ends
//! before that is too late. Under EMIT CHANGES every batch reports the
//! sessions it changed: `-U` for each session it replaced (extended or
//! merged), then `+U` (or `+I` for a brand-new session) for the result.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arrow::array::{Array, ArrayRef, Int64Array, TimestampMillisecondArray, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::DataType;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use rustc_hash::FxHashMap;

use crate::error::{ExecError, ExecResult};
use crate::exec::aggregate::{AggregateSpec, Evaluated, GroupedState, Rejects, time_column};
use crate::exec::changelog::{INSERT, UPDATE_AFTER, UPDATE_BEFORE};
use crate::exec::group_table::GroupTable;
use crate::exec::metrics::QueryMetrics;
use crate::exec::operator::{Message, Operator};
use crate::plan::logical::{EmitMode, Lateness};

/// One changelog row: op, session bounds, key id, aggregate values (one row each).
type Change = (&'static str, i64, i64, u32, Vec<ArrayRef>);

/// One open session of one key.
struct Session {
    start: i64,
    end: i64,
    state: GroupedState,
}

/// What a merge sweep combines: an existing session or new rows.
enum Piece {
    Old(Box<Session>),
    New {
        start: i64,
        end: i64,
        rows: Vec<u32>,
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

/// The session window aggregate operator.
pub(crate) struct SessionAggregateOp {
    spec: AggregateSpec,
    time_column: usize,
    gap_ms: i64,
    keys: GroupTable,
    /// Open sessions per key id, sorted by start, never overlapping.
    sessions: Vec<Vec<Session>>,
    /// (end, key id, start) of every open session, to find the ones to close.
    by_end: BTreeSet<(i64, u32, i64)>,
    watermark: i64,
    /// Sessions ending at or before this are closed (watermark − lateness).
    closed_until: i64,
    emit: EmitMode,
    rejects: Rejects,
    /// EMIT CHANGES rows of the current batch.
    changes: Vec<Change>,
    metrics: Arc<QueryMetrics>,
    key_ids: Vec<u32>,
}

impl SessionAggregateOp {
    /// # Errors
    /// Key types the group table cannot hold.
    pub fn new(
        spec: AggregateSpec,
        time_column: usize,
        gap_ms: i64,
        emit: EmitMode,
        lateness: Lateness,
        metrics: Arc<QueryMetrics>,
    ) -> ExecResult<Self> {
        let keys = GroupTable::new(spec.key_types())?;
        Ok(Self {
            spec,
            time_column,
            gap_ms,
            keys,
            sessions: Vec::new(),
            by_end: BTreeSet::new(),
            watermark: i64::MIN,
            closed_until: i64::MIN,
            emit,
            rejects: Rejects::new(lateness, metrics.clone()),
            changes: Vec::new(),
            metrics,
            key_ids: Vec::new(),
        })
    }

    /// Merges the rows `idx` (sorted by time) of one key into its sessions.
    fn add(&mut self, key: u32, idx: Vec<u32>, ts: &[i64], rows: &Evaluated) -> ExecResult<()> {
        let gap = self.gap_ms;
        let mut pieces: Vec<Piece> = std::mem::take(&mut self.sessions[key as usize])
            .into_iter()
            .map(|s| Piece::Old(Box::new(s)))
            .collect();
        for s in &pieces {
            let (start, end) = s.bounds();
            self.by_end.remove(&(end, key, start));
        }
        // runs of new rows no further than `gap` apart
        let mut run: Option<(i64, i64, Vec<u32>)> = None;
        for i in idx {
            let t = ts[i as usize];
            match &mut run {
                Some((_, end, rows)) if t <= *end => {
                    *end = (*end).max(t.saturating_add(gap));
                    rows.push(i);
                }
                _ => {
                    if let Some((start, end, rows)) = run.take() {
                        pieces.push(Piece::New { start, end, rows });
                    }
                    run = Some((t, t.saturating_add(gap), vec![i]));
                }
            }
        }
        if let Some((start, end, rows)) = run {
            pieces.push(Piece::New { start, end, rows });
        }
        pieces.sort_by_key(|p| p.bounds().0);
        // sweep: pieces that overlap or touch become one session
        let mut merged: Vec<Session> = Vec::new();
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
        for s in &merged {
            self.by_end.insert((s.end, key, s.start));
        }
        self.sessions[key as usize] = merged;
        Ok(())
    }

    /// One session from pieces that overlap: existing states merged, new rows added.
    fn combine(&mut self, key: u32, pieces: Vec<Piece>, rows: &Evaluated) -> ExecResult<Session> {
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
        let mut new_rows = Vec::new();
        for p in pieces {
            let (s, e) = p.bounds();
            start = start.min(s);
            end = end.max(e);
            match p {
                Piece::Old(session) => olds.push(session.state),
                Piece::New { rows, .. } => new_rows.extend(rows),
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
        if !new_rows.is_empty() {
            new_rows.sort_unstable();
            let part = rows.take_args(&UInt32Array::from(new_rows))?;
            state.update(&part)?;
        }
        if track {
            let op = if had_old { UPDATE_AFTER } else { INSERT };
            self.changes
                .push((op, start, end, key, state.values_of(&[0])?));
        }
        Ok(Session { start, end, state })
    }

    /// Emits every session ending at or before `until`, in order of end.
    fn emit_until(&mut self, until: i64, out: &mut Vec<Message>) -> ExecResult<()> {
        let mut closing: Vec<(u32, Session)> = Vec::new();
        while let Some(&(end, key, start)) = self.by_end.first() {
            if end > until {
                break;
            }
            self.by_end.pop_first();
            let list = &mut self.sessions[key as usize];
            if let Some(pos) = list.iter().position(|s| s.start == start) {
                closing.push((key, list.remove(pos)));
            }
        }
        if !closing.is_empty() && self.emit == EmitMode::Final {
            out.push(Message::Batch(self.output(closing)?));
        }
        self.report_state();
        Ok(())
    }

    fn output(&self, closing: Vec<(u32, Session)>) -> ExecResult<RecordBatch> {
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

    fn report_state(&self) {
        let bytes: usize = self
            .sessions
            .iter()
            .flatten()
            .map(|s| s.state.size())
            .sum::<usize>()
            + self.keys.size();
        self.metrics
            .state_bytes
            .store(bytes as u64, Ordering::Relaxed);
        self.metrics
            .open_windows
            .store(self.by_end.len() as u64, Ordering::Relaxed);
    }
}

impl Operator for SessionAggregateOp {
    fn name(&self) -> &'static str {
        "session_aggregate"
    }

    fn process_batch(&mut self, batch: RecordBatch, out: &mut Vec<Message>) -> ExecResult<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let ts = time_column(&batch, self.time_column)?;
        let rows = self.spec.evaluate(&batch)?;
        let mut ids = std::mem::take(&mut self.key_ids);
        self.keys.intern(&rows.keys, rows.rows, &mut ids)?;
        self.sessions.resize_with(self.keys.len(), Vec::new);
        let mut by_key: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
        let values = ts.values();
        for (i, &k) in ids.iter().enumerate() {
            if ts.is_null(i) {
                self.rejects.null_time(i);
                continue;
            }
            let end = values[i].saturating_add(self.gap_ms);
            if end <= self.closed_until {
                self.rejects.late(i);
                continue;
            }
            if end <= self.watermark {
                self.rejects.accepted();
            }
            by_key.entry(k).or_default().push(i as u32);
        }
        self.rejects.finish(&batch, &ts, self.watermark, out)?;
        let mut keys: Vec<u32> = by_key.keys().copied().collect();
        keys.sort_unstable();
        for k in keys {
            let mut idx = by_key.remove(&k).unwrap_or_default();
            idx.sort_by_key(|&i| values[i as usize]);
            self.add(k, idx, values, &rows)?;
        }
        self.key_ids = ids;
        if let Some(b) = self.changelog()? {
            out.push(Message::Batch(b));
        }
        self.report_state();
        Ok(())
    }

    fn handle_watermark(&mut self, watermark: i64, out: &mut Vec<Message>) -> ExecResult<()> {
        if watermark > self.watermark {
            self.watermark = watermark;
            self.closed_until = self.rejects.close_watermark(watermark);
            self.emit_until(self.closed_until, out)?;
        }
        out.push(Message::Watermark(watermark));
        Ok(())
    }

    fn on_close(&mut self, out: &mut Vec<Message>) -> ExecResult<()> {
        self.emit_until(i64::MAX, out)
    }
}
