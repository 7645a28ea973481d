//! A query run by several `eddy` processes (docs/scale-out.md) on noida-db
//! (`EDDY_TEST_KAFKA`; skipped without it): instances (`--instance-id K`,
//! `--partitions 1` each) share an input topic of six partitions whose
//! keys (the bidder) are not the GROUP BY key (the auction), so every row
//! crosses the repartition topic. While the input streams in (6 s), the
//! scenarios stop, add, or SIGKILL and restart instances at seeded random
//! moments (the seed is printed; `EDDY_CRASH_SEED=n` replays it); the
//! exactly-once output read `read_committed` must then equal the
//! independent computation, no window missing or twice.
//!
//! noida-db never expires a SIGKILLed member (it has no session timer), so
//! here a killed instance is restarted with its id, as an operator would;
//! the others taking over from one that never comes back needs a broker
//! that expires members: `takeover.rs`, on librdkafka's MockCluster.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::kafka::{
    broker, create_topic, input, produce, produce_keyed, read, rows, script, unique,
};
use crate::oracle::Rows;
use crate::{Rng, assert_same, command, oracle, seed, serial, signal};

/// The `eddy` processes of one query, by instance id.
pub(crate) struct Cluster {
    dir: PathBuf,
    app: String,
    running: BTreeMap<usize, Child>,
}

impl Cluster {
    pub(crate) fn new(dir: &Path, app: &str) -> Self {
        Self {
            dir: dir.to_path_buf(),
            app: app.to_string(),
            running: BTreeMap::new(),
        }
    }

    fn log(&self, k: usize) -> PathBuf {
        self.dir.join(format!("instance-{k}.log"))
    }

