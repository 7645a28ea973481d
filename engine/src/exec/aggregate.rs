//! Grouped aggregation state shared by the window operators, and the
//! non-windowed GROUP BY operator (emits when its input ends).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;

use crate::agg::{Accumulator, create_accumulator};
use crate::error::{ExecError, ExecResult};
use crate::exec::changelog::ChangeTracker;
use crate::exec::expr::{CompiledExpr, compile};
use crate::exec::group_table::GroupTable;
pub(crate) use crate::exec::grouped_state::{Frozen, GroupedState, state_batch, state_value};
pub(crate) use crate::exec::late::{Rejects, time_column};
use crate::exec::operator::{Collector, Message, Operator, OperatorState};
use crate::exec::ttl::{CLOCK_PART, Expiry};
use crate::plan::explain::{Params, aggs, named};
use crate::plan::expr::Expr;
use crate::plan::logical::{AggregateCall, EmitMode, aggregate_schema};
use crate::plan::physical::{BuildContext, NodeKind};

/// Aggregation without a window: a changelog after every batch (EMIT
/// CHANGES, the default) or one row per group when the input ends.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct GlobalAggregateNode {
    /// Group keys.
    pub keys: Vec<(Expr, String)>,
    /// Aggregates.
    pub aggs: Vec<AggregateCall>,
    /// Emit mode.
    pub emit: EmitMode,
    /// A group not updated for this many ms of event time is dropped.
    #[serde(default)]
    pub ttl: Option<i64>,
}

impl NodeKind for GlobalAggregateNode {
    fn updating(&self, _input: bool) -> bool {
        self.emit == EmitMode::Changes
    }

    fn explain(&self) -> (&'static str, Params) {
        let emit = match self.emit {
            EmitMode::Final => "FINAL (at end of input)",
            EmitMode::Changes => "CHANGES",
        };
        let mut params = vec![
            ("keys".into(), named(&self.keys)),
            ("aggs".into(), aggs(&self.aggs)),
            ("emit".into(), emit.into()),
        ];
        match self.ttl {
            Some(t) => params.push(("state_ttl".into(), crate::types::format_interval_ms(t))),
            // no window ends a group
            None if !self.keys.is_empty() => params.push(("state".into(), "unbounded".into())),
            None => {}
        }
        ("GroupAggregate", params)
    }

    fn output_schema(&self, _input: &SchemaRef) -> SchemaRef {
        aggregate_schema(false, &self.keys, &self.aggs, self.emit)
    }

    fn build(&self, ctx: &BuildContext<'_>) -> ExecResult<Option<Box<dyn Operator>>> {
        let spec = AggregateSpec::new(&self.keys, &self.aggs, self.output_schema(ctx.input))?;
        let mut op = GroupAggregateOp::new(spec, self.emit)?;
        op.state_limit = ctx.state_limit;
        op.idle = self.ttl.map(|t| Idle {
            expiry: Expiry::new(t),
            stamps: Vec::new(),
        });
        Ok(Some(Box::new(op)))
    }
}

/// The compiled key and argument expressions of an aggregate, and what it needs
/// to create state.
pub(crate) struct AggregateSpec {
    keys: Vec<CompiledExpr>,
    key_types: Vec<DataType>,
    /// Per call, the expressions evaluated on input rows (none for COUNT(*)).
    args: Vec<Vec<CompiledExpr>>,
    calls: Vec<AggregateCall>,
    /// Output schema: [window_start, window_end,] keys, aggregates.
    pub schema: SchemaRef,
}

/// Key and argument columns evaluated for one batch.
pub(crate) struct Evaluated {
    pub keys: Vec<ArrayRef>,
    pub args: Vec<Vec<ArrayRef>>,
    pub rows: usize,
}

impl Evaluated {
    /// The argument columns of the rows at `indices` only (keys left out).
    pub fn take_args(&self, indices: &UInt32Array) -> ExecResult<Evaluated> {
        let t = |a: &ArrayRef| {
            take(a.as_ref(), indices, None).map_err(|e| ExecError::arrow("aggregate", e))
        };
        Ok(Evaluated {
            keys: vec![],
            args: self
                .args
                .iter()
                .map(|v| v.iter().map(t).collect::<ExecResult<_>>())
                .collect::<ExecResult<_>>()?,
            rows: indices.len(),
        })
    }

