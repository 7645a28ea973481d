//! CAST between SQL types.
//!
//! A value that cannot be converted yields NULL, never an error: `'abc'` to
//! INT, `1e300` to INT, NaN to BIGINT, `'2026-13-01'` to TIMESTAMP. Only a
//! pair of types with no conversion at all (BOOLEAN to TIMESTAMP, …) is
//! rejected, at compile time.
//!
//! * Numbers convert as Arrow's safe cast: DOUBLE → INT / BIGINT truncates
//!   toward zero, out-of-range values become NULL; BOOLEAN ↔ numbers is
//!   `true = 1`, non-zero = true.
//! * TIMESTAMP ↔ BIGINT (and INTERVAL) is epoch milliseconds, zero-copy.
//! * VARCHAR → INT / BIGINT / DOUBLE trims blanks and parses with Rust's
//!   parsers (`+5`, `1e3`, `inf`, `NaN` for DOUBLE; no fractions for
//!   integers). VARCHAR → BOOLEAN accepts true/false/t/f/1/0 in any case,
//!   blanks trimmed. VARCHAR → TIMESTAMP accepts RFC 3339
//!   (`2026-01-01T00:00:10Z`, `…+02:00`, fractions) and zone-less
//!   `2026-01-01 00:00:10[.250]`, `2026-01-01T00:00:10` or `2026-01-01`,
//!   read as UTC; sub-millisecond digits are dropped.
//! * TIMESTAMP → VARCHAR is [`crate::types::format_timestamp_ms`];
//!   INTERVAL → VARCHAR is [`crate::types::format_interval_ms`];
//!   BOOLEAN → VARCHAR is `true` / `false`; DOUBLE → VARCHAR is the
//!   shortest text that reads back to the same value (`0.1`, `1.0`,
//!   `1e20`, `-0.0`), with `NaN`, `Infinity` and `-Infinity`.

use std::fmt::Write;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, PrimitiveArray, StringArray, StringBuilder, new_null_array,
};
use arrow::compute::cast as arrow_cast;
use arrow::datatypes::{ArrowPrimitiveType, Float64Type, Int32Type, Int64Type};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, NaiveDate, NaiveDateTime};

use super::Node;
use super::compile::{compile_node, ill_typed};
use super::value::{
    Value, arrow_err, internal, map_value, prim, retype, strings, timestamps, timestamps_as_i64,
};
use crate::error::ExecResult;
use crate::plan::expr::Expr;
use crate::types::{SqlType, format_interval_ms, format_timestamp_ms};

/// How a cast is carried out, decided at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CastKind {
    /// From the NULL type: all NULL.
    AllNull,
    /// Between BOOLEAN, INT, BIGINT, DOUBLE, TIMESTAMP and INTERVAL, and
    /// from BOOLEAN / INT / BIGINT to VARCHAR: Arrow's safe cast, with
    /// TIMESTAMP reinterpreted as Int64 on either side.
    Arrow,
    ParseBool,
    ParseInt,
    ParseBigInt,
    ParseDouble,
    ParseTimestamp,
    FormatDouble,
    FormatTimestamp,
    FormatInterval,
    /// To DECIMAL, exact (`decimal.rs`).
    ToDecimal,
    /// From DECIMAL (`decimal.rs`).
    FromDecimal,
}

fn plan(from: SqlType, to: SqlType) -> Option<CastKind> {
    use SqlType::*;
    let number = |t: SqlType| matches!(t, Boolean | Int | BigInt | Double);
    let instant = |t: SqlType| matches!(t, Timestamp | Interval);
    Some(match (from, to) {
        (Null, _) => CastKind::AllNull,
        (Int | BigInt | Double | Decimal(..) | Varchar, Decimal(..)) => CastKind::ToDecimal,
        (Decimal(..), Int | BigInt | Double | Varchar) => CastKind::FromDecimal,
        (Varchar, Boolean) => CastKind::ParseBool,
        (Varchar, Int) => CastKind::ParseInt,
        (Varchar, BigInt) => CastKind::ParseBigInt,
        (Varchar, Double) => CastKind::ParseDouble,
        (Varchar, Timestamp) => CastKind::ParseTimestamp,
        (Double, Varchar) => CastKind::FormatDouble,
        (Timestamp, Varchar) => CastKind::FormatTimestamp,
        (Interval, Varchar) => CastKind::FormatInterval,
        (Boolean | Int | BigInt, Varchar) => CastKind::Arrow,
        (a, b) if number(a) && number(b) => CastKind::Arrow,
        (a, b) if instant(a) && (instant(b) || (number(b) && b != Boolean)) => CastKind::Arrow,
        (a, b) if number(a) && a != Boolean && instant(b) => CastKind::Arrow,
        _ => return None,
    })
}

