//! Stream joins: rows of two inputs whose equi-join keys are equal and that
//! meet the rest of the condition. Input 0 (the left) is the chain's own
//! rows, input 1 the plan branch `right`; both arrive hashed by their keys,
//! so each partition worker joins the keys it owns.
//!
//! Each input's rows are kept (`side.rs`) until no row of the other input
//! can match them any more, which the join's [`JoinBound`] says:
//!
//! * **Interval** (`r.t BETWEEN l.t - a AND l.t + b`, Flink's interval
//!   join): a left row is kept until the right input's watermark passes
//!   `l.t + upper`, a right row until the left's passes `r.t - lower`.
//!   Rows are final: the output is append-only. The output watermark is
//!   held back by the interval so the joined rows are not late for either
//!   time column.
//! * **Window** (both inputs are window results joined on their
//!   `window_end`, Flink's window join): a row is kept until the other
//!   input's watermark passes its window's end (plus that input's allowed
//!   lateness), when the other window's rows are all in.
//! * **Regular** (equi-keys only): rows are kept forever, or until the
//!   watermark passes their event time plus a time-to-live (`SET
//!   'state.ttl'`), and then only pairs at most the TTL apart in event
//!   time match (see [`bound::within`]); the output is append-only for an inner
//!   join.
//! * **Lookup** (`JOIN t FOR SYSTEM_TIME AS OF ...`): the right input is a
//!   bounded table kept whole; left rows wait until it is read, then look
//!   it up once and are not kept.
//! * **Updating** (`updating.rs`): a regular join with a changelog input,
//!   or an outer join without a time bound; its output is a changelog.
//!
//! An outer join (LEFT / RIGHT / FULL, for the interval and window joins)
//! emits a kept row that never matched, padded with NULLs, when it expires —
//! before the watermark that expired it. When rows are kept for a time, a
//! row behind its own input's watermark (late) is dropped and counted as
//! late: whether it could still match would depend on how far the other
//! input has been read.

mod bound;
mod side;
mod updating;

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, UInt32Array, new_null_array};
use arrow::compute::{filter_record_batch, interleave, take};
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use crate::error::{ExecError, ExecResult};
use crate::exec::expr::{CompiledExpr, compile};
use crate::exec::grouped_state::{state_batch, state_value};
use crate::exec::operator::{Collector, Message, Operator, OperatorState};
use crate::plan::explain::Params;
use crate::plan::expr::Expr;
use crate::plan::physical::{BuildContext, NodeKind};
use crate::types::format_interval_ms;

pub use bound::{JoinBound, JoinKind};
use side::{Candidate, Side, one};
pub(crate) use updating::output_schema as updating_output_schema;

/// A join of the rows before it (left) and plan branch `right`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct JoinNode {
    /// The plan branch of the right input.
    pub right: usize,
    /// Which unmatched rows it emits.
    pub kind: JoinKind,
    /// How long rows are kept.
    pub bound: JoinBound,
    /// Equi-join keys over the left rows.
    pub left_keys: Vec<(Expr, String)>,
    /// The keys they equal, over the right rows.
    pub right_keys: Vec<(Expr, String)>,
    /// The rest of the condition, over the joined row (left columns, then right).
    pub filter: Option<Expr>,
    /// The right input's columns.
    #[serde(with = "crate::plan::serde_plan::schema")]
    pub right_schema: SchemaRef,
    /// Whether its output is a changelog (an input updates, or an outer
    /// join without a time bound pads rows that may match later).
    #[serde(default)]
    pub updating: bool,
}

impl JoinNode {
    fn joined(&self, left: &SchemaRef) -> SchemaRef {
        if self.updating {
            return updating::output_schema(left, &self.right_schema);
        }
        let fields: Vec<Field> = left
            .fields()
            .iter()
            .chain(self.right_schema.fields())
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect();
        Arc::new(Schema::new(fields))
    }
}

impl NodeKind for JoinNode {
    fn updating(&self, _input: bool) -> bool {
        self.updating
    }

