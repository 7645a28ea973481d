//! Rows → Avro message values, one per row (arrow-avro's encoder).
//!
//! The writer schema is `'avro.schema'` (its fields must be the columns'
//! names, of types the columns read back as) or, by default, the schema of
//! the columns ([`super::schema_of_columns`]). With a registry it is
//! registered under the subject and every value carries the Confluent wire
//! format's prefix (a 0 byte, the schema id); without one, values are bare
//! Avro bodies.

use std::collections::HashMap;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow_avro::schema::{FingerprintStrategy, SCHEMA_METADATA_KEY};
use arrow_avro::writer::format::{AvroBinaryFormat, AvroSoeFormat};
use arrow_avro::writer::{EncodedRows, Encoder, WriterBuilder};

use super::registry::Registry;
use super::{RecordSchema, SchemaSource, check_columns, schema_of_columns};
use crate::error::ConnectorError;

/// Encodes the rows of one sink.
pub struct AvroEncoder {
    encoder: Encoder,
    stream: String,
}

impl std::fmt::Debug for AvroEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvroEncoder")
            .field("stream", &self.stream)
            .finish()
    }
}

/// The Avro schema a sink of `schema` writes (the one `source` gives,
/// checked against the columns, or the columns' own) and the Arrow schema
/// that carries it to arrow-avro's writer.
///
/// # Errors
/// A given schema that does not parse or that the columns do not match.
pub(super) fn writer_schema(
    stream: &str,
    schema: &SchemaRef,
    source: &SchemaSource,
) -> Result<(String, Schema), ConnectorError> {
    let text = match source {
        SchemaSource::Given(text) => {
            RecordSchema::parse(text)
                .and_then(|record| check_columns(schema, &record))
                .map_err(|message| ConnectorError::Config {
                    stream: stream.to_string(),
                    message,
                })?;
            text.clone()
        }
        _ => schema_of_columns(stream, schema).to_string(),
    };
    let mut md: HashMap<String, String> = schema.metadata().clone().into();
    md.insert(SCHEMA_METADATA_KEY.to_string(), text.clone());
    Ok((text, Schema::new_with_metadata(schema.fields().clone(), md)))
}

impl AvroEncoder {
    /// An encoder of batches of `schema` for stream `stream`.
    ///
    /// # Errors
    /// A given schema the columns do not match, a registry that refuses the
    /// schema or cannot be reached.
    pub fn new(
        stream: &str,
        schema: &SchemaRef,
        source: &SchemaSource,
    ) -> Result<Self, ConnectorError> {
        let config = |message: String| ConnectorError::Config {
            stream: stream.to_string(),
            message,
        };
        let (text, with_schema) = writer_schema(stream, schema, source)?;
        let encoder = match source {
            SchemaSource::Registry { registry, subject } => {
                let id = Registry::shared(registry)
                    .register(subject, &text)
                    .map_err(|e| config(e.to_string()))?;
                WriterBuilder::new(with_schema)
                    .with_fingerprint_strategy(FingerprintStrategy::Id(id))
                    .build_encoder::<AvroSoeFormat>()
            }
            _ => WriterBuilder::new(with_schema).build_encoder::<AvroBinaryFormat>(),
        }
        .map_err(|e| config(format!("the Avro schema: {e}")))?;
        Ok(Self {
            encoder,
            stream: stream.to_string(),
        })
    }

    /// The value of each row of `batch`.
    ///
    /// # Errors
    /// A value the schema cannot hold (a bug: the columns were checked).
    pub fn encode(&mut self, batch: &RecordBatch) -> Result<Vec<bytes::Bytes>, ConnectorError> {
        let rows = encode_rows(&mut self.encoder, &self.stream, batch)?;
        Ok(rows.iter().collect())
    }
}

/// The Avro bodies of `batch`'s rows.
///
/// # Errors
/// A value the schema cannot hold.
pub(super) fn encode_rows(
    encoder: &mut Encoder,
    stream: &str,
    batch: &RecordBatch,
) -> Result<EncodedRows, ConnectorError> {
    encoder
        .encode(batch)
        .map_err(|source| ConnectorError::Arrow {
            context: format!("stream '{stream}': encoding Avro"),
            source: source.into(),
        })?;
    Ok(encoder.flush())
}
