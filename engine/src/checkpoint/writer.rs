//! The checkpoint writer: one thread per query that takes what each part of
//! the job contributes to a checkpoint (the sources' resume states at the
//! barrier, every pipeline's operator states, the sinks' states), writes the
//! snapshot files as they come, and once every contributor has given its
//! part writes the manifest, prunes old checkpoints and says so. The
//! operators only hand their state over a channel: no I/O in their loops.
//!
//! Each contributor gives its parts in barrier order, so when checkpoint N
//! completes every earlier one has completed (or failed) already.

use std::collections::BTreeMap;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};

use crate::checkpoint::states::write_states;
use crate::checkpoint::store::CheckpointStore;
use crate::checkpoint::{CheckpointError, Manifest};
use crate::exec::operator::OperatorState;

/// What one part of the job gives to a checkpoint.
#[derive(Debug, Clone)]
pub enum Contribution {
    /// A source's resume state at the barrier, by stream name.
    Source {
        /// The stream.
        name: String,
        /// `Source::resume_state`.
        state: serde_json::Value,
        /// Its event-time clock, if it has one.
        watermark: Option<serde_json::Value>,
    },
    /// A pipeline's operator states once the barrier passed it.
    Operators {
        /// The pipeline: its stage and instance (`s1-0`).
        owner: String,
        /// `Pipeline::snapshot`.
        states: Vec<OperatorState>,
    },
    /// A sink's state once it flushed everything before the barrier.
    Sink {
        /// The sink.
        name: String,
        /// Its state (e.g. a file's committed length).
        state: serde_json::Value,
    },
}

/// A checkpoint made durable.
#[derive(Debug, Clone, PartialEq)]
pub struct Completed {
    /// Its id.
    pub id: u64,
    /// Bytes of snapshot files.
    pub bytes: u64,
    /// Snapshot files.
    pub files: usize,
    /// From the first contribution to the manifest.
    pub took: Duration,
    /// The sources' resume states it holds, by stream (a transactional
    /// sink commits them with its output).
    pub sources: BTreeMap<String, serde_json::Value>,
}

/// What the parts of a job send the writer.
enum ToWriter {
    Part(u64, Contribution),
    /// The input ended and the sink `name` closed with `state`: a last,
    /// finished checkpoint.
    Finished {
        id: u64,
        name: String,
        state: serde_json::Value,
    },
    /// A part of the job ended (its input did) after giving to checkpoint
    /// `after`: what it was at the end stands in for it in every later one.
    Ended {
        after: u64,
        part: Contribution,
    },
}

/// A part of a job's handle on the writer: cheap to clone, never blocks.
#[derive(Clone)]
pub struct Contributor(Sender<ToWriter>);

impl Contributor {
    /// Gives a part of checkpoint `id`; each contributor gives its parts in
    /// barrier order.
    pub fn give(&self, id: u64, part: Contribution) {
        // a writer that stopped has said why
        let _ = self.0.send(ToWriter::Part(id, part));
    }

    /// The input ended and sink `name` wrote everything (its final `state`):
    /// the writer records it as checkpoint `id`, after the last one.
    pub fn finished(&self, id: u64, name: String, state: serde_json::Value) {
        let _ = self.0.send(ToWriter::Finished { id, name, state });
    }

    /// This part of the job ended after giving to checkpoint `after` (a
    /// source of several that was read to its end, the stages only it
    /// fed): `part`, what it was at its end, counts as its part of every
    /// later checkpoint.
    pub fn ended(&self, after: u64, part: Contribution) {
        let _ = self.0.send(ToWriter::Ended { after, part });
    }
}

/// Called with each checkpoint made durable.
pub type OnComplete = Box<dyn Fn(&Completed) + Send>;

/// The writer's loop, to run on a thread of the caller's (see
/// [`WriterLoop::run`]); it ends once every [`Contributor`] is gone.
pub struct WriterLoop {
    store: CheckpointStore,
    fingerprint: String,
    contributors: usize,
    keep: usize,
    partitions: usize,
    incoming: Receiver<ToWriter>,
    report: Sender<Result<Completed, CheckpointError>>,
    on_complete: Option<OnComplete>,
}

/// A writer into `store` for the plan with `fingerprint` run with
/// `partitions`: a checkpoint is complete once `contributors` parts were
/// given for it; the `keep` newest complete checkpoints are kept. Returns
/// the handle the job's parts give through, the loop, and where each
/// checkpoint's outcome is reported (oldest first).
pub fn channel(
    store: CheckpointStore,
    fingerprint: String,
    contributors: usize,
    keep: usize,
    partitions: usize,
) -> (
    Contributor,
    WriterLoop,
    Receiver<Result<Completed, CheckpointError>>,
) {
    let (parts, incoming) = unbounded();
    let (report, done) = unbounded();
    let writer = WriterLoop {
        store,
        fingerprint,
        contributors,
        keep,
        partitions,
        incoming,
        report,
        on_complete: None,
    };
    (Contributor(parts), writer, done)
}

