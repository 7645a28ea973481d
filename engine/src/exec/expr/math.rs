//! Numeric functions: ABS, FLOOR, CEIL, ROUND.
//!
//! * ABS wraps for integers (`ABS(MIN) = MIN`, like the other integer
//!   arithmetic).
//! * FLOOR / CEIL: DOUBLE → DOUBLE; integers are returned unchanged.
//! * ROUND(x[, d]) rounds half away from zero at `d` decimal digits (`d`
//!   may be negative: `ROUND(1250, -2) = 1300`). Integers are unchanged for
//!   `d ≥ 0` and wrap if rounding overflows. DOUBLE rounds the decimal
//!   value the user sees: `ROUND(2.675, 2) = 2.68` although the binary
//!   double is slightly below 2.675 (as Flink's BigDecimal-based ROUND);
//!   the fast path is `(x * 10^d).round() / 10^d`, and values within
//!   rounding error of a tie are decided on their shortest decimal text.
//!   A NULL `d` gives NULL.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, PrimitiveArray, new_null_array};
use arrow::datatypes::{ArrowPrimitiveType, DataType, Float64Type, Int32Type, Int64Type};
use arrow::record_batch::RecordBatch;

use super::Node;
use super::compile::{arity, ill_typed, sub};
use super::functions::{FunctionDef, arity as plan_arity};
use super::value::{Value, internal, map_value, map_values, prim};
use crate::error::ExecResult;
use crate::error::{PlanResult, SqlPos};
use crate::plan::expr::{Expr, ScalarFunc};
use crate::sql::typing::{expect_integer, expect_numeric};
use crate::types::SqlType;

/// `ABS(x)`.
pub(crate) static ABS: FunctionDef = FunctionDef {
    name: "abs",
    names: &["abs"],
    aliases: &[],
    plan: |name, args, pos| numeric(name, args, pos, ScalarFunc::Abs),
    compile: MathCall::compile,
};

/// `FLOOR(x)`.
pub(crate) static FLOOR: FunctionDef = FunctionDef {
    name: "floor",
    names: &["floor"],
    aliases: &[],
    plan: |name, args, pos| numeric(name, args, pos, ScalarFunc::Floor),
    compile: MathCall::compile,
};

/// `CEIL(x)`.
pub(crate) static CEIL: FunctionDef = FunctionDef {
    name: "ceil",
    names: &["ceil"],
    aliases: &["ceiling"],
    plan: |name, args, pos| numeric(name, args, pos, ScalarFunc::Ceil),
    compile: MathCall::compile,
};

/// `ROUND(x[, digits])`.
pub(crate) static ROUND: FunctionDef = FunctionDef {
    name: "round",
    names: &["round"],
    aliases: &[],
    plan: |name, mut args, pos| {
        plan_arity(name, &args, 1..=2, pos)?;
        let x = expect_numeric(args.remove(0), name, pos)?;
        let mut ty = x.sql_type();
        let mut all = vec![x];
        if let Some(d) = args.pop() {
            all.push(expect_integer(d, name, pos)?);
        }
        if let SqlType::Decimal(p, s) = ty {
            ty = decimal_round_type(p, s, decimal_digits(&all, pos)?);
        }
        Ok(Expr::Function {
            func: ScalarFunc::Round,
            args: all,
            ty,
        })
    },
    compile: MathCall::compile,
};

/// ROUND's digits for a DECIMAL, which must be constant (the result type
/// depends on them).
fn decimal_digits(args: &[Expr], pos: SqlPos) -> PlanResult<i64> {
    match args.get(1) {
        None => Ok(0),
        Some(Expr::Literal(crate::plan::expr::Literal::BigInt(d))) => Ok(*d),
        Some(_) => Err(crate::error::PlanError::new(
            "ROUND of a DECIMAL needs a constant number of digits (its result type depends on them)",
            pos,
        )
        .with_hint("write ROUND(x, 2), or CAST x to DOUBLE")),
    }
}

fn decimal_round_type(p: u8, s: u8, d: i64) -> SqlType {
    let (p, s) = crate::types::decimal::round_type((p, s), d);
    SqlType::Decimal(p, s)
}

/// One numeric argument; the result has its type (FLOOR and CEIL of a
/// DECIMAL drop its fraction).
fn numeric(name: &str, mut args: Vec<Expr>, pos: SqlPos, func: ScalarFunc) -> PlanResult<Expr> {
    plan_arity(name, &args, 1..=1, pos)?;
    let x = expect_numeric(args.remove(0), name, pos)?;
    let ty = match (x.sql_type(), func) {
        (SqlType::Decimal(p, s), ScalarFunc::Floor | ScalarFunc::Ceil) => {
            decimal_round_type(p, s, 0)
        }
        (t, _) => t,
    };
    Ok(Expr::Function {
        func,
        args: vec![x],
        ty,
    })
}

