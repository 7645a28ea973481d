//! A job's checkpoints (docs/checkpoints.md): at start, the latest complete
//! checkpoint of the query is checked against the plan and restored; while
//! it runs, every part of the job gives its share of each checkpoint to the
//! writer loop (run on a thread of the job), which makes it durable.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crossbeam_channel::Receiver;

use crate::checkpoint::store::CheckpointStore;
use crate::checkpoint::writer::{self, Completed, Contribution, Contributor, WriterLoop};
use crate::checkpoint::{CheckpointError, CheckpointRef, Manifest, plan_fingerprint};
use crate::error::{EngineError, ExecError, ExecResult};
use crate::exec::exchange::{key_groups, worker_of};
use crate::exec::metrics::QueryMetrics;
use crate::exec::operator::OperatorState;
use crate::exec::pipeline::Pipeline;
use crate::job::topology::Topology;
use crate::plan::physical::PhysicalPlan;
use arrow::array::ArrayRef;

/// How a job checkpoints (`--checkpoint-dir`, `checkpoint.interval`).
#[derive(Debug, Clone)]
pub struct CheckpointConfig {
    /// Where checkpoints are kept: a directory or a `file://` URL.
    pub location: String,
    /// The name the query's checkpoints are kept under, stable across
    /// restarts (`None`: the job's name).
    pub name: Option<String>,
    /// How often a checkpoint is taken.
    pub interval: Duration,
    /// Complete checkpoints kept (the newest ones).
    pub keep: usize,
    /// Delete the query's checkpoints and start from the beginning of its
    /// input instead of restoring the latest one.
    pub from_scratch: bool,
}

/// The default `checkpoint.interval`.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(10);

impl CheckpointConfig {
    /// Checkpoints in `location` every 10 s, the last two kept.
    pub fn new(location: impl Into<String>) -> Self {
        Self {
            location: location.into(),
            name: None,
            interval: DEFAULT_CHECKPOINT_INTERVAL,
            keep: 2,
            from_scratch: false,
        }
    }
}

/// When the sources of a job send barriers. A query that reads several
/// streams has a source stage per stream; every one sends every barrier
/// (the stages that join or merge their rows align them), each where it
/// is in its own input. Whichever stage finds the interval has passed
/// asks for the next id; each sends the ids asked for, in order.
pub(crate) struct BarrierTrigger {
    interval: Duration,
    state: Mutex<TriggerState>,
}

struct TriggerState {
    /// The highest barrier id asked for.
    asked: u64,
    last: std::time::Instant,
    /// The last barrier of a stop, once asked for.
    last_of_stop: Option<u64>,
}

impl BarrierTrigger {
    /// Barriers every `interval`, the first numbered `first`.
    pub fn new(interval: Duration, first: u64) -> Self {
        Self {
            interval,
            state: Mutex::new(TriggerState {
                asked: first.saturating_sub(1),
                last: std::time::Instant::now(),
                last_of_stop: None,
            }),
        }
    }

    /// The highest id asked for, asking for the next one when it is due.
    pub fn due(&self) -> u64 {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.last_of_stop.is_none() && s.last.elapsed() >= self.interval {
            s.asked += 1;
            s.last = std::time::Instant::now();
        }
        s.asked
    }

    /// The last barrier of a stop: asked for by the first source that
    /// stops, the same for the others.
    pub fn stop(&self) -> u64 {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(id) = s.last_of_stop {
            return id;
        }
        s.asked += 1;
        s.last_of_stop = Some(s.asked);
        s.asked
    }
}

/// What the stages of a checkpointing job share.
#[derive(Clone)]
pub(crate) struct Checkpointing {
    /// How often the source sends a barrier.
    pub interval: Duration,
    /// When the sources send barriers.
    pub trigger: Arc<BarrierTrigger>,
    /// Where the stages give their parts.
    pub parts: Contributor,
    /// The checkpoint restored at start, if any.
    pub restored: Option<Arc<Restored>>,
    /// Which checkpoints are durable, for sinks that commit with them.
    pub durability: Arc<Durability>,
}

