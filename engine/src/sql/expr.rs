//! Turns sqlparser expressions into typed [`Expr`]s: resolves names, checks
//! and coerces types, and (in an aggregate query) maps group keys and
//! aggregate calls onto the aggregate's output columns.

use sqlparser::ast::{self, BinaryOperator, DateTimeField, UnaryOperator, Value};

use crate::agg::AggregateFunction;
use crate::error::{PlanError, PlanResult, SqlPos};
use crate::plan::expr::{BinaryOp, Expr, Literal, ScalarFunc};
use crate::sql::literal::{interval_ms, parse_timestamp_literal};
use crate::sql::scope::Scope;
use crate::types::SqlType;

pub(crate) use super::expr_aggregate::{AggContext, contains_aggregate, contains_aggregate_with};
use super::functions::*;
use super::typing::*;

/// [`crate::sql::parser::pos_of`] for an expression (also reached through a `Box`).
fn pos_of(e: &ast::Expr) -> SqlPos {
    crate::sql::parser::pos_of(e)
}

/// Plans expressions against `scope` (row mode) or, with an [`AggContext`],
/// over an aggregate's output.
pub(crate) struct ExprPlanner<'a> {
    pub scope: &'a Scope,
    pub agg: Option<&'a mut AggContext>,
    /// What the expression is part of, for "not allowed in ..." messages.
    pub clause: &'static str,
}

fn key_text(e: &ast::Expr) -> String {
    e.to_string().to_ascii_lowercase()
}

impl<'a> ExprPlanner<'a> {
    /// Row-mode planner over `scope`.
    pub fn new(scope: &'a Scope, clause: &'static str) -> Self {
        Self {
            scope,
            agg: None,
            clause,
        }
    }

    /// Plans `e`.
    pub fn plan(&mut self, e: &ast::Expr) -> PlanResult<Expr> {
        let pos = pos_of(e);
        self.plan_inner(e).map_err(|err| err.or_at(pos))
    }

