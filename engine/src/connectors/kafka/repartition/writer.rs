//! Stage 1's end: a [`Sink`] writing rows to the repartition topic, each
//! row to the partition of its key group (routed by the exchange's
//! [`Router`], so partition `r` holds exactly the key groups stage-2 worker
//! `r` of an in-process run would own), one record per partition and batch,
//! and the stage's watermark to every partition.

use std::time::Duration;

use arrow::array::UInt32Array;
use arrow::compute::take_record_batch;
use arrow::record_batch::RecordBatch;
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};

use super::{RepartitionTopic, encode_rows, encode_watermark};
use crate::connectors::Sink;
use crate::connectors::kafka::sink::{Deliveries, producer};
use crate::error::ConnectorError;
use crate::exec::exchange::Router;
use crate::plan::expr::Expr;

/// Writes stage 1's rows and watermarks to a repartition topic.
pub struct RepartitionWriter {
    stream: String,
    topic: RepartitionTopic,
    router: Router,
    producer: ThreadedProducer<Deliveries>,
    /// The source partitions this stage reads (the watermark records say so).
    from: Vec<(String, i32)>,
    last_watermark: Option<i64>,
    flush_timeout: Duration,
}

impl RepartitionWriter {
    /// A writer routing by `keys` (the exchange's) into `topic`, for the
    /// stage reading source partitions `from`; `config` holds the
    /// librdkafka settings (bootstrap servers, security).
    ///
    /// # Errors
    /// Keys that cannot be compiled, or a producer librdkafka will not create.
    pub fn new(
        stream: &str,
        topic: RepartitionTopic,
        keys: &[(Expr, String)],
        from: Vec<(String, i32)>,
        config: &ClientConfig,
    ) -> Result<Self, ConnectorError> {
        let router = Router::new(keys, topic.partitions.max(1) as usize).map_err(|e| {
            ConnectorError::Config {
                stream: stream.to_string(),
                message: format!("the repartition keys: {e}"),
            }
        })?;
        let mut config = config.clone();
        config.set("enable.idempotence", "true");
        config.set("linger.ms", "5");
        Ok(Self {
            stream: stream.to_string(),
            router,
            producer: producer(&config, stream)?,
            topic,
            from,
            last_watermark: None,
            flush_timeout: Duration::from_secs(30),
        })
    }

    fn error(&self, reason: String) -> ConnectorError {
        ConnectorError::Delivery {
            stream: self.stream.clone(),
            topic: self.topic.name.clone(),
            reason,
        }
    }

    /// Queues `value` for partition `partition`, waiting while the queue is full.
    fn send(&self, partition: i32, value: &[u8]) -> Result<(), ConnectorError> {
        let mut record = BaseRecord::<(), [u8]>::to(&self.topic.name)
            .partition(partition)
            .payload(value);
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    self.producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => return Err(self.error(e.to_string())),
            }
        }
    }

    fn failure(&self) -> Result<(), ConnectorError> {
        let failed = self
            .producer
            .context()
            .failed
            .lock()
            .ok()
            .and_then(|f| f.clone());
        failed.map_or(Ok(()), |reason| Err(self.error(reason)))
    }
}

impl Sink for RepartitionWriter {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ConnectorError> {
        let routes = self
            .router
            .route(batch)
            .map_err(|e| ConnectorError::Config {
                stream: self.stream.clone(),
                message: format!("routing rows to the repartition topic: {e}"),
            })?;
        for (partition, rows) in routes.into_iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            let part = take_record_batch(batch, &UInt32Array::from(rows)).map_err(|source| {
                ConnectorError::Arrow {
                    context: "splitting rows for the repartition topic".into(),
                    source,
                }
            })?;
            self.send(partition as i32, &encode_rows(&part)?)?;
        }
        self.failure()
    }

    fn watermark(&mut self, watermark: i64) -> Result<(), ConnectorError> {
        if self.last_watermark.is_some_and(|w| w >= watermark) {
            return Ok(());
        }
        self.last_watermark = Some(watermark);
        let value = encode_watermark(&self.from, watermark);
        for partition in 0..self.topic.partitions {
            self.send(partition, &value)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ConnectorError> {
        self.producer
            .flush(self.flush_timeout)
            .map_err(|e| self.error(format!("{e} while waiting for acknowledgements")))?;
        self.failure()
    }

    fn close(&mut self) -> Result<(), ConnectorError> {
        self.flush()
    }
}
