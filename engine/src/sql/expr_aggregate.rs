//! Aggregate calls inside expressions: built-in and WebAssembly aggregates
//! planned onto an aggregate's output columns ([`AggContext`]), and the
//! check whether an expression aggregates at all.

use sqlparser::ast;

use crate::agg::AggregateFunction;
use crate::error::{PlanError, PlanResult, SqlPos};
use crate::plan::expr::Expr;
use crate::plan::logical::AggregateCall;
use crate::sql::scope::Scope;

use super::expr::ExprPlanner;
use super::functions::*;
use super::typing::expect_bool;

/// Where aggregate calls and group keys go while planning an aggregate query.
#[derive(Debug, Default)]
pub(crate) struct AggContext {
    /// GROUP BY expressions as written (lower-cased text) → output column.
    pub keys: Vec<(String, Expr)>,
    /// Extra output columns visible by name (window_start, window_end).
    pub named: Scope,
    /// Aggregate calls registered so far.
    pub calls: Vec<AggregateCall>,
    /// Index of the first aggregate output column.
    pub first_agg_column: usize,
}

/// An aggregate call as written.
pub(crate) struct Call<'a> {
    /// The function's name (lower case).
    pub name: &'a str,
    /// `DISTINCT`.
    pub distinct: bool,
    /// `*`.
    pub star: bool,
    /// The arguments.
    pub args: &'a [&'a ast::Expr],
    /// `FILTER (WHERE ...)`.
    pub filter: Option<&'a ast::Expr>,
}

impl ExprPlanner<'_> {
    /// A WebAssembly aggregate: planned like a built-in one, with all its
    /// arguments checked against the module's description.
    pub(super) fn udaf(
        &mut self,
        module: std::sync::Arc<crate::udf::UdfModule>,
        signature: crate::udf::UdfSignature,
        args: &[&ast::Expr],
        pos: SqlPos,
    ) -> PlanResult<Expr> {
        let clause = self.clause;
        let name = signature.name.clone();
        let Some(agg) = self.agg.as_deref_mut() else {
            return Err(PlanError::new(
                format!("aggregate function {name}(...) is not allowed in {clause}"),
                pos,
            ));
        };
        let mut inner = ExprPlanner {
            scope: self.scope,
            agg: None,
            clause: "the argument of an aggregate function",
        };
        let planned = args
            .iter()
            .map(|a| inner.plan(a))
            .collect::<PlanResult<Vec<_>>>()?;
        let Expr::Udf { udf, args: planned } = udf_call(module, signature, planned, pos)? else {
            return Err(PlanError::new("internal: a UDF call did not plan", pos));
        };
        let ret = udf.signature.ret;
        let call = AggregateCall {
            func: AggregateFunction::Wasm,
            arg: None,
            ret,
            display: display_call(&name, false, false, args),
            udaf: Some(crate::plan::logical::UdafCall { udf, args: planned }),
        };
        Ok(agg.register(call))
    }

    pub(super) fn aggregate(
        &mut self,
        func: AggregateFunction,
        call: Call<'_>,
        pos: SqlPos,
    ) -> PlanResult<Expr> {
        let Call {
            name,
            distinct,
            star,
            args,
            filter,
        } = call;
        let clause = self.clause;
        let Some(agg) = self.agg.as_deref_mut() else {
            return Err(PlanError::new(
                format!("aggregate function {name}(...) is not allowed in {clause}"),
                pos,
            )
            .with_hint(if clause == "WHERE" {
                "filter on aggregates with HAVING".to_string()
            } else {
                "aggregates may appear in SELECT and HAVING, not nested in other aggregates"
                    .to_string()
            }));
        };
        let func = match (func, star, distinct, args.len()) {
            (AggregateFunction::Count, true, false, 0) => AggregateFunction::CountStar,
            (AggregateFunction::Count, false, true, 1) => AggregateFunction::CountDistinct,
            (_, false, false, 1) => func,
            (_, _, true, _) => {
                return Err(PlanError::new(
                    format!("DISTINCT is only supported in COUNT(DISTINCT x), not in {name}"),
                    pos,
                ));
            }
            _ => {
                return Err(
                    PlanError::new(format!("{name} takes exactly one argument"), pos)
                        .with_hint(format!("write {name}(column); COUNT(*) counts rows")),
                );
            }
        };
        // arguments are evaluated on input rows, where aggregates may not nest
        let mut inner = ExprPlanner {
            scope: self.scope,
            agg: None,
            clause: "the argument of an aggregate function",
        };
        let mut arg = args.first().map(|a| inner.plan(a)).transpose()?;
        let mut func = func;
        let mut display = display_call(name, distinct, star, args);
        if let Some(f) = filter {
            // `agg(x) FILTER (WHERE p)` is `agg(CASE WHEN p THEN x END)`:
            // every built-in aggregate skips NULLs, and COUNT(*) counts
            // the rows where `CASE WHEN p THEN 1 END` is not NULL
            inner.clause = "FILTER (WHERE ...)";
            let p = expect_bool(inner.plan(f)?, "FILTER (WHERE ...)", pos)?;
            let value = match arg.take() {
                Some(x) => x,
                None => {
                    func = AggregateFunction::Count;
                    Expr::Literal(crate::plan::expr::Literal::BigInt(1))
                }
            };
            let ty = value.sql_type();
            arg = Some(Expr::Case {
                whens: vec![(p, value)],
                else_expr: None,
                ty,
            });
            display = format!("{display} FILTER (WHERE {f})");
        }
        let arg_type = arg.as_ref().map(Expr::sql_type);
        let ret = func.return_type(arg_type).ok_or_else(|| {
            PlanError::new(
                format!(
                    "{name} cannot be applied to {}",
                    arg_type.map_or("rows".to_string(), |t| t.to_string())
                ),
                pos,
            )
            .with_hint(match func {
                AggregateFunction::Sum
                | AggregateFunction::Avg
                | AggregateFunction::StddevSamp
                | AggregateFunction::VarSamp => {
                    "use a numeric argument (INT, BIGINT, DOUBLE, DECIMAL), or CAST it"
                }
                _ => "check the argument's type",
            })
        })?;
        let call = AggregateCall {
            func,
            arg,
            ret,
            display,
            udaf: None,
        };
        Ok(agg.register(call))
    }
}

