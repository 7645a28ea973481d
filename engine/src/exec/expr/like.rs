//! `[NOT] LIKE` / `ILIKE` with `%` (any run of characters) and `_` (exactly
//! one character, not byte).
//!
//! A backslash escapes the next character (`\%`, `\_`, `\\`); a trailing
//! lone backslash matches a backslash. A constant pattern is parsed once at
//! compile time into an exact / prefix / suffix / contains test or a general
//! matcher (greedy segment search, no regex, no backtracking blow-up); a
//! pattern taken from a column is parsed per row, reusing the last parse
//! while the pattern repeats. ILIKE folds both sides to lower case one
//! character at a time (`char::to_lowercase`, Unicode-aware). NULL operand or
//! pattern gives NULL.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, BooleanBuilder, new_null_array};
use arrow::buffer::BooleanBuffer;
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;

use super::Node;
use super::compile::sub;
use super::value::{Value, map_value, map_values, strings};
use crate::error::ExecResult;
use crate::plan::expr::{Expr, Literal};
use crate::types::SqlType;

/// One element of a `%`-free run of the pattern.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    /// Literal text.
    Lit(String),
    /// `n` consecutive `_`.
    Any(usize),
}

/// A run of pieces between two `%`.
type Segment = Vec<Piece>;

/// A parsed LIKE pattern.
#[derive(Debug, Clone, PartialEq)]
enum Matcher {
    /// No wildcard.
    Exact(String),
    /// `abc%`
    Prefix(String),
    /// `%abc`
    Suffix(String),
    /// `%abc%`
    Contains(String),
    /// Only `%`: any string.
    All,
    /// Anything else: segments separated by `%` (at least one `%` when
    /// there are two or more segments).
    General(Vec<Segment>),
}

/// A LIKE pattern ready to test strings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pattern {
    matcher: Matcher,
    case_insensitive: bool,
}

/// Lower-cases `s` into `out`, one character at a time.
fn fold_case(s: &str, out: &mut String) {
    out.clear();
    if s.is_ascii() {
        out.push_str(s);
        out.make_ascii_lowercase();
    } else {
        out.extend(s.chars().flat_map(char::to_lowercase));
    }
}

impl Pattern {
    /// Parses a LIKE pattern.
    pub(crate) fn new(pattern: &str, case_insensitive: bool) -> Self {
        let mut folded = String::new();
        let pattern = if case_insensitive {
            fold_case(pattern, &mut folded);
            folded.as_str()
        } else {
            pattern
        };
        let mut segments: Vec<Segment> = vec![vec![]];
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            if c == '%' {
                segments.push(vec![]);
                continue;
            }
            let Some(seg) = segments.last_mut() else {
                break;
            };
            match c {
                '_' => match seg.last_mut() {
                    Some(Piece::Any(n)) => *n += 1,
                    _ => seg.push(Piece::Any(1)),
                },
                c => {
                    let c = if c == '\\' {
                        chars.next().unwrap_or('\\')
                    } else {
                        c
                    };
                    match seg.last_mut() {
                        Some(Piece::Lit(s)) => s.push(c),
                        _ => seg.push(Piece::Lit(c.to_string())),
                    }
                }
            }
        }
        // `a%%b` is `a%b`
        let last = segments.len() - 1;
        let mut i = 0;
        segments.retain(|s| {
            let keep = !s.is_empty() || i == 0 || i == last;
            i += 1;
            keep
        });
        Pattern {
            matcher: classify(segments),
            case_insensitive,
        }
    }

    /// Whether `s` matches. `buf` is scratch space for case folding.
    pub(crate) fn matches(&self, s: &str, buf: &mut String) -> bool {
        let s = if self.case_insensitive {
            fold_case(s, buf);
            buf.as_str()
        } else {
            s
        };
        match &self.matcher {
            Matcher::Exact(p) => s == p,
            Matcher::Prefix(p) => s.starts_with(p.as_str()),
            Matcher::Suffix(p) => s.ends_with(p.as_str()),
            Matcher::Contains(p) => s.contains(p.as_str()),
            Matcher::All => true,
            Matcher::General(segs) => match_general(segs, s),
        }
    }
}

fn pure_literal(seg: &Segment) -> Option<String> {
    match seg.as_slice() {
        [] => Some(String::new()),
        [Piece::Lit(s)] => Some(s.clone()),
        _ => None,
    }
}

fn classify(segments: Vec<Segment>) -> Matcher {
    let lits: Vec<Option<String>> = segments.iter().map(pure_literal).collect();
    match lits.as_slice() {
        [Some(p)] => Matcher::Exact(p.clone()),
        [Some(a), Some(b)] if a.is_empty() && b.is_empty() => Matcher::All,
        [Some(a), Some(b)] if b.is_empty() => Matcher::Prefix(a.clone()),
        [Some(a), Some(b)] if a.is_empty() => Matcher::Suffix(b.clone()),
        [Some(a), Some(m), Some(b)] if a.is_empty() && b.is_empty() => Matcher::Contains(m.clone()),
        _ => Matcher::General(segments),
    }
}

