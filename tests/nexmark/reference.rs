//! Each Nexmark query computed by hand over the generator's events, as
//! Flink's text defines it (and docs/sql.md where Eddy documents a choice:
//! AVG is a DOUBLE, truncated when a BIGINT column receives it; NULLs sort
//! first under DESC; ties of ROW_NUMBER go to the row that came first).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// A row as the comparison sees it (see `main.rs::cell`).
pub type Row = Vec<String>;

/// A DOUBLE to 9 significant digits.
pub fn double(x: f64) -> String {
    format!("{x:.9e}")
}

/// `0.908 * price` as the DECIMAL(23, 3) the suite's sinks declare: exact,
/// with three digits after the point.
pub fn euros(price: i64) -> String {
    let milli = i128::from(price) * 908;
    let sign = if milli < 0 { "-" } else { "" };
    let m = milli.unsigned_abs();
    format!("{sign}{}.{:03}", m / 1000, m % 1000)
}

fn int(x: i64) -> String {
    x.to_string()
}

pub struct Person {
    id: i64,
    name: String,
    city: String,
    state: String,
    t: i64,
}

pub struct Auction {
    row: Row,
    id: i64,
    t: i64,
    expires: i64,
    seller: i64,
    category: i64,
}

pub struct Bid {
    row: Row,
    auction: i64,
    bidder: i64,
    price: i64,
    channel: String,
    url: String,
    t: i64,
    extra: String,
}

/// The generator's events, each kind in the order it gives them.
pub struct Events {
    persons: Vec<Person>,
    auctions: Vec<Auction>,
    bids: Vec<Bid>,
}

fn num(s: &str) -> i64 {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s}"))
}

impl Events {
    pub fn new(persons: Vec<Row>, auctions: Vec<Row>, bids: Vec<Row>) -> Self {
        Events {
            persons: persons
                .into_iter()
                .map(|r| Person {
                    id: num(&r[0]),
                    name: r[1].clone(),
                    city: r[4].clone(),
                    state: r[5].clone(),
                    t: num(&r[6]),
                })
                .collect(),
            auctions: auctions
                .into_iter()
                .map(|r| Auction {
                    id: num(&r[0]),
                    t: num(&r[5]),
                    expires: num(&r[6]),
                    seller: num(&r[7]),
                    category: num(&r[8]),
                    row: r,
                })
                .collect(),
            bids: bids
                .into_iter()
                .map(|r| Bid {
                    auction: num(&r[0]),
                    bidder: num(&r[1]),
                    price: num(&r[2]),
                    channel: r[3].clone(),
                    url: r[4].clone(),
                    t: num(&r[5]),
                    extra: r[6].clone(),
                    row: r,
                })
                .collect(),
        }
    }
}

/// `yyyy-MM-dd` and `HH:mm` of an epoch-ms time (UTC).
fn day_and_minute(ms: i64) -> (String, String) {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000) / 60_000;
    // days since 1970-01-01 to a civil date (H. Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        format!("{y:04}-{m:02}-{d:02}"),
        format!("{:02}:{:02}", in_day / 60, in_day % 60),
    )
}

/// The price ranks of q15–q17.
fn rank(price: i64) -> usize {
    match price {
        p if p < 10_000 => 0,
        p if p < 1_000_000 => 1,
        _ => 2,
    }
}

/// q15/q16's counts of one group: bids, bidders and auctions, overall and
/// per price rank.
#[derive(Default)]
struct Counts {
    bids: [i64; 4],
    bidders: [HashSet<i64>; 4],
    auctions: [HashSet<i64>; 4],
}

impl Counts {
    fn add(&mut self, b: &Bid) {
        for k in [3, rank(b.price)] {
            self.bids[k] += 1;
            self.bidders[k].insert(b.bidder);
            self.auctions[k].insert(b.auction);
        }
    }

    /// total, rank1..3 of bids, then of bidders, then of auctions.
    fn cells(&self) -> Vec<String> {
        let order = [3, 0, 1, 2];
        let mut out: Vec<String> = order.iter().map(|&k| int(self.bids[k])).collect();
        out.extend(order.iter().map(|&k| int(self.bidders[k].len() as i64)));
        out.extend(order.iter().map(|&k| int(self.auctions[k].len() as i64)));
        out
    }
}