/// The writer thread of one query's checkpoints (the loop on a thread of
/// its own, for tests and tools).
pub struct CheckpointWriter {
    parts: Option<Contributor>,
    done: Receiver<Result<Completed, CheckpointError>>,
    thread: Option<JoinHandle<()>>,
}

/// A checkpoint being gathered.
struct Gathering {
    manifest: Manifest,
    given: usize,
    since: Instant,
}

impl CheckpointWriter {
    /// A writer thread running [`channel`]'s loop (with one partition).
    ///
    /// # Errors
    /// The thread cannot be started.
    pub fn start(
        store: CheckpointStore,
        fingerprint: String,
        contributors: usize,
        keep: usize,
    ) -> Result<Self, CheckpointError> {
        let (parts, writer, done) = channel(store, fingerprint, contributors, keep, 1);
        let thread = std::thread::Builder::new()
            .name("eddy-checkpoint".into())
            .spawn(move || {
                let _ = writer.run();
            })
            .map_err(|e| CheckpointError::Location {
                location: "checkpoint writer".into(),
                reason: format!("cannot start its thread: {e}"),
            })?;
        Ok(Self {
            parts: Some(parts),
            done,
            thread: Some(thread),
        })
    }

    /// Gives a part of checkpoint `id` (never blocks).
    pub fn give(&self, id: u64, part: Contribution) {
        if let Some(p) = &self.parts {
            p.give(id, part);
        }
    }

    /// The checkpoints completed (or failed) so far, oldest first.
    pub fn completed(&self) -> &Receiver<Result<Completed, CheckpointError>> {
        &self.done
    }

    /// Writes what was given, then stops. Checkpoints still missing parts
    /// stay incomplete (never read, pruned later). Returns the reports not
    /// yet taken from [`CheckpointWriter::completed`].
    pub fn finish(mut self) -> Vec<Result<Completed, CheckpointError>> {
        self.parts = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.done.try_iter().collect()
    }
}

