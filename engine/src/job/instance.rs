//! One process's share of a query run by several (`eddy run --instance-id
//! K`, docs/scale-out.md): for each stage, a member of the stage's consumer
//! group (`eddy.<query>.s1` over the source topic, `eddy.<query>.s2` over
//! the repartition topic) with static membership (`group.instance.id`
//! `eddy.<query>.s<n>.<K>`: a restart with the same id gets its partitions
//! back). The member reads nothing itself (its partitions are paused): each
//! partition the group assigns it runs as a task job ([`Stages::task`]),
//! restored from the task's checkpoint; before a partition is revoked its
//! task stops, taking a last checkpoint and committing its transaction, so
//! the next owner resumes exactly there.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::{ClientConfig, ClientContext};

use crate::checkpoint::store::CheckpointStore;
use crate::connectors::Sink;
use crate::connectors::kafka::repartition::RepartitionTopic;
use crate::error::{EngineError, ExecError};
use crate::job::scale_out::{Stages, Task};
use crate::job::{JobHandle, JobManager, RunOptions};

/// Makes each stage-2 task's sink (tests; `None`: the plan's sink).
pub type SinkFactory = Arc<dyn Fn() -> Box<dyn Sink> + Send + Sync>;

/// What one process runs of a query.
#[derive(Clone)]
pub struct InstanceSpec {
    /// The query's name (its checkpoints' and groups' prefix), the same on
    /// every process.
    pub query: String,
    /// This process's id among them (`--instance-id`).
    pub instance: String,
    /// The query split at its exchange.
    pub stages: Stages,
    /// The repartition topic (it must exist).
    pub topic: RepartitionTopic,
    /// librdkafka settings of the cluster (bootstrap servers, security).
    pub config: ClientConfig,
    /// How each task runs; must take checkpoints into a store every
    /// process reaches.
    pub options: RunOptions,
    /// Stage-2 tasks' sinks, when not the plan's.
    pub sink: Option<SinkFactory>,
    /// How long a member may be silent before the group moves its
    /// partitions (`session.timeout.ms`).
    pub session_timeout: Duration,
}

/// A running instance.
pub struct Instance {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Result<(), EngineError>>>,
    share: Arc<Shared>,
}

/// What an instance's members update and its readers read: the tasks it
/// runs and what happened to its share.
struct Shared {
    query: String,
    instance: String,
    owned: Arc<Mutex<BTreeMap<Task, JobHandle>>>,
    events: Arc<Mutex<Events>>,
}

impl crate::exec::export::Share for Shared {
    fn status(&self) -> crate::exec::export::ShareStatus {
        use crate::exec::export::{ShareStatus, ShareTask};
        let tasks = lock(&self.owned)
            .iter()
            .map(|(task, job)| ShareTask {
                name: task.name(&self.query),
                stage: match task {
                    Task::First(..) => 1,
                    Task::Second(_) => 2,
                },
                metrics: job.metrics().clone(),
                source: job.source_counters().clone(),
            })
            .collect();
        let e = lock(&self.events);
        ShareStatus {
            query: self.query.clone(),
            instance: self.instance.clone(),
            tasks,
            rebalances: e.rebalances,
            last_rebalance: e.last_rebalance,
        }
    }
}

/// What happened to an instance's share of the query, as an operator
/// reads it (the CLI prints it; metrics and the server show it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceEvent {
    /// A stage's group took partitions away (a member joined or left).
    Revoked { stage: u8, partitions: usize },
    /// A stage's group gave this instance partitions, `took` after it
    /// revoked them (`None`: the first assignment).
    Assigned {
        stage: u8,
        partitions: usize,
        took: Option<Duration>,
    },
    /// A task started here: restored from checkpoint `restored.0` (its
    /// last, found in the shared store) in `restored.1`, or with none.
    Started {
        task: Task,
        restored: Option<(u64, Duration)>,
    },
    /// A task stopped here: revoked, or the instance stops.
    Stopped(Task),
    /// A task's input ended and its last results are committed.
    Finished(Task),
}

/// The events not yet taken, and counts kept for the instance's life.
#[derive(Default)]
struct Events {
    pending: Vec<InstanceEvent>,
    rebalances: u64,
    last_rebalance: Option<Duration>,
    revoked_at: [Option<Instant>; 2],
}

