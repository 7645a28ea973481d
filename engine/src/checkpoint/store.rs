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

    /// Deletes every checkpoint of the query (a fresh start).
    ///
    /// # Errors
    /// The store cannot be listed or refuses a deletion.
    pub fn clear(&self) -> Result<(), CheckpointError> {
        self.delete(&self.query)
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
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    fn batch(keys: &[&str], counts: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("n", DataType::Int64, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(keys.to_vec())),
                Arc::new(Int64Array::from(counts.to_vec())),
            ],
        )
        .unwrap()
    }

    fn checkpoint(store: &CheckpointStore, id: u64, complete: bool) -> Manifest {
        let mut m = Manifest::new(id, "fp");
        m.files.push(
            store
                .write(
                    id,
                    "2_tumble-groups.arrow",
                    &[batch(&["a", "b"], &[1, id as i64])],
                )
                .unwrap(),
        );
        if complete {
            store.commit(&m).unwrap();
        }
        m
    }

    #[test]
    fn the_newest_complete_checkpoint_is_read_back_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("checkpoints");
        let store = CheckpointStore::open(root.to_str().unwrap(), "q1").unwrap();
        assert_eq!(store.latest().unwrap(), None);
        checkpoint(&store, 1, true);
        let second = checkpoint(&store, 2, true);
        // the process died while writing checkpoint 3: files, no manifest
        checkpoint(&store, 3, false);
        drop(store);
        let store = CheckpointStore::open(&format!("file://{}", root.display()), "q1").unwrap();
        let latest = store.latest().unwrap().expect("a complete checkpoint");
        assert_eq!(latest, second);
        assert_eq!(latest.files[0].rows, 2);
        let back = store.read(&latest, "2_tumble-groups.arrow").unwrap();
        assert_eq!(back, [batch(&["a", "b"], &[1, 2])]);
        // another query's checkpoints are its own
        let other = CheckpointStore::open(root.to_str().unwrap(), "q2").unwrap();
        assert_eq!(other.latest().unwrap(), None);
    }

    #[test]
    fn pruning_keeps_the_newest_complete_ones_and_any_being_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(dir.path().to_str().unwrap(), "q").unwrap();
        for id in 1..=3 {
            checkpoint(&store, id, true);
        }
        checkpoint(&store, 4, false);
        checkpoint(&store, 5, true);
        checkpoint(&store, 6, false);
        let deleted = store.prune(2).unwrap();
        assert_eq!(deleted, [1, 2, 4]);
        let left: Vec<u64> = store.ids().unwrap().into_iter().map(|(id, _)| id).collect();
        assert_eq!(left, [3, 5, 6]);
        assert_eq!(store.latest().unwrap().map(|m| m.id), Some(5));
        assert!(!dir.path().join("q/chk-00000000000000000001").exists());
    }

    #[test]
    fn a_torn_manifest_is_incomplete_and_a_foreign_one_or_location_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(dir.path().to_str().unwrap(), "q").unwrap();
        checkpoint(&store, 6, true);
        let chk = dir.path().join("q/chk-00000000000000000007");
        std::fs::create_dir_all(&chk).unwrap();
        std::fs::write(chk.join(MANIFEST), "{\"version\": 1, \"id\"").unwrap();
        assert_eq!(store.latest().unwrap().map(|m| m.id), Some(6));
        let mut newer = Manifest::new(8, "fp");
        newer.version = 99;
        store.commit(&newer).unwrap();
        let e = store.latest().unwrap_err().to_string();
        assert!(e.contains("this build reads version 1"), "{e}");
        let e = CheckpointStore::open("s3://bucket/x", "q")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not built in yet"), "{e}");
        let e = CheckpointStore::open(dir.path().to_str().unwrap(), "../q")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot name"), "{e}");
    }

    #[test]
    fn runs_write_their_own_directories_and_prune_only_what_they_outgrew() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap();
        let old = CheckpointStore::open(root, "q").unwrap().for_run("a");
        for id in 1..=3 {
            checkpoint(&old, id, true);
        }
        // run b resumes from 3 while a (a zombie) writes 4; b writes 4 too
        let new = CheckpointStore::open(root, "q").unwrap().for_run("b");
        checkpoint(&old, 4, true);
        let mine = checkpoint(&new, 4, true);
        assert_eq!(new.manifest(4, Some("b")).unwrap().unwrap().run, "b");
        assert_eq!(new.manifest(4, Some("a")).unwrap().unwrap().run, "a");
        let back = new.read(
            &new.manifest(4, Some("b")).unwrap().unwrap(),
            "2_tumble-groups.arrow",
        );
        assert_eq!(back.unwrap(), [batch(&["a", "b"], &[1, 4])]);
        assert_eq!(mine.id, 4);
        // of two runs with one id, the later run's is the latest
        assert_eq!(new.latest().unwrap().map(|m| m.run), Some("b".into()));
        // b has one complete checkpoint: a's older ones stay (b resumed from 3)
        assert_eq!(new.prune(2).unwrap(), Vec::<u64>::new());
        checkpoint(&new, 5, true);
        // now b has two: a's checkpoints older than them go, 4 of a stays
        assert_eq!(new.prune(2).unwrap(), [1, 2, 3]);
        let left = new.ids().unwrap();
        assert_eq!(
            left,
            [
                (4, "a".to_string()),
                (4, "b".to_string()),
                (5, "b".to_string())
            ]
        );
        // a restart resuming from 4 of b deletes everything newer
        new.discard_after(4).unwrap();
        assert_eq!(new.ids().unwrap().len(), 2);
    }
}
