//! Regular expressions: REGEXP_EXTRACT and REGEXP_REPLACE, as Flink's.
//!
//! * `REGEXP_EXTRACT(s, pattern[, group])`: the text of `group` (0 = the
//!   whole match, the default) in the first match; NULL when nothing
//!   matches, the group did not take part in the match or does not exist.
//! * `REGEXP_REPLACE(s, pattern, replacement)`: every match replaced.
//!   The replacement is written as in Java (Flink): `$1` or `${name}` for a
//!   group, `\$` and `\\` for a literal `$` and `\`.
//!
//! Patterns use the syntax of Rust's `regex` crate, which is Java's minus
//! look-around and back-references: it matches in linear time, so no
//! pattern can stall a query. A constant pattern is compiled once, when the
//! query is planned, and a bad one is a planning error naming it; a pattern
//! read from a column is compiled per distinct value, and a bad one gives
//! NULL for its rows.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringBuilder};
use regex::Regex;

use super::Node;
use super::compile::{arity, sub};
use super::functions::{FunctionDef, arity as plan_arity};
use super::kernel::{KernelCall, Reparsed, RowKernel, any_null, const_str, int_arg, str_arg};
use super::value::internal;
use crate::error::{ExecResult, PlanError, PlanResult, SqlPos};
use crate::plan::expr::{Expr, ScalarFunc};
use crate::sql::typing::{expect_integer, expect_type};
use crate::types::SqlType;

/// `REGEXP_EXTRACT(s, pattern[, group])`.
pub(crate) static REGEXP_EXTRACT: FunctionDef = FunctionDef {
    name: "regexp_extract",
    names: &["regexp_extract"],
    aliases: &[],
    plan: |name, args, pos| plan(name, args, pos, ScalarFunc::RegexpExtract),
    compile: RegexKernel::compile,
};

/// `REGEXP_REPLACE(s, pattern, replacement)`.
pub(crate) static REGEXP_REPLACE: FunctionDef = FunctionDef {
    name: "regexp_replace",
    names: &["regexp_replace"],
    aliases: &[],
    plan: |name, args, pos| plan(name, args, pos, ScalarFunc::RegexpReplace),
    compile: RegexKernel::compile,
};

fn plan(name: &str, args: Vec<Expr>, pos: SqlPos, func: ScalarFunc) -> PlanResult<Expr> {
    let extract = func == ScalarFunc::RegexpExtract;
    plan_arity(name, &args, if extract { 2..=3 } else { 3..=3 }, pos)?;
    let mut typed = Vec::with_capacity(args.len());
    for (i, a) in args.into_iter().enumerate() {
        typed.push(if extract && i == 2 {
            expect_integer(a, name, pos)?
        } else {
            expect_type(a, SqlType::Varchar, name, pos)?
        });
    }
    if let Some(p) = const_str(&typed[1]) {
        Regex::new(p).map_err(|e| {
            let why = e.to_string();
            let why = why
                .lines()
                .last()
                .unwrap_or_default()
                .trim_start_matches("error: ");
            PlanError::new(format!("{name}: bad regular expression '{p}': {why}"), pos).with_hint(
                "patterns use Rust's regex syntax: Java's without look-around or back-references",
            )
        })?;
    }
    Ok(Expr::Function {
        func,
        args: typed,
        ty: SqlType::Varchar,
    })
}

/// A regular-expression function; `pattern` when it is a constant.
#[derive(Debug)]
struct RegexKernel {
    extract: bool,
    pattern: Option<Regex>,
}

impl RegexKernel {
    fn compile(expr: &Expr, func: ScalarFunc, args: &[Expr], _ty: SqlType) -> ExecResult<Node> {
        let extract = match func {
            ScalarFunc::RegexpExtract => true,
            ScalarFunc::RegexpReplace => false,
            other => return Err(internal(format!("{} is not a regex", other.name()))),
        };
        arity(expr, args, if extract { 2 } else { 3 }, 3)?;
        let pattern = args
            .get(1)
            .and_then(const_str)
            .map(|p| Regex::new(p).map_err(|e| internal(format!("bad pattern '{p}': {e}"))))
            .transpose()?;
        let nodes = args
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let t = if extract && i == 2 {
                    SqlType::BigInt
                } else {
                    SqlType::Varchar
                };
                sub(a, t)
            })
            .collect::<ExecResult<Vec<_>>>()?;
        Ok(KernelCall::node(RegexKernel { extract, pattern }, nodes))
    }
}

