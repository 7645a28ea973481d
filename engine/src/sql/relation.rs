//! The relation of a query: the stream it reads, or a window table
//! function over one (`TUMBLE`, `HOP`, `SESSION`), its time column and
//! window; and the window a `GROUP BY` names.

use std::sync::Arc;

use sqlparser::ast::{self};

use crate::catalog::StreamDef;
use crate::error::{PlanError, PlanResult, SqlPos};
use crate::exec::window::{WINDOW_SYNTAX, Window, WindowSyntax};
use crate::plan::logical::{Lateness, LogicalPlan, WindowSpec};
use crate::sql::literal::interval_ms;
use crate::sql::parser::QueryStatement;
use crate::sql::scope::closest;
use crate::types::SqlType;

use super::aggregate::lateness;
use super::query::{Planner, unsupported};
use crate::sql::parser::pos_of;

/// The relation a query reads — a stream, a view, a subquery, or a window
/// table function over a stream or view — as a plan and what a query over
/// it sees.
pub(super) struct Relation {
    /// The rows.
    pub(super) plan: LogicalPlan,
    /// The columns of `plan`'s output a query may name.
    pub(super) columns: Vec<RelColumn>,
    /// Names that may qualify its columns (the stream's, the alias).
    pub(super) qualifiers: Vec<String>,
    /// The event-time column of its rows (the column watermarks are for),
    /// if it has one.
    pub(super) time: Option<usize>,
    /// How late rows are treated (the source stream's settings).
    pub(super) lateness: Lateness,
    /// The window table function, if the relation is one.
    pub(super) window: Option<TableWindow>,
    /// For messages: "stream 'bids'", "view 'b'", "the subquery".
    pub(super) label: String,
    /// Read `FOR SYSTEM_TIME AS OF ...`: the table of a lookup join.
    pub(super) lookup: bool,
}

/// A column of a relation.
#[derive(Clone)]
pub(super) struct RelColumn {
    pub(super) name: String,
    pub(super) ty: SqlType,
    /// Left out of `SELECT *` (a stream's system columns).
    pub(super) hidden: bool,
    /// Names that may qualify it (its stream's, its FROM item's alias).
    pub(super) qualifiers: Vec<String>,
}

impl Relation {
    /// A stream read whole.
    pub(super) fn stream(stream: Arc<StreamDef>) -> Self {
        let columns = stream
            .schema
            .fields()
            .iter()
            .map(|f| RelColumn {
                name: f.name().clone(),
                ty: SqlType::from_arrow(f.data_type()).unwrap_or(SqlType::Varchar),
                hidden: stream.is_system_column(f.name()),
                qualifiers: vec![stream.name.clone()],
            })
            .collect();
        let plan = LogicalPlan::Scan {
            stream: stream.clone(),
        };
        Relation {
            time: plan.event_time(),
            columns,
            qualifiers: vec![stream.name.clone()],
            lateness: lateness(&stream),
            window: None,
            label: format!("stream '{}'", stream.name),
            lookup: false,
            plan,
        }
    }

    /// The rows of a planned query (a subquery or a view).
    pub(super) fn derived(plan: LogicalPlan, label: String) -> Self {
        let schema = plan.schema();
        // an updating plan's `_op` goes along with its rows, unseen by `*`
        let op = plan.changelog();
        let columns = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| RelColumn {
                name: f.name().clone(),
                ty: SqlType::from_arrow(f.data_type()).unwrap_or(SqlType::Varchar),
                hidden: Some(i) == op,
                qualifiers: Vec::new(),
            })
            .collect();
        Relation {
            time: plan.event_time(),
            lateness: lateness(plan.source()),
            columns,
            qualifiers: Vec::new(),
            window: None,
            label,
            lookup: false,
            plan,
        }
    }

    /// The name of column `i`.
    pub(super) fn name(&self, i: usize) -> &str {
        &self.columns[i].name
    }

    /// Lets `q` (an alias, a view's name) qualify its columns.
    pub(super) fn qualify(&mut self, q: String) {
        for c in &mut self.columns {
            c.qualifiers.push(q.clone());
        }
        self.qualifiers.push(q);
    }
}

