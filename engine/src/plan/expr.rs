//! Typed, resolved scalar expressions: what the planner produces from SQL
//! and the executor evaluates column-wise over record batches.

use std::fmt;

use crate::types::SqlType;

/// A literal value.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Literal {
    /// NULL of the given type.
    Null(SqlType),
    /// TRUE / FALSE.
    Boolean(bool),
    /// INT.
    Int(i32),
    /// BIGINT.
    BigInt(i64),
    /// DOUBLE.
    Double(f64),
    /// DECIMAL(p, s): the value scaled by `10^s`, the precision and the scale.
    Decimal(i128, u8, u8),
    /// VARCHAR.
    Varchar(String),
    /// TIMESTAMP, milliseconds since the epoch.
    Timestamp(i64),
    /// INTERVAL, in milliseconds.
    Interval(i64),
}

impl Literal {
    /// The SQL type of the literal.
    pub fn sql_type(&self) -> SqlType {
        match self {
            Literal::Null(t) => *t,
            Literal::Boolean(_) => SqlType::Boolean,
            Literal::Int(_) => SqlType::Int,
            Literal::BigInt(_) => SqlType::BigInt,
            Literal::Double(_) => SqlType::Double,
            Literal::Decimal(_, p, s) => SqlType::Decimal(*p, *s),
            Literal::Varchar(_) => SqlType::Varchar,
            Literal::Timestamp(_) => SqlType::Timestamp,
            Literal::Interval(_) => SqlType::Interval,
        }
    }
}

/// A binary operator. Operands are already coerced to a common type by the
/// planner, except `Timestamp ± Interval` and `Timestamp - Timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum BinaryOp {
    /// `+`
    Plus,
    /// `-`
    Minus,
    /// `*`
    Multiply,
    /// `/` (integer division on integers; division by zero yields NULL)
    Divide,
    /// `%` (division by zero yields NULL)
    Modulo,
    /// `=`
    Eq,
    /// `<>` / `!=`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
    /// `AND` (three-valued)
    And,
    /// `OR` (three-valued)
    Or,
    /// `||` string concatenation
    Concat,
}

impl BinaryOp {
    /// The operator as written in SQL.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Plus => "+",
            BinaryOp::Minus => "-",
            BinaryOp::Multiply => "*",
            BinaryOp::Divide => "/",
            BinaryOp::Modulo => "%",
            BinaryOp::Eq => "=",
            BinaryOp::NotEq => "<>",
            BinaryOp::Lt => "<",
            BinaryOp::LtEq => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::GtEq => ">=",
            BinaryOp::And => "AND",
            BinaryOp::Or => "OR",
            BinaryOp::Concat => "||",
        }
    }

    /// Whether the result is BOOLEAN because the operator compares.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq
                | BinaryOp::NotEq
                | BinaryOp::Lt
                | BinaryOp::LtEq
                | BinaryOp::Gt
                | BinaryOp::GtEq
        )
    }
}

/// A field of a TIMESTAMP, for `EXTRACT` and `DATE_TRUNC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum TimeUnitField {
    /// Calendar year.
    Year,
    /// Quarter of the year, 1..=4.
    Quarter,
    /// Month, 1..=12.
    Month,
    /// ISO week of the year.
    Week,
    /// Day of the month.
    Day,
    /// Day of the week, Sunday = 0 (`EXTRACT(DOW ...)`).
    DayOfWeek,
    /// Day of the year, 1..=366.
    DayOfYear,
    /// Hour, 0..=23.
    Hour,
    /// Minute, 0..=59.
    Minute,
    /// Second, 0..=59.
    Second,
    /// Millisecond within the second... for EXTRACT: seconds * 1000 + ms, as PostgreSQL.
    Millisecond,
    /// Seconds since the epoch (`EXTRACT(EPOCH ...)`), as BIGINT.
    Epoch,
}

