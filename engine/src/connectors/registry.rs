//! The connectors Eddy knows, behind one trait: each validates its options
//! at `CREATE STREAM`, declares the system columns it adds and what EXPLAIN
//! shows of it, and opens sources and sinks. Nothing outside `connectors/`
//! names a specific connector; adding one is its own file plus one line in
//! [`CONNECTORS`].

use arrow::datatypes::{Field, SchemaRef};

use crate::catalog::StreamDef;
use crate::connectors::{Sink, Source, SourceContext};
use crate::error::ConnectorError;

/// A kind of stream Eddy reads from or writes to (`connector = '...'`).
pub trait Connector: Send + Sync {
    /// The `connector` option's value.
    fn name(&self) -> &'static str;

    /// Checks a stream's options when it is created.
    ///
    /// # Errors
    /// [`ConnectorError::Config`] naming the bad option and what to write.
    fn validate(&self, def: &StreamDef) -> Result<(), ConnectorError>;

    /// The columns of a stream that declares none (e.g. a generator's), or
    /// `None` when columns must be declared.
    ///
    /// # Errors
    /// Bad options that make the columns unknowable.
    fn inferred_schema(&self, def: &StreamDef) -> Result<Option<SchemaRef>, ConnectorError> {
        let _ = def;
        Ok(None)
    }

    /// Columns the connector appends to a source stream's declared ones
    /// (metadata such as Kafka's `_topic`): hidden from `*`, never written.
    fn system_fields(&self) -> Vec<Field> {
        Vec::new()
    }

    /// The (topic, partition) system columns of a partitioned source, for
    /// per-partition watermarks.
    fn partition_columns(&self) -> Option<(&'static str, &'static str)> {
        None
    }

    /// What EXPLAIN shows of a source beyond its options (defaults left implicit).
    fn explain_params(&self, def: &StreamDef) -> Vec<(String, String)> {
        let _ = def;
        Vec::new()
    }

    /// What a sink of this connector guarantees across a crash when the
    /// query takes checkpoints (EXPLAIN shows it).
    fn delivery(&self, def: &StreamDef) -> &'static str {
        let _ = def;
        "at-least-once"
    }

    /// Whether a sink of this connector writes each row exactly once
    /// across a crash when the query takes checkpoints.
    fn exactly_once(&self, def: &StreamDef) -> bool {
        let _ = def;
        false
    }

    /// How a sink of this connector writes a changelog (rows that update
    /// earlier ones). `None` (most): as rows with their `_op` column, which
    /// a sink declared with columns must declare first. `Some(how)`: it
    /// takes the `_op` column without its being declared, and does `how`
    /// with it (EXPLAIN says so).
    fn changelog_writes(&self) -> Option<&'static str> {
        None
    }

    /// Whether streams of this connector can be read.
    fn can_read(&self) -> bool {
        false
    }

    /// Whether streams of this connector can be written.
    fn can_write(&self) -> bool {
        false
    }

    /// Opens a source producing batches in `def.schema`.
    ///
    /// # Errors
    /// Bad options, a resource that cannot be opened.
    fn open_source(
        &self,
        def: &StreamDef,
        ctx: &SourceContext,
    ) -> Result<Box<dyn Source>, ConnectorError> {
        let _ = ctx;
        Err(def.options.error(format!(
            "connector '{}' cannot be read from; use {}",
            self.name(),
            listed(|c| c.can_read())
        )))
    }

    /// Opens a sink receiving batches of `schema`.
    ///
    /// # Errors
    /// Bad options, a resource that cannot be created.
    /// Whether reading a stream of this connector ends by itself.
    fn is_bounded(&self, def: &StreamDef) -> bool {
        let _ = def;
        false
    }

    fn open_sink(
        &self,
        def: &StreamDef,
        schema: SchemaRef,
        ctx: &crate::connectors::SinkContext,
    ) -> Result<Box<dyn Sink>, ConnectorError> {
        let _ = (schema, ctx);
        Err(def.options.error(format!(
            "connector '{}' cannot be written to; use {}",
            self.name(),
            listed(|c| c.can_write())
        )))
    }
}

