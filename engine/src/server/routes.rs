//! The HTTP routes. Every `/api` route checks `Host` and the credential
//! before anything reads a body; state-changing routes check `Origin`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use warp::http::{Method, StatusCode};
use warp::{Filter, Rejection, Reply};

use super::State;
use super::auth::{self, Credential};
use super::error::{self, ApiError};
use super::queries::plan_one;
use super::ui;
use super::views::{live_json, progress_json};
use crate::job::JobEvent;

type Shared = Arc<State>;

/// A body holding SQL.
#[derive(Deserialize)]
struct SqlBody {
    sql: String,
}

/// A body creating a query.
#[derive(Deserialize)]
struct CreateBody {
    name: String,
    sql: String,
}

/// Every route, with errors as JSON.
pub(super) fn routes(
    state: Shared,
) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    let healthz = warp::path("healthz")
        .and(warp::path::end())
        .and(warp::get())
        .and(with(state.clone()))
        .map(|s: Shared| {
            warp::reply::json(&serde_json::json!({
                "status": "ok",
                "queries": s.queries.list().len(),
            }))
        });
    let metrics = warp::path("metrics")
        .and(warp::path::end())
        .and(warp::get())
        .and(with(state.clone()))
        .map(|s: Shared| {
            warp::reply::with_header(
                s.exporter.render(),
                "content-type",
                "text/plain; version=0.0.4; charset=utf-8",
            )
        });
    let login = warp::path("login")
        .and(warp::path::end())
        .and(warp::get())
        .and(with(state.clone()))
        .and(warp::query::<std::collections::HashMap<String, String>>())
        .map(login);
    let index = warp::path::end().and(warp::get()).map(|| {
        warp::reply::with_header(
            warp::reply::html(ui::INDEX),
            "content-security-policy",
            ui::CSP,
        )
        .into_response()
    });
    let files = warp::path("static")
        .and(warp::path::tail())
        .and(warp::get())
        .map(|tail: warp::path::Tail| match ui::file(tail.as_str()) {
            Some((ty, text)) => {
                let r = warp::reply::with_header(text, "content-type", ty);
                warp::reply::with_header(r, "content-security-policy", ui::CSP).into_response()
            }
            None => error::reply(&ApiError::not_found("file", tail.as_str())),
        });
    let api = warp::path("api").and(authorized(state.clone()));
    healthz
        .or(metrics)
        .or(login)
        .or(index)
        .or(files)
        .or(api.and(api_routes(state)))
        .recover(recover)
}

