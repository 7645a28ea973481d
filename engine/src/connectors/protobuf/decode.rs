//! Protobuf message values → Arrow rows of the declared columns a query
//! reads. Each message is read field by field; the fields of columns read
//! are kept (the last occurrence wins, as the format says), the others
//! skipped. A message's cells are all converted before any is appended, so
//! a bad message leaves no half row: it is malformed, the rest go on.
//!
//! An absent field is NULL when it has presence (`optional`, proto2, a
//! Timestamp or wrapper) and its type's default otherwise (proto3: 0, "",
//! false, the enum's 0 value), as any proto3 reader sees it.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Decimal128Builder, Float64Builder, Int32Builder, Int64Builder,
    StringBuilder, TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use std::collections::HashMap;

use super::descriptor::{FieldDef, Kind};
use super::wire::{Raw, Reader, unzigzag};
use super::{ProtoFormat, ProtoSchema, proto_text};
use crate::connectors::avro::registry::{Registry, RegistryError};
use crate::error::ConnectorError;
use crate::types::{MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS, decimal};

/// A converted value.
#[derive(Debug, Clone, Copy)]
enum Cell<'a> {
    Null,
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(&'a str),
    Decimal(i128),
    /// An enum's number, with the enum's values (written as the name).
    Enum(i64, &'a [(i32, String)]),
}

enum Builder {
    I64(Int64Builder),
    I32(Int32Builder),
    F64(Float64Builder),
    Bool(BooleanBuilder),
    Str(StringBuilder),
    Ts(TimestampMillisecondBuilder),
    Dec(Decimal128Builder, DataType),
}

impl Builder {
    /// A builder for `rows` values of type `t`.
    fn of(t: &DataType, rows: usize) -> Self {
        match t {
            DataType::Int32 => Builder::I32(Int32Builder::with_capacity(rows)),
            DataType::Float64 => Builder::F64(Float64Builder::with_capacity(rows)),
            DataType::Boolean => Builder::Bool(BooleanBuilder::with_capacity(rows)),
            DataType::Utf8 => Builder::Str(StringBuilder::with_capacity(rows, rows * 8)),
            DataType::Timestamp(TimeUnit::Millisecond, _) => {
                Builder::Ts(TimestampMillisecondBuilder::with_capacity(rows))
            }
            DataType::Decimal128(..) => {
                Builder::Dec(Decimal128Builder::with_capacity(rows), t.clone())
            }
            _ => Builder::I64(Int64Builder::with_capacity(rows)),
        }
    }

    fn append(&mut self, c: Cell<'_>) {
        match (self, c) {
            (Builder::I64(b), Cell::Int(v)) => b.append_value(v),
            (Builder::I32(b), Cell::Int(v)) => b.append_value(v as i32),
            (Builder::F64(b), Cell::Float(v)) => b.append_value(v),
            (Builder::Bool(b), Cell::Bool(v)) => b.append_value(v),
            (Builder::Str(b), Cell::Text(v)) => b.append_value(v),
            (Builder::Str(b), Cell::Enum(n, values)) => {
                match values.iter().find(|(v, _)| i64::from(*v) == n) {
                    Some((_, name)) => b.append_value(name),
                    None => b.append_value(n.to_string()),
                }
            }
            (Builder::Ts(b), Cell::Int(v)) => b.append_value(v),
            (Builder::Dec(b, _), Cell::Decimal(v)) => b.append_value(v),
            (Builder::I64(b), _) => b.append_null(),
            (Builder::I32(b), _) => b.append_null(),
            (Builder::F64(b), _) => b.append_null(),
            (Builder::Bool(b), _) => b.append_null(),
            (Builder::Str(b), _) => b.append_null(),
            (Builder::Ts(b), _) => b.append_null(),
            (Builder::Dec(b, _), _) => b.append_null(),
        }
    }

    fn finish(&mut self) -> Result<ArrayRef, arrow::error::ArrowError> {
        Ok(match self {
            Builder::I64(b) => Arc::new(b.finish()),
            Builder::I32(b) => Arc::new(b.finish()),
            Builder::F64(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Str(b) => Arc::new(b.finish()),
            Builder::Ts(b) => Arc::new(b.finish()),
            Builder::Dec(b, t) => Arc::new(b.finish().with_data_type(t.clone())),
        })
    }
}

/// One decoded column: its field and type.
struct Column {
    field: FieldDef,
    to: DataType,
}

/// Decodes Protobuf message values of one stream.
pub struct ProtoDecoder {
    values: SchemaRef,
    columns: Vec<Column>,
    /// Column of each field number (small numbers; others looked up).
    by_number: Vec<Option<usize>>,
    /// With the Confluent prefix: the message indexes values must carry,
    /// per schema id when a registry gives the writers' schemas.
    confluent: Option<Confluent>,
}

struct Confluent {
    /// The stream's message's indexes (no registry).
    path: Vec<i64>,
    /// The registry, the message's name, and per schema id seen: the
    /// message's indexes in that schema, or why its values are malformed.
    registry: Option<(Registry, String, Verdicts)>,
}

/// Per schema id: the message's indexes in that schema, or why values of
/// the id are malformed.
type Verdicts = HashMap<u32, Result<Vec<i64>, String>>;

/// What a batch decoded to (as [`crate::connectors::avro::decode::Decoded`]).
pub struct Decoded {
    pub batch: RecordBatch,
    pub rows: Vec<usize>,
    pub malformed: Vec<(usize, String)>,
}

impl ProtoDecoder {
    /// A decoder of `values` (the declared columns the query reads).
    ///
    /// # Errors
    /// A column the message does not have (checked before, so a bug).
    pub fn new(
        values: SchemaRef,
        all_declared: &SchemaRef,
        format: &ProtoFormat,
    ) -> Result<Self, String> {
        let message = format.source_message()?;
        let registry = match &format.schema {
            ProtoSchema::Registry { registry, .. } => {
                // the columns are checked against the registry's schema now
                super::check_columns(all_declared, &message)?;
                Some((
                    Registry::shared(registry),
                    message.name.clone(),
                    HashMap::new(),
                ))
            }
            ProtoSchema::Given(_) => None,
        };
        let mut columns = Vec::new();
        let mut by_number = Vec::new();
        for (c, f) in values.fields().iter().enumerate() {
            let i = message
                .field_of(f.name())
                .ok_or_else(|| format!("column '{}' has no field", f.name()))?;
            let field = message.fields[i].clone();
            let n = field.number as usize;
            if n < 1 << 16 {
                if by_number.len() <= n {
                    by_number.resize(n + 1, None);
                }
                by_number[n] = Some(c);
            }
            columns.push(Column {
                field,
                to: f.data_type().clone(),
            });
        }
        Ok(Self {
            values,
            columns,
            by_number,
            confluent: format.confluent.then(|| Confluent {
                path: message.index_path.clone(),
                registry,
            }),
        })
    }

    /// Decodes `values[i]` for each message (`None`: a tombstone).
    ///
    /// # Errors
    /// An Arrow failure; bad messages are in [`Decoded::malformed`].
    pub fn decode(&mut self, values: &[Option<&[u8]>]) -> Result<Decoded, ConnectorError> {
        self.learn_ids(values)?;
        let mut builders: Vec<Builder> = self
            .columns
            .iter()
            .map(|c| Builder::of(&c.to, values.len()))
            .collect();
        let mut rows = Vec::with_capacity(values.len());
        let mut malformed = Vec::new();
        let mut slots: Vec<Option<Raw<'_>>> = vec![None; self.columns.len()];
        let mut cells: Vec<Cell<'_>> = Vec::with_capacity(self.columns.len());
        for (i, v) in values.iter().enumerate() {
            let result = match v {
                None => Err("the message has no value (a tombstone)".to_string()),
                Some(v) => self.cells(v, &mut slots, &mut cells),
            };
            match result {
                Ok(()) => {
                    for (b, c) in builders.iter_mut().zip(cells.iter()) {
                        b.append(*c);
                    }
                    rows.push(i);
                }
                Err(why) => malformed.push((i, why)),
            }
        }
        let columns = builders
            .iter_mut()
            .map(Builder::finish)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ConnectorError::Arrow {
                context: "Protobuf rows".into(),
                source: e,
            })?;
        let options = RecordBatchOptions::new().with_row_count(Some(rows.len()));
        let batch = RecordBatch::try_new_with_options(self.values.clone(), columns, &options)
            .map_err(|e| ConnectorError::Arrow {
                context: "Protobuf rows".into(),
                source: e,
            })?;
        Ok(Decoded {
            batch,
            rows,
            malformed,
        })
    }

    /// Reads one message into `cells` (one per column).
    fn cells<'a>(
        &'a self,
        v: &'a [u8],
        slots: &mut [Option<Raw<'a>>],
        cells: &mut Vec<Cell<'a>>,
    ) -> Result<(), String> {
        slots.iter_mut().for_each(|s| *s = None);
        cells.clear();
        let body = match &self.confluent {
            Some(c) => c.body(v)?,
            None => v,
        };
        let mut r = Reader::new(body);
        while !r.at_end() {
            let (number, raw) = r
                .field()
                .map_err(|e| format!("not a valid message: {e} (at byte {})", r.position()))?;
            if let Some(Some(c)) = self.by_number.get(number as usize) {
                slots[*c] = Some(raw);
            }
        }
        for (col, slot) in self.columns.iter().zip(slots.iter()) {
            let cell = match slot {
                None if col.field.presence => Cell::Null,
                None => default(&col.field.kind),
                Some(raw) => read(&col.field.kind, *raw)
                    .map_err(|why| format!("field '{}': {why}", col.field.name))?,
            };
            cells.push(
                to_column(cell, &col.to)
                    .map_err(|why| format!("field '{}': {why}", col.field.name))?,
            );
        }
        Ok(())
    }
}

impl ProtoDecoder {
    /// Fetches the schemas of ids not seen yet (a registry only).
    fn learn_ids(&mut self, values: &[Option<&[u8]>]) -> Result<(), ConnectorError> {
        let Some(Confluent {
            registry: Some((registry, name, ids)),
            ..
        }) = &mut self.confluent
        else {
            return Ok(());
        };
        for v in values.iter().flatten() {
            let [0, a, b, c, d, ..] = v else {
                continue;
            };
            let id = u32::from_be_bytes([*a, *b, *c, *d]);
            if ids.contains_key(&id) {
                continue;
            }
            let verdict = match registry.schema_by_id(id) {
                Ok(text) => proto_text::message_from_text(&text, Some(name))
                    .map(|m| m.index_path)
                    .map_err(|e| format!("schema id {id}: {e}")),
                Err(RegistryError::NotFound(why)) => Err(why),
                Err(e) => {
                    return Err(ConnectorError::Config {
                        stream: name.clone(),
                        message: format!("{e} (fetching schema id {id})"),
                    });
                }
            };
            ids.insert(id, verdict);
        }
        Ok(())
    }
}

impl Confluent {
    /// The message body after the prefix, whose message indexes must name
    /// the stream's message in the schema of its id.
    fn body<'a>(&self, v: &'a [u8]) -> Result<&'a [u8], String> {
        let path = match (&self.registry, v) {
            (Some((_, _, ids)), [0, a, b, c, d, ..]) => {
                let id = u32::from_be_bytes([*a, *b, *c, *d]);
                match ids.get(&id) {
                    Some(Ok(path)) => path.as_slice(),
                    Some(Err(why)) => return Err(why.clone()),
                    None => return Err(format!("schema id {id} was not fetched")),
                }
            }
            _ => self.path.as_slice(),
        };
        confluent_body(v, path)
    }
}

