//! Where checkpoints live: `<root>/<query>/chk-<id, 20 digits>-<run>/`,
//! each holding its snapshot files (Arrow IPC) and, written last,
//! atomically, `_MANIFEST.json`. Every run of the query writes into
//! directories named by its own run ([`crate::checkpoint::new_run`]), so
//! two instances (one a zombie about to find itself fenced) never write
//! the same file. A directory without a manifest is an incomplete
//! checkpoint (the process died while writing it): it is never read, and
//! [`CheckpointStore::prune`] deletes it.
//!
//! The store is an `object_store`: a local directory now (files written
//! to a staging name, fsynced and renamed into place), object storage
//! later. Its calls are async; the store drives them on a runtime of its
//! own, from the checkpoint writer thread (no I/O in the operators' loops).

use std::sync::Arc;

use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;
use arrow::record_batch::RecordBatch;
use futures_util::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::checkpoint::{CheckpointError, FileEntry, MANIFEST_VERSION, Manifest};

/// Test hook: whether `EDDY_FAILPOINT=<name>@<id>` names this point of
/// checkpoint `id` (the crash tests abort the process there).
fn failpoint(name: &str, id: u64) -> bool {
    std::env::var("EDDY_FAILPOINT").is_ok_and(|v| {
        v.split(',')
            .any(|f| f.split_once('@') == Some((name, id.to_string().as_str())))
    })
}

/// The manifest's name inside a checkpoint.
const MANIFEST: &str = "_MANIFEST.json";

/// The folder of a query's registered runs ([`CheckpointStore::register_run`]).
const RUNS: &str = "runs";

/// Checkpoints of one query.
pub struct CheckpointStore {
    store: Arc<dyn ObjectStore>,
    /// `<query>`: the prefix of every checkpoint of the query.
    query: Path,
    /// The location as given, for messages.
    location: String,
    /// The run whose checkpoints this store writes (empty: unnamed).
    run: String,
    runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for CheckpointStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointStore")
            .field("location", &self.location)
            .field("query", &self.query.as_ref())
            .finish()
    }
}

