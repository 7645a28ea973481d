//! Window aggregation: one plan node ([`WindowAggregateNode`]) and one
//! operator ([`WindowAggregateOp`]) for every kind of window. What differs
//! between kinds — how rows are assigned to windows, how state is held, when
//! a window is complete — is a [`WindowAssigner`]; what they share — the
//! event clock, late rows, closing on watermarks and at the end of input,
//! state metrics, snapshots — is written once here.
//!
//! A window kind is one file (`tumble.rs`, `hop.rs`, `session.rs`): its
//! parameters (a serialisable struct implementing [`WindowKind`]), its SQL
//! forms ([`WindowSyntax`]) and its assigner; and one line in
//! [`window_kinds!`] below. The planner, EXPLAIN, plan JSON and the runtime
//! find it there.

pub(crate) mod hop;
pub(crate) mod session;
pub(crate) mod tumble;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use arrow::array::{ArrayRef, TimestampMillisecondArray, UInt32Array};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::error::{ExecError, ExecResult};
use crate::exec::aggregate::{AggregateSpec, Evaluated, Rejects, time_column};
use crate::exec::metrics::QueryMetrics;
use crate::exec::operator::{Collector, Message, Operator, OperatorState};
use crate::plan::explain::{Params, aggs, named, with_emit};
use crate::plan::expr::Expr;
use crate::plan::expr::ScalarFunc;
use crate::plan::logical::{AggregateCall, EmitMode, Lateness, aggregate_schema};
use crate::plan::physical::{BuildContext, NodeKind};

/// Declares the window kinds: the serialisable [`Window`] enum (one
/// variant per kind), its dispatch, and [`WINDOW_SYNTAX`].
macro_rules! window_kinds {
    ($($(#[$doc:meta])* $variant:ident($ty:ty),)*) => {
        /// A window kind with its parameters; it travels in plans.
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        pub enum Window {
            $($(#[$doc])* $variant($ty),)*
        }

        impl Window {
            /// The kind's behaviour.
            pub(crate) fn kind(&self) -> &dyn WindowKind {
                match self {
                    $(Self::$variant(w) => w,)*
                }
            }
        }

        /// The SQL forms of every window kind, in declaration order.
        pub(crate) const WINDOW_SYNTAX: &[&WindowSyntax] = &[$(&<$ty>::SYNTAX,)*];
    };
}

window_kinds! {
    /// `TUMBLE(stream, time, size)`: fixed, non-overlapping windows.
    Tumble(tumble::Tumble),
    /// `HOP(stream, time, slide, size)`: overlapping windows.
    Hop(hop::Hop),
    /// `SESSION(stream, time, gap)`: per key, rows closer than the gap.
    Session(session::Session),
}

/// How SQL writes a window kind: as a table function in FROM
/// (`TUMBLE(bids, date_time, INTERVAL '10' SECOND)`) and as the shorthand
/// clause `GROUP BY k WINDOW TUMBLING(INTERVAL '10' SECOND)`.
pub(crate) struct WindowSyntax {
    /// The table function's name.
    pub function: &'static str,
    /// Its INTERVAL arguments after the stream and the time column, by name.
    pub function_args: &'static [&'static str],
    /// The hint for a wrong call.
    pub function_usage: &'static str,
    /// The shorthand clause's name.
    pub clause: &'static str,
    /// Its INTERVAL arguments: (name, position in `function_args`).
    pub clause_args: &'static [(&'static str, usize)],
    /// The hint for a wrong clause.
    pub clause_usage: &'static str,
    /// The window from its arguments (positive ms), in `function_args` order.
    pub make: fn(&[i64]) -> Window,
}

impl WindowSyntax {
    /// The kind whose table function is `name` (any case).
    pub(crate) fn function(name: &str) -> Option<&'static WindowSyntax> {
        WINDOW_SYNTAX
            .iter()
            .copied()
            .find(|s| s.function.eq_ignore_ascii_case(name))
    }

    /// The kind whose shorthand clause is `name` (any case).
    pub(crate) fn clause(name: &str) -> Option<&'static WindowSyntax> {
        WINDOW_SYNTAX
            .iter()
            .copied()
            .find(|s| s.clause.eq_ignore_ascii_case(name))
    }

    /// `HOP(stream, time_column, slide, size)`.
    pub(crate) fn function_signature(&self) -> String {
        let mut args = vec!["stream", "time_column"];
        args.extend(self.function_args);
        format!("{}({})", self.function, args.join(", "))
    }

    /// `WINDOW SLIDING(size, advance)`.
    pub(crate) fn clause_signature(&self) -> String {
        let args: Vec<&str> = self.clause_args.iter().map(|(n, _)| *n).collect();
        format!("WINDOW {}({})", self.clause, args.join(", "))
    }
}