impl AggContext {
    /// The output column of `call`, registering it unless the same call
    /// (function and arguments) already is.
    fn register(&mut self, call: AggregateCall) -> Expr {
        let same =
            |c: &AggregateCall| c.func == call.func && c.arg == call.arg && c.udaf == call.udaf;
        let index = match self.calls.iter().position(same) {
            Some(i) => i,
            None => {
                self.calls.push(call);
                self.calls.len() - 1
            }
        };
        let c = &self.calls[index];
        Expr::column(self.first_agg_column + index, c.display.clone(), c.ret)
    }
}

/// Whether a SQL expression calls an aggregate function (outside OVER).
/// Whether `e` calls a built-in aggregate function.
pub(crate) fn contains_aggregate(e: &ast::Expr) -> bool {
    contains_aggregate_with(e, &|_| false)
}

/// Whether `e` calls an aggregate: a built-in one or one `is_udaf` names.
pub(crate) fn contains_aggregate_with(e: &ast::Expr, is_udaf: &dyn Fn(&str) -> bool) -> bool {
    use ast::Expr as E;
    match e {
        E::Function(f) => {
            (f.over.is_none()
                && (AggregateFunction::from_name(&f.name.to_string()).is_some()
                    || is_udaf(&f.name.to_string())))
                || match &f.args {
                    ast::FunctionArguments::List(l) => l.args.iter().any(|a| match a {
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(x)) => {
                            contains_aggregate_with(x, is_udaf)
                        }
                        _ => false,
                    }),
                    _ => false,
                }
        }
        E::BinaryOp { left, right, .. } => {
            contains_aggregate_with(left, is_udaf) || contains_aggregate_with(right, is_udaf)
        }
        E::UnaryOp { expr, .. } | E::Nested(expr) | E::IsNull(expr) | E::IsNotNull(expr) => {
            contains_aggregate_with(expr, is_udaf)
        }
        E::IsTrue(x) | E::IsFalse(x) | E::IsNotTrue(x) | E::IsNotFalse(x) => {
            contains_aggregate_with(x, is_udaf)
        }
        E::Cast { expr, .. }
        | E::Extract { expr, .. }
        | E::Ceil { expr, .. }
        | E::Floor { expr, .. } => contains_aggregate_with(expr, is_udaf),
        E::Between {
            expr, low, high, ..
        } => {
            contains_aggregate_with(expr, is_udaf)
                || contains_aggregate_with(low, is_udaf)
                || contains_aggregate_with(high, is_udaf)
        }
        E::In {
            expr,
            target: ast::InTarget::List(list),
            ..
        } => {
            contains_aggregate_with(expr, is_udaf)
                || list.iter().any(|x| contains_aggregate_with(x, is_udaf))
        }
        E::Like { expr, pattern, .. } | E::ILike { expr, pattern, .. } => {
            contains_aggregate_with(expr, is_udaf) || contains_aggregate_with(pattern, is_udaf)
        }
        E::Substring {
            expr,
            substring_from,
            substring_for,
            ..
        } => {
            contains_aggregate_with(expr, is_udaf)
                || substring_from
                    .as_deref()
                    .is_some_and(|x| contains_aggregate_with(x, is_udaf))
                || substring_for
                    .as_deref()
                    .is_some_and(|x| contains_aggregate_with(x, is_udaf))
        }
        E::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            operand
                .as_deref()
                .is_some_and(|x| contains_aggregate_with(x, is_udaf))
                || conditions.iter().any(|c| {
                    contains_aggregate_with(&c.condition, is_udaf)
                        || contains_aggregate_with(&c.result, is_udaf)
                })
                || else_result
                    .as_deref()
                    .is_some_and(|x| contains_aggregate_with(x, is_udaf))
        }
        _ => false,
    }
}
