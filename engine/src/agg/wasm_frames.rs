//! Aggregate UDFs in row windows. When the aggregate can retract a row
//! (`Aggregate::retract`), the frame slides: each release is one guest call
//! that replays, in order, the rows entering (update) and leaving (retract)
//! each partition's frame and reads the result after each row (finish), on a
//! group table that persists across releases — every row crosses the
//! boundary at most twice. When it cannot, each output row's frame is
//! aggregated afresh: one update call per release with every frame's rows
//! (the output row as the group index) and one finish call — work that grows
//! with the frame size. Never a call per row.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use arrow::compute::interleave;
use arrow::datatypes::Int64Type;
use arrow::record_batch::RecordBatch;

use crate::agg::Accumulator;
use crate::agg::frame::{FrameAccumulator, Part};
use crate::agg::wasm::{SharedInstance, WasmAccumulator};
use crate::error::{ExecError, ExecResult};
use crate::exec::grouped_state::{state_batch, state_value};
use crate::exec::rescale::{Remaps, concat, keep_keyed_rows, remap_ids};
use crate::types::SqlType;
use crate::udf::{UdfModule, runtime};

/// How a call's frames are computed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Not known yet: try sliding, fall back if the aggregate cannot retract.
    Unknown = 0,
    Slide = 1,
    Recompute = 2,
}

/// A released row: (batch id, row).
type RowRef = (u64, u32);

/// What a release does to a frame, in order.
#[derive(Clone, Copy)]
enum Op {
    Add(u32, RowRef),
    Retract(u32, RowRef),
    Emit(u32),
}

/// One aggregate UDF's frames, as references to released rows.
pub struct WasmFrames {
    module: Arc<UdfModule>,
    /// This thread's instance of the module, once used (the sliding table
    /// lives in it).
    instance: Option<SharedInstance>,
    name: String,
    ret: SqlType,
    mode: Mode,
    /// The sliding group table (one group per partition).
    table: Option<u32>,
    /// Per released batch (by id): its argument columns.
    history: BTreeMap<u64, Vec<ArrayRef>>,
    next_batch: u64,
    /// Per group: the frame's rows, oldest first.
    frames: Vec<VecDeque<RowRef>>,
    /// This release, for recomputing: every frame's rows and their output row.
    rows: Vec<RowRef>,
    groups: Vec<u32>,
    /// This release, for sliding.
    ops: Vec<Op>,
    /// Output rows of this release.
    emitted: u32,
}

impl WasmFrames {
    /// The frames of aggregate `name` of `module`, returning `ret`.
    pub fn new(module: Arc<UdfModule>, name: &str, ret: SqlType) -> Self {
        Self {
            module,
            instance: None,
            name: name.to_string(),
            ret,
            mode: Mode::Unknown,
            table: None,
            history: BTreeMap::new(),
            next_batch: 0,
            frames: Vec::new(),
            rows: Vec::new(),
            groups: Vec::new(),
            ops: Vec::new(),
            emitted: 0,
        }
    }

    /// This thread's instance of the module, kept once used.
    fn instance(&mut self) -> ExecResult<SharedInstance> {
        match &self.instance {
            Some(i) => Ok(i.clone()),
            None => Ok(self
                .instance
                .insert(runtime::instance(&self.module)?)
                .clone()),
        }
    }

    /// The batch rows of this release go into.
    fn current(&self) -> u64 {
        self.next_batch.saturating_sub(1)
    }

    /// The argument columns of `refs`, gathered from the kept batches.
    fn gather(&self, refs: &[RowRef]) -> ExecResult<Vec<ArrayRef>> {
        let ids: Vec<u64> = self.history.keys().copied().collect();
        let picks: Vec<(usize, usize)> = refs
            .iter()
            .map(|&(b, r)| (ids.binary_search(&b).unwrap_or(0), r as usize))
            .collect();
        let nargs = self.history.values().next().map_or(0, Vec::len);
        (0..nargs)
            .map(|a| {
                let arrays: Vec<&dyn arrow::array::Array> =
                    ids.iter().map(|id| self.history[id][a].as_ref()).collect();
                interleave(&arrays, &picks).map_err(|e| ExecError::arrow("row window UDF", e))
            })
            .collect()
    }

