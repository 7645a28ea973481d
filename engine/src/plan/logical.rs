//! The logical plan: what a query computes, independent of how it runs.

use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};

use crate::agg::AggregateFunction;
use crate::catalog::{LatePolicy, StreamDef};
pub use crate::exec::join::{JoinBound, JoinKind};
pub use crate::exec::window::Window;
use crate::plan::expr::Expr;
use crate::types::SqlType;

/// One aggregate call in an aggregate node.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AggregateCall {
    /// The function.
    pub func: AggregateFunction,
    /// Its argument (none for `COUNT(*)`), evaluated on input rows.
    pub arg: Option<Expr>,
    /// Result type.
    pub ret: SqlType,
    /// How it was written, e.g. `count(DISTINCT bidder)`.
    pub display: String,
    /// For [`AggregateFunction::Wasm`]: the function and all its arguments.
    pub udaf: Option<UdafCall>,
}

/// A WebAssembly aggregate call.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UdafCall {
    /// The function.
    pub udf: crate::plan::expr::UdfRef,
    /// Its arguments, of the signature's types.
    pub args: Vec<Expr>,
}

impl AggregateCall {
    /// The expressions evaluated on input rows for this call.
    pub fn inputs(&self) -> Vec<&Expr> {
        match &self.udaf {
            Some(u) => u.args.iter().collect(),
            None => self.arg.iter().collect(),
        }
    }
}

/// How rows are grouped in time: the window kind over the event-time column.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowSpec {
    /// Event-time column (index into the input).
    pub time_column: usize,
    /// Its name.
    pub time_name: String,
    /// The kind and its parameters.
    pub window: Window,
}

/// When an aggregate emits its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EmitMode {
    /// One row per window and group, once the watermark passes the window's
    /// end plus the allowed lateness (or, without a window, once the input ends).
    Final,
    /// After each input batch, a changelog row for every (window, group) it
    /// changed, in the `_op` column: `+I`, or `-U` then `+U` (see
    /// `exec/changelog.rs`).
    Changes,
}

impl EmitMode {
    /// As written in SQL and EXPLAIN.
    pub fn name(self) -> &'static str {
        match self {
            EmitMode::Final => "FINAL",
            EmitMode::Changes => "CHANGES",
        }
    }
}

/// Name of the changelog column an EMIT CHANGES aggregate adds.
pub const OP_COLUMN: &str = "_op";

/// How a windowed aggregate treats rows behind the watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Lateness {
    /// A window stays open this long (ms) after the watermark passes its end.
    pub allowed_ms: i64,
    /// What happens to rows later than that.
    pub policy: LatePolicy,
}

