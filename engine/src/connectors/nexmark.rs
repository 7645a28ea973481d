//! The built-in Nexmark generator: the standard streaming benchmark's
//! people, auctions and bids, in Nexmark's 1 : 3 : 46 mix, deterministic for
//! a seed. Every value of event `i` is drawn from a generator seeded by
//! (seed, i), so rows do not depend on batch sizes and a test can replay
//! them exactly.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, Int64Builder, StringBuilder, TimestampMillisecondBuilder};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
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
const PROPORTION: u64 = 50;
const FIRST_ID: i64 = 1000;
const HOT_AUCTION_RATIO: u64 = 2;
const HOT_BIDDER_RATIO: u64 = 4;
const IN_FLIGHT_AUCTIONS: i64 = 100;
const ACTIVE_PEOPLE: i64 = 1000;
const CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];
const FIRST_NAMES: [&str; 11] = [
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter",
];
const LAST_NAMES: [&str; 9] = [
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris",
];
const CITIES: [&str; 10] = [
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
];
const STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];

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

/// SplitMix64: a small, fast, well-mixed generator.
struct Rng(u64);

impl Rng {
    fn for_event(seed: u64, i: u64) -> Self {
        let mut r = Rng(seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        r.next();
        r
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Nexmark's price: 10^(6u) dollars' worth of cents, 1 to 1,000,000 dollars.
    fn price(&mut self) -> i64 {
        (10f64.powf(self.unit() * 6.0) * 100.0).round() as i64
    }
}

/// People before event `i`.
fn people_before(i: u64) -> i64 {
    ((i / PROPORTION) + u64::from(!i.is_multiple_of(PROPORTION))) as i64
}

/// Auctions before event `i`.
fn auctions_before(i: u64) -> i64 {
    ((i / PROPORTION) * 3 + (i % PROPORTION).saturating_sub(1).min(3)) as i64
}

/// Column builders for the requested columns of one kind.
struct Builders {
    ints: Vec<Int64Builder>,
    strings: Vec<StringBuilder>,
    times: Vec<TimestampMillisecondBuilder>,
    /// Per generator column: (which builder vector, index), or None if not requested.
    slots: Vec<Option<(u8, usize)>>,
}

impl Builders {
    fn new(kind: NexmarkKind, wanted: &[usize], cap: usize) -> Self {
        let schema = kind.schema();
        let mut b = Builders {
            ints: vec![],
            strings: vec![],
            times: vec![],
            slots: vec![None; schema.fields().len()],
        };
        for &w in wanted {
            if b.slots[w].is_some() {
                continue;
            }
            b.slots[w] = Some(match schema.field(w).data_type() {
                DataType::Int64 => {
                    b.ints.push(Int64Builder::with_capacity(cap));
                    (0, b.ints.len() - 1)
                }
                DataType::Utf8 => {
                    b.strings.push(StringBuilder::with_capacity(cap, cap * 16));
                    (1, b.strings.len() - 1)
                }
                _ => {
                    b.times
                        .push(TimestampMillisecondBuilder::with_capacity(cap));
                    (2, b.times.len() - 1)
                }
            });
        }
        b
    }

    fn int(&mut self, col: usize, v: i64) {
        if let Some((0, i)) = self.slots[col] {
            self.ints[i].append_value(v);
        }
    }

    fn time(&mut self, col: usize, v: i64) {
        if let Some((2, i)) = self.slots[col] {
            self.times[i].append_value(v);
        }
    }

    /// The string builder of `col`, if it was requested.
    fn string(&mut self, col: usize) -> Option<&mut StringBuilder> {
        match self.slots[col] {
            Some((1, i)) => Some(&mut self.strings[i]),
            _ => None,
        }
    }

    fn str(&mut self, col: usize, v: &str) {
        if let Some(b) = self.string(col) {
            b.append_value(v);
        }
    }

    fn finish(mut self, wanted: &[usize]) -> Vec<ArrayRef> {
        let mut built: Vec<Option<ArrayRef>> = vec![None; self.slots.len()];
        for (col, slot) in self.slots.iter().enumerate() {
            built[col] = slot.map(|(kind, i)| -> ArrayRef {
                match kind {
                    0 => Arc::new(self.ints[i].finish()),
                    1 => Arc::new(self.strings[i].finish()),
                    _ => Arc::new(self.times[i].finish()),
                }
            });
        }
        wanted.iter().filter_map(|&w| built[w].clone()).collect()
    }
}

/// Produces the rows of one Nexmark stream, batch by batch.
pub struct NexmarkGenerator {
    config: NexmarkConfig,
    kind: NexmarkKind,
    wanted: Vec<usize>,
    schema: SchemaRef,
    next_event: u64,
}

impl NexmarkGenerator {
    /// A generator of all columns of `kind`.
    pub fn new(config: NexmarkConfig, kind: NexmarkKind) -> Self {
        let schema = kind.schema();
        let wanted = (0..schema.fields().len()).collect();
        Self {
            config,
            kind,
            wanted,
            schema,
            next_event: 0,
        }
    }

    /// The schema of the batches produced.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Event time of event `i`, including its out-of-order shift.
    fn date_time(&self, i: u64, rng: &mut Rng) -> i64 {
        let t = self.config.event_time(i);
        if self.config.out_of_order > 0.0 && rng.unit() < self.config.out_of_order {
            t - 1 - rng.below(self.config.max_delay_ms as u64) as i64
        } else {
            t
        }
    }

    fn exhausted(&self) -> bool {
        self.config.events.is_some_and(|n| self.next_event >= n)
    }

    /// The next batch of at most `max_rows` rows, or `None` when the
    /// (bounded) sequence is exhausted. `limit_event` stops before that
    /// event number (for pacing).
    pub fn next_batch(&mut self, max_rows: usize) -> Option<RecordBatch> {
        self.next_batch_until(max_rows, u64::MAX)
    }

    fn next_batch_until(&mut self, max_rows: usize, limit_event: u64) -> Option<RecordBatch> {
        if self.exhausted() {
            return None;
        }
        let end = self.config.events.unwrap_or(u64::MAX).min(limit_event);
        let mut b = Builders::new(self.kind, &self.wanted, max_rows);
        let mut rows = 0;
        let mut text = String::new();
        while rows < max_rows && self.next_event < end {
            let i = self.next_event;
            self.next_event += 1;
            if NexmarkKind::of_event(i) != self.kind {
                continue;
            }
            rows += 1;
            let mut rng = Rng::for_event(self.config.seed, i);
            let dt = self.date_time(i, &mut rng);
            match self.kind {
                NexmarkKind::Bid => self.bid(i, dt, &mut rng, &mut b, &mut text),
                NexmarkKind::Auction => self.auction(i, dt, &mut rng, &mut b, &mut text),
                NexmarkKind::Person => self.person(i, dt, &mut rng, &mut b, &mut text),
            }
        }
        if rows == 0 {
            return if self.exhausted() {
                None
            } else {
                Some(RecordBatch::new_empty(self.schema.clone()))
            };
        }
        let columns = b.finish(&self.wanted);
        let options = arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows));
        RecordBatch::try_new_with_options(self.schema.clone(), columns, &options).ok()
    }

