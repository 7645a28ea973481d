//! Plans a SELECT into a [`LogicalPlan`]: relation (stream or TUMBLE),
//! WHERE, windowed or global GROUP BY with aggregates, HAVING, projection.

use std::sync::Arc;

use sqlparser::ast;

use crate::catalog::StreamDef;
use crate::error::{PlanError, PlanResult, SqlPos};
use crate::plan::expr::Expr;
use crate::plan::logical::{EmitMode, LogicalPlan, OP_COLUMN};
use crate::sql::expr::{ExprPlanner, contains_aggregate_with};
use crate::sql::parser::{EmitKeyword, QueryStatement, pos_of};
use crate::sql::scope::Scope;
use crate::types::SqlType;

use super::aggregate::AggregateShape;
use super::over::Over;

/// Looks streams up by name.
pub(crate) trait StreamLookup {
    /// The stream called `name` (case-insensitive).
    fn stream(&self, name: &str) -> Option<Arc<StreamDef>>;
    /// All stream names, for hints.
    fn stream_names(&self) -> Vec<String>;
    /// The registered WebAssembly modules.
    fn udfs(&self) -> Arc<Vec<Arc<crate::udf::UdfModule>>>;
    /// The view called `name` (case-insensitive).
    fn view(&self, name: &str) -> Option<Arc<ViewDef>>;
    /// `SET 'state.ttl'`: how long (ms of event time) a regular join keeps
    /// rows, and an aggregate or ranking without a window its idle groups.
    fn state_ttl(&self) -> Option<i64> {
        None
    }
}

/// `CREATE VIEW name AS query`: a named query, planned where it is read.
#[derive(Debug, Clone)]
pub struct ViewDef {
    /// Its name, as declared.
    pub name: String,
    /// Its query.
    pub query: Box<ast::Query>,
    /// Where it was declared.
    pub pos: SqlPos,
}

/// Plans query statements against a catalog. Its `impl` blocks are split by
/// clause: the SELECT here; FROM and windows in `relation.rs`; GROUP BY,
/// aggregates and the SELECT list in `aggregate.rs`; OVER in `over.rs`;
/// top-N in `top_n.rs`; expressions in `expr.rs` (`ExprPlanner`) and
/// function calls in `functions.rs`.
pub(crate) struct Planner<'a> {
    pub(super) catalog: &'a dyn StreamLookup,
}

impl<'a> Planner<'a> {
    /// A planner over `catalog`'s streams and functions.
    pub(crate) fn new(catalog: &'a dyn StreamLookup) -> Self {
        Self { catalog }
    }

    /// `SET 'state.ttl'` for an aggregate or ranking without a window over
    /// `input`: it counts event time, so only when the input has a watermark.
    pub(super) fn idle_ttl(&self, input: &LogicalPlan) -> Option<i64> {
        self.catalog
            .state_ttl()
            .filter(|_| input.source().watermark.is_some())
    }

