//! The physical plan: the pipeline of nodes a query runs as (its EXPLAIN
//! renderings are in `explain.rs`).
//!
//! Each node kind lives in one file beside its operator and implements
//! [`NodeKind`]: its EXPLAIN rendering, its output schema and the
//! construction of its operator, from a serialisable configuration. Adding a
//! kind is that file plus one line in [`physical_nodes!`] below.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;

use crate::catalog::StreamDef;
use crate::error::ExecResult;
use crate::exec::aggregate::GlobalAggregateNode;
use crate::exec::exchange::{ExchangeNode, GatherNode};
use crate::exec::join::JoinNode;
use crate::exec::metrics::QueryMetrics;
use crate::exec::operator::Operator;
use crate::exec::rank::UpdatingTopNNode;
use crate::exec::row_window::RowWindowNode;
use crate::exec::stateless::{FilterNode, ProjectNode};
use crate::exec::top_n::TopNNode;
use crate::exec::union::UnionNode;
use crate::exec::watermark::WatermarkNode;
use crate::exec::window::WindowAggregateNode;
use crate::plan::explain::Params;
use crate::plan::logical::{LogicalPlan, QueryPlan, SinkTarget};

/// What every physical node kind provides.
pub(crate) trait NodeKind {
    /// EXPLAIN: the node's name and its parameters.
    fn explain(&self) -> (&'static str, Params);

    /// The schema of the rows it emits, given its input's.
    fn output_schema(&self, input: &SchemaRef) -> SchemaRef;

    /// Its operator; `None` for a node whose work the runtime does (routing
    /// rows between stages).
    ///
    /// # Errors
    /// An expression or aggregate that cannot be compiled.
    fn build(&self, ctx: &BuildContext<'_>) -> ExecResult<Option<Box<dyn Operator>>>;

    /// Whether the rows it emits update earlier ones (a changelog with
    /// `_op`), given whether its input's do; most nodes pass that on.
    fn updating(&self, input: bool) -> bool {
        input
    }
}

/// What a node's operator is built with.
pub(crate) struct BuildContext<'a> {
    /// The metrics the operator reports into (a partition worker's own, or
    /// the query's).
    pub metrics: &'a Arc<QueryMetrics>,
    /// The schema of the node's input.
    pub input: &'a SchemaRef,
    /// The most bytes of state the operator may hold (its partition's
    /// share of [`crate::RunOptions::max_state_bytes`]).
    pub state_limit: Option<u64>,
}

/// Declares the physical node kinds: the serialisable [`PhysicalNode`] enum
/// and its dispatch to [`NodeKind`].
macro_rules! physical_nodes {
    ($($(#[$doc:meta])* $variant:ident($ty:ty),)*) => {
        /// One node of the pipeline.
        #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
        pub enum PhysicalNode {
            $($(#[$doc])* $variant($ty),)*
        }

        impl PhysicalNode {
            /// The node kind's behaviour.
            pub(crate) fn kind(&self) -> &dyn NodeKind {
                match self {
                    $(Self::$variant(n) => n,)*
                }
            }
        }
    };
}

physical_nodes! {
    /// Event time from the source's time column (`exec/watermark.rs`).
    Watermark(WatermarkNode),
    /// Keeps rows where the predicate is TRUE (`exec/stateless.rs`).
    Filter(FilterNode),
    /// Computes the output columns (`exec/stateless.rs`).
    Project(ProjectNode),
    /// Routes rows to partition workers by key (`exec/exchange.rs`).
    Exchange(ExchangeNode),
    /// Brings the partition workers' rows together (`exec/exchange.rs`).
    Gather(GatherNode),
    /// OVER aggregates per row (`exec/row_window/mod.rs`).
    RowWindow(RowWindowNode),
    /// Top-N per window (`exec/top_n.rs`).
    TopN(TopNNode),
    /// Top-N kept up to date, a changelog (`exec/rank.rs`).
    UpdatingTopN(UpdatingTopNNode),
    /// Watermarks from the wall clock, before a processing-time window
    /// (`exec/proctime.rs`).
    ProcessingTime(crate::exec::proctime::ProcessingTimeNode),
    /// Aggregation over TUMBLE / HOP / SESSION windows (`exec/window/`).
    WindowAggregate(WindowAggregateNode),
    /// Aggregation without a window (`exec/aggregate.rs`).
    GlobalAggregate(GlobalAggregateNode),
    /// The rows of several inputs (`exec/union.rs`).
    Union(UnionNode),
    /// A join of two inputs (`exec/join/`).
    Join(JoinNode),
}

/// A query as a pipeline: source → operators → sink.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PhysicalPlan {
    /// The stream read.
    pub source: Arc<StreamDef>,
    /// Operators in data-flow order.
    pub nodes: Vec<PhysicalNode>,
    /// Where results go.
    pub sink: SinkTarget,
    /// Schema of the rows the sink receives.
    #[serde(with = "crate::plan::serde_plan::schema")]
    pub output_schema: SchemaRef,
    /// The columns of the source stream the query reads, ascending: a
    /// source need not decode the others (projection pushdown).
    pub source_columns: Vec<usize>,
    /// The other inputs of nodes with several (UNION ALL), each a chain
    /// from its own source; such a node names them by index.
    #[serde(default)]
    pub branches: Vec<Branch>,
}

/// A chain of nodes from a source of its own, feeding a node with several
/// inputs.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Branch {
    /// The stream read.
    pub source: Arc<StreamDef>,
    /// The columns of it read (as [`PhysicalPlan::source_columns`]).
    pub source_columns: Vec<usize>,
    /// Its nodes, in data-flow order.
    pub nodes: Vec<PhysicalNode>,
}

impl Branch {
    /// The schema after each node, in order.
    pub fn node_schemas(&self) -> Vec<SchemaRef> {
        chain_schemas(&self.source.schema, &self.nodes)
    }
}

/// The schema after each of `nodes`, read from `input`.
fn chain_schemas(input: &SchemaRef, nodes: &[PhysicalNode]) -> Vec<SchemaRef> {
    let mut schema = input.clone();
    nodes
        .iter()
        .map(|n| {
            schema = n.kind().output_schema(&schema);
            schema.clone()
        })
        .collect()
}

impl PhysicalPlan {
    /// The position of the hash exchange, if the plan has one: nodes before
    /// it run once, nodes after it once per partition.
    pub fn exchange(&self) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| matches!(n, PhysicalNode::Exchange(_)))
    }

    /// Lowers a logical plan to a pipeline.
    pub fn from_logical(q: &QueryPlan) -> Self {
        let mut nodes = Vec::new();
        let mut branches = Vec::new();
        let source = lower(&q.root, &mut nodes, &mut branches);
        PhysicalPlan {
            source,
            nodes,
            sink: q.sink.clone(),
            output_schema: q.root.schema(),
            source_columns: crate::plan::projection::source_columns(&q.root),
            branches,
        }
    }

    /// The schema after each node, in order (the last is the output's).
    pub fn node_schemas(&self) -> Vec<SchemaRef> {
        chain_schemas(&self.source.schema, &self.nodes)
    }

    /// What the plan does that a user should know before running it
    /// (today: state that grows without bound).
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let nodes = self
            .nodes
            .iter()
            .chain(self.branches.iter().flat_map(|b| &b.nodes));
        for n in nodes {
            if let PhysicalNode::Join(j) = n
                && matches!(j.bound, crate::exec::join::JoinBound::Regular { ttl: None })
            {
                let how = if j.updating {
                    "it takes changelogs or pads rows without a time bound, which keeps every row (no TTL yet)"
                } else {
                    "bound it in time (an interval or window join), or SET 'state.ttl' = '1h' before the query"
                };
                out.push(format!(
                    "the join on {} keeps every row of both inputs for as long as it runs; {how}",
                    crate::plan::explain::list(j.left_keys.iter().map(|(e, _)| e.to_string()))
                ));
            }
            if let PhysicalNode::GlobalAggregate(a) = n
                && !a.keys.is_empty()
                && a.ttl.is_none()
            {
                out.push(format!(
                    "the GROUP BY {} without a window keeps one row per group for as long as it runs (its state grows with its groups); window it if its groups end, or SET 'state.ttl' = '1h' before the query to drop groups idle that long",
                    crate::plan::explain::list(a.keys.iter().map(|(_, n)| n.clone()))
                ));
            }
            if let PhysicalNode::UpdatingTopN(t) = n
                && t.ttl.is_none()
            {
                let kept = if t.op.is_some() {
                    "every row"
                } else {
                    "the top rows"
                };
                out.push(format!(
                    "the ranking over {} without a window keeps {kept} of each partition for as long as it runs (its state grows with its partitions); rank per window if they end, or SET 'state.ttl' = '1h' before the query to drop partitions idle that long",
                    crate::plan::explain::list(t.partition.iter().map(|(_, n)| n.clone()))
                ));
            }
        }
        out
    }

