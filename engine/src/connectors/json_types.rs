//! The JSON type rules of declared columns. arrow-json converts loosely: it
//! reads `"2"` into a BIGINT, truncates `3.7` into an INT and reads `1e400`
//! as an infinite DOUBLE. Eddy's rule (docs/sql.md, "JSON input") is strict
//! by default: a number column takes a JSON number that fits it, and a value
//! of another kind makes its line malformed. `'json.lenient' = 'true'` keeps
//! arrow-json's conversions, for data that quotes its numbers.
//!
//! The strict rule is a [`DecoderFactory`] over arrow-json's own tape, so it
//! costs no second pass over the bytes. The tape of JSON text holds numbers
//! as their text (`TapeElement::Number`); the `I32`/`I64` elements come only
//! from serialising Rust values, which Eddy never decodes.

use std::sync::Arc;

use arrow::array::{ArrayRef, PrimitiveBuilder};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, FieldRef, Float64Type, Int32Type, Int64Type, TimeUnit,
};
use arrow::error::ArrowError;
use arrow::json::reader::{ArrayDecoder, DecoderContext, DecoderFactory, Tape, TapeElement};

use crate::catalog::Options;
use crate::error::ConnectorError;
use crate::types::{SqlType, decimal};

/// How strictly JSON values must match their columns' types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JsonTypes {
    /// A number column takes a JSON number that fits it (the default).
    #[default]
    Strict,
    /// arrow-json's conversions: numeric text is read as a number, a
    /// fraction is truncated into an integer column, an overflowing DOUBLE
    /// is infinite (written as `null`).
    Lenient,
}

impl JsonTypes {
    /// Reads `'json.lenient'` (`false` by default).
    ///
    /// # Errors
    /// A value that is not `true` or `false`.
    pub fn from_options(o: &Options) -> Result<Self, ConnectorError> {
        Ok(if o.bool_or("json.lenient", false)? {
            JsonTypes::Lenient
        } else {
            JsonTypes::Strict
        })
    }

    /// The decoder factory that applies the rule (DECIMAL columns are read
    /// exactly under both).
    pub(crate) fn factory(self) -> Option<Arc<dyn DecoderFactory>> {
        Some(Arc::new(StrictFactory {
            strict: self == JsonTypes::Strict,
        }))
    }
}

/// Strict decoders for the number and TIMESTAMP columns (only DECIMAL's
/// when not `strict`); the others (BOOLEAN, VARCHAR) are strict in
/// arrow-json already.
#[derive(Debug)]
struct StrictFactory {
    strict: bool,
}

impl DecoderFactory for StrictFactory {
    fn make_default_decoder(
        &self,
        ctx: &DecoderContext,
        field: &FieldRef,
        is_nullable: bool,
    ) -> Result<Option<Box<dyn ArrayDecoder>>, ArrowError> {
        let column = Column::of(field);
        if let DataType::Decimal128(p, s) = field.data_type() {
            return Ok(Some(Box::new(Decimals {
                column,
                p: *p,
                s: *s as u8,
            })));
        }
        if !self.strict {
            return Ok(None);
        }
        Ok(match field.data_type() {
            DataType::Int64 => Some(Box::new(Integers::<Int64Type>::new(column))),
            DataType::Int32 => Some(Box::new(Integers::<Int32Type>::new(column))),
            DataType::Float64 => Some(Box::new(Doubles(column))),
            DataType::Timestamp(TimeUnit::Millisecond, None) => Some(Box::new(Timestamps {
                column,
                inner: ctx.make_builtin_decoder(field, is_nullable)?,
            })),
            _ => None,
        })
    }
}

/// A column's name and SQL type, for messages.
struct Column {
    name: String,
    sql: String,
}

impl Column {
    fn of(field: &FieldRef) -> Self {
        let sql = SqlType::from_arrow(field.data_type())
            .map_or_else(|| field.data_type().to_string(), |t| t.to_string());
        Self {
            name: field.name().clone(),
            sql,
        }
    }

    /// The error for a value of the wrong kind at `p`.
    fn wrong_kind(&self, tape: &Tape<'_>, p: u32) -> ArrowError {
        let what = match tape.get(p) {
            TapeElement::String(i) => {
                return ArrowError::JsonError(format!(
                    "column '{}' is {} but holds the text \"{}\": write the number without quotes, or set 'json.lenient' = 'true' to read numeric text",
                    self.name,
                    self.sql,
                    short(tape.get_string(i))
                ));
            }
            TapeElement::True | TapeElement::False => "a boolean",
            TapeElement::StartObject(_) => "an object",
            TapeElement::StartList(_) => "an array",
            _ => "a value of another type",
        };
        ArrowError::JsonError(format!(
            "column '{}' is {} but holds {what}",
            self.name, self.sql
        ))
    }