/// The message body after the Confluent prefix, whose message indexes must
/// name `path` (`[0]` may be written as one 0 byte).
fn confluent_body<'a>(v: &'a [u8], path: &[i64]) -> Result<&'a [u8], String> {
    let [0, _, _, _, _, rest @ ..] = v else {
        return Err(
            "the value is not in the Confluent wire format (a 0 byte, a 4-byte schema id, the message indexes)"
                .into(),
        );
    };
    let mut r = Reader::new(rest);
    let n = unzigzag(r.varint()?);
    let indexes: Vec<i64> = if n == 0 {
        vec![0]
    } else {
        (0..n)
            .map(|_| r.varint().map(unzigzag))
            .collect::<Result<_, _>>()?
    };
    if indexes != path {
        return Err(format!(
            "the value's message indexes {indexes:?} name another message type than the stream's ({path:?})"
        ));
    }
    Ok(&rest[r.position()..])
}

fn default(kind: &Kind) -> Cell<'_> {
    match kind {
        Kind::Double | Kind::Float => Cell::Float(0.0),
        Kind::Bool => Cell::Bool(false),
        Kind::String => Cell::Text(""),
        Kind::Enum(values) => Cell::Enum(0, values),
        Kind::Int | Kind::UInt64 | Kind::SInt | Kind::Fixed32 { .. } | Kind::Fixed64 { .. } => {
            Cell::Int(0)
        }
        _ => Cell::Null,
    }
}

