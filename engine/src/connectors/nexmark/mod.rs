//! The built-in Nexmark generator: the standard streaming benchmark's
//! people, auctions and bids, in Nexmark's 1 : 3 : 46 mix, deterministic for
//! a seed. Every value of event `i` is drawn from a generator seeded by
//! (seed, i), so rows do not depend on batch sizes and a test can replay
//! them exactly.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use arrow::compute::cast;
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use crate::catalog::{Options, StreamDef};
use crate::connectors::{Source, SourceContext, SourceCounters, SourceEvent};
use crate::error::ConnectorError;
use crate::types::SqlType;

const KNOWN: &[&str] = &[
    "stream",
    "events",
    "rate",
    "seed",
    "out_of_order",
    "max_delay_ms",
    "start_time",
    "realtime",
];
/// Which of the three Nexmark streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NexmarkKind {
    /// People registering.
    Person,
    /// Auctions opening.
    Auction,
    /// Bids on auctions.
    Bid,
}

impl NexmarkKind {
    /// The kind of event number `i`.
    pub fn of_event(i: u64) -> Self {
        match i % PROPORTION {
            0 => NexmarkKind::Person,
            1..=3 => NexmarkKind::Auction,
            _ => NexmarkKind::Bid,
        }
    }

    /// The columns of this stream.
    pub fn schema(self) -> SchemaRef {
        use SqlType::*;
        let cols: &[(&str, SqlType)] = match self {
            NexmarkKind::Person => &[
                ("id", BigInt),
                ("name", Varchar),
                ("email_address", Varchar),
                ("credit_card", Varchar),
                ("city", Varchar),
                ("state", Varchar),
                ("date_time", Timestamp),
                ("extra", Varchar),
            ],
            NexmarkKind::Auction => &[
                ("id", BigInt),
                ("item_name", Varchar),
                ("description", Varchar),
                ("initial_bid", BigInt),
                ("reserve", BigInt),
                ("date_time", Timestamp),
                ("expires", Timestamp),
                ("seller", BigInt),
                ("category", BigInt),
                ("extra", Varchar),
            ],
            NexmarkKind::Bid => &[
                ("auction", BigInt),
                ("bidder", BigInt),
                ("price", BigInt),
                ("channel", Varchar),
                ("url", Varchar),
                ("date_time", Timestamp),
                ("extra", Varchar),
            ],
        };
        Arc::new(Schema::new(
            cols.iter()
                .map(|(n, t)| Field::new(*n, t.to_arrow(), true))
                .collect::<Vec<_>>(),
        ))
    }
}

/// The generator's settings (the stream's WITH options).
#[derive(Debug, Clone, PartialEq)]
pub struct NexmarkConfig {
    /// Events in the whole mixed sequence; `None` = unbounded.
    pub events: Option<u64>,
    /// Events per second of event time.
    pub rate: u64,
    /// Random seed.
    pub seed: u64,
    /// Fraction of events moved back in time.
    pub out_of_order: f64,
    /// The most an event is moved back, in ms.
    pub max_delay_ms: i64,
    /// Event time of event 0 (epoch ms).
    pub start_time: i64,
    /// Pace output to the wall clock.
    pub realtime: bool,
}

impl Default for NexmarkConfig {
    fn default() -> Self {
        Self {
            events: None,
            rate: 10_000,
            seed: 0,
            out_of_order: 0.0,
            max_delay_ms: 0,
            start_time: 1_767_225_600_000,
            realtime: false,
        }
    }
}