/// The newest durable checkpoint, told to whoever waits for it (a
/// transactional sink commits its output once the checkpoint of its
/// barrier is durable).
#[derive(Default)]
pub(crate) struct Durability {
    state: Mutex<DurableState>,
    changed: Condvar,
}

#[derive(Default)]
struct DurableState {
    /// The newest durable checkpoint and its sources' states.
    last: Option<Completed>,
    /// Why no more checkpoint will complete (the writer failed, the job
    /// is winding down).
    ended: Option<String>,
}

/// How long a sink waits for the checkpoint of its barrier.
const DURABLE_WAIT: Duration = Duration::from_secs(120);

impl Durability {
    fn completed(&self, c: &Completed) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.last = Some(c.clone());
        self.changed.notify_all();
    }

    /// No checkpoint will complete any more, for `why`.
    pub fn end(&self, why: String) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.ended.get_or_insert(why);
        self.changed.notify_all();
    }

    /// Waits until checkpoint `id` is durable: the sources' states it holds.
    ///
    /// # Errors
    /// It will never be (the writer failed, the job is ending), or it took
    /// longer than two minutes.
    pub fn wait(&self, id: u64) -> ExecResult<BTreeMap<String, serde_json::Value>> {
        let deadline = std::time::Instant::now() + DURABLE_WAIT;
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(last) = s.last.as_ref().filter(|l| l.id >= id) {
                return Ok(last.sources.clone());
            }
            if let Some(why) = &s.ended {
                return Err(ExecError::Failed(format!(
                    "checkpoint {id} will not complete: {why}"
                )));
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(ExecError::Failed(format!(
                    "checkpoint {id} did not complete within {} s",
                    DURABLE_WAIT.as_secs()
                )));
            }
            s = match self.changed.wait_timeout(s, left) {
                Ok((s, _)) => s,
                Err(p) => p.into_inner().0,
            };
        }
    }
}

/// The checkpoint a job resumes from.
pub(crate) struct Restored {
    store: CheckpointStore,
    pub manifest: Manifest,
}

impl Restored {
    /// Restores into `pipeline`, instance `instance` of `count` of its
    /// stage, the states its operators' plan nodes had. Where the run that
    /// wrote them had another number of instances of a node (another
    /// `--partitions`), its keyed state is split by key group: each row goes
    /// to the instance that now owns its key.
    ///
    /// # Errors
    /// A file that cannot be read, states of another plan, or an operator
    /// whose state cannot move between workers.
    pub fn restore(
        &self,
        plan: &PhysicalPlan,
        (instance, count): (usize, usize),
        pipeline: &mut Pipeline,
    ) -> ExecResult<()> {
        let old = Topology::build(plan, self.manifest.partitions);
        let nodes =
            plan.nodes.len() + plan.branches.iter().map(|b| b.nodes.len()).sum::<usize>() + 1;
        let mut states = Vec::new();
        for (i, (node, rescalable)) in pipeline.node_ids().into_iter().enumerate() {
            let before = old
                .stages
                .iter()
                .find(|s| (s.first + 1..=s.first + s.nodes.len()).contains(&node))
                .map_or(1, |s| s.parallelism);
            let read = |w: usize| -> ExecResult<OperatorState> {
                let mut all = crate::checkpoint::states::read_states(
                    &self.store,
                    &self.manifest,
                    &format!("w{w}"),
                    nodes,
                )?;
                Ok(all.get_mut(node).map(std::mem::take).unwrap_or_default())
            };
            if before == count {
                states.push(read(instance)?);
                continue;
            }
            let parts: Vec<OperatorState> = (0..before).map(read).collect::<ExecResult<_>>()?;
            if parts.iter().all(|p| p.parts.is_empty()) {
                states.push(OperatorState::default());
                continue;
            }
            if !rescalable {
                return Err(ExecError::from(CheckpointError::Incompatible(format!(
                    "checkpoint {} was written with --partitions {}; the state of '{}' (plan node {node}) cannot be split between another number of workers yet\nhint: run with --partitions {}, or with --from-scratch",
                    self.manifest.id,
                    self.manifest.partitions,
                    pipeline.operator_name(i),
                    self.manifest.partitions
                ))));
            }
            let owns = |keys: &[ArrayRef]| -> ExecResult<Vec<bool>> {
                Ok(key_groups(keys)?
                    .into_iter()
                    .map(|g| worker_of(g, count) == instance)
                    .collect())
            };
            states.push(pipeline.split_state(i, parts, &owns)?);
        }
        pipeline.restore(states)
    }

