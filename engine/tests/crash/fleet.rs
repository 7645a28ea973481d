//! `eddy serve --instance-id K` (docs/scale-out.md): two servers given the
//! same query under the same name share its tasks through the consumer
//! groups; each shows the tasks it runs and its rebalances, in the API and
//! in /metrics; a query stopped on one server is taken over by the other.
//! On librdkafka's MockCluster (in this test process), at-least-once.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::kafka::{produce_keyed, unique};
use crate::serial;
use crate::served::Served;

/// The tasks server `s` runs of query `name`, by its API.
fn tasks(s: &Served, name: &str) -> BTreeSet<String> {
    let v: serde_json::Value =
        serde_json::from_str(&s.get(&format!("/api/queries/{name}"))).unwrap_or_default();
    v["instance"]["tasks"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|t| t["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn wait_for(what: &str, within: Duration, ready: impl Fn() -> bool) {
    let since = Instant::now();
    while !ready() {
        assert!(since.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_servers_share_a_query_and_one_takes_over_when_it_stops_on_the_other() {
    let _one = serial();
    let mock: MockCluster<'static, DefaultProducerContext> =
        MockCluster::new(1).expect("mock cluster");
    let addr = mock.bootstrap_servers();
    let name = unique("fleet").replace('-', "");
    let (input, output) = (unique("fleet-in"), unique("fleet-out"));
    for (topic, partitions) in [
        (input.as_str(), 4),
        (output.as_str(), 1),
        (&format!("eddy.{name}.repartition"), 4),
    ] {
        mock.create_topic(topic, partitions, 1).expect("topic");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let chk = dir.path().join("chk");
    let chk = chk.to_str().expect("utf-8");
    let servers: Vec<Served> = (0..2)
        .map(|k| {
            Served::start(
                &dir.path().join(format!("data{k}")),
                &[
                    "--partitions",
                    "1",
                    "--checkpoint-dir",
                    chk,
                    "--checkpoint-interval",
                    "1s",
                    "--instance-id",
                    &k.to_string(),
                ],
            )
        })
        .collect();
    let sql = format!(
        "CREATE STREAM bids (auction BIGINT, bidder BIGINT, price BIGINT, date_time TIMESTAMP,
           WATERMARK FOR date_time AS date_time - INTERVAL '3' SECOND)
         WITH (connector = 'kafka', topic = '{input}', 'properties.bootstrap.servers' = '{addr}',
               'scan.startup.mode' = 'earliest');
         CREATE STREAM out WITH (connector = 'kafka', topic = '{output}',
               'properties.bootstrap.servers' = '{addr}');
         INSERT INTO out SELECT auction, window_start, COUNT(*) AS n
         FROM TUMBLE(bids, date_time, INTERVAL '1' SECOND)
         GROUP BY auction, window_start, window_end;"
    );
    let body = serde_json::json!({ "name": name, "sql": sql }).to_string();
    for s in &servers {
        let created = s.call(
            "POST",
            "/api/queries",
            Some(body.as_bytes()),
            "application/json",
        );
        assert!(created.contains("\"running\""), "{created}");
    }
    // the groups split the tasks between the two servers
    let all: BTreeSet<String> = (0..4)
        .map(|p| format!("{name}.s1.{input}.p{p}"))
        .chain((0..4).map(|r| format!("{name}.s2.r{r}")))
        .collect();
    wait_for(
        "the servers share the tasks",
        Duration::from_secs(60),
        || {
            let (a, b) = (tasks(&servers[0], &name), tasks(&servers[1], &name));
            !a.is_empty() && !b.is_empty() && a.is_disjoint(&b) && (&a | &b) == all
        },
    );
    let (bids, _) = crate::kafka::input(4);
    produce_keyed(
        &addr,
        &input,
        &bids[..5_000],
        Duration::from_millis(500),
        |b| b.bidder,
    );
    let metrics = servers[0].get("/metrics");
    let line = format!("eddy_instance_tasks{{query=\"{name}\",instance=\"0\",stage=\"1\"}}");
    assert!(metrics.contains(&line), "no {line} in\n{metrics}");
    // a bare SELECT cannot be shared: no one server sees all of its rows
    let select = serde_json::json!({
        "name": "bare",
        "sql": sql.split("INSERT INTO out ").next().expect("streams").to_string()
            + "SELECT auction FROM TUMBLE(bids, date_time, INTERVAL '1' SECOND) GROUP BY auction, window_start, window_end;",
    })
    .to_string();
    let refused = servers[0].call(
        "POST",
        "/api/queries",
        Some(select.as_bytes()),
        "application/json",
    );
    assert!(refused.contains("is a bare SELECT"), "{refused}");
    // stopped on server 1: its tasks checkpoint, and server 0 takes them all
    let stopped = servers[1].call(
        "POST",
        &format!("/api/queries/{name}/stop"),
        None,
        "application/json",
    );
    assert!(stopped.contains("\"stopped\""), "{stopped}");
    wait_for("server 0 takes every task", Duration::from_secs(60), || {
        tasks(&servers[0], &name) == all
    });
    let v: serde_json::Value =
        serde_json::from_str(&servers[0].get(&format!("/api/queries/{name}"))).expect("JSON");
    assert!(v["instance"]["rebalances"].as_u64() > Some(0), "{v}");
    assert!(v["instance"]["last_rebalance_ms"].as_u64().is_some(), "{v}");
    // its live results are its output topic's
    let live = servers[0].get(&format!("/api/queries/{name}/events"));
    assert!(live.contains("share of a fleet"), "{live}");
    for mut s in servers {
        let deleted = s.call(
            "DELETE",
            &format!("/api/queries/{name}"),
            None,
            "application/json",
        );
        assert!(!deleted.contains("error"), "{deleted}");
        assert_eq!(s.terminate().code(), Some(143));
    }
}
