//! Avro message values → Arrow rows of the declared columns a query reads.
//!
//! One arrow-avro `Decoder` takes every message of a polled batch. A bad
//! message may leave half a row in it, so on an error the decoder is built
//! afresh, the good messages since its last flush are decoded again and
//! flushed, and decoding goes on after the bad one: each message is
//! decoded at most twice, however many are bad.
//!
//! With a registry, each message names its writer schema by id; ids not
//! seen yet are fetched before the batch is decoded (and cached). An id
//! the registry does not have, or whose schema cannot be read as the
//! stream's columns, makes its messages malformed.

use std::collections::HashMap;

use arrow::array::ArrayRef;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow_avro::reader::{Decoder, DecoderMode, ReaderBuilder};
use arrow_avro::schema::{AvroSchema, Fingerprint, FingerprintAlgorithm, SchemaStore};

use super::registry::{Registry, RegistryError};
use super::{RecordSchema, SchemaSource, check_columns, to_declared};
use crate::error::ConnectorError;

/// Rows a decoder holds before it must flush (more than any polled batch).
const MAX_ROWS: usize = 1 << 22;

/// Where the writer schemas come from.
enum Writers {
    /// One schema, messages are bare bodies.
    Given(Fingerprint),
    /// A registry: per id, `Ok` once in the store, `Err(reason)` when its
    /// messages are malformed.
    Registry {
        registry: Registry,
        ids: HashMap<u32, Result<(), String>>,
    },
}

/// Decodes Avro message values of one stream.
pub struct AvroDecoder {
    stream: String,
    /// The declared columns decoded, in stream order.
    values: SchemaRef,
    /// The reader schema (the writer's record cut to `values`, plus one
    /// field when `values` is empty, so rows are counted).
    reader: AvroSchema,
    /// Whether the reader's first field is only there to count rows.
    counting_field: bool,
    store: SchemaStore,
    writers: Writers,
    decoder: Decoder,
}

/// What a batch of messages decoded to: the rows of the good ones (in
/// `values`), their indexes, and the bad ones with why.
pub struct Decoded {
    /// The rows, in the decoded columns.
    pub batch: RecordBatch,
    /// The message index of each row.
    pub rows: Vec<usize>,
    /// Bad messages: index and reason.
    pub malformed: Vec<(usize, String)>,
}

fn config(stream: &str, message: impl Into<String>) -> ConnectorError {
    ConnectorError::Config {
        stream: stream.to_string(),
        message: message.into(),
    }
}

impl AvroDecoder {
    /// A decoder of `values` (the declared columns the query reads) from
    /// messages written as `source` says. With a registry, the stream reads
    /// as the subject's latest schema, fetched here.
    ///
    /// # Errors
    /// No schema, a schema the columns do not match (naming the column), an
    /// unreachable registry or unknown subject.
    pub fn new(
        stream: &str,
        values: SchemaRef,
        all_declared: &SchemaRef,
        source: &SchemaSource,
    ) -> Result<Self, ConnectorError> {
        let (text, writers, mut store) = match source {
            SchemaSource::Given(text) => (text.clone(), None, SchemaStore::new()),
            SchemaSource::Registry { registry, subject } => {
                let registry = Registry::shared(registry);
                let (id, text) = registry.latest(subject).map_err(|e| {
                    config(
                        stream,
                        format!("{e}; register the topic's schema under subject '{subject}', or name another with 'avro.schema-registry.subject'"),
                    )
                })?;
                (
                    text,
                    Some((registry, id)),
                    SchemaStore::new_with_type(FingerprintAlgorithm::Id),
                )
            }
            SchemaSource::None => {
                return Err(config(
                    stream,
                    "format 'avro' needs the writer schema: 'avro.schema' (inline), 'avro.schema.file' or 'avro.schema-registry.url'",
                ));
            }
        };
        let record = RecordSchema::parse(&text).map_err(|e| config(stream, e))?;
        check_columns(all_declared, &record).map_err(|e| config(stream, e))?;
        let mut names: Vec<String> = values.fields().iter().map(|f| f.name().clone()).collect();
        let counting_field = names.is_empty();
        if counting_field {
            names.push(
                all_declared
                    .fields()
                    .first()
                    .map(|f| f.name().clone())
                    .ok_or_else(|| config(stream, "an Avro stream needs a column"))?,
            );
        }
        let reader = AvroSchema::new(record.reader_for(&names).to_string());
        let writers = match writers {
            None => {
                let fp = store
                    .register(AvroSchema::new(text))
                    .map_err(|e| config(stream, format!("the Avro schema: {e}")))?;
                Writers::Given(fp)
            }
            Some((registry, id)) => {
                store
                    .set(Fingerprint::Id(id), AvroSchema::new(text))
                    .map_err(|e| config(stream, format!("the Avro schema: {e}")))?;
                Writers::Registry {
                    registry,
                    ids: HashMap::from([(id, Ok(()))]),
                }
            }
        };
        let decoder = build(&reader, &store, &writers)
            .map_err(|e| config(stream, format!("the Avro schema: {e}")))?;
        Ok(Self {
            stream: stream.to_string(),
            values,
            reader,
            counting_field,
            store,
            writers,
            decoder,
        })
    }

