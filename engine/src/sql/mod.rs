//! The SQL front end: parses a script and plans its statements against the
//! streams it declares.

pub(crate) mod aggregate;
pub(crate) mod clauses;
pub(crate) mod ddl;
pub(crate) mod expr;
pub(crate) mod expr_aggregate;
pub mod functions;
pub(crate) mod group_window;
pub(crate) mod join;
pub(crate) mod limits;
pub(crate) mod literal;
pub(crate) mod over;
pub(crate) mod parser;
pub(crate) mod paths;
pub(crate) mod query;
pub(crate) mod relation;
pub(crate) mod retract;
pub(crate) mod scope;
pub(crate) mod syntax_error;
pub(crate) mod top_n;
pub(crate) mod typing;
pub(crate) mod union;

use std::sync::Arc;

use crate::catalog::StreamDef;
use crate::error::{PlanError, PlanResult};
use crate::plan::expr::Expr;
use crate::plan::logical::{LogicalPlan, QueryPlan, SinkTarget};
use crate::sql::parser::Statement;
use crate::types::SqlType;

/// The largest SQL script read from a file.
pub const MAX_SCRIPT_BYTES: u64 = 16 << 20;

/// Why a script file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ScriptFileError {
    /// It cannot be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// It is larger than [`MAX_SCRIPT_BYTES`] (`/dev/zero`, a wrong file).
    #[error("{path} is larger than {} MiB, too large for a SQL script (is it the right file?)", MAX_SCRIPT_BYTES >> 20)]
    TooLarge {
        /// The file.
        path: String,
    },
    /// It is not UTF-8 text.
    #[error("{path} is not UTF-8 text (byte {at} is not): is it the right file?")]
    NotText {
        /// The file.
        path: String,
        /// The offset of the first byte that is not.
        at: usize,
    },
}