/// Which numeric function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MathFunc {
    Abs,
    Floor,
    Ceil,
    Round,
}

/// A call of ABS, FLOOR, CEIL or ROUND.
#[derive(Debug)]
pub(crate) struct MathCall {
    func: MathFunc,
    /// The operand, then ROUND's digits (BIGINT) if given.
    args: Vec<Node>,
    /// For a DECIMAL operand: the result type and ROUND's (constant) digits.
    decimal: Option<((u8, u8), i64)>,
}

impl MathCall {
    /// Compiles ABS / FLOOR / CEIL / ROUND of result type `ty` (the
    /// operand's numeric type).
    pub(crate) fn compile(
        expr: &Expr,
        func: ScalarFunc,
        args: &[Expr],
        ty: SqlType,
    ) -> ExecResult<Node> {
        if !ty.is_numeric() {
            return Err(internal(ill_typed(expr, format!("{ty} is not numeric"))));
        }
        let f = match func {
            ScalarFunc::Abs => MathFunc::Abs,
            ScalarFunc::Floor => MathFunc::Floor,
            ScalarFunc::Ceil => MathFunc::Ceil,
            ScalarFunc::Round => MathFunc::Round,
            other => return Err(internal(format!("{} is not numeric", other.name()))),
        };
        arity(expr, args, 1, if f == MathFunc::Round { 2 } else { 1 })?;
        let decimal = match ty {
            SqlType::Decimal(p, s) => {
                let d = decimal_digits(args, SqlPos::default())
                    .map_err(|e| internal(ill_typed(expr, e.message)))?;
                Some(((p, s), d))
            }
            _ => None,
        };
        let operand = if decimal.is_some() {
            args[0].sql_type()
        } else {
            ty
        };
        let mut nodes = vec![sub(&args[0], operand)?];
        if let Some(d) = args.get(1) {
            nodes.push(sub(d, SqlType::BigInt)?);
        }
        Ok(Node::Math(Box::new(MathCall {
            func: f,
            args: nodes,
            decimal,
        })))
    }

    /// Evaluates over `batch`.
    pub(crate) fn eval(&self, batch: &RecordBatch) -> ExecResult<Value> {
        let mut values = self
            .args
            .iter()
            .map(|a| a.eval(batch))
            .collect::<ExecResult<Vec<_>>>()?;
        let x = values.remove(0);
        if let Some((out, digits)) = self.decimal {
            return map_value(x, |a| decimal_math(self.func, a, out, digits));
        }
        match (self.func, values.pop()) {
            (MathFunc::Abs, _) => map_value(x, abs),
            (MathFunc::Floor, _) => map_value(x, |a| float_only(a, f64::floor)),
            (MathFunc::Ceil, _) => map_value(x, |a| float_only(a, f64::ceil)),
            (MathFunc::Round, None) => map_value(x, |a| round_const(a, 0)),
            (MathFunc::Round, Some(d)) if d.is_scalar() => {
                if d.is_null_scalar() {
                    let t = x.data_type().clone();
                    return map_value(x, |a| Ok(new_null_array(&t, a.len())));
                }
                let digits = prim::<Int64Type>(d.array())?.value(0);
                map_value(x, |a| round_const(a, digits))
            }
            (MathFunc::Round, Some(d)) => map_values(vec![x, d], batch.num_rows(), round_rows),
        }
    }
}

/// ABS, FLOOR, CEIL or ROUND (to `digits`) of a DECIMAL, as type `(p, s)`.
fn decimal_math(
    func: MathFunc,
    a: &ArrayRef,
    (p, s): (u8, u8),
    digits: i64,
) -> ExecResult<ArrayRef> {
    use crate::types::decimal::{self as dec, decimal_array, decimals};
    let x = decimals(a)?;
    let from = x.scale() as u8;
    // ROUND to tens and beyond rounds at 10^-digits, then scales back up
    let up = if func == MathFunc::Round && digits < 0 {
        dec::pow10(digits.unsigned_abs().min(38) as u8)
    } else {
        1
    };
    let unit = dec::pow10(from - s).saturating_mul(up);
    let values = x
        .values()
        .iter()
        .map(|&v| match func {
            MathFunc::Abs => v.abs(),
            MathFunc::Floor => v.div_euclid(unit),
            MathFunc::Ceil => -(-v).div_euclid(unit),
            MathFunc::Round => dec::div_half_up(v, unit).saturating_mul(up),
        })
        .collect();
    decimal_array(values, x.nulls().cloned(), (p, s))
}

