//! The `format` of Kafka message values.

use crate::catalog::Options;
use crate::connectors::avro::SchemaSource;
use crate::connectors::protobuf::ProtoFormat;
use crate::error::ConnectorError;

/// How message values are written (`format`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueFormat {
    /// One JSON object per message, read by the JSON type rules.
    Json(crate::connectors::json_types::JsonTypes),
    /// Avro, with its schema's source (docs/formats.md).
    Avro(SchemaSource),
    /// Protocol Buffers, with the message type (docs/formats.md).
    Protobuf(Box<ProtoFormat>),
}

impl ValueFormat {
    /// Reads `format` and its options.
    ///
    /// # Errors
    /// A bad value or a bad schema option.
    pub fn from_options(o: &Options) -> Result<Self, ConnectorError> {
        let format = o.choice_or("format", &["json", "avro", "protobuf"], "json")?;
        let misplaced = |keys: &[&str], of: &str| match keys.iter().find(|k| o.get(k).is_some()) {
            Some(k) if format != of => {
                Err(o.error(format!("option '{k}' is for 'format' = '{of}'")))
            }
            _ => Ok(()),
        };
        misplaced(crate::connectors::avro::KEYS, "avro")?;
        misplaced(crate::connectors::protobuf::KEYS, "protobuf")?;
        Ok(match format {
            "avro" => {
                let topic = o.get("topic").map(str::trim);
                ValueFormat::Avro(SchemaSource::from_options(o, topic)?)
            }
            "protobuf" => ValueFormat::Protobuf(Box::new(ProtoFormat::from_options(o)?)),
            _ => ValueFormat::Json(crate::connectors::json_types::JsonTypes::from_options(o)?),
        })
    }

    /// Whether values are bytes rather than text (dead letters carry them
    /// base64-encoded).
    pub fn is_binary(&self) -> bool {
        !matches!(self, ValueFormat::Json(_))
    }
}