/// Every connector, in the order messages list them.
pub static CONNECTORS: &[&dyn Connector] = &[
    &super::nexmark::Nexmark,
    &super::file::FileConnector,
    &super::kafka::Kafka,
    &super::kafka::UpsertKafka,
    &super::stdout::Stdout,
    &super::blackhole::Blackhole,
];

/// The connector called `name` (case-insensitive).
pub fn find(name: &str) -> Option<&'static dyn Connector> {
    CONNECTORS
        .iter()
        .copied()
        .find(|c| c.name().eq_ignore_ascii_case(name))
}

/// The names of the connectors that pass `which`, as "a, b or c".
pub fn listed(which: impl Fn(&dyn Connector) -> bool) -> String {
    joined(which, |n| n.to_string())
}

/// The names of the connectors that pass `which`, quoted: "'a', 'b' or 'c'".
pub fn listed_quoted(which: impl Fn(&dyn Connector) -> bool) -> String {
    joined(which, |n| format!("'{n}'"))
}

fn joined(which: impl Fn(&dyn Connector) -> bool, name: impl Fn(&str) -> String) -> String {
    let names: Vec<String> = CONNECTORS
        .iter()
        .filter(|c| which(**c))
        .map(|c| name(c.name()))
        .collect();
    match names.split_last() {
        Some((tail, head)) if !head.is_empty() => format!("{} or {tail}", head.join(", ")),
        Some((tail, _)) => tail.clone(),
        None => String::new(),
    }
}

impl StreamDef {
    /// Whether `name` is a system column of this stream's connector
    /// (case-insensitive): read, hidden from `*`, never written.
    pub fn is_system_column(&self, name: &str) -> bool {
        find(self.connector()).is_some_and(|c| {
            c.system_fields()
                .iter()
                .any(|f| f.name().eq_ignore_ascii_case(name))
        })
    }

    /// The (topic, partition) column indexes of a partitioned source.
    pub fn partition_columns(&self) -> Option<(usize, usize)> {
        let (t, p) = find(self.connector())?.partition_columns()?;
        Some((self.schema.index_of(t).ok()?, self.schema.index_of(p).ok()?))
    }

    /// What EXPLAIN shows of this stream as a source beyond its options.
    pub fn explain_params(&self) -> Vec<(String, String)> {
        find(self.connector()).map_or_else(Vec::new, |c| c.explain_params(self))
    }
}

/// The connector of `def`.
///
/// # Errors
/// [`ConnectorError::Config`]: no `connector` option, or an unknown one.
pub fn of(def: &StreamDef) -> Result<&'static dyn Connector, ConnectorError> {
    let all = CONNECTORS
        .iter()
        .map(|c| c.name())
        .collect::<Vec<_>>()
        .join(", ");
    match def.connector() {
        "" => Err(def
            .options
            .error(format!("missing option 'connector'; use one of: {all}"))),
        name => find(name).ok_or_else(|| {
            def.options
                .error(format!("unknown connector '{name}'; use one of: {all}"))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connectors_are_found_by_name_and_listed_by_what_they_do() {
        assert_eq!(find("KAFKA").map(|c| c.name()), Some("kafka"));
        assert!(find("ftp").is_none());
        assert_eq!(listed(|c| c.can_read()), "nexmark, file or kafka");
        assert_eq!(
            listed_quoted(|c| c.can_write()),
            "'file', 'kafka', 'upsert-kafka', 'stdout' or 'blackhole'"
        );
        // only Kafka streams carry system columns and per-partition watermarks
        let partitioned: Vec<&str> = CONNECTORS
            .iter()
            .filter(|c| c.partition_columns().is_some() && !c.system_fields().is_empty())
            .map(|c| c.name())
            .collect();
        assert_eq!(partitioned, ["kafka"]);
    }
}
