//! `format = 'avro'`: Kafka message values and object container files in
//! Apache Avro, decoded by arrow-avro straight into Arrow columns.
//!
//! The writer schema comes from `'avro.schema'` (inline JSON),
//! `'avro.schema.file'` or a Confluent schema registry
//! (`'avro.schema-registry.url'`; messages then carry the Confluent wire
//! format: magic byte 0, a 4-byte big-endian schema id, the Avro body).
//! Declared columns map to the record's fields by name, with the rules of
//! [`check_columns`] (docs/formats.md); the reader schema is the writer's
//! record cut to the columns the query reads, so arrow-avro skips the rest
//! (projection pushdown) and resolves older writer schemas against it
//! (schema evolution).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde_json::{Value, json};

use crate::catalog::Options;
use crate::error::ConnectorError;
use crate::types::SqlType;

pub(crate) mod decode;
pub(crate) mod encode;
pub(crate) mod file;
pub(crate) mod ocf;
pub(crate) mod registry;

/// The options of `format = 'avro'`.
pub const KEYS: &[&str] = &[
    "avro.schema",
    "avro.schema.file",
    "avro.schema-registry.url",
    "avro.schema-registry.subject",
    "avro.schema-registry.basic-auth.user-info",
];

/// Where a stream's Avro schema comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaSource {
    /// Given in the DDL (inline or from a file): messages are bare Avro
    /// bodies written with it.
    Given(String),
    /// A Confluent schema registry: messages carry the wire format's
    /// schema id; the stream reads as the subject's latest version.
    Registry {
        /// Where, e.g. `http://localhost:8081`, and its credentials.
        registry: registry::Address,
        /// The subject (default: `<topic>-value`).
        subject: String,
    },
    /// Nothing given: an object container file carries its own schema; a
    /// sink writes the schema of its columns.
    None,
}

impl SchemaSource {
    /// Reads the `avro.*` options (`topic` names the default subject).
    ///
    /// # Errors
    /// Two sources at once, an unreadable schema file, a bad URL.
    pub fn from_options(o: &Options, topic: Option<&str>) -> Result<Self, ConnectorError> {
        let inline = o.get("avro.schema");
        let file = o.get("avro.schema.file");
        let registry = registry::Address::from_options(o, "avro")?;
        let url = registry.as_ref().map(|r| r.url.as_str());
        if [inline, file, url].iter().filter(|v| v.is_some()).count() > 1 {
            return Err(o.error(
                "give the Avro schema one way: 'avro.schema', 'avro.schema.file' or 'avro.schema-registry.url'",
            ));
        }
        if let Some(text) = inline {
            return Ok(SchemaSource::Given(text.to_string()));
        }
        if let Some(path) = file {
            return std::fs::read_to_string(path)
                .map(SchemaSource::Given)
                .map_err(|e| o.error(format!("cannot read 'avro.schema.file' = '{path}': {e}")));
        }
        if let Some(registry) = registry {
            let subject = match (o.get("avro.schema-registry.subject"), topic) {
                (Some(s), _) => s.to_string(),
                (None, Some(t)) if !t.contains(',') => format!("{t}-value"),
                _ => {
                    return Err(o.error(
                        "name the registry subject with 'avro.schema-registry.subject' (the default, '<topic>-value', needs one topic)",
                    ));
                }
            };
            return Ok(SchemaSource::Registry { registry, subject });
        }
        if o.get("avro.schema-registry.subject").is_some() {
            return Err(o.error("'avro.schema-registry.subject' needs 'avro.schema-registry.url'"));
        }
        Ok(SchemaSource::None)
    }
}

/// An Avro type as Eddy reads it (a union with `null` is its other branch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AvroType {
    Boolean,
    Int,
    Long,
    Float,
    Double,
    String,
    Enum,
    /// `timestamp-millis` / `-micros` (and their `local-` forms).
    Timestamp,
    /// `decimal` on `bytes` or `fixed`.
    Decimal(u8, u8),
    /// Anything else, described (`record`, `array`, a union of two types).
    Other(String),
}

