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
//!
//! A registry that wants HTTP basic authentication (Confluent Cloud: an API
//! key and secret) gets `'<format>.schema-registry.basic-auth.user-info'` =
//! `'user:password'`, or the credentials in the URL
//! (`https://user:password@host`); they never appear in messages.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::catalog::Options;
use crate::error::ConnectorError;

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
    /// The registry wants credentials, or other ones.
    #[error("{0}")]
    Unauthorized(String),
}

/// Where a registry is, and the credentials it wants.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Address {
    /// Base URL without credentials or a trailing `/`: `http://host:8081`.
    pub url: String,
    /// `user:password` for HTTP basic authentication.
    user_info: Option<String>,
    /// The option that gives them, for hints.
    option: String,
}

impl std::fmt::Debug for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Address")
            .field("url", &self.url)
            .field("user_info", &self.user_info.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Address {
    /// The registry `'<format>.schema-registry.url'` names, with
    /// `'<format>.schema-registry.basic-auth.user-info'` (or credentials in
    /// the URL); `None` without a URL.
    ///
    /// # Errors
    /// A URL that is not http(s), credentials given twice or without a
    /// `:`, or without a URL.
    pub fn from_options(o: &Options, format: &str) -> Result<Option<Self>, ConnectorError> {
        let url_key = format!("{format}.schema-registry.url");
        let auth_key = format!("{format}.schema-registry.basic-auth.user-info");
        let given = o.get(&auth_key);
        let Some(url) = o.get(&url_key) else {
            return match given {
                Some(_) => Err(o.error(format!("'{auth_key}' needs '{url_key}'"))),
                None => Ok(None),
            };
        };
        let Some((scheme, rest)) = url
            .split_once("://")
            .filter(|(s, _)| matches!(*s, "http" | "https"))
        else {
            return Err(o.error(format!("'{url_key}' is not an http:// or https:// URL")));
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (in_url, host) = match authority.rsplit_once('@') {
            Some((info, host)) => (Some(percent_decoded(info)), host),
            None => (None, authority),
        };
        let user_info = match (in_url, given) {
            (Some(_), Some(_)) => {
                return Err(o.error(format!(
                    "give the registry's credentials one way: in '{url_key}' or in '{auth_key}'"
                )));
            }
            (Some(info), None) => Some(info),
            (None, given) => given.map(str::to_string),
        };
        if user_info.as_ref().is_some_and(|i| !i.contains(':')) {
            return Err(o.error(format!(
                "the registry's credentials are 'user:password' (for Confluent Cloud 'API key:API secret'): set '{auth_key}'"
            )));
        }
        Ok(Some(Self {
            url: format!("{scheme}://{host}{path}")
                .trim_end_matches('/')
                .to_string(),
            user_info,
            option: auth_key,
        }))
    }

    /// The `Authorization` header's value, if credentials were given.
    fn authorization(&self) -> Option<String> {
        let info = self.user_info.as_ref()?;
        Some(format!(
            "Basic {}",
            crate::connectors::dead_letter::base64(info.as_bytes())
        ))
    }
}

/// `%XX` escapes decoded (credentials in a URL).
fn percent_decoded(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%')
            .then(|| s.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A registry client with its schemas cached by id (they never change).
#[derive(Debug, Clone)]
pub struct Registry {
    url: String,
    authorization: Option<String>,
    /// The credentials' option, for hints.
    option: String,
    agent: ureq::Agent,
    by_id: Arc<Mutex<HashMap<u32, String>>>,
}

impl Registry {
    /// The client of the registry at `address` this process shares (one
    /// cache for every decoder thread and query).
    pub fn shared(address: &Address) -> Self {
        static CLIENTS: std::sync::OnceLock<Mutex<HashMap<Address, Registry>>> =
            std::sync::OnceLock::new();
        let mut clients = CLIENTS
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        clients
            .entry(address.clone())
            .or_insert_with(|| Registry::new(address))
            .clone()
    }

    /// A client of the registry at `address`.
    pub fn new(address: &Address) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .into();
        Self {
            url: address.url.clone(),
            authorization: address.authorization(),
            option: address.option.clone(),
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
            self.signed(self.agent.post(&url))
                .header("Content-Type", CONTENT_TYPE)
                .send(body),
        )?;
        match status {
            200 => id_field(&body, &self.url),
            409 | 422 => Err(RegistryError::Refused(format!(
                "the schema registry at {} refused the schema for subject '{subject}': {}",
                self.url,
                message(&body, &text)
            ))),
            _ => Err(self.failed(status, &body, &text)),
        }
    }

    fn get(&self, path: &str, what: &str) -> Result<Value, RegistryError> {
        let url = format!("{}{path}", self.url);
        let (status, text, body) = self.read(self.signed(self.agent.get(&url)).call())?;
        match status {
            200 => Ok(body),
            404 => Err(RegistryError::NotFound(format!(
                "the schema registry at {} has no {what}: {}",
                self.url,
                message(&body, &text)
            ))),
            _ => Err(self.failed(status, &body, &text)),
        }
    }
}

impl Registry {
    /// `request` with the API's `Accept` and the credentials, if any.
    fn signed<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        let request = request.header("Accept", CONTENT_TYPE);
        match &self.authorization {
            Some(a) => request.header("Authorization", a),
            None => request,
        }
    }

    /// The error of an answer with an unexpected `status`.
    fn failed(&self, status: u16, body: &Value, text: &str) -> RegistryError {
        let said = message(body, text);
        match status {
            401 | 403 => {
                let what = if self.authorization.is_some() {
                    "refused the credentials given"
                } else {
                    "wants credentials"
                };
                let option = if self.option.is_empty() {
                    "the registry's 'schema-registry.basic-auth.user-info' option".to_string()
                } else {
                    format!("'{}'", self.option)
                };
                RegistryError::Unauthorized(format!(
                    "the schema registry at {} {what} (HTTP {status}: {said}); set {option} = 'user:password' (for Confluent Cloud 'API key:API secret')",
                    self.url
                ))
            }
            _ => unavailable(&self.url, &format!("HTTP {status}: {said}")),
        }
    }

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
