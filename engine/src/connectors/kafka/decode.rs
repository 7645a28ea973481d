//! Kafka message values (JSON or Avro) → one Arrow batch per polled batch,
//! with the system columns appended. For JSON, the fast path feeds every
//! value to one arrow-json decoder and flushes once; only a batch with a bad
//! message is decoded again message by message, to find and report the bad
//! ones. Avro values go to [`crate::connectors::avro::decode`].

use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array, Int64Array, StringBuilder, TimestampMillisecondArray};
use arrow::datatypes::SchemaRef;
use arrow::json::reader::Decoder;
use arrow::record_batch::RecordBatch;

use crate::connectors::avro::decode::AvroDecoder;
use crate::connectors::json::{
    decode_with, new_decoder, readable_reason, shown, timestamp_out_of_range, too_deep,
};
use crate::connectors::json_types::JsonTypes;
use crate::connectors::kafka::{RawBatch, ValueFormat};
use crate::connectors::projection::Projection;
use crate::connectors::protobuf::decode::ProtoDecoder;
use crate::error::ConnectorError;

/// A message that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// Its index in the raw batch.
    pub index: usize,
    /// Why.
    pub reason: String,
}

/// What one raw batch decoded to.
#[derive(Debug)]
pub struct Decoded {
    /// Rows of the good messages, in the stream's schema (system columns last).
    pub batch: RecordBatch,
    /// The bad messages.
    pub malformed: Vec<Malformed>,
}

/// Decodes raw batches of one stream.
pub struct KafkaDecoder {
    stream: String,
    /// The declared columns the query reads (what is decoded of the JSON).
    values: SchemaRef,
    /// From those to all the declared columns (the others NULL).
    projection: Projection,
    /// Declared + system columns.
    schema: SchemaRef,
    types: JsonTypes,
    decoder: Decoder,
    /// `format = 'avro'`: decodes instead of the JSON decoder.
    avro: Option<AvroDecoder>,
    /// `format = 'protobuf'`: decodes instead of the JSON decoder.
    protobuf: Option<ProtoDecoder>,
}

/// Rows the main decoder holds before it must flush (more than any batch).
const MAX_ROWS: usize = 1 << 22;

impl crate::connectors::decode_pool::Decode for KafkaDecoder {
    type Input = RawBatch;
    type Output = Decoded;

    fn decode(&mut self, raw: &RawBatch) -> Result<Decoded, ConnectorError> {
        KafkaDecoder::decode(self, raw)
    }
}

impl KafkaDecoder {
    /// A decoder producing `schema` (the declared columns followed by the
    /// system columns), decoding only the stream columns in `columns` (all
    /// when `None`; the others are NULL).
    ///
    /// # Errors
    /// A schema arrow-json cannot decode into.
    pub fn new(
        stream: &str,
        schema: SchemaRef,
        columns: Option<&[usize]>,
        format: &ValueFormat,
    ) -> Result<Self, ConnectorError> {
        let types = match format {
            ValueFormat::Json(t) => *t,
            ValueFormat::Avro(_) | ValueFormat::Protobuf(_) => JsonTypes::Strict,
        };
        let declared = schema.fields().len() - super::SYSTEM_COLUMNS.len();
        let all_declared = Arc::new(schema.project(&(0..declared).collect::<Vec<_>>()).map_err(
            |e| ConnectorError::Arrow {
                context: format!("stream '{stream}': schema"),
                source: e,
            },
        )?);
        let projection = Projection::new(&all_declared, columns);
        let values = projection.decoded_schema().clone();
        let avro = match format {
            ValueFormat::Avro(source) => Some(AvroDecoder::new(
                stream,
                values.clone(),
                &all_declared,
                source,
            )?),
            _ => None,
        };
        let protobuf = match format {
            ValueFormat::Protobuf(p) => Some(
                ProtoDecoder::new(values.clone(), &all_declared, p).map_err(|e| {
                    ConnectorError::Config {
                        stream: stream.to_string(),
                        message: e,
                    }
                })?,
            ),
            _ => None,
        };
        Ok(Self {
            protobuf,
            avro,
            stream: stream.to_string(),
            decoder: new_decoder(&values, stream, MAX_ROWS, types)?,
            types,
            values,
            projection,
            schema,
        })
    }

