//! The `format` of Kafka message values.

use crate::catalog::Options;
use crate::error::ConnectorError;

/// How message values are written (`format`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueFormat {
    /// One JSON object per message, read by the JSON type rules.
    Json(crate::connectors::json_types::JsonTypes),
    /// Avro, with its schema's source (docs/formats.md).
    Avro(crate::connectors::avro::SchemaSource),
}

impl ValueFormat {
    /// Reads `format` and its options.
    ///
    /// # Errors
    /// A bad value or a bad schema option.
    pub fn from_options(o: &Options) -> Result<Self, ConnectorError> {
        if o.choice_or("format", &["json", "avro"], "json")? == "avro" {
            let topic = o.get("topic").map(str::trim);
            return Ok(ValueFormat::Avro(
                crate::connectors::avro::SchemaSource::from_options(o, topic)?,
            ));
        }
        if let Some(k) = crate::connectors::avro::KEYS
            .iter()
            .find(|k| o.get(k).is_some())
        {
            return Err(o.error(format!("option '{k}' is for 'format' = 'avro'")));
        }
        Ok(ValueFormat::Json(
            crate::connectors::json_types::JsonTypes::from_options(o)?,
        ))
    }

    /// Whether values are bytes rather than text (dead letters carry them
    /// base64-encoded).
    pub fn is_binary(&self) -> bool {
        matches!(self, ValueFormat::Avro(_))
    }
}
