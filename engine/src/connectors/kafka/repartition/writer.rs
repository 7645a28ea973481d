//! Stage 1's end: a [`Sink`] writing rows to the repartition topic, each
//! row to the partition of its key group (routed by the exchange's
//! [`Router`], so partition `r` holds exactly the key groups stage-2 worker
//! `r` of an in-process run would own), one record per partition and batch,
//! and the stage's watermark to every partition. With checkpoints it writes
//! exactly once: one transaction per checkpoint epoch, committed with the
//! source's offsets once the checkpoint is durable (as the exactly-once
//! Kafka sink), so stage 2 reading `read_committed` sees every row once.

use std::time::Duration;

use arrow::array::UInt32Array;
use arrow::compute::take_record_batch;
use arrow::record_batch::RecordBatch;
use rdkafka::ClientConfig;
use rdkafka::producer::BaseRecord;

use super::{RepartitionTopic, encode_rows, encode_watermark};
use crate::checkpoint::CheckpointRef;
use crate::connectors::Sink;
use crate::connectors::kafka::delivery::{Delivery, delivery_sink_methods};
use crate::error::ConnectorError;
use crate::exec::exchange::Router;
use crate::plan::expr::Expr;

/// Writes stage 1's rows and watermarks to a repartition topic.
pub struct RepartitionWriter {
    stream: String,
    topic: RepartitionTopic,
    router: Router,
    delivery: Delivery,
    /// The source partitions this stage reads (the watermark records say so).
    from: Vec<(String, i32)>,
    /// The last watermark record written, and whether it said idle.
    last_watermark: Option<(i64, bool)>,
    exactly_once: bool,
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
        let mut producing = config.clone();
        producing.set("enable.idempotence", "true");
        producing.set("linger.ms", "5");
        let delivery = Delivery::new(
            stream,
            &topic.name,
            producing,
            config.clone(),
            Duration::from_secs(30),
        )?;
        Ok(Self {
            stream: stream.to_string(),
            router,
            delivery,
            topic,
            from,
            last_watermark: None,
            exactly_once: false,
        })
    }

    /// Writes in one transaction per checkpoint (the job must checkpoint).
    pub fn exactly_once(mut self) -> Self {
        self.exactly_once = true;
        self
    }

    /// Queues `value` for partition `partition`.
    fn send(&self, partition: i32, value: &[u8]) -> Result<(), ConnectorError> {
        let record = BaseRecord::<(), [u8]>::to(&self.topic.name)
            .partition(partition)
            .payload(value);
        self.delivery.send(record)
    }
}

impl Sink for RepartitionWriter {
    delivery_sink_methods!();

    fn write(&mut self, batch: &RecordBatch) -> Result<(), ConnectorError> {
        // rows again after an idle spell: the partitions count again
        if let Some((w, true)) = self.last_watermark {
            self.watermark(w, false)?;
        }
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
        self.delivery.failure()
    }

    fn watermark(&mut self, watermark: i64, idle: bool) -> Result<(), ConnectorError> {
        if self
            .last_watermark
            .is_some_and(|(w, was)| w >= watermark && was == idle)
        {
            return Ok(());
        }
        let watermark = self
            .last_watermark
            .map_or(watermark, |(w, _)| w.max(watermark));
        self.last_watermark = Some((watermark, idle));
        let value = encode_watermark(&self.from, watermark, idle);
        for partition in 0..self.topic.partitions {
            self.send(partition, &value)?;
        }
        Ok(())
    }

    /// Once made [`RepartitionWriter::exactly_once`].
    fn commits_with_checkpoints(&self) -> bool {
        self.exactly_once
    }

    /// A transactional producer with `transactional.id`
    /// `eddy-<query>-<run>` (`query` is the task's checkpoint name: one
    /// per stage-1 task), after fencing the task's `earlier` runs (its
    /// previous owners).
    fn prepare_checkpoints(
        &mut self,
        query: &str,
        (run, earlier): (&str, &[String]),
    ) -> Result<Option<CheckpointRef>, ConnectorError> {
        if !self.exactly_once {
            return Ok(None);
        }
        self.delivery
            .transactional(&format!("eddy-{query}"), run, earlier)
            .map(Some)
    }
}
