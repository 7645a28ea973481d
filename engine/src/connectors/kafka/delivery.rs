//! The producing side shared by the Kafka sink and the repartition writer:
//! librdkafka's batching producer whose delivery callback remembers the
//! first failure (the next write, flush or close fails with it rather than
//! dropping rows), and, under exactly-once, the transactional producer and
//! its [`Transactions`]: one transaction per checkpoint epoch, committed once
//! the checkpoint is durable.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext, Message};

use crate::checkpoint::CheckpointRef;
use crate::connectors::kafka::transactions::Transactions;
use crate::error::ConnectorError;

/// Records the first delivery failure.
#[derive(Default)]
pub(super) struct Deliveries {
    failed: Mutex<Option<String>>,
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

/// A producer writing stream `stream`'s records to `topic`.
pub(super) struct Delivery {
    stream: String,
    topic: String,
    pub producer: ThreadedProducer<Deliveries>,
    /// librdkafka settings of the producer (idempotence on).
    config: ClientConfig,
    /// The `properties.*` alone (for the consumers a transaction needs).
    base: ClientConfig,
    flush_timeout: Duration,
    /// Once checkpoints are prepared, under exactly-once.
    transactions: Option<Transactions>,
}

impl Delivery {
    /// A producer with `config` (`base`: the user's settings alone).
    ///
    /// # Errors
    /// librdkafka will not create it.
    pub fn new(
        stream: &str,
        topic: &str,
        config: ClientConfig,
        base: ClientConfig,
        flush_timeout: Duration,
    ) -> Result<Self, ConnectorError> {
        Ok(Self {
            producer: producer(&config, stream)?,
            stream: stream.to_string(),
            topic: topic.to_string(),
            config,
            base,
            flush_timeout,
            transactions: None,
        })
    }

    pub fn error(&self, reason: String) -> ConnectorError {
        ConnectorError::Delivery {
            stream: self.stream.clone(),
            topic: self.topic.clone(),
            reason,
        }
    }

    /// The first delivery that failed, as an error.
    pub fn failure(&self) -> Result<(), ConnectorError> {
        let failed = self
            .producer
            .context()
            .failed
            .lock()
            .ok()
            .and_then(|f| f.clone());
        failed.map_or(Ok(()), |reason| Err(self.error(reason)))
    }

