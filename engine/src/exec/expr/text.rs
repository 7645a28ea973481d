//! More string functions: REPLACE, POSITION / STRPOS / LOCATE, TRIM /
//! BTRIM / LTRIM / RTRIM, SPLIT_PART (PostgreSQL) and SPLIT_INDEX (Flink).
//!
//! * Positions count characters from 1; 0 means "not found"
//!   (`POSITION('' IN s) = 1`, as both PostgreSQL and Flink).
//! * REPLACE replaces every occurrence; an empty search string inserts the
//!   replacement between every character and at both ends (as Java's and
//!   Rust's `replace`, so Flink gives the same).
//! * TRIM removes the given characters (default: the space only, not other
//!   white space) from both ends, LTRIM from the start, RTRIM from the end;
//!   `TRIM(LEADING 'x' FROM s)` is LTRIM and `TRIM(TRAILING ...)` RTRIM.
//! * SPLIT_PART(s, delimiter, n) is 1-based, a negative `n` counts from the
//!   end; a field past the end is `''`, `n = 0` is NULL (PostgreSQL raises
//!   an error); an empty delimiter leaves `s` as the only field.
//! * SPLIT_INDEX(s, delimiter, i) is 0-based as Flink's: a negative or too
//!   large `i` is NULL, and so is any `i` of an empty `s` (Flink splits with
//!   Apache Commons' `splitByWholeSeparatorPreserveAllTokens`, which keeps
//!   empty fields between adjacent delimiters and finds none in `''`); an
//!   empty delimiter leaves `s` as the only field.
//!
//! A NULL argument gives NULL.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Builder, StringBuilder};

use super::Node;
use super::compile::{arity, sub};
use super::functions::{FunctionDef, arity as plan_arity};
use super::kernel::{KernelCall, RowKernel, any_null, int_arg, str_arg};
use super::value::internal;
use crate::error::{ExecResult, PlanResult, SqlPos};
use crate::plan::expr::{Expr, ScalarFunc};
use crate::sql::typing::{expect_integer, expect_type};
use crate::types::SqlType;

/// `REPLACE(s, from, to)`.
pub(crate) static REPLACE: FunctionDef = FunctionDef {
    name: "replace",
    names: &["replace"],
    aliases: &[],
    plan: |name, args, pos| typed(name, args, pos, ScalarFunc::Replace, &[S, S, S]),
    compile: Text::compile,
};

/// `STRPOS(s, sub)` (`POSITION(sub IN s)` is planned from its own syntax).
pub(crate) static STRPOS: FunctionDef = FunctionDef {
    name: "strpos",
    names: &["strpos"],
    aliases: &[],
    plan: |name, args, pos| typed(name, args, pos, ScalarFunc::Strpos, &[S, S]),
    compile: Text::compile,
};

/// `LOCATE(sub, s)`: Flink's name, arguments the other way round.
pub(crate) static LOCATE: FunctionDef = FunctionDef {
    name: "locate",
    names: &["locate"],
    aliases: &[],
    plan: |name, args, pos| {
        let mut args = typed(name, args, pos, ScalarFunc::Strpos, &[S, S])?;
        if let Expr::Function { args, .. } = &mut args {
            args.swap(0, 1);
        }
        Ok(args)
    },
    compile: Text::compile,
};

/// `BTRIM(s[, characters])` and `TRIM(...)`.
pub(crate) static BTRIM: FunctionDef = FunctionDef {
    name: "btrim",
    names: &["btrim", "trim"],
    aliases: &[],
    plan: |name, args, pos| trim(name, args, pos, ScalarFunc::Btrim),
    compile: Text::compile,
};

/// `LTRIM(s[, characters])`.
pub(crate) static LTRIM: FunctionDef = FunctionDef {
    name: "ltrim",
    names: &["ltrim"],
    aliases: &[],
    plan: |name, args, pos| trim(name, args, pos, ScalarFunc::Ltrim),
    compile: Text::compile,
};

/// `RTRIM(s[, characters])`.
pub(crate) static RTRIM: FunctionDef = FunctionDef {
    name: "rtrim",
    names: &["rtrim"],
    aliases: &[],
    plan: |name, args, pos| trim(name, args, pos, ScalarFunc::Rtrim),
    compile: Text::compile,
};

/// `SPLIT_PART(s, delimiter, n)`.
pub(crate) static SPLIT_PART: FunctionDef = FunctionDef {
    name: "split_part",
    names: &["split_part"],
    aliases: &[],
    plan: |name, args, pos| typed(name, args, pos, ScalarFunc::SplitPart, &[S, S, I]),
    compile: Text::compile,
};

/// `SPLIT_INDEX(s, delimiter, i)`.
pub(crate) static SPLIT_INDEX: FunctionDef = FunctionDef {
    name: "split_index",
    names: &["split_index"],
    aliases: &[],
    plan: |name, args, pos| typed(name, args, pos, ScalarFunc::SplitIndex, &[S, S, I]),
    compile: Text::compile,
};

