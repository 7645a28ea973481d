//! The Kafka sink: each row as a JSON value, the key from a chosen column,
//! through librdkafka's batching producer with idempotence on. A failed
//! delivery is remembered by the delivery callback and fails the next write,
//! flush or close: the query stops with it rather than dropping rows. With
//! `'sink.delivery' = 'exactly-once'` the producer is transactional: one
//! transaction per checkpoint epoch (see `transactions.rs`).

use std::sync::Mutex;
use std::time::Duration;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Message};

use crate::catalog::StreamDef;
use crate::connectors::Sink;
use crate::connectors::encode::{Encoder, Format};
use crate::connectors::kafka::SinkOptions;
use crate::connectors::kafka::transactions::Transactions;
use crate::error::ConnectorError;

/// Records the first delivery failure.
#[derive(Default)]
pub(super) struct Deliveries {
    pub(super) failed: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, m)) = result
            && let Ok(mut f) = self.failed.lock()
        {
            f.get_or_insert_with(|| {
                format!("{e} (partition {}, record not written)", m.partition())
            });
        }
    }
}

/// Writes a query's rows to a topic.
pub struct KafkaSink {
    stream: String,
    topic: String,
    producer: ThreadedProducer<Deliveries>,
    encoder: Encoder,
    key_column: Option<usize>,
    flush_timeout: Duration,
    buf: Vec<u8>,
    options: SinkOptions,
    /// Under `'sink.delivery' = 'exactly-once'`, once the query's
    /// checkpoints are prepared.
    transactions: Option<Transactions>,
}

