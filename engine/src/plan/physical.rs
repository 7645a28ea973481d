//! The physical plan: the pipeline of operators a query runs as (its EXPLAIN
//! renderings are in `explain.rs`).

use std::sync::Arc;

use arrow::datatypes::SchemaRef;

use crate::catalog::StreamDef;
use crate::plan::expr::Expr;
use crate::plan::logical::{
    AggregateCall, EmitMode, Frame, Lateness, LogicalPlan, QueryPlan, RankKind, SinkTarget,
    SortKey, WindowSpec,
};

/// One operator of the pipeline.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum PhysicalNode {
    /// Tracks event time: watermark = largest `column` seen − `delay_ms`.
    Watermark {
        /// Event-time column.
        column: usize,
        /// Its name.
        name: String,
        /// Delay in ms.
        delay_ms: i64,
        /// After this long without input, event time follows the wall clock (ms).
        idle_timeout_ms: Option<i64>,
        /// The `_topic` and `_partition` columns of a partitioned source
        /// (Kafka): the watermark is then the minimum of per-partition
        /// watermarks, a partition silent past `idle_timeout` not counting.
        per_partition: Option<(usize, usize)>,
    },
    /// Keeps rows where the predicate is TRUE.
    Filter {
        /// The predicate.
        predicate: Expr,
    },
    /// Hash exchange: rows are routed by a hash of `keys` to one of the
    /// partition workers (`--partitions N`); each worker owns the state of
    /// its keys. Watermarks go to every worker. A no-op with one partition.
    Exchange {
        /// The keys hashed (the GROUP BY keys of the aggregate that follows).
        keys: Vec<(Expr, String)>,
    },
    /// Aggregates over a frame of preceding rows, per partition, in
    /// event-time order: one output row per input row.
    RowWindow {
        /// Output columns: the input's, then one per call.
        #[serde(with = "crate::plan::serde_plan::schema")]
        output_schema: SchemaRef,
        /// Partition keys.
        partition: Vec<(Expr, String)>,
        /// Event-time column.
        time_column: usize,
        /// Its name.
        time_name: String,
        /// The frame.
        frame: Frame,
        /// Aggregates.
        calls: Vec<AggregateCall>,
        /// When rows are final.
        lateness: Lateness,
    },
    /// The partition workers' outputs merge here: the nodes after it run
    /// once, over every worker's rows, with the minimum of the workers'
    /// watermarks.
    Gather,
    /// Top-N per window and partition, emitted when the window closes.
    TopN {
        /// Input columns.
        #[serde(with = "crate::plan::serde_plan::schema")]
        input_schema: SchemaRef,
        /// Output columns: the input's, then the rank.
        #[serde(with = "crate::plan::serde_plan::schema")]
        output_schema: SchemaRef,
        /// Input column with the window end.
        window_end: usize,
        /// Partition columns (with their names, for EXPLAIN).
        partition: Vec<(usize, String)>,
        /// Sort keys (with their names).
        order: Vec<(SortKey, String)>,
        /// Rows ranked at most this are kept.
        limit: usize,
        /// Ranking function.
        kind: RankKind,
        /// When windows close.
        lateness: Lateness,
    },
    /// Computes the output columns.
    Project {
        /// (expression, output name).
        exprs: Vec<(Expr, String)>,
    },
    /// Tumbling-window aggregation keyed by (window, group key).
    TumblingAggregate {
        /// Event-time column.
        time_column: usize,
        /// Its name.
        time_name: String,
        /// Window size in ms.
        size_ms: i64,
        /// Group keys.
        keys: Vec<(Expr, String)>,
        /// Aggregates.
        aggs: Vec<AggregateCall>,
        /// Emit mode.
        emit: EmitMode,
        /// Late-row handling.
        lateness: Lateness,
    },
    /// Hopping-window aggregation: rows are aggregated once into panes of
    /// `pane_ms` (the gcd of size and slide); a window merges its panes'
    /// partial states when it closes.
    HoppingAggregate {
        /// Event-time column.
        time_column: usize,
        /// Its name.
        time_name: String,
        /// Window size in ms.
        size_ms: i64,
        /// Distance between window starts in ms.
        slide_ms: i64,
        /// Pane size in ms.
        pane_ms: i64,
        /// Group keys.
        keys: Vec<(Expr, String)>,
        /// Aggregates.
        aggs: Vec<AggregateCall>,
        /// Emit mode.
        emit: EmitMode,
        /// Late-row handling.
        lateness: Lateness,
    },
    /// Session-window aggregation per group key.
    SessionAggregate {
        /// Event-time column.
        time_column: usize,
        /// Its name.
        time_name: String,
        /// Inactivity gap in ms.
        gap_ms: i64,
        /// Group keys.
        keys: Vec<(Expr, String)>,
        /// Aggregates.
        aggs: Vec<AggregateCall>,
        /// Emit mode.
        emit: EmitMode,
        /// Late-row handling.
        lateness: Lateness,
    },
    /// Aggregation without a window: a changelog after every batch (EMIT
    /// CHANGES, the default) or one row per group when the input ends.
    GlobalAggregate {
        /// Group keys.
        keys: Vec<(Expr, String)>,
        /// Aggregates.
        aggs: Vec<AggregateCall>,
        /// Emit mode.
        emit: EmitMode,
    },
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
}

