//! Starts a job's topology: opens its source and sinks, builds each stage
//! instance's operators, wires the edges with bounded channels (a slow stage
//! slows the ones before it) and spawns one thread per stage instance.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::catalog::LatePolicy;
use crate::connectors::dead_letter::{DeadLetterSink, FileDeadLetters};
use crate::connectors::{self, Sink, SourceContext};
use crate::error::{EngineError, ExecError, ExecResult};
use crate::exec::exchange::Router;
use crate::exec::metrics::QueryMetrics;
use crate::exec::pipeline::Pipeline;
use crate::job::JobSpec;
use crate::job::checkpointing::{self, Checkpointing};
use crate::job::edge::{Envelope, Inputs, Output};
use crate::job::manager::Subscribers;
use crate::job::sink_stage::SinkWriter;
use crate::job::source_stage::{Ack, Checkpoints, Durable, IdleClock, SourceStage};
use crate::job::stage::{self, Probe};
use crate::job::topology::{Partitioning, StageRole, Topology};
use crate::plan::physical::PhysicalPlan;

/// A started topology: its threads and what they share.
pub(crate) struct Launched {
    pub threads: Vec<JoinHandle<()>>,
    pub metrics: Arc<QueryMetrics>,
    pub counters: Arc<connectors::SourceCounters>,
}

/// Called by each stage thread when it ends, with its error if it failed.
pub(crate) type OnExit = Arc<dyn Fn(Option<ExecError>) + Send + Sync>;

/// What one stage thread runs.
type Body = Box<dyn FnOnce() -> ExecResult<()> + Send>;

/// The channels of a topology: one bounded input queue per stage instance.
struct Wiring<'a> {
    topology: &'a Topology,
    senders: Vec<Vec<Sender<Envelope>>>,
    receivers: Vec<Vec<Receiver<Envelope>>>,
}

impl<'a> Wiring<'a> {
    fn new(topology: &'a Topology, capacity: usize) -> Self {
        let (senders, receivers) = topology
            .stages
            .iter()
            .map(|s| {
                (0..s.parallelism)
                    .map(|_| bounded(capacity.max(1)))
                    .unzip::<_, _, Vec<_>, Vec<_>>()
            })
            .unzip();
        Self {
            topology,
            senders,
            receivers,
        }
    }

    /// The output of instance `instance` of stage `s`.
    fn output(&self, s: usize, instance: usize) -> ExecResult<Output> {
        let outs = self.topology.outputs(s);
        let Some(&(t, edge)) = outs.first() else {
            return Err(ExecError::Internal(format!("stage {s} has no output")));
        };
        let targets = &self.senders[t];
        let stages = &self.topology.stages;
        // senders of the target's earlier input edges come first
        let base: usize = stages[t].inputs[..edge]
            .iter()
            .map(|e| e.senders(stages))
            .sum();
        Ok(match &stages[t].inputs[edge].partitioning {
            Partitioning::Forward => Output::new(base, vec![targets[instance].clone()], None),
            Partitioning::Merge => Output::new(base + instance, vec![targets[0].clone()], None),
            Partitioning::Hash(keys) => Output::new(
                base + instance,
                targets.clone(),
                Some(Router::new(keys, targets.len())?),
            ),
        })
    }

    /// The aligned input of instance `instance` of stage `s`: one port per
    /// input edge.
    fn inputs(&self, s: usize, instance: usize) -> Inputs {
        let stages = &self.topology.stages;
        let ports = stages[s]
            .inputs
            .iter()
            .enumerate()
            .flat_map(|(port, e)| std::iter::repeat_n(port, e.senders(stages)))
            .collect();
        Inputs::with_ports(self.receivers[s][instance].clone(), ports)
    }
}

/// Opens what `spec` reads and writes and starts its stages.
///
/// # Errors
/// The source or a sink cannot be opened, or an operator cannot be built.
/// How a job's stages are told to end.
pub(crate) struct Signals {
    /// Stop: set on a stop and when a stage fails.
    pub shutdown: Arc<AtomicBool>,
    /// Set (first) only on a stop asked for.
    pub stopping: Arc<AtomicBool>,
}

