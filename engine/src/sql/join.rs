//! Joins in FROM: `a JOIN b ON ...`, `LEFT | RIGHT | FULL [OUTER] JOIN`,
//! and comma joins whose condition is the WHERE clause (`FROM a, b WHERE
//! a.id = b.auction AND ...`, Nexmark's form).
//!
//! The condition's conjuncts are sorted out: equalities between a left and
//! a right expression are the equi-join keys (at least one is needed: rows
//! go to the partition worker of their key); for an inner join a conjunct
//! over one side only filters that side before the join; the rest is
//! checked on each candidate pair. Then how long rows are kept
//! (`JoinBound`): bounds on the distance between the two sides' event-time
//! columns make an interval join; an equality of both sides' window ends
//! (both are window results) a window join; otherwise rows are kept for
//! the `'state.ttl'` setting, or forever, which `check` and EXPLAIN say.

use sqlparser::ast;

use crate::error::{PlanError, PlanResult, SqlPos};
use crate::plan::expr::{BinaryOp, Expr, Literal};
use crate::plan::logical::{JoinBound, JoinKind, LogicalPlan};
use crate::sql::expr::ExprPlanner;
use crate::types::SqlType;

use super::query::{Planner, unsupported};
use super::relation::{RelColumn, Relation};

impl Planner<'_> {
    /// `left` joined with `right` on `condition`.
    pub(super) fn join(
        &self,
        left: Relation,
        right: Relation,
        kind: JoinKind,
        condition: Option<&ast::Expr>,
        pos: SqlPos,
    ) -> PlanResult<Relation> {
        if let Some(side) = [&left, &right]
            .into_iter()
            .find(|r| r.plan.is_updating() && (left.lookup || right.lookup))
        {
            return Err(PlanError::new(
                format!(
                    "a lookup join with {}, whose rows update earlier ones (a changelog), is not supported",
                    side.label
                ),
                pos,
            )
            .with_hint("join the stream before it is aggregated or ranked, or use a regular join"));
        }
        let nl = left.columns.len();
        let scope = self.scope_of(left.columns.iter().chain(&right.columns));
        let Some(condition) = condition else {
            return Err(PlanError::new(
                "a join needs a condition with an equality between the two sides",
                pos,
            )
            .with_hint(
                "write a JOIN b ON a.key = b.key (cross joins of streams are not supported)",
            ));
        };
        let planned = ExprPlanner::new(&scope, "the join condition").plan(condition)?;
        if !matches!(planned.sql_type(), SqlType::Boolean) {
            return Err(PlanError::new(
                format!(
                    "a join condition must be BOOLEAN, got {}",
                    planned.sql_type()
                ),
                pos,
            ));
        }
        let mut conjuncts = Vec::new();
        flatten_and(planned, &mut conjuncts);
        let mut left_keys = Vec::new();
        let mut right_keys = Vec::new();
        let mut left_only = Vec::new();
        let mut right_only = Vec::new();
        let mut rest = Vec::new();
        for c in conjuncts {
            match (&c, sides(&c, nl)) {
                (
                    Expr::Binary {
                        op: BinaryOp::Eq,
                        left: a,
                        right: b,
                        ..
                    },
                    Sides::Both,
                ) if one_side(a, nl).is_some()
                    && one_side(b, nl).is_some()
                    && one_side(a, nl) != one_side(b, nl) =>
                {
                    let (l, r) = if one_side(a, nl) == Some(0) {
                        (a.as_ref().clone(), b.as_ref().clone())
                    } else {
                        (b.as_ref().clone(), a.as_ref().clone())
                    };
                    let name = l.to_string();
                    left_keys.push((l, name.clone()));
                    right_keys.push((shift(r, nl), name));
                }
                (_, Sides::Left) if kind == JoinKind::Inner => left_only.push(c),
                (_, Sides::Right) if kind == JoinKind::Inner => right_only.push(shift(c, nl)),
                _ => rest.push(c),
            }
        }
        if left_keys.is_empty() {
            return Err(PlanError::new(
                "a join of streams needs an equality between a column of each side (an equi-join key)",
                pos,
            )
            .with_hint("e.g. ON a.id = b.auction; rows go to the worker of their key"));
        }
        let bound = if left.lookup || right.lookup {
            lookup(&left, &right, kind, pos)?
        } else {
            bound(
                &left,
                &right,
                &left_keys,
                &right_keys,
                &rest,
                nl,
                self.catalog.state_ttl(),
            )
        };
        // an outer join without a time bound emits a changelog, which its
        // operator keeps forever (no TTL yet)
        let bound = match bound {
            JoinBound::Regular { ttl: Some(_) } if kind != JoinKind::Inner => {
                JoinBound::Regular { ttl: None }
            }
            b => b,
        };
        let pads_forever = |side: usize| match bound {
            JoinBound::Columns { left, right, .. } => [left, right][side].is_none(),
            _ => false,
        };
        let padded = match kind {
            JoinKind::Inner => false,
            JoinKind::Left => pads_forever(0),
            JoinKind::Right => pads_forever(1),
            JoinKind::Full => pads_forever(0) || pads_forever(1),
        };
        if padded {
            return Err(PlanError::new(
                format!("a {} JOIN bounded in time on one side only would have to take back padded rows of the other", kind.name()),
                pos,
            )
            .with_hint("bound both sides in time (b.t BETWEEN a.t - INTERVAL '1' MINUTE AND a.t), or drop the time condition for a join that keeps every row (a changelog)"));
        }
        let filter_side = |plan: LogicalPlan, conds: Vec<Expr>| match conds.into_iter().reduce(and)
        {
            Some(predicate) => LogicalPlan::Filter {
                input: Box::new(plan),
                predicate,
            },
            None => plan,
        };
        let time = match bound {
            JoinBound::Interval { .. } => left.time,
            _ => None,
        };
        // an updating join's output: each side's columns but its `_op`, then `_op`
        let (lop, rop) = (left.plan.changelog(), right.plan.changelog());
        let mut columns: Vec<RelColumn> = left.columns.clone();
        columns.extend(right.columns.iter().cloned());
        let mut qualifiers = left.qualifiers.clone();
        qualifiers.extend(right.qualifiers.iter().cloned());
        let plan = LogicalPlan::Join {
            left: Box::new(filter_side(left.plan, left_only)),
            right: Box::new(filter_side(right.plan, right_only)),
            kind,
            bound,
            left_keys,
            right_keys,
            filter: rest.into_iter().reduce(and),
        };
        let (columns, time) = if plan.is_updating() {
            let drop = [lop, rop.map(|r| r + nl)];
            let mut columns: Vec<RelColumn> = (0..columns.len())
                .filter(|i| !drop.contains(&Some(*i)))
                .map(|i| columns[i].clone())
                .collect();
            columns.push(RelColumn {
                name: crate::plan::logical::OP_COLUMN.into(),
                ty: SqlType::Varchar,
                hidden: true,
                qualifiers: Vec::new(),
            });
            (columns, None)
        } else {
            (columns, time)
        };
        Ok(Relation {
            plan,
            columns,
            qualifiers,
            time,
            lateness: left.lateness,
            window: None,
            label: "the join".into(),
            lookup: false,
        })
    }

    /// A FROM item with its joins, folded left to right.
    pub(super) fn joined(&self, twj: &ast::TableWithJoins) -> PlanResult<Relation> {
        let mut rel = self.plan_from_item(&twj.relation)?;
        for j in &twj.joins {
            let pos = crate::sql::parser::pos_of(&j.relation);
            let (kind, constraint) = match &j.join_operator {
                ast::JoinOperator::Join(c) | ast::JoinOperator::Inner(c) => (JoinKind::Inner, c),
                ast::JoinOperator::Left(c) | ast::JoinOperator::LeftOuter(c) => (JoinKind::Left, c),
                ast::JoinOperator::Right(c) | ast::JoinOperator::RightOuter(c) => {
                    (JoinKind::Right, c)
                }
                ast::JoinOperator::FullOuter(c) => (JoinKind::Full, c),
                ast::JoinOperator::AsOf { .. } => {
                    return Err(unsupported("ASOF JOIN", pos));
                }
                other => {
                    let text = format!("{other:?}");
                    let name = text.split('(').next().unwrap_or("this join");
                    return Err(unsupported(&format!("{name} joins"), pos).with_hint(
                        "write [INNER | LEFT | RIGHT | FULL] JOIN ... ON a.key = b.key",
                    ));
                }
            };
            let condition = match constraint {
                ast::JoinConstraint::On(e) => Some(e),
                ast::JoinConstraint::None => None,
                _ => {
                    return Err(unsupported("JOIN ... USING / NATURAL JOIN", pos)
                        .with_hint("write JOIN ... ON a.key = b.key"));
                }
            };
            let right = self.plan_from_item(&j.relation)?;
            rel = self.join(rel, right, kind, condition, pos)?;
        }
        Ok(rel)
    }
}