/// A node of the logical plan.
#[derive(Debug, Clone)]
pub enum LogicalPlan {
    /// Rows from a stream.
    Scan {
        /// The stream.
        stream: Arc<StreamDef>,
    },
    /// Keeps rows for which `predicate` is TRUE.
    Filter {
        /// Input.
        input: Box<LogicalPlan>,
        /// BOOLEAN predicate over the input.
        predicate: Expr,
    },
    /// Computes one output column per expression.
    Project {
        /// Input.
        input: Box<LogicalPlan>,
        /// (expression over the input, output name).
        exprs: Vec<(Expr, String)>,
    },
    /// Groups rows (per window) and aggregates them. Output columns:
    /// `window_start, window_end` (when windowed), the keys, the aggregates.
    Aggregate {
        /// Input.
        input: Box<LogicalPlan>,
        /// Time windowing, if any.
        window: Option<WindowSpec>,
        /// (key expression over the input, output name).
        keys: Vec<(Expr, String)>,
        /// Aggregate calls.
        aggs: Vec<AggregateCall>,
        /// When results are emitted.
        emit: EmitMode,
        /// Late-row handling (windowed only).
        lateness: Lateness,
        /// Without a window: a group not updated for this many ms of event
        /// time (by the watermark) is dropped (`SET 'state.ttl'`).
        ttl: Option<i64>,
    },
    /// Aggregates over a frame of preceding rows (`agg(x) OVER (PARTITION BY
    /// ... ORDER BY time ROWS|RANGE ... PRECEDING)`): one output row per
    /// input row, the input columns then one column per call.
    RowWindow {
        /// Input.
        input: Box<LogicalPlan>,
        /// Partition keys.
        partition: Vec<(Expr, String)>,
        /// The event-time column rows are ordered by.
        time_column: usize,
        /// Its name.
        time_name: String,
        /// The frame.
        frame: Frame,
        /// The aggregate calls (their `display` names the output columns).
        calls: Vec<AggregateCall>,
        /// When rows are final (rows are processed in time order once the
        /// watermark minus the lateness passes them).
        lateness: Lateness,
    },
    /// A join (`exec/join`): pairs of a left and a right row whose keys
    /// are equal and that meet `filter`; columns: the left's, then the
    /// right's.
    Join {
        /// Left input.
        left: Box<LogicalPlan>,
        /// Right input (its own source).
        right: Box<LogicalPlan>,
        /// Which unmatched rows it emits.
        kind: JoinKind,
        /// How long rows are kept.
        bound: JoinBound,
        /// Equi-join keys over the left rows.
        left_keys: Vec<(Expr, String)>,
        /// The keys they equal, over the right rows.
        right_keys: Vec<(Expr, String)>,
        /// The rest of the condition, over the joined row.
        filter: Option<Expr>,
    },
    /// `UNION ALL`: the rows of every input (of one column layout; the
    /// first one's names).
    Union {
        /// The inputs, each with its own source.
        inputs: Vec<LogicalPlan>,
    },
    /// Top-N per window: ranks the rows of each (window, partition) by
    /// `order` and keeps those ranked `<= limit`, when the window closes.
    /// Output: the input columns, then the rank (BIGINT).
    ///
    /// Without a window (`window_end` is `None`) the ranking is kept up to
    /// date as rows come: the output is a changelog (the input columns
    /// without its `_op`, the rank, then `_op`) that withdraws rows leaving
    /// the top and adds rows entering it.
    TopN {
        /// Input.
        input: Box<LogicalPlan>,
        /// The input column holding each row's window end (TIMESTAMP), or
        /// `None` for a ranking kept up to date.
        window_end: Option<usize>,
        /// Input columns that partition the rows (include the window).
        partition: Vec<usize>,
        /// Sort keys, most significant first.
        order: Vec<SortKey>,
        /// Rows ranked at most this are kept.
        limit: usize,
        /// How rows are ranked.
        kind: RankKind,
        /// Name of the rank column.
        rank_name: String,
        /// When windows close.
        lateness: Lateness,
        /// Whether the query reads the rank (without a window: a row whose
        /// rank changes is then updated).
        rank_shown: bool,
        /// Without a window: a partition not updated for this many ms of
        /// event time (by the watermark) is dropped (`SET 'state.ttl'`).
        ttl: Option<i64>,
    },
}

/// The frame of a row window: the rows before the current one (of the same
/// partition, in event-time order) that it aggregates, and itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Frame {
    /// `ROWS BETWEEN n PRECEDING AND CURRENT ROW`.
    Rows(u64),
    /// `RANGE BETWEEN INTERVAL ... PRECEDING AND CURRENT ROW`: rows whose
    /// event time is at most this many ms before the current row's.
    Range(i64),
    /// `ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW`.
    Unbounded,
}

/// One ORDER BY key of a top-N.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SortKey {
    /// Input column.
    pub column: usize,
    /// `DESC`.
    pub descending: bool,
    /// NULLs before other values (default: last for ASC, first for DESC, as PostgreSQL).
    pub nulls_first: bool,
}

/// The ranking function of a top-N.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RankKind {
    /// `ROW_NUMBER()`: 1, 2, 3, ... (ties in arrival order).
    RowNumber,
    /// `RANK()`: ties share a rank, with gaps after them.
    Rank,
    /// `DENSE_RANK()`: ties share a rank, without gaps.
    DenseRank,
}

impl RankKind {
    /// SQL name.
    pub fn name(self) -> &'static str {
        match self {
            RankKind::RowNumber => "row_number",
            RankKind::Rank => "rank",
            RankKind::DenseRank => "dense_rank",
        }
    }
}