pub(crate) fn launch(
    spec: JobSpec,
    signals: Signals,
    subscribers: Arc<Subscribers>,
    mut on_exit: OnExit,
) -> Result<Launched, EngineError> {
    let Signals { shutdown, stopping } = signals;
    let JobSpec {
        name,
        plan,
        options,
        sink,
        dead_letters,
        source,
    } = spec;
    if options.partitions > super::MAX_PARTITIONS {
        return Err(ExecError::Worker(
            "eddy".into(),
            format!(
                "{} partitions asked for; a query may have 1 to {}",
                options.partitions,
                super::MAX_PARTITIONS
            ),
        )
        .into());
    }
    let ctx = SourceContext {
        batch_size: options.batch_size,
        counters: Arc::default(),
        shutdown: shutdown.clone(),
        projection: Some(plan.source_columns.clone()),
        decoders: options.partitions.max(1),
    };
    let mut source = match source {
        Some(s) => s,
        None => connectors::open_source(&plan.source, &ctx)?,
    };
    // the branches' sources (UNION ALL), in branch order
    let mut branch_sources = plan
        .branches
        .iter()
        .map(|b| {
            let ctx = SourceContext {
                projection: Some(b.source_columns.clone()),
                ..ctx.clone()
            };
            connectors::open_source(&b.source, &ctx).map(Some)
        })
        .collect::<Result<Vec<_>, _>>()?;
    // a query over several streams keeps state of each (a join's rows):
    // its offsets may be committed only with that state, in a checkpoint
    if !plan.branches.is_empty()
        && options.checkpoint.is_none()
        && (source.checkpoint_interval().is_some()
            || branch_sources
                .iter()
                .flatten()
                .any(|s| s.checkpoint_interval().is_some()))
    {
        return Err(ExecError::Worker(
            "eddy".into(),
            "a query that reads several streams commits Kafka offsets only with its state, in checkpoints: run it with --checkpoint-dir (the sources' barriers are aligned where their rows meet, and each source resumes from its own position)".into(),
        )
        .into());
    }
    let mut sink = match sink {
        Some(s) => s,
        None => open_plan_sink(&plan)?,
    };
    let dead = match dead_letters {
        Some(d) => Some(d),
        None => open_dead_letter_sink(&plan)?,
    };
    let flush_interval = flush_interval(&plan)?;
    let topology = Topology::build(&plan, options.partitions);
    let workers = topology
        .stages
        .iter()
        .filter(|s| s.role == StageRole::Operators)
        .map(|s| s.parallelism)
        .sum();
    let metrics = Arc::new(QueryMetrics::with_partitions(workers));
    // each partition worker holds about its share of the keyed state
    let state_limit = options.max_state_bytes.map(|b| b / workers.max(1) as u64);
    let wiring = Wiring::new(&topology, options.channel_capacity);
    let (ack_tx, ack_rx) = crossbeam_channel::unbounded::<Ack>();
    let mut threads = Vec::new();
    let restoring = std::time::Instant::now();
    let durable = match &options.checkpoint {
        Some(config) => {
            let instances: usize = topology.stages.iter().map(|s| s.parallelism).sum();
            // each stage instance, each source's position and the sink's state
            let contributors = instances + 1 + plan.branches.len() + 1;
            // this run's checkpoints are its own (a zombie cannot overwrite them)
            let run = crate::checkpoint::new_run();
            let pinned = checkpointing::prepare_sink(config, &name, &run, sink.as_mut())?;
            let (c, writer, completed) = checkpointing::prepare(
                config,
                &name,
                &plan,
                options.partitions,
                (contributors, &run, pinned),
                &metrics,
            )?;
            // a stage that fails ends the wait of a sink for a checkpoint
            let durability = c.durability.clone();
            let inner = on_exit.clone();
            on_exit = Arc::new(move |e: Option<ExecError>| {
                if let Some(e) = &e {
                    durability.end(e.to_string());
                }
                inner(e)
            });
            let body: Body = Box::new(move || writer.run().map_err(ExecError::from));
            threads.push(spawn("eddy-checkpoint".into(), body, on_exit.clone())?);
            recover(&c, &plan, source.as_mut(), sink.as_mut())?;
            for (b, s) in branch_sources.iter_mut().enumerate() {
                if let (Some(r), Some(s)) = (&c.restored, s) {
                    s.resume(restored_source(r, &source_key(&plan, b + 1))?)?;
                }
            }
            // every source stage hears of each completed checkpoint
            let mut heard = Vec::new();
            let mut tell = Vec::new();
            for _ in 0..=plan.branches.len() {
                let (tx, rx) = crossbeam_channel::unbounded();
                tell.push(tx);
                heard.push(rx);
            }
            let body: Body = Box::new(move || {
                for done in completed.iter() {
                    for t in &tell {
                        let _ = t.send(match &done {
                            Ok(c) => Ok(c.clone()),
                            Err(e) => Err(e.clone_message()),
                        });
                    }
                }
                Ok(())
            });
            threads.push(spawn(
                "eddy-checkpoint-reports".into(),
                body,
                on_exit.clone(),
            )?);
            Some((c, heard))
        }
        None if sink.commits_with_checkpoints() => {
            return Err(ExecError::Worker(
                "eddy".into(),
                format!(
                    "the sink '{}' commits its output with checkpoints ('sink.delivery' = 'exactly-once'): run the query with --checkpoint-dir, or write with 'sink.delivery' = 'at-least-once'",
                    sink_name(&plan)
                ),
            )
            .into());
        }
        None => None,
    };
    let restored = durable.as_ref().and_then(|(c, _)| c.restored.clone());
    let mut source = Some(source);
    let mut sinks = Some((sink, dead));
    for (s, stage) in topology.stages.iter().enumerate() {
        for instance in 0..stage.parallelism {
            let partition = (stage.role == StageRole::Operators).then_some(instance);
            let mut pipeline = Pipeline::build_nodes(
                &stage.input,
                &stage.nodes,
                stage.first,
                &metrics,
                partition,
                state_limit,
            )?;
            let owner = checkpointing::owner(instance);
            if let Some(r) = &restored {
                r.restore(&plan, (instance, stage.parallelism), &mut pipeline)?;
            }
            let checkpoint = durable.as_ref().map(|(c, _)| c.clone());
            let body: Body = match stage.role {
                StageRole::Source => {
                    let source = match stage.chain {
                        0 => source.take(),
                        b => branch_sources.get_mut(b - 1).and_then(Option::take),
                    }
                    .ok_or_else(|| {
                        ExecError::Internal(format!("chain {} has no source", stage.chain))
                    })?;
                    let out = wiring.output(s, instance)?.with_metrics(metrics.clone());
                    let durable = durable.as_ref().map(|(c, heard)| Durable {
                        checkpointing: c.clone(),
                        completed: heard[stage.chain].clone(),
                        stream: source_key(&plan, stage.chain),
                        owner: owner.clone(),
                    });
                    let run = source_stage(
                        stage,
                        source,
                        pipeline,
                        out,
                        &metrics,
                        (&shutdown, &stopping),
                        (ack_rx.clone(), durable),
                    )?;
                    Box::new(move || run.run())
                }
                StageRole::Operators => {
                    let inputs = wiring.inputs(s, instance);
                    let mut out = wiring.output(s, instance)?;
                    let probe = Probe {
                        metrics: QueryMetrics::partition(&metrics, instance),
                        latency: options.batch_latency.clone(),
                    };
                    Box::new(move || {
                        let checkpoint = checkpoint.as_ref().map(|c| (c, owner.as_str()));
                        stage::run(inputs, pipeline, &mut out, Some(&probe), checkpoint).map(|_| ())
                    })
                }
                StageRole::Sink => {
                    let (sink, dead) = sinks.take().ok_or_else(|| {
                        ExecError::Internal("a plan of today has one sink".into())
                    })?;
                    let inputs = wiring.inputs(s, instance);
                    let mut writer = SinkWriter {
                        sink,
                        dead,
                        metrics: metrics.clone(),
                        acks: ack_tx.clone(),
                        subscribers: subscribers.clone(),
                        closed: false,
                        flush_interval,
                        flushed: std::time::Instant::now(),
                        dirty: false,
                        checkpoint: checkpoint.clone().map(|c| (c, sink_name(&plan))),
                        last_barrier: restored.as_ref().map_or(0, |r| r.manifest.id),
                    };
                    let stopping = stopping.clone();
                    Box::new(move || {
                        let at = checkpoint.as_ref().map(|c| (c, owner.as_str()));
                        let ran = stage::run(inputs, pipeline, &mut writer, None, at);
                        // the input ended, or a stop was asked for: close the
                        // sinks so what was written is kept; otherwise a stage
                        // failed, and the sink keeps the previous output where it can
                        let kept = matches!(ran, Ok(true))
                            || (ran.is_ok() && stopping.load(std::sync::atomic::Ordering::SeqCst));
                        if !kept {
                            writer.abort();
                            return ran.map(|_| ());
                        }
                        let closed = writer.close();
                        ran.map(|_| ()).and(closed)
                    })
                }
            };
            let thread = if stage.parallelism == 1 {
                format!("eddy-{}", stage.name)
            } else {
                format!("eddy-{}-{instance}", stage.name)
            };
            threads.push(spawn(thread, body, on_exit.clone())?);
        }
    }
    if let Some(r) = &restored {
        metrics.checkpoints_restored(r.manifest.id, restoring.elapsed());
    }
    Ok(Launched {
        threads,
        metrics,
        counters: ctx.counters,
    })
}