/// A field's value from the wire.
fn read<'a>(kind: &'a Kind, raw: Raw<'a>) -> Result<Cell<'a>, String> {
    let wrong = || format!("{} cannot be written as {raw:?}", kind.describe());
    Ok(match (kind, raw) {
        (Kind::Int, Raw::Varint(v)) => Cell::Int(v as i64),
        (Kind::UInt64, Raw::Varint(v)) => {
            Cell::Int(i64::try_from(v).map_err(|_| format!("uint64 {v} is past BIGINT"))?)
        }
        (Kind::SInt, Raw::Varint(v)) => Cell::Int(unzigzag(v)),
        (Kind::Bool, Raw::Varint(v)) => Cell::Bool(v != 0),
        (Kind::Enum(values), Raw::Varint(v)) => Cell::Enum(i64::from(v as i32), values),
        (Kind::Fixed32 { signed: true }, Raw::I32(v)) => Cell::Int(i64::from(v as i32)),
        (Kind::Fixed32 { signed: false }, Raw::I32(v)) => Cell::Int(i64::from(v)),
        (Kind::Fixed64 { signed: true }, Raw::I64(v)) => Cell::Int(v as i64),
        (Kind::Fixed64 { signed: false }, Raw::I64(v)) => {
            Cell::Int(i64::try_from(v).map_err(|_| format!("fixed64 {v} is past BIGINT"))?)
        }
        (Kind::Double, Raw::I64(v)) => Cell::Float(f64::from_bits(v)),
        (Kind::Float, Raw::I32(v)) => Cell::Float(f64::from(f32::from_bits(v))),
        (Kind::String, Raw::Len(b)) => Cell::Text(
            std::str::from_utf8(b).map_err(|_| "a string that is not UTF-8".to_string())?,
        ),
        (Kind::Timestamp, Raw::Len(b)) => timestamp(b)?,
        (Kind::Wrapper(inner), Raw::Len(b)) => {
            let mut value = default(inner);
            let mut r = Reader::new(b);
            while !r.at_end() {
                if let (1, v) = r.field()? {
                    value = read(inner, v)?;
                }
            }
            value
        }
        _ => return Err(wrong()),
    })
}

