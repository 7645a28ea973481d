//! Arithmetic: `+ - * / %` and unary minus.
//!
//! * INT and BIGINT wrap on overflow (two's complement, as Java / Flink do),
//!   including `-MIN` and `MIN / -1` (= MIN); DOUBLE follows IEEE 754.
//! * Division and modulo by zero yield NULL, for integers and doubles alike
//!   (`-0.0` counts as zero).
//! * Integer division truncates toward zero and the remainder takes the sign
//!   of the dividend (`-7 / 2 = -3`, `-7 % 2 = -1`), as PostgreSQL.
//! * TIMESTAMP ± INTERVAL (and INTERVAL + TIMESTAMP) shift by milliseconds;
//!   TIMESTAMP - TIMESTAMP is the difference in milliseconds (INTERVAL).
//!   Timestamps are reinterpreted as their epoch milliseconds, zero-copy.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Datum, PrimitiveArray, new_null_array};
use arrow::buffer::{BooleanBuffer, NullBuffer};
use arrow::compute::binary;
use arrow::compute::kernels::numeric;
use arrow::datatypes::{ArrowPrimitiveType, DataType, Float64Type, Int32Type, Int64Type};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::Node;
use super::compile::{compile_node, ill_typed, sub};
use super::value::{Value, arrow_err, internal, map_value, prim, retype, timestamps_as_i64};
use crate::error::ExecResult;
use crate::plan::expr::{BinaryOp, Expr};
use crate::types::SqlType;

/// `left op right` for an arithmetic operator.
#[derive(Debug)]
pub(crate) struct Arith {
    op: BinaryOp,
    left: Node,
    right: Node,
    /// Arrow type of the result (TIMESTAMP results are computed as Int64).
    out: DataType,
}

/// The type arithmetic is computed in: TIMESTAMP and INTERVAL as BIGINT.
fn domain(t: SqlType) -> SqlType {
    match t {
        SqlType::Timestamp | SqlType::Interval => SqlType::BigInt,
        t => t,
    }
}

impl Arith {
    /// Compiles `left op right` of result type `ty`, converting operands to
    /// the type the arithmetic runs in.
    pub(crate) fn compile(
        expr: &Expr,
        op: BinaryOp,
        left: &Expr,
        right: &Expr,
        ty: SqlType,
    ) -> ExecResult<Node> {
        if ty == SqlType::Null {
            return Ok(Node::Const(Value::null(&ty.to_arrow())));
        }
        if let SqlType::Decimal(p, s) = ty {
            let operand = |e: &Expr| -> ExecResult<Node> {
                let t = e.sql_type();
                let (ep, es) = t
                    .decimal_parts()
                    .or((t == SqlType::Null).then_some((p, s)))
                    .ok_or_else(|| internal(ill_typed(expr, format!("{t} operand"))))?;
                sub(e, SqlType::Decimal(ep, es))
            };
            return Ok(Node::Decimal(Box::new(super::decimal::DecimalArith {
                op,
                left: operand(left)?,
                right: operand(right)?,
                out: (p, s),
            })));
        }
        let target = domain(ty);
        let operand = |e: &Expr| -> ExecResult<Node> {
            let t = e.sql_type();
            if domain(t) == target {
                compile_node(e)
            } else if t.is_numeric() || t == SqlType::Null {
                sub(e, target)
            } else {
                Err(internal(ill_typed(expr, format!("{t} operand"))))
            }
        };
        if !target.is_numeric() {
            return Err(internal(ill_typed(expr, format!("{ty} result"))));
        }
        Ok(Node::Arith(Box::new(Arith {
            op,
            left: operand(left)?,
            right: operand(right)?,
            out: ty.to_arrow(),
        })))
    }