    /// Decodes every message of `raw`.
    ///
    /// # Errors
    /// Only internal Arrow failures; bad messages are reported in
    /// [`Decoded::malformed`].
    pub fn decode(&mut self, raw: &RawBatch) -> Result<Decoded, ConnectorError> {
        if self.avro.is_some() || self.protobuf.is_some() {
            let values: Vec<Option<&[u8]>> = (0..raw.len())
                .map(|i| raw.has_value[i].then(|| raw.value(i)))
                .collect();
            let (batch, rows, malformed) = match (&mut self.avro, &mut self.protobuf) {
                (Some(avro), _) => {
                    let d = avro.decode(&values)?;
                    (d.batch, d.rows, d.malformed)
                }
                (_, Some(proto)) => {
                    let d = proto.decode(&values)?;
                    (d.batch, d.rows, d.malformed)
                }
                _ => unreachable!("one of them is set"),
            };
            let malformed = malformed
                .into_iter()
                .map(|(index, reason)| Malformed { index, reason })
                .collect();
            let batch = self.with_system(batch, raw, Some(&rows))?;
            return Ok(Decoded { batch, malformed });
        }
        let values = match self.fast(raw) {
            Some(b) => {
                let columns = self.with_system(b, raw, None)?;
                return Ok(Decoded {
                    batch: columns,
                    malformed: Vec::new(),
                });
            }
            None => {
                // the decoder may hold half a record: start afresh
                self.decoder = new_decoder(&self.values, &self.stream, MAX_ROWS, self.types)?;
                self.slow(raw)?
            }
        };
        let (batch, rows, malformed) = values;
        let batch = self.with_system(batch, raw, Some(&rows))?;
        Ok(Decoded { batch, malformed })
    }

    /// Every value is one complete JSON object and the batch converts: the rows.
    fn fast(&mut self, raw: &RawBatch) -> Option<RecordBatch> {
        for i in 0..raw.len() {
            let v = raw.value(i);
            if !raw.has_value[i] || too_deep(v).is_some() {
                return None;
            }
            let before = self.decoder.len();
            match self.decoder.decode(v) {
                Ok(n) if n == v.len() => {}
                _ => return None,
            }
            if self.decoder.has_partial_record() || self.decoder.len() != before + 1 {
                return None;
            }
        }
        match self.decoder.flush() {
            Ok(Some(b)) if b.num_rows() == raw.len() && timestamp_out_of_range(&b).is_none() => {
                Some(b)
            }
            Ok(None) if raw.is_empty() => Some(RecordBatch::new_empty(self.values.clone())),
            _ => None,
        }
    }

    /// Each message on its own, to find the bad ones; then the good ones in one decode.
    #[allow(clippy::type_complexity)]
    fn slow(
        &mut self,
        raw: &RawBatch,
    ) -> Result<(RecordBatch, Vec<usize>, Vec<Malformed>), ConnectorError> {
        let mut good = Vec::with_capacity(raw.values.len());
        let mut rows = Vec::with_capacity(raw.len());
        let mut malformed = Vec::new();
        let mut probe = new_decoder(&self.values, &self.stream, 1, self.types)?;
        for i in 0..raw.len() {
            let v = raw.value(i);
            let reason = if !raw.has_value[i] {
                Some("the message has no value (a tombstone)".to_string())
            } else if v.iter().all(u8::is_ascii_whitespace) {
                Some("the message value is empty".to_string())
            } else if let Some(deep) = too_deep(v) {
                Some(readable_reason(&deep, v).replace("(line: ", "(value: "))
            } else {
                match decode_with(&mut probe, &self.values, v, 1) {
                    Ok(b) if b.num_rows() == 1 => timestamp_out_of_range(&b)
                        .map(|why| readable_reason(&why, v).replace("(line: ", "(value: ")),
                    Ok(b) => Some(format!(
                        "the value holds {} JSON records, not one (value: {})",
                        b.num_rows(),
                        shown(v)
                    )),
                    Err(e) => {
                        probe = new_decoder(&self.values, &self.stream, 1, self.types)?;
                        Some(readable_reason(&e.to_string(), v).replace("(line: ", "(value: "))
                    }
                }
            };
            match reason {
                Some(reason) => malformed.push(Malformed { index: i, reason }),
                None => {
                    good.extend_from_slice(v);
                    good.push(b'\n');
                    rows.push(i);
                }
            }
        }
        let batch = decode_with(&mut self.decoder, &self.values, &good, MAX_ROWS).map_err(|e| {
            ConnectorError::Arrow {
                context: format!("stream '{}': re-decoding the valid messages", self.stream),
                source: e,
            }
        })?;
        Ok((batch, rows, malformed))
    }

