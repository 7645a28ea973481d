//! Flink's legacy group windows, as sugar for the window table functions:
//!
//! ```sql
//! SELECT bidder, COUNT(*) AS n,
//!        SESSION_START(date_time, INTERVAL '10' SECOND) AS starttime,
//!        SESSION_END(date_time, INTERVAL '10' SECOND) AS endtime
//! FROM bid GROUP BY bidder, SESSION(date_time, INTERVAL '10' SECOND)
//! ```
//!
//! is planned as `FROM SESSION(bid, date_time, INTERVAL '10' SECOND) ...
//! GROUP BY bidder, window_start, window_end` with `SESSION_START(...)` as
//! `window_start` and `SESSION_END(...)` as `window_end` (likewise `TUMBLE`
//! and `HOP(time, slide, size)`, with `_START` / `_END` / `_ROWTIME`).

use sqlparser::ast;

use crate::error::{PlanError, PlanResult};
use crate::exec::window::WindowSyntax;
use crate::sql::parser::pos_of;

use super::relation::{Relation, TableWindow, ident_arg, window_size};

/// A group window found in GROUP BY: the syntax and its arguments.
pub(super) struct GroupWindow {
    syntax: &'static WindowSyntax,
    args: Vec<ast::Expr>,
    pos: crate::error::SqlPos,
}

/// The `GROUP BY` item that is a group window, if any, and the SELECT with
/// it replaced by `window_start, window_end` and the `*_START` / `*_END`
/// calls by those names.
pub(super) fn rewrite(select: &ast::Select) -> PlanResult<Option<(ast::Select, GroupWindow)>> {
    let ast::GroupByExpr::Expressions(exprs, mods) = &select.group_by else {
        return Ok(None);
    };
    let found = exprs.iter().enumerate().find_map(|(i, e)| match e {
        ast::Expr::Function(f) => WindowSyntax::function(&f.name.to_string()).map(|s| (i, s, f)),
        _ => None,
    });
    let Some((at, syntax, f)) = found else {
        return Ok(None);
    };
    let args: Vec<ast::Expr> = match &f.args {
        ast::FunctionArguments::List(l) => l
            .args
            .iter()
            .map(|a| match a {
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Ok(e.clone()),
                _ => Err(PlanError::new(
                    format!(
                        "{}(...) in GROUP BY takes a time column and intervals",
                        syntax.function
                    ),
                    pos_of(&exprs[at]),
                )),
            })
            .collect::<PlanResult<_>>()?,
        _ => Vec::new(),
    };
    let mut select = select.clone();
    let mut keys = exprs.clone();
    let name = |n: &str| ast::Expr::Identifier(ast::Ident::new(n));
    keys.splice(at..=at, [name("window_start"), name("window_end")]);
    select.group_by = ast::GroupByExpr::Expressions(keys, mods.clone());
    let prefix = syntax.function.to_ascii_lowercase();
    for item in &mut select.projection {
        if let ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } =
            item
        {
            bounds(e, &prefix);
        }
    }
    if let Some(h) = &mut select.having {
        bounds(h, &prefix);
    }
    Ok(Some((
        select,
        GroupWindow {
            syntax,
            args,
            pos: pos_of(&exprs[at]),
        },
    )))
}

/// Replaces `prefix_START(...)` / `_END` / `_ROWTIME` calls in `e` by the
/// window bound they name.
fn bounds(e: &mut ast::Expr, prefix: &str) {
    if let ast::Expr::Function(f) = e {
        let n = f.name.to_string().to_ascii_lowercase();
        let bound = match n.strip_prefix(prefix) {
            Some("_start") => Some("window_start"),
            Some("_end" | "_rowtime") => Some("window_end"),
            _ => None,
        };
        if let Some(b) = bound {
            *e = ast::Expr::Identifier(ast::Ident::new(b));
            return;
        }
        if let ast::FunctionArguments::List(l) = &mut f.args {
            for a in &mut l.args {
                if let ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(x)) = a {
                    bounds(x, prefix);
                }
            }
        }
        return;
    }
    match e {
        ast::Expr::BinaryOp { left, right, .. } => {
            bounds(left, prefix);
            bounds(right, prefix);
        }
        ast::Expr::Nested(x)
        | ast::Expr::UnaryOp { expr: x, .. }
        | ast::Expr::Cast { expr: x, .. } => bounds(x, prefix),
        _ => {}
    }
}

/// The window `w` puts on `rel` (its time column must be `rel`'s event time).
pub(super) fn apply(w: &GroupWindow, rel: &mut Relation) -> PlanResult<()> {
    let syntax = w.syntax;
    let usage = format!(
        "write GROUP BY ..., {}(time_column, {})",
        syntax.function,
        syntax.function_args.join(", ")
    );
    if w.args.len() != 1 + syntax.function_args.len() {
        return Err(PlanError::new(
            format!(
                "{}(...) in GROUP BY takes {} arguments, got {}",
                syntax.function,
                1 + syntax.function_args.len(),
                w.args.len()
            ),
            w.pos,
        )
        .with_hint(usage));
    }
    if rel.window.is_some() {
        return Err(PlanError::new(
            format!(
                "a query over a window table function cannot also GROUP BY {}(...)",
                syntax.function
            ),
            w.pos,
        ));
    }
    // the column, maybe qualified by the stream or its alias (B.date_time)
    let qualified = match &w.args[0] {
        ast::Expr::CompoundIdentifier(p)
            if p.len() == 2
                && rel
                    .qualifiers
                    .iter()
                    .any(|q| q.eq_ignore_ascii_case(&p[0].value)) =>
        {
            Some(p[1].value.clone())
        }
        _ => None,
    };
    let time_name = qualified.or_else(|| ident_arg(&w.args[0])).ok_or_else(|| {
        PlanError::new(
            format!(
                "{}(...)'s first argument must be the time column",
                syntax.function
            ),
            w.pos,
        )
        .with_hint(usage.clone())
    })?;
    let col = rel
        .columns
        .iter()
        .position(|c| c.name.eq_ignore_ascii_case(&time_name))
        .ok_or_else(|| {
            PlanError::new(format!("unknown column '{time_name}'"), pos_of(&w.args[0]))
        })?;
    super::relation::check_time_column(rel, col, pos_of(&w.args[0]))?;
    let intervals = syntax
        .function_args
        .iter()
        .zip(&w.args[1..])
        .map(|(name, e)| window_size(e, &format!("{}'s {name}", syntax.function)))
        .collect::<PlanResult<Vec<i64>>>()?;
    let window = (syntax.make)(&intervals);
    window
        .kind()
        .check_limits()
        .map_err(|(message, hint)| PlanError::new(message, w.pos).with_hint(hint))?;
    rel.window = Some(TableWindow {
        time_column: col,
        window,
    });
    Ok(())
}
