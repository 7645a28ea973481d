//! Builders shared by the expression unit tests.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};

use super::compile;
use crate::plan::expr::{BinaryOp, Expr, Literal, ScalarFunc};
use crate::types::SqlType;

/// A batch with the given named columns.
pub(crate) fn batch(cols: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(cols).unwrap()
}

/// Compiles and evaluates `e`, checking the result's length and Arrow type.
pub(crate) fn eval(e: &Expr, b: &RecordBatch) -> ArrayRef {
    let out = compile(e).unwrap().evaluate(b).unwrap();
    assert_eq!(out.len(), b.num_rows(), "{e}");
    assert_eq!(out.data_type(), &e.sql_type().to_arrow(), "{e}");
    out
}

/// Evaluates `e` over a batch whose only column (`c0`) is `column`.
pub(crate) fn eval1(e: &Expr, column: ArrayRef) -> ArrayRef {
    eval(e, &batch(vec![("c0", column)]))
}

/// Asserts that two arrays are equal, printing both otherwise.
pub(crate) fn same(got: &ArrayRef, want: ArrayRef) {
    assert_eq!(
        got.as_ref(),
        want.as_ref() as &dyn Array,
        "\ngot:  {got:?}\nwant: {want:?}"
    );
}

/// Column `i` named `c{i}`.
pub(crate) fn col(i: usize, ty: SqlType) -> Expr {
    Expr::column(i, format!("c{i}"), ty)
}

/// A literal.
pub(crate) fn lit(l: Literal) -> Expr {
    Expr::Literal(l)
}

/// An INT literal.
pub(crate) fn int(v: i32) -> Expr {
    lit(Literal::Int(v))
}

/// A BIGINT literal.
pub(crate) fn big(v: i64) -> Expr {
    lit(Literal::BigInt(v))
}

/// A DOUBLE literal.
pub(crate) fn dbl(v: f64) -> Expr {
    lit(Literal::Double(v))
}

/// A VARCHAR literal.
pub(crate) fn text(s: &str) -> Expr {
    lit(Literal::Varchar(s.into()))
}

/// A NULL literal of type `t`.
pub(crate) fn null(t: SqlType) -> Expr {
    lit(Literal::Null(t))
}

/// `l op r`, with the result type the planner would give.
pub(crate) fn bin(op: BinaryOp, l: Expr, r: Expr) -> Expr {
    use SqlType::*;
    let ty = if op.is_comparison() || matches!(op, BinaryOp::And | BinaryOp::Or) {
        Boolean
    } else if op == BinaryOp::Concat {
        Varchar
    } else {
        match (l.sql_type(), r.sql_type()) {
            (Timestamp, Timestamp) => Interval,
            (Timestamp, _) | (_, Timestamp) => Timestamp,
            (a, b) => SqlType::common(a, b).unwrap_or(a),
        }
    };
    Expr::Binary {
        op,
        left: Box::new(l),
        right: Box::new(r),
        ty,
    }
}

/// A function call.
pub(crate) fn call(func: ScalarFunc, args: Vec<Expr>, ty: SqlType) -> Expr {
    Expr::Function { func, args, ty }
}

/// An INT column.
pub(crate) fn int32(v: &[Option<i32>]) -> ArrayRef {
    Arc::new(Int32Array::from(v.to_vec()))
}

/// A BIGINT column.
pub(crate) fn int64(v: &[Option<i64>]) -> ArrayRef {
    Arc::new(Int64Array::from(v.to_vec()))
}

/// A DOUBLE column.
pub(crate) fn f64s(v: &[Option<f64>]) -> ArrayRef {
    Arc::new(Float64Array::from(v.to_vec()))
}

/// A VARCHAR column.
pub(crate) fn strs(v: &[Option<&str>]) -> ArrayRef {
    Arc::new(StringArray::from(v.to_vec()))
}

/// A BOOLEAN column.
pub(crate) fn bools(v: &[Option<bool>]) -> ArrayRef {
    Arc::new(BooleanArray::from(v.to_vec()))
}

/// A TIMESTAMP column.
pub(crate) fn tss(v: &[Option<i64>]) -> ArrayRef {
    Arc::new(TimestampMillisecondArray::from(v.to_vec()))
}
