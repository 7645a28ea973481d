//! Plans top-N per window: a ranking function (`ROW_NUMBER`, `RANK`,
//! `DENSE_RANK`) `OVER (PARTITION BY window_start ... ORDER BY ...)` filtered
//! to the first N, written either as
//!
//! ```sql
//! SELECT ... FROM (SELECT ..., ROW_NUMBER() OVER (...) AS rn FROM ...) WHERE rn <= N
//! SELECT ..., ROW_NUMBER() OVER (...) AS rn FROM ... QUALIFY rn <= N
//! ```
//!
//! The inner query is planned as usual, with the window end, the partition
//! and the order expressions as hidden extra output columns; a `TopN` node
//! ranks its rows per (window, partition) when the window closes.

use sqlparser::ast;

use crate::error::{PlanError, PlanResult, SqlPos};
use crate::plan::expr::Expr;
use crate::plan::logical::{Lateness, LogicalPlan, RankKind, SortKey};
use crate::sql::parser::{QueryStatement, pos_of};
use crate::sql::query::{Planner, changelog_projection, unsupported};
use crate::sql::scope::Scope;
use crate::types::SqlType;

/// A ranking function in a SELECT list.
struct Ranking {
    kind: RankKind,
    partition: Vec<ast::Expr>,
    order: Vec<ast::OrderByExpr>,
    /// Its position in the SELECT list.
    item: usize,
    /// Its output name (the alias).
    name: String,
    pos: SqlPos,
}

const HIDDEN: &str = "__topn_";

/// Plans the query if it is a top-N; `None` if it is not one.
///
/// # Errors
/// A top-N that is not well formed, with a hint at the supported form.
impl Planner<'_> {
    pub(crate) fn top_n(&self, q: &QueryStatement) -> PlanResult<Option<LogicalPlan>> {
        let ast::SetExpr::Select(select) = q.query.body.as_ref() else {
            return Ok(None);
        };
        let ranked_subquery = match select.from.as_slice() {
            [t] => match &t.relation {
                ast::TableFactor::Derived { subquery, .. } => match subquery.body.as_ref() {
                    ast::SetExpr::Select(inner) => find_ranking(inner)?.is_some(),
                    _ => false,
                },
                _ => false,
            },
            _ => false,
        };
        let is_top_n = select.qualify.is_some() || ranked_subquery;
        if let (true, Some((crate::sql::parser::EmitKeyword::Changes, p))) = (is_top_n, q.emit) {
            return Err(PlanError::new(
                "a top-N emits each window's ranking once, when the window closes: EMIT CHANGES does not apply",
                p,
            ));
        }
        if let [twj] = select.from.as_slice()
            && let ast::TableFactor::Derived {
                subquery, alias, ..
            } = &twj.relation
        {
            // any other subquery is a relation like a stream (relation.rs)
            let ast::SetExpr::Select(inner) = subquery.body.as_ref() else {
                return Ok(None);
            };
            let Some(ranking) = find_ranking(inner)? else {
                return Ok(None);
            };
            if !twj.joins.is_empty() {
                return Err(unsupported(
                    "a join with a top-N subquery",
                    pos_of(&twj.relation),
                ));
            }
            if let Some(w) = inner
                .selection
                .as_ref()
                .filter(|w| mentions(w, &ranking.name))
            {
                return Err(PlanError::new(
                    format!(
                        "'{}' is computed by the SELECT list its own WHERE belongs to, so that WHERE cannot filter on it",
                        ranking.name
                    ),
                    pos_of(w),
                )
                .with_hint(format!(
                    "filter in an outer query: SELECT ... FROM (SELECT ..., {}() OVER (...) AS {} FROM ...) WHERE {} <= N (Nexmark q6 is written this way, and Flink does not run it either)",
                    ranking.kind.name().to_uppercase(),
                    ranking.name,
                    ranking.name
                )));
            }
            let (limit, rest) = rank_limit(select.selection.as_ref(), &ranking, q.pos)?;
            let inner_q = QueryStatement {
                query: subquery.clone(),
                window: None,
                emit: None,
                pos: pos_of(subquery.as_ref()),
            };
            let (ranked, rank_at) = self.ranked(&inner_q, inner, ranking, limit)?;
            if !select.group_by_is_empty() || select.having.is_some() {
                return Err(PlanError::new(
                    "GROUP BY over a top-N subquery is not supported",
                    q.pos,
                ));
            }
            let qualifier = alias.as_ref().map(|a| a.name.value.clone());
            let mut plan = self.outer(select, ranked, rest, qualifier, q.pos)?;
            if !reads_rank(&plan, rank_at) {
                // a changing rank changes nothing the query gives
                hide_rank(&mut plan);
            }
            return Ok(Some(plan));
        }
        let Some(qualify) = &select.qualify else {
            return Ok(None);
        };
        let ranking = find_ranking(select)?.ok_or_else(|| {
        PlanError::new(
            "QUALIFY needs a ranking function in the SELECT list",
            pos_of(qualify),
        )
        .with_hint("e.g. SELECT ..., ROW_NUMBER() OVER (PARTITION BY window_start ORDER BY price DESC) AS rn ... QUALIFY rn <= 3")
    })?;
        let (limit, rest) = rank_limit(Some(qualify), &ranking, pos_of(qualify))?;
        let mut query = q.query.clone();
        let mut plain = select.clone();
        plain.qualify = None;
        query.body = Box::new(ast::SetExpr::Select(plain.clone()));
        let inner_q = QueryStatement {
            query,
            window: q.window.clone(),
            emit: q.emit,
            pos: q.pos,
        };
        let (ranked, _) = self.ranked(&inner_q, &plain, ranking, limit)?;
        Ok(Some(match rest {
            None => ranked,
            Some(r) => {
                let scope = scope_of(&ranked, None);
                let predicate = crate::sql::expr::ExprPlanner::new(&scope, "QUALIFY").plan(&r)?;
                LogicalPlan::Filter {
                    input: Box::new(ranked),
                    predicate,
                }
            }
        }))
    }
}

