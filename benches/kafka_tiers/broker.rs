//! The broker under test and the input it is given.

use super::*;

// ---------------------------------------------------------------- broker

/// The broker under test; stops it on drop when this bench started it.
pub(super) struct BrokerProcess {
    pub(super) addr: String,
    /// The workspace root, when we started the broker with its script.
    pub(super) started_in: Option<PathBuf>,
}

impl BrokerProcess {
    /// `EDDY_TEST_KAFKA`, or a broker started by `scripts/kafka-broker.sh`.
    pub(super) fn find_or_start() -> Self {
        if let Ok(addr) = std::env::var(BROKER_ENV)
            && !addr.trim().is_empty()
        {
            return Self {
                addr: addr.trim().to_string(),
                started_in: None,
            };
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf();
        eprintln!("{BROKER_ENV} is not set: starting a broker with scripts/kafka-broker.sh");
        let out = Command::new(root.join("scripts/kafka-broker.sh"))
            .current_dir(&root)
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/kafka-broker.sh");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "scripts/kafka-broker.sh failed ({}): {stdout}",
            out.status
        );
        let prefix = format!("export {BROKER_ENV}=");
        let addr = stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(&prefix))
            .unwrap_or_else(|| {
                panic!("scripts/kafka-broker.sh printed no `{prefix}…` line: {stdout}")
            })
            .trim()
            .to_string();
        Self {
            addr,
            started_in: Some(root),
        }
    }

    pub(super) fn describe(&self) -> String {
        match self.started_in {
            Some(_) => format!("{} (started by scripts/kafka-broker.sh)", self.addr),
            None => format!("{} (from {BROKER_ENV})", self.addr),
        }
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let Some(root) = &self.started_in else {
            return;
        };
        let stopped = Command::new(root.join("scripts/kafka-broker.sh"))
            .arg("stop")
            .current_dir(root)
            .status();
        if !stopped.as_ref().is_ok_and(|s| s.success()) {
            eprintln!("could not stop the broker: {stopped:?}");
        }
    }
}

// ---------------------------------------------------------------- input

/// A deterministic 64-bit mix of `i` (splitmix64).
pub(super) fn mix(i: u64) -> u64 {
    let mut x = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Bid `i` as JSON, about 100 bytes.
pub(super) fn bid_json(i: u64, date_time: i64) -> String {
    let x = mix(i);
    format!(
        r#"{{"auction":{},"bidder":{},"price":{}.{:02},"channel":"{}","url":"https://x.example/{:08x}","date_time":{date_time}}}"#,
        1000 + x % 9000,
        1000 + (x >> 14) % 9000,
        1 + (x >> 28) % 999,
        (x >> 38) % 100,
        CHANNELS[((x >> 46) % 4) as usize],
        (x >> 32) as u32,
    )
}

/// Produces the throughput topic; returns the time taken and the mean message size.
pub(super) fn produce_million(addr: &str, topic: &str) -> (Duration, f64) {
    let start = Instant::now();
    let mut bytes = 0usize;
    for chunk in (0..MESSAGES).step_by(PRODUCE_CHUNK) {
        let records: Vec<(i32, Option<String>, Option<String>)> = (chunk
            ..(chunk + PRODUCE_CHUNK).min(MESSAGES))
            .map(|i| {
                let value = bid_json(i as u64, BASE_TIME_MS + i as i64);
                bytes += value.len();
                ((i % PARTITIONS as usize) as i32, None, Some(value))
            })
            .collect();
        produce_to(addr, topic, &records);
    }
    (start.elapsed(), bytes as f64 / MESSAGES as f64)
}

/// Deletes `topic`: noida-db keeps every record in memory and rewrites its
/// whole data file as it changes, so a broker holding less disturbs the
/// next measurement less. Failures are only reported.
pub(super) fn delete_topic(addr: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> =
        match ClientConfig::new().set("bootstrap.servers", addr).create() {
            Ok(a) => a,
            Err(e) => return eprintln!("could not delete topic {topic}: {e}"),
        };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    match rt.block_on(admin.delete_topics(&[topic], &options)) {
        Ok(results) => {
            for (t, code) in results.into_iter().filter_map(Result::err) {
                eprintln!("could not delete topic {t}: {code}");
            }
        }
        Err(e) => eprintln!("could not delete topic {topic}: {e}"),
    }
}