fn abs(a: &ArrayRef) -> ExecResult<ArrayRef> {
    Ok(match a.data_type() {
        DataType::Int32 => Arc::new(prim::<Int32Type>(a)?.unary::<_, Int32Type>(i32::wrapping_abs)),
        DataType::Int64 => Arc::new(prim::<Int64Type>(a)?.unary::<_, Int64Type>(i64::wrapping_abs)),
        DataType::Float64 => Arc::new(prim::<Float64Type>(a)?.unary::<_, Float64Type>(f64::abs)),
        other => return Err(internal(format!("ABS of {other}"))),
    })
}

/// Applies `f` to DOUBLE values; integers pass through.
fn float_only(a: &ArrayRef, f: fn(f64) -> f64) -> ExecResult<ArrayRef> {
    match a.data_type() {
        DataType::Float64 => Ok(Arc::new(prim::<Float64Type>(a)?.unary::<_, Float64Type>(f))),
        _ => Ok(a.clone()),
    }
}

fn round_const(a: &ArrayRef, d: i64) -> ExecResult<ArrayRef> {
    Ok(match a.data_type() {
        DataType::Float64 => {
            Arc::new(prim::<Float64Type>(a)?.unary::<_, Float64Type>(|x| round_f64(x, d)))
        }
        _ if d >= 0 => a.clone(),
        DataType::Int32 => Arc::new(
            prim::<Int32Type>(a)?.unary::<_, Int32Type>(|x| round_i64(i64::from(x), d) as i32),
        ),
        DataType::Int64 => {
            Arc::new(prim::<Int64Type>(a)?.unary::<_, Int64Type>(|x| round_i64(x, d)))
        }
        other => return Err(internal(format!("ROUND of {other}"))),
    })
}

fn round_rows(a: &[ArrayRef]) -> ExecResult<ArrayRef> {
    let (x, d) = match a {
        [x, d] => (x, prim::<Int64Type>(d)?),
        _ => return Err(internal("ROUND needs a value and digits")),
    };
    fn per_row<T: ArrowPrimitiveType>(
        x: &PrimitiveArray<T>,
        d: &PrimitiveArray<Int64Type>,
        f: impl Fn(T::Native, i64) -> T::Native,
    ) -> ArrayRef {
        let out: PrimitiveArray<T> = (0..x.len())
            .map(|i| (x.is_valid(i) && d.is_valid(i)).then(|| f(x.value(i), d.value(i))))
            .collect();
        Arc::new(out)
    }
    Ok(match x.data_type() {
        DataType::Float64 => per_row(prim::<Float64Type>(x)?, d, round_f64),
        DataType::Int32 => per_row(prim::<Int32Type>(x)?, d, |v, d| {
            round_i64(i64::from(v), d) as i32
        }),
        DataType::Int64 => per_row(prim::<Int64Type>(x)?, d, round_i64),
        other => return Err(internal(format!("ROUND of {other}"))),
    })
}

/// Rounds an integer half away from zero to `10^-d` (unchanged for
/// `d ≥ 0`), wrapping if the result does not fit.
pub(crate) fn round_i64(x: i64, d: i64) -> i64 {
    if d >= 0 {
        return x;
    }
    if d < -19 {
        return 0;
    }
    let m = 10i128.pow(d.unsigned_abs() as u32);
    let q = i128::from(x);
    let r = q % m;
    let base = q - r;
    let rounded = if r.abs() * 2 >= m {
        base + m * q.signum()
    } else {
        base
    };
    rounded as i64
}

/// Rounds a double half away from zero at `d` decimal digits.
pub(crate) fn round_f64(x: f64, d: i64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    if d > 340 {
        return x;
    }
    if d < -340 {
        return 0.0;
    }
    let d32 = d as i32;
    let scale = 10f64.powi(d32.abs());
    let y = if d >= 0 { x * scale } else { x / scale };
    if !y.is_finite() || y.abs() >= 4_503_599_627_370_496.0 {
        // already integral at this precision
        return x;
    }
    let frac = y.abs().fract();
    let tolerance = (y.abs() * 8.0 * f64::EPSILON).max(1e-12);
    if (frac - 0.5).abs() <= tolerance
        && let Some(v) = round_decimal_text(x, d)
    {
        return v;
    }
    let r = y.round();
    if d >= 0 { r / scale } else { r * scale }
}