trait GroupByEmpty {
    fn group_by_is_empty(&self) -> bool;
}

impl GroupByEmpty for ast::Select {
    fn group_by_is_empty(&self) -> bool {
        matches!(&self.group_by, ast::GroupByExpr::Expressions(e, _) if e.is_empty())
    }
}

/// The one ranking function of a SELECT list, if any.
fn find_ranking(select: &ast::Select) -> PlanResult<Option<Ranking>> {
    let mut found: Option<Ranking> = None;
    for (i, item) in select.projection.iter().enumerate() {
        let (e, alias) = match item {
            ast::SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.value.clone())),
            ast::SelectItem::UnnamedExpr(expr) => (expr, None),
            _ => continue,
        };
        let ast::Expr::Function(f) = e else { continue };
        let kind = match f.name.to_string().to_ascii_lowercase().as_str() {
            "row_number" => RankKind::RowNumber,
            "rank" => RankKind::Rank,
            "dense_rank" => RankKind::DenseRank,
            _ => continue,
        };
        let pos = pos_of(e);
        let Some(ast::WindowType::WindowSpec(spec)) = &f.over else {
            return Err(PlanError::new(
                format!(
                    "{}() needs OVER (PARTITION BY ... ORDER BY ...)",
                    kind.name()
                ),
                pos,
            ));
        };
        if spec.window_frame.is_some() {
            return Err(PlanError::new(
                format!("{}() takes no window frame", kind.name()),
                pos,
            ));
        }
        if spec.order_by.is_empty() {
            return Err(PlanError::new(
                format!("{}() needs ORDER BY inside OVER (...)", kind.name()),
                pos,
            )
            .with_hint("e.g. OVER (PARTITION BY window_start ORDER BY price DESC)"));
        }
        if found.is_some() {
            return Err(PlanError::new("only one ranking function per query", pos));
        }
        let name = alias.ok_or_else(|| {
            PlanError::new(format!("give {}() an alias", kind.name()), pos)
                .with_hint("e.g. ROW_NUMBER() OVER (...) AS rn, then WHERE rn <= 3")
        })?;
        found = Some(Ranking {
            kind,
            partition: spec.partition_by.clone(),
            order: spec.order_by.clone(),
            item: i,
            name,
            pos,
        });
    }
    Ok(found)
}

