//! Types in the planner: literals, implicit casts (coercion), the type
//! rules of operators, and the checks that name what a place expects.

use sqlparser::ast::{self, BinaryOperator, Value};

use crate::error::{PlanError, PlanResult, SqlPos};
use crate::plan::expr::{BinaryOp, Expr, Literal};
use crate::sql::literal::parse_timestamp_literal;
use crate::types::{SqlType, decimal};

pub(super) fn lit_bool(b: bool) -> Expr {
    Expr::Literal(Literal::Boolean(b))
}

pub(super) fn literal(v: &Value, pos: SqlPos) -> PlanResult<Expr> {
    Ok(Expr::Literal(match v {
        // as in Flink: an integer is a BIGINT (a DECIMAL past its range), a
        // number with a point is an exact DECIMAL of its digits, and one
        // with an exponent is a DOUBLE
        Value::Number(n, _) => {
            let exact = !n.contains(['e', 'E']);
            if let Ok(i) = n.parse::<i64>() {
                Literal::BigInt(i)
            } else if let Some((v, p, s)) = exact.then(|| decimal::literal(n)).flatten() {
                Literal::Decimal(v, p, s)
            } else if let Ok(d) = n.parse::<f64>().map_err(|_| ()).and_then(|d| {
                if exact || !d.is_finite() {
                    Err(())
                } else {
                    Ok(d)
                }
            }) {
                Literal::Double(d)
            } else {
                return Err(PlanError::new(format!("number {n} is out of range"), pos)
                    .with_hint("an exact number has at most 38 digits; write larger ones with an exponent (1.5e40) as a DOUBLE"));
            }
        }
        Value::SingleQuotedString(s) => Literal::Varchar(s.clone()),
        Value::Boolean(b) => Literal::Boolean(*b),
        Value::Null => Literal::Null(SqlType::Null),
        other => {
            return Err(PlanError::new(format!("unsupported literal {other}"), pos)
                .with_hint("strings use single quotes: 'text'"));
        }
    }))
}

pub(crate) fn coerce(e: Expr, ty: SqlType) -> Expr {
    if e.sql_type() == ty {
        e
    } else {
        fold_cast(e, ty)
    }
}

/// A CAST, computed at plan time when the operand is a literal that converts exactly.
pub(crate) fn fold_cast(e: Expr, ty: SqlType) -> Expr {
    if let Expr::Literal(l) = &e {
        let folded = match (l, ty) {
            (Literal::Null(_), t) => Some(Literal::Null(t)),
            (Literal::BigInt(v), SqlType::Int) => i32::try_from(*v).ok().map(Literal::Int),
            (Literal::BigInt(v), SqlType::Double) => Some(Literal::Double(*v as f64)),
            (Literal::Int(v), SqlType::BigInt) => Some(Literal::BigInt(i64::from(*v))),
            (Literal::Int(v), SqlType::Double) => Some(Literal::Double(f64::from(*v))),
            (Literal::Decimal(v, _, s), SqlType::Double) => {
                Some(Literal::Double(decimal::to_f64(*v, *s)))
            }
            (Literal::Decimal(v, _, from), SqlType::Decimal(p, s)) => {
                decimal::rescale(*v, *from, s)
                    .filter(|v| decimal::fits(*v, p))
                    .map(|v| Literal::Decimal(v, p, s))
            }
            (Literal::BigInt(v), SqlType::Decimal(p, s)) => decimal::rescale(i128::from(*v), 0, s)
                .filter(|v| decimal::fits(*v, p))
                .map(|v| Literal::Decimal(v, p, s)),
            (Literal::Varchar(s), SqlType::Timestamp) => {
                parse_timestamp_literal(s, SqlPos::default())
                    .ok()
                    .map(Literal::Timestamp)
            }
            _ => None,
        };
        if let Some(l) = folded {
            return Expr::Literal(l);
        }
    }
    e.cast_to(ty)
}

