//! A stand-in for the Confluent Schema Registry, started by the tests: no
//! registry server can be installed on these machines. It serves exactly
//! the three calls Eddy makes, with the request and response bodies of
//! the registry's API reference (docs.confluent.io, "Schema Registry API
//! Reference"):
//!
//! * `GET /schemas/ids/{id}` → `{"schema": "..."}`, or 404 with
//!   `{"error_code": 40403, "message": "Schema not found"}`;
//! * `GET /subjects/{subject}/versions/latest` → `{"subject", "version",
//!   "id", "schema"}`, or 404 with `{"error_code": 40401, ...}`;
//! * `POST /subjects/{subject}/versions` with `{"schema": "..."}` →
//!   `{"id": N}` (the same id for a schema registered before), or 409 when
//!   [`StandInRegistry::refuse_new_schemas`] is set.
//!
//! With [`StandInRegistry::require_authorization`] it answers 401 with
//! `{"error_code": 401, "message": "Unauthorized"}` to a request without
//! that `Authorization` header, as the real one behind basic authentication.
//!
//! It is not the real service: it checks no compatibility rules and keeps
//! everything in memory.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct State {
    /// id → schema text
    schemas: BTreeMap<u32, String>,
    /// subject → ids, oldest first
    subjects: BTreeMap<String, Vec<u32>>,
}

/// A running stand-in registry; it stops with the test process.
#[derive(Clone)]
pub struct StandInRegistry {
    url: String,
    state: Arc<Mutex<State>>,
    refuse: Arc<AtomicBool>,
    by_id_requests: Arc<AtomicUsize>,
    /// The `Authorization` header every request must carry, if any.
    authorization: Arc<Mutex<Option<String>>>,
}

impl StandInRegistry {
    /// Starts one on a free local port.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the stand-in registry");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let me = Self {
            url,
            state: Arc::default(),
            refuse: Arc::default(),
            by_id_requests: Arc::default(),
            authorization: Arc::default(),
        };
        let served = me.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let s = served.clone();
                std::thread::spawn(move || s.serve(conn));
            }
        });
        me
    }

    /// Its base URL, for `'avro.schema-registry.url'`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Registers `schema` under `subject` as a producer's serializer would;
    /// returns its id.
    pub fn register(&self, subject: &str, schema: &str) -> u32 {
        let mut st = self.state.lock().expect("registry state");
        if let Some((&id, _)) = st.schemas.iter().find(|(_, s)| s.as_str() == schema) {
            let ids = st.subjects.entry(subject.to_string()).or_default();
            if !ids.contains(&id) {
                ids.push(id);
            }
            return id;
        }
        // ids start at 1 and are not versions (as in the real registry)
        let id = st.schemas.keys().last().map_or(1, |l| l + 1);
        st.schemas.insert(id, schema.to_string());
        st.subjects.entry(subject.to_string()).or_default().push(id);
        id
    }

    /// The schema registered as `id`.
    pub fn schema(&self, id: u32) -> Option<String> {
        self.state.lock().ok()?.schemas.get(&id).cloned()
    }

    /// From now on, `POST`s of a new schema are refused (409), as the real
    /// registry refuses an incompatible one.
    pub fn refuse_new_schemas(&self) {
        self.refuse.store(true, Ordering::SeqCst);
    }

    /// From now on, a request without `Authorization: <header>` is
    /// answered 401.
    pub fn require_authorization(&self, header: &str) {
        *self.authorization.lock().expect("registry state") = Some(header.to_string());
    }

    /// How many `GET /schemas/ids/{id}` calls it answered.
    pub fn by_id_requests(&self) -> usize {
        self.by_id_requests.load(Ordering::SeqCst)
    }

    fn serve(&self, conn: TcpStream) {
        let mut reader = BufReader::new(conn.try_clone().expect("clone the connection"));
        let mut conn = conn;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let mut parts = line.split_whitespace();
            let (method, path) = (
                parts.next().unwrap_or("").to_string(),
                parts.next().unwrap_or("").to_string(),
            );
            let mut length = 0usize;
            let mut authorization = None;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 {
                    return;
                }
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap_or(0);
                }
                if let Some((k, v)) = h.split_once(':')
                    && k.eq_ignore_ascii_case("authorization")
                {
                    authorization = Some(v.trim().to_string());
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            let wanted = self.authorization.lock().expect("registry state").clone();
            let (status, answer) = if wanted.is_some() && wanted != authorization {
                (
                    401,
                    serde_json::json!({"error_code": 401, "message": "Unauthorized"}),
                )
            } else {
                self.answer(&method, &path, &body)
            };
            let reason = match status {
                200 => "OK",
                401 => "Unauthorized",
                404 => "Not Found",
                409 => "Conflict",
                _ => "Bad Request",
            };
            let text = answer.to_string();
            let reply = format!(
                "HTTP/1.1 {status} {reason}\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\nContent-Length: {}\r\n\r\n{text}",
                text.len()
            );
            if conn.write_all(reply.as_bytes()).is_err() {
                return;
            }
        }
    }

    fn answer(&self, method: &str, path: &str, body: &[u8]) -> (u16, serde_json::Value) {
        use serde_json::json;
        let segments: Vec<String> = path
            .trim_start_matches('/')
            .split('/')
            .map(decode_percent)
            .collect();
        let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
        match (method, seg.as_slice()) {
            ("GET", ["schemas", "ids", id]) => {
                self.by_id_requests.fetch_add(1, Ordering::SeqCst);
                match id.parse().ok().and_then(|id| self.schema(id)) {
                    Some(s) => (200, json!({ "schema": s })),
                    None => (
                        404,
                        json!({"error_code": 40403, "message": "Schema not found"}),
                    ),
                }
            }
            ("GET", ["subjects", subject, "versions", "latest"]) => {
                let st = self.state.lock().expect("registry state");
                match st.subjects.get(*subject) {
                    Some(ids) if !ids.is_empty() => {
                        let id = ids[ids.len() - 1];
                        (
                            200,
                            json!({"subject": subject, "version": ids.len(), "id": id,
                                   "schema": st.schemas[&id]}),
                        )
                    }
                    _ => (
                        404,
                        json!({"error_code": 40401, "message": format!("Subject '{subject}' not found.")}),
                    ),
                }
            }
            ("POST", ["subjects", subject, "versions"]) => {
                let Some(schema) = serde_json::from_slice::<serde_json::Value>(body)
                    .ok()
                    .and_then(|v| v.get("schema").and_then(|s| s.as_str()).map(str::to_string))
                else {
                    return (
                        422,
                        json!({"error_code": 42201, "message": "Invalid schema"}),
                    );
                };
                let known = self
                    .state
                    .lock()
                    .expect("registry state")
                    .schemas
                    .values()
                    .any(|s| *s == schema);
                if !known && self.refuse.load(Ordering::SeqCst) {
                    return (
                        409,
                        json!({"error_code": 409, "message": format!("Schema being registered is incompatible with an earlier schema for subject \"{subject}\"")}),
                    );
                }
                (200, json!({ "id": self.register(subject, &schema) }))
            }
            _ => (
                404,
                json!({"error_code": 404, "message": format!("HTTP 404 Not Found: {method} {path}")}),
            ),
        }
    }
}

fn decode_percent(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len() + 1
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
