//! The `kafka` connector: a source over four consumer tiers (one trait, one
//! factory), JSON decoding straight into Arrow batches with Kafka's system
//! columns, at-least-once offset commits, and a batched idempotent sink.
//!
//! See `docs/kafka.md` for the options, the guarantee and which tier to pick.

use std::time::Duration;

use arrow::datatypes::{Field, SchemaRef};
use rdkafka::ClientConfig;

use crate::catalog::{Options, StreamDef};
use crate::error::ConnectorError;
use crate::types::SqlType;

pub mod consumer;
pub mod decode;
mod delivery;
mod format;
pub mod offsets;
pub mod repartition;
pub mod resets;
pub mod sink;
pub mod source;
mod tiers;
mod transactions;
mod upsert;

pub use consumer::{KafkaConsumer, RawBatch, Tier, open_consumer};
pub use format::ValueFormat;
pub use sink::KafkaSink;
pub use source::KafkaSource;
pub use upsert::UpsertKafka;

/// The system columns every Kafka source stream has after its declared
/// columns, with their types.
pub const SYSTEM_COLUMNS: &[(&str, SqlType)] = &[
    ("_topic", SqlType::Varchar),
    ("_partition", SqlType::Int),
    ("_offset", SqlType::BigInt),
    ("_key", SqlType::Varchar),
    ("_timestamp", SqlType::Timestamp),
];

/// The system columns as (nullable) Arrow fields.
pub fn system_fields() -> impl Iterator<Item = Field> {
    SYSTEM_COLUMNS
        .iter()
        .map(|(n, t)| Field::new(*n, t.to_arrow(), true))
}

/// The `kafka` connector: topics read through one of four consumer tiers,
/// written by an idempotent producer.
pub struct Kafka;

impl crate::connectors::registry::Connector for Kafka {
    fn name(&self) -> &'static str {
        "kafka"
    }

    fn validate(&self, def: &StreamDef) -> Result<(), ConnectorError> {
        validate(def)
    }

    fn system_fields(&self) -> Vec<Field> {
        system_fields().collect()
    }

    fn partition_columns(&self) -> Option<(&'static str, &'static str)> {
        Some(("_topic", "_partition"))
    }

    /// The tier and group, unless the options name them already.
    fn explain_params(&self, def: &StreamDef) -> Vec<(String, String)> {
        explain_params(def)
            .into_iter()
            .filter(|(k, _)| def.options.get(&format!("consumer.{k}")).is_none())
            .collect()
    }

    fn can_read(&self) -> bool {
        true
    }

    fn can_write(&self) -> bool {
        true
    }

    fn delivery(&self, def: &StreamDef) -> &'static str {
        if self.exactly_once(def) {
            "exactly-once (transactions; needs --checkpoint-dir)"
        } else {
            "at-least-once"
        }
    }

    fn exactly_once(&self, def: &StreamDef) -> bool {
        def.options
            .get("sink.delivery")
            .is_some_and(|d| d.trim().eq_ignore_ascii_case("exactly-once"))
    }

    fn open_source(
        &self,
        def: &StreamDef,
        ctx: &crate::connectors::SourceContext,
    ) -> Result<Box<dyn crate::connectors::Source>, ConnectorError> {
        Ok(Box::new(KafkaSource::open(def, ctx)?))
    }

    fn is_bounded(&self, def: &StreamDef) -> bool {
        SourceOptions::from_def(def).is_ok_and(|o| o.bounded)
    }

    fn open_sink(
        &self,
        def: &StreamDef,
        schema: SchemaRef,
        _ctx: &crate::connectors::SinkContext,
    ) -> Result<Box<dyn crate::connectors::Sink>, ConnectorError> {
        Ok(Box::new(KafkaSink::open(def, schema)?))
    }
}

/// `schema` followed by the system columns.
pub fn with_system_columns(schema: &SchemaRef) -> SchemaRef {
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.extend(system_fields());
    std::sync::Arc::new(arrow::datatypes::Schema::new(fields))
}