/// The `/api` routes (after the credential check).
fn api_routes(state: Shared) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let sql_limit = state.max_sql_bytes;
    let queries = warp::path("queries");
    let check = queries
        .and(warp::path("check"))
        .and(warp::path::end())
        .and(warp::post())
        .and(warp::body::content_length_limit(sql_limit))
        .and(warp::body::json())
        .and(with(state.clone()))
        .and_then(|b: SqlBody, s: Shared| blocking(move || check(&s, &b.sql)));
    let explain = queries
        .and(warp::path("explain"))
        .and(warp::path::end())
        .and(warp::post())
        .and(warp::body::content_length_limit(sql_limit))
        .and(warp::body::json())
        .and(with(state.clone()))
        .and_then(|b: SqlBody, s: Shared| blocking(move || explain(&s, &b.sql)));
    let list = queries
        .and(warp::path::end())
        .and(warp::get())
        .and(with(state.clone()))
        .map(|s: Shared| warp::reply::json(&s.queries.list()).into_response());
    let create = queries
        .and(warp::path::end())
        .and(warp::post())
        .and(warp::body::content_length_limit(sql_limit))
        .and(warp::body::json())
        .and(with(state.clone()))
        .and_then(|b: CreateBody, s: Shared| {
            blocking(move || {
                let udfs = s.udfs();
                let v = s.queries.create(&b.name, &b.sql, &udfs)?;
                Ok(
                    warp::reply::with_status(warp::reply::json(&v), StatusCode::CREATED)
                        .into_response(),
                )
            })
        });
    let get = queries
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::get())
        .and(with(state.clone()))
        .and_then(|name: String, s: Shared| {
            blocking(move || Ok(warp::reply::json(&s.queries.get(&name)?).into_response()))
        });
    let stop = queries
        .and(warp::path::param::<String>())
        .and(warp::path("stop"))
        .and(warp::path::end())
        .and(warp::post())
        .and(with(state.clone()))
        .and_then(|name: String, s: Shared| {
            blocking(move || Ok(warp::reply::json(&s.queries.stop(&name)?).into_response()))
        });
    let start = queries
        .and(warp::path::param::<String>())
        .and(warp::path("start"))
        .and(warp::path::end())
        .and(warp::post())
        .and(with(state.clone()))
        .and_then(|name: String, s: Shared| {
            blocking(move || {
                let udfs = s.udfs();
                Ok(warp::reply::json(&s.queries.start(&name, &udfs)?).into_response())
            })
        });
    let delete = queries
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::delete())
        .and(with(state.clone()))
        .and_then(|name: String, s: Shared| {
            blocking(move || {
                s.queries.delete(&name)?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });
    let events = queries
        .and(warp::path::param::<String>())
        .and(warp::path("events"))
        .and(warp::path::end())
        .and(warp::get())
        .and(with(state.clone()))
        .and_then(|name: String, s: Shared| async move {
            events(&s, &name).map_err(warp::reject::custom)
        });
    check
        .or(explain)
        .unify()
        .or(create)
        .unify()
        .or(list)
        .unify()
        .or(stop)
        .unify()
        .or(start)
        .unify()
        .or(events)
        .unify()
        .or(get)
        .unify()
        .or(delete)
        .unify()
        .or(super::udfs::routes(state))
        .unify()
}

pub(super) fn with(state: Shared) -> impl Filter<Extract = (Shared,), Error = Infallible> + Clone {
    warp::any().map(move || state.clone())
}

/// Runs `f` off the async threads (planning, compiling a module and
/// stopping a query take a while); its error becomes the reply.
pub(super) async fn blocking(
    f: impl FnOnce() -> Result<warp::reply::Response, ApiError> + Send + 'static,
) -> Result<warp::reply::Response, Rejection> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Ok(error::reply(&e)),
        Err(e) => Ok(error::reply(&ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the request failed: {e}"),
        ))),
    }
}

/// `Host` and the credential, checked before any body is read; `Origin`
/// for state-changing calls.
fn authorized(state: Shared) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::method()
        .and(warp::header::optional::<String>("host"))
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::header::optional::<String>("cookie"))
        .and(warp::header::optional::<String>("origin"))
        .and(with(state))
        .and_then(
            |method: Method,
             host: Option<String>,
             authorization: Option<String>,
             cookie: Option<String>,
             origin: Option<String>,
             s: Shared| async move {
                let host_ok = host
                    .as_deref()
                    .is_some_and(|h| s.hosts.iter().any(|a| a.eq_ignore_ascii_case(h)));
                if !host_ok {
                    return Err(warp::reject::custom(
                        ApiError::new(
                            StatusCode::FORBIDDEN,
                            format!("Host '{}' is not this server", host.unwrap_or_default()),
                        )
                        .hint(format!("address it as {}", s.hosts.join(" or "))),
                    ));
                }
                let Some(cred) = auth::credential(&s.token, authorization.as_deref(), cookie.as_deref()) else {
                    return Err(warp::reject::custom(
                        ApiError::new(StatusCode::UNAUTHORIZED, "a valid token is needed")
                            .hint("send Authorization: Bearer <token> (printed by eddy serve), or open the login URL it prints"),
                    ));
                };
                let changes = method != Method::GET && method != Method::HEAD;
                let origin_ok = match origin.as_deref() {
                    Some(o) => auth::origin_allowed(o, &s.hosts),
                    // a browser always sends Origin on these; a bearer token is no cookie a page could borrow
                    None => cred == Credential::Bearer,
                };
                if changes && !origin_ok {
                    return Err(warp::reject::custom(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "this change must come from a page of this server (Origin)",
                    )));
                }
                Ok(())
            },
        )
        .untuple_one()
}