impl NexmarkConfig {
    /// Reads and checks the options.
    ///
    /// # Errors
    /// Unknown options or values out of range, with what to do.
    pub fn from_options(o: &Options) -> Result<Self, ConnectorError> {
        o.check_known(KNOWN)?;
        let d = Self::default();
        let events: u64 = o.parse_or("events", 0)?;
        let c = Self {
            events: (events > 0).then_some(events),
            rate: o.parse_or("rate", d.rate)?,
            seed: o.parse_or("seed", d.seed)?,
            out_of_order: o.parse_or("out_of_order", d.out_of_order)?,
            max_delay_ms: o.parse_or("max_delay_ms", d.max_delay_ms)?,
            start_time: o.parse_or("start_time", d.start_time)?,
            realtime: o.bool_or("realtime", false)?,
        };
        if c.rate == 0 {
            return Err(
                o.error("option 'rate' must be at least 1 (events per second of event time)")
            );
        }
        if !(0.0..=1.0).contains(&c.out_of_order) {
            return Err(
                o.error("option 'out_of_order' must be a fraction between 0 and 1, e.g. '0.05'")
            );
        }
        if c.max_delay_ms < 0 || (c.out_of_order > 0.0 && c.max_delay_ms == 0) {
            return Err(o.error(
                "option 'out_of_order' needs a positive 'max_delay_ms' (how far events move back)",
            ));
        }
        Ok(c)
    }

    /// The base event time of event `i` (before any out-of-order shift).
    pub fn event_time(&self, i: u64) -> i64 {
        self.start_time + (i as i128 * 1000 / self.rate as i128) as i64
    }
}

fn kind_of(o: &Options) -> Result<NexmarkKind, ConnectorError> {
    Ok(
        match o.choice_or("stream", &["bid", "auction", "person"], "bid")? {
            "person" => NexmarkKind::Person,
            "auction" => NexmarkKind::Auction,
            _ => NexmarkKind::Bid,
        },
    )
}

/// The generator's columns for the stream the options select.
///
/// # Errors
/// A bad `stream` option.
pub fn schema_for(o: &Options) -> Result<SchemaRef, ConnectorError> {
    Ok(kind_of(o)?.schema())
}

/// The `nexmark` connector: the built-in generator (read only).
pub struct Nexmark;

impl crate::connectors::registry::Connector for Nexmark {
    fn name(&self) -> &'static str {
        "nexmark"
    }

    fn validate(&self, def: &StreamDef) -> Result<(), ConnectorError> {
        validate(def)
    }

    fn inferred_schema(&self, def: &StreamDef) -> Result<Option<SchemaRef>, ConnectorError> {
        schema_for(&def.options).map(Some)
    }

    fn can_read(&self) -> bool {
        true
    }

    /// With `events`, the generator ends.
    fn is_bounded(&self, def: &StreamDef) -> bool {
        NexmarkConfig::from_options(&def.options).is_ok_and(|c| c.events.is_some())
    }

    fn open_source(
        &self,
        def: &StreamDef,
        ctx: &SourceContext,
    ) -> Result<Box<dyn crate::connectors::Source>, ConnectorError> {
        Ok(Box::new(NexmarkSource::open(def, ctx)?))
    }
}

/// Checks the options and any declared columns.
///
/// # Errors
/// Bad options, or a declared column the generator does not produce.
pub fn validate(def: &StreamDef) -> Result<(), ConnectorError> {
    NexmarkConfig::from_options(&def.options)?;
    projection(def, kind_of(&def.options)?).map(|_| ())
}

/// For each declared column: its index in the generator schema.
fn projection(def: &StreamDef, kind: NexmarkKind) -> Result<Vec<usize>, ConnectorError> {
    let full = kind.schema();
    def.schema
        .fields()
        .iter()
        .map(|f| {
            let idx = full
                .fields()
                .iter()
                .position(|g| g.name().eq_ignore_ascii_case(f.name()))
                .ok_or_else(|| {
                    let names: Vec<&str> =
                        full.fields().iter().map(|g| g.name().as_str()).collect();
                    def.options.error(format!(
                        "the nexmark {kind:?} stream has no column '{}'; its columns are: {}",
                        f.name(),
                        names.join(", ")
                    ))
                })?;
            let (from, to) = (full.field(idx).data_type(), f.data_type());
            if from != to && !arrow::compute::can_cast_types(from, to) {
                return Err(def
                    .options
                    .error(format!("column '{}' cannot be read as {to}", f.name())));
            }
            Ok(idx)
        })
        .collect()
}

mod generator;
pub use generator::NexmarkGenerator;
use generator::PROPORTION;

