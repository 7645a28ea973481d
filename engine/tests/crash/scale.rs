//! A query run by several `eddy` processes (docs/scale-out.md) on noida-db
//! (`EDDY_TEST_KAFKA`; skipped without it): three instances (`--instance-id
//! 0..2`, `--partitions 1` each) share an input topic of six partitions
//! whose keys (the bidder) are not the GROUP BY key (the auction), so every
//! row crosses the repartition topic; the exactly-once output read
//! `read_committed` equals the independent computation, no window missing
//! or twice.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::kafka::{
    broker, create_topic, input, produce, produce_keyed, read, rows, script, unique,
};
use crate::{assert_same, command, oracle, serial, signal};

fn instance(dir: &Path, app: &str, k: usize) -> Child {
    let log = std::fs::File::create(dir.join(format!("instance-{k}.log"))).expect("log");
    let k = k.to_string();
    command(
        dir,
        &[
            "run",
            "bids.sql",
            "--quiet",
            "--partitions",
            "1",
            "--checkpoint-dir",
            "chk",
            "--checkpoint-interval",
            "1s",
            "--instance-id",
            &k,
            "--app-id",
            app,
        ],
    )
    .stdout(Stdio::null())
    .stderr(log)
    .spawn()
    .expect("eddy starts")
}

#[test]
fn three_instances_share_a_query_and_commit_each_row_once() {
    let _one = serial();
    let Some(addr) = broker("three_instances_share_a_query") else {
        return;
    };
    let (topic_in, topic_out) = (unique("scale-in"), unique("scale-out"));
    create_topic(&addr, &topic_in, 6);
    create_topic(&addr, &topic_out, 2);
    let dir = tempfile::tempdir().expect("temp dir");
    script(dir.path(), "bids.sql", &addr, (&topic_in, &topic_out));
    let (mut bids, closers) = input(6);
    bids.truncate(60_000);
    let want = oracle::tumble(&bids);
    let app = unique("scale");
    let mut instances: Vec<Child> = (0..3).map(|k| instance(dir.path(), &app, k)).collect();
    // rows keyed by bidder: the GROUP BY auction needs the repartition hop
    produce_keyed(&addr, &topic_in, &bids, Duration::from_secs(6), |b| {
        b.bidder
    });
    produce(&addr, &topic_in, &closers, Duration::from_millis(10));
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let mut got = Vec::new();
    while std::time::Instant::now() < deadline {
        got = rows(&read(&addr, &topic_out, "read_committed"));
        if got.len() >= want.len() {
            break;
        }
        for (k, c) in instances.iter_mut().enumerate() {
            if let Some(status) = c.try_wait().expect("wait") {
                panic!(
                    "instance {k} ended ({status}):\n{}",
                    std::fs::read_to_string(dir.path().join(format!("instance-{k}.log")))
                        .unwrap_or_default()
                );
            }
        }
    }
    for c in &instances {
        signal(c.id(), 15);
    }
    for (k, c) in instances.iter_mut().enumerate() {
        let status = c.wait().expect("stops");
        let log = std::fs::read_to_string(dir.path().join(format!("instance-{k}.log")))
            .unwrap_or_default();
        assert_eq!(status.code(), Some(143), "instance {k}: {log}");
    }
    let got_now = rows(&read(&addr, &topic_out, "read_committed"));
    assert!(got_now.len() >= got.len());
    assert_same("three instances", &want, &got_now);
}
