//! `CASE WHEN … THEN … [ELSE …] END` and `COALESCE`.
//!
//! CASE: the first condition that is TRUE wins (NULL is not TRUE); no match
//! and no ELSE gives NULL. Conditions are evaluated in order, column-wise,
//! until every row has its branch; each branch's value is then computed
//! for the rows that take it only (`selective.rs`; a branch no row takes
//! is not evaluated) and the values are merged with Arrow's `zip`.
//!
//! COALESCE: the first non-NULL argument; arguments after the point where
//! no row is NULL any more are not evaluated.

use arrow::array::{Array, ArrayRef, BooleanArray, Datum};
use arrow::compute::kernels::boolean::{and, and_not};
use arrow::compute::kernels::zip::zip;
use arrow::compute::{is_not_null, prep_null_mask_filter};
use arrow::record_batch::RecordBatch;

use super::Node;
use super::compile::{arity, sub};
use super::functions::FunctionDef;
use super::selective::Selective;
use super::value::{Value, arrow_err, booleans};
use crate::error::{ExecResult, PlanError};
use crate::plan::expr::{Expr, ScalarFunc};
use crate::sql::typing::{coerce, common_or_err};
use crate::types::SqlType;

/// `COALESCE(a, b, ...)`: its arguments share one type.
pub(crate) static COALESCE: FunctionDef = FunctionDef {
    name: "coalesce",
    names: &["coalesce"],
    aliases: &[],
    plan: |name, args, pos| {
        if args.is_empty() {
            return Err(PlanError::new(
                format!("{name} takes at least one argument"),
                pos,
            ));
        }
        let mut ty = SqlType::Null;
        for a in &args {
            ty = common_or_err(ty, a, "COALESCE", pos)?;
        }
        Ok(Expr::Function {
            func: ScalarFunc::Coalesce,
            args: args.into_iter().map(|a| coerce(a, ty)).collect(),
            ty,
        })
    },
    compile: |expr, _func, args, ty| {
        arity(expr, args, 1, usize::MAX)?;
        let args = args
            .iter()
            .map(|a| sub(a, ty))
            .collect::<ExecResult<Vec<_>>>()?;
        Ok(Node::Coalesce(args))
    },
};

/// A compiled CASE.
#[derive(Debug)]
pub(crate) struct Case {
    whens: Vec<(Node, Selective)>,
    else_value: Option<Selective>,
    ty: SqlType,
}

impl Case {
    /// Compiles a CASE: conditions as BOOLEAN, values (and ELSE, NULL when
    /// absent) as `ty`.
    pub(crate) fn compile(
        whens: &[(Expr, Expr)],
        else_expr: Option<&Expr>,
        ty: SqlType,
    ) -> ExecResult<Node> {
        let whens = whens
            .iter()
            .map(|(c, v)| Ok((sub(c, SqlType::Boolean)?, Selective::compile(v, ty)?)))
            .collect::<ExecResult<Vec<_>>>()?;
        let else_value = else_expr.map(|e| Selective::compile(e, ty)).transpose()?;
        Ok(Node::Case(Box::new(Case {
            whens,
            else_value,
            ty,
        })))
    }

    /// Evaluates over `batch`.
    pub(crate) fn eval(&self, batch: &RecordBatch) -> ExecResult<Value> {
        let n = batch.num_rows();
        // each branch with the rows that take it; `open`: rows without one yet
        let mut taken: Vec<(&Selective, BooleanArray)> = Vec::new();
        let mut open = BooleanArray::from(vec![true; n]);
        for (cond, value) in &self.whens {
            if open.true_count() == 0 {
                break;
            }
            let mask = match cond.eval(batch)? {
                Value::Scalar(s) => {
                    let c = booleans(s.get().0)?;
                    BooleanArray::from(vec![c.is_valid(0) && c.value(0); n])
                }
                Value::Array(a) => {
                    let mask = booleans(&a)?;
                    if mask.null_count() > 0 {
                        prep_null_mask_filter(mask)
                    } else {
                        mask.clone()
                    }
                }
            };
            let takes = and(&mask, &open).map_err(arrow_err("CASE"))?;
            if takes.true_count() == 0 {
                continue;
            }
            open = and_not(&open, &takes).map_err(arrow_err("CASE"))?;
            taken.push((value, takes));
        }
        let mut result = match &self.else_value {
            Some(e) if open.true_count() > 0 => e.eval_where(batch, &open)?,
            _ => Value::null(&self.ty.to_arrow()),
        };
        // the last branch first, so an earlier one overrides a later one
        for (value, takes) in taken.into_iter().rev() {
            if takes.true_count() == n {
                result = value.eval(batch)?;
                continue;
            }
            let v = value.eval_where(batch, &takes)?;
            let merged = zip(&takes, v.datum(), result.datum()).map_err(arrow_err("CASE"))?;
            result = Value::Array(merged);
        }
        Ok(result)
    }
}