    /// Evaluates over `batch`.
    pub(crate) fn eval(&self, batch: &RecordBatch) -> ExecResult<Value> {
        let rows = batch.num_rows();
        let l = map_value(self.left.eval(batch)?, |a| timestamps_as_i64(a.clone()))?;
        let r = map_value(self.right.eval(batch)?, |a| timestamps_as_i64(a.clone()))?;
        let v = match self.op {
            BinaryOp::Plus => kernel(numeric::add_wrapping, &l, &r)?,
            BinaryOp::Minus => kernel(numeric::sub_wrapping, &l, &r)?,
            BinaryOp::Multiply => kernel(numeric::mul_wrapping, &l, &r)?,
            BinaryOp::Divide => div_rem(&l, &r, rows, false)?,
            BinaryOp::Modulo => div_rem(&l, &r, rows, true)?,
            op => return Err(internal(format!("{} is not arithmetic", op.symbol()))),
        };
        map_value(v, |a| retype(a.clone(), &self.out))
    }
}

type Kernel = fn(&dyn Datum, &dyn Datum) -> Result<ArrayRef, ArrowError>;

fn kernel(f: Kernel, l: &Value, r: &Value) -> ExecResult<Value> {
    let out = f(l.datum(), r.datum()).map_err(arrow_err("arithmetic"))?;
    Value::from_kernel(out, l.is_scalar() && r.is_scalar())
}

fn div_rem(l: &Value, r: &Value, rows: usize, rem: bool) -> ExecResult<Value> {
    match (l.data_type(), rem) {
        (DataType::Int32, false) => divide::<Int32Type>(l, r, rows, i32::wrapping_div, |y| y == 0),
        (DataType::Int32, true) => divide::<Int32Type>(l, r, rows, i32::wrapping_rem, |y| y == 0),
        (DataType::Int64, false) => divide::<Int64Type>(l, r, rows, i64::wrapping_div, |y| y == 0),
        (DataType::Int64, true) => divide::<Int64Type>(l, r, rows, i64::wrapping_rem, |y| y == 0),
        (DataType::Float64, false) => divide::<Float64Type>(l, r, rows, |x, y| x / y, |y| y == 0.0),
        (DataType::Float64, true) => divide::<Float64Type>(l, r, rows, |x, y| x % y, |y| y == 0.0),
        (other, _) => Err(internal(format!("cannot divide {other} values"))),
    }
}

/// `f(l, r)` where `r` is not zero, NULL where it is.
fn divide<T: ArrowPrimitiveType>(
    l: &Value,
    r: &Value,
    rows: usize,
    f: impl Fn(T::Native, T::Native) -> T::Native,
    is_zero: impl Fn(T::Native) -> bool,
) -> ExecResult<Value> {
    let all_scalar = l.is_scalar() && r.is_scalar();
    if r.is_scalar() && !all_scalar {
        // `x / constant`: one unary pass, no zero mask.
        let d = prim::<T>(r.array())?;
        if d.is_null(0) || is_zero(d.value(0)) {
            return Ok(Value::Array(new_null_array(&T::DATA_TYPE, rows)));
        }
        let d = d.value(0);
        let out = prim::<T>(l.array())?.unary::<_, T>(|x| f(x, d));
        return Ok(Value::Array(Arc::new(out)));
    }
    let (a, b) = if all_scalar {
        (l.array_ref(), r.array_ref())
    } else {
        (l.clone().into_array(rows)?, r.clone().into_array(rows)?)
    };
    let (a, b) = (prim::<T>(&a)?, prim::<T>(&b)?);
    let q = binary::<_, _, _, T>(a, b, |x, y| {
        if is_zero(y) {
            T::Native::default()
        } else {
            f(x, y)
        }
    })
    .map_err(arrow_err("division"))?;
    let out = if b.values().iter().any(|y| is_zero(*y)) {
        let nonzero = NullBuffer::new(BooleanBuffer::collect_bool(b.len(), |i| {
            !is_zero(b.value(i))
        }));
        let nulls = NullBuffer::union(q.nulls(), Some(&nonzero));
        PrimitiveArray::<T>::try_new(q.values().clone(), nulls).map_err(arrow_err("division"))?
    } else {
        q
    };
    Value::from_kernel(Arc::new(out), all_scalar)
}