const SOURCE_KEYS: &[&str] = &[
    "topic",
    "format",
    "format.on_error",
    "json.lenient",
    "scan.startup.mode",
    "scan.out-of-range",
    "scan.bounded.mode",
    "consumer.tier",
    "consumer.batch_size",
    "consumer.linger",
    "consumer.queue",
    "consumer.commit_interval",
    "consumer.subscribe",
    "scan.partitions",
    "scan.partitioned-by",
];

const SINK_KEYS: &[&str] = &[
    "topic",
    "format",
    "key.column",
    "sink.flush_timeout",
    "sink.delivery",
    "sink.transactional-id",
];

/// A stream may be read and written: it takes the options of both, and
/// those of its formats.
fn all_keys() -> Vec<&'static str> {
    let mut keys = SOURCE_KEYS.to_vec();
    keys.extend(SINK_KEYS.iter().filter(|k| !SOURCE_KEYS.contains(k)));
    keys.extend(crate::connectors::avro::KEYS);
    keys.extend(crate::connectors::protobuf::KEYS);
    keys
}

/// Where a source starts reading (`scan.startup.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartupMode {
    /// The oldest offset each partition still has.
    Earliest,
    /// The end of each partition: only records produced from now on.
    Latest,
    /// The consumer group's committed offsets; partitions without one start
    /// where `properties.auto.offset.reset` says (earliest by default).
    GroupOffsets,
}

/// What a malformed message does (`format.on_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnMalformed {
    /// Counted and skipped.
    Skip,
    /// Counted and written, with topic/partition/offset and the reason, to
    /// the dead-letter file (`dead_letter.path`).
    DeadLetter,
    /// The query fails, naming topic, partition, offset and the reason.
    Fail,
}

/// A Kafka source stream's options, checked.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// Topics to read.
    pub topics: Vec<String>,
    /// Consumer tier.
    pub tier: Tier,
    /// Where to start.
    pub startup: StartupMode,
    /// Stop at the partitions' end offsets as they were at start
    /// (`scan.bounded.mode = 'latest-offset'`), instead of running forever.
    pub bounded: bool,
    /// Messages per polled batch (`consumer.batch_size`; 0 = the engine's batch size).
    pub batch_size: usize,
    /// How long a batched tier waits to fill a batch (`consumer.linger`).
    pub linger: Duration,
    /// Batches the dedicated tier's thread may have in flight (`consumer.queue`).
    pub queue: usize,
    /// How often offsets are committed (`consumer.commit_interval`).
    pub commit_interval: Duration,
    /// Join the group with `subscribe` instead of assigning every partition.
    pub subscribe: bool,
    /// Read only these partitions of each topic (`scan.partitions`, e.g.
    /// `'0,3'`; a scale-out task reads one); `None`: all.
    pub only_partitions: Option<Vec<i32>>,
    /// Malformed messages.
    pub on_malformed: OnMalformed,
    /// A position outside its partition's log (`scan.out-of-range`).
    pub out_of_range: resets::OutOfRange,
    /// A group's partition without a committed offset starts at its end
    /// (`properties.auto.offset.reset` = `latest`), else at its start.
    pub no_offset_at_end: bool,
    /// How values are written (`format`, `json.lenient`, `avro.*`).
    pub format: ValueFormat,
    /// The consumer group (`properties.group.id`, default `eddy-<stream>`).
    pub group_id: String,
    /// librdkafka settings (`properties.*`, group id included).
    pub config: ClientConfig,
}

fn topics(o: &Options) -> Result<Vec<String>, ConnectorError> {
    let t: Vec<String> = o
        .require("topic")?
        .split(',')
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    if t.is_empty() {
        return Err(o.error("option 'topic' is empty; name a topic or a comma-separated list"));
    }
    Ok(t)
}