/// COALESCE over compiled arguments (all of the result type).
pub(crate) fn coalesce(args: &[Node], batch: &RecordBatch) -> ExecResult<Value> {
    let Some((first, rest)) = args.split_first() else {
        return Err(super::value::internal("COALESCE without arguments"));
    };
    let mut acc = first.eval(batch)?;
    for arg in rest {
        let nulls = match &acc {
            Value::Scalar(_) => usize::from(acc.is_null_scalar()),
            Value::Array(a) => a.logical_null_count(),
        };
        if nulls == 0 {
            break;
        }
        let next = arg.eval(batch)?;
        acc = match acc {
            Value::Scalar(_) => next,
            Value::Array(a) => {
                let keep = is_not_null(&a).map_err(arrow_err("COALESCE"))?;
                let a: ArrayRef = a;
                Value::Array(zip(&keep, &a, next.datum()).map_err(arrow_err("COALESCE"))?)
            }
        };
    }
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use crate::plan::expr::BinaryOp;
    use SqlType::*;

    fn case(whens: Vec<(Expr, Expr)>, else_expr: Option<Expr>, ty: SqlType) -> Expr {
        Expr::Case {
            whens,
            else_expr: else_expr.map(Box::new),
            ty,
        }
    }

    #[test]
    fn first_true_condition_wins_and_null_is_not_true() {
        let b = batch(vec![("x", int32(&[Some(1), Some(5), Some(50), None]))]);
        let x = || col(0, Int);
        let e = case(
            vec![
                (bin(BinaryOp::Lt, x(), int(10)), text("small")),
                (bin(BinaryOp::Lt, x(), int(100)), text("medium")),
            ],
            Some(text("other")),
            Varchar,
        );
        same(
            &eval(&e, &b),
            strs(&[Some("small"), Some("small"), Some("medium"), Some("other")]),
        );
        let no_else = case(vec![(bin(BinaryOp::Gt, x(), int(2)), x())], None, Int);
        same(&eval(&no_else, &b), int32(&[None, Some(5), Some(50), None]));
    }

    #[test]
    fn constant_conditions_and_values() {
        let b = batch(vec![("x", int32(&[Some(1), None]))]);
        let always = case(
            vec![(lit(crate::plan::expr::Literal::Boolean(true)), col(0, Int))],
            Some(int(9)),
            Int,
        );
        same(&eval(&always, &b), int32(&[Some(1), None]));
        let never = case(vec![(null(Boolean), col(0, Int))], Some(int(9)), Int);
        same(&eval(&never, &b), int32(&[Some(9), Some(9)]));
        // values widened to the result type
        let widened = case(
            vec![(bin(BinaryOp::Eq, col(0, Int), int(1)), int(2))],
            Some(big(1 << 40)),
            BigInt,
        );
        same(&eval(&widened, &b), int64(&[Some(2), Some(1 << 40)]));
    }

    #[test]
    fn a_branch_taken_by_few_rows_is_evaluated_on_those_rows_only() {
        // 8 rows: the first branch takes 2, the ELSE 5, one is NULL
        let xs: Vec<Option<i32>> = vec![
            Some(1),
            Some(7),
            None,
            Some(0),
            Some(9),
            Some(3),
            Some(4),
            Some(8),
        ];
        let b = batch(vec![("x", int32(&xs)), ("y", int32(&[Some(5); 8]))]);
        let x = || col(0, Int);
        let e = case(
            vec![
                (
                    bin(BinaryOp::Lt, x(), int(2)),
                    bin(BinaryOp::Multiply, x(), int(10)),
                ),
                (bin(BinaryOp::Eq, x(), int(9)), col(1, Int)),
            ],
            Some(bin(BinaryOp::Plus, x(), int(100))),
            Int,
        );
        let want: Vec<Option<i32>> = vec![
            Some(10),
            Some(107),
            None,
            Some(0),
            Some(5),
            Some(103),
            Some(104),
            Some(108),
        ];
        same(&eval(&e, &b), int32(&want));
        // AND / OR evaluate their right side on the rows left open only
        let and = bin(
            BinaryOp::And,
            bin(BinaryOp::Gt, x(), int(6)),
            bin(BinaryOp::Lt, x(), int(9)),
        );
        let got = eval(&and, &b);
        let want = [
            Some(false),
            Some(true),
            None,
            Some(false),
            Some(false),
            Some(false),
            Some(false),
            Some(true),
        ];
        same(&got, bools(&want));
        let or = bin(
            BinaryOp::Or,
            bin(BinaryOp::Lt, x(), int(8)),
            bin(BinaryOp::Eq, x(), int(9)),
        );
        let want = [
            Some(true),
            Some(true),
            None,
            Some(true),
            Some(true),
            Some(true),
            Some(true),
            Some(false),
        ];
        same(&eval(&or, &b), bools(&want));
    }

    #[test]
    fn untaken_branches_are_not_evaluated() {
        let b = batch(vec![("x", int32(&[Some(1), Some(2)]))]);
        // THEN reads a missing column, but its condition is never true
        let e = case(
            vec![(bin(BinaryOp::Gt, col(0, Int), int(5)), col(9, Int))],
            Some(int(0)),
            Int,
        );
        same(&eval(&e, &b), int32(&[Some(0), Some(0)]));
    }

    #[test]
    fn coalesce_takes_the_first_non_null() {
        let b = batch(vec![
            ("a", int64(&[Some(1), None, None])),
            ("b", int64(&[Some(10), Some(20), None])),
        ]);
        let c = call(
            ScalarFunc::Coalesce,
            vec![col(0, BigInt), col(1, BigInt), big(0)],
            BigInt,
        );
        same(&eval(&c, &b), int64(&[Some(1), Some(20), Some(0)]));
        let nulls_first = call(
            ScalarFunc::Coalesce,
            vec![null(BigInt), col(1, BigInt)],
            BigInt,
        );
        same(&eval(&nulls_first, &b), int64(&[Some(10), Some(20), None]));
        let widened = call(
            ScalarFunc::Coalesce,
            vec![null(SqlType::Null), int(3)],
            BigInt,
        );
        same(&eval(&widened, &b), int64(&[Some(3); 3]));
        // stops once nothing is NULL: the missing column is never read
        let stops = call(
            ScalarFunc::Coalesce,
            vec![col(1, BigInt), big(5), col(9, BigInt)],
            BigInt,
        );
        same(&eval(&stops, &b), int64(&[Some(10), Some(20), Some(5)]));
    }
}