    /// The scope of a relation's columns (in order: their indexes).
    pub(super) fn scope_of<'c>(
        &self,
        columns: impl Iterator<Item = &'c super::relation::RelColumn>,
    ) -> Scope {
        let mut scope = Scope {
            udfs: self.catalog.udfs(),
            ..Scope::default()
        };
        for (i, c) in columns.enumerate() {
            scope.push(
                c.name.clone(),
                c.qualifiers.clone(),
                Expr::column(i, c.name.clone(), c.ty),
            );
            if c.hidden {
                scope.hide_last();
            }
        }
        scope
    }

    /// Plans a query statement.
    ///
    /// # Errors
    /// The first part of the query Eddy cannot run, with its position.
    pub(crate) fn plan(&self, q: &QueryStatement) -> PlanResult<LogicalPlan> {
        if let Some(plan) = self.top_n(q)? {
            return Ok(plan);
        }
        self.select(q)
    }

    /// Plans a SELECT that is not a top-N.
    fn select(&self, q: &QueryStatement) -> PlanResult<LogicalPlan> {
        let query = &q.query;
        if query.with.is_some() {
            return Err(unsupported("WITH (common table expressions)", q.pos));
        }
        if let Some(o) = &query.order_by {
            return Err(PlanError::new(
                "ORDER BY is not supported on an unbounded stream",
                pos_of(o),
            )
            .with_hint(
                "results are emitted per window in window order; sort downstream if needed",
            ));
        }
        if query.limit_clause.is_some() || query.fetch.is_some() {
            return Err(unsupported("LIMIT / FETCH", q.pos));
        }
        let select = match query.body.as_ref() {
            ast::SetExpr::Select(s) => s,
            ast::SetExpr::SetOperation {
                left,
                op,
                set_quantifier,
                right,
            } => return self.set_operation(q, (left, *op, *set_quantifier, right)),
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
            return Err(
                unsupported("SELECT DISTINCT", select_pos).with_hint("use GROUP BY instead")
            );
        }
        if !select.named_window.is_empty() {
            return Err(unsupported("a named WINDOW", select_pos));
        }
        let mut where_used = false;
        // GROUP BY SESSION(ts, gap) and friends: a window table function
        let rewritten = super::group_window::rewrite(select)?;
        let (select, group_window): (&ast::Select, _) = match &rewritten {
            Some((s, w)) => (s, Some(w)),
            None => (select, None),
        };
        let mut rel = self.relation(select, select_pos, &mut where_used)?;
        if let Some(w) = group_window {
            super::group_window::apply(w, &mut rel)?;
        }
        let mut scope = self.scope_of(rel.columns.iter());
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

        let mut plan = rel.plan.clone();
        if let Some(w) = select.selection.as_ref().filter(|_| !where_used) {
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
        let mut window = self.window(q, &rel)?;
        // window results grouped by their window end close with their windows
        let ended = match (&window, rel.plan.window_end()) {
            (None, Some((end, _))) => group_by
                .iter()
                .any(|g| names_column(g, &rel, end))
                .then(|| rel.name(end).to_string()),
            _ => None,
        };
        if let (Some(name), Some((end, _))) = (&ended, rel.plan.window_end()) {
            let (p, spec) = super::aggregate::by_window_end(plan, end, name);
            plan = p;
            window = Some(spec);
        }
        // the WINDOW clause implies grouping; a window table function alone does not
        let has_agg = !group_by.is_empty()
            || q.window.is_some()
            || select.having.is_some()
            || select.projection.iter().any(|item| match item {
                ast::SelectItem::UnnamedExpr(e)
                | ast::SelectItem::ExprWithAlias { expr: e, .. } => {
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
            let time = rel.time.map(|i| (i, rel.name(i).to_string()));
            let updating = plan.is_updating();
            return match self.row_window(select, plan, &scope, time)? {
                Over::Windowed { .. } if updating => Err(PlanError::new(
                    format!("an OVER window over {}, whose rows update earlier ones (a changelog), is not supported", rel.label),
                    select_pos,
                )
                .with_hint("an OVER window adds to each row's frame and cannot take a row back (Flink refuses this too: Nexmark q6)")),
                Over::Windowed { plan, scope, items } => {
                    let mut rewritten = select.clone();
                    rewritten.projection = items;
                    Ok(LogicalPlan::Project {
                        exprs: self.projection(&rewritten, &scope, None)?,
                        input: Box::new(plan),
                    })
                }
                Over::None(plan) => Ok(LogicalPlan::Project {
                    exprs: changelog_projection(&plan, self.projection(select, &scope, None)?, select_pos)?,
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
            lateness: rel.lateness,
            ended,
        };
        self.aggregate(select, plan, &scope, &rel, agg, &group_by, select_pos)
    }
}

fn first_word(s: &str) -> String {
    s.split_whitespace().next().unwrap_or("").to_string()
}

/// Whether `g` names column `col` of `rel` (maybe qualified).
fn names_column(g: &ast::Expr, rel: &super::relation::Relation, col: usize) -> bool {
    let c = &rel.columns[col];
    match g {
        ast::Expr::Identifier(i) => i.value.eq_ignore_ascii_case(&c.name),
        ast::Expr::CompoundIdentifier(p) if p.len() == 2 => {
            p[1].value.eq_ignore_ascii_case(&c.name)
                && c.qualifiers
                    .iter()
                    .any(|q| q.eq_ignore_ascii_case(&p[0].value))
        }
        _ => false,
    }
}

/// The SELECT list over `input`, with the `_op` column of an updating
/// input passed on first: the rows stay a changelog.
///
/// # Errors
/// An output column named `_op` over an updating input.
pub(super) fn changelog_projection(
    input: &LogicalPlan,
    mut exprs: Vec<(Expr, String)>,
    pos: SqlPos,
) -> PlanResult<Vec<(Expr, String)>> {
    let Some(op) = input.changelog() else {
        return Ok(exprs);
    };
    let is_op = |e: &Expr| matches!(e, Expr::Column { index, .. } if *index == op);
    if exprs
        .iter()
        .any(|(e, n)| n.eq_ignore_ascii_case(OP_COLUMN) && !is_op(e))
    {
        return Err(PlanError::new(
            format!("output column '{OP_COLUMN}' is reserved: the rows are a changelog and carry their own"),
            pos,
        )
        .with_hint("give that column another alias"));
    }
    if !exprs.iter().any(|(e, _)| is_op(e)) {
        exprs.insert(
            0,
            (
                Expr::column(op, OP_COLUMN, SqlType::Varchar),
                OP_COLUMN.into(),
            ),
        );
    }
    Ok(exprs)
}

pub(super) fn unsupported(what: &str, pos: SqlPos) -> PlanError {
    PlanError::new(format!("{what} is not supported"), pos)
        .with_hint("see docs/sql.md for what Eddy supports")
}
