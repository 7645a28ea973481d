//! Stream definitions made by `CREATE STREAM`, and their `WITH` options.

use std::collections::BTreeMap;
use std::str::FromStr;

use arrow::datatypes::SchemaRef;

use crate::error::{ConnectorError, SqlPos};

/// How event time trails the data: `WATERMARK FOR col AS col - INTERVAL ...`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WatermarkSpec {
    /// The event-time column (TIMESTAMP).
    pub column: String,
    /// How far the watermark trails the largest event time seen, in ms.
    pub delay_ms: i64,
}

/// A stream: its columns, event-time watermark and connector options.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StreamDef {
    /// Name, as written (lookups are case-insensitive).
    pub name: String,
    /// Columns (all nullable).
    #[serde(with = "crate::plan::serde_plan::schema")]
    pub schema: SchemaRef,
    /// Event-time watermark, if declared.
    pub watermark: Option<WatermarkSpec>,
    /// `PRIMARY KEY (...) NOT ENFORCED`: the columns that identify a row
    /// (an upsert sink's message key); not checked, as in Flink.
    #[serde(default)]
    pub primary_key: Vec<String>,
    /// `WITH (...)` options.
    pub options: Options,
    /// The event-time options among them, checked once at `CREATE STREAM`.
    pub event_time: EventTimeOptions,
    /// Where the stream was declared.
    pub pos: SqlPos,
}

impl StreamDef {
    /// The `connector` option (empty if missing).
    pub fn connector(&self) -> &str {
        self.options.get("connector").unwrap_or("")
    }
}

/// `WITH (...)` options of one stream: keys are lower-cased, values kept as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Options {
    stream: String,
    map: BTreeMap<String, String>,
}

impl Options {
    /// Options of stream `stream`.
    pub fn new(
        stream: impl Into<String>,
        pairs: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        let map = pairs
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        Self {
            stream: stream.into(),
            map,
        }
    }

