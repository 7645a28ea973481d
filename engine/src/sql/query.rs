//! Plans a SELECT into a [`LogicalPlan`]: relation (stream or TUMBLE),
//! WHERE, windowed or global GROUP BY with aggregates, HAVING, projection.

use std::sync::Arc;

use sqlparser::ast::{self, Spanned};

use crate::catalog::StreamDef;
use crate::error::{PlanError, PlanResult, SqlPos};
use crate::plan::expr::Expr;
use crate::plan::logical::{EmitMode, Lateness, LogicalPlan, OP_COLUMN, WindowSpec};
use crate::sql::expr::{AggContext, ExprPlanner, contains_aggregate, contains_aggregate_with};
use crate::sql::parser::{EmitKeyword, QueryStatement, span_pos};
use crate::sql::scope::Scope;
use crate::types::SqlType;

use super::relation::*;

pub(super) fn pos_of(e: &impl Spanned) -> SqlPos {
    span_pos(e.span())
}

/// Looks streams up by name.
pub(crate) trait StreamLookup {
    /// The stream called `name` (case-insensitive).
    fn stream(&self, name: &str) -> Option<Arc<StreamDef>>;
    /// All stream names, for hints.
    fn stream_names(&self) -> Vec<String>;
    /// The registered WebAssembly modules.
    fn udfs(&self) -> Arc<Vec<Arc<crate::udf::UdfModule>>>;
}

/// Plans a query statement.
pub(crate) fn plan_query(
    q: &QueryStatement,
    catalog: &dyn StreamLookup,
) -> PlanResult<LogicalPlan> {
    if let Some(plan) = crate::sql::top_n::plan_top_n(q, catalog)? {
        return Ok(plan);
    }
    let query = &q.query;
    if query.with.is_some() {
        return Err(unsupported("WITH (common table expressions)", q.pos));
    }
    if let Some(o) = &query.order_by {
        return Err(PlanError::new(
            "ORDER BY is not supported on an unbounded stream",
            pos_of(o),
        )
        .with_hint("results are emitted per window in window order; sort downstream if needed"));
    }
    if query.limit_clause.is_some() || query.fetch.is_some() {
        return Err(unsupported("LIMIT / FETCH", q.pos));
    }
    let select = match query.body.as_ref() {
        ast::SetExpr::Select(s) => s,
        ast::SetExpr::Query(_) => return Err(unsupported("a parenthesised subquery", q.pos)),
        other => {
            return Err(PlanError::new(
                format!("unsupported query form: {}", first_word(&other.to_string())),
                q.pos,
            )
            .with_hint("write SELECT ... FROM <stream> ..."));
        }
    };
    let select_pos = pos_of(&select.select_token.0);
    if select.distinct.is_some() {
        return Err(unsupported("SELECT DISTINCT", select_pos).with_hint("use GROUP BY instead"));
    }
    if !select.named_window.is_empty() {
        return Err(unsupported("a named WINDOW", select_pos));
    }
    let rel = relation(select, catalog, select_pos)?;
    let mut scope = Scope {
        udfs: catalog.udfs(),
        ..Scope::default()
    };
    for (i, f) in rel.stream.schema.fields().iter().enumerate() {
        let ty = SqlType::from_arrow(f.data_type()).unwrap_or(SqlType::Varchar);
        scope.push(
            f.name().clone(),
            rel.qualifiers.clone(),
            Expr::column(i, f.name().clone(), ty),
        );
        if rel.stream.is_system_column(f.name()) {
            scope.hide_last();
        }
    }
    let bounds = rel.window.as_ref().and_then(|w| {
        let (start, end) = w.window.kind().row_bounds()?;
        Some((w.time_column, start, end))
    });
    if let Some((tcol, start, end)) = bounds {
        let ts = scope.columns[tcol].expr.clone();
        for (name, func) in [("window_start", start), ("window_end", end)] {
            let e = Expr::Function {
                func,
                args: vec![ts.clone()],
                ty: SqlType::Timestamp,
            };
            scope.push(name, rel.qualifiers.clone(), e.clone());
            scope.push(format!("_{name}"), rel.qualifiers.clone(), e);
        }
    }

    let mut plan = LogicalPlan::Scan {
        stream: rel.stream.clone(),
    };
    if let Some(w) = &select.selection {
        let predicate = ExprPlanner::new(&scope, "WHERE").plan(w)?;
        if !matches!(predicate.sql_type(), SqlType::Boolean | SqlType::Null) {
            return Err(PlanError::new(
                format!(
                    "WHERE needs a BOOLEAN condition, got {}",
                    predicate.sql_type()
                ),
                pos_of(w),
            )
            .with_hint("compare the value, e.g. WHERE price > 0"));
        }
        plan = LogicalPlan::Filter {
            input: Box::new(plan),
            predicate,
        };
    }

    let group_by = match &select.group_by {
        ast::GroupByExpr::Expressions(exprs, mods) if mods.is_empty() => exprs.clone(),
        _ => return Err(unsupported("GROUP BY ALL / ROLLUP / CUBE", select_pos)),
    };
    let window = window_spec(q, &rel)?;
    // the WINDOW clause implies grouping; a window table function alone does not
    let has_agg = !group_by.is_empty()
        || q.window.is_some()
        || select.having.is_some()
        || select.projection.iter().any(|item| match item {
            ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => {
                contains_aggregate_with(e, &|name| {
                    scope
                        .udf(name)
                        .is_some_and(|(_, f)| f.kind == crate::udf::UdfKind::Aggregate)
                })
            }
            _ => false,
        });
    if !has_agg && bounds.is_none() && rel.window.is_some() {
        return Err(PlanError::new(
            format!(
                "a query over {} must aggregate its windows",
                super::relation::aggregate_only_functions()
            ),
            select_pos,
        )
        .with_hint("GROUP BY window_start, window_end (and keys) with aggregate functions"));
    }
    if !has_agg {
        if let Some((_, p)) = q.emit {
            return Err(PlanError::new(
                "EMIT applies to aggregate queries (GROUP BY or aggregate functions)",
                p,
            )
            .with_hint("remove the EMIT clause"));
        }
        let time = rel.stream.watermark.as_ref().and_then(|w| {
            let i = rel.stream.schema.index_of(&w.column).ok()?;
            Some((i, w.column.clone()))
        });
        return match crate::sql::over::plan_row_window(select, plan, &scope, time)? {
            Ok((plan, scope, items)) => {
                let mut rewritten = select.clone();
                rewritten.projection = items;
                Ok(LogicalPlan::Project {
                    exprs: projection(&rewritten, &scope, None)?,
                    input: Box::new(plan),
                })
            }
            Err(plan) => Ok(LogicalPlan::Project {
                exprs: projection(select, &scope, None)?,
                input: Box::new(plan),
            }),
        };
    }
    // a window emits when it closes by default; a global GROUP BY never
    // closes, so it reports changes by default
    let emit = match q.emit {
        Some((EmitKeyword::Final, _)) => EmitMode::Final,
        Some((EmitKeyword::Changes, _)) => EmitMode::Changes,
        None if window.is_some() => EmitMode::Final,
        None => EmitMode::Changes,
    };
    let agg = AggregateShape {
        window,
        emit,
        lateness: lateness(&rel.stream),
    };
    aggregate(select, plan, &scope, &rel, agg, &group_by, select_pos)
}

