//! DECIMAL(p, s): exact numbers held as an `i128` scaled by `10^s` (Arrow's
//! Decimal128), with SQL's precision and scale rules (those of Flink and
//! SQL Server: docs/sql.md, "DECIMAL").
//!
//! * `p` is at most 38 digits, `0 ≤ s ≤ p`.
//! * A result whose rule asks for more than 38 digits keeps its integer
//!   digits and gives up scale, down to 6 (or its own scale if smaller).
//! * Digits beyond a scale are rounded half away from zero (`HALF_UP`).
//! * A value that needs more than `p` digits never loses them silently: text
//!   is rejected, and a computation fails with an overflow error.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Decimal128Array};
use arrow::datatypes::{Decimal128Type, i256};

use crate::error::{ExecError, ExecResult};
use crate::types::SqlType;

/// The most digits a DECIMAL holds (Decimal128).
pub const MAX_PRECISION: u8 = 38;

/// The scale a division or an average keeps at least.
const MIN_ADJUSTED_SCALE: u8 = 6;

/// `10^n` for `n ≤ 38`.
pub fn pow10(n: u8) -> i128 {
    10i128.pow(u32::from(n))
}

fn pow10_256(n: u32) -> i256 {
    let mut v = i256::ONE;
    for _ in 0..n {
        v = v.wrapping_mul(i256::from_i128(10));
    }
    v
}

/// Whether `v` has at most `p` digits.
pub fn fits(v: i128, p: u8) -> bool {
    v.unsigned_abs() < pow10(p) as u128
}

/// The precision and scale of a type with `p` digits and scale `s`, made to
/// fit 38 digits: integer digits are kept and scale is given up, down to 6.
pub fn adjust(p: u32, s: u32) -> (u8, u8) {
    let max = u32::from(MAX_PRECISION);
    if p <= max {
        return (p as u8, s as u8);
    }
    let int_digits = p - s;
    let min_scale = s.min(u32::from(MIN_ADJUSTED_SCALE));
    let s = max.saturating_sub(int_digits).max(min_scale);
    (MAX_PRECISION, s as u8)
}

/// The type of `a ± b`.
pub fn add_type((p1, s1): (u8, u8), (p2, s2): (u8, u8)) -> (u8, u8) {
    let s = u32::from(s1.max(s2));
    let int = u32::from(p1 - s1).max(u32::from(p2 - s2));
    adjust(int + s + 1, s)
}

/// The type of `a * b`.
pub fn mul_type((p1, s1): (u8, u8), (p2, s2): (u8, u8)) -> (u8, u8) {
    adjust(u32::from(p1) + u32::from(p2), u32::from(s1) + u32::from(s2))
}

/// The type of `a / b`.
pub fn div_type((p1, s1): (u8, u8), (p2, s2): (u8, u8)) -> (u8, u8) {
    let s = u32::from(MIN_ADJUSTED_SCALE).max(u32::from(s1) + u32::from(p2) + 1);
    let p = u32::from(p1 - s1) + u32::from(s2) + s;
    adjust(p, s)
}

/// The type of `a % b`.
pub fn mod_type((p1, s1): (u8, u8), (p2, s2): (u8, u8)) -> (u8, u8) {
    let s = u32::from(s1.max(s2));
    let int = u32::from(p1 - s1).min(u32::from(p2 - s2));
    adjust(int + s, s)
}

/// The type that holds every value of both types (comparison, CASE, UNION).
pub fn union_type((p1, s1): (u8, u8), (p2, s2): (u8, u8)) -> (u8, u8) {
    let s = u32::from(s1.max(s2));
    let int = u32::from(p1 - s1).max(u32::from(p2 - s2));
    adjust(int + s, s)
}

/// The type of `SUM` over a DECIMAL(p, s): DECIMAL(38, s).
pub fn sum_type((_, s): (u8, u8)) -> (u8, u8) {
    (MAX_PRECISION, s)
}