/// An instance's rebalances so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rebalances {
    /// Assignments that followed a revocation.
    pub count: u64,
    /// How long the last one took, revocation to assignment.
    pub last: Option<Duration>,
}

impl Instance {
    /// Joins both stages' groups and runs the tasks assigned.
    ///
    /// # Errors
    /// No checkpoints, or the source's partitions cannot be read.
    pub fn start(spec: InstanceSpec) -> Result<Self, EngineError> {
        if spec.options.checkpoint.is_none() {
            return Err(EngineError::from(crate::error::PlanError::unplaced(
                "a query run by several processes needs checkpoints: give --checkpoint-dir (a directory every process reaches)",
            )));
        }
        let sources = Arc::new(spec.stages.source_partitions()?);
        let spec = Arc::new(spec);
        let stop = Arc::new(AtomicBool::new(false));
        let owned = Arc::new(Mutex::new(BTreeMap::new()));
        let events = Arc::new(Mutex::new(Events::default()));
        let mut threads = Vec::new();
        // co-partitioned: one stage, each task the whole query
        let stages: &[u8] = if spec.stages.hop { &[1, 2] } else { &[1] };
        for &stage in stages {
            let member = Member {
                stage,
                spec: spec.clone(),
                sources: sources.clone(),
                owned: owned.clone(),
                events: events.clone(),
                jobs: JobManager::new(),
            };
            let stop = stop.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("eddy-member-s{stage}"))
                    .spawn(move || member.run(&stop))
                    .map_err(|e| ExecError::Internal(format!("starting a group member: {e}")))?,
            );
        }
        Ok(Self {
            stop,
            threads,
            share: Arc::new(Shared {
                query: spec.query.clone(),
                instance: spec.instance.clone(),
                owned,
                events,
            }),
        })
    }

    /// What this instance runs, for a metrics exporter
    /// ([`crate::exec::export::Exporter::register_share`]).
    pub fn share(&self) -> Arc<dyn crate::exec::export::Share> {
        self.share.clone()
    }

    /// Whether every member still runs (a failed task stops them).
    pub fn is_running(&self) -> bool {
        self.threads.iter().all(|t| !t.is_finished())
    }

    /// The tasks this process runs now.
    pub fn tasks(&self) -> Vec<Task> {
        lock(&self.share.owned).keys().cloned().collect()
    }

    /// The events since the last call, oldest first.
    pub fn take_events(&self) -> Vec<InstanceEvent> {
        std::mem::take(&mut lock(&self.share.events).pending)
    }

    /// The rebalances this instance went through.
    pub fn rebalances(&self) -> Rebalances {
        let e = lock(&self.share.events);
        Rebalances {
            count: e.rebalances,
            last: e.last_rebalance,
        }
    }

    /// Stops: every task takes a last checkpoint and commits, then the
    /// members leave.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Waits until stopped (or a member failed).
    ///
    /// # Errors
    /// A task or a member failed.
    pub fn wait(&mut self) -> Result<(), EngineError> {
        let mut first = Ok(());
        for t in std::mem::take(&mut self.threads) {
            let result = t.join().unwrap_or_else(|_| {
                Err(ExecError::Internal("a group member panicked".into()).into())
            });
            if first.is_ok() {
                first = result;
            }
            // one member failing stops the other
            self.stop.store(true, Ordering::SeqCst);
        }
        first
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One stage's group member.
struct Member {
    stage: u8,
    spec: Arc<InstanceSpec>,
    sources: Arc<Vec<(String, i32)>>,
    owned: Arc<Mutex<BTreeMap<Task, JobHandle>>>,
    events: Arc<Mutex<Events>>,
    jobs: JobManager,
}

/// The member's view of the group's decisions.
struct Membership {
    stage: u8,
    owned: Arc<Mutex<BTreeMap<Task, JobHandle>>>,
    events: Arc<Mutex<Events>>,
    /// The last rebalance event was a revocation, now done.
    unassigned: AtomicBool,
    /// Partitions assigned and not yet started.
    assigned: Mutex<Vec<(String, i32)>>,
}

impl ClientContext for Membership {}

impl ConsumerContext for Membership {
    /// A revoked partition's task stops (last checkpoint, transaction
    /// committed) before the group hands the partition on.
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            {
                let mut events = lock(&self.events);
                events.revoked_at[usize::from(self.stage - 1)] = Some(Instant::now());
                events.pending.push(InstanceEvent::Revoked {
                    stage: self.stage,
                    partitions: tpl.count(),
                });
            }
            for e in tpl.elements() {
                let task = task_of(self.stage, e.topic(), e.partition());
                let handle = lock(&self.owned).remove(&task);
                if let Some(h) = handle {
                    h.stop();
                    let _ = h.wait();
                    lock(&self.events)
                        .pending
                        .push(InstanceEvent::Stopped(task));
                }
                lock(&self.assigned)
                    .retain(|(t, p)| (t.as_str(), *p) != (e.topic(), e.partition()));
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(_) = rebalance {
            self.unassigned.store(true, Ordering::SeqCst);
        }
        if let Rebalance::Assign(tpl) = rebalance {
            // the member reads nothing: its tasks do
            let _ = consumer.pause(tpl);
            {
                let mut events = lock(&self.events);
                let took = events.revoked_at[usize::from(self.stage - 1)]
                    .take()
                    .map(|t| t.elapsed());
                if took.is_some() {
                    events.rebalances += 1;
                    events.last_rebalance = took;
                }
                events.pending.push(InstanceEvent::Assigned {
                    stage: self.stage,
                    partitions: tpl.count(),
                    took,
                });
            }
            lock(&self.assigned).extend(
                tpl.elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition())),
            );
        }
    }
}

