//! Syntax errors: sqlparser's messages turned into positioned
//! [`PlanError`]s with a hint, and the few Eddy's own parser raises.

use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::error::{PlanError, PlanResult, SqlPos};
use crate::sql::parser::span_pos;

pub(crate) fn expected(tok: &TokenWithSpan, what: &str) -> PlanError {
    PlanError::new(
        format!("syntax error: expected {what}, found {}", tok.token),
        tok.span,
    )
}

pub(crate) fn expect_end(p: &Parser) -> PlanResult<()> {
    let tok = p.peek_token();
    if tok.token == Token::EOF {
        Ok(())
    } else {
        Err(PlanError::new(
            format!("syntax error: unexpected '{}'", tok.token),
            tok.span,
        )
        .with_hint("check the statement near this point; separate statements with ';'"))
    }
}

/// Turns a sqlparser error into a [`PlanError`] at the position its text
/// ends in (`at Line: L, Column: C`) or, for the errors whose text has none
/// (nesting too deep, some `Expected` messages), at the token the parser
/// stopped on.
pub(crate) fn parser_error(e: ParserError, p: &Parser) -> PlanError {
    let text = match e {
        ParserError::TokenizerError(s) | ParserError::ParserError(s) => s,
        ParserError::RecursionLimitExceeded => "the statement is nested too deeply".to_string(),
    };
    let pos = location_in(&text).unwrap_or_else(|| {
        let at = p.get_current_token();
        let at = if at.span.start.line == 0 {
            p.peek_token_ref()
        } else {
            at
        };
        span_pos(at.span)
    });
    let what = strip_location(&text).replace("found: EOF", "found the end of the statement");
    PlanError::new(format!("syntax error: {what}"), pos)
        .with_hint("check the SQL at this point; docs/sql.md shows the statements Eddy accepts")
}

fn location_in(text: &str) -> Option<SqlPos> {
    let at = text.rfind("Line: ")?;
    let rest = &text[at + 6..];
    let (line, rest) = rest.split_once(", Column: ")?;
    let col: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some(SqlPos::new(line.trim().parse().ok()?, col.parse().ok()?))
}

pub(crate) fn strip_location(text: &str) -> &str {
    match text.rfind(" at Line: ") {
        Some(at) => &text[..at],
        None => text,
    }
}