/// The type of `AVG` over a DECIMAL(p, s): DECIMAL(38, max(s, 6)).
pub fn avg_type((_, s): (u8, u8)) -> (u8, u8) {
    (MAX_PRECISION, s.max(MIN_ADJUSTED_SCALE))
}

/// The type of a DECIMAL(p, s) rounded to `d` digits after the point (FLOOR
/// and CEIL round to 0): the scale is `d` (0 if negative) when below `s`,
/// with one more integer digit for a carry (`9.99` → `10.0`).
pub fn round_type((p, s): (u8, u8), d: i64) -> (u8, u8) {
    if d >= i64::from(s) {
        return (p, s);
    }
    let d = d.max(0) as u8;
    ((p - s + d + 1).min(MAX_PRECISION), d)
}

/// `v` at scale `from` rescaled to scale `to`, rounding half away from
/// zero; `None` when it overflows an `i128`.
pub fn rescale(v: i128, from: u8, to: u8) -> Option<i128> {
    if to >= from {
        v.checked_mul(pow10(to - from))
    } else {
        Some(div_half_up(v, pow10(from - to)))
    }
}

/// `n / d` rounded half away from zero (`d > 0`).
pub fn div_half_up(n: i128, d: i128) -> i128 {
    let (q, r) = (n / d, n % d);
    if r.unsigned_abs() * 2 >= d.unsigned_abs() {
        q + n.signum() * d.signum()
    } else {
        q
    }
}

/// `a / b` of scales `sa` and `sb`, at scale `s`, rounded half away from
/// zero; `None` when `b` is zero or the quotient overflows an `i128`.
pub fn divide(a: i128, sa: u8, b: i128, sb: u8, s: u8) -> Option<i128> {
    if b == 0 {
        return None;
    }
    // a / 10^sa / (b / 10^sb) * 10^s = a * 10^(s + sb - sa) / b
    let shift = i32::from(s) + i32::from(sb) - i32::from(sa);
    let (mut n, mut d) = (i256::from_i128(a), i256::from_i128(b));
    if shift >= 0 {
        n = n.checked_mul(pow10_256(shift as u32))?;
    } else {
        d = d.checked_mul(pow10_256((-shift) as u32))?;
    }
    let (q, r) = (n.checked_div(d)?, n.checked_rem(d)?);
    let twice = r.wrapping_abs().wrapping_mul(i256::from_i128(2));
    let q = if twice >= d.wrapping_abs() {
        let away = if (n < i256::ZERO) == (d < i256::ZERO) {
            i256::ONE
        } else {
            i256::MINUS_ONE
        };
        q.checked_add(away)?
    } else {
        q
    };
    q.to_i128()
}

/// `a * b` of scales `sa` and `sb`, at scale `s` (≤ `sa + sb`), rounded
/// half away from zero; `None` when it overflows an `i128`.
pub fn multiply(a: i128, sa: u8, b: i128, sb: u8, s: u8) -> Option<i128> {
    let full = u32::from(sa) + u32::from(sb);
    let drop = full.saturating_sub(u32::from(s));
    match a.checked_mul(b) {
        Some(v) if drop == 0 => Some(v),
        Some(v) => Some(div_half_up(v, pow10(drop as u8))),
        None => {
            let v = i256::from_i128(a).checked_mul(i256::from_i128(b))?;
            let d = pow10_256(drop);
            let (q, r) = (v.checked_div(d)?, v.checked_rem(d)?);
            let twice = r.wrapping_abs().wrapping_mul(i256::from_i128(2));
            let q = if drop > 0 && twice >= d {
                q.checked_add(if v < i256::ZERO {
                    i256::MINUS_ONE
                } else {
                    i256::ONE
                })?
            } else {
                q
            };
            q.to_i128()
        }
    }
}

