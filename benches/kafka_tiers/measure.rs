//! The measurements: the raw librdkafka rate, and each tier's throughput
//! and latency through the engine.

use super::*;

// ---------------------------------------------------------------- raw rate

/// One raw read of the throughput topic.
pub(super) struct RawRun {
    /// Messages per second, from `assign` to the last message.
    pub(super) rate: f64,
    /// From `assign` to the first message.
    pub(super) first: Duration,
}

/// How fast a bare `BaseConsumer` reads the whole throughput topic.
pub(super) fn raw_rate(addr: &str, topic: &str, group: &str) -> Result<RawRun, String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        // as the engine's consumers: no offset stored per message
        .set("enable.auto.offset.store", "false")
        .set("fetch.wait.max.ms", "50")
        .set("receive.message.max.bytes", RECEIVE_MAX_BYTES)
        .create()
        .map_err(|e| format!("raw consumer: {e}"))?;
    // Each partition from its low watermark, looked up first as the engine
    // does: `Offset::Beginning` would make librdkafka look the offsets up
    // itself after `assign`, inside the timed part.
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        let (low, _) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .map_err(|e| format!("raw consumer: offsets of partition {p}: {e}"))?;
        tpl.add_partition_offset(topic, p, Offset::Offset(low))
            .map_err(|e| format!("raw consumer: {e}"))?;
    }
    let start = Instant::now();
    consumer
        .assign(&tpl)
        .map_err(|e| format!("raw consumer: assign: {e}"))?;
    let (mut n, mut bytes, mut errors) = (0usize, 0usize, 0usize);
    let mut first = None;
    while n < MESSAGES {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                first.get_or_insert_with(|| start.elapsed());
                n += 1;
                bytes += m.payload().map_or(0, <[u8]>::len);
            }
            Some(Err(e)) => {
                if errors == 0 {
                    eprintln!("raw consumer: {e}");
                }
                errors += 1;
            }
            None if start.elapsed() > RUN_TIMEOUT => {
                return Err(format!(
                    "raw consumer: only {n} of {MESSAGES} messages after {RUN_TIMEOUT:?}"
                ));
            }
            None => {}
        }
    }
    let elapsed = start.elapsed();
    black_box(bytes);
    Ok(RawRun {
        rate: n as f64 / elapsed.as_secs_f64(),
        first: first.unwrap_or(elapsed),
    })
}

// ---------------------------------------------------------------- the engine

/// The bench query over `topic`; `bounded` reads what the topic holds from
/// the beginning, otherwise from the latest offsets on.
pub(super) fn tier_sql(addr: &str, topic: &str, tier: &str, group: &str, bounded: bool) -> String {
    let scan = if bounded {
        "'scan.startup.mode' = 'earliest', 'scan.bounded.mode' = 'latest-offset'"
    } else {
        "'scan.startup.mode' = 'latest'"
    };
    format!(
        "CREATE STREAM bids (auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, url VARCHAR,
           date_time TIMESTAMP, WATERMARK FOR date_time AS date_time - INTERVAL '1' SECOND)
         WITH (connector = 'kafka', topic = '{topic}', 'properties.bootstrap.servers' = '{addr}',
               'properties.group.id' = '{group}', 'properties.receive.message.max.bytes' = '{RECEIVE_MAX_BYTES}',
               {scan}, 'consumer.tier' = '{tier}');
         SELECT auction, price, _timestamp FROM bids;"
    )
}

/// Starts the bench query with `sink` on `partitions` workers (and as
/// many decoding threads).
pub(super) fn start(
    sql: &str,
    sink: Box<dyn Sink>,
    partitions: usize,
) -> Result<eddy::JobHandle, String> {
    let script = eddy::plan_script(sql).map_err(|e| format!("plan: {e}"))?;
    let plan = script.queries.first().ok_or("the script has no query")?;
    let options = RunOptions {
        partitions,
        ..Default::default()
    };
    let spec = eddy::JobSpec::new("bench", plan.clone())
        .options(options)
        .sink(sink);
    eddy::JobManager::new()
        .submit(spec)
        .map_err(|e| format!("start: {e}"))
}

/// Counts the rows it is given.
#[derive(Clone, Default)]
pub(super) struct CountSink {
    rows: Arc<AtomicU64>,
}

impl Sink for CountSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ConnectorError> {
        self.rows
            .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn close(&mut self) -> Result<(), ConnectorError> {
        Ok(())
    }
}