/// The common type of `acc` and `item`, preferring the non-literal side so
/// `int_col = 5` compares as INT.
pub(crate) fn common_or_err(
    acc: SqlType,
    item: &Expr,
    what: &str,
    pos: SqlPos,
) -> PlanResult<SqlType> {
    let it = item.sql_type();
    if let Expr::Literal(l) = item {
        if acc == SqlType::Int && matches!(l, Literal::BigInt(v) if i32::try_from(*v).is_ok()) {
            return Ok(SqlType::Int);
        }
        if acc == SqlType::Timestamp && it == SqlType::Varchar {
            return Ok(SqlType::Timestamp);
        }
    }
    SqlType::common(acc, it).ok_or_else(|| {
        PlanError::new(
            format!("type mismatch in {what}: {acc} and {it} cannot be compared or combined"),
            pos,
        )
        .with_hint("CAST one side to the other's type")
    })
}

pub(crate) fn expect_type(e: Expr, ty: SqlType, what: &str, pos: SqlPos) -> PlanResult<Expr> {
    match e.sql_type() {
        t if t == ty => Ok(e),
        SqlType::Null => Ok(coerce(e, ty)),
        t => Err(
            PlanError::new(format!("{what} expects {ty}, got {t} ({e})"), pos)
                .with_hint(format!("CAST the argument to {ty}")),
        ),
    }
}

pub(super) fn expect_bool(e: Expr, what: &str, pos: SqlPos) -> PlanResult<Expr> {
    expect_type(e, SqlType::Boolean, what, pos)
}

pub(crate) fn expect_integer(e: Expr, what: &str, pos: SqlPos) -> PlanResult<Expr> {
    match e.sql_type() {
        SqlType::Int | SqlType::BigInt | SqlType::Null => Ok(coerce(e, SqlType::BigInt)),
        t => Err(PlanError::new(
            format!("{what} expects an integer, got {t} ({e})"),
            pos,
        )),
    }
}

pub(crate) fn expect_numeric(e: Expr, what: &str, pos: SqlPos) -> PlanResult<Expr> {
    match e.sql_type() {
        t if t.is_numeric() => Ok(e),
        SqlType::Null => Ok(coerce(e, SqlType::Double)),
        t => Err(
            PlanError::new(format!("{what} expects a number, got {t} ({e})"), pos)
                .with_hint("CAST the argument to DOUBLE or BIGINT"),
        ),
    }
}

pub(super) fn negate(e: Expr, pos: SqlPos) -> PlanResult<Expr> {
    Ok(match e {
        Expr::Literal(Literal::BigInt(v)) => Expr::Literal(Literal::BigInt(v.wrapping_neg())),
        Expr::Literal(Literal::Double(v)) => Expr::Literal(Literal::Double(-v)),
        Expr::Literal(Literal::Decimal(v, p, s)) => Expr::Literal(Literal::Decimal(-v, p, s)),
        Expr::Literal(Literal::Interval(v)) => Expr::Literal(Literal::Interval(-v)),
        e if e.sql_type().is_numeric() => Expr::Negate(Box::new(e)),
        e => {
            return Err(PlanError::new(
                format!("cannot negate {} ({e})", e.sql_type()),
                pos,
            ));
        }
    })
}

