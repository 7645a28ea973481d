//! EXPLAIN: a physical plan as indented text (sink first, one node per
//! line) and as a JSON graph of nodes and edges.

use std::fmt::Write as _;

use serde_json::json;

use crate::catalog::LatePolicy;
use crate::plan::expr::Expr;
use crate::plan::logical::{AggregateCall, EmitMode, Frame, Lateness, SinkTarget};
use crate::plan::physical::{PhysicalNode, PhysicalPlan};
use crate::types::format_interval_ms;

impl PhysicalPlan {
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
