//! DECIMAL arithmetic and conversions, exact on `i128` values (the rules
//! are in [`crate::types::decimal`]).
//!
//! * INT and BIGINT operands take part as DECIMAL(10, 0) and DECIMAL(19, 0).
//! * Division and modulo by zero yield NULL, as for the other numbers.
//! * A result that does not fit its type fails the query with an overflow
//!   error: a DECIMAL never loses digits silently.
//! * Conversions: INT, BIGINT, DECIMAL, DOUBLE (on its shortest text) and
//!   VARCHAR to DECIMAL round half away from zero at the scale; NaN, the
//!   infinities and text that is not a number become NULL, as in every
//!   CAST. DECIMAL to INT/BIGINT truncates toward zero (NULL out of range),
//!   to DOUBLE takes the nearest, to VARCHAR writes every digit of the scale.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Decimal128Array, Float64Array, Int64Array, PrimitiveArray};
use arrow::datatypes::{ArrowPrimitiveType, DataType, Float64Type, Int32Type, Int64Type};
use arrow::record_batch::RecordBatch;

use super::Node;
use super::value::{Value, internal, prim, strings};
use crate::error::ExecResult;
use crate::plan::expr::BinaryOp;
use crate::types::SqlType;
use crate::types::decimal::{self as dec, decimal_array, decimals, overflow};

/// `left op right` of DECIMAL type `out`.
#[derive(Debug)]
pub(crate) struct DecimalArith {
    pub(crate) op: BinaryOp,
    pub(crate) left: Node,
    pub(crate) right: Node,
    pub(crate) out: (u8, u8),
}

impl DecimalArith {
    /// Evaluates over `batch`; the operands evaluate to DECIMAL arrays.
    pub(crate) fn eval(&self, batch: &RecordBatch) -> ExecResult<Value> {
        let (l, r) = (self.left.eval(batch)?, self.right.eval(batch)?);
        let all_scalar = l.is_scalar() && r.is_scalar();
        let rows = if all_scalar { 1 } else { batch.num_rows() };
        let (la, ra) = (l.array_ref(), r.array_ref());
        let (a, b) = (decimals(&la)?, decimals(&ra)?);
        let (sa, sb) = (a.scale() as u8, b.scale() as u8);
        let at = |x: &Decimal128Array, i: usize| {
            let i = if x.len() == 1 { 0 } else { i };
            x.is_valid(i).then(|| x.value(i))
        };
        let (p, s) = self.out;
        let mut values = Vec::with_capacity(rows);
        let mut valid = Vec::with_capacity(rows);
        for i in 0..rows {
            let v = match (at(a, i), at(b, i)) {
                (Some(x), Some(y)) => apply(self.op, x, sa, y, sb, s).map_err(|()| {
                    let show = |v, s| dec::format(v, s);
                    overflow(
                        format!("{} {} {}", show(x, sa), self.op.symbol(), show(y, sb)),
                        self.out,
                    )
                })?,
                _ => None,
            };
            if let Some(v) = v
                && !dec::fits(v, p)
            {
                return Err(overflow(dec::format(v, s), self.out));
            }
            values.push(v.unwrap_or(0));
            valid.push(v.is_some());
        }
        let out = decimal_array(values, Some(valid.into()), self.out)?;
        Value::from_kernel(out, all_scalar)
    }
}

/// `a op b` at scale `s`: `Ok(None)` for a division by zero, `Err` when
/// an intermediate overflows an `i128`.
fn apply(op: BinaryOp, a: i128, sa: u8, b: i128, sb: u8, s: u8) -> Result<Option<i128>, ()> {
    let at = |v, from| dec::rescale(v, from, s).ok_or(());
    Ok(Some(match op {
        BinaryOp::Plus => at(a, sa)?.checked_add(at(b, sb)?).ok_or(())?,
        BinaryOp::Minus => at(a, sa)?.checked_sub(at(b, sb)?).ok_or(())?,
        BinaryOp::Multiply => dec::multiply(a, sa, b, sb, s).ok_or(())?,
        BinaryOp::Divide if b == 0 => return Ok(None),
        BinaryOp::Divide => dec::divide(a, sa, b, sb, s).ok_or(())?,
        BinaryOp::Modulo if b == 0 => return Ok(None),
        BinaryOp::Modulo => {
            let common = sa.max(sb);
            let (x, y) = (
                dec::rescale(a, sa, common).ok_or(())?,
                dec::rescale(b, sb, common).ok_or(())?,
            );
            dec::rescale(x % y, common, s).ok_or(())?
        }
        _ => return Err(()),
    }))
}

/// Converts `a`, of SQL type `from`, to DECIMAL(p, s).
pub(crate) fn to_decimal(a: &ArrayRef, from: SqlType, (p, s): (u8, u8)) -> ExecResult<ArrayRef> {
    let fail = |v: String| overflow(format!("CAST({v} AS DECIMAL({p}, {s}))"), (p, s));
    let n = a.len();
    let mut values = Vec::with_capacity(n);
    let mut valid = Vec::with_capacity(n);
    let mut push = |v: Option<i128>| {
        values.push(v.unwrap_or(0));
        valid.push(v.is_some());
    };
    let scaled = |v: i128, from_s: u8| -> ExecResult<i128> {
        dec::rescale(v, from_s, s)
            .filter(|v| dec::fits(*v, p))
            .ok_or_else(|| fail(dec::format(v, from_s)))
    };
    match from {
        SqlType::Int | SqlType::BigInt => {
            let ints = to_i64(a)?;
            for v in ints.iter() {
                push(v.map(|v| scaled(i128::from(v), 0)).transpose()?);
            }
        }
        SqlType::Decimal(_, from_s) => {
            for v in decimals(a)?.iter() {
                push(v.map(|v| scaled(v, from_s)).transpose()?);
            }
        }
        SqlType::Double => {
            for v in prim::<Float64Type>(a)?.iter() {
                push(match v {
                    Some(x) if x.is_finite() => {
                        Some(dec::from_f64(x, p, s).ok_or_else(|| fail(format!("{x:?}")))?)
                    }
                    _ => None,
                });
            }
        }
        SqlType::Varchar => {
            for v in strings(a)?.iter() {
                push(match v.map(|t| dec::parse(t, p, s)) {
                    Some(Ok(v)) => Some(v),
                    Some(Err(dec::DecimalTextError::Overflow { text, .. })) => {
                        return Err(fail(format!("'{text}'")));
                    }
                    Some(Err(dec::DecimalTextError::NotANumber(_))) | None => None,
                });
            }
        }
        SqlType::Null => {
            return Ok(arrow::array::new_null_array(
                &DataType::Decimal128(p, s as i8),
                n,
            ));
        }
        other => return Err(internal(format!("no cast from {other} to DECIMAL"))),
    }
    decimal_array(values, Some(valid.into()), (p, s))
}

