//! Offset resets, never silent. When a partition's position is outside its
//! log (a broker lost its last records, the topic was re-created, retention
//! deleted records not yet read), librdkafka resets it to the beginning or
//! the end and says so only in a log line. [`ResetWatch`] is the consumers'
//! context: it catches that line, so the source can stop the query or say
//! loudly what was reset, per `'scan.out-of-range'`. The same policy governs
//! a committed offset found out of range at start.

use std::sync::{Arc, Mutex};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;

use crate::catalog::Options;
use crate::connectors::kafka::StartupMode;
use crate::error::ConnectorError;

/// What a position outside its partition's log does (`'scan.out-of-range'`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutOfRange {
    /// The query stops, naming the partition and both offsets.
    Fail,
    /// Go on from the partition's first offset (records may be read again).
    Earliest,
    /// Go on from the partition's end (records are skipped).
    Latest,
}

impl OutOfRange {
    /// Reads `'scan.out-of-range'`: `fail` by default for `group-offsets`
    /// (as Flink does), else the startup mode's own direction.
    ///
    /// # Errors
    /// A value other than `fail`, `earliest` or `latest`.
    pub fn from_options(o: &Options, startup: StartupMode) -> Result<Self, ConnectorError> {
        let default = match startup {
            StartupMode::GroupOffsets => "fail",
            StartupMode::Earliest => "earliest",
            StartupMode::Latest => "latest",
        };
        Ok(
            match o.choice_or(
                "scan.out-of-range",
                &["fail", "earliest", "latest"],
                default,
            )? {
                "earliest" => OutOfRange::Earliest,
                "latest" => OutOfRange::Latest,
                _ => OutOfRange::Fail,
            },
        )
    }

    /// The option's value.
    pub fn name(self) -> &'static str {
        match self {
            OutOfRange::Fail => "fail",
            OutOfRange::Earliest => "earliest",
            OutOfRange::Latest => "latest",
        }
    }
}

/// A reset librdkafka made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reset {
    /// The partition's topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The position that was out of range.
    pub from: Option<i64>,
    /// Where it went: an offset, or `None` for the log's start or end,
    /// as `to_end` says.
    pub to: Option<i64>,
    /// Reset to the end (else the beginning, or `to`).
    pub to_end: bool,
    /// librdkafka's words.
    pub line: String,
}

impl Reset {
    /// Reads librdkafka's log line (`rdkafka_offset.c`): `[thrd:main]: TOPIC [P]: offset
    /// reset (at offset 1500 (leader epoch -1), broker 1) to BEGINNING:
    /// fetch failed ...: Broker: Offset out of range`. `None` for another line.
    pub fn parse(line: &str) -> Option<Reset> {
        let (head, rest) = line.split_once(": offset reset (")?;
        // librdkafka may put its thread first (`[thrd:main]: `); a topic
        // name has no spaces
        let (head, partition) = head.rsplit_once(" [")?;
        let topic = head.rsplit(' ').next()?;
        let partition = partition.strip_suffix(']')?.parse().ok()?;
        let from = rest.strip_prefix("at offset ").and_then(leading_number);
        let (_, target) = rest.split_once(") to ")?;
        let target = target.split(": ").next().unwrap_or(target);
        let to = target
            .find("offset ")
            .and_then(|i| leading_number(&target[i + "offset ".len()..]));
        Some(Reset {
            topic: topic.to_string(),
            partition,
            from,
            to,
            to_end: to.is_none() && target.contains("END"),
            line: line.to_string(),
        })
    }
}

fn leading_number(text: &str) -> Option<i64> {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '-'))
        .unwrap_or(text.len());
    text[..end].parse().ok()
}

/// The consumers' context: collects librdkafka's offset-reset warnings and
/// passes every other log line on as rdkafka's default context does.
#[derive(Clone, Default)]
pub struct ResetWatch {
    resets: Arc<Mutex<Vec<Reset>>>,
}

impl ResetWatch {
    /// The resets seen since the last call.
    pub fn take(&self) -> Vec<Reset> {
        std::mem::take(&mut *self.resets.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl ClientContext for ResetWatch {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        if fac == "OFFSET"
            && let Some(reset) = Reset::parse(log_message)
        {
            self.resets
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(reset);
            return;
        }
        rdkafka::client::DefaultClientContext.log(level, fac, log_message);
    }
}

impl ConsumerContext for ResetWatch {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_librdkafka_reset_lines() {
        let r = Reset::parse(
            "[thrd:main]: bids [3]: offset reset (at offset 1500 (leader epoch 0), broker 1) to BEGINNING: fetch failed due to requested offset not available on the broker: Broker: Offset out of range",
        )
        .unwrap();
        assert_eq!(
            (r.topic.as_str(), r.partition, r.from, r.to, r.to_end),
            ("bids", 3, Some(1500), None, false)
        );
        let r = Reset::parse(
            "a.b-c [0]: offset reset (at offset 7 (leader epoch -1), broker 2) to cached BEGINNING offset 4 (leader epoch -1): fetch failed: Broker: Offset out of range",
        )
        .unwrap();
        assert_eq!(
            (r.topic.as_str(), r.from, r.to),
            ("a.b-c", Some(7), Some(4))
        );
        let r = Reset::parse(
            "t [0]: offset reset (at offset 9 (leader epoch -1), broker 1) to END: fetch failed: Broker: Offset out of range",
        )
        .unwrap();
        assert!(r.to_end && r.to.is_none());
        assert!(Reset::parse("t [0]: fetch backoff").is_none());
    }
}