    /// Rows `offset..offset + len` of the arguments (keys left out), without copying.
    pub fn slice(&self, offset: usize, len: usize) -> Evaluated {
        Evaluated {
            keys: vec![],
            args: self
                .args
                .iter()
                .map(|v| v.iter().map(|a| a.slice(offset, len)).collect())
                .collect(),
            rows: len,
        }
    }

    /// The rows at `indices` only.
    pub fn take(&self, indices: &UInt32Array) -> ExecResult<Evaluated> {
        let t = |a: &ArrayRef| {
            take(a.as_ref(), indices, None).map_err(|e| ExecError::arrow("aggregate", e))
        };
        Ok(Evaluated {
            keys: self.keys.iter().map(t).collect::<ExecResult<_>>()?,
            args: self
                .args
                .iter()
                .map(|v| v.iter().map(t).collect::<ExecResult<_>>())
                .collect::<ExecResult<_>>()?,
            rows: indices.len(),
        })
    }
}

impl AggregateSpec {
    /// Compiles keys and arguments.
    ///
    /// # Errors
    /// An expression that cannot be compiled.
    pub fn new(
        keys: &[(Expr, String)],
        calls: &[AggregateCall],
        schema: SchemaRef,
    ) -> ExecResult<Self> {
        Ok(Self {
            keys: keys
                .iter()
                .map(|(e, _)| compile(e))
                .collect::<ExecResult<_>>()?,
            key_types: keys.iter().map(|(e, _)| e.sql_type().to_arrow()).collect(),
            args: calls
                .iter()
                .map(|c| c.inputs().into_iter().map(compile).collect())
                .collect::<ExecResult<_>>()?,
            calls: calls.to_vec(),
            schema,
        })
    }

    /// Evaluates keys and arguments over a batch.
    ///
    /// # Errors
    /// An evaluation failure.
    pub fn evaluate(&self, batch: &RecordBatch) -> ExecResult<Evaluated> {
        Ok(Evaluated {
            keys: self
                .keys
                .iter()
                .map(|k| k.evaluate(batch))
                .collect::<ExecResult<_>>()?,
            args: self
                .args
                .iter()
                .map(|a| a.iter().map(|e| e.evaluate(batch)).collect())
                .collect::<ExecResult<_>>()?,
            rows: batch.num_rows(),
        })
    }

    /// Empty state grouped by the given key types instead of the query's keys.
    ///
    /// # Errors
    /// Unsupported key or argument types (a planner bug).
    pub fn new_state_keyed_by(&self, key_types: &[DataType]) -> ExecResult<GroupedState> {
        let mut s = self.new_state()?;
        s.groups = GroupTable::new(key_types)?;
        Ok(s)
    }

    /// The query's key types.
    pub fn key_types(&self) -> &[DataType] {
        &self.key_types
    }

    /// Empty state for one window (or the whole stream).
    ///
    /// # Errors
    /// Unsupported key or argument types (a planner bug).
    pub fn new_state(&self) -> ExecResult<GroupedState> {
        Ok(GroupedState {
            groups: GroupTable::new(&self.key_types)?,
            accumulators: self
                .calls
                .iter()
                .map(|c| match &c.udaf {
                    // the table lives in this thread's instance of the module
                    Some(u) => Ok(Box::new(crate::agg::wasm::WasmAccumulator::new(
                        crate::udf::runtime::instance(&u.udf.module)?,
                        &u.udf.signature.name,
                        c.ret,
                    )?) as Box<dyn Accumulator>),
                    None => create_accumulator(c.func, c.arg.as_ref().map(Expr::sql_type)),
                })
                .collect::<ExecResult<_>>()?,
            group_ids: Vec::new(),
            changes: None,
        })
    }

