//! Tests of [`super::store::CheckpointStore`].

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

#[test]
fn runs_register_learn_of_the_others_and_forget_the_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(dir.path().to_str().unwrap(), "q").unwrap();
    assert!(store.register_run("r1").unwrap().is_empty());
    // r1 died; r2 fences it, then forgets it
    let earlier = store.register_run("r2").unwrap();
    assert_eq!(earlier, ["r1"]);
    store.forget_runs(&earlier).unwrap();
    // a fresh start keeps the registrations: their transactions still need fencing
    checkpoint(&store, 1, true);
    store.clear().unwrap();
    assert_eq!(store.latest().unwrap(), None);
    assert_eq!(store.register_run("r3").unwrap(), ["r2"]);
    // the registry is not a checkpoint
    assert_eq!(store.prune(2).unwrap(), Vec::<u64>::new());
    // forgetting a run already forgotten is fine (two restarts racing)
    store.forget_runs(&["r1".to_string()]).unwrap();
}

#[test]
fn a_run_learns_that_a_newer_one_took_over() {
    let dir = tempfile::tempdir().unwrap();
    let open = || CheckpointStore::open(dir.path().to_str().unwrap(), "q").unwrap();
    let zombie = open().for_run("0001-aa");
    assert!(open().register_run("0001-aa").unwrap().is_empty());
    assert_eq!(zombie.newer_run(), None);
    // the taker registers, fences and forgets the zombie's run
    let earlier = open().register_run("0002-bb").unwrap();
    open().forget_runs(&earlier).unwrap();
    assert_eq!(zombie.newer_run().as_deref(), Some("0002-bb"));
    assert_eq!(open().for_run("0002-bb").newer_run(), None);
    // a store not told its run knows of none
    assert_eq!(open().newer_run(), None);
}
