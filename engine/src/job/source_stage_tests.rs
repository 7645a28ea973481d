//! The source stage's commit points.

use super::*;

fn at(offset: i64) -> Position {
    Position {
        splits: vec![("t".into(), 0, offset)],
    }
}

fn checkpoints() -> Checkpoints {
    let (_tx, rx) = crossbeam_channel::unbounded();
    Checkpoints::new(Duration::from_secs(1), rx)
}

#[test]
fn the_commit_stops_before_the_first_batch_with_held_rows() {
    let mut c = checkpoints();
    c.batch(at(10), BatchTimes::All(1_000));
    c.batch(at(20), BatchTimes::All(5_000));
    let b1 = c.barrier(at(20));
    c.batch(at(30), BatchTimes::All(6_000));
    let b2 = c.barrier(at(30));
    // a window from 4_000 is open: the second batch holds rows of it
    assert_eq!(c.commit_point(b2, Some(4_000)), Some(at(10)));
    // the same again (a connector's commit only moves forward)
    assert_eq!(c.commit_point(b2, Some(4_000)), Some(at(10)));
    // the window closed: the barrier's position
    assert_eq!(c.commit_point(b2, None), Some(at(30)));
    // a barrier already passed commits nothing
    assert_eq!(c.commit_point(b1, None), None);
}

#[test]
fn each_partition_commits_up_to_its_own_first_held_batch() {
    let mut c = checkpoints();
    let two = |a: i64, b: i64| Position {
        splits: vec![("t".into(), 0, a), ("t".into(), 1, b)],
    };
    let times = |p: i32, t: i64| BatchTimes::Each(vec![("t".into(), p, t)]);
    // partition 0 runs ahead in event time, partition 1 lags
    c.batch(two(10, 0), times(0, 61_000));
    c.batch(two(10, 10), times(1, 30_000));
    c.batch(two(10, 20), times(1, 40_000));
    let b = c.barrier(two(10, 20));
    // a window from 60_000 is open: partition 0's only batch is held, partition 1's are not
    assert_eq!(
        c.commit_point(b, Some(60_000)),
        Some(two(0, 20)).map(|p| Position {
            splits: p.splits.into_iter().filter(|s| s.1 == 1).collect(),
        })
    );
}

#[test]
fn an_old_row_behind_a_new_one_holds_the_commit() {
    let mut c = checkpoints();
    c.batch(at(6), BatchTimes::All(9_000));
    c.batch(at(7), BatchTimes::All(1_000));
    let b = c.barrier(at(7));
    // the window holding 9_000 is open: nothing may be committed
    assert_eq!(c.commit_point(b, Some(8_000)), None);
    assert_eq!(c.commit_point(b, Some(10_000)), Some(at(7)));
}

#[test]
fn thinning_keeps_every_row_counted() {
    let mut c = checkpoints();
    for i in 0..(MAX_MARKS as i64 + 1) {
        // one late-arriving old row in the middle
        let t = if i == 1_001 { 50_000 } else { i };
        c.batch(at(i + 1), BatchTimes::All(t));
    }
    assert!(c.marks.len() <= MAX_MARKS / 2 + 1);
    let b = c.barrier(at(MAX_MARKS as i64 + 1));
    // the batch with 50_000 is held: the commit stays before offset 1_002
    let p = c.commit_point(b, Some(40_000)).expect("something commits");
    assert!(p.splits[0].2 <= 1_001, "{p:?}");
}
