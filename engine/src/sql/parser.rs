//! Parses Eddy's SQL dialect: standard SQL through `sqlparser`, plus the
//! streaming extensions it does not know (`CREATE STREAM ... WATERMARK FOR`,
//! `GROUP BY ... WINDOW TUMBLING(...)`, `EMIT FINAL | CHANGES`), which are
//! recognised at the token level so that every position stays exact.

use sqlparser::ast::{
    self as ast, DataType, Expr, Ident, ObjectName, Query, Spanned, Statement as SqlStatement,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Location, Span, Token, TokenWithSpan, Tokenizer};

use crate::error::{PlanError, PlanResult, SqlPos};
use crate::sql::clauses::{
    is_trivia, significant, take_emit, take_window_clause, unwrap_table_calls, word,
};
use crate::sql::syntax_error::{expect_end, expected, parser_error, strip_location};

/// One statement of a script.
#[derive(Debug, Clone)]
pub enum Statement {
    /// `CREATE STREAM ...`
    CreateStream(Box<CreateStream>),
    /// `CREATE VIEW name AS query`
    CreateView {
        /// Its name.
        name: Ident,
        /// Its query.
        query: QueryStatement,
        /// Position of `CREATE`.
        pos: SqlPos,
    },
    /// A bare query (results to stdout).
    Query(QueryStatement),
    /// `INSERT INTO sink SELECT ...`
    Insert {
        /// The sink stream.
        target: ObjectName,
        /// The query feeding it.
        query: QueryStatement,
        /// Position of the statement.
        pos: SqlPos,
    },
    /// `EXPLAIN <query or insert>`
    Explain(Box<Statement>),
    /// `SET 'key' = 'value'`: a setting of the queries that follow.
    Set {
        /// The setting's name.
        key: String,
        /// Its value, as written.
        value: String,
        /// Position of the statement.
        pos: SqlPos,
    },
}

/// `CREATE STREAM name (columns, WATERMARK FOR ...) WITH (options)`.
#[derive(Debug, Clone)]
pub struct CreateStream {
    /// Stream name.
    pub name: Ident,
    /// Declared columns.
    pub columns: Vec<ColumnDef>,
    /// `WATERMARK FOR col AS expr`.
    pub watermark: Option<WatermarkDef>,
    /// `PRIMARY KEY (a, b) NOT ENFORCED`, or a column's `PRIMARY KEY`.
    pub primary_key: Vec<Ident>,
    /// `WITH (key = 'value', ...)`, keys as written.
    pub options: Vec<(String, String, SqlPos)>,
    /// Position of `CREATE`.
    pub pos: SqlPos,
}

/// A column of `CREATE STREAM`.
#[derive(Debug, Clone)]
pub struct ColumnDef {
    /// Name.
    pub name: Ident,
    /// Declared type.
    pub data_type: DataType,
    /// Position of the type.
    pub type_pos: SqlPos,
}

/// `WATERMARK FOR column AS expr`.
#[derive(Debug, Clone)]
pub struct WatermarkDef {
    /// The event-time column.
    pub column: Ident,
    /// The watermark expression, e.g. `date_time - INTERVAL '4' SECOND`.
    pub expr: Expr,
    /// Position of `WATERMARK`.
    pub pos: SqlPos,
}

/// A query with Eddy's streaming clauses split off.
#[derive(Debug, Clone)]
pub struct QueryStatement {
    /// The standard SQL part.
    pub query: Box<Query>,
    /// `WINDOW TUMBLING(...)` after GROUP BY, if any.
    pub window: Option<WindowClause>,
    /// `EMIT FINAL | EMIT CHANGES`, if written.
    pub emit: Option<(EmitKeyword, SqlPos)>,
    /// Position of the query's first token.
    pub pos: SqlPos,
}

/// The shorthand window clause `WINDOW KIND(args)`.
#[derive(Debug, Clone)]
pub struct WindowClause {
    /// `TUMBLING`, `SLIDING` or `SESSION`, upper-cased.
    pub kind: String,
    /// Arguments (intervals).
    pub args: Vec<Expr>,
    /// Position of `WINDOW`.
    pub pos: SqlPos,
}

