//! An aggregate over an updating input (a changelog): each row counts with
//! a sign, +1 for an added row (`+I`, `+U`) and −1 for a withdrawn one
//! (`-U`, `-D`), so `COUNT`, `SUM` and `AVG` take rows back exactly. A group
//! whose rows have all been withdrawn is withdrawn too.
//!
//! The aggregate is planned as one over signed values — `SUM(sign)` for the
//! group's rows, `SUM(sign * x)` and the count of non-NULL `x` per call —
//! then a filter drops groups without rows and a projection gives the
//! values in the layout of the aggregate it stands for. Under EMIT CHANGES
//! the filter applies to each changelog row, so the `-U` of a group's last
//! row passes and its `+U` (no rows) does not: the group is withdrawn.

use crate::agg::AggregateFunction as F;
use crate::error::{PlanError, PlanResult, SqlPos};
use crate::plan::expr::{BinaryOp, Expr, Literal};
use crate::plan::logical::{AggregateCall, EmitMode, Lateness, LogicalPlan, OP_COLUMN};
use crate::types::SqlType;

/// What an aggregate over an updating input computes.
pub(super) struct Retracting {
    pub(super) keys: Vec<(Expr, String)>,
    pub(super) aggs: Vec<AggregateCall>,
    pub(super) emit: EmitMode,
    pub(super) lateness: Lateness,
    pub(super) ttl: Option<i64>,
}

/// Plans `agg` over the updating `input`; the output has the columns the
/// plain aggregate would have (keys, one per call, then `_op` under EMIT
/// CHANGES).
///
/// # Errors
/// A call that cannot take rows back (MIN, MAX, COUNT DISTINCT, ...).
pub(super) fn plan(input: LogicalPlan, agg: Retracting, pos: SqlPos) -> PlanResult<LogicalPlan> {
    let op = input
        .changelog()
        .ok_or_else(|| PlanError::new("internal: not a changelog", pos))?;
    let op = Expr::column(op, OP_COLUMN, SqlType::Varchar);
    let nkeys = agg.keys.len();
    let mut calls = vec![sum("__rows", sign(&op, SqlType::BigInt), SqlType::BigInt)];
    // per original call: its value over the new aggregate's columns
    let mut values = Vec::with_capacity(agg.aggs.len());
    for a in &agg.aggs {
        let column = |i: usize, ty| Expr::column(nkeys + i, format!("__{i}"), ty);
        let arg = a.arg.clone();
        let counted = |x: &Expr| {
            // non-NULL values, signed
            Expr::Case {
                whens: vec![(
                    Expr::IsNull {
                        expr: Box::new(x.clone()),
                        negated: false,
                    },
                    Expr::Literal(Literal::BigInt(0)),
                )],
                else_expr: Some(Box::new(sign(&op, SqlType::BigInt))),
                ty: SqlType::BigInt,
            }
        };
        match (a.func, arg) {
            (F::CountStar, _) => values.push(column(0, SqlType::BigInt)),
            (F::Count, Some(x)) => {
                values.push(column(calls.len(), SqlType::BigInt));
                calls.push(sum(&a.display, counted(&x), SqlType::BigInt));
            }
            (F::Sum | F::Avg, Some(x)) => {
                let exact = if a.func == F::Sum {
                    a.ret
                } else if x.sql_type().is_integer() {
                    SqlType::BigInt
                } else {
                    SqlType::Double
                };
                let n = column(calls.len(), SqlType::BigInt);
                calls.push(sum(&format!("count({x})"), counted(&x), SqlType::BigInt));
                let s = column(calls.len(), exact);
                let signed = Expr::Binary {
                    op: BinaryOp::Multiply,
                    left: Box::new(sign(&op, exact)),
                    right: Box::new(x.clone().cast_to(exact)),
                    ty: exact,
                };
                calls.push(sum(&format!("sum({x})"), signed, exact));
                let value = if a.func == F::Sum {
                    s
                } else {
                    Expr::Binary {
                        op: BinaryOp::Divide,
                        left: Box::new(s.cast_to(SqlType::Double)),
                        right: Box::new(n.clone().cast_to(SqlType::Double)),
                        ty: SqlType::Double,
                    }
                };
                // NULL when no non-NULL value is left
                values.push(Expr::Case {
                    whens: vec![(
                        Expr::Binary {
                            op: BinaryOp::NotEq,
                            left: Box::new(n),
                            right: Box::new(Expr::Literal(Literal::BigInt(0))),
                            ty: SqlType::Boolean,
                        },
                        value,
                    )],
                    else_expr: None,
                    ty: a.ret,
                });
            }
            _ => {
                return Err(PlanError::new(
                    format!(
                        "{} over an input whose rows update earlier ones (a changelog) is not supported: it cannot take a value back",
                        a.display
                    ),
                    pos,
                )
                .with_hint("COUNT, SUM and AVG take rows back; aggregate the stream before it updates, or window it"));
            }
        }
    }
    let width = nkeys + calls.len();
    let plan = LogicalPlan::Aggregate {
        input: Box::new(input),
        window: None,
        keys: agg.keys.clone(),
        aggs: calls,
        emit: agg.emit,
        lateness: agg.lateness,
        ttl: agg.ttl,
    };
    let rows = Expr::column(nkeys, "__rows", SqlType::BigInt);
    let plan = LogicalPlan::Filter {
        input: Box::new(plan),
        predicate: Expr::Binary {
            op: BinaryOp::Gt,
            left: Box::new(rows),
            right: Box::new(Expr::Literal(Literal::BigInt(0))),
            ty: SqlType::Boolean,
        },
    };
    let mut exprs: Vec<(Expr, String)> = agg
        .keys
        .iter()
        .enumerate()
        .map(|(i, (k, n))| (Expr::column(i, n.clone(), k.sql_type()), n.clone()))
        .collect();
    exprs.extend(
        values
            .into_iter()
            .zip(&agg.aggs)
            .map(|(v, a)| (v, a.display.clone())),
    );
    if agg.emit == EmitMode::Changes {
        exprs.push((
            Expr::column(width, OP_COLUMN, SqlType::Varchar),
            OP_COLUMN.to_string(),
        ));
    }
    Ok(LogicalPlan::Project {
        input: Box::new(plan),
        exprs,
    })
}

/// −1 for a withdrawn row, 1 for an added one, as `ty`.
fn sign(op: &Expr, ty: SqlType) -> Expr {
    let (minus, plus) = match ty {
        SqlType::Double => (Literal::Double(-1.0), Literal::Double(1.0)),
        _ => (Literal::BigInt(-1), Literal::BigInt(1)),
    };
    Expr::Case {
        whens: vec![(
            Expr::InList {
                expr: Box::new(op.clone()),
                list: ["-U", "-D"]
                    .map(|s| Expr::Literal(Literal::Varchar(s.into())))
                    .to_vec(),
                negated: false,
            },
            Expr::Literal(minus),
        )],
        else_expr: Some(Box::new(Expr::Literal(plus))),
        ty,
    }
}

fn sum(display: &str, arg: Expr, ret: SqlType) -> AggregateCall {
    AggregateCall {
        func: F::Sum,
        arg: Some(arg),
        ret,
        display: display.to_string(),
        udaf: None,
    }
}