/// Checks keys: the connector's own, the event-time keys and any `properties.*`.
fn check_keys(o: &Options, known: &[&str]) -> Result<(), ConnectorError> {
    let filtered = Options::new(
        o.stream(),
        o.iter()
            .filter(|(k, _)| !k.starts_with("properties."))
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    filtered.check_known(known).map_err(|e| match e {
        ConnectorError::Config { stream, message } => ConnectorError::Config {
            stream,
            message: format!("{message}, and any 'properties.*' (passed to librdkafka)"),
        },
        other => other,
    })?;
    if o.get("properties.bootstrap.servers").is_none() {
        return Err(o.error(
            "missing option 'properties.bootstrap.servers'; add e.g. 'properties.bootstrap.servers' = 'localhost:9092'",
        ));
    }
    if o.get("format").is_some_and(|f| {
        !["json", "avro", "protobuf"]
            .iter()
            .any(|k| f.eq_ignore_ascii_case(k))
    }) {
        return Err(o.error(format!(
            "option 'format' must be 'json', 'avro' or 'protobuf' for connector '{}'",
            o.get("connector").unwrap_or("kafka")
        )));
    }
    Ok(())
}

/// librdkafka settings from `properties.*`.
fn client_config(o: &Options) -> ClientConfig {
    let mut c = ClientConfig::new();
    for (k, v) in o.iter() {
        if let Some(p) = k.strip_prefix("properties.") {
            c.set(p, v);
        }
    }
    c
}

impl SourceOptions {
    /// Reads and checks the options of a Kafka source stream.
    ///
    /// # Errors
    /// [`ConnectorError::Config`] naming the bad option.
    pub fn from_def(def: &StreamDef) -> Result<Self, ConnectorError> {
        let o = &def.options;
        check_keys(o, &all_keys())?;
        let tier = match o.choice_or(
            "consumer.tier",
            &["standard", "buffered", "dedicated", "legacy"],
            "dedicated",
        )? {
            "standard" => Tier::Standard,
            "buffered" => Tier::Buffered,
            "legacy" => Tier::Legacy,
            _ => Tier::Dedicated,
        };
        let startup = match o.choice_or(
            "scan.startup.mode",
            &["earliest", "latest", "group-offsets"],
            "group-offsets",
        )? {
            "earliest" => StartupMode::Earliest,
            "latest" => StartupMode::Latest,
            _ => StartupMode::GroupOffsets,
        };
        let bounded = o.choice_or(
            "scan.bounded.mode",
            &["unbounded", "latest-offset"],
            "unbounded",
        )? == "latest-offset";
        let on_malformed =
            match o.choice_or("format.on_error", &["fail", "skip", "dead_letter"], "fail")? {
                "skip" => OnMalformed::Skip,
                "dead_letter" => OnMalformed::DeadLetter,
                _ => OnMalformed::Fail,
            };
        if on_malformed == OnMalformed::DeadLetter && o.get("dead_letter.path").is_none() {
            return Err(o.error(
                "'format.on_error' = 'dead_letter' needs 'dead_letter.path', the JSON-lines file that receives malformed messages",
            ));
        }
        let out_of_range = resets::OutOfRange::from_options(o, startup)?;
        let mut config = client_config(o);
        let user_reset = config.get("auto.offset.reset").map(str::to_string);
        let no_offset_at_end = user_reset
            .as_deref()
            .is_some_and(|r| matches!(r, "latest" | "largest" | "end"));
        // librdkafka resets a position out of range in this direction (and
        // says so in a log line the source turns into a stop or a warning);
        // a subscribed group's partition with no committed offset starts
        // there too, so there the two must agree
        let direction = match out_of_range {
            resets::OutOfRange::Earliest => "earliest",
            resets::OutOfRange::Latest => "latest",
            resets::OutOfRange::Fail if no_offset_at_end => "latest",
            resets::OutOfRange::Fail => "earliest",
        };
        let subscribe = o.bool_or("consumer.subscribe", false)?;
        if subscribe
            && user_reset.is_some()
            && out_of_range != resets::OutOfRange::Fail
            && (direction == "latest") != no_offset_at_end
        {
            return Err(o.error(format!(
                "with 'consumer.subscribe' = 'true', librdkafka resets a partition without a committed offset and one out of range the same way: 'scan.out-of-range' = '{}' contradicts 'properties.auto.offset.reset'; leave one of them out",
                out_of_range.name()
            )));
        }
        config.set("auto.offset.reset", direction);
        let group_id = o
            .get("properties.group.id")
            .map_or_else(|| format!("eddy-{}", def.name), str::to_string);
        config.set("group.id", &group_id);
        // what an exactly-once producer wrote is read once it committed
        // (librdkafka's default, set so it shows and holds)
        if o.get("properties.isolation.level").is_none() {
            config.set("isolation.level", "read_committed");
        }
        let ms = |key: &str, default: i64| -> Result<Duration, ConnectorError> {
            Ok(Duration::from_millis(
                o.duration_ms_or(key, default)?.max(0) as u64,
            ))
        };
        let only_partitions = match o.get("scan.partitions") {
            None => None,
            Some(list) => Some(
                list.split(',')
                    .map(|p| p.trim().parse::<i32>().ok().filter(|p| *p >= 0))
                    .collect::<Option<Vec<i32>>>()
                    .filter(|l| !l.is_empty())
                    .ok_or_else(|| {
                        o.error(format!(
                            "option 'scan.partitions' = '{list}' is not a list of partition numbers; write e.g. '0,3'"
                        ))
                    })?,
            ),
        };
        if only_partitions.is_some() && subscribe {
            return Err(o.error(
                "'scan.partitions' picks partitions, 'consumer.subscribe' lets the group pick them: use one",
            ));
        }
        Ok(Self {
            only_partitions,
            topics: topics(o)?,
            tier,
            startup,
            bounded,
            batch_size: o.parse_or("consumer.batch_size", 0usize)?,
            linger: ms("consumer.linger", 10)?,
            queue: o.parse_or("consumer.queue", 4usize)?.max(1),
            commit_interval: ms("consumer.commit_interval", 1000)?,
            subscribe,
            on_malformed,
            out_of_range,
            no_offset_at_end,
            format: ValueFormat::from_options(o)?,
            group_id,
            config,
        })
    }
}

/// A Kafka sink stream's options, checked.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    /// The topic written to.
    pub topic: String,
    /// Column whose value becomes the message key (none: no key).
    pub key_column: Option<String>,
    /// How long closing waits for outstanding deliveries.
    pub flush_timeout: Duration,
    /// librdkafka settings (`properties.*`), idempotence on unless set.
    pub config: ClientConfig,
    /// `'sink.delivery' = 'exactly-once'`: one transaction per checkpoint.
    pub exactly_once: bool,
    /// How values are written (`format`, `avro.*`; JSON under `upsert-kafka`).
    pub format: ValueFormat,
    /// `'sink.transactional-id'` (default: `eddy-<query>-<stream>`).
    pub transactional_id: Option<String>,
    /// The `properties.*` alone (for the consumers a transaction needs).
    pub base: ClientConfig,
}