/// `CAST(expr AS to)`.
#[derive(Debug)]
pub(crate) struct Cast {
    expr: Node,
    kind: CastKind,
    from: SqlType,
    to: SqlType,
}

impl Cast {
    /// Compiles `CAST(e AS ty)` (`whole` names it in errors).
    pub(crate) fn compile(whole: &Expr, e: &Expr, ty: SqlType) -> ExecResult<Node> {
        let node = compile_node(e)?;
        Self::wrap(node, e.sql_type(), ty).map_err(|_| {
            internal(ill_typed(
                whole,
                format!("no cast from {} to {ty}", e.sql_type()),
            ))
        })
    }

    /// Wraps `node`, of type `from`, in a cast to `to`.
    pub(crate) fn wrap(node: Node, from: SqlType, to: SqlType) -> ExecResult<Node> {
        if from == to {
            return Ok(node);
        }
        let kind =
            plan(from, to).ok_or_else(|| internal(format!("no cast from {from} to {to}")))?;
        Ok(Node::Cast(Box::new(Cast {
            expr: node,
            kind,
            from,
            to,
        })))
    }

    /// Evaluates over `batch`.
    pub(crate) fn eval(&self, batch: &RecordBatch) -> ExecResult<Value> {
        let (kind, from, to) = (self.kind, self.from, self.to);
        map_value(self.expr.eval(batch)?, |a| convert(a, kind, from, to))
    }
}

fn convert(a: &ArrayRef, kind: CastKind, from: SqlType, to: SqlType) -> ExecResult<ArrayRef> {
    let target = to.to_arrow();
    match kind {
        CastKind::ToDecimal => {
            let parts = to.decimal_parts().unwrap_or((38, 0));
            super::decimal::to_decimal(a, from, parts)
        }
        CastKind::FromDecimal => super::decimal::from_decimal(a, to),
        CastKind::AllNull => Ok(new_null_array(&target, a.len())),
        CastKind::Arrow => {
            let a = timestamps_as_i64(a.clone())?;
            let via = match to {
                SqlType::Timestamp => arrow::datatypes::DataType::Int64,
                _ => target.clone(),
            };
            let out = arrow_cast(&a, &via).map_err(arrow_err("CAST"))?;
            retype(out, &target)
        }
        CastKind::ParseBool => {
            let s = strings(a)?;
            Ok(Arc::new(
                s.iter()
                    .map(|v| v.and_then(parse_bool))
                    .collect::<BooleanArray>(),
            ))
        }
        CastKind::ParseInt => Ok(Arc::new(parse_number::<Int32Type>(strings(a)?))),
        CastKind::ParseBigInt => Ok(Arc::new(parse_number::<Int64Type>(strings(a)?))),
        CastKind::ParseDouble => Ok(Arc::new(parse_number::<Float64Type>(strings(a)?))),
        CastKind::ParseTimestamp => {
            let s = strings(a)?;
            let ms = s.iter().map(|v| v.and_then(parse_timestamp_ms));
            Ok(Arc::new(
                ms.collect::<arrow::array::TimestampMillisecondArray>(),
            ))
        }
        CastKind::FormatDouble => {
            let v = prim::<Float64Type>(a)?;
            format_each(
                v.len(),
                |i| v.is_valid(i),
                |i, out| format_f64(v.value(i), out),
            )
        }
        CastKind::FormatTimestamp => {
            let v = timestamps(a)?;
            format_each(
                v.len(),
                |i| v.is_valid(i),
                |i, out| out.push_str(&format_timestamp_ms(v.value(i))),
            )
        }
        CastKind::FormatInterval => {
            let v = prim::<Int64Type>(a)?;
            format_each(
                v.len(),
                |i| v.is_valid(i),
                |i, out| out.push_str(&format_interval_ms(v.value(i))),
            )
        }
    }
}