    fn plan_inner(&mut self, e: &ast::Expr) -> PlanResult<Expr> {
        let pos = pos_of(e);
        if let Some(agg) = self.agg.as_deref() {
            let text = key_text(e);
            if let Some((_, col)) = agg.keys.iter().find(|(k, _)| *k == text) {
                return Ok(col.clone());
            }
        }
        match e {
            ast::Expr::Identifier(id) => self.resolve(None, &id.value, pos),
            ast::Expr::CompoundIdentifier(parts) => match parts.as_slice() {
                [q, c] => self.resolve(Some(&q.value), &c.value, pos),
                _ => Err(
                    PlanError::new(format!("unsupported column reference '{e}'"), pos)
                        .with_hint("write column or stream.column"),
                ),
            },
            ast::Expr::Value(v) => literal(&v.value, pos),
            ast::Expr::Nested(inner) => self.plan(inner),
            ast::Expr::UnaryOp { op, expr } => {
                // the smallest BIGINT is written as minus a number one past the largest
                if let (UnaryOperator::Minus, ast::Expr::Value(v)) = (op, expr.as_ref())
                    && matches!(&v.value, Value::Number(n, _) if n == "9223372036854775808")
                {
                    return Ok(Expr::Literal(Literal::BigInt(i64::MIN)));
                }
                let inner = self.plan(expr)?;
                match op {
                    UnaryOperator::Not => Ok(Expr::Not(Box::new(expect_bool(inner, "NOT", pos)?))),
                    UnaryOperator::Plus if inner.sql_type().is_numeric() => Ok(inner),
                    UnaryOperator::Minus => negate(inner, pos),
                    _ => Err(PlanError::new(
                        format!("operator {op} is not supported on {}", inner.sql_type()),
                        pos,
                    )),
                }
            }
            ast::Expr::BinaryOp { left, op, right } => {
                let l = self.plan(left)?;
                let r = self.plan(right)?;
                binary(op, l, r, pos)
            }
            ast::Expr::IsNull(x) | ast::Expr::IsNotNull(x) => Ok(Expr::IsNull {
                expr: Box::new(self.plan(x)?),
                negated: matches!(e, ast::Expr::IsNotNull(_)),
            }),
            ast::Expr::IsTrue(x)
            | ast::Expr::IsFalse(x)
            | ast::Expr::IsNotTrue(x)
            | ast::Expr::IsNotFalse(x) => {
                let v = expect_bool(self.plan(x)?, "IS TRUE/FALSE", pos)?;
                let want = matches!(e, ast::Expr::IsTrue(_) | ast::Expr::IsNotTrue(_));
                let test = Expr::Binary {
                    op: BinaryOp::Eq,
                    left: Box::new(v.clone()),
                    right: Box::new(Expr::Literal(Literal::Boolean(want))),
                    ty: SqlType::Boolean,
                };
                // x IS TRUE = (x IS NOT NULL AND x = TRUE), never NULL
                let is = Expr::Case {
                    whens: vec![(
                        Expr::IsNull {
                            expr: Box::new(v),
                            negated: false,
                        },
                        lit_bool(false),
                    )],
                    else_expr: Some(Box::new(test)),
                    ty: SqlType::Boolean,
                };
                Ok(
                    if matches!(e, ast::Expr::IsNotTrue(_) | ast::Expr::IsNotFalse(_)) {
                        Expr::Not(Box::new(is))
                    } else {
                        is
                    },
                )
            }
            ast::Expr::In {
                expr,
                target,
                negated,
                ..
            } => {
                let ast::InTarget::List(list) = target else {
                    return Err(PlanError::new("IN with a subquery is not supported", pos)
                        .with_hint("list the values: x IN (1, 2, 3)"));
                };
                let operand = self.plan(expr)?;
                let items = list
                    .iter()
                    .map(|i| self.plan(i))
                    .collect::<PlanResult<Vec<_>>>()?;
                let mut ty = operand.sql_type();
                for (item, ast_item) in items.iter().zip(list) {
                    ty = common_or_err(ty, item, "IN", pos_of(ast_item))?;
                }
                Ok(Expr::InList {
                    expr: Box::new(coerce(operand, ty)),
                    list: items.into_iter().map(|i| coerce(i, ty)).collect(),
                    negated: *negated,
                })
            }
            ast::Expr::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let (x, lo, hi) = (self.plan(expr)?, self.plan(low)?, self.plan(high)?);
                let ty = common_or_err(x.sql_type(), &lo, "BETWEEN", pos_of(low))?;
                let ty = common_or_err(ty, &hi, "BETWEEN", pos_of(high))?;
                Ok(Expr::Between {
                    expr: Box::new(coerce(x, ty)),
                    low: Box::new(coerce(lo, ty)),
                    high: Box::new(coerce(hi, ty)),
                    negated: *negated,
                })
            }
            ast::Expr::Like {
                negated,
                any,
                expr,
                pattern,
                escape_char,
            }
            | ast::Expr::ILike {
                negated,
                any,
                expr,
                pattern,
                escape_char,
            } => {
                if *any || escape_char.is_some() {
                    return Err(PlanError::new(
                        "LIKE ANY and LIKE ... ESCAPE are not supported",
                        pos,
                    )
                    .with_hint("use '\\' to escape % and _ in the pattern"));
                }
                let x = expect_type(self.plan(expr)?, SqlType::Varchar, "LIKE", pos_of(expr))?;
                let p = expect_type(
                    self.plan(pattern)?,
                    SqlType::Varchar,
                    "LIKE",
                    pos_of(pattern),
                )?;
                Ok(Expr::Like {
                    expr: Box::new(x),
                    pattern: Box::new(p),
                    negated: *negated,
                    case_insensitive: matches!(e, ast::Expr::ILike { .. }),
                })
            }
            ast::Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => self.case(operand.as_deref(), conditions, else_result.as_deref()),
            ast::Expr::Cast {
                kind,
                expr,
                data_type,
                format,
            } => {
                if format.is_some()
                    || !matches!(
                        kind,
                        ast::CastKind::Cast | ast::CastKind::TryCast | ast::CastKind::DoubleColon
                    )
                {
                    return Err(PlanError::new("this form of CAST is not supported", pos)
                        .with_hint("write CAST(x AS type)"));
                }
                let ty =
                    SqlType::from_sql(data_type).ok_or_else(|| unsupported_type(data_type, pos))?;
                let x = self.plan(expr)?;
                Ok(fold_cast(x, ty))
            }
            ast::Expr::Extract { field, expr, .. } => {
                let f = time_field(field, pos)?;
                let ts = expect_type(
                    self.plan(expr)?,
                    SqlType::Timestamp,
                    "EXTRACT",
                    pos_of(expr),
                )?;
                Ok(Expr::Function {
                    func: ScalarFunc::Extract(f),
                    args: vec![ts],
                    ty: SqlType::BigInt,
                })
            }
            ast::Expr::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let mut args = vec![expect_type(
                    self.plan(expr)?,
                    SqlType::Varchar,
                    "SUBSTRING",
                    pos_of(expr),
                )?];
                let from = match substring_from {
                    Some(f) => self.plan(f)?,
                    None => Expr::Literal(Literal::BigInt(1)),
                };
                args.push(expect_integer(from, "SUBSTRING", pos)?);
                if let Some(n) = substring_for {
                    args.push(expect_integer(self.plan(n)?, "SUBSTRING", pos_of(n))?);
                }
                Ok(Expr::Function {
                    func: ScalarFunc::Substring,
                    args,
                    ty: SqlType::Varchar,
                })
            }
            ast::Expr::Ceil { expr, field } | ast::Expr::Floor { expr, field } => {
                if !matches!(
                    field,
                    ast::CeilFloorKind::DateTimeField(DateTimeField::NoDateTime)
                ) {
                    return Err(PlanError::new("CEIL/FLOOR take a single number", pos));
                }
                let func = if matches!(e, ast::Expr::Ceil { .. }) {
                    ScalarFunc::Ceil
                } else {
                    ScalarFunc::Floor
                };
                let x = expect_numeric(self.plan(expr)?, &func.name(), pos)?;
                let ty = match x.sql_type() {
                    SqlType::Decimal(p, s) => {
                        let (p, s) = crate::types::decimal::round_type((p, s), 0);
                        SqlType::Decimal(p, s)
                    }
                    t => t,
                };
                Ok(Expr::Function {
                    func,
                    args: vec![x],
                    ty,
                })
            }
            ast::Expr::Interval(iv) => Ok(Expr::Literal(Literal::Interval(interval_ms(iv, pos)?))),
            ast::Expr::TypedString(ts) => {
                let ty = SqlType::from_sql(&ts.data_type);
                match (ty, &ts.value.value) {
                    (Some(SqlType::Timestamp), Value::SingleQuotedString(s)) => Ok(Expr::Literal(
                        Literal::Timestamp(parse_timestamp_literal(s, pos)?),
                    )),
                    _ => Err(PlanError::new(format!("unsupported literal {e}"), pos)
                        .with_hint("write TIMESTAMP '2026-01-01 00:00:00' or CAST('...' AS type)")),
                }
            }
            ast::Expr::Position { expr, r#in } => {
                let args = vec![self.plan(r#in)?, self.plan(expr)?];
                scalar_function("strpos", args, pos)
            }
            ast::Expr::Trim {
                trim_where,
                trim_what,
                expr,
                trim_characters,
            } => {
                let name = match trim_where {
                    Some(ast::TrimWhereField::Leading) => "ltrim",
                    Some(ast::TrimWhereField::Trailing) => "rtrim",
                    _ => "btrim",
                };
                let mut args = vec![self.plan(expr)?];
                let chars = trim_what
                    .as_deref()
                    .or(trim_characters.as_ref().and_then(|c| c.first()));
                if let Some(c) = chars {
                    args.push(self.plan(c)?);
                }
                scalar_function(name, args, pos)
            }
            ast::Expr::Function(f) => self.function(f, pos),
            other => Err(
                PlanError::new(format!("unsupported expression: {other}"), pos)
                    .with_hint("see docs/sql.md for the expressions Eddy supports"),
            ),
        }
    }

