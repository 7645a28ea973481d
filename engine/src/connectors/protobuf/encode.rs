//! Rows → Protobuf messages of the stream's type, one per row: each column
//! is written to the field of its name (NULL: the field is left out, which
//! a proto3 reader sees as the default unless the field has presence).

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type, SchemaRef};
use arrow::record_batch::RecordBatch;

use super::descriptor::{FieldDef, Kind};
use super::wire::{I32, I64, VARINT, put_key, put_len, put_varint, zigzag};
use super::{ProtoFormat, ProtoSchema, check_columns, proto_text};
use crate::connectors::avro::registry::Registry;
use crate::error::ConnectorError;

/// Encodes the rows of one sink.
#[derive(Debug)]
pub struct ProtoEncoder {
    stream: String,
    /// Per column, its field.
    fields: Vec<FieldDef>,
    /// With a registry: the Confluent prefix (a 0 byte, the id, the
    /// message indexes `[0]` as one 0 byte) every value starts with.
    prefix: Vec<u8>,
}

impl ProtoEncoder {
    /// An encoder of batches of `schema`.
    ///
    /// # Errors
    /// A column the message does not have, or cannot hold.
    pub fn new(
        stream: &str,
        schema: &SchemaRef,
        format: &ProtoFormat,
    ) -> Result<Self, ConnectorError> {
        let config = |message: String| ConnectorError::Config {
            stream: stream.to_string(),
            message,
        };
        let (message, prefix) = match &format.schema {
            ProtoSchema::Given(_) if format.confluent => {
                return Err(config(
                    "a Protobuf sink without a registry writes bare messages: 'protobuf.confluent' is for reading; set 'protobuf.schema-registry.url' to write the Confluent wire format".into(),
                ));
            }
            ProtoSchema::Given(m) => (m.clone(), Vec::new()),
            ProtoSchema::Registry {
                registry, subject, ..
            } => {
                // the schema of the columns, registered under the subject
                let text = proto_text::text_of_columns(stream, schema);
                let id = Registry::shared(registry)
                    .register_typed(subject, &text, Some("PROTOBUF"))
                    .map_err(|e| config(e.to_string()))?;
                let m = proto_text::message_from_text(&text, None).map_err(config)?;
                let mut prefix = vec![0];
                prefix.extend_from_slice(&id.to_be_bytes());
                prefix.push(0);
                (m, prefix)
            }
        };
        check_columns(schema, &message).map_err(config)?;
        let fields = schema
            .fields()
            .iter()
            .map(|f| {
                message
                    .field_of(f.name())
                    .map(|i| message.fields[i].clone())
                    .ok_or_else(|| config(format!("column '{}' has no field", f.name())))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            stream: stream.to_string(),
            fields,
            prefix,
        })
    }

    /// The message of each row of `batch`.
    ///
    /// # Errors
    /// An enum column holding a name the enum does not have.
    pub fn encode(&self, batch: &RecordBatch) -> Result<Vec<Vec<u8>>, ConnectorError> {
        let mut out = vec![self.prefix.clone(); batch.num_rows()];
        for (field, col) in self.fields.iter().zip(batch.columns()) {
            for (r, msg) in out.iter_mut().enumerate() {
                if col.is_valid(r) {
                    put(field.number, &field.kind, col, r, msg).map_err(|why| {
                        ConnectorError::Config {
                            stream: self.stream.clone(),
                            message: format!("field '{}': {why}", field.name),
                        }
                    })?;
                }
            }
        }
        Ok(out)
    }
}

fn int(col: &ArrayRef, r: usize) -> i64 {
    match col.data_type() {
        DataType::Int32 => i64::from(col.as_primitive::<Int32Type>().value(r)),
        DataType::Timestamp(..) => col
            .as_primitive::<arrow::datatypes::TimestampMillisecondType>()
            .value(r),
        _ => col.as_primitive::<Int64Type>().value(r),
    }
}

fn float(col: &ArrayRef, r: usize) -> f64 {
    match col.data_type() {
        DataType::Float64 => col.as_primitive::<Float64Type>().value(r),
        _ => int(col, r) as f64,
    }
}

fn text(col: &ArrayRef, r: usize) -> String {
    match col.data_type() {
        DataType::Utf8 => col.as_string::<i32>().value(r).to_string(),
        DataType::Decimal128(_, s) => crate::types::decimal::format(
            col.as_primitive::<arrow::datatypes::Decimal128Type>()
                .value(r),
            *s as u8,
        ),
        _ => arrow::util::display::array_value_to_string(col, r).unwrap_or_default(),
    }
}

fn put(
    number: u32,
    kind: &Kind,
    col: &ArrayRef,
    r: usize,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    match kind {
        Kind::Int | Kind::UInt64 => {
            put_key(number, VARINT, out);
            put_varint(int(col, r) as u64, out);
        }
        Kind::SInt => {
            put_key(number, VARINT, out);
            put_varint(zigzag(int(col, r)), out);
        }
        Kind::Bool => {
            put_key(number, VARINT, out);
            put_varint(u64::from(col.as_boolean().value(r)), out);
        }
        Kind::Fixed32 { .. } => {
            put_key(number, I32, out);
            out.extend_from_slice(&(int(col, r) as u32).to_le_bytes());
        }
        Kind::Fixed64 { .. } => {
            put_key(number, I64, out);
            out.extend_from_slice(&(int(col, r) as u64).to_le_bytes());
        }
        Kind::Double => {
            put_key(number, I64, out);
            out.extend_from_slice(&float(col, r).to_le_bytes());
        }
        Kind::Float => {
            put_key(number, I32, out);
            out.extend_from_slice(&(float(col, r) as f32).to_le_bytes());
        }
        Kind::String | Kind::Bytes => put_len(number, text(col, r).as_bytes(), out),
        Kind::Enum(values) => {
            let name = text(col, r);
            let n = values
                .iter()
                .find(|(_, v)| *v == name)
                .map(|(n, _)| *n)
                .or_else(|| name.parse().ok())
                .ok_or_else(|| format!("the enum has no value '{name}'"))?;
            put_key(number, VARINT, out);
            put_varint(i64::from(n) as u64, out);
        }
        Kind::Timestamp => {
            let ms = int(col, r);
            let mut inner = Vec::with_capacity(12);
            put_key(1, VARINT, &mut inner);
            put_varint(ms.div_euclid(1000) as u64, &mut inner);
            let nanos = ms.rem_euclid(1000) * 1_000_000;
            if nanos != 0 {
                put_key(2, VARINT, &mut inner);
                put_varint(nanos as u64, &mut inner);
            }
            put_len(number, &inner, out);
        }
        Kind::Wrapper(k) => {
            let mut inner = Vec::with_capacity(12);
            put(1, k, col, r, &mut inner)?;
            put_len(number, &inner, out);
        }
        Kind::Message(m) => return Err(format!("the nested message {m} is not written")),
    }
    Ok(())
}