/// Builds a VARCHAR column by formatting each valid row into a reused buffer.
fn format_each(
    rows: usize,
    valid: impl Fn(usize) -> bool,
    mut write: impl FnMut(usize, &mut String),
) -> ExecResult<ArrayRef> {
    let mut b = StringBuilder::with_capacity(rows, rows * 16);
    let mut buf = String::new();
    for i in 0..rows {
        if valid(i) {
            buf.clear();
            write(i, &mut buf);
            b.append_value(&buf);
        } else {
            b.append_null();
        }
    }
    Ok(Arc::new(b.finish()))
}

/// Shortest round-trip text of a DOUBLE.
pub(crate) fn format_f64(v: f64, out: &mut String) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "Infinity" } else { "-Infinity" });
    } else {
        // Debug is the shortest representation that round-trips; it
        // switches to exponent notation for very large / small values.
        let _ = write!(out, "{v:?}");
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    let s = s.trim();
    ["true", "t", "1"]
        .iter()
        .any(|w| s.eq_ignore_ascii_case(w))
        .then_some(true)
        .or_else(|| {
            ["false", "f", "0"]
                .iter()
                .any(|w| s.eq_ignore_ascii_case(w))
                .then_some(false)
        })
}

fn parse_number<T>(s: &StringArray) -> PrimitiveArray<T>
where
    T: ArrowPrimitiveType,
    T::Native: std::str::FromStr,
{
    s.iter()
        .map(|v| v.and_then(|v| v.trim().parse::<T::Native>().ok()))
        .collect()
}