/// Which inputs an expression reads.
#[derive(Debug, PartialEq, Eq)]
enum Sides {
    None,
    Left,
    Right,
    Both,
}

/// A lookup join (`JOIN t FOR SYSTEM_TIME AS OF ...`): the table on the
/// right, read whole before the stream's rows look it up.
fn lookup(left: &Relation, right: &Relation, kind: JoinKind, pos: SqlPos) -> PlanResult<JoinBound> {
    if left.lookup {
        return Err(PlanError::new(
            format!(
                "{} is read FOR SYSTEM_TIME AS OF, so it must be the right side of the join",
                left.label
            ),
            pos,
        )
        .with_hint("write stream JOIN table FOR SYSTEM_TIME AS OF stream.p_time AS t ON ..."));
    }
    if !matches!(kind, JoinKind::Inner | JoinKind::Left) {
        return Err(PlanError::new(
            format!(
                "a lookup join is an inner or a LEFT join, not {}",
                kind.name()
            ),
            pos,
        ));
    }
    let table = right.plan.source();
    let bounded =
        crate::connectors::registry::find(table.connector()).is_some_and(|c| c.is_bounded(table));
    if !bounded {
        return Err(PlanError::new(
            format!("the table of a lookup join is read whole before the stream looks it up, so {} must be bounded", right.label),
            pos,
        )
        .with_hint("declare the table as a file read once (connector = 'file' without follow = 'true'); a Kafka table is not supported yet"));
    }
    Ok(JoinBound::Lookup)
}