/// Compiles `-e`.
pub(crate) fn compile_negate(expr: &Expr, e: &Expr) -> ExecResult<Node> {
    match e.sql_type() {
        SqlType::Int
        | SqlType::BigInt
        | SqlType::Double
        | SqlType::Decimal(..)
        | SqlType::Interval => Ok(Node::Negate(Box::new(compile_node(e)?))),
        SqlType::Null => Ok(Node::Const(Value::null(&DataType::Null))),
        other => Err(internal(ill_typed(expr, format!("cannot negate {other}")))),
    }
}

/// `-v`, wrapping for integers.
pub(crate) fn negate(v: Value) -> ExecResult<Value> {
    map_value(v, |a| {
        numeric::neg_wrapping(a).map_err(arrow_err("negation"))
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use crate::plan::expr::Literal;
    use BinaryOp::*;
    use SqlType::*;

    #[test]
    fn integer_arithmetic_wraps() {
        let c = int32(&[Some(i32::MAX), Some(i32::MIN), None]);
        same(
            &eval1(&bin(Plus, col(0, Int), int(1)), c.clone()),
            int32(&[Some(i32::MIN), Some(i32::MIN + 1), None]),
        );
        same(
            &eval1(&bin(Minus, col(0, Int), int(1)), c.clone()),
            int32(&[Some(i32::MAX - 1), Some(i32::MAX), None]),
        );
        same(
            &eval1(&bin(Multiply, col(0, Int), int(2)), c.clone()),
            int32(&[Some(-2), Some(0), None]),
        );
        same(
            &eval1(&Expr::Negate(Box::new(col(0, Int))), c),
            int32(&[Some(-i32::MAX), Some(i32::MIN), None]),
        );
        let b = int64(&[Some(i64::MAX)]);
        same(
            &eval1(&bin(Plus, col(0, BigInt), big(1)), b),
            int64(&[Some(i64::MIN)]),
        );
    }

    #[test]
    fn integer_division_truncates_and_zero_gives_null() {
        let b = batch(vec![
            (
                "a",
                int64(&[Some(-7), Some(7), Some(i64::MIN), Some(5), None, Some(9)]),
            ),
            (
                "b",
                int64(&[Some(2), Some(-2), Some(-1), Some(0), Some(1), None]),
            ),
        ]);
        same(
            &eval(&bin(Divide, col(0, BigInt), col(1, BigInt)), &b),
            int64(&[Some(-3), Some(-3), Some(i64::MIN), None, None, None]),
        );
        same(
            &eval(&bin(Modulo, col(0, BigInt), col(1, BigInt)), &b),
            int64(&[Some(-1), Some(1), Some(0), None, None, None]),
        );
        // constant divisors, zero and NULL
        same(
            &eval(&bin(Divide, col(0, BigInt), big(2)), &b),
            int64(&[
                Some(-3),
                Some(3),
                Some(i64::MIN / 2),
                Some(2),
                None,
                Some(4),
            ]),
        );
        let all_null = eval(&bin(Divide, col(0, BigInt), big(0)), &b);
        assert_eq!(all_null.null_count(), 6);
        let all_null = eval(&bin(Modulo, col(0, BigInt), null(BigInt)), &b);
        assert_eq!(all_null.null_count(), 6);
        // constant dividend
        same(
            &eval(&bin(Divide, big(10), col(1, BigInt)), &b),
            int64(&[Some(5), Some(-5), Some(-10), None, Some(10), None]),
        );
        // folded constant
        let folded = eval(&bin(Divide, int(1), int(0)), &b);
        assert_eq!(folded.data_type(), &DataType::Int32);
        assert_eq!(folded.null_count(), 6);
    }

    #[test]
    fn int32_division_wraps_min_by_minus_one() {
        let b = batch(vec![
            ("a", int32(&[Some(i32::MIN), Some(-9)])),
            ("b", int32(&[Some(-1), Some(4)])),
        ]);
        same(
            &eval(&bin(Divide, col(0, Int), col(1, Int)), &b),
            int32(&[Some(i32::MIN), Some(-2)]),
        );
        same(
            &eval(&bin(Modulo, col(0, Int), col(1, Int)), &b),
            int32(&[Some(0), Some(-1)]),
        );
    }

    #[test]
    fn double_arithmetic_is_ieee_but_division_by_zero_is_null() {
        let b = batch(vec![
            (
                "a",
                f64s(&[Some(1.0), Some(1e308), Some(-7.5), Some(1.0), None]),
            ),
            (
                "b",
                f64s(&[Some(4.0), Some(0.1), Some(2.0), Some(-0.0), Some(1.0)]),
            ),
        ]);
        same(
            &eval(&bin(Divide, col(0, Double), col(1, Double)), &b),
            f64s(&[Some(0.25), Some(f64::INFINITY), Some(-3.75), None, None]),
        );
        same(
            &eval(&bin(Modulo, col(0, Double), col(1, Double)), &b),
            f64s(&[Some(1.0), Some(1e308 % 0.1), Some(-1.5), None, None]),
        );
        same(
            &eval(&bin(Multiply, col(0, Double), dbl(10.0)), &b),
            f64s(&[
                Some(10.0),
                Some(f64::INFINITY),
                Some(-75.0),
                Some(10.0),
                None,
            ]),
        );
        assert_eq!(
            eval(&bin(Divide, col(0, Double), dbl(0.0)), &b).null_count(),
            5
        );
    }

    #[test]
    fn mixed_integer_widths_are_widened() {
        let b = batch(vec![
            ("a", int32(&[Some(i32::MAX)])),
            ("b", int64(&[Some(1)])),
        ]);
        same(
            &eval(&bin(Plus, col(0, Int), col(1, BigInt)), &b),
            int64(&[Some(i32::MAX as i64 + 1)]),
        );
        let to_double = Expr::Binary {
            op: Divide,
            left: Box::new(col(0, Int)),
            right: Box::new(int(2)),
            ty: Double,
        };
        same(&eval(&to_double, &b), f64s(&[Some(i32::MAX as f64 / 2.0)]));
    }

    #[test]
    fn timestamp_interval_arithmetic() {
        let b = batch(vec![
            ("t", tss(&[Some(1_000), Some(-500), None])),
            ("u", tss(&[Some(400), Some(500), Some(0)])),
        ]);
        let iv = || lit(Literal::Interval(10_000));
        same(
            &eval(&bin(Plus, col(0, Timestamp), iv()), &b),
            tss(&[Some(11_000), Some(9_500), None]),
        );
        same(
            &eval(&bin(Plus, iv(), col(0, Timestamp)), &b),
            tss(&[Some(11_000), Some(9_500), None]),
        );
        same(
            &eval(&bin(Minus, col(0, Timestamp), iv()), &b),
            tss(&[Some(-9_000), Some(-10_500), None]),
        );
        let diff = eval(&bin(Minus, col(0, Timestamp), col(1, Timestamp)), &b);
        same(&diff, int64(&[Some(600), Some(-1000), None]));
        same(
            &eval(&bin(Plus, lit(Literal::Timestamp(5)), iv()), &b),
            tss(&[Some(10_005); 3]),
        );
    }

    #[test]
    fn null_operands_give_null() {
        let b = batch(vec![("a", int32(&[Some(1), Some(2)]))]);
        let out = eval(&bin(Plus, col(0, Int), null(Int)), &b);
        assert_eq!(out.null_count(), 2);
        let out = eval(&bin(Plus, col(0, Int), null(SqlType::Null)), &b);
        assert_eq!(out.null_count(), 2);
        let out = eval(&Expr::Negate(Box::new(null(SqlType::Null))), &b);
        assert_eq!(out.data_type(), &DataType::Null);
    }

    #[test]
    fn non_numeric_operands_are_rejected() {
        let e = Expr::Binary {
            op: Plus,
            left: Box::new(text("a")),
            right: Box::new(int(1)),
            ty: Int,
        };
        assert!(super::super::compile(&e).is_err());
        let neg = Expr::Negate(Box::new(text("a")));
        assert!(super::super::compile(&neg).is_err());
    }
}
