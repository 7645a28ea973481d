//! Every built-in frame against a rescan.

use std::collections::VecDeque;

use super::*;

/// Every built-in frame against a rescan of every frame, on random data,
/// with a snapshot → restore into a fresh accumulator halfway.
#[test]
fn frames_match_a_rescan_across_a_restore() {
    let mut x: u64 = 99;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    use AggregateFunction as F;
    for width in [1usize, 2, 5, 17] {
        for (func, arg) in [
            (F::Max, SqlType::BigInt),
            (F::Min, SqlType::BigInt),
            (F::Sum, SqlType::BigInt),
            (F::Count, SqlType::BigInt),
            (F::CountStar, SqlType::BigInt),
            (F::Avg, SqlType::Double),
            (F::Max, SqlType::Double),
        ] {
            let mut acc = frame_accumulator(func, Some(arg)).unwrap();
            let mut frame: VecDeque<Option<i64>> = VecDeque::new();
            let values: Vec<Option<i64>> = (0..2000)
                .map(|_| (next() % 7 != 0).then(|| (next() % 100) as i64 - 50))
                .collect();
            let mut got: Vec<Option<f64>> = Vec::new();
            let mut want: Vec<Option<f64>> = Vec::new();
            for (half, rows) in values.chunks(1000).enumerate() {
                if half == 1 {
                    let mut parts = Vec::new();
                    acc.snapshot(&mut parts).unwrap();
                    acc = frame_accumulator(func, Some(arg)).unwrap();
                    acc.restore(&parts).unwrap();
                }
                let col: ArrayRef = if arg == SqlType::Double {
                    Arc::new(Float64Array::from_iter(
                        rows.iter().map(|v| v.map(|x| x as f64)),
                    ))
                } else {
                    Arc::new(Int64Array::from(rows.to_vec()))
                };
                acc.begin(&[col], 1).unwrap();
                for (r, v) in rows.iter().enumerate() {
                    frame.push_back(*v);
                    acc.push(0, r as u32);
                    while frame.len() > width {
                        frame.pop_front();
                        acc.pop(0);
                    }
                    acc.emit(0);
                    let vals: Vec<i64> = frame.iter().flatten().copied().collect();
                    let n = vals.len() as f64;
                    let sum = vals.iter().sum::<i64>() as f64;
                    want.push(match func {
                        F::Max => vals.iter().max().map(|&v| v as f64),
                        F::Min => vals.iter().min().map(|&v| v as f64),
                        F::Sum => (!vals.is_empty()).then_some(sum),
                        F::Count => Some(n),
                        F::CountStar => Some(frame.len() as f64),
                        _ => (!vals.is_empty()).then(|| sum / n),
                    });
                }
                let out = cast(&acc.finish().unwrap(), &DataType::Float64).unwrap();
                got.extend(out.as_primitive::<Float64Type>().iter());
            }
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                let close = match (g, w) {
                    (Some(a), Some(b)) => (a - b).abs() < 1e-9,
                    (a, b) => a == b,
                };
                assert!(
                    close,
                    "{func:?}({arg}), width {width}, row {i}: {g:?} vs {w:?}"
                );
            }
        }
    }
}