impl TimeUnitField {
    /// Name as written in SQL.
    pub fn name(self) -> &'static str {
        match self {
            TimeUnitField::Year => "YEAR",
            TimeUnitField::Quarter => "QUARTER",
            TimeUnitField::Month => "MONTH",
            TimeUnitField::Week => "WEEK",
            TimeUnitField::Day => "DAY",
            TimeUnitField::DayOfWeek => "DOW",
            TimeUnitField::DayOfYear => "DOY",
            TimeUnitField::Hour => "HOUR",
            TimeUnitField::Minute => "MINUTE",
            TimeUnitField::Second => "SECOND",
            TimeUnitField::Millisecond => "MILLISECOND",
            TimeUnitField::Epoch => "EPOCH",
        }
    }
}

pub use crate::exec::expr::functions::ScalarFunc;

/// A WebAssembly function a plan calls: its module and signature. In a
/// plan's JSON it is the module's name and sha256 and the signature; reading
/// it back needs the module (see [`crate::plan::serde_plan`]).
#[derive(Clone)]
pub struct UdfRef {
    /// The compiled module.
    pub module: std::sync::Arc<crate::udf::UdfModule>,
    /// The function's SQL signature.
    pub signature: crate::udf::UdfSignature,
}

impl PartialEq for UdfRef {
    fn eq(&self, other: &Self) -> bool {
        self.module.sha256 == other.module.sha256 && self.signature == other.signature
    }
}

impl std::fmt::Debug for UdfRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "wasm:{} ({})", self.signature, self.module.name)
    }
}

/// A resolved, typed scalar expression over the columns of one input schema.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Expr {
    /// Column `index` of the input batch.
    Column {
        /// Position in the input schema.
        index: usize,
        /// Name (for display).
        name: String,
        /// Type.
        ty: SqlType,
    },
    /// A constant.
    Literal(Literal),
    /// `left op right`.
    Binary {
        /// Operator.
        op: BinaryOp,
        /// Left operand.
        left: Box<Expr>,
        /// Right operand.
        right: Box<Expr>,
        /// Result type.
        ty: SqlType,
    },
    /// `NOT e` (three-valued).
    Not(Box<Expr>),
    /// `-e`.
    Negate(Box<Expr>),
    /// `e IS [NOT] NULL`.
    IsNull {
        /// Operand.
        expr: Box<Expr>,
        /// `IS NOT NULL`.
        negated: bool,
    },
    /// `e [NOT] IN (list)`; list items have the operand's type.
    InList {
        /// Operand.
        expr: Box<Expr>,
        /// Candidates.
        list: Vec<Expr>,
        /// `NOT IN`.
        negated: bool,
    },
    /// `e [NOT] BETWEEN low AND high` (inclusive); all three share one type.
    Between {
        /// Operand.
        expr: Box<Expr>,
        /// Lower bound.
        low: Box<Expr>,
        /// Upper bound.
        high: Box<Expr>,
        /// `NOT BETWEEN`.
        negated: bool,
    },
    /// `e [NOT] LIKE pattern` / `ILIKE`.
    Like {
        /// Operand (VARCHAR).
        expr: Box<Expr>,
        /// Pattern (VARCHAR) with `%` and `_`.
        pattern: Box<Expr>,
        /// `NOT LIKE`.
        negated: bool,
        /// `ILIKE`.
        case_insensitive: bool,
    },
    /// `CASE WHEN c THEN v ... [ELSE e] END` (a `CASE x WHEN y` form is
    /// rewritten to `x = y` conditions by the planner).
    Case {
        /// (condition BOOLEAN, value) pairs, first true wins.
        whens: Vec<(Expr, Expr)>,
        /// The value when no condition is true (NULL if absent).
        else_expr: Option<Box<Expr>>,
        /// Result type.
        ty: SqlType,
    },
    /// `CAST(e AS ty)`.
    Cast {
        /// Operand.
        expr: Box<Expr>,
        /// Target type.
        ty: SqlType,
    },
    /// A built-in function call.
    Function {
        /// Which function.
        func: ScalarFunc,
        /// Arguments (already coerced).
        args: Vec<Expr>,
        /// Result type.
        ty: SqlType,
    },
    /// A call of a WebAssembly UDF, once per batch.
    Udf {
        /// The function.
        udf: UdfRef,
        /// Arguments, already of the signature's types.
        args: Vec<Expr>,
    },
}

