//! The four consumer tiers behind [`KafkaConsumer`]: `standard` and
//! `buffered` poll a `BaseConsumer` on the source thread, `dedicated` polls it
//! on a thread of its own and hands whole batches over a bounded channel,
//! `legacy` awaits a `StreamConsumer` on a tokio runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, SendTimeoutError, Sender, bounded, unbounded};
use rdkafka::ClientConfig;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::connectors::kafka::consumer::{KafkaConsumer, PartitionOffset, RawBatch, StartAt};
use crate::connectors::kafka::resets::{Reset, ResetWatch};
use crate::error::ConnectorError;

/// What every tier is built with.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub stream: String,
    pub topics: Arc<[String]>,
    /// Messages per batch at most.
    pub batch_size: usize,
    /// How long a batch may wait to fill after its first message.
    pub linger: Duration,
    /// Batches in flight from the dedicated thread.
    pub queue: usize,
}

fn kafka_err(stream: &str, doing: &str, e: KafkaError) -> ConnectorError {
    ConnectorError::Kafka {
        context: format!("stream '{stream}': {doing}"),
        source: e,
    }
}

/// How long transient consumer errors may go on with no message before the
/// query fails with the last of them.
const ERROR_PATIENCE: Duration = Duration::from_secs(30);

/// Consecutive transient errors of one consumer.
#[derive(Debug, Default)]
pub(crate) struct Streak {
    since: Option<Instant>,
}

impl Streak {
    /// A message came: the consumer works.
    fn ok(&mut self) {
        self.since = None;
    }

    /// An error came: fatal ones fail at once, transient ones (a broker
    /// restarting) are left to librdkafka's retries for [`ERROR_PATIENCE`].
    fn error(&mut self, stream: &str, e: KafkaError) -> Result<(), ConnectorError> {
        fatal(stream, &e)?;
        let since = *self.since.get_or_insert_with(Instant::now);
        if since.elapsed() < ERROR_PATIENCE {
            return Ok(());
        }
        Err(kafka_err(
            stream,
            &format!(
                "consuming failed for {} s without a message (check the brokers; if the error is about a response size, raise 'properties.receive.message.max.bytes')",
                ERROR_PATIENCE.as_secs()
            ),
            e,
        ))
    }
}

/// A polled error that must stop the query at once.
fn fatal(stream: &str, e: &KafkaError) -> Result<(), ConnectorError> {
    let code = e.rdkafka_error_code();
    let fatal = matches!(
        code,
        Some(
            RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownTopic
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::GroupAuthorizationFailed
                | RDKafkaErrorCode::Fatal
                | RDKafkaErrorCode::InvalidConfig
        )
    );
    if fatal {
        Err(kafka_err(stream, "consuming", e.clone()))
    } else {
        Ok(())
    }
}

/// A consumer whose offset resets `watch` sees.
type Watched = BaseConsumer<ResetWatch>;

fn base_consumer(
    config: &ClientConfig,
    s: &Settings,
    watch: &ResetWatch,
) -> Result<Watched, ConnectorError> {
    with_defaults(config)
        .create_with_context(watch.clone())
        .map_err(|e| kafka_err(&s.stream, "creating the consumer (check 'properties.*')", e))
}

/// Our defaults under the user's settings: offsets are committed by Eddy,
/// never automatically.
fn with_defaults(config: &ClientConfig) -> ClientConfig {
    let mut c = config.clone();
    c.set("enable.auto.commit", "false");
    c.set("enable.auto.offset.store", "false");
    if c.get("auto.offset.reset").is_none() {
        c.set("auto.offset.reset", "earliest");
    }
    if c.get("fetch.wait.max.ms").is_none() {
        c.set("fetch.wait.max.ms", "50");
    }
    // librdkafka says it reset an offset in a warning (see resets.rs):
    // warnings must reach the context even with no logger installed
    if (c.log_level as i32) < RDKafkaLogLevel::Warning as i32 {
        c.set_log_level(RDKafkaLogLevel::Warning);
    }
    c
}

