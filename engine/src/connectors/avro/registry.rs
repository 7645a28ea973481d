//! A client of the Confluent Schema Registry REST API (the three calls
//! Eddy makes; docs.confluent.io, "Schema Registry API Reference"):
//!
//! * `GET /schemas/ids/{id}` → `{"schema": "<schema text>"}`: the schema a
//!   message's id names;
//! * `GET /subjects/{subject}/versions/latest` →
//!   `{"subject", "id", "version", "schema"}`: what a source reads as;
//! * `POST /subjects/{subject}/versions` with `{"schema": "<text>"}` →
//!   `{"id": N}`: what a sink writes with (registered, or found when the
//!   subject has it already).
//!
//! Errors come back as `{"error_code": 40403, "message": "..."}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// The content type of the registry's API (v1).
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Why a registry call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The registry answered that it has no such schema or subject.
    #[error("{0}")]
    NotFound(String),
    /// The registry refused the schema (incompatible with the subject's).
    #[error("{0}")]
    Refused(String),
    /// The registry could not be reached or answered nonsense.
    #[error("{0}")]
    Unavailable(String),
}

/// A registry client with its schemas cached by id (they never change).
#[derive(Debug, Clone)]
pub struct Registry {
    url: String,
    agent: ureq::Agent,
    by_id: Arc<Mutex<HashMap<u32, String>>>,
}

impl Registry {
    /// The client of the registry at `url` this process shares (one cache
    /// for every decoder thread and query).
    pub fn shared(url: &str) -> Self {
        static CLIENTS: std::sync::OnceLock<Mutex<HashMap<String, Registry>>> =
            std::sync::OnceLock::new();
        let url = url.trim_end_matches('/');
        let mut clients = CLIENTS
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        clients
            .entry(url.to_string())
            .or_insert_with(|| Registry::new(url))
            .clone()
    }

    /// A client of the registry at `url` (`http://host:8081`).
    pub fn new(url: &str) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .into();
        Self {
            url: url.trim_end_matches('/').to_string(),
            agent,
            by_id: Arc::default(),
        }
    }

    /// The registry's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema text of id `id`.
    ///
    /// # Errors
    /// An unknown id ([`RegistryError::NotFound`]) or an unreachable registry.
    pub fn schema_by_id(&self, id: u32) -> Result<String, RegistryError> {
        if let Some(s) = self.by_id.lock().ok().and_then(|m| m.get(&id).cloned()) {
            return Ok(s);
        }
        let body = self.get(&format!("/schemas/ids/{id}"), &format!("schema id {id}"))?;
        let schema = text_field(&body, "schema", &self.url)?;
        if let Ok(mut m) = self.by_id.lock() {
            m.insert(id, schema.clone());
        }
        Ok(schema)
    }

    /// The latest version of `subject`: its id and schema text.
    ///
    /// # Errors
    /// An unknown subject or an unreachable registry.
    pub fn latest(&self, subject: &str) -> Result<(u32, String), RegistryError> {
        let body = self.get(
            &format!("/subjects/{}/versions/latest", path_segment(subject)),
            &format!("subject '{subject}'"),
        )?;
        let id = id_field(&body, &self.url)?;
        let schema = text_field(&body, "schema", &self.url)?;
        if let Ok(mut m) = self.by_id.lock() {
            m.insert(id, schema.clone());
        }
        Ok((id, schema))
    }

    /// Registers `schema` under `subject` (or finds it there) and returns its id.
    ///
    /// # Errors
    /// A schema the subject's compatibility rule refuses, or an unreachable registry.
    pub fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        self.register_typed(subject, schema, None)
    }

    /// As [`Registry::register`], for a schema of type `schema_type`
    /// (`PROTOBUF`; `None`: Avro, the registry's default).
    ///
    /// # Errors
    /// As [`Registry::register`].
    pub fn register_typed(
        &self,
        subject: &str,
        schema: &str,
        schema_type: Option<&str>,
    ) -> Result<u32, RegistryError> {
        let url = format!("{}/subjects/{}/versions", self.url, path_segment(subject));
        let mut body = serde_json::json!({ "schema": schema });
        if let Some(t) = schema_type {
            body["schemaType"] = t.into();
        }
        let body = body.to_string();
        let (status, text, body) = self.read(
            self.agent
                .post(&url)
                .header("Content-Type", CONTENT_TYPE)
                .header("Accept", CONTENT_TYPE)
                .send(body),
        )?;
        match status {
            200 => id_field(&body, &self.url),
            409 | 422 => Err(RegistryError::Refused(format!(
                "the schema registry at {} refused the schema for subject '{subject}': {}",
                self.url,
                message(&body, &text)
            ))),
            _ => Err(unavailable(
                &self.url,
                &format!("HTTP {status}: {}", message(&body, &text)),
            )),
        }
    }

    fn get(&self, path: &str, what: &str) -> Result<Value, RegistryError> {
        let url = format!("{}{path}", self.url);
        let (status, text, body) =
            self.read(self.agent.get(&url).header("Accept", CONTENT_TYPE).call())?;
        match status {
            200 => Ok(body),
            404 => Err(RegistryError::NotFound(format!(
                "the schema registry at {} has no {what}: {}",
                self.url,
                message(&body, &text)
            ))),
            _ => Err(unavailable(
                &self.url,
                &format!("HTTP {status}: {}", message(&body, &text)),
            )),
        }
    }
}

impl Registry {
    /// An answer's status, text and JSON (`null` when it is not JSON).
    fn read(
        &self,
        answer: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<(u16, String, Value), RegistryError> {
        let mut resp = answer.map_err(|e| unavailable(&self.url, &e.to_string()))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| unavailable(&self.url, &e.to_string()))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok((status, text, body))
    }
}

fn unavailable(url: &str, why: &str) -> RegistryError {
    RegistryError::Unavailable(format!("the schema registry at {url} failed: {why}"))
}

/// The registry's error message, or the body itself.
fn message(body: &Value, text: &str) -> String {
    match (
        body.get("error_code"),
        body.get("message").and_then(Value::as_str),
    ) {
        (Some(code), Some(m)) => format!("{m} (error {code})"),
        _ => text.chars().take(200).collect(),
    }
}

fn text_field(body: &Value, key: &str, url: &str) -> Result<String, RegistryError> {
    body.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| unavailable(url, &format!("the answer has no '{key}': {body}")))
}

fn id_field(body: &Value, url: &str) -> Result<u32, RegistryError> {
    body.get("id")
        .and_then(Value::as_u64)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| unavailable(url, &format!("the answer has no schema 'id': {body}")))
}

/// A subject as one URL path segment (percent-encoded).
fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