/// Splits `rn <= N` (or `rn < N`, `rn = 1`, `N >= rn`) out of a condition;
/// returns N and the other conjuncts.
fn rank_limit(
    cond: Option<&ast::Expr>,
    ranking: &Ranking,
    pos: SqlPos,
) -> PlanResult<(usize, Option<ast::Expr>)> {
    let missing = || {
        PlanError::new(
            format!(
                "a top-N needs a bound on its rank, e.g. WHERE {} <= 3",
                ranking.name
            ),
            pos,
        )
        .with_hint("an unbounded ranking would hold every row of a window")
    };
    let cond = cond.ok_or_else(missing)?;
    let mut conjuncts = Vec::new();
    flatten_and(cond, &mut conjuncts);
    let mut limit: Option<usize> = None;
    let mut rest: Vec<ast::Expr> = Vec::new();
    for c in conjuncts {
        match bound(c, &ranking.name) {
            Some(n) => limit = Some(limit.map_or(n, |l| l.min(n))),
            None => rest.push(c.clone()),
        }
    }
    let limit = limit.ok_or_else(missing)?;
    if limit == 0 {
        return Err(PlanError::new("the rank bound keeps no rows", pos));
    }
    let rest = rest.into_iter().reduce(|a, b| ast::Expr::BinaryOp {
        left: Box::new(a),
        op: ast::BinaryOperator::And,
        right: Box::new(b),
    });
    Ok((limit, rest))
}

/// Whether `e` names the column `name`.
fn mentions(e: &ast::Expr, name: &str) -> bool {
    let text = e.to_string();
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .any(|w| w.eq_ignore_ascii_case(name))
}

fn flatten_and<'a>(e: &'a ast::Expr, out: &mut Vec<&'a ast::Expr>) {
    match e {
        ast::Expr::BinaryOp {
            left,
            op: ast::BinaryOperator::And,
            right,
        } => {
            flatten_and(left, out);
            flatten_and(right, out);
        }
        ast::Expr::Nested(inner) => flatten_and(inner, out),
        other => out.push(other),
    }
}

/// `rn <= N` and friends as the largest rank kept.
fn bound(e: &ast::Expr, name: &str) -> Option<usize> {
    let ast::Expr::BinaryOp { left, op, right } = e else {
        return None;
    };
    let is_rank = |x: &ast::Expr| match x {
        ast::Expr::Identifier(i) => i.value.eq_ignore_ascii_case(name),
        ast::Expr::CompoundIdentifier(p) => {
            p.last().is_some_and(|i| i.value.eq_ignore_ascii_case(name))
        }
        _ => false,
    };
    let number = |x: &ast::Expr| match x {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => n.parse::<usize>().ok(),
            _ => None,
        },
        _ => None,
    };
    use ast::BinaryOperator as B;
    let (op, n) = if is_rank(left) {
        (op.clone(), number(right)?)
    } else if is_rank(right) {
        let flipped = match op {
            B::GtEq => B::LtEq,
            B::Gt => B::Lt,
            B::Eq => B::Eq,
            _ => return None,
        };
        (flipped, number(left)?)
    } else {
        return None;
    };
    match op {
        B::LtEq => Some(n),
        B::Lt => Some(n.saturating_sub(1)),
        B::Eq if n == 1 => Some(1),
        _ => None,
    }
}