impl PhysicalPlan {
    /// The position of the hash exchange, if the plan has one: nodes before
    /// it run once, nodes after it once per partition.
    pub fn exchange(&self) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| matches!(n, PhysicalNode::Exchange { .. }))
    }

    /// Lowers a logical plan to a pipeline.
    pub fn from_logical(q: &QueryPlan) -> Self {
        let mut nodes = Vec::new();
        let source = lower(&q.root, &mut nodes);
        PhysicalPlan {
            source,
            nodes,
            sink: q.sink.clone(),
            output_schema: q.root.schema(),
            source_columns: crate::plan::projection::source_columns(&q.root),
        }
    }
}

fn lower(plan: &LogicalPlan, out: &mut Vec<PhysicalNode>) -> Arc<StreamDef> {
    match plan {
        LogicalPlan::Scan { stream } => {
            if let Some((w, column)) = stream
                .watermark
                .as_ref()
                .and_then(|w| stream.schema.index_of(&w.column).ok().map(|c| (w, c)))
            {
                let idle_timeout_ms = stream.event_time.idle_timeout_ms;
                let per_partition = stream.partition_columns();
                out.push(PhysicalNode::Watermark {
                    column,
                    name: w.column.clone(),
                    delay_ms: w.delay_ms,
                    idle_timeout_ms,
                    per_partition,
                });
            }
            stream.clone()
        }
        LogicalPlan::Filter { input, predicate } => {
            let s = lower(input, out);
            out.push(PhysicalNode::Filter {
                predicate: predicate.clone(),
            });
            s
        }
        LogicalPlan::Project { input, exprs } => {
            let s = lower(input, out);
            out.push(PhysicalNode::Project {
                exprs: exprs.clone(),
            });
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
            let s = lower(input, out);
            if !partition.is_empty() {
                out.push(PhysicalNode::Exchange {
                    keys: partition.clone(),
                });
            }
            out.push(PhysicalNode::RowWindow {
                output_schema: plan.schema(),
                partition: partition.clone(),
                time_column: *time_column,
                time_name: time_name.clone(),
                frame: *frame,
                calls: calls.clone(),
                lateness: *lateness,
            });
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
            ..
        } => {
            let schema = input.schema();
            let s = lower(input, out);
            // the planner's hidden columns read better as the expressions they hold
            let name = |i: usize| match input.as_ref() {
                LogicalPlan::Project { exprs, .. } if i < exprs.len() => exprs[i].0.to_string(),
                _ => schema.field(i).name().clone(),
            };
            if out
                .iter()
                .any(|n| matches!(n, PhysicalNode::Exchange { .. }))
            {
                out.push(PhysicalNode::Gather);
            }
            out.push(PhysicalNode::TopN {
                input_schema: schema.clone(),
                output_schema: plan.schema(),
                window_end: *window_end,
                partition: partition.iter().map(|&i| (i, name(i))).collect(),
                order: order.iter().map(|k| (*k, name(k.column))).collect(),
                limit: *limit,
                kind: *kind,
                lateness: *lateness,
            });
            s
        }
        LogicalPlan::Aggregate {
            input,
            window,
            keys,
            aggs,
            emit,
            lateness,
        } => {
            let s = lower(input, out);
            // state is per key: partition workers can share the work by key
            if !keys.is_empty() {
                out.push(PhysicalNode::Exchange { keys: keys.clone() });
            }
            out.push(match window {
                Some(WindowSpec::Tumble {
                    time_column,
                    time_name,
                    size_ms,
                }) => PhysicalNode::TumblingAggregate {
                    time_column: *time_column,
                    time_name: time_name.clone(),
                    size_ms: *size_ms,
                    keys: keys.clone(),
                    aggs: aggs.clone(),
                    emit: *emit,
                    lateness: *lateness,
                },
                Some(WindowSpec::Hop {
                    time_column,
                    time_name,
                    slide_ms,
                    size_ms,
                }) => PhysicalNode::HoppingAggregate {
                    time_column: *time_column,
                    time_name: time_name.clone(),
                    size_ms: *size_ms,
                    slide_ms: *slide_ms,
                    pane_ms: gcd(*size_ms, *slide_ms),
                    keys: keys.clone(),
                    aggs: aggs.clone(),
                    emit: *emit,
                    lateness: *lateness,
                },
                Some(WindowSpec::Session {
                    time_column,
                    time_name,
                    gap_ms,
                }) => PhysicalNode::SessionAggregate {
                    time_column: *time_column,
                    time_name: time_name.clone(),
                    gap_ms: *gap_ms,
                    keys: keys.clone(),
                    aggs: aggs.clone(),
                    emit: *emit,
                    lateness: *lateness,
                },
                None => PhysicalNode::GlobalAggregate {
                    keys: keys.clone(),
                    aggs: aggs.clone(),
                    emit: *emit,
                },
            });
            s
        }
    }
}

/// Greatest common divisor (both positive).
fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a } else { gcd(b, a % b) }
}