fn sides(e: &Expr, nl: usize) -> Sides {
    let mut cols = Vec::new();
    e.columns(&mut cols);
    let l = cols.iter().any(|&c| c < nl);
    let r = cols.iter().any(|&c| c >= nl);
    match (l, r) {
        (false, false) => Sides::None,
        (true, false) => Sides::Left,
        (false, true) => Sides::Right,
        (true, true) => Sides::Both,
    }
}

/// 0 if `e` reads only left columns, 1 if only right ones.
fn one_side(e: &Expr, nl: usize) -> Option<u8> {
    match sides(e, nl) {
        Sides::Left => Some(0),
        Sides::Right => Some(1),
        _ => None,
    }
}

/// `e` over the right input's own columns.
fn shift(e: Expr, nl: usize) -> Expr {
    e.map_columns(&|i| i - nl)
}

fn and(a: Expr, b: Expr) -> Expr {
    Expr::Binary {
        op: BinaryOp::And,
        left: Box::new(a),
        right: Box::new(b),
        ty: SqlType::Boolean,
    }
}

fn flatten_and(e: Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::Binary {
            op: BinaryOp::And,
            left,
            right,
            ..
        } => {
            flatten_and(*left, out);
            flatten_and(*right, out);
        }
        other => out.push(other),
    }
}