/// The emit mode as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmitKeyword {
    /// `EMIT FINAL`
    Final,
    /// `EMIT CHANGES`
    Changes,
}

/// Parses a script of `;`-separated statements.
///
/// # Errors
/// The first syntax error, with its line and column.
pub fn parse_script(sql: &str) -> PlanResult<Vec<Statement>> {
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| {
            PlanError::new(
                format!("syntax error: {}", strip_location(&e.message)),
                e.location,
            )
        })?;
    let mut statements = Vec::new();
    for part in tokens.split(|t| t.token == Token::SemiColon) {
        if part.iter().any(|t| !is_trivia(&t.token)) {
            super::limits::check_operator_depth(part)?;
            statements.push(parse_statement(part.to_vec())?);
        }
    }
    if statements.is_empty() {
        return Err(PlanError::unplaced("the SQL text contains no statement")
            .with_hint("write a CREATE STREAM, SELECT, INSERT INTO or EXPLAIN statement"));
    }
    Ok(statements)
}

/// `SET 'key' = 'value'` (Flink's form; the key may also be written bare,
/// with dots, and the value as a number).
fn parse_set(tokens: &[TokenWithSpan], sig: &[usize], pos: SqlPos) -> PlanResult<Statement> {
    let bad = |at: usize| {
        let p: SqlPos = sig.get(at).map_or(pos, |&i| tokens[i].span.into());
        PlanError::new("SET expects 'key' = 'value'", p)
            .with_hint("write e.g. SET 'checkpoint.interval' = '5s';")
    };
    let text = |t: &Token| match t {
        Token::SingleQuotedString(s) | Token::Number(s, _) => Some(s.clone()),
        Token::Word(w) => Some(w.value.clone()),
        Token::Period => Some(".".into()),
        _ => None,
    };
    let eq = (1..sig.len())
        .find(|&i| tokens[sig[i]].token == Token::Eq)
        .ok_or_else(|| bad(1))?;
    let key: Option<String> = sig[1..eq].iter().map(|&i| text(&tokens[i].token)).collect();
    let value: Option<String> = sig[eq + 1..]
        .iter()
        .map(|&i| text(&tokens[i].token))
        .collect();
    match (key, value) {
        (Some(key), Some(value)) if !key.is_empty() && !value.is_empty() => {
            Ok(Statement::Set { key, value, pos })
        }
        _ => Err(bad(eq + 1)),
    }
}

