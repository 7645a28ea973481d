//! Tests every accumulator against the contract: result and state types,
//! NULL handling, groups that appear later, and merge ≡ one pass.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, NullArray, StringArray,
    TimestampMillisecondArray,
};
use arrow::util::display::{ArrayFormatter, FormatOptions};

use super::{AggregateFunction as F, create_accumulator};
use crate::types::SqlType;

fn show(a: &ArrayRef) -> Vec<String> {
    let f =
        ArrayFormatter::try_new(a.as_ref(), &FormatOptions::default().with_null("NULL")).unwrap();
    (0..a.len()).map(|i| f.value(i).to_string()).collect()
}

/// One pass over all rows.
fn one_pass(func: F, t: Option<SqlType>, v: &ArrayRef, groups: &[u32], n: usize) -> ArrayRef {
    let mut acc = create_accumulator(func, t).unwrap();
    let values = if t.is_some() { vec![v.clone()] } else { vec![] };
    acc.update_batch(&values, groups, n).unwrap();
    // reading the groups (in reverse, plus one never seen) changes nothing
    let order: Vec<u32> = (0..=n as u32).rev().collect();
    let peeked = show(&acc.evaluate_groups(&order).unwrap());
    let out = acc.evaluate(n).unwrap();
    let mut expected = show(&out);
    expected.push(show(&acc.evaluate_groups(&[0]).unwrap())[0].clone());
    expected.reverse();
    assert_eq!(peeked, expected, "{func:?} evaluate_groups");
    assert_eq!(
        out.data_type(),
        &func.return_type(t).unwrap().to_arrow(),
        "{func:?} result type"
    );
    assert_eq!(out.len(), n);
    out
}

/// The rows split in two accumulators, one's state merged into the other.
fn split_merge(func: F, t: Option<SqlType>, v: &ArrayRef, groups: &[u32], n: usize) -> ArrayRef {
    let mid = groups.len() / 2;
    let (a, b) = (v.slice(0, mid), v.slice(mid, v.len() - mid));
    let vals = |x: ArrayRef| if t.is_some() { vec![x] } else { vec![] };
    let mut left = create_accumulator(func, t).unwrap();
    let mut right = create_accumulator(func, t).unwrap();
    left.update_batch(&vals(a), &groups[..mid], n).unwrap();
    right.update_batch(&vals(b), &groups[mid..], n).unwrap();
    let state = right.state(n).unwrap();
    let types: Vec<_> = state.iter().map(|s| s.data_type().clone()).collect();
    assert_eq!(types, func.state_types(t), "{func:?} state types");
    let identity: Vec<u32> = (0..n as u32).collect();
    left.merge_batch(&state, &identity, n).unwrap();
    left.evaluate(n).unwrap()
}

fn check(func: F, t: Option<SqlType>, v: ArrayRef, groups: &[u32], n: usize, expected: &[&str]) {
    let one = one_pass(func, t, &v, groups, n);
    assert_eq!(show(&one), expected, "{func:?}({t:?}) one pass");
    let merged = split_merge(func, t, &v, groups, n);
    assert_eq!(show(&merged), expected, "{func:?}({t:?}) split + merge");
}

// Groups: 0 gets rows 0, 2, 4; 1 gets rows 1, 5; 2 gets row 3; group 3 exists but has no rows.
const G: [u32; 6] = [0, 1, 0, 2, 0, 1];

fn ints() -> ArrayRef {
    Arc::new(Int64Array::from(vec![
        Some(5),
        Some(7),
        None,
        None,
        Some(-2),
        Some(7),
    ]))
}

#[test]
fn count_star_and_count_skip_nulls_correctly() {
    check(F::CountStar, None, ints(), &G, 4, &["3", "2", "1", "0"]);
    check(
        F::Count,
        Some(SqlType::BigInt),
        ints(),
        &G,
        4,
        &["2", "2", "0", "0"],
    );
}

#[test]
fn count_distinct_every_type() {
    check(
        F::CountDistinct,
        Some(SqlType::BigInt),
        ints(),
        &G,
        4,
        &["2", "1", "0", "0"],
    );
    let s: ArrayRef = Arc::new(StringArray::from(vec![
        Some("a"),
        Some("b"),
        Some("a"),
        None,
        Some("c"),
        Some("b"),
    ]));
    check(
        F::CountDistinct,
        Some(SqlType::Varchar),
        s,
        &G,
        4,
        &["2", "1", "0", "0"],
    );
    let d: ArrayRef = Arc::new(Float64Array::from(vec![
        0.0,
        1.0,
        -0.0,
        f64::NAN,
        f64::NAN,
        1.0,
    ]));
    check(
        F::CountDistinct,
        Some(SqlType::Double),
        d,
        &G,
        4,
        &["2", "1", "1", "0"],
    );
    let b: ArrayRef = Arc::new(BooleanArray::from(vec![
        Some(true),
        Some(false),
        Some(true),
        None,
        Some(false),
        None,
    ]));
    check(
        F::CountDistinct,
        Some(SqlType::Boolean),
        b,
        &G,
        4,
        &["2", "1", "0", "0"],
    );
    let ts: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![1, 2, 1, 3, 1, 2]));
    check(
        F::CountDistinct,
        Some(SqlType::Timestamp),
        ts,
        &G,
        4,
        &["1", "1", "1", "0"],
    );
}

