//! Eddy's clauses in a statement, found and cut out at the token level
//! before sqlparser reads the rest (so every position stays exact): `EMIT
//! FINAL | CHANGES`, `WINDOW TUMBLING(...)`, and Flink's `TABLE(TUMBLE(TABLE
//! s, ...))` call form.

use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::error::{PlanError, PlanResult, SqlPos};
use crate::sql::parser::{EmitKeyword, WindowClause};
use crate::sql::syntax_error::{expect_end, parser_error};

pub(crate) fn is_trivia(t: &Token) -> bool {
    matches!(t, Token::Whitespace(_) | Token::EOF)
}

pub(crate) fn word(t: &Token) -> Option<String> {
    match t {
        Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    }
}

/// Indexes of the non-trivia tokens.
pub(crate) fn significant(tokens: &[TokenWithSpan]) -> Vec<usize> {
    (0..tokens.len())
        .filter(|&i| !is_trivia(&tokens[i].token))
        .collect()
}

/// Flink's call form of the window table functions,
/// `TABLE(TUMBLE(TABLE bid, DESCRIPTOR(ts), ...))`, as Eddy's
/// `TUMBLE(bid, DESCRIPTOR(ts), ...)`: drops the outer `TABLE(...)` and the
/// `TABLE` before the first argument (sqlparser reads neither). The other
/// tokens keep their positions.
pub(crate) fn unwrap_table_calls(tokens: &mut Vec<TokenWithSpan>) {
    const WINDOWS: &[&str] = &["TUMBLE", "HOP", "SESSION", "CUMULATE"];
    let is = |t: &TokenWithSpan, w: &str| word(&t.token).as_deref() == Some(w);
    let mut drop = vec![false; tokens.len()];
    let sig = significant(tokens);
    for (k, &i) in sig.iter().enumerate() {
        let at = |d: usize| sig.get(k + d).map(|&j| &tokens[j]);
        let window_call = |d: usize| {
            at(d).is_some_and(|t| WINDOWS.iter().any(|w| is(t, w)))
                && at(d + 1).is_some_and(|t| t.token == Token::LParen)
        };
        if is(&tokens[i], "TABLE")
            && at(1).is_some_and(|t| t.token == Token::LParen)
            && window_call(2)
        {
            // the outer TABLE( and its closing parenthesis
            let mut depth = 0usize;
            for &j in &sig[k + 1..] {
                match tokens[j].token {
                    Token::LParen => depth += 1,
                    Token::RParen => {
                        depth -= 1;
                        if depth == 0 {
                            drop[j] = true;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            drop[i] = true;
            drop[sig[k + 1]] = true;
        }
        if window_call(0)
            && at(2).is_some_and(|t| is(t, "TABLE"))
            && at(3).is_some_and(|t| matches!(t.token, Token::Word(_)))
        {
            drop[sig[k + 2]] = true;
        }
    }
    let mut keep = drop.into_iter().map(|d| !d);
    tokens.retain(|_| keep.next().unwrap_or(true));
}

/// What a table read `FOR SYSTEM_TIME AS OF ...` is renamed to (its name
/// and this): a name nobody writes, which the planner reads as a lookup
/// table (see `sql/join.rs`).
pub(crate) const LOOKUP_MARK: &str = " FOR SYSTEM_TIME AS OF";

/// Flink's lookup join, `JOIN t FOR SYSTEM_TIME AS OF b.p_time AS s ON
/// ...`: drops the clause (sqlparser's generic dialect reads none) and
/// marks the table's name with [`LOOKUP_MARK`]. The time is the probing
/// row's processing time, which is when the lookup happens anyway.
pub(crate) fn mark_lookup_tables(tokens: &mut Vec<TokenWithSpan>) {
    let is = |t: &TokenWithSpan, w: &str| word(&t.token).as_deref() == Some(w);
    let mut drop = vec![false; tokens.len()];
    let sig = significant(tokens);
    for (k, &i) in sig.iter().enumerate() {
        let at = |d: usize| sig.get(k + d).map(|&j| &tokens[j]);
        let clause = is(&tokens[i], "FOR")
            && at(1).is_some_and(|t| is(t, "SYSTEM_TIME"))
            && at(2).is_some_and(|t| is(t, "AS"))
            && at(3).is_some_and(|t| is(t, "OF"));
        if !clause || k == 0 {
            continue;
        }
        // the time: a column, maybe qualified (b.p_time), or PROCTIME()
        let mut end = k + 4;
        if at(4).is_some_and(|t| matches!(t.token, Token::Word(_))) {
            end += 1;
            while at(end - k).is_some_and(|t| t.token == Token::Period)
                && at(end - k + 1).is_some_and(|t| matches!(t.token, Token::Word(_)))
            {
                end += 2;
            }
            if at(end - k).is_some_and(|t| t.token == Token::LParen)
                && at(end - k + 1).is_some_and(|t| t.token == Token::RParen)
            {
                end += 2;
            }
        }
        for &j in &sig[k..end.min(sig.len())] {
            drop[j] = true;
        }
        if let Token::Word(w) = &mut tokens[sig[k - 1]].token {
            w.value = format!("{}{LOOKUP_MARK}", w.value);
            w.quote_style = Some('"');
        }
    }
    let mut keep = drop.into_iter().map(|d| !d);
    tokens.retain(|_| keep.next().unwrap_or(true));
}

/// Removes a trailing `EMIT FINAL` / `EMIT CHANGES`.
pub(crate) fn take_emit(
    tokens: &mut Vec<TokenWithSpan>,
) -> PlanResult<Option<(EmitKeyword, SqlPos)>> {
    let sig = significant(tokens);
    let Some(at) = sig
        .iter()
        .position(|&i| word(&tokens[i].token).as_deref() == Some("EMIT"))
    else {
        return Ok(None);
    };
    let pos: SqlPos = tokens[sig[at]].span.into();
    let mode = sig.get(at + 1).and_then(|&i| word(&tokens[i].token));
    let mode = match mode.as_deref() {
        Some("FINAL") => EmitKeyword::Final,
        Some("CHANGES") => EmitKeyword::Changes,
        _ => {
            return Err(PlanError::new("EMIT must be followed by FINAL or CHANGES", pos)
                .with_hint("write EMIT FINAL (one row per window) or EMIT CHANGES (updates as rows arrive)"));
        }
    };
    if at + 2 != sig.len() {
        let next: SqlPos = tokens[sig[at + 2]].span.into();
        return Err(
            PlanError::new("EMIT FINAL / EMIT CHANGES must end the query", next)
                .with_hint("move the EMIT clause to the end of the statement"),
        );
    }
    tokens.truncate(sig[at]);
    Ok(Some((mode, pos)))
}

/// Removes `WINDOW TUMBLING(...)` / `SLIDING(...)` / `SESSION(...)` (the
/// window kinds' clauses) at parenthesis depth 0 and parses its arguments.
pub(crate) fn take_window_clause(
    tokens: &mut Vec<TokenWithSpan>,
) -> PlanResult<Option<WindowClause>> {
    let sig = significant(tokens);
    let mut depth = 0i32;
    for (k, &i) in sig.iter().enumerate() {
        match &tokens[i].token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            t if depth == 0 && word(t).as_deref() == Some("WINDOW") => {
                let kind = sig
                    .get(k + 1)
                    .and_then(|&j| word(&tokens[j].token))
                    .unwrap_or_default();
                // `WINDOW <kind>(...)`, a registered kind or an unknown one
                // called like one; `WINDOW w AS (...)` is standard SQL, left
                // to sqlparser
                let called = sig
                    .get(k + 2)
                    .is_some_and(|&j| tokens[j].token == Token::LParen);
                if crate::exec::window::WindowSyntax::clause(&kind).is_none() && !called {
                    continue;
                }
                let pos: SqlPos = tokens[i].span.into();
                let open = sig
                    .get(k + 2)
                    .copied()
                    .filter(|&j| tokens[j].token == Token::LParen)
                    .ok_or_else(|| {
                        PlanError::new(format!("WINDOW {kind} needs arguments in parentheses"), pos)
                            .with_hint(format!("write WINDOW {kind}(INTERVAL '10' SECOND)"))
                    })?;
                let mut d = 0;
                let close = (open..tokens.len())
                    .find(|&j| {
                        match tokens[j].token {
                            Token::LParen => d += 1,
                            Token::RParen => d -= 1,
                            _ => {}
                        }
                        d == 0
                    })
                    .ok_or_else(|| {
                        PlanError::new(format!("unclosed parenthesis in WINDOW {kind}(...)"), pos)
                    })?;
                let inner: Vec<TokenWithSpan> = tokens[open + 1..close].to_vec();
                let dialect = GenericDialect {};
                let mut parser = Parser::new(&dialect).with_tokens_with_locations(inner);
                let args = parser
                    .parse_comma_separated(Parser::parse_expr)
                    .map_err(|e| parser_error(e, &parser))?;
                expect_end(&parser)?;
                tokens.drain(i..=close);
                return Ok(Some(WindowClause { kind, args, pos }));
            }
            _ => {}
        }
    }
    Ok(None)
}