/// A window table function in FROM (`TUMBLE(...)`, `HOP(...)`, ...).
#[derive(Clone)]
pub(super) struct TableWindow {
    pub(super) time_column: usize,
    pub(super) window: Window,
}

impl TableWindow {
    pub(super) fn spec(&self, time_name: String) -> WindowSpec {
        WindowSpec {
            time_column: self.time_column,
            time_name,
            window: self.window.clone(),
        }
    }
}

/// Names joined as `a, b or c` (with `last` as the final word).
fn joined(names: &[String], last: &str) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., tail] => format!("{} {last} {tail}", init.join(", ")),
    }
}

/// The window table functions with their arguments.
fn function_signatures() -> Vec<String> {
    WINDOW_SYNTAX
        .iter()
        .map(|s| s.function_signature())
        .collect()
}

/// `HOP(...) or SESSION(...)`: the window table functions whose rows must
/// be aggregated (a row alone does not tell its window).
pub(super) fn aggregate_only_functions() -> String {
    let names: Vec<String> = WINDOW_SYNTAX
        .iter()
        .filter(|s| {
            let probe = vec![1; s.function_args.len()];
            (s.make)(&probe).kind().row_bounds().is_none()
        })
        .map(|s| format!("{}(...)", s.function))
        .collect();
    joined(&names, "or")
}

/// Window table functions other engines have that Eddy does not yet.
const NOT_YET: &[&str] = &["CUMULATE"];