/// The source stage of `stage`: watermarks from its `Watermark` node, idle
/// ticks from its idle timeout, barriers when the source asks for them or
/// the job checkpoints (`durable`).
fn source_stage(
    stage: &crate::job::topology::Stage,
    source: Box<dyn connectors::Source>,
    prefix: Pipeline,
    out: Output,
    metrics: &Arc<QueryMetrics>,
    (shutdown, stopping): (&Arc<AtomicBool>, &Arc<AtomicBool>),
    (acks, durable): (Receiver<Ack>, Option<Durable>),
) -> ExecResult<SourceStage> {
    let node = stage.watermark.as_ref();
    let idle = node.and_then(|n| n.idle_timeout_ms.map(IdleClock::new));
    let mut watermark = node.map(|n| n.generator(metrics));
    if let (Some(w), Some(d)) = (&mut watermark, &durable)
        && let Some(r) = &d.checkpointing.restored
        && let Some(state) = r.manifest.watermarks.get(&d.stream)
    {
        w.restore_state(state)?;
    }
    let checkpoints = match durable {
        Some(d) => Some(Checkpoints::durable(d, acks)),
        None => source
            .checkpoint_interval()
            .map(|interval| Checkpoints::new(interval, acks)),
    };
    Ok(SourceStage {
        source,
        watermark,
        idle,
        prefix,
        out,
        shutdown: shutdown.clone(),
        stopping: stopping.clone(),
        checkpoints,
    })
}