impl KafkaSink {
    /// Creates the producer for `def`, writing batches of `schema`.
    ///
    /// # Errors
    /// Bad options (a key column the query does not produce) or a producer
    /// librdkafka will not create.
    pub fn open(def: &StreamDef, schema: SchemaRef) -> Result<Self, ConnectorError> {
        let o = SinkOptions::from_def(def)?;
        let key_column = match &o.key_column {
            None => None,
            Some(k) => Some(
                schema
                    .fields()
                    .iter()
                    .position(|f| f.name().eq_ignore_ascii_case(k))
                    .ok_or_else(|| {
                        def.options.error(format!(
                            "'key.column' = '{k}' is not a column of the rows written; columns: {}",
                            schema
                                .fields()
                                .iter()
                                .map(|f| f.name().as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    })?,
            ),
        };
        let producer = producer(&o.config, &def.name)?;
        Ok(Self {
            stream: def.name.clone(),
            topic: o.topic.clone(),
            producer,
            encoder: Encoder::new(Format::Json, &schema),
            key_column,
            flush_timeout: o.flush_timeout,
            buf: Vec::new(),
            options: o,
            transactions: None,
        })
    }

    fn failure(&self) -> Result<(), ConnectorError> {
        let failed = self
            .producer
            .context()
            .failed
            .lock()
            .ok()
            .and_then(|f| f.clone());
        match failed {
            Some(reason) => Err(self.delivery_error(reason)),
            None => Ok(()),
        }
    }

    fn delivery_error(&self, reason: String) -> ConnectorError {
        ConnectorError::Delivery {
            stream: self.stream.clone(),
            topic: self.topic.clone(),
            reason,
        }
    }

    /// The key column as text (`None` without a key column).
    fn keys(&self, batch: &RecordBatch) -> Result<Option<ArrayRef>, ConnectorError> {
        let Some(c) = self.key_column else {
            return Ok(None);
        };
        arrow::compute::cast(batch.column(c), &DataType::Utf8)
            .map(Some)
            .map_err(|e| ConnectorError::Arrow {
                context: format!("stream '{}': the key column as text", self.stream),
                source: e,
            })
    }
}

impl Sink for KafkaSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ConnectorError> {
        self.failure()?;
        self.buf.clear();
        self.encoder.encode(batch, &mut self.buf);
        let keys = self.keys(batch)?;
        let buf = std::mem::take(&mut self.buf);
        let result = (|| {
            let keys = keys.as_ref().map(|k| k.as_string::<i32>());
            for (row, line) in buf
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .enumerate()
            {
                let mut record = BaseRecord::<str, [u8]>::to(&self.topic).payload(line);
                if let Some(k) = keys.filter(|k| k.is_valid(row)) {
                    record = record.key(k.value(row));
                }
                loop {
                    match self.producer.send(record) {
                        Ok(()) => break,
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                            // librdkafka's queue is full: wait for deliveries
                            record = r;
                            self.producer.poll(Duration::from_millis(10));
                            self.failure()?;
                        }
                        Err((e, _)) => return Err(self.delivery_error(e.to_string())),
                    }
                }
            }
            Ok(())
        })();
        self.buf = buf;
        result
    }

    fn flush(&mut self) -> Result<(), ConnectorError> {
        self.producer
            .flush(self.flush_timeout)
            .map_err(|e| self.delivery_error(format!("{e} while waiting for acknowledgements")))?;
        self.failure()
    }

    /// Flushes; under exactly-once, what was written after the last
    /// committed checkpoint is aborted (at the end of the input and on a
    /// stop the last checkpoint has committed everything).
    fn close(&mut self) -> Result<(), ConnectorError> {
        let flushed = self.flush();
        if let Some(t) = &mut self.transactions {
            t.abort(&self.producer);
        }
        flushed
    }

    fn abort(&mut self) {
        match &mut self.transactions {
            Some(t) => t.abort(&self.producer),
            None => {
                let _ = self.flush();
            }
        }
    }

    fn commits_with_checkpoints(&self) -> bool {
        self.options.exactly_once
    }

    /// Under exactly-once: a transactional producer (`transactional.id`
    /// `eddy-<query>-<stream>` unless set), initialised (fencing an older
    /// instance); the checkpoint its last commit belongs to.
    fn prepare_checkpoints(
        &mut self,
        query: &str,
        run: &str,
    ) -> Result<Option<crate::checkpoint::CheckpointRef>, ConnectorError> {
        if !self.options.exactly_once {
            return Ok(None);
        }
        let id = self
            .options
            .transactional_id
            .clone()
            .unwrap_or_else(|| format!("eddy-{query}-{}", self.stream));
        let mut config = self.options.config.clone();
        config.set("transactional.id", &id);
        self.producer = producer(&config, &self.stream)?;
        let mut t = Transactions::new(
            &self.stream,
            &self.topic,
            id,
            run,
            self.options.base.clone(),
            self.flush_timeout,
        )?;
        let committed = t.init(&self.producer)?;
        self.transactions = Some(t);
        Ok(Some(committed))
    }

    fn recover(&mut self, _state: Option<&serde_json::Value>) -> Result<(), ConnectorError> {
        match &mut self.transactions {
            Some(t) => t.begin(&self.producer),
            None => Ok(()),
        }
    }

    fn checkpoint_state(&mut self) -> Result<serde_json::Value, ConnectorError> {
        Ok(match &self.transactions {
            Some(t) => serde_json::json!({ "transactional_id": t.id }),
            None => serde_json::Value::Null,
        })
    }

    fn checkpoint_durable(
        &mut self,
        id: u64,
        sources: &std::collections::BTreeMap<String, serde_json::Value>,
    ) -> Result<(), ConnectorError> {
        match &mut self.transactions {
            Some(t) => {
                t.commit(&self.producer, id, sources)?;
                // a failed delivery inside the committed transaction
                self.failure()
            }
            None => Ok(()),
        }
    }
}

/// A producer with the delivery callback.
pub(super) fn producer(
    config: &rdkafka::ClientConfig,
    stream: &str,
) -> Result<ThreadedProducer<Deliveries>, ConnectorError> {
    config
        .create_with_context(Deliveries::default())
        .map_err(|e| ConnectorError::Kafka {
            context: format!("stream '{stream}': creating the producer (check 'properties.*')"),
            source: e,
        })
}