/// Why text is not a DECIMAL of some type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalTextError {
    /// Not a number at all.
    #[error("'{0}' is not a number")]
    NotANumber(String),
    /// A number with more integer digits than the type holds.
    #[error("{text} does not fit DECIMAL({p}, {s})")]
    Overflow {
        /// The text.
        text: String,
        /// Precision.
        p: u8,
        /// Scale.
        s: u8,
    },
}

/// The digits of a decimal number's text: sign, significant digits as an
/// integer (≤ 76 digits) and its power of ten.
struct Parsed {
    negative: bool,
    digits: Vec<u8>,
    exponent: i64,
}

fn parse_parts(text: &str) -> Option<Parsed> {
    let t = text.trim();
    let (negative, t) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let (mantissa, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], t[i + 1..].parse::<i64>().ok()?),
        None => (t, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut digits = Vec::with_capacity(int.len() + frac.len());
    for b in int.bytes().chain(frac.bytes()) {
        if !b.is_ascii_digit() {
            return None;
        }
        digits.push(b - b'0');
    }
    Some(Parsed {
        negative,
        digits,
        exponent: exp.checked_sub(frac.len() as i64)?,
    })
}

/// Parses decimal text (`12.5`, `-0.001`, `1.5e3`, `+7`) exactly as a
/// DECIMAL(p, s), rounding digits beyond the scale half away from zero.
///
/// # Errors
/// Text that is not a number, or one with more than `p - s` integer digits.
pub fn parse(text: &str, p: u8, s: u8) -> Result<i128, DecimalTextError> {
    let bad = || DecimalTextError::NotANumber(text.to_string());
    let overflow = || DecimalTextError::Overflow {
        text: text.trim().to_string(),
        p,
        s,
    };
    let parsed = parse_parts(text).ok_or_else(bad)?;
    // the value is digits * 10^exponent; at scale s it is digits * 10^(exponent + s)
    let shift = parsed.exponent + i64::from(s);
    let mut digits = &parsed.digits[..];
    while let [0, rest @ ..] = digits {
        digits = rest;
    }
    // with a negative shift the last -shift digits go, the first of them rounds
    let cut = digits.len() as i64 + shift.min(0);
    if cut < 0 {
        return Ok(0);
    }
    let keep = cut as usize;
    let mut kept: i128 = 0;
    for &d in &digits[..keep] {
        kept = kept
            .checked_mul(10)
            .and_then(|k| k.checked_add(i128::from(d)))
            .ok_or_else(overflow)?;
    }
    if shift > 0 {
        if shift > i64::from(MAX_PRECISION) {
            return if kept == 0 { Ok(0) } else { Err(overflow()) };
        }
        kept = kept.checked_mul(pow10(shift as u8)).ok_or_else(overflow)?;
    } else if keep < digits.len() && digits[keep] >= 5 {
        kept += 1;
    }
    if !fits(kept, p) {
        return Err(overflow());
    }
    Ok(if parsed.negative { -kept } else { kept })
}

/// The type and value of a numeric literal without an exponent (`0.908`
/// is DECIMAL(3, 3) = 908, `100.0` DECIMAL(4, 1)); `None` when it has more
/// than 38 digits.
pub fn literal(text: &str) -> Option<(i128, u8, u8)> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let int = int.trim_start_matches('0');
    let s = frac.len();
    let p = (int.len() + s).max(1);
    if p > usize::from(MAX_PRECISION) {
        return None;
    }
    let v = parse(text, p as u8, s as u8).ok()?;
    Some((v, p as u8, s as u8))
}

/// `v` at scale `s` as text: `12.50`, `-0.001`, `7` (scale 0).
pub fn format(v: i128, s: u8) -> String {
    let mut out = String::with_capacity(42);
    write(v, s, &mut out);
    out
}

/// Appends [`format`]'s text to `out`.
pub fn write(v: i128, s: u8, out: &mut String) {
    use std::fmt::Write;
    let abs = v.unsigned_abs();
    if v < 0 {
        out.push('-');
    }
    if s == 0 {
        let _ = write!(out, "{abs}");
        return;
    }
    let unit = pow10(s) as u128;
    let _ = write!(
        out,
        "{}.{:0width$}",
        abs / unit,
        abs % unit,
        width = usize::from(s)
    );
}