    /// Every stream the plan reads: its own source, then each branch's.
    pub fn sources(&self) -> impl Iterator<Item = &Arc<StreamDef>> {
        std::iter::once(&self.source).chain(self.branches.iter().map(|b| &b.source))
    }
}

/// Brings the rows of partition workers back together, if an exchange
/// has spread them since the last gather: what follows needs every row.
fn gather(out: &mut Vec<PhysicalNode>) {
    let spread = out
        .iter()
        .rev()
        .take_while(|n| !matches!(n, PhysicalNode::Gather(_) | PhysicalNode::Union(_)))
        .any(|n| matches!(n, PhysicalNode::Exchange(_)));
    if spread {
        out.push(PhysicalNode::Gather(GatherNode));
    }
}

fn lower(
    plan: &LogicalPlan,
    out: &mut Vec<PhysicalNode>,
    branches: &mut Vec<Branch>,
) -> Arc<StreamDef> {
    match plan {
        LogicalPlan::Scan { stream } => {
            if let Some((w, column)) = stream
                .watermark
                .as_ref()
                .and_then(|w| stream.schema.index_of(&w.column).ok().map(|c| (w, c)))
            {
                out.push(PhysicalNode::Watermark(WatermarkNode {
                    column,
                    name: w.column.clone(),
                    delay_ms: w.delay_ms,
                    idle_timeout_ms: stream.event_time.idle_timeout_ms,
                    per_partition: stream.partition_columns(),
                }));
            }
            stream.clone()
        }
        LogicalPlan::Filter { input, predicate } => {
            let s = lower(input, out, branches);
            out.push(PhysicalNode::Filter(FilterNode {
                predicate: predicate.clone(),
            }));
            s
        }
        LogicalPlan::Project { input, exprs } => {
            let s = lower(input, out, branches);
            out.push(PhysicalNode::Project(ProjectNode {
                exprs: exprs.clone(),
            }));
            s
        }
        LogicalPlan::RowWindow {
            input,
            partition,
            time_column,
            time_name,
            frame,
            calls,
            lateness,
        } => {
            let s = lower(input, out, branches);
            if partition.is_empty() {
                gather(out);
            } else {
                out.push(PhysicalNode::Exchange(ExchangeNode {
                    keys: partition.clone(),
                }));
            }
            out.push(PhysicalNode::RowWindow(RowWindowNode {
                output_schema: plan.schema(),
                partition: partition.clone(),
                time_column: *time_column,
                time_name: time_name.clone(),
                frame: *frame,
                calls: calls.clone(),
                lateness: *lateness,
            }));
            s
        }
        LogicalPlan::TopN {
            input,
            window_end,
            partition,
            order,
            limit,
            kind,
            lateness,
            rank_shown,
            ttl,
            ..
        } => {
            let schema = input.schema();
            let s = lower(input, out, branches);
            // the planner's hidden columns read better as the expressions they hold
            let name = |i: usize| match input.as_ref() {
                LogicalPlan::Project { exprs, .. } if i < exprs.len() => exprs[i].0.to_string(),
                _ => schema.field(i).name().clone(),
            };
            let Some(window_end) = window_end else {
                // kept up to date per partition: the partitions can be spread
                if partition.is_empty() {
                    gather(out);
                } else {
                    let keys = partition
                        .iter()
                        .map(|&i| {
                            let f = schema.field(i);
                            let ty = crate::types::SqlType::from_arrow(f.data_type())
                                .unwrap_or(crate::types::SqlType::Varchar);
                            (
                                crate::plan::expr::Expr::column(i, f.name().clone(), ty),
                                name(i),
                            )
                        })
                        .collect();
                    out.push(PhysicalNode::Exchange(ExchangeNode { keys }));
                }
                out.push(PhysicalNode::UpdatingTopN(UpdatingTopNNode {
                    input_schema: schema.clone(),
                    output_schema: plan.schema(),
                    op: input.changelog(),
                    partition: partition.iter().map(|&i| (i, name(i))).collect(),
                    order: order.iter().map(|k| (*k, name(k.column))).collect(),
                    limit: *limit,
                    kind: *kind,
                    rank_shown: *rank_shown,
                    ttl: *ttl,
                }));
                return s;
            };
            gather(out);
            out.push(PhysicalNode::TopN(TopNNode {
                input_schema: schema.clone(),
                output_schema: plan.schema(),
                window_end: *window_end,
                partition: partition.iter().map(|&i| (i, name(i))).collect(),
                order: order.iter().map(|k| (*k, name(k.column))).collect(),
                limit: *limit,
                kind: *kind,
                lateness: *lateness,
            }));
            s
        }
        LogicalPlan::Union { inputs } => {
            let s = lower(&inputs[0], out, branches);
            let mut others = Vec::new();
            for input in &inputs[1..] {
                let mut nodes = Vec::new();
                let source = lower(input, &mut nodes, branches);
                others.push(branches.len());
                branches.push(Branch {
                    source,
                    source_columns: crate::plan::projection::source_columns(input),
                    nodes,
                });
            }
            // the union runs once, over every input's rows: its stage
            // gathers them
            out.push(PhysicalNode::Union(UnionNode { inputs: others }));
            s
        }
        LogicalPlan::Join {
            left,
            right,
            kind,
            bound,
            left_keys,
            right_keys,
            filter,
        } => {
            let s = lower(left, out, branches);
            out.push(PhysicalNode::Exchange(ExchangeNode {
                keys: left_keys.clone(),
            }));
            let mut nodes = Vec::new();
            let source = lower(right, &mut nodes, branches);
            nodes.push(PhysicalNode::Exchange(ExchangeNode {
                keys: right_keys.clone(),
            }));
            branches.push(Branch {
                source,
                source_columns: crate::plan::projection::source_columns(right),
                nodes,
            });
            out.push(PhysicalNode::Join(JoinNode {
                right: branches.len() - 1,
                kind: *kind,
                bound: *bound,
                left_keys: left_keys.clone(),
                right_keys: right_keys.clone(),
                filter: filter.clone(),
                right_schema: right.schema(),
                updating: plan.is_updating(),
            }));
            s
        }
        LogicalPlan::Aggregate {
            input,
            window,
            keys,
            aggs,
            emit,
            lateness,
            ttl,
        } => {
            let s = lower(input, out, branches);
            // a window over PROCTIME() closes on the wall clock
            if window
                .as_ref()
                .is_some_and(|w| input.proc_time() == Some(w.time_column))
            {
                out.push(PhysicalNode::ProcessingTime(
                    crate::exec::proctime::ProcessingTimeNode,
                ));
            }
            // state is per key: partition workers can share the work by key;
            // without keys every row goes to one
            if keys.is_empty() {
                gather(out);
            } else {
                out.push(PhysicalNode::Exchange(ExchangeNode { keys: keys.clone() }));
            }
            out.push(match window {
                Some(w) => PhysicalNode::WindowAggregate(WindowAggregateNode {
                    time_column: w.time_column,
                    time_name: w.time_name.clone(),
                    window: w.window.clone(),
                    keys: keys.clone(),
                    aggs: aggs.clone(),
                    emit: *emit,
                    lateness: *lateness,
                }),
                None => PhysicalNode::GlobalAggregate(GlobalAggregateNode {
                    keys: keys.clone(),
                    aggs: aggs.clone(),
                    emit: *emit,
                    ttl: *ttl,
                }),
            });
            s
        }
    }
}
