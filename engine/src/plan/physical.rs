//! The physical plan: the pipeline of operators a query runs as, and its
//! EXPLAIN renderings (indented text, one node per line, and a JSON graph).

use std::fmt::Write as _;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use serde_json::json;

use crate::catalog::LatePolicy;
use crate::catalog::StreamDef;
use crate::plan::expr::Expr;
use crate::plan::logical::{
    AggregateCall, EmitMode, Frame, Lateness, LogicalPlan, QueryPlan, RankKind, SinkTarget,
    SortKey, WindowSpec,
};
use crate::types::format_interval_ms;

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

    /// EXPLAIN as indented text, sink first, one node per line.
    pub fn explain_text(&self) -> String {
        let mut out = String::new();
        for (depth, (name, params)) in self.rendered().into_iter().rev().enumerate() {
            let _ = write!(out, "{}{name}", "  ".repeat(depth));
            if !params.is_empty() {
                let p: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let _ = write!(out, ": {}", p.join(", "));
            }
            out.push('\n');
        }
        out
    }

    /// EXPLAIN as a JSON graph: `{"nodes": [{id, kind, params}], "edges": [{from, to}]}`,
    /// nodes in data-flow order (source first).
    pub fn explain_json(&self) -> serde_json::Value {
        let rendered = self.rendered();
        let nodes: Vec<_> = rendered
            .iter()
            .enumerate()
            .map(|(id, (kind, params))| {
                let p: serde_json::Map<String, serde_json::Value> =
                    params.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                json!({ "id": id, "kind": kind, "params": p })
            })
            .collect();
        let edges: Vec<_> = (1..rendered.len())
            .map(|i| json!({ "from": i - 1, "to": i }))
            .collect();
        json!({ "nodes": nodes, "edges": edges })
    }

    /// (kind, params) per node in data-flow order, source and sink included.
    fn rendered(&self) -> Vec<(String, Vec<(String, String)>)> {
        let mut out = Vec::new();
        let mut src = vec![("name".to_string(), self.source.name.clone())];
        src.extend(
            self.source
                .options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        // e.g. a Kafka consumer's tier and group when left to their defaults
        src.extend(self.source.explain_params());
        out.push(("Source".to_string(), src));
        for n in &self.nodes {
            out.push(render(n));
        }
        let sink = match &self.sink {
            SinkTarget::Stdout => vec![
                ("connector".to_string(), "stdout".to_string()),
                ("format".into(), "json".into()),
            ],
            SinkTarget::Stream(s) => {
                let mut p = vec![("name".to_string(), s.name.clone())];
                p.extend(
                    s.options
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string())),
                );
                p
            }
        };
        out.push(("Sink".to_string(), sink));
        out
    }
}

fn list(items: impl Iterator<Item = String>) -> String {
    format!("[{}]", items.collect::<Vec<_>>().join(", "))
}

fn named(exprs: &[(Expr, String)]) -> String {
    list(exprs.iter().map(|(e, n)| {
        let text = e.to_string();
        if text == *n {
            text
        } else {
            format!("{text} AS {n}")
        }
    }))
}

fn aggs(a: &[AggregateCall]) -> String {
    // WebAssembly aggregates are marked, as WebAssembly scalars are
    list(a.iter().map(|c| match c.udaf {
        Some(_) => format!("wasm:{}", c.display),
        None => c.display.clone(),
    }))
}

/// Appends `emit` and, when set, `allowed_lateness` and `late_policy`.
fn with_emit(
    mut params: Vec<(String, String)>,
    emit: EmitMode,
    lateness: &Lateness,
) -> Vec<(String, String)> {
    params.push(("emit".into(), emit.name().into()));
    if lateness.allowed_ms > 0 {
        params.push((
            "allowed_lateness".into(),
            format_interval_ms(lateness.allowed_ms),
        ));
    }
    if lateness.policy == LatePolicy::DeadLetter {
        params.push(("late_policy".into(), "dead_letter".into()));
    }
    params
}