/// Messages per second one tier reads the throughput topic at (bounded run).
pub(super) fn tier_rate(
    addr: &str,
    topic: &str,
    tier: &str,
    group: &str,
    partitions: usize,
) -> Result<f64, String> {
    let sink = CountSink::default();
    let query = start(
        &tier_sql(addr, topic, tier, group, true),
        Box::new(sink.clone()),
        partitions,
    )?;
    let deadline = Instant::now() + RUN_TIMEOUT;
    while !query.is_finished() {
        if Instant::now() > deadline {
            eprintln!("{tier}: not finished after {RUN_TIMEOUT:?}; stopping it");
            query.stop();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = query.wait().map_err(|e| format!("run: {e}"))?;
    let rows = sink.rows.load(Ordering::Relaxed);
    if stats.records_in != MESSAGES as u64 || rows != MESSAGES as u64 {
        return Err(format!(
            "records_in = {}, sink rows = {rows}, expected {MESSAGES} (run not counted)",
            stats.records_in
        ));
    }
    Ok(stats.rate())
}

/// The tier's consume + decode rate alone: the source of the bench query
/// opened by itself and polled to the end, no operators after it.
pub(super) fn source_rate(addr: &str, topic: &str, tier: &str, group: &str) -> Result<f64, String> {
    let script = eddy::plan_script(&tier_sql(addr, topic, tier, group, true))
        .map_err(|e| format!("plan: {e}"))?;
    let def = &script.queries[0].source;
    let ctx = eddy::connectors::SourceContext::new(8192);
    let mut source = eddy::connectors::open_source(def, &ctx).map_err(|e| format!("open: {e}"))?;
    let start = Instant::now();
    let mut rows = 0usize;
    let mut first: Option<Duration> = None;
    loop {
        match source.poll().map_err(|e| format!("poll: {e}"))? {
            eddy::connectors::SourceEvent::Batch(b) => {
                first.get_or_insert_with(|| start.elapsed());
                rows += b.num_rows();
            }
            eddy::connectors::SourceEvent::Idle | eddy::connectors::SourceEvent::Watermark(_) => {}
            eddy::connectors::SourceEvent::End => break,
        }
        if start.elapsed() > RUN_TIMEOUT {
            return Err(format!("source: only {rows} rows after {RUN_TIMEOUT:?}"));
        }
    }
    let elapsed = start.elapsed();
    if rows != MESSAGES {
        return Err(format!("source: {rows} rows, expected {MESSAGES}"));
    }
    // the broker's pace shows in how long its first answer takes (see the raw runs)
    eprintln!(
        "  ({tier} source: first batch after {} ms)",
        first.unwrap_or_default().as_millis()
    );
    Ok(rows as f64 / elapsed.as_secs_f64())
}

/// Records, per row, how long ago its Kafka timestamp was.
#[derive(Clone, Default)]
pub(super) struct LatencySink {
    rows: Arc<AtomicU64>,
    latencies_ms: Arc<Mutex<Vec<i64>>>,
}

impl Sink for LatencySink {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ConnectorError> {
        let now = now_ms();
        let bad = |message: &str| ConnectorError::Config {
            stream: "kafka_tiers latency sink".into(),
            message: message.into(),
        };
        let ts = batch
            .column_by_name("_timestamp")
            .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
            .ok_or_else(|| bad("no TIMESTAMP column '_timestamp' in the output"))?;
        self.latencies_ms
            .lock()
            .map_err(|_| bad("latency buffer poisoned"))?
            .extend(ts.iter().flatten().map(|t| now - t));
        self.rows
            .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn close(&mut self) -> Result<(), ConnectorError> {
        Ok(())
    }
}

/// Sends `LATENCY_RATE` msg/s for `LATENCY_SECS` s in bursts, each message
/// stamped with its send time; returns how many were acknowledged.
pub(super) fn produce_steady(addr: &str, topic: &str) -> Result<usize, String> {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("linger.ms", "0")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .map_err(|e| format!("latency producer: {e}"))?;
    let per_burst = LATENCY_RATE * BURST_EVERY.as_millis() as usize / 1000;
    let bursts = LATENCY_SECS * 1000 / BURST_EVERY.as_millis() as usize;
    let start = Instant::now();
    let mut i = 0u64;
    for b in 0..bursts {
        let due = start + BURST_EVERY * b as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        for _ in 0..per_burst {
            let ts = now_ms();
            let value = bid_json(i, ts);
            let mut record = BaseRecord::<str, str>::to(topic)
                .partition((i % PARTITIONS as u64) as i32)
                .timestamp(ts)
                .payload(value.as_str());
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        record = back;
                        producer.poll(Duration::from_millis(1));
                    }
                }
            }
            i += 1;
        }
    }
    producer
        .flush(Duration::from_secs(30))
        .map_err(|e| format!("latency producer: flush: {e}"))?;
    Ok(i as usize)
}

/// One latency measurement.
#[derive(Debug, Clone, Copy)]
pub(super) struct Latency {
    pub(super) p50_ms: f64,
    pub(super) p99_ms: f64,
}

/// The `q` quantile (nearest rank) of sorted values.
pub(super) fn quantile(sorted: &[i64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64
}

/// Produce-to-emit latency of one tier, unbounded from the latest offsets.
pub(super) fn tier_latency(
    addr: &str,
    topic: &str,
    tier: &str,
    group: &str,
) -> Result<Latency, String> {
    let sink = LatencySink::default();
    let query = start(
        &tier_sql(addr, topic, tier, group, false),
        Box::new(sink.clone()),
        1,
    )?;
    std::thread::sleep(LATENCY_WARMUP);
    let producer = {
        let (addr, topic) = (addr.to_string(), topic.to_string());
        std::thread::spawn(move || produce_steady(&addr, &topic))
    };
    let sent = producer
        .join()
        .map_err(|_| "latency producer panicked".to_string())
        .and_then(|r| r);
    let sent = match sent {
        Ok(n) => n,
        Err(e) => {
            query.stop();
            let _ = query.wait();
            return Err(e);
        }
    };
    let deadline = Instant::now() + LATENCY_DRAIN;
    while sink.rows.load(Ordering::Relaxed) < sent as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    query.stop();
    query.wait().map_err(|e| format!("run: {e}"))?;
    let mut latencies = std::mem::take(
        &mut *sink
            .latencies_ms
            .lock()
            .map_err(|_| "latency buffer poisoned")?,
    );
    if latencies.len() != sent {
        println!(
            "ERROR: {tier} latency: the sink saw {} rows of the {sent} produced",
            latencies.len()
        );
    }
    if latencies.is_empty() {
        return Err("no rows reached the sink".into());
    }
    latencies.sort_unstable();
    Ok(Latency {
        p50_ms: quantile(&latencies, 0.50),
        p99_ms: quantile(&latencies, 0.99),
    })
}