    /// Empty state that records its changes for EMIT CHANGES.
    ///
    /// # Errors
    /// Unsupported key or argument types (a planner bug).
    pub fn new_tracked_state(&self) -> ExecResult<GroupedState> {
        let mut s = self.new_state()?;
        s.changes = Some(ChangeTracker::default());
        Ok(s)
    }
}

/// GROUP BY without a window: one state for the whole input. Under EMIT
/// CHANGES a changelog after every batch; under EMIT FINAL one row per group
/// when the input ends.
pub(crate) struct GroupAggregateOp {
    spec: AggregateSpec,
    state: Option<GroupedState>,
    emit: EmitMode,
    /// Whether any changelog row has been emitted.
    emitted: bool,
    /// The most bytes of state it may hold, checked whenever the groups
    /// grew by a quarter (some accumulators count their bytes group by
    /// group, so checking every batch would cost quadratic time).
    state_limit: Option<u64>,
    check_at_groups: usize,
    /// Under `SET 'state.ttl'`: when each group was last updated.
    idle: Option<Idle>,
}

/// The idle-state expiry of an aggregate without a window.
struct Idle {
    expiry: Expiry,
    /// Per group id, the watermark at its last update.
    stamps: Vec<i64>,
}

impl GroupAggregateOp {
    pub fn new(spec: AggregateSpec, emit: EmitMode) -> ExecResult<Self> {
        let state = Some(match emit {
            EmitMode::Final => spec.new_state()?,
            EmitMode::Changes => spec.new_tracked_state()?,
        });
        Ok(Self {
            spec,
            state,
            emit,
            emitted: false,
            state_limit: None,
            check_at_groups: 1024,
            idle: None,
        })
    }

    /// Drops the groups idle past the cutoff: the kept ones are copied
    /// into a fresh state through a snapshot (group ids are dense, so a
    /// group cannot be taken out in place). Their changes were all emitted.
    fn expire(&mut self, cutoff: i64) -> ExecResult<()> {
        let (Some(idle), Some(state)) = (&mut self.idle, &mut self.state) else {
            return Ok(());
        };
        let keep: Vec<bool> = idle
            .stamps
            .iter()
            .map(|&s| !idle.expiry.expired(s, cutoff))
            .collect();
        if keep.iter().all(|&k| k) {
            return Ok(());
        }
        let mask = arrow::array::BooleanArray::from(keep);
        let kept = arrow::compute::filter_record_batch(&state.snapshot(Vec::new())?, &mask)
            .map_err(|e| ExecError::arrow("state ttl", e))?;
        let mut fresh = match self.emit {
            EmitMode::Final => self.spec.new_state()?,
            EmitMode::Changes => self.spec.new_tracked_state()?,
        };
        fresh.restore(&kept, 0)?;
        *state = fresh;
        idle.stamps = idle
            .stamps
            .iter()
            .zip(mask.values())
            .filter_map(|(&s, k)| k.then_some(s))
            .collect();
        Ok(())
    }

    /// Under EMIT CHANGES, the changelog of the last batch.
    fn emit_changes(&mut self, out: &mut Collector) -> ExecResult<()> {
        let schema = self.spec.schema.clone();
        if let Some(b) = self.state()?.take_changes(|_| vec![], &schema)? {
            self.emitted = true;
            out.push(Message::Batch(b));
        }
        Ok(())
    }

    /// The state, or an error once the input has ended.
    fn state(&mut self) -> ExecResult<&mut GroupedState> {
        self.state
            .as_mut()
            .ok_or_else(|| ExecError::Internal("group aggregate received rows after close".into()))
    }
}