impl Expr {
    /// The result type.
    pub fn sql_type(&self) -> SqlType {
        match self {
            Expr::Column { ty, .. } | Expr::Binary { ty, .. } | Expr::Case { ty, .. } => *ty,
            Expr::Cast { ty, .. } | Expr::Function { ty, .. } => *ty,
            Expr::Udf { udf, .. } => udf.signature.ret,
            Expr::Literal(l) => l.sql_type(),
            Expr::Negate(e) => e.sql_type(),
            Expr::Not(_)
            | Expr::IsNull { .. }
            | Expr::InList { .. }
            | Expr::Between { .. }
            | Expr::Like { .. } => SqlType::Boolean,
        }
    }

    /// A column reference.
    pub fn column(index: usize, name: impl Into<String>, ty: SqlType) -> Self {
        Expr::Column {
            index,
            name: name.into(),
            ty,
        }
    }

    /// Wraps in a CAST unless already of type `ty`.
    pub fn cast_to(self, ty: SqlType) -> Self {
        if self.sql_type() == ty {
            self
        } else if let Expr::Literal(Literal::Null(_)) = self {
            Expr::Literal(Literal::Null(ty))
        } else {
            Expr::Cast {
                expr: Box::new(self),
                ty,
            }
        }
    }

    /// The expression with each column index `i` replaced by `f(i)` (to
    /// read another layout of the same columns).
    pub fn map_columns(self, f: &dyn Fn(usize) -> usize) -> Expr {
        let m = |e: Box<Expr>| Box::new(e.map_columns(f));
        match self {
            Expr::Column { index, name, ty } => Expr::Column {
                index: f(index),
                name,
                ty,
            },
            Expr::Literal(l) => Expr::Literal(l),
            Expr::Binary {
                op,
                left,
                right,
                ty,
            } => Expr::Binary {
                op,
                left: m(left),
                right: m(right),
                ty,
            },
            Expr::Not(e) => Expr::Not(m(e)),
            Expr::Negate(e) => Expr::Negate(m(e)),
            Expr::IsNull { expr, negated } => Expr::IsNull {
                expr: m(expr),
                negated,
            },
            Expr::Cast { expr, ty } => Expr::Cast { expr: m(expr), ty },
            Expr::InList {
                expr,
                list,
                negated,
            } => Expr::InList {
                expr: m(expr),
                list: list.into_iter().map(|e| e.map_columns(f)).collect(),
                negated,
            },
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => Expr::Between {
                expr: m(expr),
                low: m(low),
                high: m(high),
                negated,
            },
            Expr::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
            } => Expr::Like {
                expr: m(expr),
                pattern: m(pattern),
                negated,
                case_insensitive,
            },
            Expr::Case {
                whens,
                else_expr,
                ty,
            } => Expr::Case {
                whens: whens
                    .into_iter()
                    .map(|(c, v)| (c.map_columns(f), v.map_columns(f)))
                    .collect(),
                else_expr: else_expr.map(m),
                ty,
            },
            Expr::Function { func, args, ty } => Expr::Function {
                func,
                args: args.into_iter().map(|e| e.map_columns(f)).collect(),
                ty,
            },
            Expr::Udf { udf, args } => Expr::Udf {
                udf,
                args: args.into_iter().map(|e| e.map_columns(f)).collect(),
            },
        }
    }

    /// The expressions this one is made of.
    pub fn children(&self) -> Vec<&Expr> {
        match self {
            Expr::Column { .. } | Expr::Literal(_) => Vec::new(),
            Expr::Binary { left, right, .. } => vec![left, right],
            Expr::Not(e)
            | Expr::Negate(e)
            | Expr::IsNull { expr: e, .. }
            | Expr::Cast { expr: e, .. } => vec![e],
            Expr::InList { expr, list, .. } => std::iter::once(expr.as_ref()).chain(list).collect(),
            Expr::Between {
                expr, low, high, ..
            } => vec![expr, low, high],
            Expr::Like { expr, pattern, .. } => vec![expr, pattern],
            Expr::Case {
                whens, else_expr, ..
            } => whens
                .iter()
                .flat_map(|(c, v)| [c, v])
                .chain(else_expr.as_deref())
                .collect(),
            Expr::Function { args, .. } | Expr::Udf { args, .. } => args.iter().collect(),
        }
    }

    /// Column indexes this expression reads, in first-use order.
    pub fn columns(&self, out: &mut Vec<usize>) {
        match self {
            Expr::Column { index, .. } => {
                if !out.contains(index) {
                    out.push(*index)
                }
            }
            other => other.children().into_iter().for_each(|c| c.columns(out)),
        }
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Null(_) => write!(f, "NULL"),
            Literal::Boolean(b) => write!(f, "{}", if *b { "TRUE" } else { "FALSE" }),
            Literal::Int(v) => write!(f, "{v}"),
            Literal::BigInt(v) => write!(f, "{v}"),
            Literal::Double(v) => write!(f, "{v:?}"),
            Literal::Decimal(v, _, s) => f.write_str(&crate::types::decimal::format(*v, *s)),
            Literal::Varchar(s) => write!(f, "'{}'", s.replace('\'', "''")),
            Literal::Timestamp(ms) => {
                write!(f, "TIMESTAMP '{}'", crate::types::format_timestamp_ms(*ms))
            }
            Literal::Interval(ms) => {
                write!(f, "INTERVAL '{}'", crate::types::format_interval_ms(*ms))
            }
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, items: &[Expr]| -> fmt::Result {
            for (i, e) in items.iter().enumerate() {
                if i > 0 {
                    write!(f, ", ")?;
                }
                write!(f, "{e}")?;
            }
            Ok(())
        };
        match self {
            Expr::Column { name, .. } => write!(f, "{name}"),
            Expr::Literal(l) => write!(f, "{l}"),
            Expr::Binary {
                op, left, right, ..
            } => write!(f, "({left} {} {right})", op.symbol()),
            Expr::Not(e) => write!(f, "NOT {e}"),
            Expr::Negate(e) => write!(f, "-{e}"),
            Expr::IsNull { expr, negated } => {
                write!(f, "{expr} IS {}NULL", if *negated { "NOT " } else { "" })
            }
            Expr::InList {
                expr,
                list: items,
                negated,
            } => {
                write!(f, "{expr} {}IN (", if *negated { "NOT " } else { "" })?;
                list(f, items)?;
                write!(f, ")")
            }
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => {
                write!(
                    f,
                    "{expr} {}BETWEEN {low} AND {high}",
                    if *negated { "NOT " } else { "" }
                )
            }
            Expr::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
            } => write!(
                f,
                "{expr} {}{} {pattern}",
                if *negated { "NOT " } else { "" },
                if *case_insensitive { "ILIKE" } else { "LIKE" }
            ),
            Expr::Case {
                whens, else_expr, ..
            } => {
                write!(f, "CASE")?;
                for (c, v) in whens {
                    write!(f, " WHEN {c} THEN {v}")?;
                }
                if let Some(e) = else_expr {
                    write!(f, " ELSE {e}")?;
                }
                write!(f, " END")
            }
            Expr::Cast { expr, ty } => write!(f, "CAST({expr} AS {ty})"),
            Expr::Function {
                func: ScalarFunc::Extract(field),
                args,
                ..
            } => {
                write!(f, "EXTRACT({} FROM ", field.name())?;
                list(f, args)?;
                write!(f, ")")
            }
            Expr::Function {
                func: ScalarFunc::DateTrunc(field),
                args,
                ..
            } => {
                write!(f, "DATE_TRUNC('{}', ", field.name().to_ascii_lowercase())?;
                list(f, args)?;
                write!(f, ")")
            }
            Expr::Function { func, args, .. } => {
                write!(f, "{}(", func.name())?;
                list(f, args)?;
                write!(f, ")")
            }
            // marked, so EXPLAIN shows which nodes call WebAssembly
            Expr::Udf { udf, args } => {
                write!(f, "wasm:{}(", udf.signature.name)?;
                list(f, args)?;
                write!(f, ")")
            }
        }
    }
}