impl SinkOptions {
    /// Reads and checks the options of a Kafka sink stream.
    ///
    /// # Errors
    /// [`ConnectorError::Config`] naming the bad option.
    pub fn from_def(def: &StreamDef) -> Result<Self, ConnectorError> {
        let o = &def.options;
        if def.connector().eq_ignore_ascii_case("upsert-kafka") {
            check_keys(o, upsert::KEYS)?;
        } else {
            check_keys(o, &all_keys())?;
        }
        let t = topics(o)?;
        let [topic] = t.as_slice() else {
            return Err(o.error("a Kafka sink writes to one topic; set 'topic' to a single name"));
        };
        let mut config = client_config(o);
        let base = config.clone();
        if o.get("properties.enable.idempotence").is_none() {
            config.set("enable.idempotence", "true");
        }
        let exactly_once = o.choice_or(
            "sink.delivery",
            &["at-least-once", "exactly-once"],
            "at-least-once",
        )? == "exactly-once";
        let transactional_id = o.get("sink.transactional-id").map(str::to_string);
        if transactional_id.is_some() && !exactly_once {
            return Err(o.error("'sink.transactional-id' is for 'sink.delivery' = 'exactly-once'"));
        }
        if o.get("properties.linger.ms").is_none() {
            config.set("linger.ms", "5");
        }
        let format = if def.connector().eq_ignore_ascii_case("upsert-kafka") {
            ValueFormat::Json(crate::connectors::json_types::JsonTypes::Strict)
        } else {
            ValueFormat::from_options(o)?
        };
        Ok(Self {
            format,
            topic: topic.clone(),
            exactly_once,
            transactional_id,
            base,
            key_column: o.get("key.column").map(str::to_string),
            flush_timeout: Duration::from_millis(
                o.duration_ms_or("sink.flush_timeout", 30_000)?.max(1) as u64,
            ),
            config,
        })
    }
}