/// Rounds using the shortest decimal text of `x` (exact for what the
/// user typed or saw).
fn round_decimal_text(x: f64, d: i64) -> Option<f64> {
    let text = format!("{:e}", x.abs());
    let (mantissa, exp) = text.split_once('e')?;
    let exp: i64 = exp.parse().ok()?;
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    // value = 0.<digits> * 10^(exp + 1); keep this many leading digits
    let keep = exp + 1 + d;
    if keep >= digits.len() as i64 {
        return Some(x);
    }
    if keep < 0 {
        return Some(0.0);
    }
    let keep = keep as usize;
    let mut kept: u128 = if keep == 0 {
        0
    } else {
        digits.get(..keep)?.parse().ok()?
    };
    if digits.as_bytes().get(keep)? >= &b'5' {
        kept += 1;
    }
    let v: f64 = format!("{kept}e{}", -d).parse().ok()?;
    Some(if kept == 0 { 0.0 } else { v.copysign(x) })
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use SqlType::*;

    #[test]
    fn round_doubles_half_away_from_zero() {
        let cases = [
            (2.5, 0, 3.0),
            (-2.5, 0, -3.0),
            (0.5, 0, 1.0),
            (1.4999999999999998, 0, 1.0),
            (2.675, 2, 2.68),
            (-2.675, 2, -2.68),
            (1.005, 2, 1.01),
            (0.125, 2, 0.13),
            (1.2345, 3, 1.235),
            (1.23456, 4, 1.2346),
            (1234.5, -2, 1200.0),
            (1250.0, -2, 1300.0),
            (-1250.0, -2, -1300.0),
            (0.004, 2, 0.0),
            (123.456, 10, 123.456),
            (1e300, 5, 1e300),
            (5e-324, 400, 5e-324),
            (12345.0, -400, 0.0),
            (0.1 + 0.2, 1, 0.3),
        ];
        for (x, d, want) in cases {
            assert_eq!(round_f64(x, d), want, "ROUND({x}, {d})");
        }
        assert!(round_f64(f64::NAN, 2).is_nan());
        assert_eq!(round_f64(f64::INFINITY, 2), f64::INFINITY);
    }

    #[test]
    fn round_integers() {
        assert_eq!(round_i64(1234, 2), 1234);
        assert_eq!(round_i64(1250, -2), 1300);
        assert_eq!(round_i64(-1250, -2), -1300);
        assert_eq!(round_i64(1249, -2), 1200);
        assert_eq!(round_i64(-1249, -2), -1200);
        assert_eq!(round_i64(i64::MAX, -25), 0);
        assert_eq!(round_i64(4_999_999_999_999_999_999, -19), 0);
        assert_eq!(
            round_i64(i64::MAX, -19),
            10_000_000_000_000_000_000_i128 as i64
        );
    }

    #[test]
    fn math_functions_over_columns() {
        let d = f64s(&[Some(-2.5), Some(2.4), None]);
        let i = int32(&[Some(i32::MIN), Some(-7), None]);
        let f = |func, a: Expr, ty| call(func, vec![a], ty);
        same(
            &eval1(&f(ScalarFunc::Abs, col(0, Double), Double), d.clone()),
            f64s(&[Some(2.5), Some(2.4), None]),
        );
        same(
            &eval1(&f(ScalarFunc::Abs, col(0, Int), Int), i.clone()),
            int32(&[Some(i32::MIN), Some(7), None]),
        );
        same(
            &eval1(&f(ScalarFunc::Floor, col(0, Double), Double), d.clone()),
            f64s(&[Some(-3.0), Some(2.0), None]),
        );
        same(
            &eval1(&f(ScalarFunc::Ceil, col(0, Double), Double), d.clone()),
            f64s(&[Some(-2.0), Some(3.0), None]),
        );
        same(
            &eval1(&f(ScalarFunc::Floor, col(0, Int), Int), i.clone()),
            i.clone(),
        );
        same(
            &eval1(&f(ScalarFunc::Round, col(0, Double), Double), d.clone()),
            f64s(&[Some(-3.0), Some(2.0), None]),
        );
        same(
            &eval1(&f(ScalarFunc::Round, col(0, Int), Int), i.clone()),
            i.clone(),
        );
        let r = |x: Expr, dg: Expr, ty| call(ScalarFunc::Round, vec![x, dg], ty);
        same(
            &eval1(&r(col(0, Int), big(-1), Int), i.clone()),
            int32(&[Some(i32::MAX - 1), Some(-10), None]),
        );
        same(
            &eval1(&r(col(0, Double), null(BigInt), Double), d.clone()),
            f64s(&[None, None, None]),
        );
        let b = batch(vec![
            ("x", f64s(&[Some(2.675), Some(2.675), None])),
            ("d", int64(&[Some(2), None, Some(1)])),
        ]);
        same(
            &eval(&r(col(0, Double), col(1, BigInt), Double), &b),
            f64s(&[Some(2.68), None, None]),
        );
        same(
            &eval(&r(int(1250), big(-2), Int), &b),
            int32(&[Some(1300); 3]),
        );
    }
}
