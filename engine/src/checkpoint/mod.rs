//! Durable checkpoints (docs/checkpoints.md). At a barrier every stateful
//! operator's snapshot is written as Arrow IPC files; a manifest written
//! last, atomically, makes the checkpoint complete: the sources' resume
//! states at the barrier, the sinks' states, the plan's fingerprint and the
//! files. A checkpoint without
//! a manifest never happened. [`store::CheckpointStore`] keeps them in an
//! `object_store` (a local directory now; object storage later with no
//! change above it).

pub mod states;
pub mod store;
pub mod writer;

use serde::{Deserialize, Serialize};

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The store refused an operation (disk full, permissions, ...).
    #[error("checkpoint store {location}: {doing}: {source}")]
    Store {
        /// The store's root.
        location: String,
        /// What was being done.
        doing: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
    /// A snapshot file or manifest is not what Eddy wrote.
    #[error("checkpoint store {location}: {what}")]
    Corrupt {
        /// The store's root.
        location: String,
        /// What is wrong, and with which file.
        what: String,
    },
    /// An error already reported elsewhere, by its text.
    #[error("{0}")]
    Failed(String),
    /// The latest checkpoint records that the query finished: its input
    /// ended and every result was written; there is nothing to resume.
    #[error("{0}")]
    Finished(String),
    /// The latest checkpoint cannot be restored into this query.
    #[error("{0}")]
    Incompatible(String),
    /// The store's location cannot be used.
    #[error("checkpoint location '{location}': {reason}")]
    Location {
        /// As given.
        location: String,
        /// Why, and what to give instead.
        reason: String,
    },
}

impl CheckpointError {
    /// The same error as text, for a second receiver (the store's own
    /// errors cannot be cloned).
    pub fn clone_message(&self) -> Self {
        Self::Failed(self.to_string())
    }
}

/// A snapshot file of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Its name inside the checkpoint.
    pub name: String,
    /// Rows it holds.
    pub rows: u64,
    /// Its size in bytes.
    pub bytes: u64,
}

/// What makes a checkpoint complete (`_MANIFEST.json`, written last).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The layout's version.
    pub version: u32,
    /// The checkpoint's id: the barrier's, growing.
    pub id: u64,
    /// The plan it is a state of (see [`fingerprint`]).
    pub fingerprint: String,
    /// When it was completed (ms since the epoch).
    pub created_ms: i64,
    /// Each source's resume state at the barrier (`Source::resume_state`),
    /// by stream name.
    pub sources: std::collections::BTreeMap<String, serde_json::Value>,
    /// Each source's event-time clock at the barrier (the watermark and,
    /// for a partitioned source, each partition's largest event time), by
    /// stream name.
    #[serde(default)]
    pub watermarks: std::collections::BTreeMap<String, serde_json::Value>,
    /// Each sink's state at the barrier (e.g. a file's committed length),
    /// by sink name.
    pub sinks: std::collections::BTreeMap<String, serde_json::Value>,
    /// The partitions (`--partitions`) of the run that wrote it.
    #[serde(default = "one")]
    pub partitions: usize,
    /// Set on the checkpoint written when the query's input ended and every
    /// result was written: there is nothing left to resume.
    #[serde(default)]
    pub finished: bool,
    /// The snapshot files.
    pub files: Vec<FileEntry>,
    /// The run that wrote it (see [`new_run`]): its directory's suffix.
    /// Empty for checkpoints of builds before runs were named.
    #[serde(default)]
    pub run: String,
}

/// A checkpoint as a sink's last commit names it: `id` (0: none yet) and
/// the run that wrote it (`None`: a marker of a build before runs were
/// named, the newest complete checkpoint `id` then).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRef {
    /// The checkpoint's id.
    pub id: u64,
    /// The run that wrote it.
    pub run: Option<String>,
}

/// A name for this run's checkpoints, unique among the runs of a query and
/// growing with time (nanoseconds since the epoch, then the process id, in
/// fixed-width hex): every run writes its checkpoints into directories of
/// its own, so an instance that was paused and has been replaced (a zombie)
/// can never overwrite the files of the one that took over.
pub fn new_run() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!("{nanos:016x}{:08x}", std::process::id())
}

fn one() -> usize {
    1
}

/// The manifest layout this build writes and reads.
pub const MANIFEST_VERSION: u32 = 1;

impl Manifest {
    /// A manifest for checkpoint `id` of the plan with `fingerprint`.
    pub fn new(id: u64, fingerprint: &str) -> Self {
        Self {
            version: MANIFEST_VERSION,
            id,
            fingerprint: fingerprint.to_string(),
            created_ms: chrono::Utc::now().timestamp_millis(),
            sources: Default::default(),
            watermarks: Default::default(),
            sinks: Default::default(),
            partitions: 1,
            finished: false,
            files: Vec::new(),
            run: String::new(),
        }
    }

    /// Bytes of its snapshot files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

/// A plan's fingerprint: the sha256 of its JSON form, so a checkpoint is
/// restored only into the plan that wrote it.
pub fn fingerprint(plan_json: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(plan_json.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