fn to_i64(a: &ArrayRef) -> ExecResult<Int64Array> {
    Ok(match a.data_type() {
        DataType::Int32 => prim::<Int32Type>(a)?.unary(i64::from),
        _ => prim::<Int64Type>(a)?.clone(),
    })
}

/// Converts a DECIMAL array to SQL type `to`.
pub(crate) fn from_decimal(a: &ArrayRef, to: SqlType) -> ExecResult<ArrayRef> {
    let d = decimals(a)?;
    let s = d.scale() as u8;
    Ok(match to {
        SqlType::Double => Arc::new(
            d.iter()
                .map(|v| v.map(|v| dec::to_f64(v, s)))
                .collect::<Float64Array>(),
        ),
        SqlType::BigInt => Arc::new(truncated::<Int64Type>(d, s)),
        SqlType::Int => Arc::new(truncated::<Int32Type>(d, s)),
        SqlType::Varchar => {
            let mut b = arrow::array::StringBuilder::with_capacity(d.len(), d.len() * 12);
            let mut buf = String::new();
            for v in d.iter() {
                match v {
                    Some(v) => {
                        buf.clear();
                        dec::write(v, s, &mut buf);
                        b.append_value(&buf);
                    }
                    None => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        other => return Err(internal(format!("no cast from DECIMAL to {other}"))),
    })
}

/// DECIMAL values truncated toward zero into an integer type; NULL where
/// they do not fit.
fn truncated<T>(d: &Decimal128Array, s: u8) -> PrimitiveArray<T>
where
    T: ArrowPrimitiveType,
    T::Native: TryFrom<i128>,
{
    let unit = dec::pow10(s);
    d.iter()
        .map(|v| v.and_then(|v| T::Native::try_from(v / unit).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;

    fn d(values: &[Option<i128>], p: u8, s: u8) -> ArrayRef {
        Arc::new(
            values
                .iter()
                .copied()
                .collect::<Decimal128Array>()
                .with_precision_and_scale(p, s as i8)
                .unwrap(),
        )
    }

    #[test]
    fn conversions_round_half_up_and_overflow_is_an_error() {
        let ints: ArrayRef = Arc::new(Int64Array::from(vec![Some(12), None, Some(-3)]));
        let out = to_decimal(&ints, SqlType::BigInt, (5, 2)).unwrap();
        assert_eq!(
            out.as_ref(),
            d(&[Some(1200), None, Some(-300)], 5, 2).as_ref()
        );
        let big: ArrayRef = Arc::new(Int64Array::from(vec![1000]));
        let e = to_decimal(&big, SqlType::BigInt, (5, 2)).unwrap_err();
        assert!(e.to_string().contains("CAST(1000 AS DECIMAL(5, 2))"), "{e}");
        let text: ArrayRef = Arc::new(arrow::array::StringArray::from(vec![
            Some(" 1.005 "),
            Some("abc"),
            None,
            Some("-2.5e-1"),
        ]));
        let out = to_decimal(&text, SqlType::Varchar, (5, 2)).unwrap();
        assert_eq!(
            out.as_ref(),
            d(&[Some(101), None, None, Some(-25)], 5, 2).as_ref()
        );
        let dbl: ArrayRef = Arc::new(Float64Array::from(vec![2.675, f64::NAN, 0.1]));
        let out = to_decimal(&dbl, SqlType::Double, (5, 2)).unwrap();
        assert_eq!(out.as_ref(), d(&[Some(268), None, Some(10)], 5, 2).as_ref());
        let narrow = to_decimal(&d(&[Some(12_345)], 6, 3), SqlType::Decimal(6, 3), (4, 2)).unwrap();
        assert_eq!(narrow.as_ref(), d(&[Some(1235)], 4, 2).as_ref());
    }

    #[test]
    fn from_decimal_truncates_to_integers() {
        let a = d(&[Some(-1999), Some(1999), None], 10, 3);
        let i = from_decimal(&a, SqlType::BigInt).unwrap();
        assert_eq!(
            i.as_ref(),
            &Int64Array::from(vec![Some(-1), Some(1), None]) as &dyn Array
        );
        let t = from_decimal(&a, SqlType::Varchar).unwrap();
        assert_eq!(
            t.as_ref(),
            &arrow::array::StringArray::from(vec![Some("-1.999"), Some("1.999"), None])
                as &dyn Array
        );
        let f = from_decimal(&a, SqlType::Double).unwrap();
        assert_eq!(f.as_primitive::<Float64Type>().value(0), -1.999);
        let huge = d(&[Some(dec::pow10(30))], 38, 0);
        assert!(from_decimal(&huge, SqlType::Int).unwrap().is_null(0));
    }
}