fn parse_statement(mut tokens: Vec<TokenWithSpan>) -> PlanResult<Statement> {
    // an explicit end-of-statement token, so "unexpected end" errors have a position
    tokens.retain(|t| t.token != Token::EOF);
    let sig = significant(&tokens);
    let first = word(&tokens[sig[0]].token).unwrap_or_default();
    let pos: SqlPos = tokens[sig[0]].span.into();
    if first == "EXPLAIN" {
        tokens.drain(..=sig[0]);
        if significant(&tokens).is_empty() {
            return Err(PlanError::new("EXPLAIN needs a statement to explain", pos)
                .with_hint("write EXPLAIN SELECT ... or EXPLAIN INSERT INTO ..."));
        }
        let inner = parse_statement(tokens)?;
        return match inner {
            Statement::CreateStream(_)
            | Statement::CreateView { .. }
            | Statement::Explain(_)
            | Statement::Set { .. } => Err(PlanError::new(
                "EXPLAIN works on SELECT and INSERT INTO statements",
                pos,
            )),
            other => Ok(Statement::Explain(Box::new(other))),
        };
    }
    if first == "SET" {
        return parse_set(&tokens, &sig, pos);
    }
    if first == "CREATE"
        && sig.len() > 1
        // Flink's CREATE TABLE declares a stream too
        && matches!(word(&tokens[sig[1]].token).as_deref(), Some("STREAM" | "TABLE"))
    {
        let end = tokens[sig[sig.len() - 1]].span.end;
        tokens.push(TokenWithSpan {
            token: Token::EOF,
            span: Span::new(end, end),
        });
        return parse_create_stream(tokens, pos).map(|c| Statement::CreateStream(Box::new(c)));
    }
    let end = tokens[sig[sig.len() - 1]].span.end;
    unwrap_table_calls(&mut tokens);
    super::clauses::mark_lookup_tables(&mut tokens);
    let emit = take_emit(&mut tokens)?;
    let window = take_window_clause(&mut tokens)?;
    tokens.push(TokenWithSpan {
        token: Token::EOF,
        span: Span::new(end, end),
    });
    let dialect = GenericDialect {};
    let mut parser = Parser::new(&dialect).with_tokens_with_locations(tokens);
    let stmt = parser
        .parse_statement()
        .map_err(|e| parser_error(e, &parser))?;
    expect_end(&parser)?;
    match stmt {
        SqlStatement::CreateView(v) => {
            if v.or_replace || v.materialized || !v.columns.is_empty() {
                return Err(PlanError::new(
                    "CREATE VIEW takes a name and a query: OR REPLACE, MATERIALIZED and column lists are not supported",
                    pos,
                )
                .with_hint("write CREATE VIEW name AS SELECT ..."));
            }
            if window.is_some() || emit.is_some() {
                return Err(PlanError::new(
                    "a view's query cannot have a WINDOW or EMIT clause",
                    pos,
                )
                .with_hint("window it with TUMBLE(...) where the view is read"));
            }
            let name = match v.name.0.as_slice() {
                [ast::ObjectNamePart::Identifier(i)] => i.clone(),
                _ => {
                    return Err(PlanError::new(
                        format!("'{}' is not a plain view name", v.name),
                        pos,
                    ));
                }
            };
            let qpos = pos_of(v.query.as_ref());
            Ok(Statement::CreateView {
                name,
                query: QueryStatement {
                    query: v.query,
                    window: None,
                    emit: None,
                    pos: qpos,
                },
                pos,
            })
        }
        SqlStatement::Query(query) => Ok(Statement::Query(QueryStatement {
            query,
            window,
            emit,
            pos,
        })),
        SqlStatement::Insert(insert) => {
            let target = match insert.table {
                sqlparser::ast::TableObject::TableName(name) => name,
                other => {
                    return Err(PlanError::new(format!("cannot insert into {other}"), pos)
                        .with_hint("write INSERT INTO <stream> SELECT ..."));
                }
            };
            if !insert.columns.is_empty() {
                return Err(
                    PlanError::new("INSERT INTO with a column list is not supported", pos)
                        .with_hint("select the columns in the sink's order instead"),
                );
            }
            let Some(query) = insert.source else {
                return Err(PlanError::new("INSERT INTO needs a SELECT", pos));
            };
            Ok(Statement::Insert {
                target,
                query: QueryStatement {
                    query,
                    window,
                    emit,
                    pos,
                },
                pos,
            })
        }
        other => Err(PlanError::new(
            format!("unsupported statement: {}", first_words(&other)),
            pos,
        )
        .with_hint(
            "Eddy runs CREATE STREAM, CREATE VIEW, SELECT, INSERT INTO ... SELECT and EXPLAIN",
        )),
    }
}