impl LogicalPlan {
    /// The output schema.
    pub fn schema(&self) -> SchemaRef {
        match self {
            LogicalPlan::Scan { stream } => stream.schema.clone(),
            LogicalPlan::Filter { input, .. } => input.schema(),
            LogicalPlan::Project { exprs, .. } => {
                schema_of(exprs.iter().map(|(e, n)| (n.as_str(), e.sql_type())))
            }
            LogicalPlan::Aggregate {
                window,
                keys,
                aggs,
                emit,
                ..
            } => aggregate_schema(window.is_some(), keys, aggs, *emit),
            LogicalPlan::RowWindow { input, calls, .. } => {
                let inner = input.schema();
                let mut fields: Vec<Field> =
                    inner.fields().iter().map(|f| f.as_ref().clone()).collect();
                fields.extend(
                    calls
                        .iter()
                        .map(|c| Field::new(&c.display, c.ret.to_arrow(), true)),
                );
                Arc::new(Schema::new(fields))
            }
            LogicalPlan::Union { inputs } => inputs[0].schema(),
            LogicalPlan::Join { left, right, .. } if self.is_updating() => {
                crate::exec::join::updating_output_schema(&left.schema(), &right.schema())
            }
            LogicalPlan::Join { left, right, .. } => {
                let fields: Vec<Field> = left
                    .schema()
                    .fields()
                    .iter()
                    .chain(right.schema().fields())
                    .map(|f| f.as_ref().clone().with_nullable(true))
                    .collect();
                Arc::new(Schema::new(fields))
            }
            LogicalPlan::TopN {
                input,
                rank_name,
                window_end,
                ..
            } => {
                let inner = input.schema();
                let op = input.changelog();
                let mut fields: Vec<Field> = inner
                    .fields()
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| Some(*i) != op)
                    .map(|(_, f)| f.as_ref().clone())
                    .collect();
                fields.push(Field::new(rank_name, SqlType::BigInt.to_arrow(), true));
                if window_end.is_none() {
                    fields.push(Field::new(OP_COLUMN, SqlType::Varchar.to_arrow(), false));
                }
                Arc::new(Schema::new(fields))
            }
        }
    }

    /// The output column holding the rows' event time — the column the
    /// source's watermarks are for — when a column carries it unchanged.
    pub fn event_time(&self) -> Option<usize> {
        match self {
            LogicalPlan::Scan { stream } => stream
                .watermark
                .as_ref()
                .and_then(|w| stream.schema.index_of(&w.column).ok()),
            LogicalPlan::Filter { input, .. } | LogicalPlan::RowWindow { input, .. } => {
                input.event_time()
            }
            LogicalPlan::Project { input, exprs } => {
                let t = input.event_time()?;
                exprs
                    .iter()
                    .position(|(e, _)| matches!(e, Expr::Column { index, .. } if *index == t))
            }
            // an aggregate's or a top-N's rows come out when windows close
            LogicalPlan::Aggregate { .. } | LogicalPlan::TopN { .. } => None,
            // an interval join's rows keep the left row's time
            LogicalPlan::Join {
                left,
                bound: JoinBound::Interval { .. },
                ..
            } => left.event_time(),
            LogicalPlan::Join { .. } => None,
            LogicalPlan::Union { inputs } => {
                let first = inputs[0].event_time()?;
                inputs
                    .iter()
                    .all(|i| i.event_time() == Some(first))
                    .then_some(first)
            }
        }
    }

    /// The output columns holding each row's window end, when its rows
    /// are window results (a windowed aggregate's, passed on unchanged),
    /// with the windows' allowed lateness: a window's rows are all out
    /// once the watermark passes its end plus that.
    pub fn window_end(&self) -> Option<(usize, i64)> {
        match self {
            LogicalPlan::Aggregate {
                window: Some(_),
                emit: EmitMode::Final,
                lateness,
                ..
            } => Some((1, lateness.allowed_ms)),
            LogicalPlan::Filter { input, .. } => input.window_end(),
            LogicalPlan::Project { input, exprs } => {
                let (end, lateness) = input.window_end()?;
                let at = exprs
                    .iter()
                    .position(|(e, _)| matches!(e, Expr::Column { index, .. } if *index == end))?;
                Some((at, lateness))
            }
            LogicalPlan::Join {
                left,
                bound: JoinBound::Window { .. },
                ..
            } => left.window_end(),
            _ => None,
        }
    }

    /// The output column holding `PROCTIME()` — the processing-time
    /// attribute a window may close on by the wall clock — when a
    /// projection computes it or passes it on unchanged.
    pub fn proc_time(&self) -> Option<usize> {
        match self {
            LogicalPlan::Filter { input, .. } => input.proc_time(),
            LogicalPlan::Project { input, exprs } => {
                let passed = input.proc_time();
                exprs.iter().position(|(e, _)| match e {
                    Expr::Function { func, .. } => *func == crate::plan::expr::ScalarFunc::ProcTime,
                    Expr::Column { index, .. } => passed == Some(*index),
                    _ => false,
                })
            }
            _ => None,
        }
    }

    /// Whether the plan's rows update earlier ones: a changelog whose `_op`
    /// column says of each row whether it is added (`+I`, `+U`) or
    /// withdrawn (`-U`, `-D`) — Flink's retract mode. Otherwise every row
    /// is final (append-only).
    pub fn is_updating(&self) -> bool {
        match self {
            LogicalPlan::Scan { .. } => false,
            LogicalPlan::Filter { input, .. }
            | LogicalPlan::Project { input, .. }
            | LogicalPlan::RowWindow { input, .. } => input.is_updating(),
            LogicalPlan::Aggregate { emit, .. } => *emit == EmitMode::Changes,
            LogicalPlan::TopN {
                input, window_end, ..
            } => window_end.is_none() || input.is_updating(),
            LogicalPlan::Union { inputs } => inputs.iter().any(LogicalPlan::is_updating),
            // an outer join without a time bound pads rows that may match later
            LogicalPlan::Join {
                left,
                right,
                kind,
                bound,
                ..
            } => {
                left.is_updating()
                    || right.is_updating()
                    || (matches!(bound, JoinBound::Regular { .. }) && *kind != JoinKind::Inner)
            }
        }
    }

    /// The `_op` column of an updating plan's output.
    pub fn changelog(&self) -> Option<usize> {
        if self.is_updating() {
            self.schema().index_of(OP_COLUMN).ok()
        } else {
            None
        }
    }

    /// The stream the plan reads (the first input's, for several).
    pub fn source(&self) -> &Arc<StreamDef> {
        match self {
            LogicalPlan::Scan { stream } => stream,
            LogicalPlan::Filter { input, .. }
            | LogicalPlan::Project { input, .. }
            | LogicalPlan::Aggregate { input, .. }
            | LogicalPlan::RowWindow { input, .. }
            | LogicalPlan::TopN { input, .. } => input.source(),
            LogicalPlan::Union { inputs } => inputs[0].source(),
            LogicalPlan::Join { left, .. } => left.source(),
        }
    }
}