    fn bid(&self, i: u64, dt: i64, rng: &mut Rng, b: &mut Builders, text: &mut String) {
        let auctions = auctions_before(i).max(1);
        let auction = if rng.below(HOT_AUCTION_RATIO) > 0 {
            (auctions - 1) / HOT_AUCTION_RATIO as i64 * HOT_AUCTION_RATIO as i64
        } else {
            (auctions - 1 - rng.below(IN_FLIGHT_AUCTIONS.min(auctions) as u64) as i64).max(0)
        };
        let people = people_before(i).max(1);
        let bidder = if rng.below(HOT_BIDDER_RATIO) > 0 {
            (people - 1) / HOT_BIDDER_RATIO as i64 * HOT_BIDDER_RATIO as i64 + 1
        } else {
            (people - 1 - rng.below(ACTIVE_PEOPLE.min(people) as u64) as i64).max(0)
        };
        b.int(0, FIRST_ID + auction);
        b.int(1, FIRST_ID + bidder);
        b.int(2, rng.price());
        let ch = rng.below(CHANNELS.len() as u64) as usize;
        b.str(3, CHANNELS[ch]);
        if let Some(url) = b.string(4) {
            let _ = write!(
                url,
                "https://www.nexmark.com/{}/item.htm?query=1&channel_id={}",
                CHANNELS[ch],
                rng.below(1000)
            );
            url.append_value("");
        }
        b.time(5, dt);
        extra(b, 6, rng, text);
    }

    fn auction(&self, i: u64, dt: i64, rng: &mut Rng, b: &mut Builders, text: &mut String) {
        let id = FIRST_ID + auctions_before(i);
        let people = people_before(i).max(1);
        let seller = (people - 1 - rng.below(ACTIVE_PEOPLE.min(people) as u64) as i64).max(0);
        let initial = rng.price();
        b.int(0, id);
        if let Some(s) = b.string(1) {
            let _ = write!(s, "item-{}", rng.below(100_000));
            s.append_value("");
        }
        if let Some(s) = b.string(2) {
            let _ = write!(s, "description of item {}", rng.below(100_000));
            s.append_value("");
        }
        b.int(3, initial);
        b.int(4, initial + rng.price());
        b.time(5, dt);
        b.time(6, dt + 1000 + rng.below(10_000_000) as i64);
        b.int(7, FIRST_ID + seller);
        b.int(8, 10 + rng.below(5) as i64);
        extra(b, 9, rng, text);
    }

    fn person(&self, i: u64, dt: i64, rng: &mut Rng, b: &mut Builders, text: &mut String) {
        b.int(0, FIRST_ID + people_before(i));
        let first = FIRST_NAMES[rng.below(FIRST_NAMES.len() as u64) as usize];
        let last = LAST_NAMES[rng.below(LAST_NAMES.len() as u64) as usize];
        if let Some(s) = b.string(1) {
            let _ = write!(s, "{first} {last}");
            s.append_value("");
        }
        if let Some(s) = b.string(2) {
            let _ = write!(
                s,
                "{}{}@{}.com",
                first.to_ascii_lowercase(),
                rng.below(10_000),
                last.to_ascii_lowercase()
            );
            s.append_value("");
        }
        if let Some(s) = b.string(3) {
            let n = rng.next();
            let _ = write!(
                s,
                "{:04} {:04} {:04} {:04}",
                n % 10_000,
                (n >> 16) % 10_000,
                (n >> 32) % 10_000,
                (n >> 48) % 10_000
            );
            s.append_value("");
        }
        b.str(4, CITIES[rng.below(CITIES.len() as u64) as usize]);
        b.str(5, STATES[rng.below(STATES.len() as u64) as usize]);
        b.time(6, dt);
        extra(b, 7, rng, text);
    }
}

/// A short padding string, as Nexmark's `extra` field.
fn extra(b: &mut Builders, col: usize, rng: &mut Rng, text: &mut String) {
    if let Some(s) = b.string(col) {
        text.clear();
        let n = rng.next();
        for k in 0..(n % 8) {
            text.push((b'a' + ((n >> (8 + 5 * k)) % 26) as u8) as char);
        }
        s.append_value(text.as_str());
    }
}

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