    fn explain(&self) -> (&'static str, Params) {
        let keys: Vec<(Expr, String)> = self
            .left_keys
            .iter()
            .zip(&self.right_keys)
            .map(|((l, _), (r, _))| (l.clone(), format!("{l} = right.{r}")))
            .collect();
        let mut params = vec![
            ("kind".into(), self.kind.name().into()),
            ("right".into(), format!("#{}", self.right)),
            (
                "keys".into(),
                crate::plan::explain::list(keys.into_iter().map(|(_, k)| k)),
            ),
        ];
        match self.bound {
            JoinBound::Regular { ttl: None } => {
                params.push(("state".into(), "unbounded".into()));
            }
            JoinBound::Regular {
                ttl: Some((_, _, t)),
            } => {
                params.push(("state_ttl".into(), format_interval_ms(t)));
            }
            JoinBound::Interval { lower, upper, .. } => params.push((
                "interval".into(),
                format!("right.t - left.t in [{}, {}]", signed(lower), signed(upper)),
            )),
            JoinBound::Window { .. } => params.push(("window".into(), "window_end".into())),
            JoinBound::Lookup => {
                params.push(("lookup".into(), "the right table, read whole first".into()))
            }
            JoinBound::Columns { left, right, .. } => {
                let until = |side: &str, b: Option<(usize, i64)>, schema: &SchemaRef| match b {
                    Some((c, plus)) => format!(
                        "{side} until {}{}",
                        schema.field(c).name(),
                        if plus == 0 {
                            String::new()
                        } else {
                            format!(" + {}", signed(plus))
                        }
                    ),
                    None => format!("{side} unbounded"),
                };
                let _ = (left, right, until);
                params.push(("state".into(), "bounded by columns".into()));
            }
        }
        if let Some(f) = &self.filter {
            params.push(("condition".into(), f.to_string()));
        }
        ("Join", params)
    }

    fn output_schema(&self, input: &SchemaRef) -> SchemaRef {
        self.joined(input)
    }

    fn build(&self, ctx: &BuildContext<'_>) -> ExecResult<Option<Box<dyn Operator>>> {
        let compile_all = |keys: &[(Expr, String)]| -> ExecResult<Vec<CompiledExpr>> {
            keys.iter().map(|(e, _)| compile(e)).collect()
        };
        let types: Vec<_> = self
            .left_keys
            .iter()
            .map(|(e, _)| e.sql_type().to_arrow())
            .collect();
        if self.updating {
            let keys = arrow::row::RowConverter::new(
                types
                    .iter()
                    .map(|t| arrow::row::SortField::new(t.clone()))
                    .collect(),
            )
            .map_err(|e| ExecError::arrow("join keys", e))?;
            return Ok(Some(Box::new(updating::UpdatingJoinOp {
                kind: self.kind,
                inputs: [
                    updating::Input::new(ctx.input.clone(), compile_all(&self.left_keys)?)?,
                    updating::Input::new(
                        self.right_schema.clone(),
                        compile_all(&self.right_keys)?,
                    )?,
                ],
                keys,
                filter: self.filter.as_ref().map(compile).transpose()?,
                output: self.joined(ctx.input),
                clock: crate::exec::union::InputsClock::new(2),
            })));
        }
        let (left_expiry, right_expiry) = match self.bound {
            JoinBound::Regular { ttl: None } | JoinBound::Lookup => (None, None),
            JoinBound::Regular {
                ttl: Some((l, r, t)),
            } => (Some((l, t)), Some((r, t))),
            JoinBound::Interval {
                left_time,
                right_time,
                lower,
                upper,
            } => (
                Some((left_time, upper)),
                Some((right_time, lower.saturating_neg())),
            ),
            JoinBound::Window {
                left_end,
                right_end,
                left_lateness,
                right_lateness,
            } => (
                Some((left_end, right_lateness)),
                Some((right_end, left_lateness)),
            ),
            JoinBound::Columns { left, right, .. } => (left, right),
        };
        let left = Side::new(
            ctx.input.clone(),
            compile_all(&self.left_keys)?,
            types.clone(),
            left_expiry,
        )?;
        let right = Side::new(
            self.right_schema.clone(),
            compile_all(&self.right_keys)?,
            types,
            right_expiry,
        )?;
        Ok(Some(Box::new(JoinOp {
            times: match self.bound {
                JoinBound::Interval {
                    left_time,
                    right_time,
                    ..
                }
                | JoinBound::Columns {
                    left_time,
                    right_time,
                    ..
                }
                | JoinBound::Regular {
                    ttl: Some((left_time, right_time, _)),
                } => Some([left_time, right_time]),
                _ => None,
            },
            metrics: ctx.metrics.clone(),
            kind: self.kind,
            bound: self.bound,
            output: self.joined(ctx.input),
            filter: self.filter.as_ref().map(compile).transpose()?,
            sides: [left, right],
            watermarks: [i64::MIN; 2],
            emitted: i64::MIN,
            waiting: Vec::new(),
        })))
    }
}