    /// Starts instance `k` (its log appends to `instance-K.log`).
    pub(crate) fn start(&mut self, k: usize) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log(k))
            .expect("log");
        let id = k.to_string();
        let child = command(
            &self.dir,
            &[
                "run",
                "bids.sql",
                "--partitions",
                "1",
                "--checkpoint-dir",
                "chk",
                "--checkpoint-interval",
                "1s",
                "--instance-id",
                &id,
                "--app-id",
                &self.app,
            ],
        )
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("eddy starts");
        assert!(self.running.insert(k, child).is_none(), "{k} was running");
    }

    /// SIGTERMs instance `k` and waits for it to hand its tasks over;
    /// returns how long it took.
    pub(crate) fn stop(&mut self, k: usize) -> Duration {
        let mut child = self.running.remove(&k).expect("running");
        let asked = Instant::now();
        signal(child.id(), 15);
        let status = child.wait().expect("stops");
        // 143: stopped by the signal; 0: every task had already finished
        assert!(
            matches!(status.code(), Some(143 | 0)),
            "instance {k} ended {status}:\n{}",
            self.logs(k)
        );
        asked.elapsed()
    }

    /// SIGKILLs instance `k`.
    pub(crate) fn kill(&mut self, k: usize) {
        let mut child = self.running.remove(&k).expect("running");
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
    }

    /// Panics with its log when an instance failed.
    pub(crate) fn check(&mut self) {
        let failed = self.running.iter_mut().find_map(|(k, c)| {
            let status = c.try_wait().expect("wait")?;
            (!status.success()).then_some((*k, status))
        });
        if let Some((k, status)) = failed {
            panic!("instance {k} ended ({status}):\n{}", self.logs(k));
        }
    }

    pub(crate) fn logs(&self, k: usize) -> String {
        std::fs::read_to_string(self.log(k)).unwrap_or_default()
    }

    /// How many tasks have a complete checkpoint in the shared store.
    pub(crate) fn checkpointed_tasks(&self) -> usize {
        let Ok(tasks) = std::fs::read_dir(self.dir.join("chk")) else {
            return 0;
        };
        tasks
            .flatten()
            .filter(|task| {
                std::fs::read_dir(task.path()).is_ok_and(|chk| {
                    chk.flatten()
                        .any(|c| c.path().join("_MANIFEST.json").is_file())
                })
            })
            .count()
    }

    /// How many times instance `k`'s stage `stage` group assigned it
    /// partitions, by its log.
    pub(crate) fn assignments(&self, k: usize, stage: u8) -> usize {
        let line = format!("stage {stage}: assigned");
        self.logs(k).lines().filter(|l| l.contains(&line)).count()
    }

    /// Waits until `ready` holds, panicking with the instances' logs after
    /// `within`.
    pub(crate) fn wait_for(&self, what: &str, within: Duration, ready: impl Fn(&Self) -> bool) {
        let since = Instant::now();
        while !ready(self) {
            assert!(
                since.elapsed() < within,
                "{what}: not within {within:?}:\n{}",
                self.running
                    .keys()
                    .map(|k| format!("instance {k}:\n{}", self.logs(*k)))
                    .collect::<String>()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops every instance.
    pub(crate) fn stop_all(&mut self) {
        let ids: Vec<usize> = self.running.keys().copied().collect();
        for k in ids {
            self.stop(k);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in self.running.values_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What the test does to the instances while the input streams in.
pub(crate) type Events = fn(&mut Cluster, &mut Rng);

/// How the output is judged against the oracle: (context, want, got).
pub(crate) type Judge = fn(&str, &Rows, &Rows);

/// Creates a topic with a number of partitions on the scenario's broker.
pub(crate) type CreateTopic<'a> = dyn Fn(&str, i32) + 'a;

/// What a scenario does and how its output is judged.
pub(crate) struct Scenario {
    pub name: &'static str,
    /// The output's `'sink.delivery'`.
    pub delivery: &'static str,
    /// The input keyed by auction and declared so
    /// (`'scan.partitioned-by'`): no hop.
    pub partitioned: bool,
    pub events: Events,
    pub judge: Judge,
}

/// A scenario on noida-db, exactly once into Kafka, judged exactly.
fn scenario(name: &'static str, events: Events) {
    scenario_on(name, false, events);
}

/// The same, the input keyed by auction or not (`partitioned`).
fn scenario_on(name: &'static str, partitioned: bool, events: Events) {
    let _one = serial();
    let Some(addr) = broker(name) else {
        return;
    };
    let create = |topic: &str, partitions: i32| create_topic(&addr, topic, partitions);
    let s = Scenario {
        name,
        delivery: "exactly-once",
        partitioned,
        events,
        judge: assert_same,
    };
    run(&s, (&addr, &create), &unique("scale"));
}

/// Runs instances 0..3 of query `app` over 60,000 bids streamed in 6 s
/// into the broker at `addr` (`create` makes its topics) while the
/// scenario's events act on them; once the output has every window of the
/// oracle, stops them and judges the committed output.
pub(crate) fn run(s: &Scenario, (addr, create): (&str, &CreateTopic<'_>), app: &str) {
    let Scenario {
        name,
        delivery,
        partitioned,
        events,
        judge,
    } = *s;
    let declared = match partitioned {
        true => ", 'scan.partitioned-by' = 'auction'",
        false => "",
    };
    let seed = seed();
    eprintln!("{name}: seed {seed} (EDDY_CRASH_SEED={seed} replays it)");
    let (topic_in, topic_out) = (unique("scale-in"), unique("scale-out"));
    create(&topic_in, 6);
    create(&topic_out, 2);
    let dir = tempfile::tempdir().expect("temp dir");
    script(
        dir.path(),
        "bids.sql",
        addr,
        (&topic_in, &topic_out),
        (delivery, declared),
    );
    let (mut bids, closers) = input(6);
    bids.truncate(60_000);
    let want = oracle::tumble(&bids);
    let mut cluster = Cluster::new(dir.path(), app);
    for k in 0..3 {
        cluster.start(k);
    }
    // the scenarios act on a cluster at work: every group formed
    // (with the input partitioned by the key, stage 1 is all there is)
    cluster.wait_for("the groups formed", Duration::from_secs(60), |c| {
        (0..3).all(|k| c.assignments(k, 1) > 0 && (partitioned || c.assignments(k, 2) > 0))
    });
    let producer = {
        let (addr, topic) = (addr.to_string(), topic_in.clone());
        std::thread::spawn(move || {
            // keyed by bidder, the GROUP BY auction needs the hop
            let key: fn(&crate::oracle::Bid) -> i64 = match partitioned {
                true => |b| b.auction,
                false => |b| b.bidder,
            };
            produce_keyed(&addr, &topic, &bids, Duration::from_secs(6), key);
            produce(&addr, &topic, &closers, Duration::from_millis(10));
        })
    };
    events(&mut cluster, &mut Rng(seed.max(1)));
    producer.join().expect("input produced");
    let deadline = Instant::now() + Duration::from_secs(180);
    while Instant::now() < deadline {
        cluster.check();
        if windows(&want).is_subset(&windows(&rows(&read(addr, &topic_out, "read_committed")))) {
            break;
        }
    }
    cluster.stop_all();
    let got = rows(&read(addr, &topic_out, "read_committed"));
    let context = format!("{name}, seed {seed}");
    let judged = std::panic::catch_unwind(|| judge(&context, &want, &got));
    if let Err(failed) = judged {
        for k in 0..4 {
            eprintln!("instance {k}'s log:\n{}", cluster.logs(k));
        }
        eprintln!("kept for a look: {}", dir.keep().display());
        std::panic::resume_unwind(failed);
    }
}

/// The (auction, window start) of each row (`auction start n total`).
pub(crate) fn windows(rows: &Rows) -> std::collections::BTreeSet<(&str, &str)> {
    rows.iter()
        .filter_map(|r| {
            let mut f = r.split(' ');
            Some((f.next()?, f.next()?))
        })
        .collect()
}

/// Sleeps a random 0.5–4.5 s (a moment while the input streams in).
pub(crate) fn pause(rng: &mut Rng) {
    std::thread::sleep(Duration::from_millis(500 + rng.below(4_000)));
}

/// At a random moment, `leave` makes a random one of instances 0..3 go
/// away; the others must then be assigned its partitions in both stages
/// within `within`. Returns which one went.
pub(crate) fn others_take_over(
    cluster: &mut Cluster,
    rng: &mut Rng,
    (how, leave): (&str, fn(&mut Cluster, usize)),
    within: Duration,
) -> usize {
    pause(rng);
    let k = rng.below(3) as usize;
    // counted before it goes: the others may be assigned its partitions
    // before its process has exited
    let others: Vec<usize> = (0..3).filter(|o| *o != k).collect();
    let before: Vec<(usize, usize)> = others
        .iter()
        .map(|o| (cluster.assignments(*o, 1), cluster.assignments(*o, 2)))
        .collect();
    let asked = Instant::now();
    leave(cluster, k);
    eprintln!("instance {k} {how}; gone after {:?}", asked.elapsed());
    // the others' groups rebalance: each gets its new share of both
    // stages' partitions
    cluster.wait_for(
        &format!("the others take instance {k}'s partitions"),
        within,
        |c| {
            others
                .iter()
                .zip(&before)
                .all(|(o, (s1, s2))| c.assignments(*o, 1) > *s1 && c.assignments(*o, 2) > *s2)
        },
    );
    eprintln!(
        "the others took its partitions {:?} after it was {how}",
        asked.elapsed()
    );
    k
}

#[test]
fn three_instances_share_a_query_and_commit_each_row_once() {
    scenario("steady", |_, _| {});
}

#[test]
fn an_instance_stopped_hands_its_tasks_to_the_others() {
    scenario("scale down", |cluster, rng| {
        let stop = |c: &mut Cluster, k| {
            c.stop(k);
        };
        let _ = others_take_over(cluster, rng, ("stopped", stop), Duration::from_secs(30));
    });
}

/// The input keyed by the GROUP BY key and declared so: each task runs the
/// whole query on its partition (no repartition topic); a killed and
/// restarted instance resumes its tasks exactly.
#[test]
fn a_source_partitioned_by_the_key_needs_no_hop() {
    scenario_on("co-partitioned", true, |cluster, rng| {
        let log = cluster.logs(0);
        assert!(log.contains("each task runs the whole query"), "{log}");
        assert!(!log.contains("stage 2"), "{log}");
        pause(rng);
        let k = rng.below(3) as usize;
        cluster.kill(k);
        std::thread::sleep(Duration::from_millis(rng.below(1_000)));
        cluster.start(k);
    });
}

#[test]
fn an_instance_added_takes_a_share_of_the_tasks() {
    scenario("scale up", |cluster, rng| {
        pause(rng);
        cluster.start(3);
    });
}

/// Each restarted task fences its previous run by that run's own
/// `transactional.id` (one per run): a restarted producer gets a new
/// producer id, so a broker that lists an aborted transaction in every
/// later fetch (noida-db 0.2.3 does) cannot hide the new run's records
/// from `read_committed` readers.
#[test]
fn an_instance_killed_and_restarted_with_its_id_resumes_its_tasks() {
    scenario("kill and restart", |cluster, rng| {
        for _ in 0..2 {
            pause(rng);
            let k = rng.below(3) as usize;
            cluster.kill(k);
            std::thread::sleep(Duration::from_millis(rng.below(1_000)));
            cluster.start(k);
        }
    });
}