fn assign_all<C: Consumer<X>, X: rdkafka::consumer::ConsumerContext>(
    c: &C,
    stream: &str,
    partitions: &[(String, i32, StartAt)],
) -> Result<(), ConnectorError> {
    let mut tpl = TopicPartitionList::new();
    for (t, p, at) in partitions {
        let offset = match at {
            StartAt::Offset(o) => Offset::Offset(*o),
        };
        tpl.add_partition_offset(t, *p, offset)
            .map_err(|e| kafka_err(stream, "assigning partitions", e))?;
    }
    c.assign(&tpl)
        .map_err(|e| kafka_err(stream, "assigning partitions", e))
}

fn commit_offsets<C: Consumer<X>, X: rdkafka::consumer::ConsumerContext>(
    c: &C,
    stream: &str,
    offsets: &[PartitionOffset],
    sync: bool,
) -> Result<(), ConnectorError> {
    if offsets.is_empty() {
        return Ok(());
    }
    let mut tpl = TopicPartitionList::new();
    for o in offsets {
        tpl.add_partition_offset(&o.topic, o.partition, Offset::Offset(o.offset))
            .map_err(|e| kafka_err(stream, "committing offsets", e))?;
    }
    let mode = if sync {
        CommitMode::Sync
    } else {
        CommitMode::Async
    };
    match c.commit(&tpl, mode) {
        Ok(()) => Ok(()),
        // nothing new to commit
        Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => Ok(()),
        // an async commit's failure would only be reported to the callback;
        // the next commit carries the same offsets again
        Err(_) if !sync => Ok(()),
        Err(e) => Err(kafka_err(stream, "committing offsets", e)),
    }
}

pub(super) fn partitions_of<C: Consumer<X>, X: rdkafka::consumer::ConsumerContext>(
    c: &C,
    stream: &str,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<i32>, ConnectorError> {
    let md = c.fetch_metadata(Some(topic), timeout).map_err(|e| {
        kafka_err(
            stream,
            &format!("reading the metadata of topic '{topic}'"),
            e,
        )
    })?;
    let t = md.topics().iter().find(|t| t.name() == topic);
    match t {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
            Ok(t.partitions().iter().map(|p| p.id()).collect())
        }
        _ => Err(ConnectorError::Config {
            stream: stream.to_string(),
            message: format!(
                "topic '{topic}' does not exist (or has no partitions); create it, or check 'topic' and 'properties.bootstrap.servers'"
            ),
        }),
    }
}

fn watermarks<C: Consumer<X>, X: rdkafka::consumer::ConsumerContext>(
    c: &C,
    stream: &str,
    topic: &str,
    partition: i32,
    timeout: Duration,
) -> Result<(i64, i64), ConnectorError> {
    c.fetch_watermarks(topic, partition, timeout).map_err(|e| {
        kafka_err(
            stream,
            &format!("reading the offsets of {topic}[{partition}]"),
            e,
        )
    })
}

/// Polls until `out` holds `batch_size` messages or `linger` has passed
/// since the first; waits at most `first_wait` for the first.
fn fill(
    consumer: &Watched,
    s: &Settings,
    first_wait: Duration,
    out: &mut RawBatch,
    streak: &mut Streak,
) -> Result<(), ConnectorError> {
    let mut deadline: Option<Instant> = None;
    let start_len = out.len();
    while out.len() - start_len < s.batch_size {
        let wait = match deadline {
            None => first_wait,
            Some(d) => d.saturating_duration_since(Instant::now()),
        };
        match consumer.poll(wait) {
            Some(Ok(m)) => {
                out.push_message(&m);
                streak.ok();
                deadline.get_or_insert_with(|| Instant::now() + s.linger);
            }
            Some(Err(e)) => streak.error(&s.stream, e)?,
            None => break,
        }
    }
    Ok(())
}

