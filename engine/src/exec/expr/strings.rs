//! String functions: LOWER, UPPER, LENGTH, SUBSTRING, CONCAT and `||`.
//!
//! * LOWER / UPPER use Rust's Unicode case mapping (`ß` upper-cases to
//!   `SS`, final sigma is handled); an all-ASCII column is mapped byte-wise
//!   in one pass, reusing its offsets and validity.
//! * LENGTH counts characters (Unicode scalar values), not bytes: BIGINT.
//! * SUBSTRING(s, start[, len]) counts characters from 1 as PostgreSQL:
//!   positions before 1 are cut off, so `SUBSTRING('hello', 0, 3) = 'he'`
//!   and `SUBSTRING('hello', -5, 3) = ''`; a start past the end gives `''`.
//!   A NULL argument gives NULL; a negative length gives NULL (PostgreSQL
//!   raises an error instead).
//! * CONCAT skips NULL arguments (all NULL gives `''`, never NULL);
//!   `a || b` is NULL when either side is.

use std::fmt::Write;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array, StringArray, StringBuilder};
use arrow::buffer::Buffer;
use arrow::compute::kernels::concat_elements::concat_elements_utf8;
use arrow::datatypes::Int64Type;
use arrow::record_batch::RecordBatch;

use super::Node;
use super::compile::{arity, compile_node, finish, sub};
use super::functions::{FunctionDef, arity as plan_arity};
use super::value::{Value, arrow_err, internal, map_value, map_values, prim, strings};
use crate::error::{ExecResult, PlanError, PlanResult, SqlPos};
use crate::plan::expr::{Expr, Literal, ScalarFunc};
use crate::sql::typing::{coerce, expect_integer, expect_type};
use crate::types::SqlType;

/// `LOWER(s)`.
pub(crate) static LOWER: FunctionDef = FunctionDef {
    name: "lower",
    names: &["lower"],
    aliases: &[],
    plan: |name, args, pos| text_to(name, args, pos, ScalarFunc::Lower, SqlType::Varchar),
    compile: StrCall::compile,
};

/// `UPPER(s)`.
pub(crate) static UPPER: FunctionDef = FunctionDef {
    name: "upper",
    names: &["upper"],
    aliases: &[],
    plan: |name, args, pos| text_to(name, args, pos, ScalarFunc::Upper, SqlType::Varchar),
    compile: StrCall::compile,
};

/// `LENGTH(s)`.
pub(crate) static LENGTH: FunctionDef = FunctionDef {
    name: "length",
    names: &["length", "char_length"],
    aliases: &["character_length"],
    plan: |name, args, pos| text_to(name, args, pos, ScalarFunc::Length, SqlType::BigInt),
    compile: StrCall::compile,
};

/// `SUBSTRING(s, start[, len])`.
pub(crate) static SUBSTRING: FunctionDef = FunctionDef {
    name: "substring",
    names: &["substring", "substr"],
    aliases: &[],
    plan: |name, mut args, pos| {
        plan_arity(name, &args, 2..=3, pos)?;
        let s = expect_type(args.remove(0), SqlType::Varchar, name, pos)?;
        let mut all = vec![s];
        for a in args {
            all.push(expect_integer(a, name, pos)?);
        }
        Ok(Expr::Function {
            func: ScalarFunc::Substring,
            args: all,
            ty: SqlType::Varchar,
        })
    },
    compile: StrCall::compile,
};

/// `CONCAT(a, b, ...)`.
pub(crate) static CONCAT: FunctionDef = FunctionDef {
    name: "concat",
    names: &["concat"],
    aliases: &[],
    plan: |name, args, pos| {
        if args.is_empty() {
            return Err(PlanError::new(
                format!("{name} takes at least one argument"),
                pos,
            ));
        }
        Ok(Expr::Function {
            func: ScalarFunc::Concat,
            args: args
                .into_iter()
                .map(|a| coerce(a, SqlType::Varchar))
                .collect(),
            ty: SqlType::Varchar,
        })
    },
    compile: StrCall::compile,
};

/// One VARCHAR argument, a result of type `ty`.
fn text_to(
    name: &str,
    mut args: Vec<Expr>,
    pos: SqlPos,
    func: ScalarFunc,
    ty: SqlType,
) -> PlanResult<Expr> {
    plan_arity(name, &args, 1..=1, pos)?;
    let s = expect_type(args.remove(0), SqlType::Varchar, name, pos)?;
    Ok(Expr::Function {
        func,
        args: vec![s],
        ty,
    })
}