/// `v` at scale `s` as the nearest DOUBLE.
pub fn to_f64(v: i128, s: u8) -> f64 {
    // exact for |v| < 2^53; otherwise through the text, which rounds once
    if v.unsigned_abs() < (1u128 << 53) && s <= 22 {
        v as f64 / 10f64.powi(i32::from(s))
    } else {
        format(v, s).parse().unwrap_or(f64::NAN)
    }
}

/// A DOUBLE as a DECIMAL(p, s), rounding half away from zero on its
/// shortest text; `None` for NaN, infinities and values that do not fit.
pub fn from_f64(x: f64, p: u8, s: u8) -> Option<i128> {
    if !x.is_finite() {
        return None;
    }
    parse(&format!("{x:e}"), p, s).ok()
}

/// Downcasts to a DECIMAL array of any precision and scale.
pub(crate) fn decimals(a: &dyn Array) -> ExecResult<&Decimal128Array> {
    a.as_primitive_opt::<Decimal128Type>().ok_or_else(|| {
        ExecError::Internal(format!(
            "expected a Decimal128 array, got {}",
            a.data_type()
        ))
    })
}

/// A DECIMAL array of type (p, s) from its values and validity.
pub(crate) fn decimal_array(
    values: Vec<i128>,
    valid: Option<arrow::buffer::NullBuffer>,
    (p, s): (u8, u8),
) -> ExecResult<ArrayRef> {
    let a = Decimal128Array::new(values.into(), valid)
        .with_precision_and_scale(p, s as i8)
        .map_err(|e| ExecError::arrow("DECIMAL", e))?;
    Ok(Arc::new(a))
}

