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
    /// A newer run of the query took over from this one (this one was
    /// paused: a zombie) and discarded this run's unfinished checkpoint.
    #[error("{0}")]
    Superseded(String),
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

/// The sha256 of `text`, in hex.
pub fn fingerprint(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What a checkpoint of `plan` may be restored into: the fingerprint of the
/// plan as JSON without what its state does not depend on, so these changes
/// are compatible (docs/checkpoints.md):
///
/// * positions in the SQL text (comments, blank lines, formatting);
/// * stateless operators after the last stateful one (a final projection
///   or filter), and so the output columns;
/// * `properties.*` options of the source and the sink (how to reach and
///   authenticate to the broker), not which topic or file.
///
/// Anything else (the source, the stateful operators and every operator
/// before them, the sink) must be the same.
///
/// # Errors
/// The plan cannot be written as JSON (a bug).
pub fn plan_fingerprint(
    plan: &crate::plan::physical::PhysicalPlan,
) -> Result<String, crate::error::PlanError> {
    let mut v: serde_json::Value = serde_json::from_str(&plan.to_json()?)
        .map_err(|e| crate::error::PlanError::unplaced(format!("the plan JSON: {e}")))?;
    strip_positions(&mut v);
    if let Some(o) = v.as_object_mut() {
        o.remove("output_schema");
        o.remove("source_columns");
        if let Some(nodes) = o.get_mut("nodes").and_then(|n| n.as_array_mut()) {
            let stateless = |n: &serde_json::Value| {
                ["Filter", "Project", "Exchange", "Gather"]
                    .iter()
                    .any(|k| n.get(k).is_some())
            };
            let keep = nodes
                .iter()
                .rposition(|n| !stateless(n))
                .map_or(0, |i| i + 1);
            nodes.truncate(keep);
        }
    }
    for at in ["/source/options/map", "/sink/Stream/options/map"] {
        if let Some(map) = v.pointer_mut(at).and_then(|m| m.as_object_mut()) {
            map.retain(|k, _| !k.starts_with("properties."));
        }
    }
    Ok(fingerprint(&v.to_string()))
}

/// Removes every `pos` (a position in the SQL text) from `v`.
fn strip_positions(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(o) => {
            o.remove("pos");
            o.values_mut().for_each(strip_positions);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_positions),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::plan_fingerprint;

    fn fp(sql: &str) -> String {
        let script = crate::plan_script(sql).unwrap_or_else(|e| panic!("{e}"));
        plan_fingerprint(&script.queries[0]).expect("fingerprint")
    }

    const STREAMS: &str = "CREATE STREAM bids (auction BIGINT, price BIGINT, t TIMESTAMP,
          WATERMARK FOR t AS t - INTERVAL '1' SECOND)
        WITH (connector = 'kafka', topic = 'bids', format = 'json',
              'properties.bootstrap.servers' = 'a:9092');
        CREATE STREAM out WITH (connector = 'file', path = 'out.jsonl');";

    fn query(streams: &str, select: &str) -> String {
        fp(&format!("{streams}\nINSERT INTO out {select}"))
    }

    const Q: &str =
        "SELECT auction, window_start, COUNT(*) AS n FROM TUMBLE(bids, t, INTERVAL '10' SECOND)
        GROUP BY auction, window_start, window_end";

    #[test]
    fn formatting_a_final_projection_and_broker_properties_are_compatible() {
        let base = query(STREAMS, Q);
        assert_eq!(base, query(&format!("-- a comment\n\n{STREAMS}"), Q));
        let moved = STREAMS.replace("a:9092", "b:9093");
        assert_eq!(base, query(&moved, Q));
        // a final projection or filter changes the output, not the state
        let renamed = Q.replace("COUNT(*) AS n", "COUNT(*) AS bids");
        assert_eq!(base, query(STREAMS, &renamed), "renamed output");
        let having = format!("{Q} HAVING COUNT(*) > 1");
        assert_eq!(base, query(STREAMS, &having), "HAVING");
    }

    #[test]
    fn the_source_the_stateful_operators_and_the_sink_are_not() {
        let base = query(STREAMS, Q);
        let other_window = Q.replace("'10' SECOND", "'20' SECOND");
        assert_ne!(base, query(STREAMS, &other_window));
        let filtered = Q.replace("GROUP BY", "WHERE price > 10 GROUP BY");
        assert_ne!(
            base,
            query(STREAMS, &filtered),
            "a filter before the window"
        );
        assert_ne!(
            base,
            query(&STREAMS.replace("topic = 'bids'", "topic = 'other'"), Q)
        );
        assert_ne!(base, query(&STREAMS.replace("out.jsonl", "other.jsonl"), Q));
        let more = Q.replace("COUNT(*) AS n", "COUNT(*) AS n, SUM(price) AS total");
        assert_ne!(base, query(STREAMS, &more), "another aggregate");
    }
}
