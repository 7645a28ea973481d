//! EXPLAIN of a query run by instances (`eddy explain --scale-out`): its
//! two stages, each stage's consumer group, input topic and task names,
//! and the repartition topic between them (partitions, key, guarantee).

use serde_json::json;

use super::scale_out::{Stages, group_name, topic_name};

/// What the broker says about a query's topics (EXPLAIN asks it, and shows
/// what it could not learn).
#[derive(Debug, Clone)]
pub struct TopicFacts {
    /// The source's partitions, or why the broker did not say.
    pub sources: Result<Vec<(String, i32)>, String>,
    /// The repartition topic's partitions, if it exists.
    pub repartition: Option<i32>,
}

impl TopicFacts {
    fn repartition_text(&self) -> String {
        match (self.repartition, &self.sources) {
            (Some(n), _) => format!("{n} partitions, exists"),
            (None, Ok(s)) => format!(
                "{} partitions (the source's), created by the first instance",
                s.len()
            ),
            (None, Err(_)) => {
                "as many partitions as the source, created by the first instance".into()
            }
        }
    }

    fn sources_text(&self) -> String {
        match &self.sources {
            Ok(s) => format!("{} partitions", s.len()),
            Err(why) => format!("partitions unknown: {why}"),
        }
    }

    /// The repartition topic's partition count, if known.
    pub fn partitions(&self) -> Option<i32> {
        self.repartition
            .or(self.sources.as_ref().ok().map(|s| s.len() as i32))
    }
}

impl Stages {
    fn keys_text(&self) -> String {
        let names: Vec<&str> = self.keys.iter().map(|(_, n)| n.as_str()).collect();
        format!("[{}]", names.join(", "))
    }

    fn hop_delivery(&self) -> &'static str {
        if self.exactly_once {
            "exactly-once (a transaction per checkpoint, read read_committed)"
        } else {
            "at-least-once (the query's output is at-least-once)"
        }
    }

    /// EXPLAIN of the query as instances named `query` run it: each
    /// stage's group, input and tasks above its plan, indented.
    pub fn explain_text(&self, query: &str, facts: &TopicFacts) -> String {
        let topic = topic_name(query);
        let source = self.first.source.options.get("topic").unwrap_or_default();
        let indent = |text: String| -> String {
            text.lines()
                .map(|l| format!("    {l}\n"))
                .collect::<String>()
        };
        if !self.hop {
            return format!(
                "Scale-out of '{query}' (eddy run --instance-id K --app-id {query}): 1 stage, no repartition topic (the source is partitioned by [{}], among the grouping key {})\n  Stage 1: group '{}' over topic '{source}' ({}); a task per partition runs the whole query, '{query}.s1.<topic>.p<partition>'\n{}",
                self.first
                    .source
                    .options
                    .get("scan.partitioned-by")
                    .unwrap_or_default(),
                self.keys_text(),
                group_name(query, 1),
                facts.sources_text(),
                indent(self.first.explain_text())
            );
        }
        let mut out = format!(
            "Scale-out of '{query}' (eddy run --instance-id K --app-id {query}): 2 stages\n"
        );
        out += &format!(
            "  Stage 1: group '{}' over topic '{source}' ({}); a task per partition, '{query}.s1.<topic>.p<partition>'\n",
            group_name(query, 1),
            facts.sources_text()
        );
        out += &indent(self.first.explain_text());
        out += &format!(
            "  Repartition topic '{topic}' ({}): keyed by {}, {}\n",
            facts.repartition_text(),
            self.keys_text(),
            self.hop_delivery()
        );
        out += &format!(
            "  Stage 2: group '{}' over topic '{topic}'; a task per partition, '{query}.s2.r<partition>'\n",
            group_name(query, 2)
        );
        out += &indent(self.second.explain_text());
        out
    }

    /// The same as JSON: `{query, repartition_topic, stages: [{stage,
    /// group, input, tasks, plan}]}`.
    pub fn explain_json(&self, query: &str, facts: &TopicFacts) -> serde_json::Value {
        let topic = topic_name(query);
        let first = json!({
            "stage": 1,
            "group": group_name(query, 1),
            "input": self.first.source.options.get("topic"),
            "input_partitions": facts.sources.as_ref().ok().map(Vec::len),
            "tasks": format!("{query}.s1.<topic>.p<partition>"),
            "plan": self.first.explain_json(),
        });
        if !self.hop {
            return json!({
                "query": query,
                "repartition_topic": null,
                "partitioned_by": self.first.source.options.get("scan.partitioned-by"),
                "key": self.keys.iter().map(|(_, n)| n.clone()).collect::<Vec<_>>(),
                "stages": [first],
            });
        }
        let partitions = facts.partitions();
        json!({
            "query": query,
            "repartition_topic": {
                "name": topic,
                "partitions": partitions,
                "exists": facts.repartition.is_some(),
                "key": self.keys.iter().map(|(_, n)| n.clone()).collect::<Vec<_>>(),
                "delivery": if self.exactly_once { "exactly-once" } else { "at-least-once" },
            },
            "stages": [
                first,
                {
                    "stage": 2,
                    "group": group_name(query, 2),
                    "input": topic,
                    "tasks": format!("{query}.s2.r<partition>"),
                    "plan": self.second.explain_json(),
                },
            ],
        })
    }
}