    /// One sliding call for this release; `None` if the aggregate cannot retract.
    fn slide(&mut self, ops: &[Op]) -> ExecResult<Option<ArrayRef>> {
        let refs: Vec<RowRef> = ops
            .iter()
            .filter_map(|o| match *o {
                Op::Add(_, r) | Op::Retract(_, r) => Some(r),
                Op::Emit(_) => None,
            })
            .collect();
        let args = self.gather(&refs)?;
        let mut triples = Vec::with_capacity(ops.len() * 3);
        let mut next_row = 0u32;
        for op in ops {
            let (code, group) = match *op {
                Op::Add(g, _) => (0, g),
                Op::Retract(g, _) => (1, g),
                Op::Emit(g) => (2, g),
            };
            let row = if code == 2 {
                0
            } else {
                next_row += 1;
                next_row - 1
            };
            triples.extend([code, group, row]);
        }
        let instance = self.instance()?;
        let mut i = runtime::lock(&instance);
        let table = match self.table {
            Some(t) => t,
            None => *self
                .table
                .insert(runtime::checked(&instance, i.agg_new(&self.name))?),
        };
        let slid = i.agg_slide(&self.name, table, &args, &triples, self.ret);
        Ok(runtime::checked(&instance, slid)?)
    }

    /// The rows of the frame each `Emit` of this release's `ops` read, and
    /// the emit's output row for each: the frames as they are now (after
    /// the release), with the ops undone backwards.
    fn frames_at_emits(&self, ops: &[Op]) -> (Vec<RowRef>, Vec<u32>) {
        let mut frames: std::collections::HashMap<u32, VecDeque<RowRef>> = Default::default();
        let mut emitted: Vec<Vec<RowRef>> = Vec::new();
        for op in ops.iter().rev() {
            let (Op::Emit(g) | Op::Add(g, _) | Op::Retract(g, _)) = *op;
            let frame = frames
                .entry(g)
                .or_insert_with(|| self.frames[g as usize].clone());
            match *op {
                Op::Emit(_) => emitted.push(frame.iter().copied().collect()),
                Op::Add(..) => {
                    frame.pop_back();
                }
                Op::Retract(_, r) => frame.push_front(r),
            }
        }
        let (mut rows, mut groups) = (Vec::new(), Vec::new());
        for (i, refs) in emitted.into_iter().rev().enumerate() {
            groups.extend(std::iter::repeat_n(i as u32, refs.len()));
            rows.extend(refs);
        }
        (rows, groups)
    }

    /// Aggregates every output row's frame afresh.
    fn recompute(&mut self, n: usize) -> ExecResult<ArrayRef> {
        let args = self.gather(&self.rows)?;
        let mut acc = WasmAccumulator::new(self.instance()?, &self.name, self.ret)?;
        acc.update_batch(&args, &self.groups, n)?;
        acc.evaluate(n)
    }
}

impl FrameAccumulator for WasmFrames {
    fn begin(&mut self, args: &[ArrayRef], groups: usize) -> ExecResult<()> {
        self.history.insert(self.next_batch, args.to_vec());
        self.next_batch += 1;
        if self.frames.len() < groups {
            self.frames.resize_with(groups, VecDeque::new);
        }
        Ok(())
    }

    fn push(&mut self, group: u32, row: u32) {
        let r = (self.current(), row);
        self.frames[group as usize].push_back(r);
        self.ops.push(Op::Add(group, r));
    }

    fn pop(&mut self, group: u32) {
        if let Some(r) = self.frames[group as usize].pop_front() {
            self.ops.push(Op::Retract(group, r));
        }
    }

    fn emit(&mut self, group: u32) {
        self.ops.push(Op::Emit(group));
        if self.mode != Mode::Slide {
            for &r in &self.frames[group as usize] {
                self.rows.push(r);
                self.groups.push(self.emitted);
            }
        }
        self.emitted += 1;
    }