impl AvroType {
    fn describe(&self) -> String {
        match self {
            AvroType::Boolean => "boolean".into(),
            AvroType::Int => "int".into(),
            AvroType::Long => "long".into(),
            AvroType::Float => "float".into(),
            AvroType::Double => "double".into(),
            AvroType::String => "string".into(),
            AvroType::Enum => "enum".into(),
            AvroType::Timestamp => "a timestamp".into(),
            AvroType::Decimal(p, s) => format!("decimal({p}, {s})"),
            AvroType::Other(d) => d.clone(),
        }
    }

    /// Whether a column of type `sql` reads this type.
    fn reads_as(&self, sql: SqlType) -> bool {
        use AvroType as A;
        match sql {
            SqlType::Boolean => *self == A::Boolean,
            SqlType::Int => *self == A::Int,
            SqlType::BigInt => matches!(self, A::Int | A::Long),
            SqlType::Double => matches!(self, A::Int | A::Long | A::Float | A::Double),
            SqlType::Varchar => matches!(self, A::String | A::Enum),
            SqlType::Timestamp => *self == A::Timestamp,
            SqlType::Decimal(..) => matches!(self, A::Decimal(..)),
            _ => false,
        }
    }
}

/// The named types (`enum`, `fixed`, `record`) a schema defines, by name
/// and full name.
fn named_types(v: &Value, out: &mut HashMap<String, Value>) {
    match v {
        Value::Object(o) => {
            if let (Some(Value::String(t)), Some(Value::String(name))) =
                (o.get("type"), o.get("name"))
                && matches!(t.as_str(), "enum" | "fixed" | "record" | "error")
            {
                out.insert(name.clone(), v.clone());
                if let Some(Value::String(ns)) = o.get("namespace") {
                    out.insert(format!("{ns}.{name}"), v.clone());
                }
            }
            for (_, child) in o {
                named_types(child, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| named_types(i, out)),
        _ => {}
    }
}

/// The type of a field's schema, and whether it may be null.
fn avro_type(v: &Value, named: &HashMap<String, Value>) -> (AvroType, bool) {
    match v {
        Value::String(s) => match s.as_str() {
            "null" => (AvroType::Other("null".into()), true),
            "boolean" => (AvroType::Boolean, false),
            "int" => (AvroType::Int, false),
            "long" => (AvroType::Long, false),
            "float" => (AvroType::Float, false),
            "double" => (AvroType::Double, false),
            "string" => (AvroType::String, false),
            "bytes" => (AvroType::Other("bytes".into()), false),
            other => match named.get(other) {
                Some(def) => avro_type(def, named),
                None => (
                    AvroType::Other(format!("the undefined type '{other}'")),
                    false,
                ),
            },
        },
        Value::Array(branches) => {
            let non_null: Vec<&Value> = branches.iter().filter(|b| *b != "null").collect();
            match non_null.as_slice() {
                [one] if branches.len() == 2 => (avro_type(one, named).0, true),
                _ => (
                    AvroType::Other(format!("the union {}", Value::Array(branches.clone()))),
                    false,
                ),
            }
        }
        Value::Object(o) => {
            let base = o.get("type").and_then(Value::as_str).unwrap_or("");
            match (base, o.get("logicalType").and_then(Value::as_str)) {
                (
                    "long",
                    Some(
                        "timestamp-millis"
                        | "timestamp-micros"
                        | "local-timestamp-millis"
                        | "local-timestamp-micros",
                    ),
                ) => (AvroType::Timestamp, false),
                ("bytes" | "fixed", Some("decimal")) => {
                    let num = |k| o.get(k).and_then(Value::as_u64).unwrap_or(0);
                    let (p, s) = (num("precision"), num("scale"));
                    if (1..=38).contains(&p) && s <= p {
                        (AvroType::Decimal(p as u8, s as u8), false)
                    } else {
                        (
                            AvroType::Other(format!("decimal({p}, {s}), past 38 digits")),
                            false,
                        )
                    }
                }
                ("enum", _) => (AvroType::Enum, false),
                ("array" | "map" | "record" | "error" | "fixed", _) => {
                    (AvroType::Other(format!("a nested {base}")), false)
                }
                (b, _) => avro_type(&Value::String(b.to_string()), named),
            }
        }
        _ => (AvroType::Other(v.to_string()), false),
    }
}

/// A parsed writer schema: its JSON and its top-level record's fields.
#[derive(Debug, Clone)]
pub(crate) struct RecordSchema {
    pub(crate) json: Value,
    /// Per field: name and Avro type.
    pub(crate) fields: Vec<(String, AvroType)>,
}

impl RecordSchema {
    /// Parses schema text.
    ///
    /// # Errors
    /// Text that is not JSON, or a schema whose top level is not a record.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let json: Value =
            serde_json::from_str(text).map_err(|e| format!("the Avro schema is not JSON: {e}"))?;
        if json.get("type").and_then(Value::as_str) != Some("record") {
            return Err(
                "the Avro schema's top level must be a record (one field per column)".into(),
            );
        }
        let mut named = HashMap::new();
        named_types(&json, &mut named);
        let fields = json
            .get("fields")
            .and_then(Value::as_array)
            .ok_or("the Avro record has no 'fields' list")?
            .iter()
            .map(|f| {
                let name = f
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let ty = f
                    .get("type")
                    .map_or(AvroType::Other("no type".into()), |t| {
                        avro_type(t, &named).0
                    });
                (name, ty)
            })
            .collect();
        Ok(Self { json, fields })
    }

    /// The field a column reads: the same name, else the same name in
    /// another case.
    fn field_of(&self, column: &str) -> Option<usize> {
        self.fields
            .iter()
            .position(|(n, _)| n == column)
            .or_else(|| {
                self.fields
                    .iter()
                    .position(|(n, _)| n.eq_ignore_ascii_case(column))
            })
    }

    /// The reader schema for `columns` (declared names): the record with
    /// only their fields, in the columns' order.
    pub(crate) fn reader_for(&self, columns: &[String]) -> Value {
        let all = self.json.get("fields").and_then(Value::as_array);
        let kept: Vec<Value> = columns
            .iter()
            .filter_map(|c| self.field_of(c))
            .filter_map(|i| all.and_then(|a| a.get(i)).cloned())
            .collect();
        let mut reader = self.json.clone();
        reader["fields"] = Value::Array(kept);
        reader
    }
}

/// Checks every column of `schema` (the declared columns) against the
/// record: each must name a field of a type it reads.
///
/// | column | Avro field |
/// | --- | --- |
/// | BOOLEAN | boolean |
/// | INT | int |
/// | BIGINT | int, long |
/// | DOUBLE | int, long, float, double |
/// | VARCHAR | string, enum |
/// | TIMESTAMP | long with `timestamp-millis`/`-micros` (or `local-`) |
/// | DECIMAL(p, s) | bytes or fixed with `decimal` |
///
/// A union with `null` reads as its other type; other unions, records,
/// arrays and maps are refused (flatten them upstream).
///
/// # Errors
/// The first column that has no field or a field of another type, named.
pub(crate) fn check_columns(schema: &Schema, record: &RecordSchema) -> Result<(), String> {
    for f in schema.fields() {
        let Some(sql) = SqlType::from_arrow(f.data_type()) else {
            continue;
        };
        let Some(i) = record.field_of(f.name()) else {
            let names: Vec<&str> = record.fields.iter().map(|(n, _)| n.as_str()).collect();
            return Err(format!(
                "column '{}' is not a field of the Avro record (its fields: {})",
                f.name(),
                names.join(", ")
            ));
        };
        let (name, ty) = &record.fields[i];
        if !ty.reads_as(sql) {
            return Err(format!(
                "column '{}' is {sql} but the Avro field '{name}' is {}; declare the column as {}",
                f.name(),
                ty.describe(),
                suggestion(ty)
            ));
        }
    }
    Ok(())
}

fn suggestion(ty: &AvroType) -> String {
    match ty {
        AvroType::Boolean => "BOOLEAN".into(),
        AvroType::Int => "INT or BIGINT".into(),
        AvroType::Long => "BIGINT".into(),
        AvroType::Float | AvroType::Double => "DOUBLE".into(),
        AvroType::String | AvroType::Enum => "VARCHAR".into(),
        AvroType::Timestamp => "TIMESTAMP".into(),
        AvroType::Decimal(p, s) => format!("DECIMAL({p}, {s})"),
        AvroType::Other(_) => "one of Eddy's types after flattening the field upstream".into(),
    }
}

/// The Avro schema Eddy writes for columns `schema`: a record `name`
/// whose fields are nullable unions (`["null", T]`, default null).
pub(crate) fn schema_of_columns(name: &str, schema: &Schema) -> Value {
    let fields: Vec<Value> = schema
        .fields()
        .iter()
        .map(|f| {
            let ty = match SqlType::from_arrow(f.data_type()) {
                Some(SqlType::Boolean) => json!("boolean"),
                Some(SqlType::Int) => json!("int"),
                Some(SqlType::BigInt | SqlType::Interval) => json!("long"),
                Some(SqlType::Double) => json!("double"),
                Some(SqlType::Timestamp) => {
                    json!({"type": "long", "logicalType": "timestamp-millis"})
                }
                Some(SqlType::Decimal(p, s)) => {
                    json!({"type": "bytes", "logicalType": "decimal", "precision": p, "scale": s})
                }
                _ => json!("string"),
            };
            json!({"name": f.name(), "type": ["null", ty], "default": null})
        })
        .collect();
    json!({"type": "record", "name": avro_name(name), "fields": fields})
}

/// A valid Avro name from a stream name (letters, digits, `_`).
fn avro_name(name: &str) -> String {
    let mut n: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if !n.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        n.insert(0, '_');
    }
    n
}

