//! The Nexmark event generator: every value of event `i` is drawn from a
//! generator seeded by (seed, i), in Nexmark's 1 : 3 : 46 mix of people,
//! auctions and bids.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Builder, StringBuilder, TimestampMillisecondBuilder};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;

use super::{NexmarkConfig, NexmarkKind};

pub(super) const PROPORTION: u64 = 50;
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

/// SplitMix64: a small, fast, well-mixed generator.
struct Rng(u64);

impl Rng {
    /// The values of event `i`. Each event starts at a hashed point of the
    /// sequence: starting at `i`'s multiple of the increment, as this did
    /// once, makes event `i + 1`'s draws event `i`'s shifted by one (two
    /// neighbours then share prices).
    fn for_event(seed: u64, i: u64) -> Self {
        let mut r = Rng(mix(seed ^ mix(i.wrapping_add(0x5851_F42D_4C95_7F2D))));
        r.next();
        r
    }

    /// The out-of-order shift of event `i`: its own sequence, so turning
    /// `out_of_order` on moves event times and changes nothing else.
    fn for_shift(seed: u64, i: u64) -> Self {
        Self::for_event(seed ^ 0xD1B5_4A32_D192_ED03, i)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
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

/// SplitMix64's finaliser: a bijection of u64 that mixes every bit.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
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
    pub(super) config: NexmarkConfig,
    kind: NexmarkKind,
    pub(super) wanted: Vec<usize>,
    pub(super) schema: SchemaRef,
    pub(super) next_event: u64,
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
    fn date_time(&self, i: u64) -> i64 {
        let t = self.config.event_time(i);
        let mut rng = Rng::for_shift(self.config.seed, i);
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

    pub(super) fn next_batch_until(
        &mut self,
        max_rows: usize,
        limit_event: u64,
    ) -> Option<RecordBatch> {
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
            let dt = self.date_time(i);
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
