//! The crash loop's queries computed here, independently of Eddy, from the
//! generator's bids: each result as a sorted list of rows (a multiset), so a
//! row missing or written twice shows.

use std::collections::{BTreeMap, HashMap};

use arrow::array::AsArray;
use arrow::datatypes::{Int64Type, TimestampMillisecondType};
use eddy::connectors::nexmark::{NexmarkConfig, NexmarkGenerator, NexmarkKind};

/// One bid: auction, bidder, price, event time (ms).
#[derive(Debug, Clone, Copy)]
pub struct Bid {
    pub auction: i64,
    pub bidder: i64,
    pub price: i64,
    pub t: i64,
}

/// The bids of the generator with `config`, in the order it hands them on.
pub fn bids(config: NexmarkConfig) -> Vec<Bid> {
    let mut generator = NexmarkGenerator::new(config, NexmarkKind::Bid);
    let mut out = Vec::new();
    while let Some(b) = generator.next_batch(8192) {
        let col = |i: usize| b.column(i).as_primitive::<Int64Type>().clone();
        let (auction, bidder, price) = (col(0), col(1), col(2));
        let ts = b.column(5).as_primitive::<TimestampMillisecondType>();
        for r in 0..b.num_rows() {
            out.push(Bid {
                auction: auction.value(r),
                bidder: bidder.value(r),
                price: price.value(r),
                t: ts.value(r),
            });
        }
    }
    out
}

/// Rows as text, sorted.
pub type Rows = Vec<String>;

fn sorted(mut rows: Rows) -> Rows {
    rows.sort_unstable();
    rows
}

fn start(t: i64, size: i64) -> i64 {
    t.div_euclid(size) * size
}

/// `TUMBLE(1 s)` per auction: COUNT(*), SUM(price).
pub fn tumble(bids: &[Bid]) -> Rows {
    let mut m: HashMap<(i64, i64), (i64, i64)> = HashMap::new();
    for b in bids {
        let e = m.entry((b.auction, start(b.t, 1000))).or_default();
        e.0 += 1;
        e.1 += b.price;
    }
    sorted(
        m.into_iter()
            .map(|((a, w), (n, s))| format!("{a} {w} {n} {s}"))
            .collect(),
    )
}

/// `HOP(slide 500 ms, size 2 s)` per auction: COUNT(*).
pub fn hop(bids: &[Bid]) -> Rows {
    let mut m: HashMap<(i64, i64), i64> = HashMap::new();
    for b in bids {
        let last = start(b.t, 500);
        let mut w = last;
        while w > b.t - 2000 {
            *m.entry((b.auction, w)).or_default() += 1;
            w -= 500;
        }
    }
    sorted(
        m.into_iter()
            .map(|((a, w), n)| format!("{a} {w} {n}"))
            .collect(),
    )
}

/// `SESSION(gap 200 ms)` per bidder: start, end, COUNT(*). A row covers
/// `[t, t + gap)`; rows whose intervals overlap or touch share a session.
pub fn session(bids: &[Bid]) -> Rows {
    const GAP: i64 = 200;
    let mut by: HashMap<i64, Vec<i64>> = HashMap::new();
    for b in bids {
        by.entry(b.bidder).or_default().push(b.t);
    }
    let mut rows = Vec::new();
    for (bidder, mut ts) in by {
        ts.sort_unstable();
        let (mut first, mut last, mut n) = (ts[0], ts[0], 0);
        for t in ts {
            if t > last + GAP {
                rows.push(format!("{bidder} {first} {} {n}", last + GAP));
                (first, n) = (t, 0);
            }
            last = t;
            n += 1;
        }
        rows.push(format!("{bidder} {first} {} {n}", last + GAP));
    }
    sorted(rows)
}

/// `GROUP BY auction` (no window): COUNT(*), MAX(price) once the input ended.
pub fn changes(bids: &[Bid]) -> Rows {
    let mut m: HashMap<i64, (i64, i64)> = HashMap::new();
    for b in bids {
        let e = m.entry(b.auction).or_insert((0, i64::MIN));
        e.0 += 1;
        e.1 = e.1.max(b.price);
    }
    sorted(
        m.into_iter()
            .map(|(a, (n, top))| format!("{a} {n} {top}"))
            .collect(),
    )
}

/// Per auction in event-time order, the frame of the row and the two
/// before it: COUNT(*) and MIN(date_time) (neither depends on how ties in
/// time are ordered).
pub fn rows(bids: &[Bid]) -> Rows {
    let mut by: HashMap<i64, Vec<i64>> = HashMap::new();
    for b in bids {
        by.entry(b.auction).or_default().push(b.t);
    }
    let mut out = Vec::new();
    for (auction, mut ts) in by {
        ts.sort_unstable();
        for i in 0..ts.len() {
            let from = i.saturating_sub(2);
            out.push(format!("{auction} {} {} {}", ts[i], i - from + 1, ts[from]));
        }
    }
    sorted(out)
}

/// Per 1 s window, every bid with the window's highest price (RANK ≤ 1).
pub fn top(bids: &[Bid]) -> Rows {
    let mut best: BTreeMap<i64, (i64, Vec<String>)> = BTreeMap::new();
    for b in bids {
        let w = start(b.t, 1000);
        let e = best.entry(w).or_insert((i64::MIN, Vec::new()));
        if b.price > e.0 {
            *e = (b.price, Vec::new());
        }
        if b.price == e.0 {
            e.1.push(format!("{} {} {} {w}", b.auction, b.bidder, b.price));
        }
    }
    sorted(best.into_values().flat_map(|(_, r)| r).collect())
}

/// `TUMBLE(1 s)` per auction: the median price (the middle value, or the
/// mean of the two middle ones), to 6 decimals.
pub fn median(bids: &[Bid]) -> Rows {
    let mut m: HashMap<(i64, i64), Vec<i64>> = HashMap::new();
    for b in bids {
        m.entry((b.auction, start(b.t, 1000)))
            .or_default()
            .push(b.price);
    }
    sorted(
        m.into_iter()
            .map(|((a, w), mut p)| {
                p.sort_unstable();
                let n = p.len();
                let mid = if n % 2 == 1 {
                    p[n / 2] as f64
                } else {
                    (p[n / 2 - 1] as f64 + p[n / 2] as f64) / 2.0
                };
                format!("{a} {w} {mid:.6}")
            })
            .collect(),
    )
}