fn login(s: Shared, q: std::collections::HashMap<String, String>) -> warp::reply::Response {
    match q.get("token") {
        Some(t) if auth::same_token(t, &s.token) => {
            let cookie = format!(
                "{}={}; HttpOnly; SameSite=Strict; Path=/",
                auth::COOKIE,
                s.token
            );
            // back to a page of this server only (`next=/#/udfs`), never elsewhere
            let next = q
                .get("next")
                .filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
                .cloned()
                .unwrap_or_else(|| "/".into());
            let r = warp::reply::with_header(
                warp::reply::with_status(warp::reply(), StatusCode::SEE_OTHER),
                "location",
                next,
            );
            warp::reply::with_header(r, "set-cookie", cookie).into_response()
        }
        _ => error::reply(
            &ApiError::new(StatusCode::UNAUTHORIZED, "the login token is wrong")
                .hint("open the login URL eddy serve printed at start"),
        ),
    }
}

/// Checks a script; with or without an error, the answer lists the streams
/// declared (before the error), with their columns, for completion.
fn check(s: &State, sql: &str) -> Result<warp::reply::Response, ApiError> {
    let script = crate::plan_script_or_catalog(sql, s.udfs())
        .map_err(|(e, catalog)| ApiError::sql(&e).with("streams", streams_json(&catalog)))?;
    Ok(warp::reply::json(&serde_json::json!({
        "ok": true,
        "streams": streams_json(&script.catalog),
        "queries": script.queries.len(),
    }))
    .into_response())
}

fn streams_json(catalog: &crate::sql::Catalog) -> serde_json::Value {
    catalog
        .streams()
        .iter()
        .map(|st| {
            let columns: Vec<_> = st
                .schema
                .fields()
                .iter()
                .map(|f| {
                    let ty = crate::types::SqlType::from_arrow(f.data_type())
                        .map_or_else(|| f.data_type().to_string(), |t| t.to_string());
                    serde_json::json!({ "name": f.name(), "type": ty })
                })
                .collect();
            serde_json::json!({ "name": st.name, "connector": st.connector(), "columns": columns })
        })
        .collect()
}

fn explain(s: &State, sql: &str) -> Result<warp::reply::Response, ApiError> {
    let udfs = s.udfs();
    let plan = plan_one(sql, &udfs)?;
    let mut graph = plan.explain_json();
    mark_wasm(&mut graph, &udfs);
    if matches!(plan.sink, crate::plan::logical::SinkTarget::Stdout)
        && let Some(sink) = graph["nodes"].as_array_mut().and_then(|n| n.last_mut())
    {
        // the server sends a bare SELECT's rows to its live events, not stdout
        sink["params"] = serde_json::json!({ "connector": "live events", "path": "GET /api/queries/{name}/events" });
    }
    Ok(warp::reply::json(&serde_json::json!({
        "graph": graph,
        "text": plan.explain_text(),
    }))
    .into_response())
}

/// Adds to each graph node that calls WebAssembly functions (EXPLAIN
/// writes a call `wasm:name(...)`) which module each comes from and its
/// sha256: `"wasm": [{"function", "module", "sha256"}]`. Function names are
/// unique across the registry, so a name names its module.
fn mark_wasm(graph: &mut serde_json::Value, udfs: &[Arc<crate::udf::UdfModule>]) {
    let Some(nodes) = graph["nodes"].as_array_mut() else {
        return;
    };
    for node in nodes {
        let params = node["params"].to_string();
        let calls: Vec<serde_json::Value> = udfs
            .iter()
            .flat_map(|m| m.functions.iter().map(move |f| (m, f)))
            .filter(|(_, f)| params.contains(&format!("wasm:{}(", f.name)))
            .map(|(m, f)| {
                serde_json::json!({ "function": f.name, "module": m.name, "sha256": m.sha256 })
            })
            .collect();
        if !calls.is_empty() {
            node["wasm"] = calls.into();
        }
    }
}