impl Drop for CheckpointWriter {
    fn drop(&mut self) {
        self.parts = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl WriterLoop {
    /// Calls `f` with each checkpoint made durable (e.g. to update metrics).
    pub fn on_complete(mut self, f: OnComplete) -> Self {
        self.on_complete = Some(f);
        self
    }

    /// Writes checkpoints as their parts come, until every contributor is
    /// gone. Checkpoints still missing parts then stay incomplete.
    ///
    /// # Errors
    /// The first checkpoint that could not be written (also reported):
    /// the query cannot go on without durable checkpoints.
    pub fn run(self) -> Result<(), CheckpointError> {
        let mut gathering: BTreeMap<u64, Gathering> = BTreeMap::new();
        // the parts of ended contributors, for the checkpoints after theirs
        let mut standing: Vec<(u64, Contribution)> = Vec::new();
        for message in &self.incoming {
            let result = match message {
                ToWriter::Part(id, part) => {
                    if let std::collections::btree_map::Entry::Vacant(e) = gathering.entry(id) {
                        match self.gathering(id, &standing) {
                            Ok(g) => {
                                e.insert(g);
                            }
                            Err(e) => return Err(self.failed(e)),
                        }
                    }
                    self.take(&mut gathering, id, part)
                        .map(|d| d.into_iter().collect())
                }
                ToWriter::Finished { id, name, state } => {
                    self.gathering(id, &standing).and_then(|mut g| {
                        g.manifest.finished = true;
                        g.manifest.sinks.insert(name, state);
                        self.complete(g).map(|d| vec![d])
                    })
                }
                ToWriter::Ended { after, part } => {
                    // checkpoints already begun after it lack only this part
                    let later: Vec<u64> = gathering.range(after + 1..).map(|(id, _)| *id).collect();
                    standing.push((after, part.clone()));
                    let mut done = Vec::new();
                    let mut failed = None;
                    for id in later {
                        match self.take(&mut gathering, id, part.clone()) {
                            Ok(d) => done.extend(d),
                            Err(e) => {
                                failed = Some(e);
                                break;
                            }
                        }
                    }
                    failed.map_or(Ok(done), Err)
                }
            };
            match result {
                Ok(done) => {
                    for done in done {
                        if let Some(f) = &self.on_complete {
                            f(&done);
                        }
                        let _ = self.report.send(Ok(done));
                    }
                }
                Err(e) => return Err(self.failed(e)),
            }
        }
        Ok(())
    }

    /// Reports `e`, the end of this loop. A store error after a newer run
    /// took over (this one was paused, and that one discarded the
    /// checkpoint it was writing) says so: this run is fenced.
    fn failed(&self, e: CheckpointError) -> CheckpointError {
        let e = match (&e, self.store.newer_run()) {
            (CheckpointError::Store { .. }, Some(newer)) => CheckpointError::Superseded(format!(
                "fenced: a newer run of this query ({newer}) took over from this one and discarded the checkpoint it was writing ({e}); this one stops, and its open transaction is aborted, so no row is written twice"
            )),
            _ => e,
        };
        let _ = self.report.send(Err(e.clone_message()));
        e
    }

    /// A checkpoint begun, with the parts of the contributors that ended
    /// before it already in.
    fn gathering(
        &self,
        id: u64,
        standing: &[(u64, Contribution)],
    ) -> Result<Gathering, CheckpointError> {
        let mut manifest = Manifest::new(id, &self.fingerprint);
        manifest.partitions = self.partitions;
        let mut g = Gathering {
            manifest,
            given: 0,
            since: Instant::now(),
        };
        for (_, part) in standing.iter().filter(|(after, _)| *after < id) {
            self.add(&mut g, id, part.clone())?;
        }
        Ok(g)
    }

    /// Takes one part; the checkpoint it completed, if it did.
    fn take(
        &self,
        gathering: &mut BTreeMap<u64, Gathering>,
        id: u64,
        part: Contribution,
    ) -> Result<Option<Completed>, CheckpointError> {
        let Some(g) = gathering.get_mut(&id) else {
            return Ok(None);
        };
        self.add(g, id, part)?;
        if g.given < self.contributors {
            return Ok(None);
        }
        match gathering.remove(&id) {
            Some(g) => self.complete(g).map(Some),
            None => Ok(None),
        }
    }

    /// Adds one part to checkpoint `id`.
    fn add(&self, g: &mut Gathering, id: u64, part: Contribution) -> Result<(), CheckpointError> {
        g.given += 1;
        match part {
            Contribution::Source {
                name,
                state,
                watermark,
            } => {
                if let Some(w) = watermark {
                    g.manifest.watermarks.insert(name.clone(), w);
                }
                g.manifest.sources.insert(name, state);
            }
            Contribution::Sink { name, state } => {
                g.manifest.sinks.insert(name, state);
            }
            Contribution::Operators { owner, states } => {
                let files = write_states(&self.store, id, &owner, &states)?;
                g.manifest.files.extend(files);
            }
        }
        Ok(())
    }

    fn complete(&self, g: Gathering) -> Result<Completed, CheckpointError> {
        self.store.commit(&g.manifest)?;
        self.store.prune(self.keep)?;
        Ok(Completed {
            id: g.manifest.id,
            bytes: g.manifest.bytes(),
            files: g.manifest.files.len(),
            took: g.since.elapsed(),
            sources: g.manifest.sources.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::grouped_state::state_batch;
    use arrow::array::{ArrayRef, Int64Array};
    use std::sync::Arc;

    fn states(v: i64) -> Vec<OperatorState> {
        let mut s = OperatorState::default();
        let col = Arc::new(Int64Array::from(vec![v, v + 1])) as ArrayRef;
        s.push(
            "groups",
            state_batch(vec![("key0".into(), col)], 2).unwrap(),
        );
        vec![OperatorState::default(), s]
    }

    #[test]
    fn a_checkpoint_completes_once_every_part_is_in_whatever_the_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap();
        let w =
            CheckpointWriter::start(CheckpointStore::open(root, "q").unwrap(), "fp".into(), 3, 2)
                .unwrap();
        for id in 1..=3 {
            w.give(
                id,
                Contribution::Sink {
                    name: "out".into(),
                    state: serde_json::json!({ "length": id * 100 }),
                },
            );
            w.give(
                id,
                Contribution::Operators {
                    owner: "s1-w0".into(),
                    states: states(id as i64),
                },
            );
            w.give(
                id,
                Contribution::Source {
                    name: "bids".into(),
                    state: serde_json::json!({ "next_event": id * 10 }),
                    watermark: None,
                },
            );
            let done = w
                .completed()
                .recv_timeout(Duration::from_secs(10))
                .unwrap()
                .unwrap();
            assert_eq!((done.id, done.files), (id, 1));
        }
        // checkpoint 4 lacks its sink's part: it never completes
        w.give(
            4,
            Contribution::Source {
                name: "bids".into(),
                state: serde_json::json!({ "next_event": 40 }),
                watermark: None,
            },
        );
        w.give(
            4,
            Contribution::Operators {
                owner: "s1-w0".into(),
                states: states(4),
            },
        );
        assert!(w.finish().is_empty());
        let store = CheckpointStore::open(root, "q").unwrap();
        let latest = store.latest().unwrap().unwrap();
        assert_eq!(latest.id, 3);
        assert_eq!(
            latest.sources["bids"],
            serde_json::json!({ "next_event": 30 })
        );
        assert_eq!(latest.sinks["out"], serde_json::json!({ "length": 300 }));
        let back = crate::checkpoint::states::read_states(&store, &latest, "s1-w0", 2).unwrap();
        assert_eq!(back[1].rows(), 2);
        assert!(back[0].parts.is_empty());
        // two complete ones are kept, and the incomplete one newer than them
        assert!(store.manifest(1, None).unwrap().is_none());
        assert!(store.manifest(2, None).unwrap().is_some());
        assert!(dir.path().join("q/chk-00000000000000000004").exists());
    }
}