/// Brings the source and the sink to the checkpoint being restored (or
/// tells the sink the run starts afresh).
fn recover(
    c: &Checkpointing,
    plan: &PhysicalPlan,
    source: &mut dyn connectors::Source,
    sink: &mut dyn Sink,
) -> Result<(), EngineError> {
    let Some(r) = &c.restored else {
        sink.recover(None)?;
        return Ok(());
    };
    source.resume(restored_source(r, &source_key(plan, 0))?)?;
    sink.recover(r.manifest.sinks.get(&sink_name(plan)))?;
    Ok(())
}

/// The position checkpoint `r` holds for the source recorded as `key`.
fn restored_source<'a>(
    r: &'a crate::job::checkpointing::Restored,
    key: &str,
) -> Result<&'a serde_json::Value, EngineError> {
    r.manifest.sources.get(key).ok_or_else(|| {
        ExecError::Internal(format!(
            "checkpoint {} has no position for stream '{key}'",
            r.manifest.id
        ))
        .into()
    })
}

/// The name a checkpoint records the source of chain `chain` under (0:
/// the plan's own, `b + 1`: branch `b`'s): its stream's, numbered by its
/// chain when another source of the plan reads the same stream (a self-join).
pub(crate) fn source_key(plan: &PhysicalPlan, chain: usize) -> String {
    let name = |c: usize| match c {
        0 => &plan.source.name,
        b => &plan.branches[b - 1].source.name,
    };
    let own = name(chain);
    let shared = (0..=plan.branches.len()).any(|c| c != chain && name(c).eq_ignore_ascii_case(own));
    if shared {
        format!("{own}#{chain}")
    } else {
        own.clone()
    }
}