impl Planner<'_> {
    /// Plans `select` (the ranking item removed, hidden columns added) and puts
    /// the top-N and the final projection on top; returns the plan and the
    /// rank's column in it.
    fn ranked(
        &self,
        q: &QueryStatement,
        select: &ast::Select,
        ranking: Ranking,
        limit: usize,
    ) -> PlanResult<(LogicalPlan, usize)> {
        // per window, ranked once when the window closes; otherwise kept
        // up to date as a changelog
        let windowed = ranking.partition.iter().any(is_window_ref);
        let mut inner = select.clone();
        inner.projection.remove(ranking.item);
        let items_after = inner.projection.len() - ranking.item;
        let wildcard_after = inner.projection[ranking.item..].iter().any(|i| {
            matches!(
                i,
                ast::SelectItem::Wildcard(_) | ast::SelectItem::QualifiedWildcard(..)
            )
        });
        let hidden = |i: usize, e: ast::Expr| ast::SelectItem::ExprWithAlias {
            expr: e,
            alias: ast::Ident::new(format!("{HIDDEN}{i}")),
        };
        let mut extra = Vec::new();
        if windowed {
            extra.push(ast::Expr::Identifier(ast::Ident::new("window_end")));
        }
        extra.extend(ranking.partition.iter().cloned());
        extra.extend(ranking.order.iter().map(|o| o.expr.clone()));
        let hidden_columns = extra.len();
        for (i, e) in extra.into_iter().enumerate() {
            inner.projection.push(hidden(i, e));
        }
        let mut query = q.query.clone();
        query.body = Box::new(ast::SetExpr::Select(Box::new(inner)));
        let plan = self.plan(&QueryStatement {
            query,
            window: q.window.clone(),
            emit: q.emit,
            pos: q.pos,
        })?;
        let schema = plan.schema();
        // the visible columns (a `*` stands for several), then the hidden ones
        let visible = schema.fields().len() - hidden_columns;
        let op_in = plan.changelog();
        if windowed && op_in.is_some() {
            return Err(PlanError::new(
                "a top-N ranks final window results: the query it ranks must use EMIT FINAL",
                ranking.pos,
            ));
        }
        let np = ranking.partition.len();
        let order = ranking
            .order
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let descending = matches!(o.options.sort, Some(ast::OrderBySort::Desc));
                if matches!(o.options.sort, Some(ast::OrderBySort::Using(_))) {
                    return Err(PlanError::new(
                        "ORDER BY ... USING is not supported",
                        ranking.pos,
                    ));
                }
                Ok(SortKey {
                    column: visible + usize::from(windowed) + np + i,
                    descending,
                    nulls_first: o.options.nulls_first.unwrap_or(descending),
                })
            })
            .collect::<PlanResult<Vec<_>>>()?;
        let window_end = windowed.then_some(visible);
        if window_end.is_some_and(|w| schema.field(w).data_type() != &SqlType::Timestamp.to_arrow())
        {
            return Err(PlanError::new(
                "window_end must be a TIMESTAMP",
                ranking.pos,
            ));
        }
        let o = plan.source().event_time.clone();
        let ttl = (!windowed).then(|| self.idle_ttl(&plan)).flatten();
        let first = visible + usize::from(windowed);
        let top = LogicalPlan::TopN {
            input: Box::new(plan),
            window_end,
            partition: (first..first + np).collect(),
            order,
            limit,
            kind: ranking.kind,
            rank_name: ranking.name.clone(),
            lateness: Lateness {
                allowed_ms: o.allowed_lateness_ms,
                policy: o.late_policy,
            },
            rank_shown: true,
            ttl,
        };
        // the visible columns, with the rank where the ranking function was
        // written (and, kept up to date, `_op` first); the input's `_op` is
        // not passed on as a column of its own
        let out = top.schema();
        let total = schema.fields().len() - usize::from(op_in.is_some());
        let shift = |i: usize| i - usize::from(op_in.is_some_and(|o| o < i));
        let column = |i: usize| {
            let f = out.field(i);
            (
                Expr::column(
                    i,
                    f.name().clone(),
                    SqlType::from_arrow(f.data_type()).unwrap_or(SqlType::Varchar),
                ),
                f.name().clone(),
            )
        };
        let mut exprs: Vec<(Expr, String)> = (0..visible)
            .filter(|&i| Some(i) != op_in)
            .map(|i| column(shift(i)))
            .collect();
        let shown = exprs.len();
        let mut at = if wildcard_after {
            shown
        } else {
            shown - items_after
        };
        exprs.insert(at, column(total));
        if !windowed {
            exprs.insert(0, column(total + 1));
            at += 1;
        }
        Ok((
            LogicalPlan::Project {
                input: Box::new(top),
                exprs,
            },
            at,
        ))
    }
}

