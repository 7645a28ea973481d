//! The crash loop over queries that read two streams: the bids joined with
//! the auctions, SIGKILLed and restarted until the input ends. Each source
//! sends every checkpoint barrier where it is in its own input, the join
//! aligns them, and each resumes from its own position: the results must
//! equal an independent computation over both streams. A lookup join's
//! table is read whole at once: its source ends while the bids go on, and
//! what it was at its end stands in for it in every later checkpoint.

use std::collections::HashMap;

use arrow::array::AsArray;
use arrow::datatypes::{Int64Type, TimestampMillisecondType};
use eddy::connectors::nexmark::{NexmarkGenerator, NexmarkKind};

use super::oracle::{Bid, Rows};
use super::{Case, EVENTS, RATE, SEED, check, config, crash_loop, seed, serial, stream, workspace};

/// One auction: id, seller, event time, expiry (ms).
struct Auction {
    id: i64,
    seller: i64,
    t: i64,
    expires: i64,
}

/// The auctions of the generator with the loop's settings.
fn auctions() -> HashMap<i64, Auction> {
    let mut generator = NexmarkGenerator::new(config(), NexmarkKind::Auction);
    let mut out = HashMap::new();
    while let Some(b) = generator.next_batch(8192) {
        let int = |i: usize| b.column(i).as_primitive::<Int64Type>().clone();
        let time = |i: usize| {
            b.column(i)
                .as_primitive::<TimestampMillisecondType>()
                .clone()
        };
        let (id, seller, t, expires) = (int(0), int(7), time(5), time(6));
        for r in 0..b.num_rows() {
            let a = Auction {
                id: id.value(r),
                seller: seller.value(r),
                t: t.value(r),
                expires: expires.value(r),
            };
            out.insert(a.id, a);
        }
    }
    out
}

/// Bids within their auction's life, with its seller.
fn interval_join(bids: &[Bid]) -> Rows {
    let auctions = auctions();
    let mut rows: Rows = bids
        .iter()
        .filter_map(|b| {
            let a = auctions.get(&b.auction)?;
            (a.t <= b.t && b.t <= a.expires).then(|| {
                format!(
                    "{} {} {} {} {}",
                    b.auction, b.bidder, b.price, b.t, a.seller
                )
            })
        })
        .collect();
    rows.sort_unstable();
    rows
}

/// Each auction's bid count with its seller (a changelog, applied).
fn count_join(bids: &[Bid]) -> Rows {
    let auctions = auctions();
    let mut counts: HashMap<i64, i64> = HashMap::new();
    for b in bids {
        *counts.entry(b.auction).or_default() += 1;
    }
    let mut rows: Rows = counts
        .into_iter()
        .filter_map(|(id, n)| auctions.get(&id).map(|a| format!("{id} {n} {}", a.seller)))
        .collect();
    rows.sort_unstable();
    rows
}

/// Each bid with the label of its auction's last digit, from a table
/// (a file read whole at once: its source ends while the bids go on).
fn lookup_join(bids: &[Bid]) -> Rows {
    let mut rows: Rows = bids
        .iter()
        .map(|b| {
            format!(
                "{} {} {}",
                b.auction,
                b.price,
                b.auction.rem_euclid(10) * 100
            )
        })
        .collect();
    rows.sort_unstable();
    rows
}

const CASES: &[Case] = &[
    Case {
        name: "interval_join",
        select: "SELECT B.auction, B.bidder, B.price, B.date_time, A.seller
                 FROM bids B JOIN auctions A
                 ON B.auction = A.id AND B.date_time BETWEEN A.date_time AND A.expires",
        columns: &["auction", "bidder", "price", "t:date_time", "seller"],
        reference: interval_join,
        changelog: false,
    },
    Case {
        name: "count_join",
        select: "SELECT C.auction, C.n, A.seller
                 FROM (SELECT auction, COUNT(*) AS n FROM bids GROUP BY auction) C
                 JOIN auctions A ON C.auction = A.id",
        columns: &["auction", "n", "seller"],
        reference: count_join,
        changelog: true,
    },
    Case {
        name: "lookup_join",
        select: "SELECT B.auction, B.price, L.label
                 FROM bids B JOIN labels FOR SYSTEM_TIME AS OF PROCTIME() AS L
                 ON B.auction % 10 = L.k",
        columns: &["auction", "price", "label"],
        reference: lookup_join,
        changelog: false,
    },
];

#[test]
fn a_query_over_two_streams_killed_again_and_again_writes_each_row_once() {
    let _one = serial();
    let cases: Vec<&Case> = CASES.iter().collect();
    let auctions = format!(
        "CREATE STREAM auctions (WATERMARK FOR date_time AS date_time - INTERVAL '3' SECOND)
           WITH (connector = 'nexmark', stream = 'auction', events = '{EVENTS}', rate = '{RATE}',
                 seed = '{SEED}', out_of_order = '0.05', max_delay_ms = '2000', realtime = 'true');
         CREATE STREAM labels (k BIGINT, label BIGINT) WITH (connector = 'file', path = 'labels.jsonl');\n"
    );
    let dir = workspace(&cases, true);
    let labels: String = (0..10)
        .map(|k| format!("{{\"k\": {k}, \"label\": {}}}\n", k * 100))
        .collect();
    std::fs::write(dir.path().join("labels.jsonl"), labels).expect("labels");
    let script = std::fs::read_to_string(dir.path().join("q.sql")).expect("script");
    let streams = stream(true);
    std::fs::write(
        dir.path().join("q.sql"),
        script.replacen(&streams, &format!("{streams}{auctions}"), 1),
    )
    .expect("script");
    let seed = seed();
    eprintln!("two-stream crash loop seed {seed} (EDDY_CRASH_SEED={seed} replays it)");
    let kills = crash_loop(dir.path(), seed, &[]);
    eprintln!("seed {seed}: {kills} kills before the input ended");
    check(dir.path(), &cases, seed);
    assert!(kills >= 5, "seed {seed}: only {kills} kills");
}
