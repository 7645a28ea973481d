//! Comparisons (`= <> < <= > >=`) and `BETWEEN`.
//!
//! Operands share one type (a CAST to the common type is added otherwise).
//! NULL on either side gives NULL. VARCHAR compares byte-wise (UTF-8 code
//! point order), BOOLEAN as `false < true`, TIMESTAMP by instant.
//!
//! DOUBLE compares as PostgreSQL does, not by Arrow's IEEE total order:
//! `-0.0 = 0.0`, and NaN equals NaN and is greater than every other value
//! (including +Infinity), whatever the sign bit of the NaN. This needs a
//! dedicated kernel; every other type uses Arrow's `cmp` kernels with
//! constants passed as scalars.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, Float64Array, new_null_array};
use arrow::buffer::{BooleanBuffer, NullBuffer};
use arrow::compute::and_kleene;
use arrow::compute::kernels::cmp;
use arrow::datatypes::{DataType, Float64Type};
use arrow::record_batch::RecordBatch;

use super::Node;
use super::compile::{ill_typed, sub};
use super::logic::not;
use super::value::{Value, arrow_err, booleans, internal, map_values, prim};
use crate::error::ExecResult;
use crate::plan::expr::{BinaryOp, Expr};
use crate::types::SqlType;

/// `left op right` for a comparison operator.
#[derive(Debug)]
pub(crate) struct Compare {
    op: BinaryOp,
    left: Node,
    right: Node,
}

/// The type two or more operands are compared in.
fn common_type(expr: &Expr, types: &[SqlType]) -> ExecResult<SqlType> {
    let mut t = SqlType::Null;
    for &u in types {
        t = SqlType::common(t, u)
            .ok_or_else(|| internal(ill_typed(expr, format!("cannot compare {t} with {u}"))))?;
    }
    if t == SqlType::Interval {
        return Ok(SqlType::BigInt);
    }
    Ok(t)
}

impl Compare {
    /// Compiles `left op right`, converting both sides to their common type.
    pub(crate) fn compile(
        expr: &Expr,
        op: BinaryOp,
        left: &Expr,
        right: &Expr,
    ) -> ExecResult<Node> {
        let t = common_type(expr, &[left.sql_type(), right.sql_type()])?;
        Ok(Node::Compare(Box::new(Compare {
            op,
            left: operand(left, t)?,
            right: operand(right, t)?,
        })))
    }

    /// Evaluates over `batch`.
    pub(crate) fn eval(&self, batch: &RecordBatch) -> ExecResult<Value> {
        let l = self.left.eval(batch)?;
        let r = self.right.eval(batch)?;
        compare(self.op, &l, &r, batch.num_rows())
    }
}

/// Compiles an operand compared in type `t` (INTERVAL is compared as BIGINT,
/// both being Int64).
fn operand(e: &Expr, t: SqlType) -> ExecResult<Node> {
    if e.sql_type() == SqlType::Interval && t == SqlType::BigInt {
        super::compile::compile_node(e)
    } else {
        sub(e, t)
    }
}

/// `l op r` on two values of the same type.
pub(crate) fn compare(op: BinaryOp, l: &Value, r: &Value, rows: usize) -> ExecResult<Value> {
    let all_scalar = l.is_scalar() && r.is_scalar();
    if l.data_type() == &DataType::Null || r.data_type() == &DataType::Null {
        return Ok(if all_scalar {
            Value::null(&DataType::Boolean)
        } else {
            Value::Array(new_null_array(&DataType::Boolean, rows))
        });
    }
    if l.data_type() == &DataType::Float64 {
        return compare_f64(op, l, r, rows);
    }
    let (ld, rd) = (l.datum(), r.datum());
    let out = match op {
        BinaryOp::Eq => cmp::eq(ld, rd),
        BinaryOp::NotEq => cmp::neq(ld, rd),
        BinaryOp::Lt => cmp::lt(ld, rd),
        BinaryOp::LtEq => cmp::lt_eq(ld, rd),
        BinaryOp::Gt => cmp::gt(ld, rd),
        BinaryOp::GtEq => cmp::gt_eq(ld, rd),
        op => return Err(internal(format!("{} is not a comparison", op.symbol()))),
    }
    .map_err(arrow_err("comparison"))?;
    Value::from_kernel(Arc::new(out), all_scalar)
}