/// The most windows one row may fall into (`HOP` size / slide).
pub const MAX_WINDOWS_PER_ROW: i64 = 1000;
/// The most panes a hopping window may be made of (size / gcd(size, slide)):
/// each closing window merges that many.
pub const MAX_PANES_PER_WINDOW: i64 = 100_000;

/// What a window kind knows about itself; one implementation per kind file.
pub(crate) trait WindowKind {
    /// EXPLAIN's name for an aggregate over this window.
    fn explain_name(&self) -> &'static str;

    /// Whether the window's geometry is within the limits: `Err((what is
    /// wrong, hint))` when one row would fall into too many windows.
    fn check_limits(&self) -> Result<(), (String, String)> {
        Ok(())
    }

    /// EXPLAIN parameters of the window itself (between `time` and `keys`).
    fn explain_params(&self, emit: EmitMode) -> Params;

    /// For a window whose rows each fall in exactly one window known from
    /// the row alone (tumbling): the `window_start` and `window_end` of a
    /// row, so a query over the table function may read them without
    /// aggregating.
    fn row_bounds(&self) -> Option<(ScalarFunc, ScalarFunc)> {
        None
    }

    /// The assigner that runs this window.
    ///
    /// # Errors
    /// Key types its state cannot hold.
    fn assigner(
        &self,
        spec: AggregateSpec,
        emit: EmitMode,
        metrics: &Arc<QueryMetrics>,
    ) -> ExecResult<Box<dyn WindowAssigner>>;
}

/// The part of a window aggregate that differs between window kinds: where
/// rows go, how their state is held and when a window is done.
pub(crate) trait WindowAssigner: Send {
    /// Short name for metrics (`tumbling_aggregate`).
    fn name(&self) -> &'static str;

    /// The compiled keys and aggregates.
    fn spec(&self) -> &AggregateSpec;

    /// Aggregates a batch's rows into their windows. `times` is the event
    /// time of each row; a row without one, or too late for every window it
    /// belongs to, is reported to `clock` instead (which also tells the
    /// watermark and the close point).
    ///
    /// # Errors
    /// An aggregation failure.
    fn add(
        &mut self,
        times: &TimestampMillisecondArray,
        rows: Evaluated,
        clock: &mut Rejects,
    ) -> ExecResult<()>;

    /// Under EMIT CHANGES, the changelog rows of what the last `add` changed.
    ///
    /// # Errors
    /// An Arrow failure.
    fn changes(&mut self, out: &mut Collector) -> ExecResult<()>;

    /// Closes every window ending at or before `until`, in order; under
    /// EMIT FINAL each one's rows are emitted, and its state is released.
    ///
    /// # Errors
    /// A failure while finishing the aggregates.
    fn close_until(&mut self, until: i64, out: &mut Collector) -> ExecResult<()>;

    /// (bytes of state held, open windows), for the metrics.
    fn held(&self) -> (usize, usize);

    /// How many batches pass between two [`Self::held`] readings (1 when
    /// reading it is cheap: then it is also read after every close).
    fn report_every(&self) -> u64 {
        1
    }

