//! GREATEST, LEAST and NULLIF.
//!
//! * `GREATEST(a, b, ...)` / `LEAST(...)`: the largest / smallest of values
//!   of one comparable type (numbers are widened to their common type).
//!   As in Flink, a NULL argument makes the result NULL (PostgreSQL skips
//!   NULLs instead; write `GREATEST(COALESCE(a, b), COALESCE(b, a))` for
//!   that).
//! * `NULLIF(a, b)`: NULL when `a = b`, else `a`; planned as
//!   `CASE WHEN a = b THEN NULL ELSE a END`.

use arrow::array::{Array, ArrayRef, make_array};
use arrow::buffer::NullBuffer;
use arrow::compute::kernels::cmp::{gt, lt};
use arrow::compute::kernels::zip::zip;
use sqlparser::ast::BinaryOperator;

use super::Node;
use super::compile::{arity, sub};
use super::functions::{FunctionDef, not_compiled};
use super::kernel::{KernelCall, RowKernel};
use super::value::{arrow_err, internal};
use crate::error::{ExecResult, PlanError, PlanResult, SqlPos};
use crate::plan::expr::{Expr, Literal, ScalarFunc};
use crate::sql::typing::{coerce, common_or_err};
use crate::types::SqlType;

/// `GREATEST(a, b, ...)`.
pub(crate) static GREATEST: FunctionDef = FunctionDef {
    name: "greatest",
    names: &["greatest"],
    aliases: &[],
    plan: |name, args, pos| extreme(name, args, pos, ScalarFunc::Greatest),
    compile: Extreme::compile,
};

/// `LEAST(a, b, ...)`.
pub(crate) static LEAST: FunctionDef = FunctionDef {
    name: "least",
    names: &["least"],
    aliases: &[],
    plan: |name, args, pos| extreme(name, args, pos, ScalarFunc::Least),
    compile: Extreme::compile,
};

/// `NULLIF(a, b)`.
pub(crate) static NULLIF: FunctionDef = FunctionDef {
    name: "nullif",
    names: &["nullif"],
    aliases: &[],
    plan: |name, mut args, pos| {
        super::functions::arity(name, &args, 2..=2, pos)?;
        let b = args.pop().expect("two");
        let a = args.pop().expect("two");
        let ty = common_or_err(a.sql_type(), &b, "NULLIF", pos)?;
        let a = coerce(a, ty);
        let same = crate::sql::typing::binary(&BinaryOperator::Eq, a.clone(), b, pos)?;
        Ok(Expr::Case {
            whens: vec![(same, Expr::Literal(Literal::Null(ty)))],
            else_expr: Some(Box::new(a)),
            ty,
        })
    },
    compile: not_compiled,
};

fn extreme(name: &str, args: Vec<Expr>, pos: SqlPos, func: ScalarFunc) -> PlanResult<Expr> {
    if args.len() < 2 {
        return Err(PlanError::new(
            format!("{name} takes at least two arguments, got {}", args.len()),
            pos,
        ));
    }
    let mut ty = SqlType::Null;
    for a in &args {
        ty = common_or_err(ty, a, name, pos)?;
    }
    if ty == SqlType::Interval {
        return Err(PlanError::new(
            format!("{name} cannot compare intervals"),
            pos,
        ));
    }
    Ok(Expr::Function {
        func,
        args: args.into_iter().map(|a| coerce(a, ty)).collect(),
        ty,
    })
}

/// GREATEST (`true`) or LEAST.
#[derive(Debug)]
struct Extreme {
    greatest: bool,
}

impl Extreme {
    fn compile(expr: &Expr, func: ScalarFunc, args: &[Expr], ty: SqlType) -> ExecResult<Node> {
        arity(expr, args, 2, usize::MAX)?;
        let nodes = args
            .iter()
            .map(|a| sub(a, ty))
            .collect::<ExecResult<Vec<_>>>()?;
        let greatest = func == ScalarFunc::Greatest;
        Ok(KernelCall::node(Extreme { greatest }, nodes))
    }
}

impl RowKernel for Extreme {
    fn eval(&self, args: &[ArrayRef]) -> ExecResult<ArrayRef> {
        let mut acc = args
            .first()
            .ok_or_else(|| internal("no arguments"))?
            .clone();
        let mut nulls = acc.logical_nulls();
        for next in &args[1..] {
            let better = if self.greatest {
                gt(next, &acc)
            } else {
                lt(next, &acc)
            }
            .map_err(arrow_err("GREATEST/LEAST"))?;
            acc = zip(&better, next, &acc).map_err(arrow_err("GREATEST/LEAST"))?;
            nulls = NullBuffer::union(nulls.as_ref(), next.logical_nulls().as_ref());
        }
        let data = acc.into_data().into_builder().nulls(nulls);
        Ok(make_array(
            data.build().map_err(arrow_err("GREATEST/LEAST"))?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use SqlType::*;

    #[test]
    fn greatest_and_least_are_null_if_any_argument_is() {
        let b = batch(vec![
            ("a", int64(&[Some(1), Some(5), None])),
            ("b", int64(&[Some(3), Some(2), Some(1)])),
        ]);
        let g = (GREATEST.plan)(
            "greatest",
            vec![col(0, BigInt), col(1, BigInt), int(2)],
            SqlPos::default(),
        )
        .unwrap();
        same(&eval(&g, &b), int64(&[Some(3), Some(5), None]));
        let l = (LEAST.plan)(
            "least",
            vec![col(0, BigInt), col(1, BigInt)],
            SqlPos::default(),
        )
        .unwrap();
        same(&eval(&l, &b), int64(&[Some(1), Some(2), None]));
        let s =
            (GREATEST.plan)("greatest", vec![text("b"), text("ab")], SqlPos::default()).unwrap();
        same(&eval(&s, &b), strs(&[Some("b"); 3]));
        // numbers widen
        let w = (LEAST.plan)("least", vec![col(0, BigInt), dbl(1.5)], SqlPos::default()).unwrap();
        assert_eq!(w.sql_type(), Double);
        assert!((GREATEST.plan)("greatest", vec![int(1)], SqlPos::default()).is_err());
        assert!((GREATEST.plan)("greatest", vec![int(1), text("x")], SqlPos::default()).is_err());
    }

    #[test]
    fn nullif_is_a_case() {
        let b = batch(vec![("a", int64(&[Some(1), Some(5), None]))]);
        let n = (NULLIF.plan)("nullif", vec![col(0, BigInt), int(5)], SqlPos::default()).unwrap();
        same(&eval(&n, &b), int64(&[Some(1), None, None]));
    }
}
