//! Elementary functions over DOUBLE: SQRT, POWER, EXP, LN, LOG10; and MOD.
//!
//! Arguments are converted to DOUBLE and results are DOUBLE, following
//! IEEE arithmetic as Flink (Java's `Math`) does: `SQRT(-1)` and `LN(-1)`
//! are NaN, `LN(0)` is -Infinity. Eddy writes NaN and infinities as NULL in
//! JSON output.
//!
//! `MOD(a, b)` is `a % b`: the remainder with the sign of `a`, of the
//! operands' common type; `MOD(a, 0)` is NULL.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array};
use arrow::compute::kernels::arity::binary;
use arrow::datatypes::Float64Type;
use sqlparser::ast::BinaryOperator;

use super::Node;
use super::compile::{arity, sub};
use super::functions::{FunctionDef, arity as plan_arity, not_compiled};
use super::kernel::{KernelCall, RowKernel};
use super::value::{arrow_err, internal, prim};
use crate::error::{ExecResult, PlanResult, SqlPos};
use crate::plan::expr::{Expr, ScalarFunc};
use crate::sql::typing::{coerce, expect_numeric};
use crate::types::SqlType;

/// `SQRT(x)`.
pub(crate) static SQRT: FunctionDef = FunctionDef {
    name: "sqrt",
    names: &["sqrt"],
    aliases: &[],
    plan: |name, args, pos| doubles(name, args, pos, ScalarFunc::Sqrt, 1),
    compile: Elementary::compile,
};

/// `EXP(x)`.
pub(crate) static EXP: FunctionDef = FunctionDef {
    name: "exp",
    names: &["exp"],
    aliases: &[],
    plan: |name, args, pos| doubles(name, args, pos, ScalarFunc::Exp, 1),
    compile: Elementary::compile,
};

/// `LN(x)`.
pub(crate) static LN: FunctionDef = FunctionDef {
    name: "ln",
    names: &["ln"],
    aliases: &[],
    plan: |name, args, pos| doubles(name, args, pos, ScalarFunc::Ln, 1),
    compile: Elementary::compile,
};

/// `LOG10(x)`.
pub(crate) static LOG10: FunctionDef = FunctionDef {
    name: "log10",
    names: &["log10"],
    aliases: &[],
    plan: |name, args, pos| doubles(name, args, pos, ScalarFunc::Log10, 1),
    compile: Elementary::compile,
};

/// `POWER(x, y)`.
pub(crate) static POWER: FunctionDef = FunctionDef {
    name: "power",
    names: &["power"],
    aliases: &["pow"],
    plan: |name, args, pos| doubles(name, args, pos, ScalarFunc::Power, 2),
    compile: Elementary::compile,
};

/// `MOD(a, b)`: planned as `a % b`.
pub(crate) static MOD: FunctionDef = FunctionDef {
    name: "mod",
    names: &["mod"],
    aliases: &[],
    plan: |name, mut args, pos| {
        plan_arity(name, &args, 2..=2, pos)?;
        let b = args.pop().expect("two");
        let a = args.pop().expect("two");
        crate::sql::typing::binary(&BinaryOperator::Modulo, a, b, pos)
    },
    compile: not_compiled,
};

/// `n` numeric arguments, converted to DOUBLE; a DOUBLE result.
fn doubles(
    name: &str,
    args: Vec<Expr>,
    pos: SqlPos,
    func: ScalarFunc,
    n: usize,
) -> PlanResult<Expr> {
    plan_arity(name, &args, n..=n, pos)?;
    let args = args
        .into_iter()
        .map(|a| Ok(coerce(expect_numeric(a, name, pos)?, SqlType::Double)))
        .collect::<PlanResult<Vec<_>>>()?;
    Ok(Expr::Function {
        func,
        args,
        ty: SqlType::Double,
    })
}

/// Which elementary function.
#[derive(Debug, Clone, Copy)]
enum Elementary {
    Unary(fn(f64) -> f64),
    Power,
}

impl Elementary {
    fn compile(expr: &Expr, func: ScalarFunc, args: &[Expr], _ty: SqlType) -> ExecResult<Node> {
        let f = match func {
            ScalarFunc::Sqrt => Elementary::Unary(f64::sqrt),
            ScalarFunc::Exp => Elementary::Unary(f64::exp),
            ScalarFunc::Ln => Elementary::Unary(f64::ln),
            ScalarFunc::Log10 => Elementary::Unary(f64::log10),
            ScalarFunc::Power => Elementary::Power,
            other => return Err(internal(format!("{} is not elementary", other.name()))),
        };
        let n = if matches!(f, Elementary::Power) { 2 } else { 1 };
        arity(expr, args, n, n)?;
        let nodes = args
            .iter()
            .map(|a| sub(a, SqlType::Double))
            .collect::<ExecResult<Vec<_>>>()?;
        Ok(KernelCall::node(f, nodes))
    }
}

impl RowKernel for Elementary {
    fn eval(&self, args: &[ArrayRef]) -> ExecResult<ArrayRef> {
        let x = prim::<Float64Type>(args.first().ok_or_else(|| internal("no argument"))?)?;
        let out: Float64Array = match self {
            Elementary::Unary(f) => x.unary(f),
            Elementary::Power => {
                let y = prim::<Float64Type>(args.get(1).ok_or_else(|| internal("no exponent"))?)?;
                binary(x, y, f64::powf).map_err(arrow_err("POWER"))?
            }
        };
        Ok(Arc::new(out))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use SqlType::*;
    use arrow::array::Array;

    #[test]
    fn ieee_results() {
        let b = batch(vec![("x", f64s(&[Some(4.0), Some(-1.0), Some(0.0), None]))]);
        let sqrt = eval(&call(ScalarFunc::Sqrt, vec![col(0, Double)], Double), &b);
        let v = prim::<Float64Type>(&sqrt).unwrap();
        assert_eq!(v.value(0), 2.0);
        assert!(v.value(1).is_nan());
        assert!(v.is_null(3));
        let ln = eval(&call(ScalarFunc::Ln, vec![col(0, Double)], Double), &b);
        assert_eq!(
            prim::<Float64Type>(&ln).unwrap().value(2),
            f64::NEG_INFINITY
        );
        let p = eval(
            &call(ScalarFunc::Power, vec![col(0, Double), dbl(0.5)], Double),
            &b,
        );
        assert_eq!(prim::<Float64Type>(&p).unwrap().value(0), 2.0);
        let e = eval(&call(ScalarFunc::Exp, vec![dbl(0.0)], Double), &b);
        assert_eq!(prim::<Float64Type>(&e).unwrap().value(0), 1.0);
        let l = eval(&call(ScalarFunc::Log10, vec![dbl(1000.0)], Double), &b);
        assert_eq!(prim::<Float64Type>(&l).unwrap().value(0), 3.0);
    }

    #[test]
    fn mod_is_the_remainder_operator() {
        let m = (MOD.plan)("mod", vec![big(-7), int(3)], SqlPos::default()).unwrap();
        assert!(matches!(m, Expr::Binary { .. }), "{m:?}");
        let b = batch(vec![("x", int64(&[Some(1)]))]);
        same(&eval(&m, &b), int32(&[Some(-1)]));
    }
}