    /// Adds the state's parts to a snapshot (the operator adds the clock).
    ///
    /// # Errors
    /// An Arrow failure.
    fn snapshot(&mut self, out: &mut OperatorState) -> ExecResult<()>;

    /// Loads the parts [`Self::snapshot`] wrote into this fresh assigner.
    ///
    /// # Errors
    /// A snapshot of another kind of window.
    fn restore(&mut self, state: &OperatorState) -> ExecResult<()>;

    /// The earliest event time of a row still held (see
    /// [`Operator::retained_event_time`]).
    fn retained_event_time(&self) -> Option<i64>;

    /// See [`Operator::rescalable`].
    fn rescalable(&self) -> bool {
        false
    }
}

/// An aggregate over windows: group keys, aggregates, the window, the
/// emit mode and late-row handling.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct WindowAggregateNode {
    /// Event-time column.
    pub time_column: usize,
    /// Its name.
    pub time_name: String,
    /// The window kind and its parameters.
    pub window: Window,
    /// Group keys.
    pub keys: Vec<(Expr, String)>,
    /// Aggregates.
    pub aggs: Vec<AggregateCall>,
    /// Emit mode.
    pub emit: EmitMode,
    /// Late-row handling.
    pub lateness: Lateness,
}

impl NodeKind for WindowAggregateNode {
    fn updating(&self, _input: bool) -> bool {
        self.emit == EmitMode::Changes
    }

    fn explain(&self) -> (&'static str, Params) {
        let mut params = vec![("time".to_string(), self.time_name.clone())];
        params.extend(self.window.kind().explain_params(self.emit));
        params.push(("keys".into(), named(&self.keys)));
        params.push(("aggs".into(), aggs(&self.aggs)));
        (
            self.window.kind().explain_name(),
            with_emit(params, self.emit, &self.lateness),
        )
    }

    fn output_schema(&self, _input: &SchemaRef) -> SchemaRef {
        aggregate_schema(true, &self.keys, &self.aggs, self.emit)
    }

    fn build(&self, ctx: &BuildContext<'_>) -> ExecResult<Option<Box<dyn Operator>>> {
        let spec = AggregateSpec::new(&self.keys, &self.aggs, self.output_schema(ctx.input))?;
        let assigner = self.window.kind().assigner(spec, self.emit, ctx.metrics)?;
        Ok(Some(Box::new(
            WindowAggregateOp::new(
                assigner,
                self.time_column,
                self.lateness,
                ctx.metrics.clone(),
            )
            .with_state_limit(ctx.state_limit),
        )))
    }
}

/// The window aggregate operator: the shared clock, late-row and close
/// logic around a kind's [`WindowAssigner`].
pub(crate) struct WindowAggregateOp {
    assigner: Box<dyn WindowAssigner>,
    time_column: usize,
    clock: Rejects,
    metrics: Arc<QueryMetrics>,
    /// The most bytes of state it may hold.
    state_limit: Option<u64>,
    /// Batches seen, to read the state size every so often.
    events: u64,
}

impl WindowAggregateOp {
    pub(crate) fn new(
        assigner: Box<dyn WindowAssigner>,
        time_column: usize,
        lateness: Lateness,
        metrics: Arc<QueryMetrics>,
    ) -> Self {
        Self {
            assigner,
            time_column,
            clock: Rejects::new(lateness, metrics.clone()),
            metrics,
            state_limit: None,
            events: 0,
        }
    }

    /// The operator, holding at most `limit` bytes of state.
    pub(crate) fn with_state_limit(mut self, limit: Option<u64>) -> Self {
        self.state_limit = limit;
        self
    }

