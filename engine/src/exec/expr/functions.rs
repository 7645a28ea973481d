//! The built-in scalar functions: one registry the planner and the
//! executor both read. A function is one [`FunctionDef`] in its family's
//! file (`strings.rs`, `math.rs`, `time.rs`, `case.rs`) — its SQL names,
//! how a call is checked and typed, and how it compiles to that file's
//! kernel — plus one line in [`scalar_functions!`] below.

use crate::error::{ExecResult, PlanResult, SqlPos};
use crate::plan::expr::{Expr, TimeUnitField};
use crate::types::SqlType;

use super::Node;
use super::{
    calendar, case, choose, clock, date_format, elementary, math, regex, strings, text, time,
};

/// How SQL calls a built-in function and how it runs.
pub(crate) struct FunctionDef {
    /// Its name in EXPLAIN and messages.
    pub name: &'static str,
    /// Names SQL calls it by, listed in messages (none: not callable).
    pub names: &'static [&'static str],
    /// Other names accepted.
    pub aliases: &'static [&'static str],
    /// Checks and coerces a call's arguments (already planned): the typed
    /// call. `name` is the name it was called by.
    pub plan: fn(name: &str, args: Vec<Expr>, pos: SqlPos) -> PlanResult<Expr>,
    /// Compiles a planned call `expr` of `func` with `args`, of type `ty`.
    pub compile: fn(expr: &Expr, func: ScalarFunc, args: &[Expr], ty: SqlType) -> ExecResult<Node>,
}

/// A function parameter that shows in its name (`extract_year`).
pub(crate) trait Label {
    fn label(&self) -> String;
}

impl Label for TimeUnitField {
    fn label(&self) -> String {
        self.name().to_ascii_lowercase()
    }
}

impl Label for i64 {
    fn label(&self) -> String {
        format!("{self}ms")
    }
}

/// Declares the built-in scalar functions: the serialisable [`ScalarFunc`]
/// tag a plan carries, its definition, its name and [`FUNCTIONS`].
macro_rules! scalar_functions {
    ($($(#[$doc:meta])* $variant:ident $(($payload:ty))? => $def:path,)*) => {
        /// A built-in scalar function.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum ScalarFunc {
            $($(#[$doc])* $variant $(($payload))?,)*
        }

        impl ScalarFunc {
            /// Its definition.
            pub(crate) fn def(self) -> &'static FunctionDef {
                match self {
                    $(scalar_functions!(@pattern $variant $(($payload))?) => &$def,)*
                }
            }

            /// Name as in EXPLAIN and messages (with its parameter, if any).
            pub fn name(self) -> String {
                let base = self.def().name;
                match self {
                    $(scalar_functions!(@bind p, $variant $(($payload))?) =>
                        scalar_functions!(@name base, p $(, $payload)?),)*
                }
            }
        }

        /// Every built-in scalar function, in declaration order.
        pub(crate) static FUNCTIONS: &[&FunctionDef] = &[$(&$def,)*];
    };
    (@pattern $variant:ident ($payload:ty)) => { ScalarFunc::$variant(_) };
    (@pattern $variant:ident) => { ScalarFunc::$variant };
    (@bind $p:ident, $variant:ident ($payload:ty)) => { ScalarFunc::$variant($p) };
    (@bind $p:ident, $variant:ident) => { ScalarFunc::$variant };
    (@name $base:ident, $p:ident, $payload:ty) => { format!("{}_{}", $base, Label::label(&$p)) };
    (@name $base:ident, $p:ident) => { $base.to_string() };
}

scalar_functions! {
    /// `LOWER(s)`
    Lower => strings::LOWER,
    /// `UPPER(s)`
    Upper => strings::UPPER,
    /// `LENGTH(s)` / `CHAR_LENGTH(s)`: characters, not bytes; BIGINT.
    Length => strings::LENGTH,
    /// `SUBSTRING(s FROM start [FOR len])` / `SUBSTR(s, start[, len])`, 1-based, in characters.
    /// Arguments: string, start (BIGINT), optional length (BIGINT).
    Substring => strings::SUBSTRING,
    /// `CONCAT(a, b, ...)`: NULL arguments are skipped (as Flink/PostgreSQL `CONCAT`).
    /// All arguments are VARCHAR (the planner casts).
    Concat => strings::CONCAT,
    /// `COALESCE(a, b, ...)`: the first non-NULL; arguments share one type.
    Coalesce => case::COALESCE,
    /// `ABS(x)`
    Abs => math::ABS,
    /// `FLOOR(x)` (DOUBLE → DOUBLE; integers unchanged)
    Floor => math::FLOOR,
    /// `CEIL(x)` / `CEILING(x)`
    Ceil => math::CEIL,
    /// `ROUND(x[, digits])`: half away from zero; digits is BIGINT.
    Round => math::ROUND,
    /// `EXTRACT(field FROM ts)` → BIGINT.
    Extract(TimeUnitField) => time::EXTRACT,
    /// `DATE_TRUNC('unit', ts)` → TIMESTAMP (Year..Second, Week = ISO Monday).
    DateTrunc(TimeUnitField) => time::DATE_TRUNC,
    /// Start of the tumbling window of the given size (ms) containing `ts`.
    TumbleStart(i64) => time::TUMBLE_START,
    /// End (exclusive) of the tumbling window of the given size (ms) containing `ts`.
    TumbleEnd(i64) => time::TUMBLE_END,
    /// `REPLACE(s, from, to)`
    Replace => text::REPLACE,
    /// `STRPOS(s, sub)`, `POSITION(sub IN s)`, `LOCATE(sub, s)` → BIGINT
    Strpos => text::STRPOS,
    /// `TRIM([BOTH] [chars FROM] s)` / `BTRIM(s[, chars])`
    Btrim => text::BTRIM,
    /// `LTRIM(s[, chars])`, `TRIM(LEADING ...)`
    Ltrim => text::LTRIM,
    /// `RTRIM(s[, chars])`, `TRIM(TRAILING ...)`
    Rtrim => text::RTRIM,
    /// `SPLIT_PART(s, delimiter, n)`, 1-based
    SplitPart => text::SPLIT_PART,
    /// `SPLIT_INDEX(s, delimiter, i)`, 0-based (Flink)
    SplitIndex => text::SPLIT_INDEX,
    /// `REGEXP_EXTRACT(s, pattern[, group])`
    RegexpExtract => regex::REGEXP_EXTRACT,
    /// `REGEXP_REPLACE(s, pattern, replacement)`
    RegexpReplace => regex::REGEXP_REPLACE,
    /// `DATE_FORMAT(ts, pattern)` with Java's date letters
    DateFormat => date_format::DATE_FORMAT,
    /// `SQRT(x)` → DOUBLE
    Sqrt => elementary::SQRT,
    /// `EXP(x)` → DOUBLE
    Exp => elementary::EXP,
    /// `LN(x)` → DOUBLE
    Ln => elementary::LN,
    /// `LOG10(x)` → DOUBLE
    Log10 => elementary::LOG10,
    /// `POWER(x, y)` → DOUBLE
    Power => elementary::POWER,
    /// `GREATEST(a, b, ...)`
    Greatest => choose::GREATEST,
    /// `LEAST(a, b, ...)`
    Least => choose::LEAST,
    /// `PROCTIME()`: the wall clock when the row is processed
    ProcTime => clock::PROCTIME,
}

/// Functions SQL calls by name that are planned as other expressions
/// (`MOD(a, b)` is `a % b`, `HOUR(ts)` is `EXTRACT(HOUR FROM ts)`): they
/// have no tag of their own.
static SUGAR: &[&FunctionDef] = &[
    &elementary::MOD,
    &choose::NULLIF,
    &text::LOCATE,
    &calendar::YEAR,
    &calendar::QUARTER,
    &calendar::MONTH,
    &calendar::WEEK,
    &calendar::DAYOFMONTH,
    &calendar::DAYOFYEAR,
    &calendar::DAYOFWEEK,
    &calendar::HOUR,
    &calendar::MINUTE,
    &calendar::SECOND,
];

/// The `compile` of a function planned as another expression: never called.
pub(crate) fn not_compiled(
    expr: &Expr,
    _func: ScalarFunc,
    _args: &[Expr],
    _ty: SqlType,
) -> ExecResult<Node> {
    Err(super::value::internal(format!(
        "{expr} is planned as another expression and has no kernel"
    )))
}

/// The function SQL calls `name` (lower case), if it is a built-in one.
pub(crate) fn lookup(name: &str) -> Option<&'static FunctionDef> {
    FUNCTIONS
        .iter()
        .chain(SUGAR)
        .copied()
        .find(|d| d.names.contains(&name) || d.aliases.contains(&name))
}

/// The names listed in messages, in declaration order.
pub(crate) fn listed_names() -> Vec<&'static str> {
    FUNCTIONS
        .iter()
        .chain(SUGAR)
        .flat_map(|d| d.names.iter().copied())
        .collect()
}