/// Which string function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StrFunc {
    Lower,
    Upper,
    Length,
    Substring,
    Concat,
    /// `a || b`
    Pipe,
}

/// A call of a string function.
#[derive(Debug)]
pub(crate) struct StrCall {
    pub(crate) func: StrFunc,
    pub(crate) args: Vec<Node>,
}

impl StrCall {
    /// Compiles LOWER, UPPER, LENGTH, SUBSTRING or CONCAT.
    pub(crate) fn compile(
        expr: &Expr,
        func: ScalarFunc,
        args: &[Expr],
        ty: SqlType,
    ) -> ExecResult<Node> {
        use SqlType::{BigInt, Varchar};
        let (f, produced, nodes) = match func {
            ScalarFunc::Lower | ScalarFunc::Upper | ScalarFunc::Length => {
                arity(expr, args, 1, 1)?;
                let (f, produced) = match func {
                    ScalarFunc::Lower => (StrFunc::Lower, Varchar),
                    ScalarFunc::Upper => (StrFunc::Upper, Varchar),
                    _ => (StrFunc::Length, BigInt),
                };
                (f, produced, vec![sub(&args[0], Varchar)?])
            }
            ScalarFunc::Substring => {
                arity(expr, args, 2, 3)?;
                let mut nodes = vec![sub(&args[0], Varchar)?];
                for a in &args[1..] {
                    nodes.push(sub(a, BigInt)?);
                }
                (StrFunc::Substring, Varchar, nodes)
            }
            ScalarFunc::Concat if args.is_empty() => {
                let empty = Expr::Literal(Literal::Varchar(String::new()));
                return finish(compile_node(&empty)?, Varchar, ty);
            }
            ScalarFunc::Concat => {
                let nodes = args
                    .iter()
                    .map(|a| sub(a, Varchar))
                    .collect::<ExecResult<Vec<_>>>()?;
                (StrFunc::Concat, Varchar, nodes)
            }
            other => {
                return Err(internal(format!(
                    "{} is not a string function",
                    other.name()
                )));
            }
        };
        let node = Node::Str(Box::new(StrCall {
            func: f,
            args: nodes,
        }));
        finish(node, produced, ty)
    }

    /// Evaluates over `batch`.
    pub(crate) fn eval(&self, batch: &RecordBatch) -> ExecResult<Value> {
        let rows = batch.num_rows();
        let first = || -> ExecResult<Value> {
            self.args
                .first()
                .ok_or_else(|| internal("string function without arguments"))?
                .eval(batch)
        };
        match self.func {
            StrFunc::Lower => map_value(first()?, |a| case_map(strings(a)?, false)),
            StrFunc::Upper => map_value(first()?, |a| case_map(strings(a)?, true)),
            StrFunc::Length => map_value(first()?, |a| {
                let lengths =
                    Int64Array::from_unary(strings(a)?, |s: &str| s.chars().count() as i64);
                Ok(Arc::new(lengths) as ArrayRef)
            }),
            StrFunc::Substring => map_values(self.eval_args(batch)?, rows, substring),
            StrFunc::Concat => map_values(self.eval_args(batch)?, rows, concat),
            StrFunc::Pipe => map_values(self.eval_args(batch)?, rows, |a: &[ArrayRef]| {
                let (l, r) = match a {
                    [l, r] => (strings(l)?, strings(r)?),
                    _ => return Err(internal("|| needs two operands")),
                };
                let out = concat_elements_utf8(l, r).map_err(arrow_err("||"))?;
                Ok(Arc::new(out) as ArrayRef)
            }),
        }
    }

    fn eval_args(&self, batch: &RecordBatch) -> ExecResult<Vec<Value>> {
        self.args.iter().map(|a| a.eval(batch)).collect()
    }
}

/// LOWER / UPPER.
fn case_map(a: &StringArray, upper: bool) -> ExecResult<ArrayRef> {
    let data = a.values();
    if data.is_ascii() {
        let mapped: Vec<u8> = if upper {
            data.to_ascii_uppercase()
        } else {
            data.to_ascii_lowercase()
        };
        let out = StringArray::try_new(
            a.offsets().clone(),
            Buffer::from(mapped),
            a.nulls().cloned(),
        )
        .map_err(arrow_err("LOWER/UPPER"))?;
        return Ok(Arc::new(out));
    }
    let mut b = StringBuilder::with_capacity(a.len(), data.len());
    for v in a.iter() {
        match v {
            Some(s) if upper => b.append_value(s.to_uppercase()),
            Some(s) => b.append_value(s.to_lowercase()),
            None => b.append_null(),
        }
    }
    Ok(Arc::new(b.finish()))
}