macro_rules! delegate_broker_calls {
    ($field:ident) => {
        fn subscribe(&mut self, topics: &[String]) -> Result<(), ConnectorError> {
            let t: Vec<&str> = topics.iter().map(String::as_str).collect();
            self.$field
                .subscribe(&t)
                .map_err(|e| kafka_err(&self.settings.stream, "subscribing", e))
        }

        fn assign(&mut self, partitions: &[(String, i32, StartAt)]) -> Result<(), ConnectorError> {
            assign_all(&*self.$field, &self.settings.stream, partitions)
        }

        fn take_resets(&mut self) -> Vec<Reset> {
            self.watch.take()
        }

        fn commit(
            &mut self,
            offsets: &[PartitionOffset],
            sync: bool,
        ) -> Result<(), ConnectorError> {
            commit_offsets(&*self.$field, &self.settings.stream, offsets, sync)
        }

        fn partitions_of(
            &self,
            topic: &str,
            timeout: Duration,
        ) -> Result<Vec<i32>, ConnectorError> {
            partitions_of(&*self.$field, &self.settings.stream, topic, timeout)
        }

        fn watermarks(
            &self,
            topic: &str,
            partition: i32,
            timeout: Duration,
        ) -> Result<(i64, i64), ConnectorError> {
            watermarks(
                &*self.$field,
                &self.settings.stream,
                topic,
                partition,
                timeout,
            )
        }
    };
}

/// `standard` (one message per poll) and `buffered` (batches) on the
/// source thread.
pub(crate) struct Polled {
    consumer: Box<Watched>,
    watch: ResetWatch,
    settings: Settings,
    batched: bool,
    streak: Streak,
}

impl Polled {
    pub fn new(
        config: &ClientConfig,
        settings: Settings,
        batched: bool,
    ) -> Result<Self, ConnectorError> {
        let watch = ResetWatch::default();
        Ok(Self {
            consumer: Box::new(base_consumer(config, &settings, &watch)?),
            watch,
            settings,
            batched,
            streak: Streak::default(),
        })
    }
}

impl KafkaConsumer for Polled {
    fn next_batch(&mut self, timeout: Duration, out: &mut RawBatch) -> Result<(), ConnectorError> {
        if self.batched {
            return fill(
                &self.consumer,
                &self.settings,
                timeout,
                out,
                &mut self.streak,
            );
        }
        match self.consumer.poll(timeout) {
            Some(Ok(m)) => {
                out.push_message(&m);
                self.streak.ok();
            }
            Some(Err(e)) => self.streak.error(&self.settings.stream, e)?,
            None => {}
        }
        Ok(())
    }

    delegate_broker_calls!(consumer);
}

