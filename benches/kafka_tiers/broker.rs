//! The broker under test and the input it is given.

use super::*;

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