/// The characters of `s` from 1-based position `start`, `len` of them
/// (to the end when `None`), as PostgreSQL. `None` for a negative length.
pub(crate) fn substr(s: &str, start: i64, len: Option<i64>) -> Option<&str> {
    let from = start.max(1);
    // exclusive end position, 1-based
    let end = match len {
        Some(l) if l < 0 => return None,
        Some(l) => Some(start.saturating_add(l)),
        None => None,
    };
    if end.is_some_and(|e| e <= from) {
        return Some("");
    }
    let skip = usize::try_from(from - 1).unwrap_or(usize::MAX);
    let take = end.map(|e| usize::try_from(e - from).unwrap_or(usize::MAX));
    if s.is_ascii() {
        let begin = skip.min(s.len());
        let stop = take.map_or(s.len(), |t| begin.saturating_add(t).min(s.len()));
        return s.get(begin..stop);
    }
    let begin = s.char_indices().nth(skip).map_or(s.len(), |(i, _)| i);
    let rest = s.get(begin..)?;
    match take {
        None => Some(rest),
        Some(t) => {
            let stop = rest.char_indices().nth(t).map_or(rest.len(), |(i, _)| i);
            rest.get(..stop)
        }
    }
}

fn substring(a: &[ArrayRef]) -> ExecResult<ArrayRef> {
    let s = strings(
        a.first()
            .ok_or_else(|| internal("SUBSTRING without a string"))?,
    )?;
    let start = prim::<Int64Type>(
        a.get(1)
            .ok_or_else(|| internal("SUBSTRING without start"))?,
    )?;
    let len = a.get(2).map(|l| prim::<Int64Type>(l)).transpose()?;
    let mut b = StringBuilder::with_capacity(s.len(), s.values().len());
    for i in 0..s.len() {
        let length = match len {
            Some(l) if l.is_null(i) => {
                b.append_null();
                continue;
            }
            Some(l) => Some(l.value(i)),
            None => None,
        };
        if s.is_null(i) || start.is_null(i) {
            b.append_null();
            continue;
        }
        match substr(s.value(i), start.value(i), length) {
            Some(v) => b.append_value(v),
            None => b.append_null(),
        }
    }
    Ok(Arc::new(b.finish()))
}