fn first_words(stmt: &SqlStatement) -> String {
    stmt.to_string()
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

fn parse_create_stream(tokens: Vec<TokenWithSpan>, pos: SqlPos) -> PlanResult<CreateStream> {
    let dialect = GenericDialect {};
    let mut p = Parser::new(&dialect).with_tokens_with_locations(tokens);
    p.next_token(); // CREATE
    p.next_token(); // STREAM or TABLE
    let if_not_exists = p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    if if_not_exists {
        return Err(
            PlanError::new("CREATE STREAM IF NOT EXISTS is not supported", pos)
                .with_hint("each script declares its streams once; drop IF NOT EXISTS"),
        );
    }
    let name = p.parse_identifier().map_err(|e| parser_error(e, &p))?;
    let mut columns = Vec::new();
    let mut watermark = None;
    let mut primary_key = Vec::new();
    if p.consume_token(&Token::LParen) {
        loop {
            let tok = p.peek_token();
            if word(&tok.token).as_deref() == Some("WATERMARK") {
                p.next_token();
                let wpos: SqlPos = tok.span.into();
                p.expect_keyword(Keyword::FOR)
                    .map_err(|e| parser_error(e, &p))?;
                let column = p.parse_identifier().map_err(|e| parser_error(e, &p))?;
                p.expect_keyword(Keyword::AS)
                    .map_err(|e| parser_error(e, &p))?;
                let expr = p.parse_expr().map_err(|e| parser_error(e, &p))?;
                if watermark.is_some() {
                    return Err(PlanError::new(
                        "a stream can declare only one WATERMARK",
                        wpos,
                    ));
                }
                watermark = Some(WatermarkDef {
                    column,
                    expr,
                    pos: wpos,
                });
            } else if word(&tok.token).as_deref() == Some("PRIMARY") {
                p.next_token();
                p.expect_keyword(Keyword::KEY)
                    .map_err(|e| parser_error(e, &p))?;
                let cols = p
                    .parse_parenthesized_column_list(
                        sqlparser::parser::IsOptional::Mandatory,
                        false,
                    )
                    .map_err(|e| parser_error(e, &p))?;
                not_enforced(&mut p)?;
                set_primary_key(&mut primary_key, cols, tok.span.into())?;
            } else {
                let col = p.parse_identifier().map_err(|e| parser_error(e, &p))?;
                let type_pos: SqlPos = p.peek_token().span.into();
                let data_type = p.parse_data_type().map_err(|e| parser_error(e, &p))?;
                if p.parse_keywords(&[Keyword::NOT, Keyword::NULL])
                    || p.parse_keyword(Keyword::NULL)
                {
                    // nullability is accepted and ignored: every column is nullable
                }
                let kpos: SqlPos = p.peek_token().span.into();
                if p.parse_keywords(&[Keyword::PRIMARY, Keyword::KEY]) {
                    not_enforced(&mut p)?;
                    set_primary_key(&mut primary_key, vec![col.clone()], kpos)?;
                }
                columns.push(ColumnDef {
                    name: col,
                    data_type,
                    type_pos,
                });
            }
            if p.consume_token(&Token::Comma) {
                continue;
            }
            p.expect_token(&Token::RParen)
                .map_err(|e| parser_error(e, &p))?;
            break;
        }
    }
    let mut options = Vec::new();
    if p.parse_keyword(Keyword::WITH) {
        p.expect_token(&Token::LParen)
            .map_err(|e| parser_error(e, &p))?;
        loop {
            let tok = p.next_token();
            let opos: SqlPos = tok.span.into();
            let key = match tok.token {
                Token::Word(w) => {
                    // dotted keys may be written bare: consumer.batch_size
                    let mut k = w.value;
                    while p.consume_token(&Token::Period) {
                        let part = p.parse_identifier().map_err(|e| parser_error(e, &p))?;
                        k = format!("{k}.{}", part.value);
                    }
                    k
                }
                Token::SingleQuotedString(s) => s,
                _ => return Err(expected(&tok, "an option name")),
            };
            p.expect_token(&Token::Eq)
                .map_err(|e| parser_error(e, &p))?;
            let vtok = p.next_token();
            let value = match vtok.token {
                Token::SingleQuotedString(s) => s,
                Token::Number(n, _) => n,
                Token::Word(w) if w.quote_style.is_none() => w.value,
                _ => return Err(expected(&vtok, "an option value in single quotes")),
            };
            if options
                .iter()
                .any(|(k, _, _): &(String, String, SqlPos)| k.eq_ignore_ascii_case(&key))
            {
                return Err(PlanError::new(
                    format!("option '{key}' is given twice"),
                    opos,
                ));
            }
            options.push((key, value, opos));
            if p.consume_token(&Token::Comma) {
                continue;
            }
            p.expect_token(&Token::RParen)
                .map_err(|e| parser_error(e, &p))?;
            break;
        }
    }
    expect_end(&p)?;
    Ok(CreateStream {
        name,
        columns,
        watermark,
        primary_key,
        options,
        pos,
    })
}

/// `NOT ENFORCED` after a primary key, as Flink writes it (Eddy checks no
/// key either; writing it or not changes nothing).
fn not_enforced(p: &mut Parser<'_>) -> PlanResult<()> {
    if p.parse_keyword(Keyword::NOT) {
        p.expect_keyword(Keyword::ENFORCED)
            .map_err(|e| parser_error(e, p))?;
    }
    Ok(())
}

fn set_primary_key(key: &mut Vec<Ident>, cols: Vec<Ident>, pos: SqlPos) -> PlanResult<()> {
    if !key.is_empty() {
        return Err(
            PlanError::new("a stream can declare only one PRIMARY KEY", pos)
                .with_hint("list every key column in one PRIMARY KEY (a, b) NOT ENFORCED"),
        );
    }
    *key = cols;
    Ok(())
}

/// The span of a token list's first significant token, for messages.
/// Where a piece of SQL starts. An expression (or a select item holding
/// one) that is a chain of binary operators starts at its leftmost operand,
/// found by walking down the left spine: sqlparser's `span()` unions every
/// child's span, recursively, so calling it at each node of a long chain
/// would be quadratic and deep.
pub(crate) fn pos_of<T: Spanned + 'static>(x: &T) -> SqlPos {
    let any = x as &dyn std::any::Any;
    let expr = match any.downcast_ref::<ast::SelectItem>() {
        Some(ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. }) => {
            Some(e)
        }
        _ => any.downcast_ref::<ast::Expr>(),
    };
    let Some(mut e) = expr else {
        return span_pos(x.span());
    };
    while let ast::Expr::BinaryOp { left, .. } = e {
        e = left;
    }
    span_pos(e.span())
}