/// Leaves the group so that the others take this member's partitions
/// now. A static member leaves only by unsubscribing (closing the consumer
/// does not send LeaveGroup, KIP-345), and the request goes out once the
/// revocation the unsubscribe starts is done: poll until then (a member
/// without partitions may see none: at most a few seconds).
fn leave(consumer: &BaseConsumer<Membership>) {
    consumer.context().unassigned.store(false, Ordering::SeqCst);
    consumer.unsubscribe();
    let asked = Instant::now();
    while !consumer.context().unassigned.load(Ordering::SeqCst)
        && asked.elapsed() < Duration::from_secs(5)
    {
        let _ = consumer.poll(Duration::from_millis(50));
    }
    // The revocation callback runs before librdkafka has finished the
    // unassign that sends LeaveGroup; a close before then is a static
    // member's termination, which sends none (KIP-345), and a broker
    // without session timeouts then keeps the partitions on this member
    // for good (seen on noida-db: a stage's group never rebalanced). Give
    // the LeaveGroup time to go out; closing waits for its response.
    let sent = Instant::now();
    while sent.elapsed() < Duration::from_millis(500) {
        let _ = consumer.poll(Duration::from_millis(50));
    }
}

fn task_of(stage: u8, topic: &str, partition: i32) -> Task {
    if stage == 1 {
        Task::First(topic.to_string(), partition)
    } else {
        Task::Second(partition)
    }
}