impl Planner<'_> {
    /// Plans the FROM clause: one stream, or a window table function over one.
    /// Several comma-separated items are joined on the WHERE clause
    /// (`where_used` is then set: the condition is the join's).
    pub(super) fn relation(
        &self,
        select: &ast::Select,
        pos: SqlPos,
        where_used: &mut bool,
    ) -> PlanResult<Relation> {
        let Some((first, more)) = select.from.split_first() else {
            return Err(PlanError::new("a query needs FROM <stream>", pos)
                .with_hint("e.g. SELECT * FROM bids, after CREATE STREAM bids (...) WITH (...)"));
        };
        let mut rel = self.joined(first)?;
        for (i, item) in more.iter().enumerate() {
            let right = self.joined(item)?;
            // `FROM a, b WHERE ...` joins a and b on the WHERE clause; a
            // third item has no condition of its own
            let condition = if i == 0 {
                select.selection.as_ref()
            } else {
                None
            };
            rel = self.join(
                rel,
                right,
                crate::plan::logical::JoinKind::Inner,
                condition,
                pos_of(&item.relation),
            )?;
            *where_used = true;
        }
        Ok(rel)
    }

    /// Plans one FROM item: a stream or view (with an alias), a window
    /// table function, or a subquery.
    pub(super) fn plan_from_item(&self, item: &ast::TableFactor) -> PlanResult<Relation> {
        let (name, alias, args) = match item {
            ast::TableFactor::Table {
                name, alias, args, ..
            } => (name, alias, args),
            ast::TableFactor::Derived {
                subquery, alias, ..
            } => {
                let pos = pos_of(item);
                let plan = self.plan(&QueryStatement {
                    query: subquery.clone(),
                    window: None,
                    emit: None,
                    pos: pos_of(subquery.as_ref()),
                })?;
                let label = match alias {
                    Some(a) => format!("subquery '{}'", a.name.value),
                    None => "the subquery".to_string(),
                };
                let mut rel = Relation::derived(plan, label);
                if let Some(a) = alias {
                    if !a.columns.is_empty() {
                        return Err(unsupported("column aliases on a FROM item", pos));
                    }
                    rel.qualify(a.name.value.clone());
                }
                return Ok(rel);
            }
            other => {
                return Err(unsupported(
                    "this kind of FROM item (UNNEST, LATERAL, ...)",
                    pos_of(other),
                ));
            }
        };
        let rpos = pos_of(name);
        let mut aliases = Vec::new();
        if let Some(a) = alias {
            if !a.columns.is_empty() {
                return Err(unsupported("column aliases on a FROM item", rpos));
            }
            aliases.push(a.name.value.clone());
        }
        let fname = crate::sql::scope::object_name(name);
        let Some(args) = args else {
            let mut rel = self.named(&fname, rpos)?;
            for a in aliases {
                rel.qualify(a);
            }
            return Ok(rel);
        };
        let Some(syntax) = WindowSyntax::function(&fname) else {
            if NOT_YET.iter().any(|n| n.eq_ignore_ascii_case(&fname)) {
                return Err(PlanError::new(
                    format!("{fname}(...) windows are not supported yet"),
                    rpos,
                )
                .with_hint(format!("use {}", joined(&function_signatures(), "or"))));
            }
            return Err(
                PlanError::new(format!("unknown table function '{fname}'"), rpos).with_hint(
                    format!(
                        "the window table functions are {}",
                        joined(&function_signatures(), "and")
                    ),
                ),
            );
        };
        let (what, usage) = (syntax.function, syntax.function_usage);
        let nargs = 2 + syntax.function_args.len();
        let exprs: Vec<&ast::Expr> = args
            .args
            .iter()
            .map(|a| match a {
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Ok(e),
                _ => Err(
                    PlanError::new(format!("{what} takes positional arguments"), rpos)
                        .with_hint(usage),
                ),
            })
            .collect::<PlanResult<_>>()?;
        if exprs.len() != nargs {
            return Err(PlanError::new(
                format!("{what} takes {nargs} arguments, got {}", exprs.len()),
                rpos,
            )
            .with_hint(usage));
        }
        let (s, t) = (exprs[0], exprs[1]);
        let mut rel = match s {
            ast::Expr::Subquery(query) => {
                let plan = self.plan(&QueryStatement {
                    query: query.clone(),
                    window: None,
                    emit: None,
                    pos: pos_of(query.as_ref()),
                })?;
                Relation::derived(plan, "the subquery".into())
            }
            _ => {
                let input_name = ident_arg(s).ok_or_else(|| {
                    PlanError::new(
                        format!("{what}'s first argument must be a stream, a view or a (subquery)"),
                        rpos,
                    )
                    .with_hint(usage)
                })?;
                self.named(&input_name, pos_of(s))?
            }
        };
        let time_name = ident_arg(t).ok_or_else(|| {
            PlanError::new(
                format!("{what}'s second argument must be a TIMESTAMP column"),
                pos_of(t),
            )
            .with_hint(usage)
        })?;
        let time_col = rel
            .columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(&time_name))
            .ok_or_else(|| {
                PlanError::new(
                    format!("unknown column '{time_name}' in {}", rel.label),
                    pos_of(t),
                )
                .with_hint(format!(
                    "available columns: {}",
                    rel.columns
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        check_time_column(&rel, time_col, pos_of(t))?;
        let intervals = syntax
            .function_args
            .iter()
            .zip(&exprs[2..])
            .map(|(name, e)| window_size(e, &format!("{what}'s {name}")))
            .collect::<PlanResult<Vec<i64>>>()?;
        for a in aliases {
            rel.qualify(a);
        }
        rel.window = Some(TableWindow {
            time_column: time_col,
            window: checked_window(syntax, &intervals, rpos)?,
        });
        Ok(rel)
    }

    /// The stream or view called `name`.
    fn named(&self, name: &str, pos: SqlPos) -> PlanResult<Relation> {
        if let Some(table) = name.strip_suffix(super::clauses::LOOKUP_MARK) {
            let mut rel = self.named(table, pos)?;
            rel.lookup = true;
            return Ok(rel);
        }
        if let Some(view) = self.catalog.view(name) {
            let plan = self.plan(&QueryStatement {
                query: view.query.clone(),
                window: None,
                emit: None,
                pos: view.pos,
            })?;
            let mut rel = Relation::derived(plan, format!("view '{}'", view.name));
            rel.qualify(view.name.clone());
            return Ok(rel);
        }
        Ok(Relation::stream(readable(self.lookup(name, pos)?, pos)?))
    }

    /// The stream called `name`, or an error naming the declared ones.
    pub(super) fn lookup(&self, name: &str, pos: SqlPos) -> PlanResult<Arc<StreamDef>> {
        let catalog = self.catalog;
        catalog.stream(name).ok_or_else(|| {
            let names = catalog.stream_names();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let err = PlanError::new(format!("unknown stream '{name}'"), pos);
            match (closest(name, &refs), names.is_empty()) {
                (_, true) => err
                    .with_hint("declare it first: CREATE STREAM name (...) WITH (connector = ...)"),
                (Some(s), _) => err.with_hint(format!(
                    "did you mean '{s}'? declared streams: {}",
                    names.join(", ")
                )),
                (None, _) => err.with_hint(format!("declared streams: {}", names.join(", "))),
            }
        })
    }

    /// The window of a query: its window table function's, or the one its
    /// `GROUP BY ... WINDOW` clause names.
    pub(super) fn window(
        &self,
        q: &QueryStatement,
        rel: &Relation,
    ) -> PlanResult<Option<WindowSpec>> {
        window_spec(q, rel)
    }
}

/// `bids`, `TABLE bids` or `DESCRIPTOR(col)` as a plain name.
pub(super) fn ident_arg(e: &ast::Expr) -> Option<String> {
    match e {
        ast::Expr::Identifier(i) => Some(i.value.clone()),
        ast::Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("descriptor") => match &f
            .args
        {
            ast::FunctionArguments::List(l) => match l.args.as_slice() {
                [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(inner))] => ident_arg(inner),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

/// A stream a query can read: it must have columns.
pub(super) fn readable(stream: Arc<StreamDef>, pos: SqlPos) -> PlanResult<Arc<StreamDef>> {
    if stream.schema.fields().is_empty() {
        return Err(PlanError::new(
            format!(
                "stream '{}' declares no columns, so it cannot be read",
                stream.name
            ),
            pos,
        )
        .with_hint("list its columns: CREATE STREAM s (a BIGINT, b VARCHAR, ...) WITH (...)"));
    }
    Ok(stream)
}

pub(super) fn check_time_column(rel: &Relation, col: usize, pos: SqlPos) -> PlanResult<()> {
    let name = rel.name(col);
    if rel.columns[col].ty != SqlType::Timestamp {
        return Err(PlanError::new(
            format!("window time column '{name}' must be a TIMESTAMP"),
            pos,
        ));
    }
    if rel.plan.proc_time() == Some(col) {
        // processing time: the window closes by the wall clock
        return Ok(());
    }
    match rel.time {
        Some(t) if t == col => Ok(()),
        Some(t) => Err(PlanError::new(
            format!(
                "windows must use {}'s watermark column '{}', not '{name}'",
                rel.label,
                rel.name(t)
            ),
            pos,
        )
        .with_hint("window on the column the WATERMARK is declared for")),
        None if rel.plan.is_updating() => Err(PlanError::new(
            format!(
                "{} is a changelog (its rows update earlier ones), so it has no event time to window on",
                rel.label
            ),
            pos,
        )
        .with_hint("window the stream inside the subquery or view instead, before it aggregates or ranks")),
        None if matches!(rel.plan, LogicalPlan::Scan { .. }) => Err(PlanError::new(
            format!("{} has no watermark, so its windows would never close", rel.label),
            pos,
        )
        .with_hint(format!(
            "declare one in CREATE STREAM: WATERMARK FOR {name} AS {name} - INTERVAL '5' SECOND"
        ))),
        None => Err(PlanError::new(
            format!(
                "'{name}' of {} is not an event-time column, so its windows would never close",
                rel.label
            ),
            pos,
        )
        .with_hint("select the stream's watermark column unchanged in the subquery or view, and window on it")),
    }
}

pub(super) fn window_size(e: &ast::Expr, what: &str) -> PlanResult<i64> {
    let ast::Expr::Interval(iv) = e else {
        return Err(
            PlanError::new(format!("{what} must be an INTERVAL"), pos_of(e))
                .with_hint("write INTERVAL '10' SECOND"),
        );
    };
    let ms = interval_ms(iv, pos_of(e))?;
    if ms <= 0 {
        return Err(PlanError::new(
            format!("{what} must be positive"),
            pos_of(e),
        ));
    }
    Ok(ms)
}

fn window_spec(q: &QueryStatement, rel: &Relation) -> PlanResult<Option<WindowSpec>> {
    let time = |col: usize| rel.name(col).to_string();
    let Some(w) = &q.window else {
        return Ok(rel.window.as_ref().map(|tw| tw.spec(time(tw.time_column))));
    };
    if rel.window.is_some() {
        return Err(PlanError::new(
            "a query over a window table function cannot also have a WINDOW clause",
            w.pos,
        ));
    }
    let Some(syntax) = WindowSyntax::clause(&w.kind) else {
        let forms: Vec<String> = WINDOW_SYNTAX.iter().map(|s| s.clause_signature()).collect();
        return Err(PlanError::new(
            format!("WINDOW {}(...) is not supported yet", w.kind),
            w.pos,
        )
        .with_hint(format!("use {}", joined(&forms, "or"))));
    };
    let (args_ok, usage) = (
        w.args.len() == syntax.clause_args.len(),
        syntax.clause_usage,
    );
    if !args_ok {
        return Err(PlanError::new(
            format!("wrong number of arguments to WINDOW {}", w.kind),
            w.pos,
        )
        .with_hint(usage));
    }
    let c = rel.time.ok_or_else(|| {
        PlanError::new(
            format!(
                "{} has no watermark, so WINDOW {} has no event time",
                rel.label, w.kind
            ),
            w.pos,
        )
        .with_hint("declare one in CREATE STREAM: WATERMARK FOR ts AS ts - INTERVAL '5' SECOND")
    })?;
    let mut intervals = vec![0; syntax.function_args.len()];
    for ((name, at), e) in syntax.clause_args.iter().zip(&w.args) {
        intervals[*at] = window_size(e, &format!("WINDOW {}'s {name}", w.kind))?;
    }
    Ok(Some(
        TableWindow {
            time_column: c,
            window: checked_window(syntax, &intervals, w.pos)?,
        }
        .spec(time(c)),
    ))
}

/// The window `syntax` makes of `intervals`, if its geometry is within
/// the limits (see `exec/window`'s `MAX_WINDOWS_PER_ROW`).
fn checked_window(syntax: &WindowSyntax, intervals: &[i64], pos: SqlPos) -> PlanResult<Window> {
    let window = (syntax.make)(intervals);
    window
        .kind()
        .check_limits()
        .map_err(|(message, hint)| PlanError::new(message, pos).with_hint(hint))?;
    Ok(window)
}

pub(super) fn is_window_column(e: &ast::Expr) -> Option<usize> {
    let name = match e {
        ast::Expr::Identifier(i) => &i.value,
        ast::Expr::CompoundIdentifier(p) if p.len() == 2 => &p[1].value,
        _ => return None,
    };
    match name.to_ascii_lowercase().as_str() {
        "window_start" | "_window_start" => Some(0),
        "window_end" | "_window_end" => Some(1),
        _ => None,
    }
}