pub(crate) fn span_pos(span: Span) -> SqlPos {
    if span.start == Location::empty() || span.start.line == 0 {
        SqlPos::default()
    } else {
        span.start.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_stream_with_watermark_and_options() {
        let s = parse_script(
            "CREATE STREAM bids (auction BIGINT, price DOUBLE, date_time TIMESTAMP,\n\
             WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND)\n\
             WITH (connector = 'file', path = 'b.jsonl', consumer.batch_size = 10);",
        )
        .unwrap();
        let Statement::CreateStream(c) = &s[0] else {
            panic!("{s:?}")
        };
        assert_eq!(c.name.value, "bids");
        assert_eq!(c.columns.len(), 3);
        assert_eq!(c.watermark.as_ref().unwrap().column.value, "date_time");
        let keys: Vec<_> = c
            .options
            .iter()
            .map(|(k, v, _)| format!("{k}={v}"))
            .collect();
        assert_eq!(
            keys,
            ["connector=file", "path=b.jsonl", "consumer.batch_size=10"]
        );
    }

    #[test]
    fn window_and_emit_clauses_are_split_off() {
        let s = parse_script(
            "SELECT a, COUNT(*) FROM t GROUP BY a WINDOW TUMBLING(INTERVAL '10' SECOND) EMIT FINAL",
        )
        .unwrap();
        let Statement::Query(q) = &s[0] else { panic!() };
        assert_eq!(q.window.as_ref().unwrap().kind, "TUMBLING");
        assert_eq!(q.window.as_ref().unwrap().args.len(), 1);
        assert_eq!(q.emit.unwrap().0, EmitKeyword::Final);
        assert!(q.query.to_string().ends_with("GROUP BY a"));
    }

    #[test]
    fn syntax_errors_carry_positions() {
        let e = parse_script("SELECT a\nFROM t WHERE").unwrap_err();
        assert_eq!(e.pos, SqlPos::new(2, 13), "{e}");
        let e = parse_script("SELECT a FROM t EMIT SOON").unwrap_err();
        assert_eq!(
            e.to_string().lines().next().unwrap(),
            "EMIT must be followed by FINAL or CHANGES at line 1, column 17"
        );
    }

    #[test]
    fn explain_wraps_queries() {
        let s = parse_script("EXPLAIN SELECT 1 FROM t").unwrap();
        assert!(
            matches!(&s[0], Statement::Explain(inner) if matches!(**inner, Statement::Query(_)))
        );
    }
}