    /// The id of the next barrier: after the restored checkpoint's.
    pub fn next_id(&self) -> u64 {
        self.manifest.id + 1
    }
}

impl Checkpointing {
    /// Gives the operator states of `pipeline` (of stage instance `owner`)
    /// to checkpoint `id`, each under its plan node id, so a run with
    /// another topology finds them.
    ///
    /// # Errors
    /// An operator cannot read its state.
    pub fn give_operators(&self, id: u64, owner: &str, pipeline: &mut Pipeline) -> ExecResult<()> {
        let part = Self::operators(owner, pipeline)?;
        self.parts.give(id, part);
        Ok(())
    }

    /// The input of `pipeline` (of stage instance `owner`) ended after
    /// checkpoint `after`: its states now stand for it in the later ones.
    ///
    /// # Errors
    /// An operator cannot read its state.
    pub fn give_ended_operators(
        &self,
        after: u64,
        owner: &str,
        pipeline: &mut Pipeline,
    ) -> ExecResult<()> {
        let part = Self::operators(owner, pipeline)?;
        self.parts.ended(after, part);
        Ok(())
    }

    fn operators(owner: &str, pipeline: &mut Pipeline) -> ExecResult<Contribution> {
        let mut states = Vec::new();
        for ((node, _), state) in pipeline.node_ids().into_iter().zip(pipeline.snapshot()?) {
            if states.len() <= node {
                states.resize_with(node + 1, OperatorState::default);
            }
            states[node] = state;
        }
        Ok(Contribution::Operators {
            owner: owner.to_string(),
            states,
        })
    }

    /// The name the query's checkpoints are kept under.
    pub fn name<'a>(config: &'a CheckpointConfig, job: &'a str) -> &'a str {
        config.name.as_deref().unwrap_or(job)
    }

    /// The id the first barrier of this run gets.
    pub fn first_id(&self) -> u64 {
        self.restored.as_ref().map_or(1, |r| r.next_id())
    }
}

/// The name of a pipeline's states in a checkpoint: its instance of its
/// stage (files then name each operator's plan node).
pub(crate) fn owner(instance: usize) -> String {
    format!("w{instance}")
}

/// Gets `sink` ready for the checkpoints of run `run` of `job`; returns
/// the checkpoint its last committed output belongs to, if it decides. A
/// sink that commits with checkpoints (one Kafka transaction each) has a
/// transactional id per run: the run registers in the store before the
/// sink's first transaction, the sink fences the other runs registered
/// (zombies; their open transactions abort), and they are forgotten.
///
/// # Errors
/// The store cannot register the run, or the sink cannot get ready.
pub(crate) fn prepare_sink(
    config: &CheckpointConfig,
    job: &str,
    run: &str,
    sink: &mut dyn crate::connectors::Sink,
) -> Result<Option<CheckpointRef>, EngineError> {
    let name = Checkpointing::name(config, job);
    if !sink.commits_with_checkpoints() {
        return Ok(sink.prepare_checkpoints(name, (run, &[]))?);
    }
    let store = CheckpointStore::open(&config.location, name).map_err(ExecError::from)?;
    let earlier = store.register_run(run).map_err(ExecError::from)?;
    let pinned = sink.prepare_checkpoints(name, (run, &earlier))?;
    store.forget_runs(&earlier).map_err(ExecError::from)?;
    Ok(pinned)
}

