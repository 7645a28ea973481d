//! The aggregate part of a SELECT: GROUP BY keys (with the window bounds),
//! aggregate calls, HAVING, and the SELECT list over the aggregate's output.

use sqlparser::ast;

use crate::catalog::StreamDef;
use crate::error::{PlanError, PlanResult, SqlPos};
use crate::plan::expr::Expr;
use crate::plan::logical::{EmitMode, Lateness, LogicalPlan, OP_COLUMN, WindowSpec};
use crate::sql::expr::{AggContext, ExprPlanner, contains_aggregate};
use crate::sql::scope::Scope;
use crate::types::SqlType;

use super::query::{Planner, unsupported};
use super::relation::{Relation, is_window_column};
use crate::sql::parser::pos_of;

/// The stream's allowed lateness and late-row policy.
pub(super) fn lateness(stream: &StreamDef) -> Lateness {
    Lateness {
        allowed_ms: stream.event_time.allowed_lateness_ms,
        policy: stream.event_time.late_policy,
    }
}

/// How an aggregate query groups in time and emits.
pub(super) struct AggregateShape {
    pub(super) window: Option<WindowSpec>,
    pub(super) emit: EmitMode,
    pub(super) lateness: Lateness,
    /// For window results grouped by their window end (see
    /// [`by_window_end`]): that column's name, which stands for the
    /// window's end; the other window column is not there.
    pub(super) ended: Option<String>,
}

/// Window results (rows a windowed aggregate gave, with their window's end
/// in column `end`) grouped by their window end, as Nexmark q5's MaxBids:
/// a tumbling window of 1 ms over `end − 1 ms`, so each window end is a
/// window of its own, which closes when the watermark passes it — when the
/// windows that gave the rows have all given them. Returns the input with
/// that time column added last, and the window.
pub(super) fn by_window_end(
    input: LogicalPlan,
    end: usize,
    name: &str,
) -> (LogicalPlan, WindowSpec) {
    let schema = input.schema();
    let mut exprs: Vec<(Expr, String)> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let ty = SqlType::from_arrow(f.data_type()).unwrap_or(SqlType::Varchar);
            (Expr::column(i, f.name().clone(), ty), f.name().clone())
        })
        .collect();
    let time = Expr::Binary {
        op: crate::plan::expr::BinaryOp::Minus,
        left: Box::new(Expr::column(end, name, SqlType::Timestamp)),
        right: Box::new(Expr::Literal(crate::plan::expr::Literal::Interval(1))),
        ty: SqlType::Timestamp,
    };
    let time_column = exprs.len();
    exprs.push((time, format!("__{name}_window")));
    let spec = WindowSpec {
        time_column,
        time_name: format!("{name} - 1 ms (window results by their end)"),
        window: crate::exec::window::Window::Tumble(crate::exec::window::tumble::Tumble {
            size_ms: 1,
        }),
    };
    (
        LogicalPlan::Project {
            input: Box::new(input),
            exprs,
        },
        spec,
    )
}