/// The output of an aggregate: `window_start`, `window_end` when windowed,
/// the keys, the aggregates and, under EMIT CHANGES, the `_op` column.
pub(crate) fn aggregate_schema(
    windowed: bool,
    keys: &[(Expr, String)],
    aggs: &[AggregateCall],
    emit: EmitMode,
) -> SchemaRef {
    let mut cols: Vec<(&str, SqlType)> = Vec::new();
    if windowed {
        cols.push(("window_start", SqlType::Timestamp));
        cols.push(("window_end", SqlType::Timestamp));
    }
    cols.extend(keys.iter().map(|(e, n)| (n.as_str(), e.sql_type())));
    cols.extend(aggs.iter().map(|a| (a.display.as_str(), a.ret)));
    if emit == EmitMode::Changes {
        cols.push((OP_COLUMN, SqlType::Varchar));
    }
    schema_of(cols.into_iter())
}

/// A schema of nullable columns.
pub fn schema_of<'a>(cols: impl Iterator<Item = (&'a str, SqlType)>) -> SchemaRef {
    let fields: Vec<Field> = cols
        .map(|(n, t)| {
            Field::new(
                n,
                if t == SqlType::Null {
                    SqlType::BigInt.to_arrow()
                } else {
                    t.to_arrow()
                },
                true,
            )
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// Where a query's results go.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum SinkTarget {
    /// A bare SELECT: JSON lines on stdout.
    Stdout,
    /// `INSERT INTO stream`.
    Stream(Arc<StreamDef>),
}

/// A planned query: its plan and its sink.
#[derive(Debug, Clone)]
pub struct QueryPlan {
    /// The plan producing the rows.
    pub root: LogicalPlan,
    /// Where they go.
    pub sink: SinkTarget,
}
