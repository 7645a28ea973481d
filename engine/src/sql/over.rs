//! Plans row windows: aggregates `OVER (PARTITION BY ... ORDER BY time
//! ROWS|RANGE BETWEEN ... PRECEDING AND CURRENT ROW)` written as whole
//! SELECT items of a query without GROUP BY. Every such call must use the
//! same window; they become a `RowWindow` node whose extra output columns the
//! SELECT list then reads.

use sqlparser::ast;

use crate::error::{PlanError, PlanResult, SqlPos};
use crate::plan::expr::Expr;
use crate::plan::logical::{Frame, Lateness, LogicalPlan};
use crate::sql::expr::{AggContext, ExprPlanner};
use crate::sql::literal::interval_ms;
use crate::sql::parser::pos_of;
use crate::sql::query::Planner;
use crate::sql::scope::Scope;

/// A plan with or without a row window.
pub(crate) enum Over {
    /// The SELECT list has no OVER call: the input unchanged.
    None(LogicalPlan),
    /// The plan with its row window, the scope extended with the calls'
    /// columns, and the SELECT list reading them.
    Windowed {
        plan: LogicalPlan,
        scope: Scope,
        items: Vec<ast::SelectItem>,
    },
}

/// The OVER calls of a SELECT list, planned onto a `RowWindow` over `input`;
/// returns the new plan, the scope extended with the calls' columns, and
/// the SELECT list with each call replaced by a reference to its column.
///
/// # Errors
/// An OVER clause Eddy does not run, with what to write instead.
impl Planner<'_> {
    /// Plans the OVER calls of a SELECT list (see [`Over`]).
    pub(crate) fn row_window(
        &self,
        select: &ast::Select,
        input: LogicalPlan,
        scope: &Scope,
        time_column: Option<(usize, String)>,
    ) -> PlanResult<Over> {
        let mut spec: Option<(ast::WindowSpec, SqlPos)> = None;
        let mut calls: Vec<(usize, ast::Function, SqlPos)> = Vec::new();
        for (i, item) in select.projection.iter().enumerate() {
            let e = match item {
                ast::SelectItem::UnnamedExpr(e)
                | ast::SelectItem::ExprWithAlias { expr: e, .. } => e,
                _ => continue,
            };
            let ast::Expr::Function(f) = e else { continue };
            let Some(over) = &f.over else { continue };
            let pos = pos_of(e);
            let ast::WindowType::WindowSpec(s) = over else {
                return Err(PlanError::new("named windows are not supported", pos));
            };
            match &spec {
                None => spec = Some((s.clone(), pos)),
                Some((first, _)) if first.to_string() == s.to_string() => {}
                Some(_) => {
                    return Err(PlanError::new(
                        "every OVER (...) of a query must use the same window",
                        pos,
                    )
                    .with_hint("write the same PARTITION BY, ORDER BY and frame in each"));
                }
            }
            calls.push((i, f.clone(), pos));
        }
        let Some((spec, pos)) = spec else {
            return Ok(Over::None(input));
        };
        let Some((time_column, time_name)) = time_column else {
            return Err(PlanError::new(
                "the stream has no watermark, so OVER (ORDER BY ...) has no event time",
                pos,
            )
            .with_hint("declare one: WATERMARK FOR ts AS ts - INTERVAL '5' SECOND"));
        };
        check_order(&spec, &time_name, pos)?;
        let frame = frame(&spec, pos)?;
        let partition = spec
            .partition_by
            .iter()
            .map(|p| {
                let e = ExprPlanner::new(scope, "PARTITION BY").plan(p)?;
                Ok((e, p.to_string()))
            })
            .collect::<PlanResult<Vec<(Expr, String)>>>()?;
        let ninput = input.schema().fields().len();
        let mut ctx = AggContext {
            first_agg_column: ninput,
            ..AggContext::default()
        };
        let mut columns = Vec::new();
        for (_, f, pos) in &calls {
            let mut plain = f.clone();
            plain.over = None;
            let mut p = ExprPlanner {
                scope,
                agg: Some(&mut ctx),
                clause: "OVER",
            };
            let planned = p.plan(&ast::Expr::Function(plain))?;
            if let Some(c) = ctx.calls.last()
                && c.func == crate::agg::AggregateFunction::CountDistinct
            {
                return Err(PlanError::new(
                    "COUNT(DISTINCT ...) OVER (...) is not supported",
                    *pos,
                ));
            }
            columns.push(planned);
        }
        for c in &ctx.calls {
            if c.udaf.is_some() {
                // slid or recomputed per frame (agg/wasm_frames.rs): any argument types
                continue;
            }
            if let Some(a) = c
                .arg
                .as_ref()
                .filter(|a| matches!(a.sql_type(), crate::types::SqlType::Decimal(..)))
            {
                return Err(PlanError::new(
                    format!(
                        "{} OVER (...) does not take a DECIMAL ({}) yet",
                        c.display,
                        a.sql_type()
                    ),
                    pos,
                )
                .with_hint(
                    "CAST the argument to DOUBLE, or aggregate over TUMBLE/HOP/SESSION windows, which sum DECIMALs exactly",
                ));
            }
            if c.arg.as_ref().is_some_and(|a| {
                !matches!(
                    a.sql_type(),
                    crate::types::SqlType::Int
                        | crate::types::SqlType::BigInt
                        | crate::types::SqlType::Double
                        | crate::types::SqlType::Timestamp
                        | crate::types::SqlType::Null
                )
            }) {
                return Err(PlanError::new(
                    format!(
                        "{} OVER (...) needs a numeric or TIMESTAMP argument",
                        c.display
                    ),
                    pos,
                ));
            }
            if matches!(
                c.func,
                crate::agg::AggregateFunction::StddevSamp | crate::agg::AggregateFunction::VarSamp
            ) {
                return Err(PlanError::new(
                    format!(
                        "{} OVER (...) is not supported; use COUNT, SUM, AVG, MIN or MAX",
                        c.display
                    ),
                    pos,
                ));
            }
        }
        let o = input.source().event_time.clone();
        let plan = LogicalPlan::RowWindow {
            input: Box::new(input),
            partition,
            time_column,
            time_name,
            frame,
            calls: ctx.calls,
            lateness: Lateness {
                allowed_ms: o.allowed_lateness_ms,
                policy: o.late_policy,
            },
        };
        // each call's item now reads its column, by a name only the planner uses
        let mut scope = scope.clone();
        let mut items = select.projection.clone();
        for (k, ((i, f, _), column)) in calls.iter().zip(columns).enumerate() {
            let name = format!("__over_{k}");
            scope.push(name.clone(), vec![], column);
            let reference = ast::Expr::Identifier(ast::Ident::new(name));
            items[*i] = match &items[*i] {
                ast::SelectItem::ExprWithAlias { alias, .. } => ast::SelectItem::ExprWithAlias {
                    expr: reference,
                    alias: alias.clone(),
                },
                // unaliased: named by its SQL text, as any expression
                _ => ast::SelectItem::ExprWithAlias {
                    expr: reference,
                    alias: ast::Ident::new(ast::Expr::Function(f.clone()).to_string()),
                },
            };
        }
        Ok(Over::Windowed { plan, scope, items })
    }
}