    fn finish(&mut self) -> ExecResult<ArrayRef> {
        let ops = std::mem::take(&mut self.ops);
        let n = std::mem::take(&mut self.emitted) as usize;
        let mut result = None;
        if self.mode != Mode::Recompute {
            result = self.slide(&ops)?;
            // sliding is settled once a retraction has worked
            if result.is_some() && ops.iter().any(|o| matches!(o, Op::Retract(..))) {
                self.mode = Mode::Slide;
            }
        }
        let out = match result {
            Some(r) => r,
            None => {
                if self.mode == Mode::Slide {
                    // it slid before (a retraction worked), so this release
                    // did not record its frames' rows: replay them
                    (self.rows, self.groups) = self.frames_at_emits(&ops);
                }
                self.mode = Mode::Recompute;
                self.recompute(n)?
            }
        };
        self.rows.clear();
        self.groups.clear();
        // batches no frame refers to any more are dropped
        let oldest = self
            .frames
            .iter()
            .filter_map(|f| f.front().map(|&(b, _)| b))
            .min()
            .unwrap_or(self.next_batch);
        self.history.retain(|&id, _| id >= oldest);
        Ok(out)
    }

    /// Parts: `head` (one row: `next_batch`, `mode`), `frames` (per frame
    /// row, group by group: `group`, `batch`, `row`), `args` (per kept
    /// batch: `batch`, then its argument columns) and, when sliding,
    /// `table` (one BINARY `state` per group, in the module's own bytes).
    fn snapshot(&mut self, out: &mut Vec<Part>) -> ExecResult<()> {
        let one = |v: i64| Arc::new(Int64Array::from(vec![v])) as ArrayRef;
        let head = vec![
            ("next_batch".to_string(), one(self.next_batch as i64)),
            ("mode".to_string(), one(self.mode as i64)),
        ];
        out.push(("head".into(), state_batch(head, 1)?));
        let (mut gid, mut bid, mut rid) = (Vec::new(), Vec::new(), Vec::new());
        for (g, frame) in self.frames.iter().enumerate() {
            for &(b, r) in frame {
                gid.push(g as i64);
                bid.push(b as i64);
                rid.push(i64::from(r));
            }
        }
        let rows = gid.len();
        let col = |v: Vec<i64>| Arc::new(Int64Array::from(v)) as ArrayRef;
        let frames = vec![
            ("group".to_string(), col(gid)),
            ("batch".to_string(), col(bid)),
            ("row".to_string(), col(rid)),
        ];
        out.push(("frames".into(), state_batch(frames, rows)?));
        for (&id, args) in &self.history {
            let n = args.first().map_or(0, |a| a.len());
            let mut columns = vec![("batch".to_string(), col(vec![id as i64; n]))];
            columns.extend(
                args.iter()
                    .enumerate()
                    .map(|(a, arr)| (format!("arg{a}"), arr.clone())),
            );
            out.push(("args".into(), state_batch(columns, n)?));
        }
        let groups = self.frames.len();
        if let Some(table) = self.table {
            let instance = self.instance()?;
            let mut i = runtime::lock(&instance);
            // taking the states empties the table: merge them straight back
            let states = runtime::checked(&instance, i.agg_state(&self.name, table, groups))?;
            let ids: Vec<u32> = (0..groups as u32).collect();
            let back = i.agg_update(
                &self.name,
                table,
                std::slice::from_ref(&states),
                &ids,
                groups,
                true,
            );
            runtime::checked(&instance, back)?;
            out.push((
                "table".into(),
                state_batch(vec![("state".to_string(), states)], groups)?,
            ));
        }
        Ok(())
    }

    fn restore(&mut self, parts: &[Part]) -> ExecResult<()> {
        let find =
            |name: &'static str| parts.iter().filter(move |(n, _)| n == name).map(|(_, b)| b);
        let head = find("head")
            .next()
            .ok_or_else(|| ExecError::Internal("a UDF frame state without its head".into()))?;
        self.next_batch = state_value(head, "next_batch")? as u64;
        self.mode = match state_value(head, "mode")? {
            1 => Mode::Slide,
            2 => Mode::Recompute,
            _ => Mode::Unknown,
        };
        let ints = |b: &RecordBatch, name: &str| -> ExecResult<Vec<i64>> {
            b.column_by_name(name)
                .and_then(|c| c.as_primitive_opt::<Int64Type>())
                .map(|c| c.values().to_vec())
                .ok_or_else(|| {
                    ExecError::Internal(format!("a row window UDF state lacks '{name}'"))
                })
        };
        for frames in find("frames") {
            let (gid, bid, rid) = (
                ints(frames, "group")?,
                ints(frames, "batch")?,
                ints(frames, "row")?,
            );
            for ((g, b), r) in gid.into_iter().zip(bid).zip(rid) {
                let g = g as usize;
                if self.frames.len() <= g {
                    self.frames.resize_with(g + 1, VecDeque::new);
                }
                self.frames[g].push_back((b as u64, r as u32));
            }
        }
        for part in find("args") {
            if let Some(&id) = ints(part, "batch")?.first() {
                self.history.insert(id as u64, part.columns()[1..].to_vec());
            }
        }
        if let Some(part) = find("table").next() {
            let states = part
                .column_by_name("state")
                .cloned()
                .ok_or_else(|| ExecError::Internal("a UDF table without states".into()))?;
            let instance = self.instance()?;
            let mut i = runtime::lock(&instance);
            let table = runtime::checked(&instance, i.agg_new(&self.name))?;
            self.table = Some(table);
            let n = states.len();
            let ids: Vec<u32> = (0..n as u32).collect();
            let merged = i.agg_update(&self.name, table, &[states], &ids, n, true);
            runtime::checked(&instance, merged)?;
        }
        Ok(())
    }