    /// Decodes `values[i]` for each message (`None`: no value, a tombstone).
    ///
    /// # Errors
    /// An unreachable registry, or an Arrow failure; bad messages are
    /// reported in [`Decoded::malformed`].
    pub fn decode(&mut self, values: &[Option<&[u8]>]) -> Result<Decoded, ConnectorError> {
        let mut malformed = Vec::new();
        self.learn_ids(values)?;
        let mut batches = Vec::new();
        let mut rows = Vec::with_capacity(values.len());
        // good messages decoded since the last flush
        let mut segment: Vec<usize> = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let reason = match v {
                None => Some("the message has no value (a tombstone)".to_string()),
                Some(v) => self.precheck(v),
            };
            let reason = reason.or_else(|| {
                let v = v.unwrap_or_default();
                self.feed(v, &mut batches, &mut segment, &mut rows).err()
            });
            match reason {
                None => segment.push(i),
                Some(why) => {
                    malformed.push((i, why));
                    // start afresh, decode again what the old decoder held
                    self.decoder = build(&self.reader, &self.store, &self.writers)
                        .map_err(|e| self.arrow_failure(e))?;
                    let again = std::mem::take(&mut segment);
                    for &j in &again {
                        let v = values[j].unwrap_or_default();
                        self.feed(v, &mut batches, &mut Vec::new(), &mut Vec::new())
                            .map_err(|e| {
                                config(&self.stream, format!("decoding a good message again: {e}"))
                            })?;
                    }
                    self.flush_into(&mut batches)?;
                    rows.extend(again);
                }
            }
        }
        self.flush_into(&mut batches)?;
        rows.extend(segment);
        let batch = self.assemble(batches, &mut rows, &mut malformed)?;
        malformed.sort_by_key(|(i, _)| *i);
        Ok(Decoded {
            batch,
            rows,
            malformed,
        })
    }

    /// Fetches the schemas of ids not seen yet; rebuilds the decoder when
    /// the store grew.
    fn learn_ids(&mut self, values: &[Option<&[u8]>]) -> Result<(), ConnectorError> {
        let Writers::Registry { registry, ids } = &mut self.writers else {
            return Ok(());
        };
        let mut grew = false;
        for v in values.iter().flatten() {
            let Some(id) = confluent_id(v) else {
                continue;
            };
            if ids.contains_key(&id) {
                continue;
            }
            let verdict = match registry.schema_by_id(id) {
                Ok(text) => {
                    let schema = AvroSchema::new(text);
                    // a schema that cannot be read as the columns fails
                    // alone, not the whole store
                    let mut alone = SchemaStore::new_with_type(FingerprintAlgorithm::Id);
                    let fits = alone
                        .set(Fingerprint::Id(id), schema.clone())
                        .and_then(|_| {
                            ReaderBuilder::new()
                                .with_reader_schema(self.reader.clone())
                                .with_writer_schema_store(alone)
                                .build_decoder()
                        });
                    match fits {
                        Ok(_) => {
                            self.store
                                .set(Fingerprint::Id(id), schema)
                                .map_err(|e| config(&self.stream, e.to_string()))?;
                            grew = true;
                            Ok(())
                        }
                        Err(e) => Err(format!(
                            "schema id {id} cannot be read as the columns the query reads: {e}"
                        )),
                    }
                }
                Err(RegistryError::NotFound(why)) => Err(why),
                Err(e) => {
                    return Err(config(
                        &self.stream,
                        format!("{e} (fetching schema id {id})"),
                    ));
                }
            };
            ids.insert(id, verdict);
        }
        if grew {
            self.decoder = build(&self.reader, &self.store, &self.writers)
                .map_err(|e| self.arrow_failure(e))?;
        }
        Ok(())
    }

    /// Why a message cannot be decoded, found before decoding it.
    fn precheck(&self, v: &[u8]) -> Option<String> {
        match &self.writers {
            Writers::Given(_) if v.is_empty() => Some("the message value is empty".into()),
            Writers::Given(_) => None,
            Writers::Registry { ids, registry } => match confluent_id(v) {
                None => Some(format!(
                    "the value is not in the Confluent wire format (a 0 byte, then a 4-byte schema id), as a registry ({}) is configured: it starts {}",
                    registry.url(),
                    hex_start(v)
                )),
                Some(id) => match ids.get(&id) {
                    Some(Err(why)) => Some(why.clone()),
                    _ => None,
                },
            },
        }
    }

    /// Decodes one message into the decoder; a schema switch flushes rows
    /// decoded before it into `batches` (with their indexes from `segment`).
    fn feed(
        &mut self,
        v: &[u8],
        batches: &mut Vec<RecordBatch>,
        segment: &mut Vec<usize>,
        rows: &mut Vec<usize>,
    ) -> Result<(), String> {
        let before = self.decoder.capacity();
        let mut at = 0;
        let mut flushed_for_switch = false;
        while at < v.len() {
            let n = self
                .decoder
                .decode(&v[at..])
                .map_err(|e| format!("not valid Avro for its schema: {e}"))?;
            at += n;
            if at < v.len() {
                if n == 0 && self.decoder.batch_is_full() && !flushed_for_switch {
                    // a new writer schema: the rows before it go first
                    flushed_for_switch = true;
                    if let Some(b) = self.decoder.flush().map_err(|e| e.to_string())? {
                        batches.push(b);
                        rows.append(segment);
                    }
                    continue;
                }
                if n == 0 {
                    return Err("the value ends in the middle of a record".into());
                }
                if self.unframed() {
                    return Err(format!(
                        "{} bytes follow the record in the value",
                        v.len() - at
                    ));
                }
            }
        }
        let decoded = if flushed_for_switch {
            self.decoder.capacity() + 1 == MAX_ROWS
        } else {
            self.decoder.capacity() + 1 == before
        };
        if !decoded {
            return Err("the value ends in the middle of a record".into());
        }
        Ok(())
    }

    fn unframed(&self) -> bool {
        matches!(self.writers, Writers::Given(_))
    }

    fn flush_into(&mut self, batches: &mut Vec<RecordBatch>) -> Result<(), ConnectorError> {
        if let Some(b) = self.decoder.flush().map_err(|e| self.arrow_failure(e))? {
            batches.push(b);
        }
        Ok(())
    }

    fn arrow_failure(&self, e: impl std::fmt::Display) -> ConnectorError {
        config(&self.stream, format!("decoding Avro: {e}"))
    }

    /// One batch in the declared types; rows whose values do not fit their
    /// columns (a DECIMAL's digits) become malformed.
    fn assemble(
        &self,
        batches: Vec<RecordBatch>,
        rows: &mut Vec<usize>,
        malformed: &mut Vec<(usize, String)>,
    ) -> Result<RecordBatch, ConnectorError> {
        let n = rows.len();
        let columns: Vec<ArrayRef> = if batches.is_empty() {
            return Ok(RecordBatch::new_empty(self.values.clone()));
        } else {
            let schema = batches[0].schema();
            let all = arrow::compute::concat_batches(&schema, &batches)
                .map_err(|e| self.arrow_failure(e))?;
            let skip = usize::from(self.counting_field);
            all.columns()[..all.num_columns() - skip].to_vec()
        };
        let mut bad = vec![false; n];
        let columns =
            to_declared(&columns, &self.values, &mut bad).map_err(|e| self.arrow_failure(e))?;
        let options = arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(n));
        let batch = RecordBatch::try_new_with_options(self.values.clone(), columns, &options)
            .map_err(|e| self.arrow_failure(e))?;
        if !bad.contains(&true) {
            return Ok(batch);
        }
        let keep: arrow::array::BooleanArray = bad.iter().map(|b| Some(!b)).collect();
        for (r, _) in bad.iter().enumerate().filter(|(_, b)| **b) {
            malformed.push((
                rows[r],
                "a DECIMAL value has more integer digits than its column holds".into(),
            ));
        }
        let mut k = 0;
        rows.retain(|_| {
            k += 1;
            !bad[k - 1]
        });
        arrow::compute::filter_record_batch(&batch, &keep).map_err(|e| self.arrow_failure(e))
    }
}

fn build(
    reader: &AvroSchema,
    store: &SchemaStore,
    writers: &Writers,
) -> Result<Decoder, arrow::error::ArrowError> {
    let b = ReaderBuilder::new()
        .with_batch_size(MAX_ROWS)
        .with_reader_schema(reader.clone())
        .with_writer_schema_store(store.clone());
    match writers {
        Writers::Given(fp) => b
            .with_decoder_mode(DecoderMode::UnframedDatum)
            .with_active_fingerprint(*fp)
            .build_decoder(),
        Writers::Registry { .. } => b.build_decoder(),
    }
}

/// The schema id of a value in the Confluent wire format.
pub(crate) fn confluent_id(v: &[u8]) -> Option<u32> {
    match v {
        [0, a, b, c, d, ..] => Some(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

fn hex_start(v: &[u8]) -> String {
    if v.is_empty() {
        return "empty".into();
    }
    let hex: Vec<String> = v.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("with bytes {}", hex.join(" "))
}
