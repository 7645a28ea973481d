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
#[derive(Debug)]
pub enum Contribution {
    /// A source's resume state at the barrier, by stream name.
    Source {
        /// The stream.
        name: String,
        /// `Source::resume_state`.
        state: serde_json::Value,
    },
    /// A pipeline's operator states once the barrier passed it.
    Operators {
        /// The pipeline: its stage and instance (`s1-w0`).
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
}

/// The writer thread of one query's checkpoints.
pub struct CheckpointWriter {
    parts: Option<Sender<(u64, Contribution)>>,
    done: Receiver<Result<Completed, CheckpointError>>,
    thread: Option<JoinHandle<()>>,
}

/// A checkpoint being gathered.
struct Gathering {
    manifest: Manifest,
    given: usize,
    since: Instant,
    failed: bool,
}

impl CheckpointWriter {
    /// A writer into `store` for the plan with `fingerprint`; a checkpoint
    /// is complete once `contributors` parts were given for it; the `keep`
    /// newest complete checkpoints are kept.
    ///
    /// # Errors
    /// The thread cannot be started.
    pub fn start(
        store: CheckpointStore,
        fingerprint: String,
        contributors: usize,
        keep: usize,
    ) -> Result<Self, CheckpointError> {
        let (parts, incoming) = unbounded::<(u64, Contribution)>();
        let (report, done) = unbounded();
        let thread = std::thread::Builder::new()
            .name("eddy-checkpoint".into())
            .spawn(move || {
                write_loop(&store, &fingerprint, contributors, keep, &incoming, &report);
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
            // a writer that stopped has said why on `completed`
            let _ = p.send((id, part));
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

fn write_loop(
    store: &CheckpointStore,
    fingerprint: &str,
    contributors: usize,
    keep: usize,
    incoming: &Receiver<(u64, Contribution)>,
    report: &Sender<Result<Completed, CheckpointError>>,
) {
    let mut gathering: BTreeMap<u64, Gathering> = BTreeMap::new();
    for (id, part) in incoming {
        let g = gathering.entry(id).or_insert_with(|| Gathering {
            manifest: Manifest::new(id, fingerprint),
            given: 0,
            since: Instant::now(),
            failed: false,
        });
        g.given += 1;
        if !g.failed {
            let written = match part {
                Contribution::Source { name, state } => {
                    g.manifest.sources.insert(name, state);
                    Ok(())
                }
                Contribution::Sink { name, state } => {
                    g.manifest.sinks.insert(name, state);
                    Ok(())
                }
                Contribution::Operators { owner, states } => {
                    write_states(store, id, &owner, &states).map(|f| g.manifest.files.extend(f))
                }
            };
            if let Err(e) = written {
                g.failed = true;
                let _ = report.send(Err(e));
            }
        }
        if g.given < contributors {
            continue;
        }
        let Some(g) = gathering.remove(&id) else {
            continue;
        };
        if g.failed {
            continue;
        }
        let result = store
            .commit(&g.manifest)
            .and_then(|()| store.prune(keep))
            .map(|_| Completed {
                id,
                bytes: g.manifest.bytes(),
                files: g.manifest.files.len(),
                took: g.since.elapsed(),
            });
        let _ = report.send(result);
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
        assert!(store.manifest(1).unwrap().is_none());
        assert!(store.manifest(2).unwrap().is_some());
        assert!(dir.path().join("q/chk-00000000000000000004").exists());
    }
}
