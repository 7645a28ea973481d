//! `DATE_FORMAT(ts, pattern)`: a TIMESTAMP as text, with Java's
//! date-pattern letters as Flink's DATE_FORMAT takes them (timestamps are
//! UTC, as everywhere in Eddy).
//!
//! | letters | meaning | example |
//! |---|---|---|
//! | `yyyy` `yy` `y` | year (4 digits, last 2, as is) | `2026` `26` |
//! | `MM` `M` `MMM` `MMMM` | month (2 digits, number, short name, name) | `01` `1` `Jan` `January` |
//! | `dd` `d` | day of the month | `02` |
//! | `DDD` `D` | day of the year | `002` |
//! | `HH` `H` | hour 0–23 | `07` |
//! | `hh` `h` | hour 1–12 | `07` |
//! | `kk` `k` / `KK` `K` | hour 1–24 / 0–11 | |
//! | `mm` `m` | minute | `05` |
//! | `ss` `s` | second | `09` |
//! | `SSS` `S`… | fraction of the second, that many digits | `250` |
//! | `a` | `AM` / `PM` | |
//! | `EEE` `EEEE` | day of the week (short, full) | `Fri` `Friday` |
//! | `'text'`, `''` | literal text, a quote | |
//!
//! Other characters that are not letters are copied. Any other letter is
//! refused when the query is planned (it would silently mean something
//! else than the user expects). A pattern read from a column that does not
//! parse gives NULL.

use std::fmt::Write;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringBuilder};
use chrono::{DateTime, Datelike, Timelike};

use super::compile::{arity, sub};
use super::functions::{FunctionDef, arity as plan_arity};
use super::kernel::{KernelCall, Reparsed, RowKernel, const_str, str_arg};
use super::value::{internal, timestamps};
use crate::error::{ExecResult, PlanError};
use crate::plan::expr::{Expr, ScalarFunc};
use crate::sql::typing::{coerce, expect_type};
use crate::types::SqlType;

/// `DATE_FORMAT(ts, pattern)`.
pub(crate) static DATE_FORMAT: FunctionDef = FunctionDef {
    name: "date_format",
    names: &["date_format"],
    aliases: &[],
    plan: |name, mut args, pos| {
        plan_arity(name, &args, 2..=2, pos)?;
        let pattern = expect_type(args.pop().expect("two"), SqlType::Varchar, name, pos)?;
        let ts = args.pop().expect("two");
        // Flink also formats a timestamp written as text
        let ts = match ts.sql_type() {
            SqlType::Varchar => coerce(ts, SqlType::Timestamp),
            _ => expect_type(ts, SqlType::Timestamp, name, pos)?,
        };
        if let Some(p) = const_str(&pattern) {
            parse(p).map_err(|e| {
                PlanError::new(format!("{name}: {e} in pattern '{p}'"), pos).with_hint(
                    "use Java's date letters, e.g. 'yyyy-MM-dd HH:mm:ss'; quote other text: 'at' HH",
                )
            })?;
        }
        Ok(Expr::Function {
            func: ScalarFunc::DateFormat,
            args: vec![ts, pattern],
            ty: SqlType::Varchar,
        })
    },
    compile: |expr, _func, args, _ty| {
        arity(expr, args, 2, 2)?;
        let pattern = args
            .get(1)
            .and_then(const_str)
            .map(|p| parse(p).map_err(|e| internal(format!("{e} in pattern '{p}'"))))
            .transpose()?;
        let nodes = vec![
            sub(&args[0], SqlType::Timestamp)?,
            sub(&args[1], SqlType::Varchar)?,
        ];
        Ok(KernelCall::node(DateFormat { pattern }, nodes))
    },
};

/// One element of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    /// A field letter repeated `n` times.
    Field(char, usize),
}