/// What `REGEXP_EXTRACT(url, '(&|^)channel_id=([^&]*)', 2)` gives.
fn channel_id(url: &str) -> Option<String> {
    let key = "channel_id=";
    let mut from = 0;
    while let Some(i) = url[from..].find(key).map(|i| i + from) {
        if i == 0 || url.as_bytes()[i - 1] == b'&' {
            let rest = &url[i + key.len()..];
            return Some(rest.split('&').next().unwrap_or("").to_string());
        }
        from = i + 1;
    }
    None
}

/// The rows query `q` gives over `e`; `None` for a query not run here.
pub fn rows(q: usize, e: &Events) -> Option<Vec<Row>> {
    let bid5 = |b: &Bid| {
        vec![
            int(b.auction),
            int(b.bidder),
            int(b.price),
            int(b.t),
            b.extra.clone(),
        ]
    };
    Some(match q {
        0 => e.bids.iter().map(bid5).collect(),
        1 => e
            .bids
            .iter()
            .map(|b| {
                let mut r = bid5(b);
                r[2] = euros(b.price);
                r
            })
            .collect(),
        2 => e
            .bids
            .iter()
            .filter(|b| b.auction % 123 == 0)
            .map(|b| vec![int(b.auction), int(b.price)])
            .collect(),
        3 => {
            let persons: HashMap<i64, &Person> = e.persons.iter().map(|p| (p.id, p)).collect();
            e.auctions
                .iter()
                .filter(|a| a.category == 10)
                .filter_map(|a| {
                    let p = persons.get(&a.seller)?;
                    ["OR", "ID", "CA"]
                        .contains(&p.state.as_str())
                        .then(|| vec![p.name.clone(), p.city.clone(), p.state.clone(), int(a.id)])
                })
                .collect()
        }
        4 => {
            let mut per_category: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
            for (a, best) in winners(e) {
                let c = per_category.entry(a.category).or_default();
                c.0 += best.price;
                c.1 += 1;
            }
            per_category
                .into_iter()
                .map(|(c, (sum, n))| vec![int(c), int((sum as f64 / n as f64) as i64)])
                .collect()
        }
        5 => {
            // bids per auction in every 10 s window, one every 2 s; per
            // window, the auctions with the most
            let mut counts: HashMap<(i64, i64), i64> = HashMap::new();
            for b in &e.bids {
                let mut start = b.t.div_euclid(2_000) * 2_000;
                while start + 10_000 > b.t {
                    *counts.entry((start, b.auction)).or_default() += 1;
                    start -= 2_000;
                }
            }
            let mut most: HashMap<i64, i64> = HashMap::new();
            for (&(w, _), &n) in &counts {
                let m = most.entry(w).or_default();
                *m = (*m).max(n);
            }
            counts
                .into_iter()
                .filter(|((w, _), n)| most[w] == *n)
                .map(|((_, a), n)| vec![int(a), int(n)])
                .collect()
        }
        7 => {
            let mut max: HashMap<i64, i64> = HashMap::new();
            for b in &e.bids {
                let m = max
                    .entry(b.t.div_euclid(10_000) * 10_000 + 10_000)
                    .or_insert(i64::MIN);
                *m = (*m).max(b.price);
            }
            let mut by_price: HashMap<i64, Vec<&Bid>> = HashMap::new();
            for b in &e.bids {
                by_price.entry(b.price).or_default().push(b);
            }
            let mut out = Vec::new();
            for (end, m) in max {
                for b in by_price.get(&m).into_iter().flatten() {
                    if end - 10_000 <= b.t && b.t <= end {
                        out.push(vec![
                            int(b.auction),
                            int(b.price),
                            int(b.bidder),
                            int(b.t),
                            b.extra.clone(),
                        ]);
                    }
                }
            }
            out
        }
        8 => {
            let window = |t: i64| t.div_euclid(10_000) * 10_000;
            let sellers: HashSet<(i64, i64)> =
                e.auctions.iter().map(|a| (a.seller, window(a.t))).collect();
            let persons: BTreeSet<(i64, String, i64)> = e
                .persons
                .iter()
                .map(|p| (p.id, p.name.clone(), window(p.t)))
                .collect();
            persons
                .into_iter()
                .filter(|(id, _, w)| sellers.contains(&(*id, *w)))
                .map(|(id, name, w)| vec![int(id), name, int(w)])
                .collect()
        }
        9 => winners(e)
            .into_iter()
            .map(|(a, b)| {
                let mut r = a.row.clone();
                r.extend([
                    int(b.auction),
                    int(b.bidder),
                    int(b.price),
                    int(b.t),
                    b.extra.clone(),
                ]);
                r
            })
            .collect(),
        10 => e
            .bids
            .iter()
            .map(|b| {
                let (d, m) = day_and_minute(b.t);
                let mut r = bid5(b);
                r.extend([d, m]);
                r
            })
            .collect(),
        11 => {
            let mut times: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
            for b in &e.bids {
                times.entry(b.bidder).or_default().push(b.t);
            }
            let mut out = Vec::new();
            for (bidder, mut ts) in times {
                ts.sort_unstable();
                let (mut start, mut end, mut n) = (ts[0], ts[0] + 10_000, 0);
                for t in ts {
                    if t >= end {
                        out.push(vec![int(bidder), int(n), int(start), int(end)]);
                        (start, n) = (t, 0);
                    }
                    n += 1;
                    end = end.max(t + 10_000);
                }
                out.push(vec![int(bidder), int(n), int(start), int(end)]);
            }
            out
        }
        12 => {
            // by processing time: only the bids per bidder are known
            let mut n: BTreeMap<i64, i64> = BTreeMap::new();
            for b in &e.bids {
                *n.entry(b.bidder).or_default() += 1;
            }
            n.into_iter().map(|(b, n)| vec![int(b), int(n)]).collect()
        }
        13 => e
            .bids
            .iter()
            .filter_map(|b| {
                let key = b.auction % 10_000;
                (key % 7 != 0).then(|| {
                    vec![
                        int(b.auction),
                        int(b.bidder),
                        int(b.price),
                        int(b.t),
                        side_value(key),
                    ]
                })
            })
            .collect(),
        14 => e
            .bids
            .iter()
            .filter(|b| {
                // in thousandths of a euro, exactly
                let milli = i128::from(b.price) * 908;
                1_000_000_000 < milli && milli < 50_000_000_000
            })
            .map(|b| {
                let hour = b.t.rem_euclid(86_400_000) / 3_600_000;
                let when = match hour {
                    8..=18 => "dayTime",
                    h if h <= 6 || h >= 20 => "nightTime",
                    _ => "otherTime",
                };
                let c = b.extra.chars().filter(|&x| x == 'c').count() as i64;
                vec![
                    int(b.auction),
                    int(b.bidder),
                    euros(b.price),
                    when.to_string(),
                    int(b.t),
                    b.extra.clone(),
                    int(c),
                ]
            })
            .collect(),
        15 => {
            let mut days: BTreeMap<String, Counts> = BTreeMap::new();
            for b in &e.bids {
                days.entry(day_and_minute(b.t).0).or_default().add(b);
            }
            days.into_iter()
                .map(|(d, c)| std::iter::once(d).chain(c.cells()).collect())
                .collect()
        }
        16 => {
            let mut groups: BTreeMap<(String, String), (String, Counts)> = BTreeMap::new();
            for b in &e.bids {
                let (d, m) = day_and_minute(b.t);
                let g = groups.entry((b.channel.clone(), d)).or_default();
                g.0 = g.0.clone().max(m);
                g.1.add(b);
            }
            groups
                .into_iter()
                .map(|((ch, d), (m, c))| [ch, d, m].into_iter().chain(c.cells()).collect())
                .collect()
        }
        17 => {
            let mut groups: BTreeMap<(i64, String), Vec<i64>> = BTreeMap::new();
            for b in &e.bids {
                groups
                    .entry((b.auction, day_and_minute(b.t).0))
                    .or_default()
                    .push(b.price);
            }
            groups
                .into_iter()
                .map(|((a, d), prices)| {
                    let mut ranks = [0i64; 3];
                    prices.iter().for_each(|&p| ranks[rank(p)] += 1);
                    let sum: i64 = prices.iter().sum();
                    let avg = prices.iter().map(|&p| p as f64).sum::<f64>() / prices.len() as f64;
                    let (min, max) = (prices.iter().min(), prices.iter().max());
                    vec![
                        int(a),
                        d,
                        int(prices.len() as i64),
                        int(ranks[0]),
                        int(ranks[1]),
                        int(ranks[2]),
                        int(*min.unwrap_or(&0)),
                        int(*max.unwrap_or(&0)),
                        int(avg as i64),
                        int(sum),
                    ]
                })
                .collect()
        }
        18 => {
            // the latest bid per (bidder, auction); of equal times the first
            let mut latest: HashMap<(i64, i64), &Bid> = HashMap::new();
            for b in &e.bids {
                let l = latest.entry((b.bidder, b.auction)).or_insert(b);
                if b.t > l.t {
                    *l = b;
                }
            }
            latest.into_values().map(|b| b.row.clone()).collect()
        }
        19 => {
            let mut per: HashMap<i64, Vec<&Bid>> = HashMap::new();
            for b in &e.bids {
                per.entry(b.auction).or_default().push(b);
            }
            per.into_values()
                .flat_map(|mut bids| {
                    // stable: equal prices keep their arrival order
                    bids.sort_by_key(|b| std::cmp::Reverse(b.price));
                    bids.into_iter().take(10).enumerate().map(|(i, b)| {
                        let mut r = b.row.clone();
                        r.push(int(i as i64 + 1));
                        r
                    })
                })
                .collect()
        }
        20 => {
            let auctions: HashMap<i64, &Auction> = e.auctions.iter().map(|a| (a.id, a)).collect();
            e.bids
                .iter()
                .filter_map(|b| {
                    let a = auctions.get(&b.auction).filter(|a| a.category == 10)?;
                    let mut r = b.row.clone();
                    r.extend(a.row[1..].iter().cloned());
                    Some(r)
                })
                .collect()
        }
        21 => e
            .bids
            .iter()
            .filter_map(|b| {
                let named = ["apple", "google", "facebook", "baidu"]
                    .iter()
                    .position(|c| b.channel.to_lowercase() == *c);
                let id = match named {
                    Some(i) => Some(i.to_string()),
                    None => channel_id(&b.url),
                }?;
                Some(vec![
                    int(b.auction),
                    int(b.bidder),
                    int(b.price),
                    b.channel.clone(),
                    id,
                ])
            })
            .collect(),
        22 => e
            .bids
            .iter()
            .map(|b| {
                let parts: Vec<&str> = b.url.split('/').collect();
                let dir = |i: usize| parts.get(i).map_or("NULL".to_string(), |s| s.to_string());
                vec![
                    int(b.auction),
                    int(b.bidder),
                    int(b.price),
                    b.channel.clone(),
                    dir(3),
                    dir(4),
                    dir(5),
                ]
            })
            .collect(),
        // q6: refused (as by Flink)
        _ => return None,
    })
}

/// The value q13's side input holds for `key`.
pub fn side_value(key: i64) -> String {
    format!("side-{key}")
}

/// q4's and q9's winning bids: per auction, of its bids between its start
/// and its end, the highest (the earliest of equal prices, then the first).
fn winners(e: &Events) -> Vec<(&Auction, &Bid)> {
    let mut bids: HashMap<i64, Vec<&Bid>> = HashMap::new();
    for b in &e.bids {
        bids.entry(b.auction).or_default().push(b);
    }
    e.auctions
        .iter()
        .filter_map(|a| {
            let best = bids
                .get(&a.id)?
                .iter()
                .filter(|b| a.t <= b.t && b.t <= a.expires)
                .fold(None::<&Bid>, |best, b| match best {
                    Some(x) if (x.price, -x.t) >= (b.price, -b.t) => Some(x),
                    _ => Some(b),
                })?;
            Some((a, best))
        })
        .collect()
}
