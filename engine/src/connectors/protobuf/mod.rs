//! `format = 'protobuf'`: Kafka message values as Protocol Buffers messages
//! of a type from a compiled descriptor set (`'protobuf.descriptor.file'`,
//! `'protobuf.message'`), decoded by Eddy's own wire reader straight into
//! Arrow builders, only the fields the query reads.
//!
//! Messages are flat: each declared column reads the field of its name;
//! `google.protobuf.Timestamp` and the wrapper types (`Int64Value`, …) read
//! as scalars. Nested messages and repeated fields are refused when the
//! stream is declared, naming the field (flatten them upstream). With
//! `'protobuf.confluent' = 'true'` values carry the Confluent wire format's
//! prefix (a 0 byte, a 4-byte schema id, the message indexes).

use arrow::datatypes::Schema;

use crate::catalog::Options;
use crate::error::ConnectorError;
use crate::types::SqlType;

pub(crate) mod decode;
pub(crate) mod descriptor;
pub(crate) mod encode;
pub(crate) mod proto_text;
pub(crate) mod wire;

use descriptor::{FieldDef, Kind, MessageDef};

/// The options of `format = 'protobuf'`.
pub const KEYS: &[&str] = &[
    "protobuf.descriptor.file",
    "protobuf.message",
    "protobuf.confluent",
    "protobuf.schema-registry.url",
    "protobuf.schema-registry.subject",
    "protobuf.schema-registry.basic-auth.user-info",
];

/// Where a stream's message type comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProtoSchema {
    /// A compiled descriptor set (read when the stream is declared).
    Given(MessageDef),
    /// A Confluent schema registry: a source reads as the subject's latest
    /// schema (`message`, or its first message type); a sink registers the
    /// schema of its columns.
    Registry {
        registry: crate::connectors::avro::registry::Address,
        subject: String,
        message: Option<String>,
    },
}

/// A stream's message type and framing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtoFormat {
    pub(crate) schema: ProtoSchema,
    /// Values carry the Confluent wire format's prefix (always with a registry).
    pub(crate) confluent: bool,
}

impl ProtoFormat {
    /// Reads the `protobuf.*` options: a descriptor set is read here.
    ///
    /// # Errors
    /// A missing option, an unreadable file, a set without the message.
    pub fn from_options(o: &Options) -> Result<Self, ConnectorError> {
        if let Some(registry) =
            crate::connectors::avro::registry::Address::from_options(o, "protobuf")?
        {
            if o.get("protobuf.descriptor.file").is_some() {
                return Err(o.error(
                    "give the Protobuf schema one way: 'protobuf.descriptor.file' or 'protobuf.schema-registry.url'",
                ));
            }
            let topic = o.get("topic").map(str::trim).filter(|t| !t.contains(','));
            let subject = match (o.get("protobuf.schema-registry.subject"), topic) {
                (Some(s), _) => s.to_string(),
                (None, Some(t)) => format!("{t}-value"),
                (None, None) => {
                    return Err(o.error(
                        "name the registry subject with 'protobuf.schema-registry.subject' (the default, '<topic>-value', needs one topic)",
                    ));
                }
            };
            return Ok(Self {
                schema: ProtoSchema::Registry {
                    registry,
                    subject,
                    message: o.get("protobuf.message").map(str::to_string),
                },
                confluent: true,
            });
        }
        let path = o.get("protobuf.descriptor.file").ok_or_else(|| {
            o.error(
                "format 'protobuf' needs 'protobuf.descriptor.file', a compiled descriptor set (protoc --include_imports --descriptor_set_out=x.desc x.proto), and 'protobuf.message'; or 'protobuf.schema-registry.url'",
            )
        })?;
        let name = o.require("protobuf.message")?;
        let set = std::fs::read(path).map_err(|e| {
            o.error(format!(
                "cannot read 'protobuf.descriptor.file' = '{path}': {e}"
            ))
        })?;
        let message = descriptor::message_from_set(&set, name)
            .map_err(|e| o.error(format!("'{path}': {e}")))?;
        Ok(Self {
            schema: ProtoSchema::Given(message),
            confluent: o.bool_or("protobuf.confluent", false)?,
        })
    }