impl Member {
    fn run(self, stop: &AtomicBool) -> Result<(), EngineError> {
        let spec = &self.spec;
        let mut config = spec.config.clone();
        config
            .set(
                "group.id",
                super::scale_out::group_name(&spec.query, self.stage),
            )
            .set(
                "group.instance.id",
                format!("eddy.{}.s{}.{}", spec.query, self.stage, spec.instance),
            )
            .set("enable.auto.commit", "false")
            .set(
                "session.timeout.ms",
                spec.session_timeout.as_millis().to_string(),
            );
        let context = Membership {
            stage: self.stage,
            owned: self.owned.clone(),
            events: self.events.clone(),
            unassigned: AtomicBool::new(false),
            assigned: Mutex::new(Vec::new()),
        };
        let consumer: BaseConsumer<Membership> =
            config.create_with_context(context).map_err(|e| {
                ExecError::Internal(format!("joining the stage {} group: {e}", self.stage))
            })?;
        let topics: Vec<String> = if self.stage == 1 {
            let mut t: Vec<String> = self.sources.iter().map(|(t, _)| t.clone()).collect();
            t.dedup();
            t
        } else {
            vec![spec.topic.name.clone()]
        };
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&names)
            .map_err(|e| ExecError::Internal(format!("subscribing to {names:?}: {e}")))?;
        let mut checked = Instant::now();
        let result = loop {
            if stop.load(Ordering::SeqCst) {
                break Ok(());
            }
            // drives the group (its callbacks run here); nothing is fetched
            let _ = consumer.poll(Duration::from_millis(100));
            let started = std::mem::take(&mut *lock(&consumer.context().assigned));
            if let Err(e) = self.start_tasks(started) {
                break Err(e);
            }
            if checked.elapsed() > Duration::from_millis(500) {
                checked = Instant::now();
                if let Err(e) = self.check_tasks() {
                    break Err(e);
                }
            }
        };
        // a stop: every task checkpoints and commits before the member leaves
        let mine: Vec<(Task, JobHandle)> = {
            let mut owned = lock(&self.owned);
            let keys: Vec<Task> = owned.keys().filter(|t| self.is_mine(t)).cloned().collect();
            keys.into_iter()
                .filter_map(|k| owned.remove(&k).map(|h| (k, h)))
                .collect()
        };
        for (_, h) in &mine {
            h.stop();
        }
        for (task, h) in mine {
            let _ = h.wait();
            lock(&self.events)
                .pending
                .push(InstanceEvent::Stopped(task));
        }
        leave(&consumer);
        result
    }

    fn is_mine(&self, task: &Task) -> bool {
        matches!(
            (self.stage, task),
            (1, Task::First(..)) | (2, Task::Second(_))
        )
    }

    /// Starts the task of each newly assigned partition; a task whose input
    /// has ended (a finished checkpoint) is not started again.
    fn start_tasks(&self, assigned: Vec<(String, i32)>) -> Result<(), EngineError> {
        for (topic, partition) in assigned {
            let task = task_of(self.stage, &topic, partition);
            if lock(&self.owned).contains_key(&task) {
                continue;
            }
            let spec = &self.spec;
            let mut job = spec.stages.task(
                (&spec.query, &task),
                &spec.topic,
                &spec.config,
                &self.sources,
                &spec.options,
            )?;
            // the task that writes the query's output
            let last = matches!(task, Task::Second(_)) || !spec.stages.hop;
            if let (true, Some(make)) = (last, &spec.sink) {
                job = job.sink(make());
            }
            match self.jobs.submit(job) {
                Ok(h) => {
                    let restored = h.metrics().checkpoint_stats().restored;
                    lock(&self.owned).insert(task.clone(), h);
                    lock(&self.events)
                        .pending
                        .push(InstanceEvent::Started { task, restored });
                }
                Err(EngineError::Exec(ExecError::Checkpoint(
                    crate::checkpoint::CheckpointError::Finished(_),
                ))) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// A task that failed fails the instance; one that finished (its input
    /// ended) is let go.
    fn check_tasks(&self) -> Result<(), EngineError> {
        let done: Vec<(Task, JobHandle)> = {
            let mut owned = lock(&self.owned);
            let keys: Vec<Task> = owned
                .iter()
                .filter(|(t, h)| self.is_mine(t) && h.is_finished())
                .map(|(t, _)| t.clone())
                .collect();
            keys.into_iter()
                .filter_map(|k| owned.remove(&k).map(|h| (k, h)))
                .collect()
        };
        for (task, h) in done {
            h.wait().map_err(|e| {
                ExecError::Internal(format!("task {}: {e}", task.name(&self.spec.query)))
            })?;
            lock(&self.events)
                .pending
                .push(InstanceEvent::Finished(task));
        }
        Ok(())
    }
}

/// Whether every task of the query has finished (its input ended and its
/// last results are committed): the query is done on every process.
///
/// # Errors
/// The checkpoint store cannot be read.
pub fn all_finished(spec: &InstanceSpec, sources: &[(String, i32)]) -> Result<bool, EngineError> {
    let Some(c) = &spec.options.checkpoint else {
        return Ok(false);
    };
    let mut tasks: Vec<Task> = sources
        .iter()
        .map(|(t, p)| Task::First(t.clone(), *p))
        .collect();
    if spec.stages.hop {
        tasks.extend((0..spec.topic.partitions).map(Task::Second));
    }
    for task in tasks {
        let store =
            CheckpointStore::open(&c.location, &task.name(&spec.query)).map_err(ExecError::from)?;
        if !store
            .latest()
            .map_err(ExecError::from)?
            .is_some_and(|m| m.finished)
        {
            return Ok(false);
        }
    }
    Ok(true)
}