/// Converts decoded columns to the declared types; `bad[r]` is set for a
/// row whose DECIMAL does not fit its column (then malformed).
///
/// # Errors
/// A conversion Arrow cannot make (a bug: [`check_columns`] allowed it).
pub(crate) fn to_declared(
    columns: &[ArrayRef],
    declared: &SchemaRef,
    bad: &mut [bool],
) -> Result<Vec<ArrayRef>, String> {
    columns
        .iter()
        .zip(declared.fields())
        .map(|(c, f)| convert(c, f, bad))
        .collect()
}

fn convert(c: &ArrayRef, f: &Field, bad: &mut [bool]) -> Result<ArrayRef, String> {
    let to = f.data_type();
    if c.data_type() == to {
        return Ok(c.clone());
    }
    if let (DataType::Decimal128(..), DataType::Decimal128(p, s)) = (c.data_type(), to) {
        let d = crate::types::decimal::decimals(c).map_err(|e| e.to_string())?;
        let from = d.scale() as u8;
        let values: Vec<Option<i128>> = d
            .iter()
            .enumerate()
            .map(|(r, v)| {
                let v = v?;
                let out = crate::types::decimal::rescale(v, from, *s as u8)
                    .filter(|x| crate::types::decimal::fits(*x, *p));
                if out.is_none() {
                    bad[r] = true;
                }
                out
            })
            .collect();
        let a = values
            .into_iter()
            .collect::<arrow::array::Decimal128Array>()
            .with_precision_and_scale(*p, *s)
            .map_err(|e| e.to_string())?;
        return Ok(Arc::new(a));
    }
    let via = match (c.data_type(), to) {
        // timestamps lose their zone (Eddy's are UTC) and any microseconds
        (DataType::Timestamp(..), DataType::Timestamp(TimeUnit::Millisecond, None)) => {
            DataType::Timestamp(TimeUnit::Millisecond, None)
        }
        _ => to.clone(),
    };
    let out = arrow::compute::cast(c, &via).map_err(|e| e.to_string())?;
    if out.data_type() != to {
        return Err(format!("cannot read {} as {to}", c.data_type()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