    /// The message a source reads: the given one, or the one of the
    /// subject's latest schema (fetched now).
    ///
    /// # Errors
    /// An unreachable registry, an unknown subject, source not understood.
    pub(crate) fn source_message(&self) -> Result<MessageDef, String> {
        match &self.schema {
            ProtoSchema::Given(m) => Ok(m.clone()),
            ProtoSchema::Registry {
                registry,
                subject,
                message,
            } => {
                let (_, text) = crate::connectors::avro::registry::Registry::shared(registry)
                    .latest(subject)
                    .map_err(|e| format!("{e}; register the topic's schema under subject '{subject}', or name another with 'protobuf.schema-registry.subject'"))?;
                proto_text::message_from_text(&text, message.as_deref())
                    .map_err(|e| format!("the registry's schema for subject '{subject}': {e}"))
            }
        }
    }
}

/// Whether a column of type `sql` reads a field of this kind.
fn reads_as(kind: &Kind, sql: SqlType) -> bool {
    let integer = matches!(
        kind,
        Kind::Int | Kind::UInt64 | Kind::SInt | Kind::Fixed32 { .. } | Kind::Fixed64 { .. }
    );
    match (kind, sql) {
        (Kind::Wrapper(inner), _) => reads_as(inner, sql),
        (_, SqlType::BigInt | SqlType::Int) => integer,
        (_, SqlType::Double) => integer || matches!(kind, Kind::Double | Kind::Float),
        (Kind::Bool, SqlType::Boolean) => true,
        (Kind::String | Kind::Enum(_), SqlType::Varchar) => true,
        (Kind::Timestamp, SqlType::Timestamp) => true,
        // exact decimals travel as text in protobuf
        (Kind::String, SqlType::Decimal(..)) => true,
        _ => false,
    }
}

fn suggestion(kind: &Kind) -> &'static str {
    match kind {
        Kind::Double | Kind::Float => "DOUBLE",
        Kind::Int | Kind::UInt64 | Kind::SInt | Kind::Fixed32 { .. } | Kind::Fixed64 { .. } => {
            "BIGINT"
        }
        Kind::Bool => "BOOLEAN",
        Kind::String | Kind::Enum(_) => "VARCHAR",
        Kind::Timestamp => "TIMESTAMP",
        Kind::Wrapper(inner) => suggestion(inner),
        Kind::Bytes | Kind::Message(_) => "",
    }
}

/// Checks every column of `schema` against the message: each must name a
/// field it reads (docs/formats.md has the table).
///
/// # Errors
/// The first column without a field, or whose field is of another type,
/// repeated or a nested message, named.
pub(crate) fn check_columns(schema: &Schema, message: &MessageDef) -> Result<(), String> {
    for f in schema.fields() {
        let Some(sql) = SqlType::from_arrow(f.data_type()) else {
            continue;
        };
        let Some(i) = message.field_of(f.name()) else {
            let names: Vec<&str> = message.fields.iter().map(|d| d.name.as_str()).collect();
            return Err(format!(
                "column '{}' is not a field of message {} (its fields: {})",
                f.name(),
                message.name,
                names.join(", ")
            ));
        };
        let FieldDef {
            name,
            kind,
            repeated,
            ..
        } = &message.fields[i];
        if *repeated {
            return Err(format!(
                "column '{}' reads the repeated field '{name}' of {}: Eddy reads one value per field; flatten it upstream",
                f.name(),
                message.name
            ));
        }
        if let Kind::Message(m) = kind {
            return Err(format!(
                "column '{}' reads field '{name}', the nested message {m}: nested messages are not flattened; flatten them upstream (Timestamp and the wrapper types are read)",
                f.name()
            ));
        }
        if !reads_as(kind, sql) {
            let hint = match suggestion(kind) {
                "" => "no column type reads it".to_string(),
                t => format!("declare the column as {t}"),
            };
            return Err(format!(
                "column '{}' is {sql} but field '{name}' of {} is {}; {hint}",
                f.name(),
                message.name,
                kind.describe()
            ));
        }
    }
    Ok(())
}