/// ORDER BY must be the event-time column, ascending.
fn check_order(spec: &ast::WindowSpec, time_name: &str, pos: SqlPos) -> PlanResult<()> {
    let ok = match spec.order_by.as_slice() {
        [o] => {
            let name = match &o.expr {
                ast::Expr::Identifier(i) => Some(&i.value),
                ast::Expr::CompoundIdentifier(p) => p.last().map(|i| &i.value),
                _ => None,
            };
            name.is_some_and(|n| n.eq_ignore_ascii_case(time_name))
                && !matches!(o.options.sort, Some(ast::OrderBySort::Desc))
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(PlanError::new(
            format!("OVER (...) on a stream must ORDER BY its event-time column '{time_name}' (ascending)"),
            pos,
        )
        .with_hint(format!(
            "e.g. OVER (PARTITION BY auction ORDER BY {time_name} ROWS BETWEEN 10 PRECEDING AND CURRENT ROW)"
        )))
    }
}

/// `ROWS n PRECEDING`, `RANGE INTERVAL ... PRECEDING` or `UNBOUNDED PRECEDING`, to the current row.
fn frame(spec: &ast::WindowSpec, pos: SqlPos) -> PlanResult<Frame> {
    let hint = "write ROWS BETWEEN 10 PRECEDING AND CURRENT ROW or RANGE BETWEEN INTERVAL '10' SECOND PRECEDING AND CURRENT ROW";
    let Some(f) = &spec.window_frame else {
        return Err(PlanError::new("OVER (...) needs a frame", pos).with_hint(hint));
    };
    if !matches!(f.end_bound, None | Some(ast::WindowFrameBound::CurrentRow)) {
        return Err(PlanError::new(
            "a frame on a stream must end at the CURRENT ROW (FOLLOWING rows have not arrived)",
            pos,
        )
        .with_hint(hint));
    }
    let rows = match f.units {
        ast::WindowFrameUnits::Rows => true,
        ast::WindowFrameUnits::Range => false,
        ast::WindowFrameUnits::Groups => {
            return Err(PlanError::new("GROUPS frames are not supported", pos).with_hint(hint));
        }
    };
    match (&f.start_bound, rows) {
        (ast::WindowFrameBound::Preceding(None), true) => Ok(Frame::Unbounded),
        (ast::WindowFrameBound::CurrentRow, true) => Ok(Frame::Rows(0)),
        (ast::WindowFrameBound::Preceding(Some(n)), true) => {
            let n = match n.as_ref() {
                ast::Expr::Value(v) => match &v.value {
                    ast::Value::Number(n, _) => n.parse::<u64>().ok(),
                    _ => None,
                },
                _ => None,
            };
            n.map(Frame::Rows).ok_or_else(|| {
                PlanError::new(
                    "ROWS needs a whole number of rows: ROWS BETWEEN 10 PRECEDING ...",
                    pos,
                )
            })
        }
        (ast::WindowFrameBound::Preceding(Some(iv)), false) => match iv.as_ref() {
            ast::Expr::Interval(i) => {
                let ms = interval_ms(i, pos_of(iv.as_ref()))?;
                if ms < 0 {
                    return Err(PlanError::new(
                        "the RANGE interval must not be negative",
                        pos,
                    ));
                }
                Ok(Frame::Range(ms))
            }
            _ => Err(PlanError::new(
                "RANGE needs an INTERVAL: RANGE BETWEEN INTERVAL '10' SECOND PRECEDING ...",
                pos,
            )),
        },
        (ast::WindowFrameBound::Preceding(None), false) => Ok(Frame::Unbounded),
        _ => Err(PlanError::new("unsupported frame", pos).with_hint(hint)),
    }
}