    /// Appends `_topic`, `_partition`, `_offset`, `_key`, `_timestamp` for
    /// the messages `rows` (all when `None`).
    fn with_system(
        &self,
        values: RecordBatch,
        raw: &RawBatch,
        rows: Option<&[usize]>,
    ) -> Result<RecordBatch, ConnectorError> {
        let values = self.projection.expand(values)?;
        let all: Vec<usize>;
        let idx: &[usize] = match rows {
            Some(r) => r,
            None => {
                all = (0..raw.len()).collect();
                &all
            }
        };
        let mut topic = StringBuilder::with_capacity(idx.len(), idx.len() * 8);
        let mut key = StringBuilder::with_capacity(idx.len(), idx.len() * 8);
        for &i in idx {
            topic.append_value(raw.topic_name(i));
            match raw.key(i) {
                Some(k) => key.append_value(String::from_utf8_lossy(k)),
                None => key.append_null(),
            }
        }
        let mut columns: Vec<ArrayRef> = values.columns().to_vec();
        columns.push(Arc::new(topic.finish()));
        columns.push(Arc::new(Int32Array::from_iter_values(
            idx.iter().map(|&i| raw.partition[i]),
        )));
        columns.push(Arc::new(Int64Array::from_iter_values(
            idx.iter().map(|&i| raw.offset[i]),
        )));
        columns.push(Arc::new(key.finish()));
        columns.push(Arc::new(TimestampMillisecondArray::from_iter(
            idx.iter().map(|&i| raw.timestamp[i]),
        )));
        RecordBatch::try_new(self.schema.clone(), columns).map_err(|e| ConnectorError::Arrow {
            context: format!("stream '{}': adding the system columns", self.stream),
            source: e,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::kafka::with_system_columns;
    use arrow::array::AsArray;
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};

    fn decoder() -> KafkaDecoder {
        let declared = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        KafkaDecoder::new(
            "s",
            with_system_columns(&declared),
            None,
            &ValueFormat::Json(JsonTypes::Strict),
        )
        .unwrap()
    }

    #[test]
    fn only_the_columns_read_are_decoded() {
        let declared = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Int64, true),
        ]));
        let mut d = KafkaDecoder::new(
            "s",
            with_system_columns(&declared),
            Some(&[1]),
            &ValueFormat::Json(JsonTypes::Strict),
        )
        .unwrap();
        // `a` is not read: its bad value makes no message malformed
        let out = d
            .decode(&raw(&[
                Some(r#"{"a":"x","b":1}"#),
                Some(r#"{"a":2,"b":3}"#),
            ]))
            .unwrap();
        assert!(out.malformed.is_empty());
        assert_eq!(
            out.batch.num_columns(),
            2 + 5,
            "declared and system columns"
        );
        assert_eq!(out.batch.column(0).null_count(), 2, "a is NULL");
        let b: Vec<i64> = out
            .batch
            .column(1)
            .as_primitive::<Int64Type>()
            .values()
            .to_vec();
        assert_eq!(b, [1, 3]);
    }

    fn raw(values: &[Option<&str>]) -> RawBatch {
        let mut r = RawBatch::new(Arc::from(vec!["t".to_string()]));
        for (i, v) in values.iter().enumerate() {
            let key = format!("k{i}");
            r.push(
                "t",
                (i % 2) as i32,
                100 + i as i64,
                Some(1_000 + i as i64),
                Some(key.as_bytes()),
                v.map(str::as_bytes),
            );
        }
        r
    }

    #[test]
    fn good_batch_decodes_in_one_go_with_system_columns() {
        let mut d = decoder();
        let out = d
            .decode(&raw(&[Some("{\"a\":1}"), Some(" {\"a\":2,\"x\":[1]} ")]))
            .unwrap();
        assert!(out.malformed.is_empty());
        let b = out.batch;
        assert_eq!(b.num_columns(), 6);
        assert_eq!(b.column(0).as_primitive::<Int64Type>().values(), &[1, 2]);
        assert_eq!(b.column(1).as_string::<i32>().value(1), "t");
        assert_eq!(
            b.column(3).as_primitive::<Int64Type>().values(),
            &[100, 101]
        );
        assert_eq!(b.column(4).as_string::<i32>().value(1), "k1");
    }

    #[test]
    fn bad_messages_are_found_one_by_one() {
        let mut d = decoder();
        let out = d
            .decode(&raw(&[
                Some("{\"a\":1}"),
                Some("{\"a\":"),
                None,
                Some("{\"a\":\"x\"}"),
                Some("{\"a\":1}{\"a\":"),
                Some("2}"),
                Some("{\"a\":7}"),
            ]))
            .unwrap();
        // messages 0 and 6 are rows, at their own offsets
        let offsets = out
            .batch
            .column_by_name("_offset")
            .and_then(|c| c.as_primitive_opt::<arrow::datatypes::Int64Type>().cloned())
            .expect("an _offset column");
        assert_eq!(offsets.values().to_vec(), [100, 106]);
        let bad: Vec<usize> = out.malformed.iter().map(|m| m.index).collect();
        assert_eq!(bad, [1, 2, 3, 4, 5]);
        assert!(out.malformed[1].reason.contains("tombstone"));
        assert!(
            out.malformed[2].reason.contains("(value: {\"a\":\"x\"})"),
            "{:?}",
            out.malformed[2]
        );
        assert_eq!(
            out.batch.column(0).as_primitive::<Int64Type>().values(),
            &[1, 7]
        );
        assert_eq!(
            out.batch.column(3).as_primitive::<Int64Type>().values(),
            &[100, 106]
        );
        // the decoder is usable afterwards
        let again = d.decode(&raw(&[Some("{\"a\":3}")])).unwrap();
        assert_eq!(again.batch.num_rows(), 1);
    }
}