const S: SqlType = SqlType::Varchar;
const I: SqlType = SqlType::BigInt;

/// A call whose arguments have the types `sig` (BIGINT: any integer).
fn typed(
    name: &str,
    args: Vec<Expr>,
    pos: SqlPos,
    func: ScalarFunc,
    sig: &[SqlType],
) -> PlanResult<Expr> {
    plan_arity(name, &args, sig.len()..=sig.len(), pos)?;
    let args = args
        .into_iter()
        .zip(sig)
        .map(|(a, &t)| match t {
            SqlType::BigInt => expect_integer(a, name, pos),
            t => expect_type(a, t, name, pos),
        })
        .collect::<PlanResult<Vec<_>>>()?;
    Ok(Expr::Function {
        func,
        args,
        ty: Text::result(func),
    })
}

fn trim(name: &str, args: Vec<Expr>, pos: SqlPos, func: ScalarFunc) -> PlanResult<Expr> {
    plan_arity(name, &args, 1..=2, pos)?;
    let n = args.len();
    typed(name, args, pos, func, &[S, S][..n])
}

/// Which text function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Text {
    Replace,
    Strpos,
    Trim { start: bool, end: bool },
    SplitPart,
    SplitIndex,
}

impl Text {
    fn of(func: ScalarFunc) -> Option<Self> {
        Some(match func {
            ScalarFunc::Replace => Text::Replace,
            ScalarFunc::Strpos => Text::Strpos,
            ScalarFunc::Btrim => Text::Trim {
                start: true,
                end: true,
            },
            ScalarFunc::Ltrim => Text::Trim {
                start: true,
                end: false,
            },
            ScalarFunc::Rtrim => Text::Trim {
                start: false,
                end: true,
            },
            ScalarFunc::SplitPart => Text::SplitPart,
            ScalarFunc::SplitIndex => Text::SplitIndex,
            _ => return None,
        })
    }

    fn result(func: ScalarFunc) -> SqlType {
        if func == ScalarFunc::Strpos { I } else { S }
    }

    fn compile(expr: &Expr, func: ScalarFunc, args: &[Expr], _ty: SqlType) -> ExecResult<Node> {
        let f = Text::of(func).ok_or_else(|| internal(format!("{} is not text", func.name())))?;
        let sig: &[SqlType] = match f {
            Text::Replace => &[S, S, S],
            Text::Strpos => &[S, S],
            Text::Trim { .. } => &[S, S][..args.len().clamp(1, 2)],
            Text::SplitPart | Text::SplitIndex => &[S, S, I],
        };
        arity(expr, args, sig.len(), sig.len())?;
        let nodes = args
            .iter()
            .zip(sig)
            .map(|(a, &t)| sub(a, t))
            .collect::<ExecResult<Vec<_>>>()?;
        Ok(KernelCall::node(f, nodes))
    }
}

impl RowKernel for Text {
    fn eval(&self, args: &[ArrayRef]) -> ExecResult<ArrayRef> {
        let s = str_arg(args, 0)?;
        let rows = s.len();
        if *self == Text::Strpos {
            let sub = str_arg(args, 1)?;
            let mut b = Int64Builder::with_capacity(rows);
            for i in 0..rows {
                if any_null(&[s, sub], i) {
                    b.append_null();
                } else {
                    b.append_value(position(s.value(i), sub.value(i)));
                }
            }
            return Ok(Arc::new(b.finish()));
        }
        let mut b = StringBuilder::with_capacity(rows, s.values().len());
        match *self {
            Text::Replace => {
                let (from, to) = (str_arg(args, 1)?, str_arg(args, 2)?);
                for i in 0..rows {
                    if any_null(&[s, from, to], i) {
                        b.append_null();
                    } else {
                        b.append_value(s.value(i).replace(from.value(i), to.value(i)));
                    }
                }
            }
            Text::Trim { start, end } => {
                let chars = args.get(1).map(|_| str_arg(args, 1)).transpose()?;
                for i in 0..rows {
                    if s.is_null(i) || chars.is_some_and(|c| c.is_null(i)) {
                        b.append_null();
                        continue;
                    }
                    let set = chars.map_or(" ", |c| c.value(i));
                    let strip = |c: char| set.contains(c);
                    let mut v = s.value(i);
                    if start {
                        v = v.trim_start_matches(strip);
                    }
                    if end {
                        v = v.trim_end_matches(strip);
                    }
                    b.append_value(v);
                }
            }
            Text::SplitPart | Text::SplitIndex => {
                let (delim, n) = (str_arg(args, 1)?, int_arg(args, 2)?);
                for i in 0..rows {
                    if any_null(&[s, delim, n], i) {
                        b.append_null();
                        continue;
                    }
                    let (v, d, n) = (s.value(i), delim.value(i), n.value(i));
                    let field = if *self == Text::SplitPart {
                        split_part(v, d, n)
                    } else {
                        split_index(v, d, n)
                    };
                    b.append_option(field);
                }
            }
            Text::Strpos => unreachable!("handled above"),
        }
        Ok(Arc::new(b.finish()))
    }
}