impl Planner<'_> {
    /// Plans GROUP BY, the aggregate calls and HAVING onto an `Aggregate`
    /// node, and the SELECT list over its output.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn aggregate(
        &self,
        select: &ast::Select,
        input: LogicalPlan,
        scope: &Scope,
        rel: &Relation,
        shape: AggregateShape,
        group_by: &[ast::Expr],
        select_pos: SqlPos,
    ) -> PlanResult<LogicalPlan> {
        let AggregateShape {
            window,
            emit,
            lateness,
            ended,
        } = shape;
        let nwin = if window.is_some() { 2 } else { 0 };
        let mut ctx = AggContext::default();
        let mut keys: Vec<(Expr, String)> = Vec::new();
        let mut saw_window_col = false;
        match &ended {
            Some(end) => {
                let col = Expr::column(1, end.clone(), SqlType::Timestamp);
                ctx.named.push(end.clone(), rel.qualifiers.clone(), col);
            }
            None if nwin == 2 => {
                for (i, name) in ["window_start", "window_end"].iter().enumerate() {
                    let col = Expr::column(i, *name, SqlType::Timestamp);
                    ctx.named.push(*name, rel.qualifiers.clone(), col.clone());
                    ctx.named
                        .push(format!("_{name}"), rel.qualifiers.clone(), col);
                }
            }
            None => {}
        }
        let is_end = |g: &ast::Expr| {
            ended.as_ref().is_some_and(|end| match g {
                ast::Expr::Identifier(i) => i.value.eq_ignore_ascii_case(end),
                ast::Expr::CompoundIdentifier(p) => {
                    p.last().is_some_and(|i| i.value.eq_ignore_ascii_case(end))
                }
                _ => false,
            })
        };
        for g in group_by {
            if is_end(g) || (ended.is_none() && nwin == 2 && is_window_column(g).is_some()) {
                saw_window_col = true;
                continue;
            }
            if contains_aggregate(g) {
                return Err(PlanError::new(
                    "aggregate functions are not allowed in GROUP BY",
                    pos_of(g),
                ));
            }
            let e = ExprPlanner::new(scope, "GROUP BY").plan(g)?;
            let name = match g {
                ast::Expr::Identifier(i) => i.value.clone(),
                ast::Expr::CompoundIdentifier(p) => {
                    p.last().map(|i| i.value.clone()).unwrap_or_default()
                }
                other => other.to_string(),
            };
            let col = Expr::column(nwin + keys.len(), name.clone(), e.sql_type());
            ctx.keys
                .push((g.to_string().to_ascii_lowercase(), col.clone()));
            if matches!(
                g,
                ast::Expr::Identifier(_) | ast::Expr::CompoundIdentifier(_)
            ) {
                ctx.named.push(name.clone(), rel.qualifiers.clone(), col);
            }
            keys.push((e, name));
        }
        if rel.window.is_some() && !saw_window_col {
            let pos = group_by.first().map(pos_of).unwrap_or(select_pos);
            return Err(PlanError::new(
                "a GROUP BY over a window table function must include window_start and window_end",
                pos,
            )
            .with_hint("write GROUP BY window_start, window_end, <keys>"));
        }
        ctx.first_agg_column = nwin + keys.len();
        let mut exprs = self.projection(select, scope, Some(&mut ctx))?;
        let having = match &select.having {
            Some(h) => {
                let mut p = ExprPlanner {
                    scope,
                    agg: Some(&mut ctx),
                    clause: "HAVING",
                };
                let e = p.plan(h)?;
                if !matches!(e.sql_type(), SqlType::Boolean | SqlType::Null) {
                    return Err(PlanError::new(
                        format!("HAVING needs a BOOLEAN condition, got {}", e.sql_type()),
                        pos_of(h),
                    ));
                }
                Some(e)
            }
            None => None,
        };
        if emit == EmitMode::Changes {
            if exprs.iter().any(|(_, n)| n.eq_ignore_ascii_case(OP_COLUMN)) {
                return Err(PlanError::new(
                    format!(
                        "output column '{OP_COLUMN}' is reserved for the EMIT CHANGES changelog"
                    ),
                    select_pos,
                )
                .with_hint("give that column another alias"));
            }
            let op = Expr::column(
                nwin + keys.len() + ctx.calls.len(),
                OP_COLUMN,
                SqlType::Varchar,
            );
            exprs.insert(0, (op, OP_COLUMN.to_string()));
        }
        let mut plan = if input.is_updating() && window.is_none() {
            let agg = super::retract::Retracting {
                keys,
                aggs: ctx.calls,
                emit,
                lateness,
                ttl: self.idle_ttl(&input),
            };
            super::retract::plan(input, agg, select_pos)?
        } else {
            // a final result (at the end of input) must keep every group
            let ttl = (window.is_none() && emit == EmitMode::Changes)
                .then(|| self.idle_ttl(&input))
                .flatten();
            LogicalPlan::Aggregate {
                input: Box::new(input),
                window,
                keys,
                aggs: ctx.calls,
                emit,
                lateness,
                ttl,
            }
        };
        if let Some(predicate) = having {
            plan = LogicalPlan::Filter {
                input: Box::new(plan),
                predicate,
            };
        }
        Ok(LogicalPlan::Project {
            input: Box::new(plan),
            exprs,
        })
    }

    /// Plans the SELECT list; with an aggregate context, over the aggregate's output.
    pub(super) fn projection(
        &self,
        select: &ast::Select,
        scope: &Scope,
        mut agg: Option<&mut AggContext>,
    ) -> PlanResult<Vec<(Expr, String)>> {
        // (expression, name, position, named by an alias)
        let mut out: Vec<(Expr, String, SqlPos, bool)> = Vec::new();
        for item in &select.projection {
            match item {
                ast::SelectItem::UnnamedExpr(e)
                | ast::SelectItem::ExprWithAlias { expr: e, .. } => {
                    let mut p = ExprPlanner {
                        scope,
                        agg: agg.as_deref_mut(),
                        clause: "SELECT",
                    };
                    let planned = p.plan(e)?;
                    let name = match item {
                        ast::SelectItem::ExprWithAlias { alias, .. } => alias.value.clone(),
                        _ => match e {
                            ast::Expr::Identifier(i) => i.value.clone(),
                            ast::Expr::CompoundIdentifier(p) => {
                                p.last().map(|i| i.value.clone()).unwrap_or_default()
                            }
                            other => other.to_string(),
                        },
                    };
                    let aliased = matches!(item, ast::SelectItem::ExprWithAlias { .. });
                    out.push((planned, name, pos_of(e), aliased));
                }
                ast::SelectItem::Wildcard(_) => {
                    if agg.is_some() {
                        return Err(PlanError::new(
                            "SELECT * cannot be used with GROUP BY or aggregates",
                            pos_of(item),
                        )
                        .with_hint("list the group keys and aggregates you want"));
                    }
                    for c in scope.columns.iter().filter(|c| {
                        !c.hidden
                            && !c.name.starts_with("_window")
                            && !c.name.starts_with("__over_")
                    }) {
                        out.push((c.expr.clone(), c.name.clone(), pos_of(item), false));
                    }
                }
                ast::SelectItem::ExprWithAliases { .. } => {
                    return Err(unsupported("multiple aliases", pos_of(item)));
                }
                ast::SelectItem::QualifiedWildcard(kind, _) => {
                    let q = match kind {
                        ast::SelectItemQualifiedWildcardKind::ObjectName(n) => {
                            crate::sql::scope::object_name(n)
                        }
                        _ => return Err(unsupported("this wildcard", pos_of(item))),
                    };
                    if agg.is_some() {
                        return Err(PlanError::new(
                            format!("SELECT {q}.* cannot be used with GROUP BY or aggregates"),
                            pos_of(item),
                        ));
                    }
                    let before = out.len();
                    for c in scope.columns.iter().filter(|c| {
                        !c.hidden && c.qualifiers.iter().any(|cq| cq.eq_ignore_ascii_case(&q))
                    }) {
                        out.push((c.expr.clone(), c.name.clone(), pos_of(item), false));
                    }
                    if out.len() == before {
                        return Err(PlanError::new(
                            format!("no stream or alias '{q}' in FROM"),
                            pos_of(item),
                        ));
                    }
                }
            }
        }
        // a name that comes twice without an alias gets a number, as in
        // Flink (`date_time`, `date_time0`): a join's columns often share names
        let mut names: Vec<String> = Vec::with_capacity(out.len());
        for (i, (_, name, pos, aliased)) in out.iter().enumerate() {
            let taken = |n: &str, names: &[String]| names.iter().any(|m| m.eq_ignore_ascii_case(n));
            if !taken(name, &names) {
                names.push(name.clone());
                continue;
            }
            let clash_is_aliased = *aliased
                || out[..i]
                    .iter()
                    .any(|(_, n, _, a)| *a && n.eq_ignore_ascii_case(name));
            if clash_is_aliased {
                return Err(PlanError::new(
                    format!("output column name '{name}' is used twice"),
                    *pos,
                )
                .with_hint("give one of them another alias with AS"));
            }
            let renamed = (0..)
                .map(|k| format!("{name}{k}"))
                .find(|n| {
                    !taken(n, &names) && !out.iter().any(|(_, m, _, _)| m.eq_ignore_ascii_case(n))
                })
                .unwrap_or_else(|| name.clone());
            names.push(renamed);
        }
        Ok(out
            .into_iter()
            .zip(names)
            .map(|((e, _, _, _), n)| (e, n))
            .collect())
    }
}