/// The name a checkpoint records the plan's sink under: its stream, or
/// `stdout`.
fn sink_name(plan: &PhysicalPlan) -> String {
    match &plan.sink {
        crate::plan::logical::SinkTarget::Stream(def) => def.name.clone(),
        crate::plan::logical::SinkTarget::Stdout => "stdout".into(),
    }
}

/// How often the sink flushes written rows: the sink stream's
/// `'flush.interval'`, 1 s by default.
fn flush_interval(plan: &PhysicalPlan) -> Result<std::time::Duration, EngineError> {
    let ms = match &plan.sink {
        crate::plan::logical::SinkTarget::Stream(def) => def
            .options
            .duration_ms_or("flush.interval", DEFAULT_FLUSH_MS)?,
        crate::plan::logical::SinkTarget::Stdout => DEFAULT_FLUSH_MS,
    };
    Ok(std::time::Duration::from_millis(ms.max(1) as u64))
}

/// The default `'flush.interval'` of sinks, in ms.
const DEFAULT_FLUSH_MS: i64 = 1000;

/// Stack of a stage thread: compiled expressions are evaluated by recursion,
/// one level per operator (at most `MAX_OPERATOR_DEPTH`); reserved, not
/// committed, until used.
const STAGE_STACK: usize = 16 << 20;

/// Spawns a stage thread that reports how it ended (a panic as an error).
fn spawn(name: String, body: Body, on_exit: OnExit) -> ExecResult<JoinHandle<()>> {
    let who = name.clone();
    std::thread::Builder::new()
        .name(name)
        .stack_size(STAGE_STACK)
        .spawn(move || {
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
            on_exit(match ran {
                Ok(result) => result.err(),
                Err(payload) => Some(panicked(who, payload.as_ref())),
            })
        })
        .map_err(|e| ExecError::Worker("eddy".into(), e.to_string()))
}

/// A stage thread's panic as an error (it is a bug in Eddy).
fn panicked(thread: String, payload: &(dyn std::any::Any + Send)) -> ExecError {
    let why = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into());
    ExecError::Worker(thread, format!("{why} (a bug in Eddy: please report it)"))
}

/// Opens the sink a plan writes to (stdout for a bare SELECT).
///
/// # Errors
/// The sink cannot be opened (bad options, a file that cannot be created).
pub fn open_plan_sink(plan: &PhysicalPlan) -> Result<Box<dyn Sink>, crate::ConnectorError> {
    let mut bounded = true;
    for s in plan.sources() {
        bounded &= connectors::is_bounded(s)?;
    }
    open_plan_sink_after(plan, bounded)
}

/// Opens the sink a plan writes to, its input bounded or not (a plan whose
/// source is another plan's output: stage 2 of a split query).
///
/// # Errors
/// The sink cannot be opened.
pub(crate) fn open_plan_sink_after(
    plan: &PhysicalPlan,
    bounded_input: bool,
) -> Result<Box<dyn Sink>, crate::ConnectorError> {
    use crate::plan::logical::SinkTarget;
    let ctx = connectors::SinkContext { bounded_input };
    match &plan.sink {
        SinkTarget::Stdout => {
            let def = connectors::stdout::console_stream(plan.output_schema.clone());
            connectors::open_sink(&def, plan.output_schema.clone(), &ctx)
        }
        SinkTarget::Stream(def) => connectors::open_sink(def, plan.output_schema.clone(), &ctx),
    }
}

/// Opens the dead-letter sink the plan's source stream asks for
/// (`'late_policy' = 'dead_letter'` with `'dead_letter.path'`), if any.
///
/// # Errors
/// Bad options or a file that cannot be opened.
pub fn open_dead_letter_sink(
    plan: &PhysicalPlan,
) -> Result<Option<Box<dyn DeadLetterSink>>, crate::ConnectorError> {
    let o = &plan.source.event_time;
    // malformed records may go there too
    let malformed = plan
        .source
        .options
        .get("format.on_error")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("dead_letter"));
    match &o.dead_letter_path {
        Some(path) if o.late_policy == LatePolicy::DeadLetter || malformed => Ok(Some(Box::new(
            FileDeadLetters::open(&plan.source.name, path)?,
        ))),
        _ => Ok(None),
    }
}