    /// Publishes the state held now.
    ///
    /// # Errors
    /// The state is past the limit: the query stops with a message instead
    /// of the process running out of memory.
    fn report(&self) -> ExecResult<()> {
        let (bytes, windows) = self.assigner.held();
        self.metrics
            .state_bytes
            .store(bytes as u64, Ordering::Relaxed);
        self.metrics
            .open_windows
            .store(windows as u64, Ordering::Relaxed);
        match self.state_limit {
            Some(limit) if bytes as u64 > limit => Err(ExecError::StateLimit {
                operator: self.assigner.name().to_string(),
                bytes: bytes as u64,
                held: format!("{windows} open windows"),
                limit,
            }),
            _ => Ok(()),
        }
    }

    /// Publishes the state held every `report_every` events.
    fn maybe_report(&mut self) -> ExecResult<()> {
        self.events += 1;
        if (self.events - 1).is_multiple_of(self.assigner.report_every()) {
            self.report()?;
        }
        Ok(())
    }
}

impl Operator for WindowAggregateOp {
    fn name(&self) -> &'static str {
        self.assigner.name()
    }

    fn process_batch(&mut self, batch: RecordBatch, out: &mut Collector) -> ExecResult<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let ts = time_column(&batch, self.time_column)?;
        let rows = self.assigner.spec().evaluate(&batch)?;
        self.assigner.add(&ts, rows, &mut self.clock)?;
        self.clock.finish(&batch, &ts, out)?;
        self.assigner.changes(out)?;
        self.maybe_report()
    }

    fn handle_watermark(&mut self, watermark: i64, out: &mut Collector) -> ExecResult<()> {
        if let Some(closed) = self.clock.advance(watermark) {
            self.assigner.close_until(closed, out)?;
            // state shrank: publish it, when that is cheap to read
            if self.assigner.report_every() == 1 {
                self.report()?;
            }
        }
        out.push(Message::Watermark(watermark));
        Ok(())
    }

    fn on_close(&mut self, out: &mut Collector) -> ExecResult<()> {
        self.assigner.close_until(i64::MAX, out)?;
        self.report()
    }

    /// Parts: `clock` (see [`Rejects::snapshot`]), then the assigner's
    /// (each kind's file documents them).
    fn snapshot(&mut self) -> ExecResult<OperatorState> {
        let mut out = OperatorState::default();
        out.push("clock", self.clock.snapshot()?);
        self.assigner.snapshot(&mut out)?;
        Ok(out)
    }

    fn restore(&mut self, state: OperatorState) -> ExecResult<()> {
        self.clock.restore(state.part("clock")?)?;
        self.assigner.restore(&state)?;
        self.report()
    }

    fn retained_event_time(&self) -> Option<i64> {
        self.assigner.retained_event_time()
    }

    fn rescalable(&self) -> bool {
        self.assigner.rescalable()
    }
}

/// The `window_start`, `window_end` columns of `n` rows of one window.
pub(crate) fn window_prefix(start: i64, end: i64, n: usize) -> Vec<ArrayRef> {
    let bound = |v: i64| -> ArrayRef { Arc::new(TimestampMillisecondArray::from(vec![v; n])) };
    vec![bound(start), bound(end)]
}

/// Marks a row that belongs to no open window (late, NULL time, in a gap).
pub(crate) const NO_WINDOW: i64 = i64::MIN;

/// Splits evaluated rows by the window (or pane) each belongs to, skipping
/// rows marked [`NO_WINDOW`]; windows come out in order.
///
/// # Errors
/// An Arrow failure while gathering rows.
pub(crate) fn split_by_window(
    slots: &[i64],
    rows: &Evaluated,
) -> ExecResult<Vec<(i64, Evaluated)>> {
    let mut by_window: std::collections::BTreeMap<i64, Vec<u32>> =
        std::collections::BTreeMap::new();
    for (i, &s) in slots.iter().enumerate() {
        if s != NO_WINDOW {
            by_window.entry(s).or_default().push(i as u32);
        }
    }
    by_window
        .into_iter()
        .map(|(s, idx)| Ok((s, rows.take(&UInt32Array::from(idx))?)))
        .collect()
}