fn signed(ms: i64) -> String {
    if ms < 0 {
        format!("-{}", format_interval_ms(ms.saturating_neg()))
    } else {
        format_interval_ms(ms)
    }
}

/// The join operator.
struct JoinOp {
    /// Each input's event-time column, when rows are kept for a time:
    /// a row behind its own input's watermark (late) is dropped, so what
    /// the join emits does not depend on how its inputs interleave.
    times: Option<[usize; 2]>,
    metrics: Arc<crate::exec::metrics::QueryMetrics>,
    kind: JoinKind,
    bound: JoinBound,
    output: SchemaRef,
    filter: Option<CompiledExpr>,
    sides: [Side; 2],
    watermarks: [i64; 2],
    emitted: i64,
    /// A lookup join's left rows that came before its table was read.
    waiting: Vec<RecordBatch>,
}

impl JoinOp {
    /// The watermark a side's rows expire by: the other input's.
    fn expiry_clock(&self, side: usize) -> i64 {
        match self.bound {
            JoinBound::Regular { .. } => self.watermarks[0].min(self.watermarks[1]),
            _ => self.watermarks[1 - side],
        }
    }

    /// The watermark of the joined rows.
    fn output_watermark(&self) -> i64 {
        let [l, r] = self.watermarks;
        match self.bound {
            JoinBound::Interval { lower, upper, .. } => l
                .saturating_add(lower.min(0))
                .min(r.saturating_sub(upper.max(0))),
            _ => l.min(r),
        }
    }

    /// Joined rows: row `left[i]` of `l` beside row `right[i]` of `r`
    /// (`None`: NULLs).
    fn assemble(&self, left: Vec<ArrayRef>, right: Vec<ArrayRef>) -> ExecResult<RecordBatch> {
        let columns = left.into_iter().chain(right).collect();
        RecordBatch::try_new(self.output.clone(), columns).map_err(|e| ExecError::arrow("join", e))
    }

    /// Rows of side `side` padded with NULLs for the other.
    fn padded(&self, side: usize, rows: &RecordBatch) -> ExecResult<RecordBatch> {
        let other = &self.sides[1 - side].schema;
        let nulls: Vec<ArrayRef> = other
            .fields()
            .iter()
            .map(|f| new_null_array(f.data_type(), rows.num_rows()))
            .collect();
        if side == 0 {
            self.assemble(rows.columns().to_vec(), nulls)
        } else {
            self.assemble(nulls, rows.columns().to_vec())
        }
    }

    fn probe(&mut self, side: usize, batch: RecordBatch, out: &mut Collector) -> ExecResult<()> {
        let lookup = self.bound == JoinBound::Lookup && side == 0;
        if lookup && self.watermarks[1] < i64::MAX {
            self.waiting.push(batch);
            return Ok(());
        }
        let batch = self.drop_late(side, batch)?;
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let encoded = self.sides[side].encode(&batch)?;
        let mut candidates: Vec<Candidate> = Vec::new();
        self.sides[1 - side].lookup(&encoded.0, &encoded.1, &mut candidates);
        let mut matched = vec![false; n];
        if !candidates.is_empty() {
            let joined = self.candidates(side, &batch, &candidates)?;
            // NULL is not TRUE: evaluate_predicate's mask has no NULLs
            let mut mask = match &self.filter {
                Some(f) => f.evaluate_predicate(&joined)?,
                None => BooleanArray::from(vec![true; joined.num_rows()]),
            };
            if let JoinBound::Regular {
                ttl: Some((l, r, t)),
            } = self.bound
            {
                mask = bound::within(
                    &joined,
                    l,
                    self.sides[0].schema.fields().len() + r,
                    t,
                    &mask,
                )?;
            }
            for (c, ok) in candidates.iter().zip(mask.values().iter()) {
                if ok {
                    matched[c.probe as usize] = true;
                    self.sides[1 - side].mark(c.kept, c.row);
                }
            }
            let rows =
                filter_record_batch(&joined, &mask).map_err(|e| ExecError::arrow("join", e))?;
            if rows.num_rows() > 0 {
                out.push(Message::Batch(rows));
            }
        }
        if lookup {
            // a row that looked the table up is done
            let lonely = BooleanArray::from(matched.iter().map(|m| !m).collect::<Vec<_>>());
            if self.kind.pads(0) && lonely.true_count() > 0 {
                let rows = filter_record_batch(&batch, &lonely)
                    .map_err(|e| ExecError::arrow("join", e))?;
                out.push(Message::Batch(self.padded(0, &rows)?));
            }
            return Ok(());
        }
        self.sides[side].keep(batch, encoded, matched)?;
        // a row already expired on arrival can match nothing more
        let clock = self.expiry_clock(side);
        for lonely in self.sides[side].expire(clock, self.kind.pads(side))? {
            let rows = self.padded(side, &lonely)?;
            out.push(Message::Batch(rows));
        }
        Ok(())
    }