fn is_window_ref(e: &ast::Expr) -> bool {
    let name = match e {
        ast::Expr::Identifier(i) => &i.value,
        ast::Expr::CompoundIdentifier(p) if !p.is_empty() => &p[p.len() - 1].value,
        _ => return false,
    };
    matches!(
        name.to_ascii_lowercase().as_str(),
        "window_start" | "window_end" | "_window_start" | "_window_end"
    )
}

fn scope_of(plan: &LogicalPlan, qualifier: Option<String>) -> Scope {
    let mut scope = Scope::default();
    let op = plan.changelog();
    for (i, f) in plan.schema().fields().iter().enumerate() {
        let ty = SqlType::from_arrow(f.data_type()).unwrap_or(SqlType::Varchar);
        scope.push(
            f.name().clone(),
            qualifier.iter().cloned().collect(),
            Expr::column(i, f.name().clone(), ty),
        );
        if Some(i) == op {
            scope.hide_last();
        }
    }
    scope
}

/// Whether the query over a ranked subquery (a projection, maybe over a
/// filter) reads column `rank` of it.
fn reads_rank(plan: &LogicalPlan, rank: usize) -> bool {
    let mut used = Vec::new();
    let mut at = plan;
    loop {
        match at {
            LogicalPlan::Project { input, exprs } => {
                exprs.iter().for_each(|(e, _)| e.columns(&mut used));
                if matches!(input.as_ref(), LogicalPlan::Project { input, .. } if matches!(input.as_ref(), LogicalPlan::TopN { .. }))
                {
                    return used.contains(&rank);
                }
                at = input;
            }
            LogicalPlan::Filter { input, predicate } => {
                predicate.columns(&mut used);
                at = input;
            }
            _ => return true,
        }
    }
}

/// Marks the top-N under a query's projections and filters as one whose
/// rank nobody reads.
fn hide_rank(plan: &mut LogicalPlan) {
    match plan {
        LogicalPlan::Project { input, .. } | LogicalPlan::Filter { input, .. } => hide_rank(input),
        LogicalPlan::TopN { rank_shown, .. } => *rank_shown = false,
        _ => {}
    }
}

impl Planner<'_> {
    /// The outer query over a ranked subquery: other WHERE conditions, then its
    /// SELECT list.
    fn outer(
        &self,
        select: &ast::Select,
        ranked: LogicalPlan,
        rest: Option<ast::Expr>,
        qualifier: Option<String>,
        pos: SqlPos,
    ) -> PlanResult<LogicalPlan> {
        let over = select.projection.iter().any(|item| {
            matches!(item, ast::SelectItem::UnnamedExpr(ast::Expr::Function(f))
                | ast::SelectItem::ExprWithAlias { expr: ast::Expr::Function(f), .. } if f.over.is_some())
        });
        if over && ranked.is_updating() {
            return Err(PlanError::new(
                "an OVER window over a ranking kept up to date (a changelog: its rows update earlier ones) is not supported",
                pos,
            )
            .with_hint("an OVER window adds to each row's frame and cannot take a row back (Flink refuses this too: Nexmark q6)"));
        }
        let scope = scope_of(&ranked, qualifier);
        let mut plan = ranked;
        if let Some(r) = rest {
            let predicate = crate::sql::expr::ExprPlanner::new(&scope, "WHERE").plan(&r)?;
            plan = LogicalPlan::Filter {
                input: Box::new(plan),
                predicate,
            };
        }
        let exprs = changelog_projection(&plan, self.projection(select, &scope, None)?, pos)?;
        Ok(LogicalPlan::Project {
            input: Box::new(plan),
            exprs,
        })
    }
}