/// A `google.protobuf.Timestamp` (seconds, nanos) as epoch milliseconds.
fn timestamp(b: &[u8]) -> Result<Cell<'static>, String> {
    let (mut seconds, mut nanos) = (0i64, 0i64);
    let mut r = Reader::new(b);
    while !r.at_end() {
        match r.field()? {
            (1, Raw::Varint(v)) => seconds = v as i64,
            (2, Raw::Varint(v)) => nanos = i64::from(v as i32),
            _ => {}
        }
    }
    let ms = seconds
        .checked_mul(1000)
        .and_then(|s| s.checked_add(nanos.div_euclid(1_000_000)))
        .filter(|ms| (MIN_TIMESTAMP_MS..=MAX_TIMESTAMP_MS).contains(ms))
        .ok_or_else(|| format!("Timestamp {seconds} s is outside years 0000 to 9999"))?;
    Ok(Cell::Int(ms))
}

/// A cell in the column's type.
fn to_column<'a>(c: Cell<'a>, to: &DataType) -> Result<Cell<'a>, String> {
    Ok(match (c, to) {
        (Cell::Null, _) => Cell::Null,
        (Cell::Int(v), DataType::Int32) => Cell::Int(
            i32::try_from(v)
                .map_err(|_| format!("{v} does not fit INT"))?
                .into(),
        ),
        (Cell::Int(v), DataType::Float64) => Cell::Float(v as f64),
        (Cell::Text(t), DataType::Decimal128(p, s)) => {
            if t.is_empty() {
                Cell::Null
            } else {
                Cell::Decimal(decimal::parse(t, *p, *s as u8).map_err(|e| e.to_string())?)
            }
        }
        (c, _) => c,
    })
}