/// 1-based character position of `sub` in `s`, 0 when absent.
fn position(s: &str, sub: &str) -> i64 {
    match s.find(sub) {
        Some(byte) => s[..byte].chars().count() as i64 + 1,
        None => 0,
    }
}

fn split_part<'a>(s: &'a str, delim: &str, n: i64) -> Option<&'a str> {
    if n == 0 {
        return None;
    }
    if delim.is_empty() {
        return Some(if n == 1 || n == -1 { s } else { "" });
    }
    let field = if n > 0 {
        s.split(delim).nth(usize::try_from(n - 1).ok()?)
    } else {
        s.rsplit(delim).nth(usize::try_from(-(n + 1)).ok()?)
    };
    Some(field.unwrap_or(""))
}

fn split_index<'a>(s: &'a str, delim: &str, i: i64) -> Option<&'a str> {
    let i = usize::try_from(i).ok()?;
    if s.is_empty() {
        return None;
    }
    if delim.is_empty() {
        return (i == 0).then_some(s);
    }
    s.split(delim).nth(i)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use SqlType::*;

    #[test]
    fn positions_count_characters_from_one() {
        assert_eq!(position("héllo", "l"), 3);
        assert_eq!(position("hello", "z"), 0);
        assert_eq!(position("hello", ""), 1);
        let b = batch(vec![
            ("s", strs(&[Some("日本語"), None, Some("abc")])),
            ("t", strs(&[Some("語"), Some("a"), None])),
        ]);
        let e = call(
            ScalarFunc::Strpos,
            vec![col(0, Varchar), col(1, Varchar)],
            BigInt,
        );
        same(&eval(&e, &b), int64(&[Some(3), None, None]));
    }

    #[test]
    fn replace_and_trim() {
        let b = batch(vec![(
            "s",
            strs(&[Some("  a-b-c  "), None, Some("xxhixx")]),
        )]);
        let r = call(
            ScalarFunc::Replace,
            vec![col(0, Varchar), text("-"), text("+")],
            Varchar,
        );
        same(
            &eval(&r, &b),
            strs(&[Some("  a+b+c  "), None, Some("xxhixx")]),
        );
        let t = call(ScalarFunc::Btrim, vec![col(0, Varchar)], Varchar);
        same(&eval(&t, &b), strs(&[Some("a-b-c"), None, Some("xxhixx")]));
        let l = call(
            ScalarFunc::Ltrim,
            vec![col(0, Varchar), text("x ")],
            Varchar,
        );
        same(&eval(&l, &b), strs(&[Some("a-b-c  "), None, Some("hixx")]));
        let r = call(ScalarFunc::Rtrim, vec![col(0, Varchar), text("x")], Varchar);
        same(
            &eval(&r, &b),
            strs(&[Some("  a-b-c  "), None, Some("xxhi")]),
        );
        assert_eq!("abc".replace("", "-"), "-a-b-c-");
    }

    #[test]
    fn split_part_follows_postgres() {
        assert_eq!(split_part("a,b,,c", ",", 2), Some("b"));
        assert_eq!(split_part("a,b,,c", ",", 3), Some(""));
        assert_eq!(split_part("a,b,,c", ",", 9), Some(""));
        assert_eq!(split_part("a,b,,c", ",", -1), Some("c"));
        assert_eq!(split_part("a,b,,c", ",", -4), Some("a"));
        assert_eq!(split_part("a,b,,c", ",", -5), Some(""));
        assert_eq!(split_part("a,b", ",", 0), None);
        assert_eq!(split_part("a,b", "", 1), Some("a,b"));
        assert_eq!(split_part("a,b", "", 2), Some(""));
    }

    #[test]
    fn split_index_follows_flink() {
        let url = "https://www.nexmark.com/wjv/vmp/item.htm?query=1";
        assert_eq!(split_index(url, "/", 0), Some("https:"));
        assert_eq!(split_index(url, "/", 1), Some(""));
        assert_eq!(split_index(url, "/", 3), Some("wjv"));
        assert_eq!(split_index(url, "/", 5), Some("item.htm?query=1"));
        assert_eq!(split_index(url, "/", 6), None);
        assert_eq!(split_index(url, "/", -1), None);
        assert_eq!(split_index("", "/", 0), None);
        assert_eq!(split_index("a::b", "::", 1), Some("b"));
        assert_eq!(split_index("ab", "", 0), Some("ab"));
        let b = batch(vec![("s", strs(&[Some("x/y"), None]))]);
        let e = call(
            ScalarFunc::SplitIndex,
            vec![col(0, Varchar), text("/"), big(1)],
            Varchar,
        );
        same(&eval(&e, &b), strs(&[Some("y"), None]));
    }
}