/// Matches `seg` at byte `pos` of `s`; the end of the match.
fn match_at(seg: &[Piece], s: &str, mut pos: usize) -> Option<usize> {
    for p in seg {
        match p {
            Piece::Lit(l) => {
                if !s.as_bytes().get(pos..)?.starts_with(l.as_bytes()) {
                    return None;
                }
                pos += l.len();
            }
            Piece::Any(n) => {
                for _ in 0..*n {
                    pos += s.get(pos..)?.chars().next()?.len_utf8();
                }
            }
        }
    }
    Some(pos)
}

/// Matches `seg` so that it ends at byte `end` of `s`; the start of the match.
fn match_back(seg: &[Piece], s: &str, mut end: usize) -> Option<usize> {
    for p in seg.iter().rev() {
        match p {
            Piece::Lit(l) => {
                if !s.as_bytes().get(..end)?.ends_with(l.as_bytes()) {
                    return None;
                }
                end -= l.len();
            }
            Piece::Any(n) => {
                for _ in 0..*n {
                    end -= s.get(..end)?.chars().next_back()?.len_utf8();
                }
            }
        }
    }
    Some(end)
}

/// The end of the leftmost match of `seg` in `s` at or after byte `from`.
fn find(seg: &[Piece], s: &str, mut from: usize) -> Option<usize> {
    loop {
        if let Some(Piece::Lit(l)) = seg.first() {
            from += s.get(from..)?.find(l.as_str())?;
        }
        if let Some(end) = match_at(seg, s, from) {
            return Some(end);
        }
        from += s.get(from..)?.chars().next()?.len_utf8();
    }
}

/// First segment anchored at the start, last at the end, the ones between
/// found leftmost-first in between (leftmost is always best, because every
/// segment has a fixed length in characters).
fn match_general(segs: &[Segment], s: &str) -> bool {
    let (first, rest) = match segs.split_first() {
        Some(x) => x,
        None => return s.is_empty(),
    };
    let Some(mut pos) = match_at(first, s, 0) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return pos == s.len();
    };
    let Some(tail) = match_back(last, s, s.len()) else {
        return false;
    };
    if tail < pos {
        return false;
    }
    let Some(window) = s.get(..tail) else {
        return false;
    };
    for seg in middle {
        match find(seg, window, pos) {
            Some(end) => pos = end,
            None => return false,
        }
    }
    true
}

/// The pattern operand.
#[derive(Debug)]
enum PatternSource {
    /// A constant pattern, parsed; `None` for a NULL pattern.
    Const(Option<Pattern>),
    /// A pattern computed per row.
    Rows(Node),
}

/// `expr [NOT] [I]LIKE pattern`.
#[derive(Debug)]
pub(crate) struct Like {
    expr: Node,
    pattern: PatternSource,
    negated: bool,
    case_insensitive: bool,
}

impl Like {
    /// Compiles a LIKE; a constant pattern is parsed here, once.
    pub(crate) fn compile(
        expr: &Expr,
        pattern: &Expr,
        negated: bool,
        case_insensitive: bool,
    ) -> ExecResult<Node> {
        let source = match pattern {
            Expr::Literal(Literal::Varchar(p)) => {
                PatternSource::Const(Some(Pattern::new(p, case_insensitive)))
            }
            Expr::Literal(Literal::Null(_)) => PatternSource::Const(None),
            p => PatternSource::Rows(sub(p, SqlType::Varchar)?),
        };
        Ok(Node::Like(Box::new(Like {
            expr: sub(expr, SqlType::Varchar)?,
            pattern: source,
            negated,
            case_insensitive,
        })))
    }