fn concat(a: &[ArrayRef]) -> ExecResult<ArrayRef> {
    let cols = a
        .iter()
        .map(|c| strings(c))
        .collect::<ExecResult<Vec<_>>>()?;
    let rows = cols.first().map_or(0, |c| c.len());
    let bytes = cols.iter().map(|c| c.values().len()).sum();
    let mut b = StringBuilder::with_capacity(rows, bytes);
    for i in 0..rows {
        for c in &cols {
            if c.is_valid(i) {
                b.write_str(c.value(i))
                    .map_err(|_| internal("CONCAT could not write"))?;
            }
        }
        b.append_value("");
    }
    Ok(Arc::new(b.finish()))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use crate::plan::expr::BinaryOp;
    use SqlType::*;

    #[test]
    fn lower_upper_are_unicode_aware() {
        let c = strs(&[Some("Hello"), Some("ÉCOLE straße"), Some("ΟΔΟΣ"), None]);
        same(
            &eval1(
                &call(ScalarFunc::Lower, vec![col(0, Varchar)], Varchar),
                c.clone(),
            ),
            strs(&[
                Some("hello"),
                Some("école straße"),
                Some("οδο\u{3c2}"),
                None,
            ]),
        );
        same(
            &eval1(&call(ScalarFunc::Upper, vec![col(0, Varchar)], Varchar), c),
            strs(&[Some("HELLO"), Some("ÉCOLE STRASSE"), Some("ΟΔΟΣ"), None]),
        );
        // ASCII fast path on a sliced column
        let ascii = strs(&[Some("AbC"), None, Some("xY")]).slice(1, 2);
        same(
            &eval1(
                &call(ScalarFunc::Upper, vec![col(0, Varchar)], Varchar),
                ascii,
            ),
            strs(&[None, Some("XY")]),
        );
    }

    #[test]
    fn length_counts_characters() {
        let c = strs(&[Some("abc"), Some("日本語"), Some(""), Some("é"), None]);
        same(
            &eval1(&call(ScalarFunc::Length, vec![col(0, Varchar)], BigInt), c),
            int64(&[Some(3), Some(3), Some(0), Some(1), None]),
        );
    }

    #[test]
    fn substr_follows_postgres() {
        assert_eq!(substr("hello", 2, Some(3)), Some("ell"));
        assert_eq!(substr("hello", 2, None), Some("ello"));
        assert_eq!(substr("hello", 0, Some(3)), Some("he"));
        assert_eq!(substr("hello", -5, Some(3)), Some(""));
        assert_eq!(substr("hello", -1, None), Some("hello"));
        assert_eq!(substr("hello", 9, Some(2)), Some(""));
        assert_eq!(substr("hello", 4, Some(100)), Some("lo"));
        assert_eq!(substr("hello", 1, Some(0)), Some(""));
        assert_eq!(substr("hello", 1, Some(-1)), None);
        assert_eq!(substr("hello", i64::MIN, Some(i64::MAX)), Some(""));
        assert_eq!(substr("hello", 2, Some(i64::MAX)), Some("ello"));
        assert_eq!(substr("日本語です", 2, Some(2)), Some("本語"));
        assert_eq!(substr("日本語です", 0, Some(2)), Some("日"));
        assert_eq!(substr("日本語です", 5, None), Some("す"));
        assert_eq!(substr("日本語です", 6, None), Some(""));
    }

    #[test]
    fn substring_over_columns() {
        let b = batch(vec![
            ("s", strs(&[Some("héllo"), None, Some("abc"), Some("abc")])),
            ("n", int64(&[Some(2), Some(1), None, Some(-1)])),
        ]);
        let sub3 = call(
            ScalarFunc::Substring,
            vec![col(0, Varchar), big(2), col(1, BigInt)],
            Varchar,
        );
        same(&eval(&sub3, &b), strs(&[Some("él"), None, None, None]));
        let sub2 = call(
            ScalarFunc::Substring,
            vec![col(0, Varchar), col(1, BigInt)],
            Varchar,
        );
        same(
            &eval(&sub2, &b),
            strs(&[Some("éllo"), None, None, Some("abc")]),
        );
        // INT start is widened
        let sub_int = call(
            ScalarFunc::Substring,
            vec![col(0, Varchar), int(3)],
            Varchar,
        );
        same(
            &eval(&sub_int, &b),
            strs(&[Some("llo"), None, Some("c"), Some("c")]),
        );
    }

    #[test]
    fn concat_skips_nulls_but_pipe_does_not() {
        let b = batch(vec![
            ("a", strs(&[Some("a"), None, None])),
            ("b", strs(&[Some("é"), Some("b"), None])),
        ]);
        let c = call(
            ScalarFunc::Concat,
            vec![col(0, Varchar), text("-"), col(1, Varchar)],
            Varchar,
        );
        same(&eval(&c, &b), strs(&[Some("a-é"), Some("-b"), Some("-")]));
        let all_null = call(
            ScalarFunc::Concat,
            vec![col(0, Varchar), null(Varchar)],
            Varchar,
        );
        same(&eval(&all_null, &b), strs(&[Some("a"), Some(""), Some("")]));
        let pipe = bin(BinaryOp::Concat, col(0, Varchar), col(1, Varchar));
        same(&eval(&pipe, &b), strs(&[Some("aé"), None, None]));
        let pipe_lit = bin(BinaryOp::Concat, text("x:"), col(1, Varchar));
        same(
            &eval(&pipe_lit, &b),
            strs(&[Some("x:é"), Some("x:b"), None]),
        );
        let none = call(ScalarFunc::Concat, vec![], Varchar);
        same(&eval(&none, &b), strs(&[Some(""); 3]));
    }

    #[test]
    fn wrong_arity_is_rejected() {
        let e = call(ScalarFunc::Lower, vec![], Varchar);
        assert!(super::super::compile(&e).is_err());
        let e = call(ScalarFunc::Substring, vec![text("a")], Varchar);
        assert!(super::super::compile(&e).is_err());
    }
}