impl Operator for GroupAggregateOp {
    fn name(&self) -> &'static str {
        "group_aggregate"
    }

    /// Parts: `groups` (see [`GroupedState::snapshot`]; under a TTL led
    /// by each group's `stamp`), `emitted` (one row: whether a changelog
    /// row has been emitted) and, under a TTL, its clock (`ttl_clock`).
    fn snapshot(&mut self) -> ExecResult<OperatorState> {
        let mut out = OperatorState::default();
        if let Some(state) = &mut self.state {
            let prefix = match &self.idle {
                Some(idle) => vec![(
                    "stamp".to_string(),
                    Arc::new(Int64Array::from(idle.stamps.clone())) as ArrayRef,
                )],
                None => Vec::new(),
            };
            out.push("groups", state.snapshot(prefix)?);
        }
        if let Some(idle) = &self.idle {
            out.push(CLOCK_PART, idle.expiry.snapshot()?);
        }
        let emitted = Arc::new(arrow::array::BooleanArray::from(vec![self.emitted])) as ArrayRef;
        out.push(
            "emitted",
            state_batch(vec![("emitted".into(), emitted)], 1)?,
        );
        Ok(out)
    }

    fn restore(&mut self, state: OperatorState) -> ExecResult<()> {
        // one per old worker when the state moved to another number of them
        self.emitted = state
            .parts("emitted")
            .any(|p| p.column(0).as_boolean_opt().is_some_and(|b| b.value(0)));
        if let (Some(idle), Some(clock)) = (&mut self.idle, state.parts(CLOCK_PART).next()) {
            idle.expiry.restore(clock)?;
        }
        let skip = usize::from(self.idle.is_some());
        for groups in state.parts("groups") {
            self.state()?.restore(groups, skip)?;
            if let Some(idle) = &mut self.idle {
                let stamps = groups
                    .column(0)
                    .as_primitive_opt::<arrow::datatypes::Int64Type>()
                    .ok_or_else(|| {
                        ExecError::Internal("an aggregate state lacks its stamps".into())
                    })?;
                idle.stamps.extend(stamps.values().iter());
            }
        }
        Ok(())
    }

    fn rescalable(&self) -> bool {
        true
    }

    fn handle_watermark(&mut self, watermark: i64, out: &mut Collector) -> ExecResult<()> {
        if let Some(cutoff) = self.idle.as_mut().and_then(|i| i.expiry.advance(watermark)) {
            self.expire(cutoff)?;
        }
        out.push(Message::Watermark(watermark));
        Ok(())
    }

    fn retained_event_time(&self) -> Option<i64> {
        // a changelog has emitted every row's effect; a final result holds
        // every row until the input ends
        match (&self.state, self.emit) {
            (Some(s), EmitMode::Final) if s.len() > 0 => Some(i64::MIN),
            _ => None,
        }
    }

    fn process_batch(&mut self, batch: RecordBatch, out: &mut Collector) -> ExecResult<()> {
        let rows = self.spec.evaluate(&batch)?;
        let state = self.state.as_mut().ok_or_else(|| {
            ExecError::Internal("group aggregate received rows after close".into())
        })?;
        state.update(&rows)?;
        let groups = state.len();
        if let Some(idle) = &mut self.idle {
            let now = idle.expiry.now();
            idle.stamps.resize(groups, now);
            for &g in &state.group_ids {
                idle.stamps[g as usize] = now;
            }
        }
        if let Some(limit) = self.state_limit
            && groups >= self.check_at_groups
        {
            self.check_at_groups = groups + groups / 4 + 1;
            let bytes = self.state()?.size() as u64;
            if bytes > limit {
                return Err(ExecError::StateLimit {
                    operator: "group_aggregate".into(),
                    bytes,
                    held: format!("{groups} groups"),
                    limit,
                });
            }
        }
        self.emit_changes(out)
    }

    fn on_close(&mut self, out: &mut Collector) -> ExecResult<()> {
        let Some(mut state) = self.state.take() else {
            return Ok(());
        };
        // SQL: an aggregate without GROUP BY yields one row even on empty input
        let empty_global = self.spec.keys.is_empty() && state.len() == 0;
        if empty_global {
            state.groups.intern(&[], 1, &mut state.group_ids)?;
        }
        match self.emit {
            EmitMode::Final if state.len() > 0 => {
                out.push(Message::Batch(state.finish(vec![], &self.spec.schema)?));
            }
            EmitMode::Changes if empty_global && !self.emitted => {
                state.track(1)?;
                if let Some(b) = state.take_changes(|_| vec![], &self.spec.schema)? {
                    out.push(Message::Batch(b));
                }
            }
            _ => {}
        }
        Ok(())
    }
}
