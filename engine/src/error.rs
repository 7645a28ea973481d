//! Error types: one enum per boundary, gathered in [`EngineError`].

use std::fmt;

/// A position in the SQL text (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct SqlPos {
    /// Line, starting at 1 (0 when unknown).
    pub line: u64,
    /// Column, starting at 1 (0 when unknown).
    pub column: u64,
}

impl SqlPos {
    /// A position at `line`, `column`.
    pub fn new(line: u64, column: u64) -> Self {
        Self { line, column }
    }

    /// Whether the position is known.
    pub fn is_known(&self) -> bool {
        self.line > 0
    }
}

impl From<sqlparser::tokenizer::Location> for SqlPos {
    fn from(l: sqlparser::tokenizer::Location) -> Self {
        Self::new(l.line, l.column)
    }
}

impl From<sqlparser::tokenizer::Span> for SqlPos {
    fn from(s: sqlparser::tokenizer::Span) -> Self {
        s.start.into()
    }
}

/// A mistake in a SQL text, found while parsing or planning it.
///
/// Displays as `error: <what> at line L, column C` followed by a `hint:` line
/// that says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    /// What is wrong, naming the thing.
    pub message: String,
    /// Where in the SQL (unknown = line 0).
    pub pos: SqlPos,
    /// What to do about it.
    pub hint: Option<String>,
}

impl PlanError {
    /// A new error at `pos`.
    pub fn new(message: impl Into<String>, pos: impl Into<SqlPos>) -> Self {
        Self {
            message: message.into(),
            pos: pos.into(),
            hint: None,
        }
    }

    /// A new error with no position.
    pub fn unplaced(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            pos: SqlPos::default(),
            hint: None,
        }
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Sets the position if none was known.
    pub fn or_at(mut self, pos: impl Into<SqlPos>) -> Self {
        if !self.pos.is_known() {
            self.pos = pos.into();
        }
        self
    }
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        if self.pos.is_known() {
            write!(f, " at line {}, column {}", self.pos.line, self.pos.column)?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\nhint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PlanError {}

/// A failure in a source or sink.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// An option is missing, unknown or has a bad value.
    #[error("stream '{stream}': {message}")]
    Config {
        /// The stream whose WITH options are wrong.
        stream: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// An input record could not be decoded (and the policy is to fail).
    #[error("{source_name}: malformed record at line {line}: {reason}")]
    Malformed {
        /// Where the record came from (a path, a topic).
        source_name: String,
        /// 1-based line number (or record number).
        line: u64,
        /// Why it could not be decoded.
        reason: String,
    },
    /// A Kafka message could not be decoded (and the policy is to fail).
    #[error(
        "malformed message in topic '{topic}' partition {partition} at offset {offset}: {reason}\nhint: fix the producer, or set 'format.on_error' = 'skip' or 'dead_letter'"
    )]
    MalformedMessage {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Offset.
        offset: i64,
        /// Why it could not be decoded.
        reason: String,
    },
    /// Kafka (librdkafka) failed.
    #[error("{context}: {source}")]
    Kafka {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The broker did not take records the sink produced.
    #[error("stream '{stream}': delivery to topic '{topic}' failed: {reason}")]
    Delivery {
        /// The sink stream.
        stream: String,
        /// Its topic.
        topic: String,
        /// The broker's or librdkafka's reason.
        reason: String,
    },
    /// An I/O error, with the path or endpoint it concerns.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Arrow failed while encoding or decoding.
    #[error("{context}: {source}")]
    Arrow {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: arrow::error::ArrowError,
    },
}

/// A failure while running a query.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// A WebAssembly UDF failed (trap, time limit, memory cap, bad result).
    #[error(transparent)]
    Udf(#[from] crate::udf::UdfError),
    /// An Arrow kernel failed while evaluating an expression or operator.
    #[error("{context}: {source}")]
    Arrow {
        /// Which operator or expression.
        context: String,
        /// The underlying error.
        #[source]
        source: arrow::error::ArrowError,
    },
    /// A source or sink failed.
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    /// A checkpoint could not be written or restored.
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    /// A worker thread stopped unexpectedly.
    #[error("worker '{0}' stopped unexpectedly: {1}")]
    Worker(String, String),
    /// Any other invariant broken at run time.
    #[error("{0}")]
    Internal(String),
    /// An operator's state grew past its share of
    /// [`crate::RunOptions::max_state_bytes`].
    #[error(
        "{operator}: the state reached {:.1} MiB in {held}, past this partition's limit of {:.1} MiB\nhint: the query keeps too many windows or groups at once: use longer slides or shorter windows, a smaller allowed lateness or idle timeout, fewer group keys, or a window instead of an unwindowed GROUP BY; or raise --max-state-mib (default: half the machine's memory, shared by the partitions)",
        *bytes as f64 / 1048576.0,
        *limit as f64 / 1048576.0
    )]
    StateLimit {
        /// The operator.
        operator: String,
        /// Bytes held.
        bytes: u64,
        /// What holds them (`12 open windows`, `40000 groups`).
        held: String,
        /// The partition's limit.
        limit: u64,
    },
    /// A DECIMAL result needs more digits than its type holds.
    #[error(
        "DECIMAL overflow: {what} does not fit {ty}\nhint: a DECIMAL never drops digits silently: CAST to a wider DECIMAL (at most 38 digits) or to DOUBLE"
    )]
    DecimalOverflow {
        /// The computation or value.
        what: String,
        /// The type it must fit.
        ty: String,
    },
    /// The job failed earlier with this error (told to a later waiter).
    #[error("{0}")]
    Failed(String),
}

impl ExecError {
    /// Wraps an Arrow error with context.
    pub fn arrow(context: impl Into<String>, source: arrow::error::ArrowError) -> Self {
        Self::Arrow {
            context: context.into(),
            source,
        }
    }
}

/// Any error the engine reports.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The SQL is wrong.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// Running the query failed.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// A connector failed outside of a running query.
    #[error(transparent)]
    Connector(#[from] ConnectorError),
}

/// Result alias for planning.
pub type PlanResult<T> = Result<T, PlanError>;
/// Result alias for execution.
pub type ExecResult<T> = Result<T, ExecError>;
