//! Limits on the shape of SQL, checked on the tokens before any tree is
//! built from them: planning, compiling and evaluating recurse once per
//! level of an expression, so a deeper one could overflow a thread's stack.

use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::error::{PlanError, PlanResult};

/// The deepest an expression may nest operators: planning, compiling and
/// evaluating recurse once per level, and a deeper expression could
/// overflow a thread's stack (documented in docs/sql.md).
pub const MAX_OPERATOR_DEPTH: usize = 256;

/// The deepest parentheses (and function calls) may nest; sqlparser's own
/// limit, reached a little later, has no position to report.
pub const MAX_NESTING: usize = 32;

/// Binding strength of an infix or prefix operator token (0 binds
/// loosest), or `None` for other tokens.
fn operator_level(t: &Token) -> Option<usize> {
    Some(match t {
        Token::Word(w) if w.quote_style.is_none() => match w.keyword {
            Keyword::OR => 0,
            Keyword::AND => 1,
            Keyword::NOT => 2,
            _ => return None,
        },
        Token::Eq
        | Token::DoubleEq
        | Token::Neq
        | Token::Lt
        | Token::Gt
        | Token::LtEq
        | Token::GtEq => 3,
        Token::Plus | Token::Minus | Token::StringConcat | Token::Pipe | Token::Ampersand => 4,
        Token::Mul | Token::Div | Token::Mod | Token::Caret => 5,
        _ => return None,
    })
}

/// Refuses a statement whose expressions nest operators deeper than
/// [`MAX_OPERATOR_DEPTH`], at the operator that goes past it. Estimated on
/// the tokens, before anything builds a tree from them: a chain of one
/// operator (`a + b + c`) is as deep as it is long; an operator binding
/// looser ends the chains of tighter ones (`x = 1 OR x = 2` is two deep);
/// parentheses add the depth around them.
pub(crate) fn check_operator_depth(tokens: &[TokenWithSpan]) -> PlanResult<()> {
    const LEVELS: usize = 6;
    // the depth around each open parenthesis, and the chains inside it
    let mut outer: Vec<(usize, [usize; LEVELS])> = Vec::new();
    let (mut enclosing, mut chains) = (0usize, [0usize; LEVELS]);
    for t in tokens {
        let ends_expression = match &t.token {
            Token::Comma => true,
            Token::Word(w) if w.quote_style.is_none() => matches!(
                w.keyword,
                Keyword::SELECT
                    | Keyword::FROM
                    | Keyword::WHERE
                    | Keyword::GROUP
                    | Keyword::HAVING
                    | Keyword::WHEN
                    | Keyword::THEN
                    | Keyword::ELSE
                    | Keyword::END
                    | Keyword::AS
                    | Keyword::ON
                    | Keyword::ORDER
            ),
            _ => false,
        };
        if ends_expression {
            chains = [0; LEVELS];
        } else if t.token == Token::LParen {
            if outer.len() >= MAX_NESTING {
                return Err(PlanError::new(
                    format!("parentheses and calls nest more than {MAX_NESTING} deep here"),
                    t.span,
                )
                .with_hint("flatten the expression, or compute parts of it in a subquery column"));
            }
            let depth: usize = chains.iter().sum();
            outer.push((enclosing, chains));
            enclosing += depth;
            chains = [0; LEVELS];
        } else if t.token == Token::RParen {
            if let Some((e, c)) = outer.pop() {
                (enclosing, chains) = (e, c);
            }
        } else if let Some(level) = operator_level(&t.token) {
            chains[level] += 1;
            chains[level + 1..].fill(0);
        }
        if enclosing + chains.iter().sum::<usize>() > MAX_OPERATOR_DEPTH {
            return Err(PlanError::new(
                format!(
                    "this expression nests operators more than {MAX_OPERATOR_DEPTH} deep (a chain like a + b + c ... is as deep as it is long)"
                ),
                t.span,
            )
            .with_hint(
                "split it over several columns or subexpressions, or write a long OR of equalities as IN (...)",
            ));
        }
    }
    Ok(())
}