/// Server-sent events of a running query: `rows` (a JSON array of row
/// objects), `progress` (with rows skipped for this client) and `status`
/// (the last one when the query ends).
fn events(s: &State, name: &str) -> Result<warp::reply::Response, ApiError> {
    let sub = s.queries.subscribe(name, 64)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<warp::sse::Event>(64);
    std::thread::Builder::new()
        .name("eddy-sse".into())
        .spawn(move || forward(sub, tx))
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|e| (Ok::<_, Infallible>(e), rx))
    });
    Ok(warp::sse::reply(
        warp::sse::keep_alive()
            .interval(Duration::from_secs(15))
            .stream(stream),
    )
    .into_response())
}

/// Moves a subscription's events to an SSE client until either ends.
fn forward(sub: crate::job::Subscription, tx: tokio::sync::mpsc::Sender<warp::sse::Event>) {
    use warp::sse::Event;
    while let Ok(event) = sub.events.recv() {
        let e = match event {
            JobEvent::Rows(batch) => match rows_json(&batch) {
                Some(rows) => Event::default().event("rows").data(rows),
                None => continue,
            },
            JobEvent::Progress(p) => {
                let mut v = progress_json(&p);
                v["skipped"] = sub.skipped_rows().into();
                v["live"] = live_json(&sub.job().live());
                Event::default().event("progress").data(v.to_string())
            }
            JobEvent::Status(st) => {
                let error = match &st {
                    crate::JobStatus::Failed(m) => Some(m.clone()),
                    _ => None,
                };
                Event::default().event("status").data(
                    serde_json::json!({ "status": st.name(), "error": error, "skipped": sub.skipped_rows() })
                        .to_string(),
                )
            }
        };
        if tx.blocking_send(e).is_err() {
            return; // the client went away
        }
    }
}

/// A batch as a JSON array of row objects, encoded as the CLI and the file
/// sink write rows (so the page shows what `eddy run` prints).
fn rows_json(batch: &arrow::record_batch::RecordBatch) -> Option<String> {
    use crate::connectors::encode::{Encoder, Format};
    let mut lines = Vec::new();
    Encoder::new(Format::Json, &batch.schema()).encode(batch, &mut lines);
    let text = String::from_utf8(lines).ok()?;
    Some(format!(
        "[{}]",
        text.trim_end().lines().collect::<Vec<_>>().join(",")
    ))
}

/// Rejections as JSON errors with their status.
async fn recover(r: Rejection) -> Result<warp::reply::Response, Infallible> {
    use warp::reject::{LengthRequired, MethodNotAllowed, PayloadTooLarge, UnsupportedMediaType};
    let e = if let Some(e) = r.find::<ApiError>() {
        e.clone()
    } else if r.find::<PayloadTooLarge>().is_some() {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is too large",
        )
        .hint("modules are capped by --udf-max-module-mib, SQL by --max-sql-kib")
    } else if r.find::<LengthRequired>().is_some() {
        ApiError::new(
            StatusCode::LENGTH_REQUIRED,
            "the request needs a Content-Length",
        )
    } else if r.find::<UnsupportedMediaType>().is_some() {
        ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "the body must be JSON")
            .hint("send Content-Type: application/json")
    } else if let Some(e) = r.find::<warp::filters::body::BodyDeserializeError>() {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the JSON body does not fit: {e}"),
        )
        .hint("see docs/http-api.md for each call's body")
    } else if r.is_not_found() {
        ApiError::new(StatusCode::NOT_FOUND, "no such route").hint("see docs/http-api.md")
    } else if r.find::<MethodNotAllowed>().is_some() {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "this route does not take that method",
        )
    } else {
        ApiError::new(StatusCode::BAD_REQUEST, format!("{r:?}"))
    };
    Ok(error::reply(&e))
}