/// The `nexmark` source: a generator shaped to the declared columns.
pub struct NexmarkSource {
    generator: NexmarkGenerator,
    /// Declared schema and, per column, the type to cast to if it differs.
    schema: SchemaRef,
    ctx: SourceContext,
    started: Instant,
}

impl NexmarkSource {
    /// Opens a generator for `def`.
    ///
    /// # Errors
    /// Bad options or undeclarable columns.
    pub fn open(def: &StreamDef, ctx: &SourceContext) -> Result<Self, ConnectorError> {
        let config = NexmarkConfig::from_options(&def.options)?;
        let kind = kind_of(&def.options)?;
        let mut generator = NexmarkGenerator::new(config, kind);
        let schema = if def.schema.fields().is_empty() {
            kind.schema()
        } else {
            generator.wanted = projection(def, kind)?;
            let full = kind.schema();
            generator.schema = Arc::new(Schema::new(
                generator
                    .wanted
                    .iter()
                    .map(|&w| full.field(w).clone())
                    .collect::<Vec<_>>(),
            ));
            def.schema.clone()
        };
        Ok(Self {
            generator,
            schema,
            ctx: ctx.clone(),
            started: Instant::now(),
        })
    }

    fn shape(&self, b: RecordBatch) -> Result<RecordBatch, ConnectorError> {
        if b.schema()
            .fields()
            .iter()
            .zip(self.schema.fields())
            .all(|(a, d)| a.data_type() == d.data_type())
        {
            return RecordBatch::try_new(self.schema.clone(), b.columns().to_vec()).map_err(|e| {
                ConnectorError::Arrow {
                    context: "nexmark batch".into(),
                    source: e,
                }
            });
        }
        let cols = b
            .columns()
            .iter()
            .zip(self.schema.fields())
            .map(|(c, f)| cast(c, f.data_type()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ConnectorError::Arrow {
                context: "nexmark column cast".into(),
                source: e,
            })?;
        RecordBatch::try_new(self.schema.clone(), cols).map_err(|e| ConnectorError::Arrow {
            context: "nexmark batch".into(),
            source: e,
        })
    }
}

impl Source for NexmarkSource {
    /// `{"next_event": n}`: every event is a function of the seed and its
    /// number, so the sequence resumes at any event.
    fn resume_state(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "next_event": self.generator.next_event }))
    }

    fn resume(&mut self, state: &serde_json::Value) -> Result<(), ConnectorError> {
        let next = state["next_event"]
            .as_u64()
            .ok_or_else(|| ConnectorError::Io {
                context: "resuming the nexmark generator".into(),
                source: std::io::Error::other(format!("not a generator position: {state}")),
            })?;
        self.generator.next_event = next;
        // paced: as if the events before it had been generated at the rate
        let rate = self.generator.config.rate.max(1);
        let behind = Duration::from_millis(next.saturating_mul(1000) / rate);
        self.started = Instant::now().checked_sub(behind).unwrap_or(self.started);
        Ok(())
    }

    fn poll(&mut self) -> Result<SourceEvent, ConnectorError> {
        if self.ctx.shutdown.load(Ordering::Relaxed) {
            return Ok(SourceEvent::End);
        }
        let limit = if self.generator.config.realtime {
            // events whose event time has come, at `rate` per wall-clock second
            let elapsed = self.started.elapsed().as_millis() as u64;
            let due = elapsed.saturating_mul(self.generator.config.rate) / 1000 + 1;
            if due <= self.generator.next_event {
                std::thread::sleep(Duration::from_millis(10));
                return Ok(SourceEvent::Idle);
            }
            due
        } else {
            u64::MAX
        };
        match self
            .generator
            .next_batch_until(self.ctx.batch_size.max(1), limit)
        {
            None => Ok(SourceEvent::End),
            Some(b) if b.num_rows() == 0 => Ok(SourceEvent::Idle),
            Some(b) => {
                SourceCounters::add(&self.ctx.counters.records, b.num_rows() as u64);
                Ok(SourceEvent::Batch(self.shape(b)?))
            }
        }
    }
}

#[cfg(test)]
mod tests;
