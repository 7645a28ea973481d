//! Translation of typed `Expr` trees into evaluation [`Node`]s: operand
//! coercion, type checks and constant folding.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, RecordBatchOptions,
    StringArray, TimestampMillisecondArray, new_null_array,
};
use arrow::datatypes::Schema;

use super::value::{Value, internal};
use super::{Node, arithmetic, case, cast, compare, like, logic, strings};
use crate::error::ExecResult;
use crate::plan::expr::{BinaryOp, Expr, Literal, ScalarFunc};
use crate::types::SqlType;

/// Compiles `expr`, folding it to a constant when it reads no column.
pub(crate) fn compile_node(expr: &Expr) -> ExecResult<Node> {
    if expr.sql_type() == SqlType::Null {
        // A NULL-typed result can only hold NULLs (`COALESCE(NULL, NULL)`,
        // `CASE … THEN NULL END`, `ABS(NULL)`).
        return Ok(Node::Const(Value::null(&SqlType::Null.to_arrow())));
    }
    let node = build(expr)?;
    if matches!(node, Node::Const(_)) || reads_columns(expr) || super::clock::reads_clock(expr) {
        return Ok(node);
    }
    Ok(fold(&node).map(Node::Const).unwrap_or(node))
}

/// Compiles `expr` converted to type `to` (a CAST is added when needed).
pub(crate) fn sub(expr: &Expr, to: SqlType) -> ExecResult<Node> {
    if expr.sql_type() == to {
        compile_node(expr)
    } else {
        compile_node(&expr.clone().cast_to(to))
    }
}

/// The error for an expression that is not well typed.
pub(crate) fn ill_typed(expr: &impl std::fmt::Display, why: impl std::fmt::Display) -> String {
    format!("cannot evaluate {expr}: {why}")
}

fn reads_columns(expr: &Expr) -> bool {
    let mut cols = Vec::new();
    expr.columns(&mut cols);
    !cols.is_empty()
}

/// Evaluates a column-free node once on a one-row batch. `None` when that
/// fails (the node is then kept and fails again at run time).
fn fold(node: &Node) -> Option<Value> {
    let options = RecordBatchOptions::new().with_row_count(Some(1));
    let batch = RecordBatch::try_new_with_options(Arc::new(Schema::empty()), vec![], &options);
    match node.eval(&batch.ok()?).ok()? {
        v @ Value::Scalar(_) => Some(v),
        Value::Array(a) => Value::constant(a).ok(),
    }
}

/// The one-row array of a literal.
pub(crate) fn literal_array(l: &Literal) -> ArrayRef {
    match l {
        Literal::Null(t) => new_null_array(&t.to_arrow(), 1),
        Literal::Boolean(b) => Arc::new(BooleanArray::from(vec![*b])),
        Literal::Int(v) => Arc::new(Int32Array::from(vec![*v])),
        Literal::BigInt(v) | Literal::Interval(v) => Arc::new(Int64Array::from(vec![*v])),
        Literal::Double(v) => Arc::new(Float64Array::from(vec![*v])),
        Literal::Decimal(v, p, s) => Arc::new(
            arrow::array::Decimal128Array::from(vec![*v])
                .with_precision_and_scale(*p, *s as i8)
                .expect("a planned DECIMAL literal has a valid precision and scale"),
        ),
        Literal::Varchar(s) => Arc::new(StringArray::from(vec![s.as_str()])),
        Literal::Timestamp(ms) => Arc::new(TimestampMillisecondArray::from(vec![*ms])),
    }
}

fn build(expr: &Expr) -> ExecResult<Node> {
    use SqlType::Boolean;
    Ok(match expr {
        Expr::Column { index, name, ty } => Node::Column {
            index: *index,
            name: name.clone(),
            data_type: ty.to_arrow(),
        },
        Expr::Literal(l) => Node::Const(Value::constant(literal_array(l))?),
        Expr::Binary {
            op,
            left,
            right,
            ty,
        } => binary(expr, *op, left, right, *ty)?,
        Expr::Not(e) => Node::Not(Box::new(sub(e, Boolean)?)),
        Expr::Negate(e) => arithmetic::compile_negate(expr, e)?,
        Expr::IsNull { expr: e, negated } => Node::IsNull(Box::new(compile_node(e)?), *negated),
        Expr::InList {
            expr: e,
            list,
            negated,
        } => logic::InList::compile(e, list, *negated)?,
        Expr::Between {
            expr: e,
            low,
            high,
            negated,
        } => compare::Between::compile(expr, e, low, high, *negated)?,
        Expr::Like {
            expr: e,
            pattern,
            negated,
            case_insensitive,
        } => like::Like::compile(e, pattern, *negated, *case_insensitive)?,
        Expr::Case {
            whens,
            else_expr,
            ty,
        } => case::Case::compile(whens, else_expr.as_deref(), *ty)?,
        Expr::Cast { expr: e, ty } => cast::Cast::compile(expr, e, *ty)?,
        Expr::Function { func, args, ty } => function(expr, *func, args, *ty)?,
        Expr::Udf { udf, args } => Node::Udf(Box::new(super::udf_call::UdfCall::new(
            udf.clone(),
            args.iter()
                .zip(&udf.signature.args)
                .map(|(a, t)| sub(a, *t))
                .collect::<ExecResult<_>>()?,
        ))),
    })
}

fn binary(expr: &Expr, op: BinaryOp, left: &Expr, right: &Expr, ty: SqlType) -> ExecResult<Node> {
    use SqlType::{Boolean, Varchar};
    match op {
        BinaryOp::Plus
        | BinaryOp::Minus
        | BinaryOp::Multiply
        | BinaryOp::Divide
        | BinaryOp::Modulo => arithmetic::Arith::compile(expr, op, left, right, ty),
        BinaryOp::Eq
        | BinaryOp::NotEq
        | BinaryOp::Lt
        | BinaryOp::LtEq
        | BinaryOp::Gt
        | BinaryOp::GtEq => compare::Compare::compile(expr, op, left, right),
        BinaryOp::And | BinaryOp::Or => Ok(Node::Logic(Box::new(logic::Kleene {
            and: op == BinaryOp::And,
            left: sub(left, Boolean)?,
            right: super::selective::Selective::compile(right, Boolean)?,
        }))),
        BinaryOp::Concat => Ok(Node::Str(Box::new(strings::StrCall {
            func: strings::StrFunc::Pipe,
            args: vec![sub(left, Varchar)?, sub(right, Varchar)?],
        }))),
    }
}

/// Checks that `args` has between `min` and `max` elements.
pub(crate) fn arity(expr: &Expr, args: &[Expr], min: usize, max: usize) -> ExecResult<()> {
    if (min..=max).contains(&args.len()) {
        Ok(())
    } else {
        Err(internal(ill_typed(
            expr,
            format!("expected {min} to {max} arguments, got {}", args.len()),
        )))
    }
}

/// Wraps `node`, which produces `produced`, in a CAST to `ty` when they differ.
pub(crate) fn finish(node: Node, produced: SqlType, ty: SqlType) -> ExecResult<Node> {
    if produced == ty {
        Ok(node)
    } else {
        cast::Cast::wrap(node, produced, ty)
    }
}

fn function(expr: &Expr, func: ScalarFunc, args: &[Expr], ty: SqlType) -> ExecResult<Node> {
    (func.def().compile)(expr, func, args, ty)
}