/// Reads a SQL script of at most [`MAX_SCRIPT_BYTES`] (so `/dev/zero` is
/// refused instead of read until memory runs out).
///
/// # Errors
/// [`ScriptFileError`]: unreadable, too large, not UTF-8.
pub fn read_script(file: &std::path::Path) -> Result<String, ScriptFileError> {
    use std::io::Read;
    let path = file.display().to_string();
    let io = |source| ScriptFileError::Io {
        path: path.clone(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(file)
        .map_err(io)?
        .take(MAX_SCRIPT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_SCRIPT_BYTES {
        return Err(ScriptFileError::TooLarge { path });
    }
    String::from_utf8(bytes).map_err(|e| ScriptFileError::NotText {
        path,
        at: e.utf8_error().valid_up_to(),
    })
}

/// The streams declared so far.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    streams: Vec<Arc<StreamDef>>,
    views: Vec<Arc<query::ViewDef>>,
    /// `SET 'state.ttl'`, for the queries after it.
    state_ttl: Option<i64>,
    udfs: Arc<Vec<Arc<crate::udf::UdfModule>>>,
}

impl Catalog {
    /// An empty catalog whose queries may call the functions of `modules`.
    pub fn with_udfs(modules: Vec<Arc<crate::udf::UdfModule>>) -> Self {
        Self {
            streams: Vec::new(),
            views: Vec::new(),
            state_ttl: None,
            udfs: Arc::new(modules),
        }
    }

    /// The stream called `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<Arc<StreamDef>> {
        self.streams
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
            .cloned()
    }

    /// All streams, in declaration order.
    pub fn streams(&self) -> &[Arc<StreamDef>] {
        &self.streams
    }
}

impl query::StreamLookup for Catalog {
    fn stream(&self, name: &str) -> Option<Arc<StreamDef>> {
        self.get(name)
    }

    fn stream_names(&self) -> Vec<String> {
        self.streams.iter().map(|s| s.name.clone()).collect()
    }

    fn udfs(&self) -> Arc<Vec<Arc<crate::udf::UdfModule>>> {
        self.udfs.clone()
    }

    fn state_ttl(&self) -> Option<i64> {
        self.state_ttl
    }

    fn view(&self, name: &str) -> Option<Arc<query::ViewDef>> {
        self.views
            .iter()
            .find(|v| v.name.eq_ignore_ascii_case(name))
            .cloned()
    }
}

/// What one statement of a script amounts to.
#[derive(Debug, Clone)]
pub enum PlannedStatement {
    /// A stream was declared.
    CreatedStream(Arc<StreamDef>),
    /// A view was declared (the schema of its rows).
    CreatedView(arrow::datatypes::SchemaRef),
    /// A setting for the planning of the queries after it (`state.ttl`).
    Setting,
    /// A query to run.
    Query(QueryPlan),
    /// A query to explain, not run.
    Explain(QueryPlan),
    /// `SET 'checkpoint.interval' = '...'`: the queries after it
    /// checkpoint at this interval.
    CheckpointInterval(std::time::Duration),
}

impl Catalog {
    /// Parses and plans a script, declaring its streams in this catalog.
    ///
    /// # Errors
    /// The first statement that does not parse or plan, with its position.
    pub fn plan_script(&mut self, sql: &str) -> PlanResult<Vec<PlannedStatement>> {
        parser::parse_script(sql)?
            .iter()
            .map(|s| self.plan_statement(s))
            .collect()
    }

    fn plan_statement(&mut self, stmt: &Statement) -> PlanResult<PlannedStatement> {
        match stmt {
            Statement::CreateView { name, query, pos } => {
                use query::StreamLookup;
                if self.get(&name.value).is_some() || self.view(&name.value).is_some() {
                    return Err(PlanError::new(
                        format!("'{}' is already declared", name.value),
                        *pos,
                    )
                    .with_hint("use a different name"));
                }
                let view = Arc::new(query::ViewDef {
                    name: name.value.clone(),
                    query: query.query.clone(),
                    pos: query.pos,
                });
                // planned now so a mistake is reported where the view is declared
                let planned = query::Planner::new(self).plan(query)?;
                self.views.push(view);
                Ok(PlannedStatement::CreatedView(planned.schema()))
            }
            Statement::CreateStream(c) => {
                use query::StreamLookup;
                if self.view(&c.name.value).is_some() {
                    return Err(PlanError::new(
                        format!("'{}' is already declared as a view", c.name.value),
                        c.pos,
                    )
                    .with_hint("use a different name"));
                }
                if let Some(existing) = self.get(&c.name.value) {
                    return Err(PlanError::new(
                        format!("stream '{}' is already declared", existing.name),
                        c.pos,
                    )
                    .with_hint("use a different name"));
                }
                let def = Arc::new(ddl::create_stream(c)?);
                self.streams.push(def.clone());
                Ok(PlannedStatement::CreatedStream(def))
            }
            Statement::Query(q) => {
                let root = query::Planner::new(self).plan(q)?;
                Ok(PlannedStatement::Query(QueryPlan {
                    root,
                    sink: SinkTarget::Stdout,
                }))
            }
            Statement::Insert {
                target,
                query: q,
                pos,
            } => {
                let name = scope::object_name(target);
                let sink = self.get(&name).ok_or_else(|| {
                    PlanError::new(format!("unknown sink stream '{name}'"), *pos)
                        .with_hint("declare it first: CREATE STREAM out (...) WITH (connector = 'file', path = '...')")
                })?;
                let writable = |c: &dyn crate::connectors::registry::Connector| c.can_write();
                if !crate::connectors::registry::find(sink.connector()).is_some_and(writable) {
                    return Err(PlanError::new(
                        format!(
                            "stream '{}' uses connector '{}', which cannot be written to",
                            sink.name,
                            sink.connector()
                        ),
                        *pos,
                    )
                    .with_hint(format!(
                        "INSERT INTO a stream with connector {}",
                        crate::connectors::registry::listed_quoted(writable)
                    )));
                }
                let root = query::Planner::new(self).plan(q)?;
                let root = conform_to_sink(root, &sink, *pos)?;
                Ok(PlannedStatement::Query(QueryPlan {
                    root,
                    sink: SinkTarget::Stream(sink),
                }))
            }
            Statement::Set { key, value, pos } if key.eq_ignore_ascii_case("state.ttl") => {
                match crate::catalog::parse_duration_ms(value) {
                    Some(ms) if ms > 0 => {
                        self.state_ttl = Some(ms);
                        Ok(PlannedStatement::Setting)
                    }
                    _ => Err(
                        PlanError::new(format!("'{value}' is not a time-to-live"), *pos)
                            .with_hint("give a duration, e.g. '1h', '30m', '10s'"),
                    ),
                }
            }
            Statement::Set { key, value, pos } => {
                if !key.eq_ignore_ascii_case("checkpoint.interval") {
                    return Err(PlanError::new(format!("unknown setting '{key}'"), *pos)
                        .with_hint("the settings are: 'checkpoint.interval' (e.g. SET 'checkpoint.interval' = '5s') and 'state.ttl' (SET 'state.ttl' = '1h')"));
                }
                match crate::catalog::parse_duration_ms(value) {
                    Some(ms) if ms >= 10 => Ok(PlannedStatement::CheckpointInterval(
                        std::time::Duration::from_millis(ms as u64),
                    )),
                    _ => Err(PlanError::new(
                        format!("'{value}' is not a checkpoint interval"),
                        *pos,
                    )
                    .with_hint("give a duration of at least 10ms, e.g. '500ms', '10s', '1m'")),
                }
            }
            Statement::Explain(inner) => match self.plan_statement(inner)? {
                PlannedStatement::Query(q) => Ok(PlannedStatement::Explain(q)),
                _ => Err(PlanError::unplaced(
                    "EXPLAIN works on SELECT and INSERT INTO",
                )),
            },
        }
    }
}

/// Renames and casts a query's output to the sink's declared columns.
fn conform_to_sink(
    root: LogicalPlan,
    sink: &StreamDef,
    pos: crate::error::SqlPos,
) -> PlanResult<LogicalPlan> {
    // a stream's system columns are read, never written
    let fields: Vec<&arrow::datatypes::FieldRef> = sink
        .schema
        .fields()
        .iter()
        .filter(|f| !sink.is_system_column(f.name()))
        .collect();
    let LogicalPlan::Project { input, exprs } = root else {
        return Ok(root);
    };
    if fields.is_empty() {
        return Ok(LogicalPlan::Project { input, exprs });
    }
    let mut exprs = exprs;
    let op = crate::plan::logical::OP_COLUMN;
    // a sink that writes a changelog its own way (upserts, or not at all)
    // need not declare how rows change (as in Flink); it gets the `_op`
    let own_way = crate::connectors::registry::find(sink.connector())
        .is_some_and(|c| c.changelog_writes().is_some());
    let undeclared_op = (own_way
        && exprs.first().is_some_and(|(_, n)| n == op)
        && !fields.iter().any(|f| f.name() == op))
    .then(|| exprs.remove(0));
    if fields.len() != exprs.len() {
        let names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
        let changelog = exprs
            .iter()
            .any(|(_, n)| n == crate::plan::logical::OP_COLUMN);
        let (what, hint) = if changelog && !names.contains(&crate::plan::logical::OP_COLUMN) {
            (
                format!(
                    "INSERT INTO '{}' gives {} columns, but the stream has {}: the query's rows update earlier ones, and such a changelog carries the column _op (+I, -U, +U, -D) first",
                    sink.name,
                    exprs.len(),
                    fields.len()
                ),
                format!(
                    "declare it in the sink: CREATE STREAM {} (_op VARCHAR, {}) ..., or leave the sink's columns out",
                    sink.name,
                    fields
                        .iter()
                        .map(|f| {
                            let ty = SqlType::from_arrow(f.data_type())
                                .map_or_else(|| f.data_type().to_string(), |t| t.to_string());
                            format!("{} {ty}", f.name())
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        } else {
            (
                format!(
                    "INSERT INTO '{}' gives {} columns, but the stream has {}",
                    sink.name,
                    exprs.len(),
                    fields.len()
                ),
                format!("select exactly: {}", names.join(", ")),
            )
        };
        return Err(PlanError::new(what, pos).with_hint(hint));
    }
    let exprs = undeclared_op
        .into_iter()
        .chain(exprs.into_iter().zip(fields.iter()).map(|((e, _), f)| {
            let ty = SqlType::from_arrow(f.data_type()).unwrap_or(SqlType::Varchar);
            (typing::coerce(e, ty), f.name().clone())
        }))
        .collect::<Vec<(Expr, String)>>();
    Ok(LogicalPlan::Project { input, exprs })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(sql: &str) -> PlanResult<Vec<PlannedStatement>> {
        Catalog::default().plan_script(sql)
    }

    const BIDS: &str = "CREATE STREAM bids (auction BIGINT, channel VARCHAR, date_time TIMESTAMP) \
                        WITH (connector = 'file', path = 'x.jsonl');";

    /// Regression: LOWER/UPPER/LENGTH indexed their argument list after
    /// emptying it and panicked while planning.
    #[test]
    fn one_argument_string_functions_plan_without_panicking() {
        for f in ["LOWER", "UPPER", "LENGTH", "CHAR_LENGTH"] {
            plan(&format!("{BIDS} SELECT {f}(channel) AS x FROM bids")).unwrap();
            let e = plan(&format!("{BIDS} SELECT {f}() FROM bids")).unwrap_err();
            assert!(e.message.contains("takes 1 argument(s), got 0"), "{e}");
        }
    }

    /// The window clause's kinds come from the window registry; an unknown
    /// kind called like one gets the list, a standard named window is left
    /// to sqlparser.
    #[test]
    fn window_clauses_are_the_registered_kinds() {
        let timed = "CREATE STREAM b (k BIGINT, t TIMESTAMP, WATERMARK FOR t AS t) \
                     WITH (connector = 'file', path = 'x.jsonl');";
        for clause in [
            "TUMBLING(INTERVAL '1' SECOND)",
            "SLIDING(INTERVAL '2' SECOND, INTERVAL '1' SECOND)",
            "SESSION(INTERVAL '1' SECOND)",
        ] {
            plan(&format!(
                "{timed} SELECT k, COUNT(*) FROM b GROUP BY k WINDOW {clause}"
            ))
            .unwrap_or_else(|e| panic!("{clause}: {e}"));
        }
        let e = plan(&format!(
            "{timed} SELECT k, COUNT(*) FROM b GROUP BY k WINDOW HOPPING(INTERVAL '1' SECOND)"
        ))
        .unwrap_err();
        assert_eq!(e.message, "WINDOW HOPPING(...) is not supported yet");
        let hint = e.hint.unwrap_or_default();
        assert!(hint.contains("WINDOW SLIDING(size, advance)"), "{hint}");
        let e = plan(&format!(
            "{timed} SELECT k FROM b WINDOW w AS (PARTITION BY k)"
        ))
        .unwrap_err();
        assert!(e.message.contains("named WINDOW"), "{e}");
    }

    #[test]
    fn every_statement_kind_plans() {
        let out = plan(&format!(
            "{BIDS} CREATE STREAM o WITH (connector = 'stdout');
             SELECT * FROM bids; INSERT INTO o SELECT auction FROM bids; EXPLAIN SELECT auction FROM bids;"
        ))
        .unwrap();
        assert!(matches!(
            out.as_slice(),
            [
                PlannedStatement::CreatedStream(_),
                PlannedStatement::CreatedStream(_),
                PlannedStatement::Query(_),
                PlannedStatement::Query(_),
                PlannedStatement::Explain(_)
            ]
        ));
    }
}