#[test]
fn sum_ints_and_doubles() {
    check(
        F::Sum,
        Some(SqlType::BigInt),
        ints(),
        &G,
        4,
        &["3", "14", "NULL", "NULL"],
    );
    let i32s: ArrayRef = Arc::new(Int32Array::from(vec![
        Some(i32::MAX),
        Some(1),
        Some(1),
        None,
        None,
        None,
    ]));
    check(
        F::Sum,
        Some(SqlType::Int),
        i32s,
        &G,
        4,
        &["2147483648", "1", "NULL", "NULL"],
    );
    let wrap: ArrayRef = Arc::new(Int64Array::from(vec![i64::MAX, 0, 1, 0, 0, 0]));
    check(
        F::Sum,
        Some(SqlType::BigInt),
        wrap,
        &G,
        3,
        &[&i64::MIN.to_string(), "0", "0"],
    );
    let d: ArrayRef = Arc::new(Float64Array::from(vec![
        Some(1.5),
        None,
        Some(2.25),
        Some(1.0),
        None,
        None,
    ]));
    check(
        F::Sum,
        Some(SqlType::Double),
        d,
        &G,
        4,
        &["3.75", "NULL", "1.0", "NULL"],
    );
}

#[test]
fn min_max_every_type() {
    check(
        F::Min,
        Some(SqlType::BigInt),
        ints(),
        &G,
        4,
        &["-2", "7", "NULL", "NULL"],
    );
    check(
        F::Max,
        Some(SqlType::BigInt),
        ints(),
        &G,
        4,
        &["5", "7", "NULL", "NULL"],
    );
    let d: ArrayRef = Arc::new(Float64Array::from(vec![
        1.0,
        f64::NAN,
        f64::INFINITY,
        -1.0,
        -3.5,
        2.0,
    ]));
    check(
        F::Max,
        Some(SqlType::Double),
        d.clone(),
        &G,
        3,
        &["inf", "NaN", "-1.0"],
    );
    check(
        F::Min,
        Some(SqlType::Double),
        d,
        &G,
        3,
        &["-3.5", "2.0", "-1.0"],
    );
    let s: ArrayRef = Arc::new(StringArray::from(vec![
        Some("b"),
        Some("x"),
        Some("a"),
        None,
        Some("c"),
        Some("y"),
    ]));
    check(
        F::Min,
        Some(SqlType::Varchar),
        s.clone(),
        &G,
        3,
        &["a", "x", "NULL"],
    );
    check(
        F::Max,
        Some(SqlType::Varchar),
        s,
        &G,
        3,
        &["c", "y", "NULL"],
    );
    let b: ArrayRef = Arc::new(BooleanArray::from(vec![
        Some(true),
        Some(false),
        Some(false),
        None,
        Some(true),
        None,
    ]));
    check(
        F::Min,
        Some(SqlType::Boolean),
        b.clone(),
        &G,
        3,
        &["false", "false", "NULL"],
    );
    check(
        F::Max,
        Some(SqlType::Boolean),
        b,
        &G,
        3,
        &["true", "false", "NULL"],
    );
    let ts: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![
        3000, 1000, 2000, 0, 1000, 5000,
    ]));
    check(
        F::Max,
        Some(SqlType::Timestamp),
        ts,
        &G,
        3,
        &[
            "1970-01-01T00:00:03",
            "1970-01-01T00:00:05",
            "1970-01-01T00:00:00",
        ],
    );
    let i: ArrayRef = Arc::new(Int32Array::from(vec![3, 1, 2, 0, 1, 5]));
    check(F::Min, Some(SqlType::Int), i, &G, 3, &["1", "1", "0"]);
}

#[test]
fn avg_and_variance() {
    check(
        F::Avg,
        Some(SqlType::BigInt),
        ints(),
        &G,
        4,
        &["1.5", "7.0", "NULL", "NULL"],
    );
    let d: ArrayRef = Arc::new(Float64Array::from(vec![2.0, 1.0, 4.0, 9.0, 6.0, 3.0]));
    check(
        F::VarSamp,
        Some(SqlType::Double),
        d.clone(),
        &G,
        4,
        &["4.0", "2.0", "NULL", "NULL"],
    );
    check(
        F::StddevSamp,
        Some(SqlType::Double),
        d,
        &G,
        3,
        &["2.0", "1.4142135623730951", "NULL"],
    );
}

#[test]
fn variance_is_stable_with_a_large_offset() {
    let base = 1e9;
    let d: ArrayRef = Arc::new(Float64Array::from(vec![
        base + 4.0,
        base + 7.0,
        base + 13.0,
        base + 16.0,
    ]));
    let g = [0u32, 0, 0, 0];
    let one = one_pass(F::VarSamp, Some(SqlType::Double), &d, &g, 1);
    let merged = split_merge(F::VarSamp, Some(SqlType::Double), &d, &g, 1);
    for out in [one, merged] {
        let v = out
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap()
            .value(0);
        assert!((v - 30.0).abs() < 1e-6, "{v}");
    }
}

#[test]
fn bare_null_argument_works() {
    let nulls: ArrayRef = Arc::new(NullArray::new(6));
    for func in [
        F::Count,
        F::Sum,
        F::Min,
        F::Max,
        F::Avg,
        F::StddevSamp,
        F::VarSamp,
    ] {
        let out = one_pass(func, Some(SqlType::Null), &nulls, &G, 3);
        let expect = if func == F::Count { "0" } else { "NULL" };
        assert_eq!(show(&out), [expect; 3], "{func:?}");
    }
}

#[test]
fn accumulators_are_reusable_after_evaluate() {
    let mut acc = create_accumulator(F::Sum, Some(SqlType::BigInt)).unwrap();
    acc.update_batch(&[ints()], &G, 3).unwrap();
    acc.evaluate(3).unwrap();
    let one: ArrayRef = Arc::new(Int64Array::from(vec![1]));
    acc.update_batch(&[one], &[1], 2).unwrap();
    assert_eq!(show(&acc.evaluate(2).unwrap()), ["NULL", "1"]);
}
