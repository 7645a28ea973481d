//! JSON in → Eddy → a topic in a binary format → Eddy reads it back → the
//! same windows as straight from the JSON. The watermarks trail by an hour:
//! no row is late however the partitions interleave, and every window
//! closes at the end of the input.

use std::time::Duration;

use eddy_suite::kafka::{Broker, Record, topic_name};

use super::avro::rows;
use super::run;

/// The format under test: the options of its streams, given the topic.
pub(super) struct Format<'a> {
    /// `WITH` options (after `topic` and the bootstrap servers) of the sink.
    pub sink: &'a dyn Fn() -> String,
    /// The same for the source reading the topic back.
    pub source: &'a dyn Fn() -> String,
    /// Checks the records the sink wrote.
    pub written: &'a dyn Fn(&[Record]),
}

/// Runs the round trip of `format` on `broker`.
pub(super) fn windows_survive(broker: &Broker, name: &str, format: &Format<'_>) {
    let input = topic_name(&format!("{name}-json"));
    let output = topic_name(&format!("{name}-out"));
    broker.create_topic(&input, super::PARTITIONS);
    broker.create_topic(&output, 2);
    let n = 2_000;
    broker.produce(&input, &super::events(0, n));
    let bootstrap = broker.bootstrap();
    let bounded = "'scan.startup.mode' = 'earliest', 'scan.bounded.mode' = 'latest-offset'";
    let json_source = |group: &str| {
        format!(
            "CREATE STREAM events (id BIGINT, k BIGINT, ts TIMESTAMP,
               WATERMARK FOR ts AS ts - INTERVAL '1' HOUR)
             WITH (connector = 'kafka', topic = '{input}', 'properties.bootstrap.servers' = '{bootstrap}',
                   'properties.group.id' = '{group}', {bounded});"
        )
    };
    let script = eddy::plan_script(&format!(
        "{} CREATE STREAM out (id BIGINT, k BIGINT, ts TIMESTAMP, amount DECIMAL(12, 2))
         WITH (connector = 'kafka', topic = '{output}', 'properties.bootstrap.servers' = '{bootstrap}',
               'key.column' = 'k', {});
         INSERT INTO out SELECT id, k, ts, id * 0.01 FROM events;",
        json_source(&format!("{name}-write")),
        (format.sink)()
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    eddy::JobManager::new()
        .submit(eddy::JobSpec::new("round-trip", script.queries[0].clone()))
        .expect("starts")
        .wait()
        .expect("runs");
    let written = broker.read_topic(&output, n as usize, Duration::from_secs(30));
    assert_eq!(written.len(), n as usize);
    (format.written)(&written);
    let window = |stream: &str, amount: &str| {
        format!(
            "SELECT k, window_start, COUNT(*) AS n, SUM({amount}) AS total, MAX(ts) AS last
             FROM TUMBLE({stream}, ts, INTERVAL '1' SECOND) GROUP BY k, window_start, window_end;"
        )
    };
    let from_format = format!(
        "CREATE STREAM back (id BIGINT, k BIGINT, ts TIMESTAMP, amount DECIMAL(12, 2),
           WATERMARK FOR ts AS ts - INTERVAL '1' HOUR)
         WITH (connector = 'kafka', topic = '{output}', 'properties.bootstrap.servers' = '{bootstrap}',
               'properties.group.id' = '{name}-back', {bounded}, {}); {}",
        (format.source)(),
        window("back", "amount")
    );
    let from_json = format!(
        "{} {}",
        json_source(&format!("{name}-again")),
        window("events", "id * 0.01")
    );
    let mut a = rows(&run(&from_format));
    let mut j = rows(&run(&from_json));
    a.sort();
    j.sort();
    assert!(j.len() > 100, "{} windows", j.len());
    assert_eq!(a, j);
}