    /// `batch` without the rows behind input `side`'s watermark (counted
    /// as late); rows without a time are kept (they match in no interval).
    fn drop_late(&self, side: usize, batch: RecordBatch) -> ExecResult<RecordBatch> {
        let (Some(times), w) = (self.times, self.watermarks[side]) else {
            return Ok(batch);
        };
        if w == i64::MIN {
            return Ok(batch);
        }
        let t = batch
            .column(times[side])
            .as_any()
            .downcast_ref::<arrow::array::TimestampMillisecondArray>()
            .ok_or_else(|| ExecError::Internal("a join time column is not a TIMESTAMP".into()))?;
        let keep: BooleanArray = (0..t.len())
            .map(|i| Some(t.is_null(i) || t.value(i) >= w))
            .collect();
        let late = keep.false_count();
        if late == 0 {
            return Ok(batch);
        }
        crate::exec::metrics::QueryMetrics::add(&self.metrics.late_rows, late as u64);
        filter_record_batch(&batch, &keep).map_err(|e| ExecError::arrow("join", e))
    }

    /// Every candidate pair as a joined row.
    fn candidates(
        &self,
        side: usize,
        batch: &RecordBatch,
        candidates: &[Candidate],
    ) -> ExecResult<RecordBatch> {
        let probe_idx = UInt32Array::from_iter_values(candidates.iter().map(|c| c.probe));
        let probe_cols = batch
            .columns()
            .iter()
            .map(|c| take(c.as_ref(), &probe_idx, None).map_err(|e| ExecError::arrow("join", e)))
            .collect::<ExecResult<Vec<_>>>()?;
        // the kept batches involved, and each candidate's (batch, row) in them
        let mut ids: Vec<u64> = candidates.iter().map(|c| c.kept).collect();
        ids.sort_unstable();
        ids.dedup();
        let other = &self.sides[1 - side];
        let batches: Vec<&RecordBatch> = ids
            .iter()
            .map(|&id| {
                other
                    .batch(id)
                    .ok_or_else(|| ExecError::Internal("a join row vanished".into()))
            })
            .collect::<ExecResult<_>>()?;
        let picks: Vec<(usize, usize)> = candidates
            .iter()
            .map(|c| (ids.binary_search(&c.kept).unwrap_or(0), c.row as usize))
            .collect();
        let kept_cols = (0..other.schema.fields().len())
            .map(|col| {
                let arrays: Vec<&dyn arrow::array::Array> =
                    batches.iter().map(|b| b.column(col).as_ref()).collect();
                interleave(&arrays, &picks).map_err(|e| ExecError::arrow("join", e))
            })
            .collect::<ExecResult<Vec<_>>>()?;
        if side == 0 {
            self.assemble(probe_cols, kept_cols)
        } else {
            self.assemble(kept_cols, probe_cols)
        }
    }