    fn resolve(&mut self, qualifier: Option<&str>, name: &str, pos: SqlPos) -> PlanResult<Expr> {
        if let Some(agg) = self.agg.as_deref() {
            if let Ok(e) = agg.named.resolve(qualifier, name, pos) {
                return Ok(e);
            }
            // the column exists in the input but is neither a key nor aggregated
            return match self.scope.resolve(qualifier, name, pos) {
                Ok(_) => Err(PlanError::new(
                    format!("column '{name}' must appear in GROUP BY or be used in an aggregate function"),
                    pos,
                )
                .with_hint(format!("add '{name}' to GROUP BY, or aggregate it, e.g. MAX({name})"))),
                Err(e) => Err(e),
            };
        }
        self.scope.resolve(qualifier, name, pos)
    }

    fn case(
        &mut self,
        operand: Option<&ast::Expr>,
        conditions: &[ast::CaseWhen],
        else_result: Option<&ast::Expr>,
    ) -> PlanResult<Expr> {
        let operand = operand.map(|o| self.plan(o)).transpose()?;
        let mut whens = Vec::new();
        for cw in conditions {
            let cond = self.plan(&cw.condition)?;
            let cond = match &operand {
                Some(op) => binary(&BinaryOperator::Eq, op.clone(), cond, pos_of(&cw.condition))?,
                None => expect_bool(cond, "CASE WHEN", pos_of(&cw.condition))?,
            };
            whens.push((cond, self.plan(&cw.result)?));
        }
        let else_expr = else_result.map(|e| self.plan(e)).transpose()?;
        let mut ty = SqlType::Null;
        for (ast_w, (_, v)) in conditions.iter().zip(&whens) {
            ty = common_or_err(ty, v, "CASE", pos_of(&ast_w.result))?;
        }
        if let (Some(e), Some(ast_e)) = (&else_expr, else_result) {
            ty = common_or_err(ty, e, "CASE", pos_of(ast_e))?;
        }
        Ok(Expr::Case {
            whens: whens.into_iter().map(|(c, v)| (c, coerce(v, ty))).collect(),
            else_expr: else_expr.map(|e| Box::new(coerce(e, ty))),
            ty,
        })
    }