    /// The name of the stream these options belong to.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// All options, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Every option as plans show it (EXPLAIN, the web UI): secrets —
    /// passwords, keys, a registry's credentials, a SASL/JAAS config, and
    /// credentials inside a URL — as `<redacted>`.
    pub fn shown(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.map.iter().map(|(k, v)| {
            let secret = [
                "password",
                "secret",
                "user-info",
                "jaas",
                "key.pem",
                "token",
            ]
            .iter()
            .any(|s| k.contains(s));
            let v = if secret {
                "<redacted>".to_string()
            } else {
                without_url_credentials(v)
            };
            (k.clone(), v)
        })
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    /// The value of `key`.
    ///
    /// # Errors
    /// [`ConnectorError::Config`] naming the missing option.
    pub fn require(&self, key: &str) -> Result<&str, ConnectorError> {
        self.get(key)
            .ok_or_else(|| self.error(format!("missing option '{key}'; add it to WITH (...)")))
    }

    /// The value of `key` parsed as `T`, or `default` when unset.
    ///
    /// # Errors
    /// [`ConnectorError::Config`] when the value does not parse.
    pub fn parse_or<T: FromStr>(&self, key: &str, default: T) -> Result<T, ConnectorError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| {
                self.error(format!(
                    "option '{key}' = '{v}' is not a valid {}",
                    std::any::type_name::<T>()
                        .rsplit("::")
                        .next()
                        .unwrap_or("value")
                ))
            }),
        }
    }

    /// A boolean option (`true`/`false`), or `default`.
    ///
    /// # Errors
    /// [`ConnectorError::Config`] when the value is neither.
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, ConnectorError> {
        match self.get(key).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if v == "true" => Ok(true),
            Some(v) if v == "false" => Ok(false),
            Some(v) => Err(self.error(format!("option '{key}' = '{v}' must be 'true' or 'false'"))),
        }
    }

    /// One of `choices` (case-insensitive), or `default`.
    ///
    /// # Errors
    /// [`ConnectorError::Config`] listing the valid choices.
    pub fn choice_or<'a>(
        &self,
        key: &str,
        choices: &[&'a str],
        default: &'a str,
    ) -> Result<&'a str, ConnectorError> {
        let Some(v) = self.get(key) else {
            return Ok(default);
        };
        choices
            .iter()
            .find(|c| c.eq_ignore_ascii_case(v.trim()))
            .copied()
            .ok_or_else(|| {
                self.error(format!(
                    "option '{key}' = '{v}' must be one of: {}",
                    choices.join(", ")
                ))
            })
    }

    /// A duration such as `'5 s'`, `'500 ms'`, `'2 minutes'` or `'1h'`, in
    /// ms, or `default`.
    ///
    /// # Errors
    /// [`ConnectorError::Config`] when the value is not a non-negative duration.
    pub fn duration_ms_or(&self, key: &str, default: i64) -> Result<i64, ConnectorError> {
        let Some(v) = self.get(key) else {
            return Ok(default);
        };
        parse_duration_ms(v).ok_or_else(|| {
            self.error(format!(
                "option '{key}' = '{v}' is not a duration; write e.g. '5 s', '500 ms', '2 minutes'"
            ))
        })
    }

    /// Fails on any key not in `known` or in [`EventTimeOptions::KEYS`] (a
    /// typo must not pass silently).
    ///
    /// # Errors
    /// [`ConnectorError::Config`] naming the unknown key and listing the known ones.
    pub fn check_known(&self, known: &[&str]) -> Result<(), ConnectorError> {
        for k in self.map.keys() {
            if k != "connector"
                && !known.contains(&k.as_str())
                && !EventTimeOptions::KEYS.contains(&k.as_str())
            {
                return Err(self.error(format!(
                    "unknown option '{k}' for connector '{}'; known options: {}",
                    self.get("connector").unwrap_or(""),
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// A configuration error for this stream.
    pub fn error(&self, message: impl Into<String>) -> ConnectorError {
        ConnectorError::Config {
            stream: self.stream.clone(),
            message: message.into(),
        }
    }
}

/// A duration in ms: a non-negative integer and a unit (ms, s, m/min, h,
/// or their long names), with or without a space.
pub fn parse_duration_ms(text: &str) -> Option<i64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: i64 = n.parse().ok()?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "ms" | "millisecond" | "milliseconds" => 1,
        "s" | "sec" | "second" | "seconds" => 1000,
        "m" | "min" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        _ => return None,
    };
    n.checked_mul(scale)
}

/// What happens to a row that arrives after its window has closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum LatePolicy {
    /// Dropped and counted.
    #[default]
    Drop,
    /// Counted and written, with the reason, to the dead-letter sink.
    DeadLetter,
}

/// The event-time options any stream with a watermark may set in `WITH (...)`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct EventTimeOptions {
    /// How long a window stays open after the watermark passes its end (ms).
    pub allowed_lateness_ms: i64,
    /// What happens to rows later than that.
    pub late_policy: LatePolicy,
    /// JSON-lines file that receives dead letters.
    pub dead_letter_path: Option<String>,
    /// After this long without input, event time advances with wall-clock time (ms).
    pub idle_timeout_ms: Option<i64>,
}

impl EventTimeOptions {
    /// The option keys, accepted by every connector.
    pub const KEYS: &'static [&'static str] = &[
        "allowed_lateness",
        "late_policy",
        "dead_letter.path",
        "idle_timeout",
    ];

    /// Reads them from a stream's options.
    ///
    /// # Errors
    /// [`ConnectorError::Config`] for a bad duration or policy, or a
    /// `dead_letter` policy without a `dead_letter.path`.
    pub fn from_options(o: &Options) -> Result<Self, ConnectorError> {
        let late_policy = match o.choice_or("late_policy", &["drop", "dead_letter"], "drop")? {
            "dead_letter" => LatePolicy::DeadLetter,
            _ => LatePolicy::Drop,
        };
        let dead_letter_path = o.get("dead_letter.path").map(str::to_string);
        if late_policy == LatePolicy::DeadLetter && dead_letter_path.is_none() {
            return Err(o.error(
                "'late_policy' = 'dead_letter' needs 'dead_letter.path', the JSON-lines file that receives late rows",
            ));
        }
        let idle_timeout_ms = match o.get("idle_timeout") {
            None => None,
            Some(_) => Some(o.duration_ms_or("idle_timeout", 0)?.max(1)),
        };
        Ok(Self {
            allowed_lateness_ms: o.duration_ms_or("allowed_lateness", 0)?,
            late_policy,
            dead_letter_path,
            idle_timeout_ms,
        })
    }
}