impl CheckpointStore {
    /// The checkpoints of `query` under `location`: a directory (created if
    /// missing) or a `file://` URL.
    ///
    /// # Errors
    /// [`CheckpointError::Location`]: a scheme this build cannot write
    /// to, or a directory that cannot be created; a query name that is not
    /// a path segment.
    pub fn open(location: &str, query: &str) -> Result<Self, CheckpointError> {
        let bad = |reason: String| CheckpointError::Location {
            location: location.to_string(),
            reason,
        };
        let dir = match location.split_once("://") {
            None => location,
            Some(("file", path)) => path,
            Some((scheme, _)) => {
                return Err(bad(format!(
                    "'{scheme}://' storage is not built in yet; give a directory or a file:// URL"
                )));
            }
        };
        if query.is_empty() || query.contains(['/', '\\']) || query.starts_with('.') {
            return Err(bad(format!(
                "'{query}' cannot name a query's checkpoints (no '/', no leading '.')"
            )));
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| bad(format!("cannot create the directory: {e}")))?;
        let local = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| bad(format!("cannot use the directory: {e}")))?
            .with_fsync(true)
            .with_automatic_cleanup(true);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(|e| bad(format!("cannot start the store's runtime: {e}")))?;
        Ok(Self {
            store: Arc::new(local),
            query: Path::from(query),
            location: location.to_string(),
            run: String::new(),
            runtime,
        })
    }

    /// This store writing the checkpoints of run `run`.
    pub fn for_run(mut self, run: &str) -> Self {
        self.run = run.to_string();
        self
    }

    /// The directory of checkpoint `id` of run `run`.
    fn checkpoint(&self, id: u64, run: &str) -> Path {
        let name = if run.is_empty() {
            format!("chk-{id:020}")
        } else {
            format!("chk-{id:020}-{run}")
        };
        self.query.clone().join(name)
    }

    fn failed(&self, doing: String) -> impl FnOnce(object_store::Error) -> CheckpointError + '_ {
        move |source| CheckpointError::Store {
            location: self.location.clone(),
            doing,
            source,
        }
    }

    fn corrupt(&self, what: String) -> CheckpointError {
        CheckpointError::Corrupt {
            location: self.location.clone(),
            what,
        }
    }

    /// Writes `batches` (one schema) as the Arrow IPC file `name` of
    /// checkpoint `id`.
    ///
    /// # Errors
    /// The batches cannot be encoded, or the store refuses the file.
    pub fn write(
        &self,
        id: u64,
        name: &str,
        batches: &[RecordBatch],
    ) -> Result<FileEntry, CheckpointError> {
        let Some(schema) = batches.first().map(RecordBatch::schema) else {
            return Err(self.corrupt(format!("snapshot file '{name}' has no batch to write")));
        };
        let encode = |e: arrow::error::ArrowError| self.corrupt(format!("encoding '{name}': {e}"));
        let mut writer = FileWriter::try_new(Vec::new(), &schema).map_err(encode)?;
        let mut rows = 0;
        for b in batches {
            writer.write(b).map_err(encode)?;
            rows += b.num_rows() as u64;
        }
        let bytes = writer.into_inner().map_err(encode)?;
        let size = bytes.len() as u64;
        let path = self.checkpoint(id, &self.run).join(name);
        self.runtime
            .block_on(self.store.put(&path, PutPayload::from(bytes)))
            .map_err(self.failed(format!("writing {path}")))?;
        Ok(FileEntry {
            name: name.to_string(),
            rows,
            bytes: size,
        })
    }

    /// Completes checkpoint `manifest.id` of this store's run: its
    /// manifest, written last and atomically, after every file it names.
    ///
    /// # Errors
    /// The store refuses the manifest (then the checkpoint stays incomplete).
    pub fn commit(&self, manifest: &Manifest) -> Result<(), CheckpointError> {
        let mut manifest = manifest.clone();
        manifest.run.clone_from(&self.run);
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| self.corrupt(format!("encoding the manifest: {e}")))?;
        let path = self.checkpoint(manifest.id, &self.run).join(MANIFEST);
        if failpoint("before-manifest", manifest.id) {
            std::process::abort();
        }
        if failpoint("mid-manifest", manifest.id) {
            // a torn manifest, as a store without atomic writes could leave
            let half = PutPayload::from(json[..json.len() / 2].to_vec());
            let _ = self.runtime.block_on(self.store.put(&path, half));
            std::process::abort();
        }
        self.runtime
            .block_on(self.store.put(&path, PutPayload::from(json)))
            .map_err(self.failed(format!("writing {path}")))?;
        Ok(())
    }

    /// The checkpoints present, complete or not, as (id, run), ascending.
    fn ids(&self) -> Result<Vec<(u64, String)>, CheckpointError> {
        let listed = self
            .runtime
            .block_on(self.store.list_with_delimiter(Some(&self.query)))
            .map_err(self.failed(format!("listing {}", self.query)))?;
        let mut ids: Vec<(u64, String)> = listed
            .common_prefixes
            .iter()
            .filter_map(|p| {
                let name = p.filename()?.strip_prefix("chk-")?;
                let (id, run) = name.split_at_checked(20)?;
                let run = match run.strip_prefix('-') {
                    Some(r) => r,
                    None if run.is_empty() => "",
                    None => return None,
                };
                Some((id.parse().ok()?, run.to_string()))
            })
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// The manifest of checkpoint `id` of run `run`, if it is complete (a
    /// manifest that is not valid JSON was torn while written: the
    /// checkpoint is not).
    ///
    /// # Errors
    /// The store cannot be read, or the manifest is not one Eddy wrote.
    fn manifest_of(&self, id: u64, run: &str) -> Result<Option<Manifest>, CheckpointError> {
        let path = self.checkpoint(id, run).join(MANIFEST);
        let got = self.runtime.block_on(async {
            match self.store.get(&path).await {
                Ok(r) => r.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        });
        let Some(bytes) = got.map_err(self.failed(format!("reading {path}")))? else {
            return Ok(None);
        };
        // a torn manifest (a store without atomic writes): never completed
        let Ok(mut m) = serde_json::from_slice::<Manifest>(&bytes) else {
            return Ok(None);
        };
        if m.version != MANIFEST_VERSION || m.id != id {
            return Err(self.corrupt(format!(
                "{path} is version {} of checkpoint {} (this build reads version {MANIFEST_VERSION})",
                m.version, m.id
            )));
        }
        // the directory names the run (a manifest of before runs had none)
        m.run = run.to_string();
        Ok(Some(m))
    }

    /// The manifest of complete checkpoint `id`: of run `run`, or (`None`)
    /// the newest run's.
    ///
    /// # Errors
    /// The store cannot be read, or the manifest is not one Eddy wrote.
    pub fn manifest(
        &self,
        id: u64,
        run: Option<&str>,
    ) -> Result<Option<Manifest>, CheckpointError> {
        if let Some(run) = run {
            return self.manifest_of(id, run);
        }
        for (_, run) in self.ids()?.into_iter().rev().filter(|(i, _)| *i == id) {
            if let Some(m) = self.manifest_of(id, &run)? {
                return Ok(Some(m));
            }
        }
        Ok(None)
    }

    /// The newest complete checkpoint, if any (of two runs with the same
    /// id, the later run's).
    ///
    /// # Errors
    /// The store cannot be read, or the newest manifest is not one Eddy wrote.
    pub fn latest(&self) -> Result<Option<Manifest>, CheckpointError> {
        for (id, run) in self.ids()?.into_iter().rev() {
            if let Some(m) = self.manifest_of(id, &run)? {
                return Ok(Some(m));
            }
        }
        Ok(None)
    }

    /// The batches of snapshot file `name` of the checkpoint of `manifest`.
    ///
    /// # Errors
    /// The file is missing or is not Arrow IPC.
    pub fn read(
        &self,
        manifest: &Manifest,
        name: &str,
    ) -> Result<Vec<RecordBatch>, CheckpointError> {
        let path = self.checkpoint(manifest.id, &manifest.run).join(name);
        let bytes = self
            .runtime
            .block_on(async { self.store.get(&path).await?.bytes().await })
            .map_err(self.failed(format!("reading {path}")))?;
        let reader = FileReader::try_new(std::io::Cursor::new(bytes), None)
            .map_err(|e| self.corrupt(format!("{path} is not an Arrow IPC file: {e}")))?;
        reader
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.corrupt(format!("{path}: {e}")))
    }

    /// Deletes every checkpoint of the query (a fresh start). The runs
    /// registered stay: their transactions are fenced all the same.
    ///
    /// # Errors
    /// The store cannot be listed or refuses a deletion.
    pub fn clear(&self) -> Result<(), CheckpointError> {
        for (id, run) in self.ids()? {
            self.delete(&self.checkpoint(id, &run))?;
        }
        Ok(())
    }

    /// Where run `run` is registered.
    fn run_entry(&self, run: &str) -> Path {
        self.query.clone().join(RUNS).join(run)
    }

    /// Registers run `run` as one that may leave a Kafka transaction open
    /// (an empty object `<query>/runs/<run>`, written before its first
    /// transaction) and returns the other runs registered, oldest first:
    /// the ones it must fence before it writes.
    ///
    /// # Errors
    /// The store refuses the entry or cannot be listed.
    pub fn register_run(&self, run: &str) -> Result<Vec<String>, CheckpointError> {
        let path = self.run_entry(run);
        self.runtime
            .block_on(self.store.put(&path, PutPayload::default()))
            .map_err(self.failed(format!("writing {path}")))?;
        let prefix = self.query.clone().join(RUNS);
        let listed = self
            .runtime
            .block_on(self.store.list(Some(&prefix)).try_collect::<Vec<_>>())
            .map_err(self.failed(format!("listing {prefix}")))?;
        let mut others: Vec<String> = listed
            .iter()
            .filter_map(|m| m.location.filename())
            .filter(|r| *r != run)
            .map(str::to_string)
            .collect();
        others.sort_unstable();
        Ok(others)
    }

    /// A run of the query registered after this one (run names begin with
    /// their start time, so they sort by it), if any: one that took over
    /// from this run and fenced it. `None` also when the store cannot be
    /// listed.
    pub fn newer_run(&self) -> Option<String> {
        let prefix = self.query.clone().join(RUNS);
        let listed = self
            .runtime
            .block_on(self.store.list(Some(&prefix)).try_collect::<Vec<_>>())
            .ok()?;
        listed
            .iter()
            .filter_map(|m| m.location.filename())
            .filter(|r| !self.run.is_empty() && *r > self.run.as_str())
            .max()
            .map(str::to_string)
    }

    /// Forgets the runs `runs` (fenced: they can no longer commit).
    ///
    /// # Errors
    /// The store refuses a deletion.
    pub fn forget_runs(&self, runs: &[String]) -> Result<(), CheckpointError> {
        for run in runs {
            let path = self.run_entry(run);
            match self.runtime.block_on(self.store.delete(&path)) {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.failed(format!("deleting {path}"))(e)),
            }
        }
        Ok(())
    }

    /// Deletes the checkpoints newer than `id` (complete or not, of any run).
    ///
    /// # Errors
    /// The store cannot be listed or refuses a deletion.
    pub fn discard_after(&self, id: u64) -> Result<(), CheckpointError> {
        for (newer, run) in self.ids()?.into_iter().filter(|(n, _)| *n > id) {
            self.delete(&self.checkpoint(newer, &run))?;
        }
        Ok(())
    }

    fn delete(&self, prefix: &Path) -> Result<(), CheckpointError> {
        self.runtime
            .block_on(async {
                let paths = self.store.list(Some(prefix)).map_ok(|m| m.location);
                self.store
                    .delete_stream(Box::pin(paths))
                    .try_collect::<Vec<_>>()
                    .await
            })
            .map_err(self.failed(format!("deleting {prefix}")))?;
        Ok(())
    }

    /// Keeps the `keep` newest complete checkpoints of this run (and any
    /// of its checkpoints newer than them, which may be being written);
    /// deletes its older ones, incomplete ones included. Another run's
    /// checkpoints go once this run has `keep` complete ones newer than
    /// them: until then the one this run resumed from is kept, and a newer
    /// one of another run (a zombie's) is left to the next restart's
    /// [`CheckpointStore::discard_after`]. Returns the ids deleted.
    ///
    /// # Errors
    /// The store cannot be listed or refuses a deletion.
    pub fn prune(&self, keep: usize) -> Result<Vec<u64>, CheckpointError> {
        let keep = keep.max(1);
        let ids = self.ids()?;
        let mut complete = Vec::new();
        for (id, _) in ids.iter().rev().filter(|(_, r)| *r == self.run) {
            if complete.len() == keep {
                break;
            }
            if self.manifest_of(*id, &self.run)?.is_some() {
                complete.push(*id);
            }
        }
        let (Some(&newest), Some(&oldest_kept)) = (complete.first(), complete.last()) else {
            return Ok(Vec::new());
        };
        let doomed: Vec<(u64, String)> = ids
            .into_iter()
            .filter(|(id, run)| {
                if *run == self.run {
                    *id < oldest_kept || (!complete.contains(id) && *id < newest)
                } else {
                    complete.len() == keep && *id < oldest_kept
                }
            })
            .collect();
        for (id, run) in &doomed {
            self.delete(&self.checkpoint(*id, run))?;
        }
        Ok(doomed.into_iter().map(|(id, _)| id).collect())
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