    /// Batch ids of old worker `w` move past those of the workers before
    /// it; `mode` is the most settled (a worker that found the aggregate
    /// cannot retract decides); `table` rows (one per group) follow their
    /// groups, and are dropped when recomputing.
    fn split(&self, old: Vec<Vec<Part>>, remaps: &Remaps) -> ExecResult<Vec<Part>> {
        let (mut next, mut mode) = (0i64, 0i64);
        let (mut frames, mut args, mut tables) = (Vec::new(), Vec::new(), Vec::new());
        let mut tableless = false;
        for (parts, remap) in old.iter().zip(remaps) {
            let find =
                |name: &'static str| parts.iter().filter(move |(n, _)| n == name).map(|(_, b)| b);
            let head = find("head")
                .next()
                .ok_or_else(|| ExecError::Internal("a UDF frame state without its head".into()))?;
            let offset = next;
            next += state_value(head, "next_batch")?;
            mode = mode.max(state_value(head, "mode")?);
            let mut referenced = std::collections::BTreeSet::new();
            for f in find("frames") {
                let f = shift(&remap_ids(f, "group", remap)?, "batch", offset)?;
                referenced.extend(
                    f.column(1)
                        .as_primitive::<Int64Type>()
                        .values()
                        .iter()
                        .copied(),
                );
                frames.push(f);
            }
            for a in find("args") {
                let a = shift(a, "batch", offset)?;
                let id = a
                    .column(0)
                    .as_primitive::<Int64Type>()
                    .values()
                    .first()
                    .copied();
                if id.is_some_and(|id| referenced.contains(&id)) {
                    args.push(a);
                }
            }
            match find("table").next() {
                Some(t) => tables.push(keep_keyed_rows(t, remap)?),
                None => tableless |= remap.iter().any(Option::is_some),
            }
        }
        let one = |v: i64| Arc::new(Int64Array::from(vec![v])) as ArrayRef;
        let head = vec![
            ("next_batch".to_string(), one(next)),
            ("mode".to_string(), one(mode)),
        ];
        let mut out = vec![("head".to_string(), state_batch(head, 1)?)];
        if let Some(f) = concat(frames)? {
            out.push(("frames".into(), f));
        }
        out.extend(args.into_iter().map(|a| ("args".to_string(), a)));
        if mode != Mode::Recompute as i64 {
            if tableless {
                return Err(ExecError::Internal(
                    "a sliding UDF frame state without its table".into(),
                ));
            }
            if let Some(t) = concat(tables)? {
                out.push(("table".into(), t));
            }
        }
        Ok(out)
    }
}

/// `batch` with `offset` added to its BIGINT column `name`.
fn shift(batch: &RecordBatch, name: &str, offset: i64) -> ExecResult<RecordBatch> {
    let (i, _) = batch
        .schema()
        .column_with_name(name)
        .ok_or_else(|| ExecError::Internal(format!("a UDF frame state lacks '{name}'")))?;
    let values = batch
        .column(i)
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| {
            ExecError::Internal(format!("a UDF frame state's '{name}' is not BIGINT"))
        })?;
    let mut columns = batch.columns().to_vec();
    columns[i] = Arc::new(Int64Array::from_iter_values(
        values.values().iter().map(|v| v + offset),
    ));
    RecordBatch::try_new(batch.schema(), columns)
        .map_err(|e| ExecError::arrow("splitting a UDF frame state", e))
}