fn first_word(s: &str) -> String {
    s.split_whitespace().next().unwrap_or("").to_string()
}

pub(super) fn unsupported(what: &str, pos: SqlPos) -> PlanError {
    PlanError::new(format!("{what} is not supported"), pos)
        .with_hint("see docs/sql.md for what Eddy supports")
}

/// The stream's allowed lateness and late-row policy.
fn lateness(stream: &StreamDef) -> Lateness {
    Lateness {
        allowed_ms: stream.event_time.allowed_lateness_ms,
        policy: stream.event_time.late_policy,
    }
}

/// How an aggregate query groups in time and emits.
struct AggregateShape {
    window: Option<WindowSpec>,
    emit: EmitMode,
    lateness: Lateness,
}

fn aggregate(
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
    } = shape;
    let nwin = if window.is_some() { 2 } else { 0 };
    let mut ctx = AggContext::default();
    let mut keys: Vec<(Expr, String)> = Vec::new();
    let mut saw_window_col = false;
    if nwin == 2 {
        for (i, name) in ["window_start", "window_end"].iter().enumerate() {
            let col = Expr::column(i, *name, SqlType::Timestamp);
            ctx.named.push(*name, rel.qualifiers.clone(), col.clone());
            ctx.named
                .push(format!("_{name}"), rel.qualifiers.clone(), col);
        }
    }
    for g in group_by {
        if nwin == 2 && is_window_column(g).is_some() {
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
    let mut exprs = projection(select, scope, Some(&mut ctx))?;
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
                format!("output column '{OP_COLUMN}' is reserved for the EMIT CHANGES changelog"),
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
    let mut plan = LogicalPlan::Aggregate {
        input: Box::new(input),
        window,
        keys,
        aggs: ctx.calls,
        emit,
        lateness,
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

/// Plans the SELECT list of a query without aggregates over `scope`.
pub(crate) fn projection_over(
    select: &ast::Select,
    scope: &Scope,
) -> PlanResult<Vec<(Expr, String)>> {
    projection(select, scope, None)
}

/// Plans the SELECT list; with an aggregate context, over the aggregate's output.
fn projection(
    select: &ast::Select,
    scope: &Scope,
    mut agg: Option<&mut AggContext>,
) -> PlanResult<Vec<(Expr, String)>> {
    let mut out: Vec<(Expr, String, SqlPos)> = Vec::new();
    for item in &select.projection {
        match item {
            ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => {
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
                out.push((planned, name, pos_of(e)));
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
                    !c.hidden && !c.name.starts_with("_window") && !c.name.starts_with("__over_")
                }) {
                    out.push((c.expr.clone(), c.name.clone(), pos_of(item)));
                }
            }
            ast::SelectItem::ExprWithAliases { .. } => {
                return Err(unsupported("multiple aliases", pos_of(item)));
            }
            ast::SelectItem::QualifiedWildcard(..) => {
                return Err(unsupported("qualified wildcards (s.*)", pos_of(item)));
            }
        }
    }
    for (i, (_, name, pos)) in out.iter().enumerate() {
        if out[..i]
            .iter()
            .any(|(_, n, _)| n.eq_ignore_ascii_case(name))
        {
            return Err(
                PlanError::new(format!("output column name '{name}' is used twice"), *pos)
                    .with_hint("give one of them an alias with AS"),
            );
        }
    }
    Ok(out.into_iter().map(|(e, n, _)| (e, n)).collect())
}
