//! EXPLAIN: a physical plan as indented text (sink first, one node per
//! line) and as a JSON graph of nodes and edges.

use std::fmt::Write as _;

use serde_json::json;

use crate::catalog::LatePolicy;
use crate::plan::expr::Expr;
use crate::plan::logical::{AggregateCall, EmitMode, Lateness, SinkTarget};
use crate::plan::physical::PhysicalPlan;
use crate::types::format_interval_ms;

/// A node's EXPLAIN parameters: (name, value), in display order.
pub(crate) type Params = Vec<(String, String)>;

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
            let (name, params) = n.kind().explain();
            out.push((name.to_string(), params));
        }
        let sink = match &self.sink {
            SinkTarget::Stdout => {
                let mut p = crate::connectors::stdout::console_explain_params();
                p.push(("delivery".into(), "at-least-once".into()));
                p
            }
            SinkTarget::Stream(s) => {
                let mut p = vec![("name".to_string(), s.name.clone())];
                p.extend(
                    s.options
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string())),
                );
                // what the sink guarantees across a crash
                if let Ok(c) = crate::connectors::registry::of(s) {
                    p.push(("delivery".into(), c.delivery(s).into()));
                }
                p
            }
        };
        out.push(("Sink".to_string(), sink));
        out
    }
}

pub(crate) fn list(items: impl Iterator<Item = String>) -> String {
    format!("[{}]", items.collect::<Vec<_>>().join(", "))
}

pub(crate) fn named(exprs: &[(Expr, String)]) -> String {
    list(exprs.iter().map(|(e, n)| {
        let text = e.to_string();
        if text == *n {
            text
        } else {
            format!("{text} AS {n}")
        }
    }))
}

pub(crate) fn aggs(a: &[AggregateCall]) -> String {
    // WebAssembly aggregates are marked, as WebAssembly scalars are
    list(a.iter().map(|c| match c.udaf {
        Some(_) => format!("wasm:{}", c.display),
        None => c.display.clone(),
    }))
}

/// Appends `emit` and, when set, `allowed_lateness` and `late_policy`.
pub(crate) fn with_emit(mut params: Params, emit: EmitMode, lateness: &Lateness) -> Params {
    params.push(("emit".into(), emit.name().into()));
    with_lateness(&mut params, lateness);
    if lateness.policy == LatePolicy::DeadLetter {
        params.push(("late_policy".into(), "dead_letter".into()));
    }
    params
}

/// Appends `allowed_lateness` when it is set.
pub(crate) fn with_lateness(params: &mut Params, lateness: &Lateness) {
    if lateness.allowed_ms > 0 {
        params.push((
            "allowed_lateness".into(),
            format_interval_ms(lateness.allowed_ms),
        ));
    }
}