/// Checks a Kafka stream's options (it may be a source or a sink).
///
/// # Errors
/// [`ConnectorError::Config`] naming the bad option.
pub fn validate(def: &StreamDef) -> Result<(), ConnectorError> {
    let o = &def.options;
    check_keys(o, &all_keys())?;
    // a sink needs exactly one topic: checked when INSERT INTO opens it
    let source = SourceOptions::from_def(def)?;
    // a schema given in the DDL is checked against the columns here; a
    // registry's when the query starts
    let declared = || {
        arrow::datatypes::Schema::new(
            def.schema
                .fields()
                .iter()
                .filter(|f| !SYSTEM_COLUMNS.iter().any(|(n, _)| n == f.name()))
                .map(|f| f.as_ref().clone())
                .collect::<Vec<Field>>(),
        )
    };
    match &source.format {
        ValueFormat::Avro(crate::connectors::avro::SchemaSource::Given(text)) => {
            let record =
                crate::connectors::avro::RecordSchema::parse(text).map_err(|e| o.error(e))?;
            crate::connectors::avro::check_columns(&declared(), &record).map_err(|e| o.error(e))?;
        }
        ValueFormat::Protobuf(p) => {
            if let crate::connectors::protobuf::ProtoSchema::Given(m) = &p.schema {
                crate::connectors::protobuf::check_columns(&declared(), m)
                    .map_err(|e| o.error(e))?;
            }
        }
        _ => {}
    }
    o.duration_ms_or("sink.flush_timeout", 0)?;
    o.choice_or(
        "sink.delivery",
        &["at-least-once", "exactly-once"],
        "at-least-once",
    )?;
    for (key, value) in o.iter() {
        if !key.starts_with("properties.") && value.trim().is_empty() {
            return Err(o.error(format!("option '{key}' is empty")));
        }
    }
    Ok(())
}

/// The extra EXPLAIN parameters of a Kafka source: its tier and group, even
/// when left to their defaults.
pub fn explain_params(def: &StreamDef) -> Vec<(String, String)> {
    match SourceOptions::from_def(def) {
        Ok(o) => vec![
            ("tier".into(), o.tier.name().into()),
            ("group".into(), o.group_id),
        ],
        Err(_) => Vec::new(),
    }
}

/// The (topic, partition) pairs a Kafka source stream reads (all of its
/// topics' partitions, or those `scan.partitions` names), from the broker.
///
/// # Errors
/// Bad options, a broker that cannot be reached, a topic that does not exist.
pub fn topic_partitions(def: &StreamDef) -> Result<Vec<(String, i32)>, ConnectorError> {
    let options = SourceOptions::from_def(def)?;
    let consumer: rdkafka::consumer::BaseConsumer =
        options
            .config
            .create()
            .map_err(|source| ConnectorError::Kafka {
                context: format!("stream '{}': creating a consumer", def.name),
                source,
            })?;
    let mut out = Vec::new();
    for topic in &options.topics {
        for p in tiers::partitions_of(&consumer, &def.name, topic, Duration::from_secs(10))? {
            if options
                .only_partitions
                .as_ref()
                .is_none_or(|o| o.contains(&p))
            {
                out.push((topic.clone(), p));
            }
        }
    }
    Ok(out)
}