pub(crate) fn binary(op: &BinaryOperator, l: Expr, r: Expr, pos: SqlPos) -> PlanResult<Expr> {
    use SqlType as T;
    let op = match op {
        BinaryOperator::Plus => BinaryOp::Plus,
        BinaryOperator::Minus => BinaryOp::Minus,
        BinaryOperator::Multiply => BinaryOp::Multiply,
        BinaryOperator::Divide => BinaryOp::Divide,
        BinaryOperator::Modulo => BinaryOp::Modulo,
        BinaryOperator::Eq => BinaryOp::Eq,
        BinaryOperator::NotEq => BinaryOp::NotEq,
        BinaryOperator::Lt => BinaryOp::Lt,
        BinaryOperator::LtEq => BinaryOp::LtEq,
        BinaryOperator::Gt => BinaryOp::Gt,
        BinaryOperator::GtEq => BinaryOp::GtEq,
        BinaryOperator::And => BinaryOp::And,
        BinaryOperator::Or => BinaryOp::Or,
        BinaryOperator::StringConcat => BinaryOp::Concat,
        other => {
            return Err(PlanError::new(
                format!("operator {other} is not supported"),
                pos,
            ));
        }
    };
    let (lt, rt) = (l.sql_type(), r.sql_type());
    // a text literal compared with a TIMESTAMP is read as one: a bad one is
    // a mistake to report here, not a comparison with NULL at run time
    for (this, other) in [(&l, rt), (&r, lt)] {
        if let (Expr::Literal(Literal::Varchar(text)), T::Timestamp) = (this, other) {
            parse_timestamp_literal(text, pos)?;
        }
    }
    let mismatch = || {
        PlanError::new(
            format!(
                "type mismatch: cannot apply '{}' to {lt} and {rt}",
                op.symbol()
            ),
            pos,
        )
        .with_hint("CAST an operand so both sides have compatible types")
    };
    let mk = |op, l: Expr, r: Expr, ty| Expr::Binary {
        op,
        left: Box::new(l),
        right: Box::new(r),
        ty,
    };
    match op {
        BinaryOp::And | BinaryOp::Or => {
            if !matches!(lt, T::Boolean | T::Null) || !matches!(rt, T::Boolean | T::Null) {
                return Err(mismatch());
            }
            Ok(mk(
                op,
                coerce(l, T::Boolean),
                coerce(r, T::Boolean),
                T::Boolean,
            ))
        }
        BinaryOp::Concat => Ok(mk(
            op,
            coerce(l, T::Varchar),
            coerce(r, T::Varchar),
            T::Varchar,
        )),
        BinaryOp::Plus | BinaryOp::Minus if lt == T::Timestamp && rt == T::Interval => {
            Ok(mk(op, l, r, T::Timestamp))
        }
        BinaryOp::Plus if lt == T::Interval && rt == T::Timestamp => Ok(mk(op, r, l, T::Timestamp)),
        BinaryOp::Plus
        | BinaryOp::Minus
        | BinaryOp::Multiply
        | BinaryOp::Divide
        | BinaryOp::Modulo => {
            let ty = SqlType::common(lt, rt)
                .filter(|t| t.is_numeric() || *t == T::Null)
                .ok_or_else(mismatch)?;
            if let T::Decimal(..) = ty {
                // each side keeps its own digits; the result's follow SQL's rules
                let parts = |t: SqlType| t.decimal_parts().unwrap_or((1, 0));
                let (a, b) = (parts(lt), parts(rt));
                let (p, s) = match op {
                    BinaryOp::Plus | BinaryOp::Minus => decimal::add_type(a, b),
                    BinaryOp::Multiply => decimal::mul_type(a, b),
                    BinaryOp::Divide => decimal::div_type(a, b),
                    _ => decimal::mod_type(a, b),
                };
                return Ok(mk(op, l, r, T::Decimal(p, s)));
            }
            let ty = if ty == T::Null { T::BigInt } else { ty };
            let ty = narrow_for_literal(&l, &r, ty);
            Ok(mk(op, coerce(l, ty), coerce(r, ty), ty))
        }
        _ => {
            // comparison
            let ty = if matches!(&r, Expr::Literal(_)) {
                common_or_err(lt, &r, &format!("'{}'", op.symbol()), pos)
            } else {
                common_or_err(rt, &l, &format!("'{}'", op.symbol()), pos)
            }
            .map_err(|_| mismatch())?;
            let ty = if ty == T::Null { T::Boolean } else { ty };
            Ok(mk(op, coerce(l, ty), coerce(r, ty), T::Boolean))
        }
    }
}

/// `int_col + 1` stays INT rather than widening the column to BIGINT.
pub(super) fn narrow_for_literal(l: &Expr, r: &Expr, ty: SqlType) -> SqlType {
    let fits =
        |e: &Expr| matches!(e, Expr::Literal(Literal::BigInt(v)) if i32::try_from(*v).is_ok());
    if ty == SqlType::BigInt
        && ((l.sql_type() == SqlType::Int && fits(r)) || (r.sql_type() == SqlType::Int && fits(l)))
    {
        SqlType::Int
    } else {
        ty
    }
}

/// The types a column or CAST may have, for hints.
pub(super) const TYPES_HINT: &str =
    "use BIGINT, INT, DOUBLE, DECIMAL(p, s) (1 ≤ p ≤ 38, 0 ≤ s ≤ p), VARCHAR, BOOLEAN or TIMESTAMP";

pub(super) fn unsupported_type(dt: &ast::DataType, pos: SqlPos) -> PlanError {
    PlanError::new(format!("unsupported type {dt}"), pos).with_hint(TYPES_HINT)
}
