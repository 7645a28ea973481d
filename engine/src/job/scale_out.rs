//! A query run by several processes (docs/scale-out.md): split at its hash
//! exchange into stage 1 (source → watermarks → stateless operators, ending
//! in a repartition topic) and stage 2 (the repartition topic → the keyed
//! operators → the sink), each run as a job of its own.

use std::sync::Arc;

use rdkafka::ClientConfig;

use crate::catalog::{Options, StreamDef};
pub use crate::connectors::kafka::repartition::RepartitionTopic;
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
    /// The topic's rows → the exchange → keyed operators → the sink
    /// (without the hop: the whole query, like `first`; unused).
    pub second: PhysicalPlan,
    /// The exchange's keys: stage 1 routes rows by them.
    pub keys: Vec<(Expr, String)>,
    /// Whether the hop is written exactly once (with checkpoints: one
    /// transaction per epoch, read `read_committed`). It is when the
    /// query's output is (its sink writes each row once), as it must be;
    /// otherwise the hop is at-least-once like the output and pays no
    /// transactions (a restarted stage-1 task may then write rows a second
    /// time, which stage 2 counts again: Kafka Streams' `at_least_once`).
    pub exactly_once: bool,
    /// Whether rows cross the repartition topic. Not when the source is
    /// declared partitioned by the grouping key (`'scan.partitioned-by'`):
    /// then every group's rows are in one source partition already, and
    /// `first` is the whole query, run by one task per source partition.
    pub hop: bool,
}