fn parse(p: &str) -> Result<Vec<Piece>, String> {
    let mut out: Vec<Piece> = Vec::new();
    let mut chars = p.chars().peekable();
    let text = |out: &mut Vec<Piece>, s: &str| match out.last_mut() {
        Some(Piece::Text(t)) => t.push_str(s),
        _ => out.push(Piece::Text(s.to_string())),
    };
    while let Some(c) = chars.next() {
        if c == '\'' {
            if chars.next_if_eq(&'\'').is_some() {
                text(&mut out, "'");
                continue;
            }
            let mut lit = String::new();
            loop {
                match chars.next() {
                    Some('\'') if chars.next_if_eq(&'\'').is_some() => lit.push('\''),
                    Some('\'') => break,
                    Some(x) => lit.push(x),
                    None => return Err("an unclosed quote".into()),
                }
            }
            text(&mut out, &lit);
        } else if c.is_ascii_alphabetic() {
            if !"yMdDHhkKmsSaE".contains(c) {
                return Err(format!("the letter '{c}' is not supported"));
            }
            let mut n = 1;
            while chars.next_if_eq(&c).is_some() {
                n += 1;
            }
            out.push(Piece::Field(c, n));
        } else {
            text(&mut out, c.encode_utf8(&mut [0; 4]));
        }
    }
    Ok(out)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Writes `ms` (epoch milliseconds, UTC) as `pattern`; `None` beyond
/// chrono's range.
fn format(out: &mut String, ms: i64, pattern: &[Piece]) -> Option<()> {
    let t = DateTime::from_timestamp_millis(ms)?.naive_utc();
    for piece in pattern {
        let (c, n) = match piece {
            Piece::Text(s) => {
                out.push_str(s);
                continue;
            }
            Piece::Field(c, n) => (*c, *n),
        };
        let num = |out: &mut String, v: i64| write!(out, "{v:0n$}").ok();
        match c {
            'y' if n == 2 => num(out, i64::from(t.year()).rem_euclid(100))?,
            'y' => num(out, i64::from(t.year()))?,
            'M' if n >= 3 => {
                let name = MONTHS[t.month0() as usize];
                out.push_str(if n == 3 { &name[..3] } else { name });
            }
            'M' => num(out, i64::from(t.month()))?,
            'd' => num(out, i64::from(t.day()))?,
            'D' => num(out, i64::from(t.ordinal()))?,
            'H' => num(out, i64::from(t.hour()))?,
            'h' => num(out, i64::from((t.hour() + 11) % 12 + 1))?,
            'k' => num(out, i64::from(if t.hour() == 0 { 24 } else { t.hour() }))?,
            'K' => num(out, i64::from(t.hour() % 12))?,
            'm' => num(out, i64::from(t.minute()))?,
            's' => num(out, i64::from(t.second()))?,
            'S' => {
                let millis = format!("{:03}", ms.rem_euclid(1000));
                let digits: String = millis
                    .chars()
                    .chain(std::iter::repeat('0'))
                    .take(n)
                    .collect();
                out.push_str(&digits);
            }
            'a' => out.push_str(if t.hour() < 12 { "AM" } else { "PM" }),
            'E' => {
                let name = DAYS[t.weekday().num_days_from_monday() as usize];
                out.push_str(if n <= 3 { &name[..3] } else { name });
            }
            _ => return None,
        }
    }
    Some(())
}

/// DATE_FORMAT's kernel; `pattern` when it is a constant.
#[derive(Debug)]
struct DateFormat {
    pattern: Option<Vec<Piece>>,
}

impl RowKernel for DateFormat {
    fn eval(&self, args: &[ArrayRef]) -> ExecResult<ArrayRef> {
        let ts = timestamps(
            args.first()
                .ok_or_else(|| internal("DATE_FORMAT without ts"))?,
        )?;
        let p = str_arg(args, 1)?;
        let mut b = StringBuilder::with_capacity(ts.len(), ts.len() * 16);
        let mut buf = String::new();
        let mut from_column = Reparsed::new(|t| parse(t).ok());
        for i in 0..ts.len() {
            if ts.is_null(i) || p.is_null(i) {
                b.append_null();
                continue;
            }
            let Some(pattern) = self
                .pattern
                .as_ref()
                .or_else(|| from_column.get(p.value(i)))
            else {
                b.append_null();
                continue;
            };
            buf.clear();
            match format(&mut buf, ts.value(i), pattern) {
                Some(()) => b.append_value(&buf),
                None => b.append_null(),
            }
        }
        Ok(Arc::new(b.finish()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use SqlType::*;

    fn fmt(ms: i64, p: &str) -> String {
        let mut s = String::new();
        format(&mut s, ms, &parse(p).unwrap()).unwrap();
        s
    }

    #[test]
    fn java_letters() {
        // 2026-01-02T07:05:09.250Z, a Friday
        let t = 1_767_337_509_250;
        assert_eq!(fmt(t, "yyyy-MM-dd"), "2026-01-02");
        assert_eq!(fmt(t, "HH:mm"), "07:05");
        assert_eq!(fmt(t, "yyyy-MM-dd HH:mm:ss.SSS"), "2026-01-02 07:05:09.250");
        assert_eq!(fmt(t, "yy M d H m s S"), "26 1 2 7 5 9 2");
        assert_eq!(fmt(t, "EEE, dd MMM yyyy hh a"), "Fri, 02 Jan 2026 07 AM");
        assert_eq!(fmt(t, "EEEE MMMM DDD"), "Friday January 002");
        assert_eq!(fmt(t, "'day' d 'o''clock' ''"), "day 2 o'clock '");
        assert_eq!(fmt(t, "k K SSSSS"), "7 7 25000");
        assert_eq!(fmt(0, "k h a"), "24 12 AM");
        assert_eq!(
            fmt(-1, "yyyy-MM-dd HH:mm:ss.SSS"),
            "1969-12-31 23:59:59.999"
        );
    }

    #[test]
    fn unknown_letters_and_open_quotes_are_refused() {
        assert!(parse("yyyy-QQ").unwrap_err().contains("'Q'"));
        assert!(parse("'open").is_err());
    }

    #[test]
    fn over_columns() {
        let b = batch(vec![
            ("t", tss(&[Some(1_767_337_509_250), None, Some(0)])),
            ("p", strs(&[Some("yyyy"), Some("MM"), Some("Q")])),
        ]);
        let e = call(
            ScalarFunc::DateFormat,
            vec![col(0, Timestamp), text("yyyy-MM-dd")],
            Varchar,
        );
        same(
            &eval(&e, &b),
            strs(&[Some("2026-01-02"), None, Some("1970-01-01")]),
        );
        let from_col = call(
            ScalarFunc::DateFormat,
            vec![col(0, Timestamp), col(1, Varchar)],
            Varchar,
        );
        same(&eval(&from_col, &b), strs(&[Some("2026"), None, None]));
    }
}