/// How long the join keeps rows: see the module documentation.
fn bound(
    left: &Relation,
    right: &Relation,
    left_keys: &[(Expr, String)],
    right_keys: &[(Expr, String)],
    rest: &[Expr],
    nl: usize,
    ttl: Option<i64>,
) -> JoinBound {
    // every `a + x <= b + y` of the condition between the two sides' columns
    let cmps: Vec<Cmp> = rest.iter().flat_map(comparisons).collect();
    let is_ts = |i: usize| {
        let c = if i < nl {
            &left.columns[i]
        } else {
            &right.columns[i - nl]
        };
        c.ty == SqlType::Timestamp
    };
    if let (Some(lt), Some(rt)) = (left.time, right.time) {
        let rt_j = nl + rt;
        let (mut lower, mut upper) = (None::<i64>, None::<i64>);
        for c in &cmps {
            // r + a <= l + b: r - l <= b - a
            if c.small.0 == rt_j && c.big.0 == lt {
                let d = c.big.1 - c.small.1;
                upper = Some(upper.map_or(d, |u| u.min(d)));
            }
            // l + a <= r + b: r - l >= a - b
            if c.small.0 == lt && c.big.0 == rt_j {
                let d = c.small.1 - c.big.1;
                lower = Some(lower.map_or(d, |l| l.max(d)));
            }
        }
        if let (Some(lower), Some(upper)) = (lower, upper) {
            return JoinBound::Interval {
                left_time: lt,
                right_time: rt,
                lower,
                upper,
            };
        }
        // bounds by other columns (`b.t BETWEEN a.t AND a.expires`): a row
        // is done once the other side's watermark passes its bound
        let mut left_until = None;
        let mut right_until = None;
        for c in &cmps {
            // r.t + a <= l.col + b: the left row is done after col + b - a
            if c.small.0 == rt_j && c.big.0 < nl && is_ts(c.big.0) && left_until.is_none() {
                left_until = Some((c.big.0, c.big.1 - c.small.1));
            }
            // l.t + a <= r.col + b: the right row is done after col + b - a
            if c.small.0 == lt && c.big.0 >= nl && is_ts(c.big.0) && right_until.is_none() {
                right_until = Some((c.big.0 - nl, c.big.1 - c.small.1));
            }
        }
        if left_until.is_some() || right_until.is_some() {
            return JoinBound::Columns {
                left_time: lt,
                right_time: rt,
                left: left_until,
                right: right_until,
            };
        }
    }
    if let (Some((le, ll)), Some((re, rl))) = (left.plan.window_end(), right.plan.window_end()) {
        let on_ends = left_keys.iter().zip(right_keys).any(|((l, _), (r, _))| {
            matches!(l, Expr::Column { index, .. } if *index == le)
                && matches!(r, Expr::Column { index, .. } if *index == re)
        });
        if on_ends {
            return JoinBound::Window {
                left_end: le,
                right_end: re,
                left_lateness: ll,
                right_lateness: rl,
            };
        }
    }
    JoinBound::Regular {
        ttl: match (left.time, right.time, ttl) {
            (Some(l), Some(r), Some(t)) => Some((l, r, t)),
            _ => None,
        },
    }
}

/// `small.column + small.ms <= big.column + big.ms` (columns of the joined row).
struct Cmp {
    small: (usize, i64),
    big: (usize, i64),
}

/// The `<=` comparisons of columns (plus or minus an interval) conjunct
/// `c` makes (`<` counts as `<=`: the bound only decides how long rows
/// are kept, the condition itself is checked on every pair).
fn comparisons(c: &Expr) -> Vec<Cmp> {
    let at = |x: &Expr| -> Option<(usize, i64)> {
        match x {
            Expr::Column { index, .. } => Some((*index, 0)),
            Expr::Binary {
                op: op @ (BinaryOp::Plus | BinaryOp::Minus),
                left,
                right,
                ..
            } => match (left.as_ref(), right.as_ref()) {
                (Expr::Column { index, .. }, Expr::Literal(Literal::Interval(ms))) => {
                    Some((*index, if *op == BinaryOp::Plus { *ms } else { -*ms }))
                }
                _ => None,
            },
            _ => None,
        }
    };
    let le = |a: &Expr, b: &Expr| -> Option<Cmp> {
        Some(Cmp {
            small: at(a)?,
            big: at(b)?,
        })
    };
    match c {
        Expr::Between {
            expr,
            low,
            high,
            negated: false,
        } => [le(low, expr), le(expr, high)]
            .into_iter()
            .flatten()
            .collect(),
        Expr::Binary {
            op, left, right, ..
        } => match op {
            BinaryOp::LtEq | BinaryOp::Lt => le(left, right).into_iter().collect(),
            BinaryOp::GtEq | BinaryOp::Gt => le(right, left).into_iter().collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}