    fn error(&self, text: &str, why: &str) -> ArrowError {
        ArrowError::JsonError(format!(
            "column '{}' is {} but holds {}: {why}",
            self.name,
            self.sql,
            short(text)
        ))
    }
}

/// At most 40 characters of a value, for a message.
fn short(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

/// Whether a JSON number is written as an integer (no fraction, no exponent).
fn is_integer_literal(text: &str) -> bool {
    !text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'))
}

/// INT and BIGINT: a JSON number written as an integer, within the type's range.
struct Integers<T> {
    column: Column,
    _type: std::marker::PhantomData<fn() -> T>,
}

impl<T> Integers<T> {
    fn new(column: Column) -> Self {
        Self {
            column,
            _type: std::marker::PhantomData,
        }
    }
}

impl<T> ArrayDecoder for Integers<T>
where
    T: ArrowPrimitiveType,
    T::Native: TryFrom<i64>,
{
    fn decode(&mut self, tape: &Tape<'_>, pos: &[u32]) -> Result<ArrayRef, ArrowError> {
        let mut out = PrimitiveBuilder::<T>::with_capacity(pos.len());
        for &p in pos {
            match tape.get(p) {
                TapeElement::Null => out.append_null(),
                TapeElement::Number(i) => {
                    let text = tape.get_string(i);
                    let value = text
                        .parse::<i64>()
                        .ok()
                        .and_then(|v| T::Native::try_from(v).ok());
                    match value {
                        Some(v) => out.append_value(v),
                        None if !is_integer_literal(text) => {
                            return Err(self.column.error(
                                text,
                                "not an integer (declare the column DOUBLE, or set 'json.lenient' = 'true' to truncate)",
                            ));
                        }
                        None => {
                            return Err(self.column.error(text, "out of the type's range"));
                        }
                    }
                }
                _ => return Err(self.column.wrong_kind(tape, p)),
            }
        }
        Ok(Arc::new(out.finish()))
    }
}

/// DOUBLE: a JSON number whose value is finite as a 64-bit float.
struct Doubles(Column);

impl ArrayDecoder for Doubles {
    fn decode(&mut self, tape: &Tape<'_>, pos: &[u32]) -> Result<ArrayRef, ArrowError> {
        let mut out = PrimitiveBuilder::<Float64Type>::with_capacity(pos.len());
        for &p in pos {
            match tape.get(p) {
                TapeElement::Null => out.append_null(),
                TapeElement::Number(i) => {
                    let text = tape.get_string(i);
                    match text.parse::<f64>() {
                        Ok(v) if v.is_finite() => out.append_value(v),
                        _ => {
                            return Err(self
                                .0
                                .error(text, "out of the DOUBLE range (about ±1.8e308)"));
                        }
                    }
                }
                _ => return Err(self.0.wrong_kind(tape, p)),
            }
        }
        Ok(Arc::new(out.finish()))
    }
}

/// DECIMAL(p, s): a JSON number or numeric text, read exactly (never as a
/// float), digits past the scale rounded half away from zero; a value with
/// more integer digits than the type holds is malformed.
struct Decimals {
    column: Column,
    p: u8,
    s: u8,
}

impl ArrayDecoder for Decimals {
    fn decode(&mut self, tape: &Tape<'_>, pos: &[u32]) -> Result<ArrayRef, ArrowError> {
        let mut out = Vec::with_capacity(pos.len());
        for &p in pos {
            let text = match tape.get(p) {
                TapeElement::Null => {
                    out.push(None);
                    continue;
                }
                TapeElement::Number(i) | TapeElement::String(i) => tape.get_string(i),
                _ => return Err(self.column.wrong_kind(tape, p)),
            };
            match decimal::parse(text, self.p, self.s) {
                Ok(v) => out.push(Some(v)),
                Err(decimal::DecimalTextError::NotANumber(_)) => {
                    return Err(self.column.error(text, "not a number"));
                }
                Err(decimal::DecimalTextError::Overflow { .. }) => {
                    return Err(self.column.error(
                        text,
                        "too many digits before the point (declare a larger precision)",
                    ));
                }
            }
        }
        let a = out
            .into_iter()
            .collect::<arrow::array::Decimal128Array>()
            .with_precision_and_scale(self.p, self.s as i8)?;
        Ok(Arc::new(a))
    }
}

/// TIMESTAMP: epoch milliseconds written as an integer, or text (RFC 3339),
/// which arrow-json's own decoder then converts.
struct Timestamps {
    column: Column,
    inner: Box<dyn ArrayDecoder>,
}

impl ArrayDecoder for Timestamps {
    fn decode(&mut self, tape: &Tape<'_>, pos: &[u32]) -> Result<ArrayRef, ArrowError> {
        for &p in pos {
            match tape.get(p) {
                TapeElement::Null | TapeElement::String(_) => {}
                TapeElement::Number(i) => {
                    let text = tape.get_string(i);
                    if text.parse::<i64>().is_err() {
                        let why = if is_integer_literal(text) {
                            "out of range"
                        } else {
                            "epoch milliseconds must be a whole number"
                        };
                        return Err(self.column.error(text, why));
                    }
                }
                _ => return Err(self.column.wrong_kind(tape, p)),
            }
        }
        self.inner.decode(tape, pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::json::{JsonDecoder, OnError};
    use arrow::array::AsArray;
    use arrow::datatypes::{Field, Schema, SchemaRef};

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("b", DataType::Int64, true),
            Field::new("i", DataType::Int32, true),
            Field::new("d", DataType::Float64, true),
            Field::new("t", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        ]))
    }

    fn reason(types: JsonTypes, line: &str) -> Option<String> {
        let mut d = JsonDecoder::new(schema(), "in.jsonl", OnError::Fail)
            .unwrap()
            .with_types(types)
            .unwrap();
        d.decode(format!("{line}\n").as_bytes(), 1)
            .err()
            .map(|e| e.to_string())
    }

    /// DECIMAL columns read numbers and numeric text exactly, under both
    /// rules; too many integer digits make the line malformed.
    #[test]
    fn decimals_are_read_exactly_from_numbers_and_text() {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "x",
            DataType::Decimal128(20, 2),
            true,
        )]));
        for types in [JsonTypes::Strict, JsonTypes::Lenient] {
            let mut d = JsonDecoder::new(schema.clone(), "in.jsonl", OnError::Fail)
                .unwrap()
                .with_types(types)
                .unwrap();
            let lines = "{\"x\": 0.1}\n{\"x\": \"123456789012345678.005\"}\n{\"x\": null}\n{\"x\": -1e-2}\n";
            let got = d.decode(lines.as_bytes(), 1).unwrap().batch;
            let x = got
                .column(0)
                .as_primitive::<arrow::datatypes::Decimal128Type>();
            // 123456789012345678.005 is past a double's 17 digits, and rounds half up
            assert_eq!(
                x.iter().collect::<Vec<_>>(),
                vec![Some(10), Some(12_345_678_901_234_567_801), None, Some(-1)]
            );
            let bad = d
                .decode(b"{\"x\": 1234567890123456789}\n", 1)
                .unwrap_err()
                .to_string();
            assert!(bad.contains("too many digits before the point"), "{bad}");
            let bad = d.decode(b"{\"x\": \"12,5\"}\n", 1).unwrap_err().to_string();
            assert!(bad.contains("not a number"), "{bad}");
        }
    }

    #[test]
    fn strict_takes_numbers_that_fit_and_nothing_else() {
        for good in [
            r#"{"b": -9223372036854775808, "i": 2147483647, "d": 1.5e300, "t": 1767225610000}"#,
            r#"{"b": null, "i": -0, "d": 3, "t": "2026-01-01T00:00:10Z"}"#,
        ] {
            assert_eq!(reason(JsonTypes::Strict, good), None, "{good}");
        }
        for (bad, says) in [
            (
                r#"{"b": "2"}"#,
                "column 'b' is BIGINT but holds the text \"2\"",
            ),
            (
                r#"{"i": 3.7}"#,
                "column 'i' is INT but holds 3.7: not an integer",
            ),
            (r#"{"b": 1e3}"#, "holds 1e3: not an integer"),
            (r#"{"i": 2147483648}"#, "out of the type's range"),
            (r#"{"b": 9223372036854775808}"#, "out of the type's range"),
            (
                r#"{"d": 1e400}"#,
                "column 'd' is DOUBLE but holds 1e400: out of the DOUBLE range",
            ),
            (r#"{"d": "1.5"}"#, "holds the text \"1.5\""),
            (r#"{"d": true}"#, "holds a boolean"),
            (r#"{"b": [1]}"#, "holds an array"),
            (r#"{"t": 1767225610000.5}"#, "must be a whole number"),
            (r#"{"t": {"ms": 1}}"#, "holds an object"),
        ] {
            let e = reason(JsonTypes::Strict, bad).unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(e.contains(says) && e.contains("line 1"), "{bad}: {e}");
        }
    }

    #[test]
    fn lenient_keeps_arrow_json_conversions() {
        let mut d = JsonDecoder::new(schema(), "in.jsonl", OnError::Fail)
            .unwrap()
            .with_types(JsonTypes::Lenient)
            .unwrap();
        let out = d
            .decode(b"{\"b\": \"2\", \"i\": 3.7, \"d\": 1e400}\n", 1)
            .unwrap();
        let b = &out.batch;
        assert_eq!(b.column(0).as_primitive::<Int64Type>().value(0), 2);
        assert_eq!(b.column(1).as_primitive::<Int32Type>().value(0), 3);
        assert!(
            b.column(2)
                .as_primitive::<Float64Type>()
                .value(0)
                .is_infinite()
        );
    }
}