/// `dedicated`: a thread of its own polls and fills batches.
pub(crate) struct Dedicated {
    consumer: Arc<Watched>,
    watch: ResetWatch,
    settings: Settings,
    batches: Option<Receiver<Result<RawBatch, ConnectorError>>>,
    /// Emptied batches go back to the thread for reuse.
    recycle: Option<Sender<RawBatch>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Dedicated {
    pub fn new(config: &ClientConfig, settings: Settings) -> Result<Self, ConnectorError> {
        let watch = ResetWatch::default();
        Ok(Self {
            consumer: Arc::new(base_consumer(config, &settings, &watch)?),
            watch,
            settings,
            batches: None,
            recycle: None,
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        })
    }

    fn start(&mut self) -> Result<(), ConnectorError> {
        let (tx, rx) = bounded(self.settings.queue);
        let (free_tx, free_rx) = unbounded::<RawBatch>();
        let consumer = self.consumer.clone();
        let settings = self.settings.clone();
        let stop = self.stop.clone();
        let thread = std::thread::Builder::new()
            .name("eddy-kafka".into())
            .spawn(move || poll_thread(&consumer, &settings, &stop, &tx, &free_rx))
            .map_err(|e| ConnectorError::Io {
                context: format!(
                    "stream '{}': starting the consumer thread",
                    self.settings.stream
                ),
                source: e,
            })?;
        self.batches = Some(rx);
        self.recycle = Some(free_tx);
        self.thread = Some(thread);
        Ok(())
    }
}

fn poll_thread(
    consumer: &Watched,
    s: &Settings,
    stop: &AtomicBool,
    tx: &Sender<Result<RawBatch, ConnectorError>>,
    free: &Receiver<RawBatch>,
) {
    let mut streak = Streak::default();
    while !stop.load(Ordering::Relaxed) {
        let mut batch = free
            .try_recv()
            .unwrap_or_else(|_| RawBatch::new(s.topics.clone()));
        batch.clear();
        let result = fill(
            consumer,
            s,
            Duration::from_millis(100),
            &mut batch,
            &mut streak,
        );
        let mut msg = match result {
            Ok(()) if batch.is_empty() => continue,
            Ok(()) => Ok(batch),
            Err(e) => Err(e),
        };
        let failed = msg.is_err();
        // wait for room, but notice a stop
        loop {
            match tx.send_timeout(msg, Duration::from_millis(100)) {
                Ok(()) => break,
                Err(SendTimeoutError::Timeout(m)) if !stop.load(Ordering::Relaxed) => msg = m,
                Err(_) => return,
            }
        }
        if failed {
            return;
        }
    }
}

impl KafkaConsumer for Dedicated {
    fn next_batch(&mut self, timeout: Duration, out: &mut RawBatch) -> Result<(), ConnectorError> {
        if self.batches.is_none() {
            self.start()?;
        }
        let Some(rx) = &self.batches else {
            return Ok(());
        };
        match rx.recv_timeout(timeout) {
            Ok(Ok(mut b)) => {
                if out.is_empty() {
                    std::mem::swap(out, &mut b);
                    if let Some(r) = &self.recycle {
                        let _ = r.send(b);
                    }
                } else {
                    for i in 0..b.len() {
                        out.push(
                            b.topic_name(i),
                            b.partition[i],
                            b.offset[i],
                            b.timestamp[i],
                            b.key(i),
                            b.has_value[i].then(|| b.value(i)),
                        );
                    }
                }
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(RecvTimeoutError::Timeout) => Ok(()),
            Err(RecvTimeoutError::Disconnected) => Err(ConnectorError::Io {
                context: format!(
                    "stream '{}': the consumer thread stopped",
                    self.settings.stream
                ),
                source: std::io::Error::other("disconnected"),
            }),
        }
    }

    delegate_broker_calls!(consumer);
}

impl Drop for Dedicated {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.batches = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `legacy`: a `StreamConsumer` awaited on a current-thread tokio runtime.
pub(crate) struct Legacy {
    consumer: Box<StreamConsumer<ResetWatch>>,
    watch: ResetWatch,
    runtime: tokio::runtime::Runtime,
    settings: Settings,
    streak: Streak,
}

impl Legacy {
    pub fn new(config: &ClientConfig, settings: Settings) -> Result<Self, ConnectorError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| ConnectorError::Io {
                context: format!("stream '{}': starting the tokio runtime", settings.stream),
                source: e,
            })?;
        let watch = ResetWatch::default();
        let consumer: StreamConsumer<ResetWatch> = {
            let _guard = runtime.enter();
            with_defaults(config)
                .create_with_context(watch.clone())
                .map_err(|e| {
                    kafka_err(
                        &settings.stream,
                        "creating the consumer (check 'properties.*')",
                        e,
                    )
                })?
        };
        Ok(Self {
            consumer: Box::new(consumer),
            watch,
            runtime,
            settings,
            streak: Streak::default(),
        })
    }
}

impl KafkaConsumer for Legacy {
    fn next_batch(&mut self, timeout: Duration, out: &mut RawBatch) -> Result<(), ConnectorError> {
        let consumer = &self.consumer;
        let s = &self.settings;
        let streak = &mut self.streak;
        self.runtime.block_on(async {
            let start_len = out.len();
            let mut deadline: Option<tokio::time::Instant> = None;
            while out.len() - start_len < s.batch_size {
                let wait = match deadline {
                    None => timeout,
                    Some(d) => d.saturating_duration_since(tokio::time::Instant::now()),
                };
                match tokio::time::timeout(wait, consumer.recv()).await {
                    Ok(Ok(m)) => {
                        out.push_message(&m);
                        streak.ok();
                        deadline.get_or_insert_with(|| tokio::time::Instant::now() + s.linger);
                    }
                    Ok(Err(e)) => streak.error(&s.stream, e)?,
                    Err(_) => break,
                }
            }
            Ok(())
        })
    }

    delegate_broker_calls!(consumer);
}
