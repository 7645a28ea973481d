//! A position outside its partition's log is never reset silently
//! (`'scan.out-of-range'`): by default (`group-offsets`) the query stops,
//! naming the partition and both offsets; `earliest` and `latest` go on from
//! there and say so. At start the group's committed offset is checked; while
//! reading, librdkafka's reset is caught.

use std::time::{Duration, Instant};

use eddy::{CollectSink, RunOptions};
use eddy_suite::kafka::{Broker, commit_offset, topic_name};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

use super::{ints, stream_sql};

/// `n` events on partition 0, ids `from..from + n`.
fn on_partition_0(from: i64, n: i64) -> Vec<(i32, Option<String>, Option<String>)> {
    (from..from + n)
        .map(|i| {
            let v = format!(r#"{{"id": {i}, "k": 0, "ts": {}}}"#, 1_767_225_600_000 + i);
            (0, None, Some(v))
        })
        .collect()
}

fn committed_offset_past_the_end(broker: Broker, name: &str) {
    let topic = topic_name(name);
    broker.create_topic(&topic, 1);
    broker.produce(&topic, &on_partition_0(0, 5));
    let group = format!("{name}-group");
    let run = |policy: &str| {
        // as after a broker lost acknowledged records: the group is past the end
        commit_offset(&broker.bootstrap(), &group, &topic, 100);
        let extra = format!(", 'scan.bounded.mode' = 'latest-offset'{policy}");
        let sql = format!(
            "{} SELECT id FROM events;",
            stream_sql(&broker, &topic, &group, &extra)
        );
        let script = eddy::plan_script(&sql).expect("plans");
        eddy::collect_all(&script.queries[0], &RunOptions::default())
    };
    let e = run("").expect_err("stops by default").to_string();
    assert!(
        e.contains(&format!(
            "topic '{topic}' partition 0: the group's committed offset 100 is past the partition's end (5)"
        )) && e.contains("'scan.out-of-range' = 'earliest'"),
        "{e}"
    );
    let earliest = run(", 'scan.out-of-range' = 'earliest'").expect("resets");
    assert_eq!(ints(&earliest.batches, "id"), [0, 1, 2, 3, 4]);
    let latest = run(", 'scan.out-of-range' = 'latest'").expect("resets");
    assert_eq!(ints(&latest.batches, "id"), Vec::<i64>::new());
}
on_both_brokers!(committed_past_end, committed_offset_past_the_end);

/// The mock broker answers the next fetch with OFFSET_OUT_OF_RANGE, as a
/// broker that lost the records at the consumer's position does.
fn reset_while_reading(policy: &str, name: &str) -> (Result<eddy::QueryStats, String>, u64) {
    let broker = Broker::mock();
    let topic = topic_name(name);
    broker.create_topic(&topic, 1);
    broker.produce(&topic, &on_partition_0(0, 10));
    let sql = format!(
        "{} SELECT id FROM events;",
        stream_sql(&broker, &topic, &format!("{name}-group"), policy)
    );
    let script = eddy::plan_script(&sql).expect("plans");
    let running = eddy_suite::start_job(&script.queries[0], Box::new(CollectSink::default()));
    let until = |done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    until(&|| running.progress().records_in >= 10);
    let Broker::Mock(mock) = &broker else {
        unreachable!()
    };
    mock.request_errors(
        RDKafkaApiKey::Fetch,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE],
    );
    until(&|| running.is_finished() || running.progress().records_in >= 20);
    std::thread::sleep(Duration::from_millis(200));
    let read = running.progress().records_in;
    running.stop();
    (running.wait().map_err(|e| e.to_string()), read)
}

#[test]
fn a_reset_while_reading_stops_the_query_by_default() {
    let (result, read) = reset_while_reading("", "reset-fail");
    let e = result.expect_err("stops");
    assert!(
        e.contains("partition 0: the position, offset 10, is")
            && e.contains("Set 'scan.out-of-range' = 'earliest'"),
        "{e}"
    );
    // nothing read from the reset position was handed on
    assert_eq!(read, 10);
}

#[test]
fn a_reset_while_reading_goes_on_when_asked() {
    let (result, read) =
        reset_while_reading(", 'scan.out-of-range' = 'earliest'", "reset-earliest");
    result.expect("goes on");
    // from the partition's start again: the 10 records twice
    assert_eq!(read, 20);
}