    fn advance(&mut self, port: usize, watermark: i64, out: &mut Collector) -> ExecResult<()> {
        let Some(w) = self.watermarks.get_mut(port) else {
            return Ok(());
        };
        if watermark <= *w {
            return Ok(());
        }
        *w = watermark;
        if port == 1 && watermark == i64::MAX {
            // a lookup join's table is read: the rows waiting for it go
            for b in std::mem::take(&mut self.waiting) {
                self.probe(0, b, out)?;
            }
        }
        // expire first: an outer row goes out before the watermark passes it
        for side in 0..2 {
            let clock = self.expiry_clock(side);
            for lonely in self.sides[side].expire(clock, self.kind.pads(side))? {
                let rows = self.padded(side, &lonely)?;
                out.push(Message::Batch(rows));
            }
        }
        let w = self.output_watermark();
        if w > self.emitted && w < i64::MAX {
            self.emitted = w;
            out.push(Message::Watermark(w));
        }
        Ok(())
    }
}

impl Operator for JoinOp {
    fn name(&self) -> &'static str {
        "join"
    }

    fn process_batch(&mut self, batch: RecordBatch, out: &mut Collector) -> ExecResult<()> {
        self.probe(0, batch, out)
    }

    fn process_input(
        &mut self,
        port: usize,
        batch: RecordBatch,
        out: &mut Collector,
    ) -> ExecResult<()> {
        self.probe(port.min(1), batch, out)
    }

    fn handle_watermark(&mut self, watermark: i64, out: &mut Collector) -> ExecResult<()> {
        self.advance(0, watermark, out)
    }

    fn handle_input_watermark(
        &mut self,
        port: usize,
        watermark: i64,
        out: &mut Collector,
    ) -> ExecResult<()> {
        self.advance(port, watermark, out)
    }

    fn retained_event_time(&self) -> Option<i64> {
        (self.sides.iter().any(|s| s.rows() > 0)).then_some(i64::MIN)
    }

    fn snapshot(&mut self) -> ExecResult<OperatorState> {
        let mut state = OperatorState::default();
        let clock = vec![
            ("left".to_string(), one(self.watermarks[0])),
            ("right".to_string(), one(self.watermarks[1])),
            ("emitted".to_string(), one(self.emitted)),
        ];
        state.push("clock", state_batch(clock, 1)?);
        for (name, side) in ["left", "right"].into_iter().zip(&self.sides) {
            if let Some(rows) = side.snapshot()? {
                state.push(name, rows);
            }
        }
        // with their key values, so a restore on other workers splits them
        for b in &self.waiting {
            let mut columns: Vec<(String, arrow::array::ArrayRef)> = Vec::new();
            for (i, k) in self.sides[0].key_columns(b)?.into_iter().enumerate() {
                columns.push((format!("key{i}"), k));
            }
            for (i, c) in b.columns().iter().enumerate() {
                columns.push((format!("c{i}"), c.clone()));
            }
            state.push("waiting", state_batch(columns, b.num_rows())?);
        }
        Ok(state)
    }

    fn restore(&mut self, state: OperatorState) -> ExecResult<()> {
        if let Some(clock) = state.parts("clock").next() {
            self.watermarks = [state_value(clock, "left")?, state_value(clock, "right")?];
            self.emitted = state_value(clock, "emitted")?;
        }
        for (s, name) in ["left", "right"].into_iter().enumerate() {
            for part in state.parts(name) {
                self.sides[s].restore(part)?;
            }
        }
        let keys = self.sides[0].keys.len();
        for part in state.parts("waiting") {
            let columns = part.columns().get(keys..).unwrap_or_default().to_vec();
            self.waiting.push(
                RecordBatch::try_new(self.sides[0].schema.clone(), columns)
                    .map_err(|e| ExecError::arrow("join restore", e))?,
            );
        }
        Ok(())
    }

    fn rescalable(&self) -> bool {
        true
    }

    fn on_close(&mut self, out: &mut Collector) -> ExecResult<()> {
        // the end of both inputs: every kept row has had all its chances
        self.watermarks[1] = i64::MAX;
        for b in std::mem::take(&mut self.waiting) {
            self.probe(0, b, out)?;
        }
        for side in 0..2 {
            for lonely in self.sides[side].expire(i64::MAX, self.kind.pads(side))? {
                let rows = self.padded(side, &lonely)?;
                out.push(Message::Batch(rows));
            }
        }
        Ok(())
    }
}
