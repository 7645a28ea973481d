//! A query run by several processes (docs/scale-out.md): split at its hash
//! exchange into stage 1 (source → watermarks → stateless operators, ending
//! in a repartition topic) and stage 2 (the repartition topic → the keyed
//! operators → the sink), each run as a job of its own.

use std::sync::Arc;

use rdkafka::ClientConfig;

use crate::catalog::{Options, StreamDef};
use crate::connectors::kafka::repartition::RepartitionTopic;
use crate::connectors::kafka::repartition::reader::RepartitionReader;
use crate::connectors::kafka::repartition::writer::RepartitionWriter;
use crate::connectors::{Source, SourceContext, open_source};
use crate::error::{EngineError, ExecError, PlanError};
use crate::job::{JobSpec, RunOptions};
use crate::plan::expr::Expr;
use crate::plan::logical::SinkTarget;
use crate::plan::physical::{PhysicalNode, PhysicalPlan};

/// A query split at its exchange.
#[derive(Debug, Clone)]
pub struct Stages {
    /// Source → watermarks → stateless operators (its sink: the topic).
    pub first: PhysicalPlan,
    /// The topic's rows → the exchange → keyed operators → the sink.
    pub second: PhysicalPlan,
    /// The exchange's keys: stage 1 routes rows by them.
    pub keys: Vec<(Expr, String)>,
}

impl Stages {
    /// Splits `plan` at its hash exchange; stage 1's sink and stage 2's
    /// source are the repartition topic `topic`.
    ///
    /// # Errors
    /// A plan without an exchange (no keyed operator: nothing to spread by key).
    pub fn split(plan: &PhysicalPlan, topic: &RepartitionTopic) -> Result<Self, PlanError> {
        let at = plan.exchange().ok_or_else(|| {
            PlanError::unplaced(
                "the query has no GROUP BY or PARTITION BY key to spread over processes; run it in one process",
            )
        })?;
        let keys = match &plan.nodes[at] {
            PhysicalNode::Exchange(x) => x.keys.clone(),
            _ => Vec::new(),
        };
        let mut schemas = vec![plan.source.schema.clone()];
        schemas.extend(plan.node_schemas());
        let middle = schemas[at].clone();
        let repartition = |schema| StreamDef {
            name: topic.name.clone(),
            schema,
            watermark: None,
            options: Options::new(
                &topic.name,
                [
                    ("connector".to_string(), "repartition".to_string()),
                    ("partitions".to_string(), topic.partitions.to_string()),
                ],
            ),
            event_time: Default::default(),
            pos: Default::default(),
        };
        let first = PhysicalPlan {
            source: plan.source.clone(),
            nodes: plan.nodes[..at].to_vec(),
            sink: SinkTarget::Stream(Arc::new(repartition(middle.clone()))),
            output_schema: middle.clone(),
            source_columns: plan.source_columns.clone(),
        };
        // stage 2's rows are stage 1's output; its dead letters name the source
        let mut source = repartition(middle.clone());
        source.name.clone_from(&plan.source.name);
        let second = PhysicalPlan {
            source: Arc::new(source),
            nodes: plan.nodes[at..].to_vec(),
            sink: plan.sink.clone(),
            output_schema: plan.output_schema.clone(),
            source_columns: (0..middle.fields().len()).collect(),
        };
        Ok(Self {
            first,
            second,
            keys,
        })
    }

    /// The two jobs of one process running every partition of both stages
    /// (what several processes will share by consumer group): stage 1 reads
    /// the source and writes `topic` (exactly once when `options` take
    /// checkpoints: then each stage's checkpoints are named after it),
    /// stage 2 reads it; `config` holds the librdkafka settings of the
    /// topic's cluster.
    ///
    /// # Errors
    /// The source cannot be opened or the topic's clients created.
    pub fn jobs(
        &self,
        name: &str,
        topic: &RepartitionTopic,
        config: &ClientConfig,
        (ctx, options): (&SourceContext, &RunOptions),
    ) -> Result<(JobSpec, JobSpec), EngineError> {
        let source = open_source(&self.first.source, ctx).map_err(ExecError::from)?;
        let from = source_partitions(source.as_ref(), &self.first.source.name);
        let mut writer =
            RepartitionWriter::new(&topic.name, topic.clone(), &self.keys, from.clone(), config)
                .map_err(ExecError::from)?;
        if options.checkpoint.is_some() {
            writer = writer.exactly_once();
        }
        let stage = |n: u8| {
            let mut o = options.clone();
            if let Some(c) = &mut o.checkpoint {
                c.name = Some(format!("{name}.stage{n}"));
            }
            o
        };
        let first = JobSpec::new(format!("{name}.stage1"), self.first.clone())
            .options(stage(1))
            .source(source)
            .sink(Box::new(writer));
        let all: Vec<i32> = (0..topic.partitions).collect();
        let reader = RepartitionReader::new(
            &self.second.source.name,
            (topic.clone(), &all),
            self.second.source.schema.clone(),
            from,
            config,
            &format!("{}.stage2", topic.name),
        )
        .map_err(ExecError::from)?;
        let second = JobSpec::new(format!("{name}.stage2"), self.second.clone())
            .options(stage(2))
            .source(Box::new(reader));
        Ok((first, second))
    }
}

/// A source's partitions as watermark records name them; a source without
/// partitions is one, named after its stream.
fn source_partitions(source: &dyn Source, stream: &str) -> Vec<(String, i32)> {
    let p = source.partitions();
    if p.is_empty() {
        vec![(stream.to_string(), 0)]
    } else {
        p
    }
}