#[inline]
fn f_eq(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

#[inline]
fn f_ne(a: f64, b: f64) -> bool {
    !f_eq(a, b)
}

#[inline]
fn f_lt(a: f64, b: f64) -> bool {
    if b.is_nan() { !a.is_nan() } else { a < b }
}

#[inline]
fn f_le(a: f64, b: f64) -> bool {
    if b.is_nan() { true } else { a <= b }
}

#[inline]
fn f_gt(a: f64, b: f64) -> bool {
    f_lt(b, a)
}

#[inline]
fn f_ge(a: f64, b: f64) -> bool {
    f_le(b, a)
}

/// The operator with its operands swapped (`a < b` ⇔ `b > a`).
fn flip(op: BinaryOp) -> BinaryOp {
    match op {
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::LtEq => BinaryOp::GtEq,
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::GtEq => BinaryOp::LtEq,
        op => op,
    }
}

fn compare_f64(op: BinaryOp, l: &Value, r: &Value, rows: usize) -> ExecResult<Value> {
    let all_scalar = l.is_scalar() && r.is_scalar();
    // Put a constant operand on the right.
    let (op, l, r) = if l.is_scalar() && !all_scalar {
        (flip(op), r, l)
    } else {
        (op, l, r)
    };
    let la = prim::<Float64Type>(l.array())?;
    let ra = prim::<Float64Type>(r.array())?;
    if r.is_null_scalar() && !all_scalar {
        return Ok(Value::Array(new_null_array(&DataType::Boolean, rows)));
    }
    let scalar_rhs = r.is_scalar() && !all_scalar;
    let out = match op {
        BinaryOp::Eq => f64_kernel(la, ra, scalar_rhs, f_eq),
        BinaryOp::NotEq => f64_kernel(la, ra, scalar_rhs, f_ne),
        BinaryOp::Lt => f64_kernel(la, ra, scalar_rhs, f_lt),
        BinaryOp::LtEq => f64_kernel(la, ra, scalar_rhs, f_le),
        BinaryOp::Gt => f64_kernel(la, ra, scalar_rhs, f_gt),
        BinaryOp::GtEq => f64_kernel(la, ra, scalar_rhs, f_ge),
        op => return Err(internal(format!("{} is not a comparison", op.symbol()))),
    }?;
    Value::from_kernel(Arc::new(out), all_scalar)
}

/// Applies `f` row by row (monomorphised per operator, so it inlines).
fn f64_kernel(
    l: &Float64Array,
    r: &Float64Array,
    scalar_rhs: bool,
    f: impl Fn(f64, f64) -> bool,
) -> ExecResult<BooleanArray> {
    let lv = l.values();
    if scalar_rhs {
        let c = r.value(0);
        let bits = BooleanBuffer::collect_bool(lv.len(), |i| f(lv[i], c));
        return Ok(BooleanArray::new(bits, l.nulls().cloned()));
    }
    let rv = r.values();
    if lv.len() != rv.len() {
        return Err(internal(format!(
            "cannot compare {} rows with {}",
            lv.len(),
            rv.len()
        )));
    }
    let bits = BooleanBuffer::collect_bool(lv.len(), |i| f(lv[i], rv[i]));
    Ok(BooleanArray::new(
        bits,
        NullBuffer::union(l.nulls(), r.nulls()),
    ))
}

/// `expr [NOT] BETWEEN low AND high` = `low <= expr AND expr <= high`,
/// evaluating `expr` once.
#[derive(Debug)]
pub(crate) struct Between {
    expr: Node,
    low: Node,
    high: Node,
    negated: bool,
}

impl Between {
    /// Compiles a BETWEEN, converting the three operands to their common type.
    pub(crate) fn compile(
        whole: &Expr,
        expr: &Expr,
        low: &Expr,
        high: &Expr,
        negated: bool,
    ) -> ExecResult<Node> {
        let t = common_type(whole, &[expr.sql_type(), low.sql_type(), high.sql_type()])?;
        Ok(Node::Between(Box::new(Between {
            expr: operand(expr, t)?,
            low: operand(low, t)?,
            high: operand(high, t)?,
            negated,
        })))
    }

    /// Evaluates over `batch`.
    pub(crate) fn eval(&self, batch: &RecordBatch) -> ExecResult<Value> {
        let rows = batch.num_rows();
        let e = self.expr.eval(batch)?;
        let above = compare(BinaryOp::LtEq, &self.low.eval(batch)?, &e, rows)?;
        let below = compare(BinaryOp::LtEq, &e, &self.high.eval(batch)?, rows)?;
        let both = map_values(vec![above, below], rows, |a: &[ArrayRef]| {
            let out =
                and_kleene(booleans(&a[0])?, booleans(&a[1])?).map_err(arrow_err("BETWEEN"))?;
            Ok(Arc::new(out) as ArrayRef)
        })?;
        if self.negated { not(both) } else { Ok(both) }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use crate::plan::expr::Literal;
    use BinaryOp::*;
    use SqlType::*;

    fn cmp_all(l: Expr, r: Expr, b: &RecordBatch) -> Vec<ArrayRef> {
        [Eq, NotEq, Lt, LtEq, Gt, GtEq]
            .into_iter()
            .map(|op| eval(&bin(op, l.clone(), r.clone()), b))
            .collect()
    }

    #[test]
    fn integer_comparisons_with_nulls() {
        let b = batch(vec![("a", int32(&[Some(1), Some(5), None]))]);
        let got = cmp_all(col(0, Int), int(5), &b);
        let want = [
            [Some(false), Some(true), None],
            [Some(true), Some(false), None],
            [Some(true), Some(false), None],
            [Some(true), Some(true), None],
            [Some(false), Some(false), None],
            [Some(false), Some(true), None],
        ];
        for (g, w) in got.iter().zip(want) {
            same(g, bools(&w));
        }
        // constant on the left
        same(
            &eval(&bin(Lt, int(3), col(0, Int)), &b),
            bools(&[Some(false), Some(true), None]),
        );
        // NULL constant
        assert_eq!(eval(&bin(Eq, col(0, Int), null(Int)), &b).null_count(), 3);
        assert_eq!(
            eval(&bin(Eq, col(0, Int), null(SqlType::Null)), &b).null_count(),
            3
        );
    }

    #[test]
    fn strings_compare_bytewise() {
        let b = batch(vec![
            ("a", strs(&[Some("Google"), Some("apple"), Some("é"), None])),
            (
                "b",
                strs(&[Some("Google"), Some("Zebra"), Some("z"), Some("x")]),
            ),
        ]);
        same(
            &eval(&bin(Eq, col(0, Varchar), col(1, Varchar)), &b),
            bools(&[Some(true), Some(false), Some(false), None]),
        );
        same(
            &eval(&bin(Gt, col(0, Varchar), col(1, Varchar)), &b),
            bools(&[Some(false), Some(true), Some(true), None]),
        );
        same(
            &eval(&bin(Eq, col(0, Varchar), text("Google")), &b),
            bools(&[Some(true), Some(false), Some(false), None]),
        );
    }

    #[test]
    fn booleans_and_timestamps_compare() {
        let b = batch(vec![
            ("p", bools(&[Some(true), Some(false), None])),
            ("t", tss(&[Some(-1), Some(1000), Some(0)])),
        ]);
        same(
            &eval(&bin(Gt, col(0, Boolean), lit(Literal::Boolean(false))), &b),
            bools(&[Some(true), Some(false), None]),
        );
        same(
            &eval(
                &bin(GtEq, col(1, Timestamp), lit(Literal::Timestamp(0))),
                &b,
            ),
            bools(&[Some(false), Some(true), Some(true)]),
        );
    }

    #[test]
    fn doubles_compare_like_postgres() {
        let nan = f64::NAN;
        let neg_nan = -f64::NAN;
        let b = batch(vec![
            (
                "a",
                f64s(&[
                    Some(-0.0),
                    Some(nan),
                    Some(neg_nan),
                    Some(f64::INFINITY),
                    Some(1.0),
                    None,
                ]),
            ),
            (
                "b",
                f64s(&[
                    Some(0.0),
                    Some(neg_nan),
                    Some(5.0),
                    Some(nan),
                    Some(2.0),
                    Some(1.0),
                ]),
            ),
        ]);
        let got = cmp_all(col(0, Double), col(1, Double), &b);
        let want = [
            [
                Some(true),
                Some(true),
                Some(false),
                Some(false),
                Some(false),
                None,
            ],
            [
                Some(false),
                Some(false),
                Some(true),
                Some(true),
                Some(true),
                None,
            ],
            [
                Some(false),
                Some(false),
                Some(false),
                Some(true),
                Some(true),
                None,
            ],
            [
                Some(true),
                Some(true),
                Some(false),
                Some(true),
                Some(true),
                None,
            ],
            [
                Some(false),
                Some(false),
                Some(true),
                Some(false),
                Some(false),
                None,
            ],
            [
                Some(true),
                Some(true),
                Some(true),
                Some(false),
                Some(false),
                None,
            ],
        ];
        for (g, w) in got.iter().zip(want) {
            same(g, bools(&w));
        }
        // against constants, on either side
        same(
            &eval(&bin(Lt, col(0, Double), dbl(0.0)), &b),
            bools(&[
                Some(false),
                Some(false),
                Some(false),
                Some(false),
                Some(false),
                None,
            ]),
        );
        same(
            &eval(&bin(Gt, dbl(0.0), col(0, Double)), &b),
            bools(&[
                Some(false),
                Some(false),
                Some(false),
                Some(false),
                Some(false),
                None,
            ]),
        );
        same(
            &eval(&bin(GtEq, col(0, Double), dbl(nan)), &b),
            bools(&[
                Some(false),
                Some(true),
                Some(true),
                Some(false),
                Some(false),
                None,
            ]),
        );
        assert_eq!(
            eval(&bin(Eq, col(0, Double), null(Double)), &b).null_count(),
            6
        );
        same(
            &eval(&bin(Eq, dbl(-0.0), dbl(0.0)), &b),
            bools(&[Some(true); 6]),
        );
    }

    #[test]
    fn mixed_types_compare_in_the_common_type() {
        let b = batch(vec![("a", int32(&[Some(1), Some(3)]))]);
        same(
            &eval(&bin(Lt, col(0, Int), dbl(1.5)), &b),
            bools(&[Some(true), Some(false)]),
        );
        same(
            &eval(&bin(Eq, col(0, Int), big(3)), &b),
            bools(&[Some(false), Some(true)]),
        );
        let bad = bin(Eq, col(0, Int), text("x"));
        assert!(super::super::compile(&bad).is_err());
    }

    #[test]
    fn between_is_inclusive_and_three_valued() {
        let b = batch(vec![
            (
                "a",
                int64(&[Some(1), Some(5), Some(10), Some(11), None, Some(7)]),
            ),
            (
                "h",
                int64(&[Some(10), Some(10), Some(10), Some(10), Some(10), None]),
            ),
        ]);
        let between = |negated| Expr::Between {
            expr: Box::new(col(0, BigInt)),
            low: Box::new(big(5)),
            high: Box::new(col(1, BigInt)),
            negated,
        };
        same(
            &eval(&between(false), &b),
            bools(&[Some(false), Some(true), Some(true), Some(false), None, None]),
        );
        same(
            &eval(&between(true), &b),
            bools(&[Some(true), Some(false), Some(false), Some(true), None, None]),
        );
        // 1 BETWEEN 5 AND NULL is false (low bound already fails)
        let b2 = batch(vec![("a", int64(&[Some(1)])), ("h", int64(&[None]))]);
        same(&eval(&between(false), &b2), bools(&[Some(false)]));
    }
}