/// `value` with the credentials of a URL in it (`https://user:pw@host`)
/// replaced by `<redacted>`.
fn without_url_credentials(value: &str) -> String {
    let Some(at) = value.find("://").map(|i| i + 3) else {
        return value.to_string();
    };
    let authority_end = value[at..].find('/').map_or(value.len(), |i| at + i);
    match value[at..authority_end].rfind('@') {
        Some(i) => format!("{}<redacted>{}", &value[..at], &value[at + i..]),
        None => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> Options {
        Options::new(
            "s",
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn plans_show_no_secrets() {
        let o = opts(&[
            ("properties.sasl.password", "pw1"),
            ("properties.sasl.jaas.config", "x password=\"pw2\";"),
            ("avro.schema-registry.basic-auth.user-info", "KEY:pw3"),
            (
                "protobuf.schema-registry.url",
                "https://KEY:pw4@r.cloud/base",
            ),
            ("properties.ssl.key.pem", "-----BEGIN"),
            ("topic", "bids"),
            ("avro.schema-registry.url", "http://r:8081"),
        ]);
        let shown: Vec<(String, String)> = o.shown().collect();
        let text = format!("{shown:?}");
        for secret in ["pw1", "pw2", "pw3", "pw4", "BEGIN"] {
            assert!(!text.contains(secret), "{text}");
        }
        let value = |k: &str| {
            shown
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(value("topic"), Some("bids"));
        assert_eq!(value("avro.schema-registry.url"), Some("http://r:8081"));
        assert_eq!(
            value("protobuf.schema-registry.url"),
            Some("https://<redacted>@r.cloud/base")
        );
        assert_eq!(value("properties.sasl.password"), Some("<redacted>"));
    }

    #[test]
    fn parses_and_reports_bad_values() {
        let o = opts(&[("Events", "10"), ("rate", "x"), ("follow", "TRUE")]);
        assert_eq!(o.parse_or("events", 0u64).unwrap(), 10);
        let e = o.parse_or("rate", 1u64).unwrap_err().to_string();
        assert_eq!(e, "stream 's': option 'rate' = 'x' is not a valid u64");
        assert!(o.bool_or("follow", false).unwrap());
    }

    #[test]
    fn event_time_options_parse_and_explain_mistakes() {
        let o = opts(&[
            ("allowed_lateness", "5 s"),
            ("late_policy", "dead_letter"),
            ("dead_letter.path", "late.jsonl"),
            ("idle_timeout", "2min"),
        ]);
        let e = EventTimeOptions::from_options(&o).unwrap();
        assert_eq!(e.allowed_lateness_ms, 5000);
        assert_eq!(e.late_policy, LatePolicy::DeadLetter);
        assert_eq!(e.idle_timeout_ms, Some(120_000));
        assert_eq!(parse_duration_ms("250ms"), Some(250));
        assert_eq!(parse_duration_ms("1 hour"), Some(3_600_000));
        assert_eq!(parse_duration_ms("-1 s"), None);
        assert_eq!(parse_duration_ms("5 parsecs"), None);
        let bad = EventTimeOptions::from_options(&opts(&[("late_policy", "dead_letter")]));
        assert!(bad.unwrap_err().to_string().contains("dead_letter.path"));
        let bad = EventTimeOptions::from_options(&opts(&[("allowed_lateness", "soon")]));
        assert!(bad.unwrap_err().to_string().contains("'5 s'"));
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let o = opts(&[("connector", "file"), ("pth", "x")]);
        let e = o.check_known(&["path"]).unwrap_err().to_string();
        assert!(e.contains("unknown option 'pth'"), "{e}");
    }
}