    fn function(&mut self, f: &ast::Function, pos: SqlPos) -> PlanResult<Expr> {
        let name = f.name.to_string().to_ascii_lowercase();
        // keywords written without parentheses (USER, CURRENT_DATE, ...) that
        // name a column are that column
        if matches!(f.args, ast::FunctionArguments::None) && f.name.0.len() == 1 {
            return self.resolve(None, &f.name.to_string(), pos);
        }
        if f.over.is_some() {
            return Err(PlanError::new(
                format!("{name}(...) OVER (...) is supported only as a whole SELECT item of a query without GROUP BY"),
                pos,
            )
            .with_hint("e.g. SELECT auction, AVG(price) OVER (PARTITION BY auction ORDER BY date_time ROWS BETWEEN 10 PRECEDING AND CURRENT ROW) AS avg10 FROM bids"));
        }
        if !f.within_group.is_empty() || f.null_treatment.is_some() {
            return Err(PlanError::new(
                format!("WITHIN GROUP / null treatment in {name}(...) is not supported"),
                pos,
            ));
        }
        let filter = f.filter.as_deref();
        if filter.is_some() && AggregateFunction::from_name(&name).is_none() {
            let udaf = self
                .scope
                .udf(&name)
                .is_some_and(|(_, s)| s.kind == crate::udf::UdfKind::Aggregate);
            let e = PlanError::new(
                format!(
                    "FILTER (WHERE ...) applies to the built-in aggregates, not to {name}(...)"
                ),
                pos,
            );
            return Err(if udaf {
                e.with_hint(format!(
                    "put the condition inside the call: {name}(CASE WHEN <condition> THEN <value> END)"
                ))
            } else {
                e.with_hint("filter the rows with WHERE")
            });
        }
        let (distinct, args, star) = match &f.args {
            ast::FunctionArguments::None => (false, vec![], false),
            ast::FunctionArguments::Subquery(_) => {
                return Err(PlanError::new("subqueries are not supported", pos));
            }
            ast::FunctionArguments::List(list) => {
                if !list.clauses.is_empty() {
                    return Err(PlanError::new(
                        format!("clauses inside {name}(...) are not supported"),
                        pos,
                    ));
                }
                let distinct = matches!(
                    list.duplicate_treatment,
                    Some(ast::DuplicateTreatment::Distinct)
                );
                let mut args = Vec::new();
                let mut star = false;
                for a in &list.args {
                    match a {
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(x)) => args.push(x),
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard) => star = true,
                        _ => {
                            return Err(PlanError::new(
                                format!("unsupported argument in {name}(...)"),
                                pos,
                            ));
                        }
                    }
                }
                (distinct, args, star)
            }
        };
        if let Some(func) = AggregateFunction::from_name(&name) {
            let call = super::expr_aggregate::Call {
                name: &name,
                distinct,
                star,
                args: &args,
                filter,
            };
            return self.aggregate(func, call, pos);
        }
        if distinct || star {
            return Err(PlanError::new(
                format!("{name}(...) is not an aggregate function; DISTINCT and * are not allowed"),
                pos,
            ));
        }
        let udf = self.scope.udf(&name);
        if let Some((module, signature)) = &udf
            && signature.kind == crate::udf::UdfKind::Aggregate
        {
            return self.udaf(module.clone(), signature.clone(), &args, pos);
        }
        if udf.is_none() && !is_builtin_scalar(&name) {
            // before its arguments: they may not plan here (a column outside
            // GROUP BY is fine inside the aggregate that was meant)
            return Err(unknown_function(&name, &self.scope.udf_names(), pos));
        }
        let planned = args
            .iter()
            .map(|a| self.plan(a))
            .collect::<PlanResult<Vec<_>>>()?;
        if let Some((module, signature)) = udf {
            return udf_call(module, signature, planned, pos);
        }
        scalar_function(&name, planned, pos)
    }
}
