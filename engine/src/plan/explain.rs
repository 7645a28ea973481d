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

/// One rendered node: its kind, parameters and the ids of its inputs.
struct Rendered {
    kind: String,
    params: Params,
    inputs: Vec<usize>,
    /// Its rows update earlier ones (a changelog).
    updating: bool,
}

impl PhysicalPlan {
    /// EXPLAIN as indented text, sink first, one node per line; a node
    /// with several inputs (UNION ALL) lists each input's nodes below it.
    pub fn explain_text(&self) -> String {
        let rendered = self.rendered();
        let mut out = String::new();
        let mut todo = vec![(rendered.len() - 1, 0usize)];
        while let Some((id, depth)) = todo.pop() {
            let node = &rendered[id];
            let _ = write!(out, "{}{}", "  ".repeat(depth), node.kind);
            if !node.params.is_empty() {
                let p: Vec<String> = node
                    .params
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                let _ = write!(out, ": {}", p.join(", "));
            }
            out.push('\n');
            todo.extend(node.inputs.iter().rev().map(|&i| (i, depth + 1)));
        }
        out
    }

    /// EXPLAIN as a JSON graph: `{"nodes": [{id, kind, params}], "edges":
    /// [{from, to, rows}]}` (`rows`: `append`, or `updating` for a
    /// changelog), nodes in data-flow order (sources first).
    pub fn explain_json(&self) -> serde_json::Value {
        let rendered = self.rendered();
        let nodes: Vec<_> = rendered
            .iter()
            .enumerate()
            .map(|(id, r)| {
                let p: serde_json::Map<String, serde_json::Value> = r
                    .params
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect();
                json!({ "id": id, "kind": r.kind, "params": p })
            })
            .collect();
        let edges: Vec<_> = rendered
            .iter()
            .enumerate()
            .flat_map(|(to, r)| {
                let rendered = &rendered;
                r.inputs.iter().map(move |&from| {
                    let rows = if rendered[from].updating {
                        "updating"
                    } else {
                        "append"
                    };
                    json!({ "from": from, "to": to, "rows": rows })
                })
            })
            .collect();
        json!({ "nodes": nodes, "edges": edges })
    }

    /// Every node in data-flow order, sources and sink included: each
    /// branch's chain before the node that reads it.
    fn rendered(&self) -> Vec<Rendered> {
        let mut out = Vec::new();
        let mut ends: Vec<Option<usize>> = vec![None; self.branches.len()];
        let chain = |out: &mut Vec<Rendered>,
                     ends: &[Option<usize>],
                     source: &crate::catalog::StreamDef,
                     nodes: &[crate::plan::physical::PhysicalNode]| {
            let mut src = vec![("name".to_string(), source.name.clone())];
            src.extend(source.options.shown());
            // e.g. a Kafka consumer's tier and group when left to their defaults
            src.extend(source.explain_params());
            out.push(Rendered {
                kind: "Source".into(),
                params: src,
                inputs: Vec::new(),
                updating: false,
            });
            for n in nodes {
                let (name, params) = n.kind().explain();
                let mut inputs = vec![out.len() - 1];
                use crate::plan::physical::PhysicalNode;
                let branches: Vec<usize> = match n {
                    PhysicalNode::Union(u) => u.inputs.clone(),
                    PhysicalNode::Join(j) => vec![j.right],
                    _ => Vec::new(),
                };
                inputs.extend(
                    branches
                        .iter()
                        .filter_map(|&b| ends.get(b).copied().flatten()),
                );
                let updating = n.kind().updating(inputs.iter().any(|&i| out[i].updating));
                let mut params = params;
                if updating {
                    params.push(("rows".into(), "updating".into()));
                }
                out.push(Rendered {
                    kind: name.to_string(),
                    params,
                    inputs,
                    updating,
                });
            }
            out.len() - 1
        };
        for (b, branch) in self.branches.iter().enumerate() {
            ends[b] = Some(chain(&mut out, &ends, &branch.source, &branch.nodes));
        }
        let last = chain(&mut out, &ends, &self.source, &self.nodes);
        let sink = match &self.sink {
            SinkTarget::Stdout => {
                let mut p = crate::connectors::stdout::console_explain_params();
                p.push(("delivery".into(), "at-least-once".into()));
                p
            }
            SinkTarget::Stream(s) => {
                let mut p = vec![("name".to_string(), s.name.clone())];
                p.extend(s.options.shown());
                if !s.primary_key.is_empty() {
                    p.push(("primary_key".into(), list(s.primary_key.iter().cloned())));
                }
                // what the sink guarantees across a crash
                if let Ok(c) = crate::connectors::registry::of(s) {
                    p.push(("delivery".into(), c.delivery(s).into()));
                }
                p
            }
        };
        let updating = out[last].updating;
        let mut sink = sink;
        if updating {
            // a sink writes a changelog as rows with their `_op`
            let how = match &self.sink {
                SinkTarget::Stream(s) => crate::connectors::registry::find(s.connector())
                    .and_then(|c| c.changelog_writes()),
                _ => None,
            };
            let how = format!("updating ({})", how.unwrap_or("written with _op"));
            sink.push(("rows".into(), how));
        }
        out.push(Rendered {
            kind: "Sink".into(),
            params: sink,
            inputs: vec![last],
            updating,
        });
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