    /// Queues `record`, waiting for deliveries while librdkafka's queue is full.
    pub fn send<K: rdkafka::message::ToBytes + ?Sized>(
        &self,
        mut record: BaseRecord<'_, K, [u8]>,
    ) -> Result<(), ConnectorError> {
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    self.producer.poll(Duration::from_millis(10));
                    self.failure()?;
                }
                Err((e, _)) => return Err(self.error(e.to_string())),
            }
        }
    }

    /// Waits for every queued record's acknowledgement.
    pub fn flush(&self) -> Result<(), ConnectorError> {
        self.producer
            .flush(self.flush_timeout)
            .map_err(|e| self.error(format!("{e} while waiting for acknowledgements")))?;
        self.failure()
    }

    /// Flushes; under exactly-once, what was written after the last
    /// committed checkpoint is aborted.
    pub fn close(&mut self) -> Result<(), ConnectorError> {
        let flushed = self.flush();
        if let Some(t) = &mut self.transactions {
            t.abort(&self.producer);
        }
        flushed
    }

    /// The query failed: the open transaction is aborted (or, without
    /// one, what was written is flushed).
    pub fn abort(&mut self) {
        match &mut self.transactions {
            Some(t) => t.abort(&self.producer),
            None => {
                let _ = self.flush();
            }
        }
    }

    /// Becomes transactional for checkpoints of run `run`: the producer's
    /// `transactional.id` is `<prefix>-<run>`, and the marker of its
    /// commits lives in group `<prefix>`. First fences the `earlier` runs
    /// (`init_transactions` on each one's id aborts its open transaction
    /// and stops it for good). Returns the checkpoint the last commit
    /// belongs to.
    ///
    /// One id per run rather than one per task: a restarted producer with
    /// the same id keeps its producer id, and a broker that goes on listing
    /// its aborted transaction in later fetches (noida-db 0.2.3) would make
    /// `read_committed` readers drop its new records (docs/scale-out.md).
    ///
    /// # Errors
    /// The broker refuses, or this instance is fenced.
    pub fn transactional(
        &mut self,
        prefix: &str,
        run: &str,
        earlier: &[String],
    ) -> Result<CheckpointRef, ConnectorError> {
        for old in earlier {
            let mut config = self.config.clone();
            config.set("transactional.id", format!("{prefix}-{old}"));
            producer(&config, &self.stream)?
                .init_transactions(self.flush_timeout)
                .map_err(|e| {
                    self.error(format!(
                        "fencing the earlier run with transactional.id '{prefix}-{old}': {e}"
                    ))
                })?;
        }
        let id = format!("{prefix}-{run}");
        let mut config = self.config.clone();
        config.set("transactional.id", &id);
        self.producer = producer(&config, &self.stream)?;
        let mut t = Transactions::new(
            &self.stream,
            &self.topic,
            (id, prefix),
            run,
            self.base.clone(),
            self.flush_timeout,
        )?;
        let committed = t.init(&self.producer)?;
        self.transactions = Some(t);
        Ok(committed)
    }

    /// Opens the first transaction, once the query has restored.
    pub fn begin(&mut self) -> Result<(), ConnectorError> {
        match &mut self.transactions {
            Some(t) => t.begin(&self.producer),
            None => Ok(()),
        }
    }

    /// What a checkpoint records: the transactional id (null without).
    pub fn state(&self) -> serde_json::Value {
        match &self.transactions {
            Some(t) => serde_json::json!({ "transactional_id": t.id }),
            None => serde_json::Value::Null,
        }
    }

    /// Checkpoint `id` is durable: commits its epoch's transaction with the
    /// sources' offsets `sources`.
    ///
    /// # Errors
    /// The commit failed (or this instance was fenced).
    pub fn durable(
        &mut self,
        id: u64,
        sources: &BTreeMap<String, serde_json::Value>,
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
fn producer(
    config: &ClientConfig,
    stream: &str,
) -> Result<ThreadedProducer<Deliveries>, ConnectorError> {
    config
        .create_with_context(Deliveries::default())
        .map_err(|e| ConnectorError::Kafka {
            context: format!("stream '{stream}': creating the producer (check 'properties.*')"),
            source: e,
        })
}

/// The [`Sink`](crate::connectors::Sink) methods of a sink writing through
/// a `delivery: Delivery` field: flush, close, abort and the checkpoint
/// hooks (its own `write`, `commits_with_checkpoints` and
/// `prepare_checkpoints` decide the rest).
macro_rules! delivery_sink_methods {
    () => {
        fn flush(&mut self) -> Result<(), ConnectorError> {
            self.delivery.flush()
        }

        /// Flushes; under exactly-once, what was written after the last
        /// committed checkpoint is aborted (at the end of the input and on
        /// a stop the last checkpoint has committed everything).
        fn close(&mut self) -> Result<(), ConnectorError> {
            self.delivery.close()
        }

        fn abort(&mut self) {
            self.delivery.abort();
        }

        fn recover(&mut self, _state: Option<&serde_json::Value>) -> Result<(), ConnectorError> {
            self.delivery.begin()
        }

        fn checkpoint_state(&mut self) -> Result<serde_json::Value, ConnectorError> {
            Ok(self.delivery.state())
        }

        fn checkpoint_durable(
            &mut self,
            id: u64,
            sources: &std::collections::BTreeMap<String, serde_json::Value>,
        ) -> Result<(), ConnectorError> {
            self.delivery.durable(id, sources)
        }
    };
}
pub(super) use delivery_sink_methods;