/// Opens the query's checkpoints: the latest complete one (or the one
/// `pinned` names: the checkpoint of the sink's last committed output, 0
/// for none) checked against `plan` (unless
/// `config.from_scratch`, which deletes them), and a writer loop for the
/// new ones, which completes a checkpoint once `contributors` parts are in.
///
/// # Errors
/// The store cannot be opened or read, or the latest checkpoint cannot be
/// restored into this plan (the message says why and what to do).
pub(crate) fn prepare(
    config: &CheckpointConfig,
    job: &str,
    plan: &PhysicalPlan,
    partitions: usize,
    (contributors, run, pinned): (usize, &str, Option<CheckpointRef>),
    metrics: &Arc<QueryMetrics>,
) -> Result<(Checkpointing, WriterLoop, Receiver<CompletedOrNot>), EngineError> {
    let name = Checkpointing::name(config, job);
    let fingerprint = plan_fingerprint(plan)?;
    let store = CheckpointStore::open(&config.location, name)
        .map_err(ExecError::from)?
        .for_run(run);
    if config.from_scratch {
        store.clear().map_err(ExecError::from)?;
    }
    let chosen = match pinned {
        None => store.latest().map_err(ExecError::from)?,
        // the sink committed no output yet: nothing of the state is visible
        Some(CheckpointRef { id: 0, .. }) => None,
        Some(CheckpointRef { id, run }) => Some(store.manifest(id, run.as_deref()).map_err(ExecError::from)?.ok_or_else(|| {
            ExecError::from(CheckpointError::Incompatible(format!(
                "the sink's last committed output belongs to checkpoint {id} of query '{name}', which is not in {}\nhint: the checkpoint directory is not the one this query ran with; give that one, or run with --from-scratch",
                config.location
            )))
        })?),
    };
    // newer checkpoints belong to a run whose output was not committed:
    // their epochs run again
    store
        .discard_after(chosen.as_ref().map_or(0, |m| m.id))
        .map_err(ExecError::from)?;
    let restored = match chosen {
        None => None,
        Some(manifest) => {
            check(&manifest, &fingerprint, name, config).map_err(ExecError::from)?;
            let reader = CheckpointStore::open(&config.location, name).map_err(ExecError::from)?;
            Some(Arc::new(Restored {
                store: reader,
                manifest,
            }))
        }
    };
    let (parts, loop_, completed) =
        writer::channel(store, fingerprint, contributors, config.keep, partitions);
    let seen = metrics.clone();
    let durability = Arc::new(Durability::default());
    let told = durability.clone();
    let loop_ = loop_.on_complete(Box::new(move |c: &Completed| {
        seen.checkpoint_completed(c);
        told.completed(c);
    }));
    let first = restored.as_ref().map_or(1, |r: &Arc<Restored>| r.next_id());
    Ok((
        Checkpointing {
            interval: config.interval,
            trigger: Arc::new(BarrierTrigger::new(config.interval, first)),
            parts,
            restored,
            durability,
        },
        loop_,
        completed,
    ))
}

/// What the writer reports for each checkpoint.
pub(crate) type CompletedOrNot = Result<Completed, CheckpointError>;

/// Whether the checkpoint of `manifest` may be restored into this run.
fn check(
    manifest: &Manifest,
    fingerprint: &str,
    name: &str,
    config: &CheckpointConfig,
) -> Result<(), CheckpointError> {
    let at = format!(
        "checkpoint {} of query '{name}' in {}",
        manifest.id, config.location
    );
    let fresh = "run with --from-scratch to delete its checkpoints and read the input from the beginning, or give another --checkpoint-dir";
    if manifest.fingerprint != fingerprint {
        return Err(CheckpointError::Incompatible(format!(
            "{at} was written by a different query (its plan changed where its state depends on it: the source, the operators up to the last one that keeps state, or the sink); its state cannot be restored into this one\nhint: {fresh}; formatting, a final projection or filter, and 'properties.*' options may change without this"
        )));
    }
    if manifest.finished {
        return Err(CheckpointError::Finished(format!(
            "finished earlier: {at} records that its input ended and every result was written; not run again (--from-scratch runs it from the beginning)"
        )));
    }
    // another --partitions: keyed state is split by key group at restore
    Ok(())
}