/// Checks a call's argument count.
///
/// # Errors
/// Too few or too many arguments.
pub(crate) fn arity(
    name: &str,
    args: &[Expr],
    n: std::ops::RangeInclusive<usize>,
    pos: SqlPos,
) -> PlanResult<()> {
    if n.contains(&args.len()) {
        return Ok(());
    }
    let want = if n.start() == n.end() {
        n.start().to_string()
    } else {
        format!("{} to {}", n.start(), n.end())
    };
    Err(crate::error::PlanError::new(
        format!("{name} takes {want} argument(s), got {}", args.len()),
        pos,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_finds_its_own_definition() {
        for def in FUNCTIONS.iter().chain(SUGAR) {
            for name in def.names.iter().chain(def.aliases) {
                let found = lookup(name).expect(name);
                assert!(std::ptr::eq(found, *def), "{name}");
            }
        }
        // internal functions are not callable, and not listed
        assert!(lookup("tumble_start").is_none());
        assert!(!listed_names().contains(&"tumble_start"));
        assert_eq!(
            ScalarFunc::TumbleStart(10_000).name(),
            "tumble_start_10000ms"
        );
        assert_eq!(
            ScalarFunc::Extract(TimeUnitField::Hour).name(),
            "extract_hour"
        );
    }

    #[test]
    fn a_definition_plans_and_compiles_its_calls() {
        let pos = SqlPos::default();
        let arg = Expr::Literal(crate::plan::expr::Literal::Varchar("Ab".into()));
        let call = (lookup("upper").expect("upper").plan)("upper", vec![arg], pos).expect("plans");
        assert_eq!(call.sql_type(), SqlType::Varchar);
        let compiled = crate::exec::expr::compile(&call).expect("compiles");
        let one: arrow::array::ArrayRef =
            std::sync::Arc::new(arrow::array::Int64Array::from(vec![1]));
        let batch = arrow::record_batch::RecordBatch::try_from_iter([("x", one)]).expect("batch");
        let out = compiled.evaluate(&batch).expect("runs");
        let s = arrow::array::AsArray::as_string::<i32>(&out);
        assert_eq!(s.value(0), "AB");
        // and refuses what its signature does not take
        let e = (lookup("abs").expect("abs").plan)("abs", vec![], pos).unwrap_err();
        assert!(
            e.to_string().contains("abs takes 1 argument(s), got 0"),
            "{e}"
        );
    }
}