    /// Evaluates over `batch`.
    pub(crate) fn eval(&self, batch: &RecordBatch) -> ExecResult<Value> {
        let e = self.expr.eval(batch)?;
        let negated = self.negated;
        match &self.pattern {
            PatternSource::Const(None) => Ok(if e.is_scalar() {
                Value::null(&DataType::Boolean)
            } else {
                Value::Array(new_null_array(&DataType::Boolean, batch.num_rows()))
            }),
            PatternSource::Const(Some(p)) => map_value(e, |a| {
                let s = strings(a)?;
                let mut buf = String::new();
                let bits = BooleanBuffer::collect_bool(s.len(), |i| {
                    p.matches(s.value(i), &mut buf) != negated
                });
                Ok(Arc::new(BooleanArray::new(bits, s.nulls().cloned())) as ArrayRef)
            }),
            PatternSource::Rows(node) => {
                let pat = node.eval(batch)?;
                let ci = self.case_insensitive;
                map_values(vec![e, pat], batch.num_rows(), |a: &[ArrayRef]| {
                    let (s, p) = (strings(&a[0])?, strings(&a[1])?);
                    let mut out = BooleanBuilder::with_capacity(s.len());
                    let mut buf = String::new();
                    let mut cache: Option<(&str, Pattern)> = None;
                    for (v, pv) in s.iter().zip(p.iter()) {
                        let (Some(v), Some(pv)) = (v, pv) else {
                            out.append_null();
                            continue;
                        };
                        let pattern = match cache.take() {
                            Some((text, parsed)) if text == pv => (text, parsed),
                            _ => (pv, Pattern::new(pv, ci)),
                        };
                        out.append_value(pattern.1.matches(v, &mut buf) != negated);
                        cache = Some(pattern);
                    }
                    Ok(Arc::new(out.finish()) as ArrayRef)
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        Pattern::new(p, false).matches(s, &mut String::new())
    }

    fn im(p: &str, s: &str) -> bool {
        Pattern::new(p, true).matches(s, &mut String::new())
    }

    #[test]
    fn patterns_are_classified() {
        let k = |p: &str| Pattern::new(p, false).matcher;
        assert_eq!(k("abc"), Matcher::Exact("abc".into()));
        assert_eq!(k("ab%"), Matcher::Prefix("ab".into()));
        assert_eq!(k("%ab"), Matcher::Suffix("ab".into()));
        assert_eq!(k("%ab%"), Matcher::Contains("ab".into()));
        assert_eq!(k("%%ab%%"), Matcher::Contains("ab".into()));
        assert_eq!(k("%"), Matcher::All);
        assert_eq!(k(r"50\%"), Matcher::Exact("50%".into()));
        assert!(matches!(k("a_c"), Matcher::General(_)));
    }

    #[test]
    fn wildcards_match_characters() {
        assert!(m("abc", "abc") && !m("abc", "abcd") && !m("abc", "ab"));
        assert!(m("a%", "a") && m("a%", "abc") && !m("a%", "ba"));
        assert!(m("%c", "abc") && !m("%c", "cb"));
        assert!(m("%b%", "abc") && !m("%b%", "ac"));
        assert!(m("%", "") && m("", "") && !m("", "a"));
        assert!(m("a_c", "abc") && m("a_c", "aéc") && !m("a_c", "ac") && !m("a_c", "abbc"));
        assert!(m("___", "日本語") && !m("__", "日本語"));
        assert!(m("a%b%c", "aXbYc") && m("a%b%c", "abc") && !m("a%b%c", "acb"));
        assert!(m("%a_b%", "xxaZbyy") && !m("%a_b%", "xxabyy"));
        assert!(m("a%a", "aa") && !m("a%a", "a"));
        assert!(m("%_%_%", "ab") && !m("%_%_%", "a"));
        assert!(m("_%", "é") && !m("_%", ""));
        assert!(m("%ab%ab%", "abab") && !m("%ab%ab%", "aba"));
        assert!(m("%é_", "xéy") && !m("%é_", "xé"));
        assert!(m("%%%", "anything"));
    }

    #[test]
    fn backslash_escapes() {
        assert!(m(r"100\%", "100%") && !m(r"100\%", "1000"));
        assert!(m(r"a\_c", "a_c") && !m(r"a\_c", "abc"));
        assert!(m(r"a\\%", r"a\xyz") && !m(r"a\\%", "axyz"));
        assert!(m(r"a\", r"a\"));
        assert!(m(r"%\%%", "5% off") && !m(r"%\%%", "5 off"));
        assert!(m("a.c", "a.c") && !m("a.c", "abc"));
    }

    #[test]
    fn ilike_folds_unicode() {
        assert!(im("GOO%", "google") && im("%GLE", "GoOgLe"));
        assert!(im("straße", "STRAßE") && im("émile%", "ÉMILE ZOLA"));
        assert!(im("_mile", "Émile"));
        assert!(!m("GOO%", "google"));
    }

    fn like(e: Expr, p: Expr, negated: bool, ci: bool) -> Expr {
        Expr::Like {
            expr: Box::new(e),
            pattern: Box::new(p),
            negated,
            case_insensitive: ci,
        }
    }

    #[test]
    fn like_over_columns_with_nulls() {
        let b = batch(vec![
            (
                "s",
                strs(&[Some("Google"), Some("Bing"), None, Some("goo")]),
            ),
            ("p", strs(&[Some("G%"), Some("%g"), Some("%"), None])),
        ]);
        let (t, f) = (Some(true), Some(false));
        let s = || col(0, SqlType::Varchar);
        same(
            &eval(&like(s(), text("G%"), false, false), &b),
            bools(&[t, f, None, f]),
        );
        same(
            &eval(&like(s(), text("G%"), true, false), &b),
            bools(&[f, t, None, t]),
        );
        same(
            &eval(&like(s(), text("G%"), false, true), &b),
            bools(&[t, f, None, t]),
        );
        same(
            &eval(&like(s(), text("G%"), true, true), &b),
            bools(&[f, t, None, f]),
        );
        same(
            &eval(&like(s(), null(SqlType::Varchar), false, false), &b),
            bools(&[None; 4]),
        );
        // pattern from a column
        let p = || col(1, SqlType::Varchar);
        same(
            &eval(&like(s(), p(), false, false), &b),
            bools(&[t, t, None, None]),
        );
        same(
            &eval(&like(s(), p(), true, false), &b),
            bools(&[f, f, None, None]),
        );
        same(
            &eval(&like(text("bing"), p(), false, true), &b),
            bools(&[f, t, t, None]),
        );
    }
}