fn render(n: &PhysicalNode) -> (String, Vec<(String, String)>) {
    let p = |k: &str, v: String| (k.to_string(), v);
    match n {
        PhysicalNode::Watermark {
            name,
            delay_ms,
            idle_timeout_ms,
            per_partition,
            ..
        } => {
            let mut params = vec![
                p("column", name.clone()),
                p("delay", format_interval_ms(*delay_ms)),
            ];
            if per_partition.is_some() {
                params.push(p("per_partition", "min".into()));
            }
            if let Some(idle) = idle_timeout_ms {
                params.push(p("idle_timeout", format_interval_ms(*idle)));
            }
            ("Watermark".into(), params)
        }
        PhysicalNode::Filter { predicate } => {
            ("Filter".into(), vec![p("predicate", predicate.to_string())])
        }
        PhysicalNode::Project { exprs } => ("Project".into(), vec![p("exprs", named(exprs))]),
        PhysicalNode::Exchange { keys } => ("Exchange".into(), vec![p("hash", named(keys))]),
        PhysicalNode::Gather => ("Gather".into(), vec![p("watermark", "min".into())]),
        PhysicalNode::RowWindow {
            partition,
            time_name,
            frame,
            calls,
            lateness,
            ..
        } => {
            let frame = match frame {
                Frame::Rows(n) => format!("ROWS {n} PRECEDING"),
                Frame::Range(ms) => format!("RANGE {} PRECEDING", format_interval_ms(*ms)),
                Frame::Unbounded => "ROWS UNBOUNDED PRECEDING".into(),
            };
            let mut params = vec![
                p("partition", named(partition)),
                p("order", time_name.clone()),
                p("frame", frame),
                p("aggs", aggs(calls)),
            ];
            if lateness.allowed_ms > 0 {
                params.push(p(
                    "allowed_lateness",
                    format_interval_ms(lateness.allowed_ms),
                ));
            }
            ("RowWindowAggregate".into(), params)
        }
        PhysicalNode::TopN {
            partition,
            order,
            limit,
            kind,
            lateness,
            ..
        } => {
            let mut params = vec![
                p("rank", format!("{}()", kind.name())),
                p("partition", list(partition.iter().map(|(_, n)| n.clone()))),
                p(
                    "order",
                    list(order.iter().map(|(k, n)| {
                        format!("{n} {}", if k.descending { "DESC" } else { "ASC" })
                    })),
                ),
                p("limit", limit.to_string()),
            ];
            if lateness.allowed_ms > 0 {
                params.push(p(
                    "allowed_lateness",
                    format_interval_ms(lateness.allowed_ms),
                ));
            }
            ("TopN".into(), params)
        }
        PhysicalNode::TumblingAggregate {
            time_name,
            size_ms,
            keys,
            aggs: a,
            emit,
            lateness,
            ..
        } => (
            "TumblingWindowAggregate".into(),
            with_emit(
                vec![
                    p("time", time_name.clone()),
                    p("size", format_interval_ms(*size_ms)),
                    p("keys", named(keys)),
                    p("aggs", aggs(a)),
                ],
                *emit,
                lateness,
            ),
        ),
        PhysicalNode::HoppingAggregate {
            time_name,
            size_ms,
            slide_ms,
            pane_ms,
            keys,
            aggs: a,
            emit,
            lateness,
            ..
        } => {
            let mut params = vec![
                p("time", time_name.clone()),
                p("size", format_interval_ms(*size_ms)),
                p("slide", format_interval_ms(*slide_ms)),
            ];
            // EMIT CHANGES keeps one state per window, so updates read directly
            if *emit == EmitMode::Final {
                params.push(p("pane", format_interval_ms(*pane_ms)));
            }
            params.push(p("keys", named(keys)));
            params.push(p("aggs", aggs(a)));
            (
                "HoppingWindowAggregate".into(),
                with_emit(params, *emit, lateness),
            )
        }
        PhysicalNode::SessionAggregate {
            time_name,
            gap_ms,
            keys,
            aggs: a,
            emit,
            lateness,
            ..
        } => (
            "SessionWindowAggregate".into(),
            with_emit(
                vec![
                    p("time", time_name.clone()),
                    p("gap", format_interval_ms(*gap_ms)),
                    p("keys", named(keys)),
                    p("aggs", aggs(a)),
                ],
                *emit,
                lateness,
            ),
        ),
        PhysicalNode::GlobalAggregate {
            keys,
            aggs: a,
            emit,
        } => (
            "GroupAggregate".into(),
            vec![
                p("keys", named(keys)),
                p("aggs", aggs(a)),
                p(
                    "emit",
                    match emit {
                        EmitMode::Final => "FINAL (at end of input)".into(),
                        EmitMode::Changes => "CHANGES".into(),
                    },
                ),
            ],
        ),
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