/// The columns a Kafka source is declared partitioned by
/// (`'scan.partitioned-by'`), if the exchange's keys cover them: then no
/// hop is needed. Declared columns that are not all among the keys are an
/// error, since a group's rows would be in several partitions.
fn co_partitioned(plan: &PhysicalPlan, keys: &[(Expr, String)]) -> Result<bool, PlanError> {
    let Some(declared) = plan.source.options.get("scan.partitioned-by") else {
        return Ok(false);
    };
    let key_columns: Vec<&str> = keys
        .iter()
        .filter_map(|(e, _)| match e {
            Expr::Column { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let stream = &plan.source.name;
    let mut columns = Vec::new();
    for c in declared.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        if plan.source.schema.field_with_name(c).is_err() {
            return Err(PlanError::unplaced(format!(
                "'scan.partitioned-by' of stream '{stream}' names '{c}', which is not one of its columns"
            )));
        }
        columns.push(c);
    }
    if columns.is_empty() || !columns.iter().all(|c| key_columns.contains(c)) {
        return Err(PlanError::unplaced(format!(
            "stream '{stream}' is declared partitioned by [{}] ('scan.partitioned-by'), but the query groups by [{}]: the rows of one group would be in several partitions; group by those columns (or more), or drop the option and let the rows cross the repartition topic",
            columns.join(", "),
            keys.iter()
                .map(|(_, n)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(true)
}

impl Stages {
    /// Splits `plan` at its hash exchange; stage 1's sink and stage 2's
    /// source are the repartition topic `topic`.
    ///
    /// # Errors
    /// A plan without an exchange (no keyed operator: nothing to spread by key).
    pub fn split(plan: &PhysicalPlan, topic: &RepartitionTopic) -> Result<Self, PlanError> {
        if !plan.branches.is_empty() {
            return Err(PlanError::unplaced(
                "the query reads several streams (UNION ALL); spreading it over processes is not supported yet: run it in one process",
            ));
        }
        if plan
            .nodes
            .iter()
            .filter(|n| matches!(n, PhysicalNode::Exchange(_)))
            .count()
            > 1
        {
            return Err(PlanError::unplaced(
                "the query's rows change workers more than once (stacked aggregates); spreading it over processes is not supported yet: run it in one process",
            ));
        }
        let at = plan.exchange().ok_or_else(|| {
            PlanError::unplaced(
                "the query has no GROUP BY or PARTITION BY key to spread over processes; run it in one process",
            )
        })?;
        let keys = match &plan.nodes[at] {
            PhysicalNode::Exchange(x) => x.keys.clone(),
            _ => Vec::new(),
        };
        let exactly_once = match &plan.sink {
            SinkTarget::Stream(s) => {
                crate::connectors::registry::of(s).is_ok_and(|c| c.exactly_once(s))
            }
            SinkTarget::Stdout => false,
        };
        if co_partitioned(plan, &keys)? {
            return Ok(Self {
                first: plan.clone(),
                second: plan.clone(),
                keys,
                exactly_once,
                hop: false,
            });
        }
        let mut schemas = vec![plan.source.schema.clone()];
        schemas.extend(plan.node_schemas());
        let middle = schemas[at].clone();
        let repartition = |schema| StreamDef {
            name: topic.name.clone(),
            schema,
            watermark: None,
            primary_key: Vec::new(),
            // 0 partitions: not known yet (EXPLAIN without a broker)
            options: Options::new(
                &topic.name,
                [
                    ("connector".to_string(), "repartition".to_string()),
                    ("partitions".to_string(), topic.partitions.to_string()),
                ]
                .into_iter()
                .filter(|(k, v)| k != "partitions" || v != "0"),
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
            branches: Vec::new(),
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
            branches: Vec::new(),
        };
        Ok(Self {
            first,
            second,
            keys,
            exactly_once,
            hop: true,
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
        if options.checkpoint.is_some() && self.exactly_once {
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

/// Which task of a query run by several processes: stage 1 reading one
/// source partition, or stage 2 reading one repartition partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Task {
    /// Stage 1 over source (topic, partition).
    First(String, i32),
    /// Stage 2 over repartition partition.
    Second(i32),
}

impl Task {
    /// Its name within query `query`: its checkpoints' and (prefixed
    /// `eddy-`) its transactional id's, the same on every process.
    pub fn name(&self, query: &str) -> String {
        match self {
            Task::First(topic, p) if topic.is_empty() => format!("{query}.s1.p{p}"),
            Task::First(topic, p) => format!("{query}.s1.{topic}.p{p}"),
            Task::Second(r) => format!("{query}.s2.r{r}"),
        }
    }
}

impl Stages {
    /// The librdkafka settings of the source's cluster (its `properties.*`
    /// but the consumer group's own), for the repartition topic and the
    /// groups of the stages.
    pub fn cluster_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        for (k, v) in self.first.source.options.iter() {
            if let Some(p) = k.strip_prefix("properties.")
                && !matches!(p, "group.id" | "group.instance.id" | "isolation.level")
            {
                c.set(p, v);
            }
        }
        c
    }

    /// The source's partitions, as stage-1 tasks read them and watermark
    /// records name them (a source without partitions is one).
    ///
    /// # Errors
    /// A Kafka source whose broker or topic cannot be reached.
    pub fn source_partitions(&self) -> Result<Vec<(String, i32)>, EngineError> {
        let def = &self.first.source;
        if def.connector() == "kafka" {
            return Ok(crate::connectors::kafka::topic_partitions(def).map_err(ExecError::from)?);
        }
        Ok(vec![(def.name.clone(), 0)])
    }

    /// The job of task `task` of query `query`: a checkpointed job of its
    /// own (`options` must take checkpoints), named after the task, so its
    /// state, positions and transactions follow the partition to whichever
    /// process runs it. Stage 2 combines the watermarks of the source's
    /// partitions `sources`.
    ///
    /// # Errors
    /// No checkpoints, or a topic client that cannot be created.
    pub fn task(
        &self,
        (query, task): (&str, &Task),
        topic: &RepartitionTopic,
        config: &ClientConfig,
        sources: &[(String, i32)],
        options: &RunOptions,
    ) -> Result<JobSpec, EngineError> {
        let name = task.name(query);
        let mut options = options.clone();
        let Some(c) = &mut options.checkpoint else {
            return Err(EngineError::from(PlanError::unplaced(
                "a query run by several processes needs checkpoints: its tasks' state moves between them through the checkpoint store; give --checkpoint-dir (a directory every process reaches)",
            )));
        };
        c.name = Some(name.clone());
        Ok(match task {
            Task::First(source_topic, p) => {
                let def = &self.first.source;
                let mut pairs: Vec<(String, String)> = def
                    .options
                    .iter()
                    .filter(|(k, _)| *k != "scan.partitions" && *k != "topic")
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                pairs.push(("topic".into(), source_topic.clone()));
                pairs.push(("scan.partitions".into(), p.to_string()));
                let mut one = (**def).clone();
                one.options = Options::new(&def.name, pairs);
                let mut plan = self.first.clone();
                plan.source = Arc::new(one);
                if !self.hop {
                    // the whole query on this partition, into the query's sink
                    let bounded =
                        crate::connectors::is_bounded(&plan.source).map_err(ExecError::from)?;
                    let sink = super::launch::open_plan_sink_after(&plan, bounded)
                        .map_err(ExecError::from)?;
                    return Ok(JobSpec::new(name, plan).options(options).sink(sink));
                }
                let from = vec![(source_topic.clone(), *p)];
                let mut writer =
                    RepartitionWriter::new(&topic.name, topic.clone(), &self.keys, from, config)
                        .map_err(ExecError::from)?;
                if self.exactly_once {
                    writer = writer.exactly_once();
                }
                JobSpec::new(name, plan)
                    .options(options)
                    .sink(Box::new(writer))
            }
            Task::Second(r) => {
                let reader = RepartitionReader::new(
                    &self.second.source.name,
                    (topic.clone(), &[*r]),
                    self.second.source.schema.clone(),
                    sources.to_vec(),
                    config,
                    &format!("{}.stage2", topic.name),
                )
                .map_err(ExecError::from)?;
                let bounded =
                    crate::connectors::is_bounded(&self.first.source).map_err(ExecError::from)?;
                let sink = super::launch::open_plan_sink_after(&self.second, bounded)
                    .map_err(ExecError::from)?;
                JobSpec::new(name, self.second.clone())
                    .options(options)
                    .source(Box::new(reader))
                    .sink(sink)
            }
        })
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

/// The consumer group of stage `stage` (1 or 2) of query `query`.
pub fn group_name(query: &str, stage: u8) -> String {
    format!("eddy.{query}.s{stage}")
}

/// The repartition topic of query `query`.
pub fn topic_name(query: &str) -> String {
    format!("eddy.{query}.repartition")
}

/// The partitions of topic `name`, if it exists.
///
/// # Errors
/// The broker cannot be reached.
pub fn existing_partitions(config: &ClientConfig, name: &str) -> Result<Option<i32>, EngineError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let fail = |e: rdkafka::error::KafkaError| {
        EngineError::from(ExecError::Internal(format!(
            "reading the repartition topic '{name}': {e}"
        )))
    };
    let probe: BaseConsumer = config.create().map_err(fail)?;
    let md = probe
        .fetch_metadata(Some(name), std::time::Duration::from_secs(10))
        .map_err(fail)?;
    Ok(md
        .topics()
        .iter()
        .find(|t| t.name() == name && t.error().is_none() && !t.partitions().is_empty())
        .map(|t| t.partitions().len() as i32))
}

/// The partitions of repartition topic `name`: those it has, or, when it
/// does not exist yet, `partitions` (it is created with them). The count
/// is fixed for the query's life: a key group's rows and state belong to
/// one partition's task.
///
/// # Errors
/// The broker cannot be reached or refuses to create the topic.
pub fn ensure_topic(
    config: &ClientConfig,
    name: &str,
    partitions: i32,
) -> Result<i32, EngineError> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let fail = |doing: &str, e: rdkafka::error::KafkaError| {
        EngineError::from(ExecError::Internal(format!(
            "{doing} repartition topic '{name}': {e}"
        )))
    };
    if let Some(n) = existing_partitions(config, name)? {
        return Ok(n);
    }
    let admin: AdminClient<rdkafka::client::DefaultClientContext> =
        config.create().map_err(|e| fail("reaching the", e))?;
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ExecError::Internal(format!("creating the repartition topic: {e}")))?;
    let created = runtime
        .block_on(admin.create_topics(&[topic], &AdminOptions::new()))
        .map_err(|e| fail("creating the", e))?;
    for r in created {
        // another instance may have created it at the same moment
        if let Err((_, code)) = r
            && code != rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists
        {
            return Err(fail(
                "creating the",
                rdkafka::error::KafkaError::AdminOp(code),
            ));
        }
    }
    Ok(existing_partitions(config, name)?.unwrap_or(partitions))
}