impl RowKernel for RegexKernel {
    fn eval(&self, args: &[ArrayRef]) -> ExecResult<ArrayRef> {
        let (s, p) = (str_arg(args, 0)?, str_arg(args, 1)?);
        let third = args.get(2);
        let rows = s.len();
        let mut b =
            StringBuilder::with_capacity(rows, if self.extract { 0 } else { s.values().len() });
        let mut from_column = Reparsed::new(|t| Regex::new(t).ok());
        // the capture positions, reused row after row (a constant pattern)
        let mut locations = self.pattern.as_ref().map(Regex::capture_locations);
        for i in 0..rows {
            if any_null(&[s, p], i) || third.is_some_and(|t| t.is_null(i)) {
                b.append_null();
                continue;
            }
            let Some(re) = self
                .pattern
                .as_ref()
                .or_else(|| from_column.get(p.value(i)))
            else {
                b.append_null();
                continue;
            };
            let v = s.value(i);
            if self.extract {
                let group = match third {
                    Some(_) => usize::try_from(int_arg(args, 2)?.value(i)).ok(),
                    None => Some(0),
                };
                let found = match (group, &mut locations) {
                    (Some(0), _) => re.find(v).map(|m| m.as_str()),
                    (Some(g), Some(locs)) if self.pattern.is_some() => re
                        .captures_read(locs, v)
                        .and_then(|_| locs.get(g))
                        .map(|(s, e)| &v[s..e]),
                    (Some(g), _) => re.captures(v).and_then(|c| c.get(g)).map(|m| m.as_str()),
                    (None, _) => None,
                };
                b.append_option(found);
            } else {
                let with = java_replacement(str_arg(args, 2)?.value(i));
                b.append_value(re.replace_all(v, with.as_str()));
            }
        }
        Ok(Arc::new(b.finish()))
    }
}

/// A Java `Matcher.replaceAll` replacement in the `regex` crate's syntax:
/// `$1` → `${1}`, `\x` → the literal `x` (`$` doubled).
fn java_replacement(r: &str) -> String {
    let mut out = String::with_capacity(r.len() + 4);
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(x) => out.push(x),
                None => out.push('\\'),
            },
            '$' if chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push_str("${");
                while let Some(d) = chars.next_if(char::is_ascii_digit) {
                    out.push(d);
                }
                out.push('}');
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use SqlType::*;

    #[test]
    fn extract_takes_the_group_of_the_first_match() {
        let url = "https://www.nexmark.com/a/b/item.htm?query=1&channel_id=1012";
        let b = batch(vec![(
            "url",
            strs(&[Some(url), Some("channel_id=7&x=1"), Some("none"), None]),
        )]);
        let e = call(
            ScalarFunc::RegexpExtract,
            vec![col(0, Varchar), text("(&|^)channel_id=([^&]*)"), big(2)],
            Varchar,
        );
        same(&eval(&e, &b), strs(&[Some("1012"), Some("7"), None, None]));
        let whole = call(
            ScalarFunc::RegexpExtract,
            vec![col(0, Varchar), text("[0-9]+")],
            Varchar,
        );
        same(&eval(&whole, &b), strs(&[Some("1"), Some("7"), None, None]));
        // a group that does not exist, or did not take part
        let missing = call(
            ScalarFunc::RegexpExtract,
            vec![col(0, Varchar), text("(x)|(q)"), big(9)],
            Varchar,
        );
        same(&eval(&missing, &b), strs(&[None, None, None, None]));
        let unused = call(
            ScalarFunc::RegexpExtract,
            vec![col(0, Varchar), text("(zzz)|(query)"), big(1)],
            Varchar,
        );
        same(&eval(&unused, &b), strs(&[None, None, None, None]));
    }

    #[test]
    fn replace_reads_java_replacements() {
        assert_eq!(java_replacement("$1-$2"), "${1}-${2}");
        assert_eq!(java_replacement("\\$5"), "$$5");
        assert_eq!(java_replacement("a\\\\b"), "a\\b");
        assert_eq!(java_replacement("$12x"), "${12}x");
        let b = batch(vec![
            ("s", strs(&[Some("2026-01-02"), Some("no date"), None])),
            (
                "p",
                strs(&[Some("([0-9]+)-([0-9]+)"), Some("("), Some("x")]),
            ),
        ]);
        let e = call(
            ScalarFunc::RegexpReplace,
            vec![col(0, Varchar), text("([0-9]+)-([0-9]+)"), text("$2/$1")],
            Varchar,
        );
        same(
            &eval(&e, &b),
            strs(&[Some("01/2026-02"), Some("no date"), None]),
        );
        // a pattern from a column: a bad one gives NULL for its rows
        let from_col = call(
            ScalarFunc::RegexpReplace,
            vec![col(0, Varchar), col(1, Varchar), text("#")],
            Varchar,
        );
        same(&eval(&from_col, &b), strs(&[Some("#-02"), None, None]));
    }

    #[test]
    fn a_bad_constant_pattern_is_a_planning_error() {
        let e = plan(
            "regexp_extract",
            vec![text("s"), text("(unclosed")],
            SqlPos::default(),
            ScalarFunc::RegexpExtract,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("bad regular expression '(unclosed'"),
            "{e}"
        );
    }
}