/// The error for a DECIMAL result that needs more digits than its type.
pub(crate) fn overflow(what: impl Into<String>, ty: (u8, u8)) -> ExecError {
    ExecError::DecimalOverflow {
        what: what.into(),
        ty: SqlType::Decimal(ty.0, ty.1).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly_and_rounds_half_up() {
        assert_eq!(parse("0.1", 10, 1), Ok(1));
        assert_eq!(parse("12.345", 10, 2), Ok(1235));
        assert_eq!(parse("-12.345", 10, 2), Ok(-1235));
        assert_eq!(parse("-12.344", 10, 2), Ok(-1234));
        assert_eq!(parse("1.5e3", 10, 2), Ok(150_000));
        assert_eq!(parse("15E-1", 10, 0), Ok(2));
        assert_eq!(parse("  +007.50 ", 4, 2), Ok(750));
        assert_eq!(parse(".5", 2, 1), Ok(5));
        assert_eq!(parse("0.0000001", 5, 2), Ok(0));
        assert_eq!(parse("5e-3", 5, 0), Ok(0));
        assert_eq!(parse("5e-1", 5, 0), Ok(1));
        assert_eq!(parse("-0.5", 5, 0), Ok(-1));
        assert_eq!(
            parse("99.995", 4, 2).unwrap_err().to_string(),
            "99.995 does not fit DECIMAL(4, 2)"
        );
        assert!(matches!(
            parse("1e40", 38, 0),
            Err(DecimalTextError::Overflow { .. })
        ));
        assert_eq!(parse("0e99", 38, 0), Ok(0));
        for bad in ["", "-", ".", "1.2.3", "abc", "1e", "0x10", "1_000"] {
            assert!(
                matches!(parse(bad, 10, 2), Err(DecimalTextError::NotANumber(_))),
                "{bad}"
            );
        }
        let max = "9".repeat(38);
        assert_eq!(parse(&max, 38, 0), Ok(max.parse::<i128>().unwrap()));
    }

    #[test]
    fn literals_take_their_digits_as_type() {
        assert_eq!(literal("0.908"), Some((908, 3, 3)));
        assert_eq!(literal("100.0"), Some((1000, 4, 1)));
        assert_eq!(literal("0.1"), Some((1, 1, 1)));
        assert_eq!(
            literal("12345678901234567890"),
            Some((12_345_678_901_234_567_890, 20, 0))
        );
        assert_eq!(literal(&"1".repeat(39)), None);
    }

    #[test]
    fn formats_with_the_scale() {
        assert_eq!(format(1250, 2), "12.50");
        assert_eq!(format(-1, 3), "-0.001");
        assert_eq!(format(7, 0), "7");
        assert_eq!(format(0, 1), "0.0");
        assert_eq!(format(i128::MIN + 1, 0).len(), 40);
    }

    #[test]
    fn type_rules_follow_flink() {
        assert_eq!(add_type((5, 2), (7, 3)), (8, 3));
        assert_eq!(mul_type((5, 2), (7, 3)), (12, 5));
        assert_eq!(div_type((5, 2), (7, 3)), (16, 10));
        assert_eq!(mod_type((5, 2), (7, 3)), (6, 3));
        // BIGINT (19, 0) * 0.908 (3, 3): the Nexmark q1 price
        assert_eq!(mul_type((19, 0), (3, 3)), (22, 3));
        assert_eq!(mul_type((38, 10), (38, 10)), (38, 6));
        assert_eq!(div_type((38, 2), (38, 2)), (38, 6));
        assert_eq!(add_type((38, 0), (38, 0)), (38, 0));
        assert_eq!(avg_type((10, 2)), (38, 6));
        assert_eq!(sum_type((10, 2)), (38, 2));
    }

    #[test]
    fn arithmetic_rounds_half_away_from_zero() {
        // 1 / 3 at scale 6
        assert_eq!(divide(1, 0, 3, 0, 6), Some(333_333));
        assert_eq!(divide(2, 0, 3, 0, 6), Some(666_667));
        assert_eq!(divide(-2, 0, 3, 0, 6), Some(-666_667));
        assert_eq!(divide(1, 0, 0, 0, 6), None);
        // 1.5 / 0.5 = 3.000000
        assert_eq!(divide(15, 1, 5, 1, 6), Some(3_000_000));
        assert_eq!(multiply(125, 2, 5, 1, 2), Some(63)); // 1.25 * 0.5 = 0.625 → 0.63
        assert_eq!(multiply(-125, 2, 5, 1, 2), Some(-63));
        // past i128 in between, through i256: 10^10 * 10^10 at scale 6
        let big = pow10(20);
        assert_eq!(multiply(big, 10, big, 10, 6), Some(pow10(26)));
        // (10^20 + 1e-10) * 0.5 = 5e19 + 5e-11: a half at scale 10, away from zero
        let (a, half) = (pow10(30) + 1, 5 * pow10(9));
        assert_eq!(multiply(a, 10, half, 10, 10), Some(5 * pow10(29) + 1));
        assert_eq!(multiply(-a, 10, half, 10, 10), Some(-5 * pow10(29) - 1));
        assert_eq!(multiply(pow10(37), 0, pow10(37), 0, 0), None);
        assert_eq!(rescale(1235, 2, 1), Some(124));
        assert_eq!(rescale(-1235, 2, 1), Some(-124));
        assert_eq!(rescale(12, 1, 3), Some(1200));
    }

    #[test]
    fn doubles_convert_through_their_shortest_text() {
        assert_eq!(from_f64(0.1, 5, 3), Some(100));
        assert_eq!(from_f64(2.675, 5, 2), Some(268));
        assert_eq!(from_f64(f64::NAN, 5, 2), None);
        assert_eq!(from_f64(1e10, 5, 2), None);
        assert_eq!(to_f64(1, 1), 0.1);
        assert_eq!(to_f64(pow10(30) + 1, 10), 1e20);
    }
}