/// Parses RFC 3339 or a zone-less (UTC) timestamp into epoch milliseconds.
pub(crate) fn parse_timestamp_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    if let Ok(t) = DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z") {
        return Some(t.timestamp_millis());
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    let day = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some(day.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use SqlType::*;

    fn cast(e: Expr, ty: SqlType) -> Expr {
        Expr::Cast {
            expr: Box::new(e),
            ty,
        }
    }

    #[test]
    fn doubles_to_integers_truncate_or_null() {
        let c = f64s(&[Some(2.9), Some(-2.9), Some(1e300), Some(f64::NAN), None]);
        same(
            &eval1(&cast(col(0, Double), Int), c.clone()),
            int32(&[Some(2), Some(-2), None, None, None]),
        );
        same(
            &eval1(&cast(col(0, Double), BigInt), c),
            int64(&[Some(2), Some(-2), None, None, None]),
        );
        let big_values = int64(&[Some(1 << 40), Some(-5)]);
        same(
            &eval1(&cast(col(0, BigInt), Int), big_values),
            int32(&[None, Some(-5)]),
        );
        same(
            &eval1(&cast(col(0, Int), Double), int32(&[Some(3)])),
            f64s(&[Some(3.0)]),
        );
    }

    #[test]
    fn timestamps_are_epoch_milliseconds() {
        same(
            &eval1(&cast(col(0, Timestamp), BigInt), tss(&[Some(-5), None])),
            int64(&[Some(-5), None]),
        );
        same(
            &eval1(&cast(col(0, BigInt), Timestamp), int64(&[Some(1000), None])),
            tss(&[Some(1000), None]),
        );
        same(
            &eval1(&cast(col(0, Int), Timestamp), int32(&[Some(7)])),
            tss(&[Some(7)]),
        );
        same(
            &eval1(&cast(col(0, Timestamp), Double), tss(&[Some(1500)])),
            f64s(&[Some(1500.0)]),
        );
    }

    #[test]
    fn strings_parse_to_numbers_and_booleans() {
        let c = strs(&[
            Some(" 42 "),
            Some("+7"),
            Some("1.5"),
            Some("abc"),
            Some(""),
            None,
        ]);
        same(
            &eval1(&cast(col(0, Varchar), Int), c.clone()),
            int32(&[Some(42), Some(7), None, None, None, None]),
        );
        same(
            &eval1(
                &cast(col(0, Varchar), BigInt),
                strs(&[Some("-9223372036854775808"), Some("9223372036854775808")]),
            ),
            int64(&[Some(i64::MIN), None]),
        );
        same(
            &eval1(&cast(col(0, Varchar), Double), c),
            f64s(&[Some(42.0), Some(7.0), Some(1.5), None, None, None]),
        );
        same(
            &eval1(
                &cast(col(0, Varchar), Double),
                strs(&[Some("1e3"), Some("-inf")]),
            ),
            f64s(&[Some(1000.0), Some(f64::NEG_INFINITY)]),
        );
        let b = strs(&[
            Some("TRUE"),
            Some("f"),
            Some(" 1 "),
            Some("0"),
            Some("T"),
            Some("False"),
            Some("yes"),
            None,
        ]);
        let (t, f) = (Some(true), Some(false));
        same(
            &eval1(&cast(col(0, Varchar), Boolean), b),
            bools(&[t, f, t, f, t, f, None, None]),
        );
    }

    #[test]
    fn strings_parse_to_timestamps() {
        let base = 1_767_225_610_000; // 2026-01-01T00:00:10Z
        let c = strs(&[
            Some("2026-01-01T00:00:10Z"),
            Some("2026-01-01T00:00:10.250Z"),
            Some("2026-01-01T02:00:10+02:00"),
            Some("2026-01-01 00:00:10"),
            Some("2026-01-01 00:00:10.25"),
            Some("2026-01-01T00:00:10"),
            Some("2026-01-01 01:00:10+01:00"),
            Some("2026-01-01"),
            Some("1969-12-31T23:59:59.999Z"),
            Some("2026-13-01T00:00:00Z"),
            Some("yesterday"),
            None,
        ]);
        same(
            &eval1(&cast(col(0, Varchar), Timestamp), c),
            tss(&[
                Some(base),
                Some(base + 250),
                Some(base),
                Some(base),
                Some(base + 250),
                Some(base),
                Some(base),
                Some(base - 10_000),
                Some(-1),
                None,
                None,
                None,
            ]),
        );
    }

    #[test]
    fn values_format_as_text() {
        same(
            &eval1(
                &cast(col(0, Timestamp), Varchar),
                tss(&[Some(1_767_225_610_000), Some(1_767_225_610_250), None]),
            ),
            strs(&[
                Some("2026-01-01T00:00:10Z"),
                Some("2026-01-01T00:00:10.250Z"),
                None,
            ]),
        );
        same(
            &eval1(
                &cast(col(0, Boolean), Varchar),
                bools(&[Some(true), Some(false), None]),
            ),
            strs(&[Some("true"), Some("false"), None]),
        );
        let d = f64s(&[
            Some(0.1),
            Some(1.0),
            Some(1e20),
            Some(-0.0),
            Some(f64::NAN),
            Some(f64::INFINITY),
            Some(f64::NEG_INFINITY),
            Some(123.456),
            None,
        ]);
        same(
            &eval1(&cast(col(0, Double), Varchar), d),
            strs(&[
                Some("0.1"),
                Some("1.0"),
                Some("1e20"),
                Some("-0.0"),
                Some("NaN"),
                Some("Infinity"),
                Some("-Infinity"),
                Some("123.456"),
                None,
            ]),
        );
        same(
            &eval1(&cast(col(0, Int), Varchar), int32(&[Some(-12), None])),
            strs(&[Some("-12"), None]),
        );
        let iv = cast(lit(crate::plan::expr::Literal::Interval(10_000)), Varchar);
        same(&eval1(&iv, int32(&[None])), strs(&[Some("10 SECOND")]));
    }

    #[test]
    fn booleans_and_numbers_convert() {
        same(
            &eval1(
                &cast(col(0, Int), Boolean),
                int32(&[Some(0), Some(-3), None]),
            ),
            bools(&[Some(false), Some(true), None]),
        );
        same(
            &eval1(
                &cast(col(0, Boolean), BigInt),
                bools(&[Some(true), Some(false)]),
            ),
            int64(&[Some(1), Some(0)]),
        );
    }

    #[test]
    fn null_casts_and_unsupported_pairs() {
        for t in [Boolean, Int, BigInt, Double, Varchar, Timestamp] {
            let out = eval1(
                &cast(col(0, SqlType::Null), t),
                new_null_array(&SqlType::Null.to_arrow(), 2),
            );
            assert_eq!(out.null_count(), 2);
        }
        for (from, to) in [
            (Boolean, Timestamp),
            (Timestamp, Boolean),
            (Varchar, Interval),
        ] {
            assert!(
                super::super::compile(&cast(col(0, from), to)).is_err(),
                "{from} -> {to}"
            );
        }
    }
}
