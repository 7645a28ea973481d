//! The `/api/udfs` routes (upload, list, delete, try a function) and
//! `/api/functions` (what SQL can call, for the editor's completion).

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::State;
use super::error::ApiError;
use super::routes::{blocking, with};

type Shared = Arc<State>;

/// A body trying a function: rows of argument values.
#[derive(Deserialize)]
struct TryBody {
    rows: Vec<Vec<serde_json::Value>>,
}

/// The UDF routes.
pub(super) fn routes(
    state: Shared,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let module_limit = state.max_module_bytes;
    let sql_limit = state.max_sql_bytes;
    let functions = warp::path("functions")
        .and(warp::path::end())
        .and(warp::get())
        .and(with(state.clone()))
        .map(|s: Shared| warp::reply::json(&functions_json(&s)).into_response());
    let udfs = warp::path("udfs");
    let list = udfs
        .and(warp::path::end())
        .and(warp::get())
        .and(with(state.clone()))
        .map(|s: Shared| {
            let list: Vec<serde_json::Value> = s
                .registry()
                .modules()
                .iter()
                .map(|m| module_json(m))
                .collect();
            warp::reply::json(&list).into_response()
        });
    let upload = udfs
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::post())
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::body::content_length_limit(module_limit))
        .and(warp::body::bytes())
        .and(with(state.clone()))
        .and_then(
            |name: String, ty: Option<String>, body: bytes::Bytes, s: Shared| {
                blocking(move || upload(&s, &name, ty.as_deref(), &body))
            },
        );
    let delete = udfs
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::delete())
        .and(with(state.clone()))
        .and_then(|name: String, s: Shared| {
            blocking(move || {
                s.registry().remove(&name).map_err(|e| {
                    ApiError::new(StatusCode::NOT_FOUND, e.to_string())
                        .hint("GET /api/udfs lists the registered modules")
                })?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });
    let try_it = udfs
        .and(warp::path::param::<String>())
        .and(warp::path::param::<String>())
        .and(warp::path("try"))
        .and(warp::path::end())
        .and(warp::post())
        .and(warp::body::content_length_limit(sql_limit))
        .and(warp::body::json())
        .and(with(state))
        .and_then(|module: String, function: String, b: TryBody, s: Shared| {
            blocking(move || try_function(&s, &module, &function, &b.rows))
        });
    functions
        .or(list)
        .unify()
        .or(upload)
        .unify()
        .or(delete)
        .unify()
        .or(try_it)
        .unify()
}

/// A module as the API lists it.
pub(super) fn module_json(m: &crate::udf::UdfModule) -> serde_json::Value {
    serde_json::json!({
        "name": m.name,
        "sha256": m.sha256,
        "size": m.size,
        "abi_version": eddy_udf_abi::ABI_VERSION,
        "functions": m.functions.iter().map(|f| serde_json::json!({
            "name": f.name,
            "kind": f.kind.name(),
            "signature": f.to_string(),
            "args": f.args.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
            "nullable": f.nullable,
            "returns": f.ret.to_string(),
            "retract": m.retract.get(&f.name),
        })).collect::<Vec<_>>(),
    })
}

/// The built-in functions and every registered module's.
fn functions_json(s: &State) -> serde_json::Value {
    let builtin = crate::sql::functions::builtin_functions()
        .into_iter()
        .map(|(name, kind)| serde_json::json!({ "name": name, "kind": kind, "module": null }));
    let modules = s.udfs();
    let udfs = modules.iter().flat_map(|m| {
        m.functions.iter().map(|f| {
            serde_json::json!({
                "name": f.name,
                "kind": f.kind.name(),
                "signature": f.to_string(),
                "module": m.name,
            })
        })
    });
    serde_json::Value::Array(builtin.chain(udfs).collect())
}

fn upload(
    s: &State,
    name: &str,
    ty: Option<&str>,
    body: &[u8],
) -> Result<warp::reply::Response, ApiError> {
    let ty = ty.unwrap_or("").split(';').next().unwrap_or("").trim();
    if !matches!(ty, "application/wasm" | "application/octet-stream") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("a module is uploaded as application/wasm, not '{ty}'"),
        )
        .hint("send the .wasm file's bytes with Content-Type: application/wasm"));
    }
    let m = register(s, name, body)?;
    Ok(warp::reply::with_status(warp::reply::json(&m), StatusCode::CREATED).into_response())
}

/// Registers a module's bytes: compiled here, under the registry's lock,
/// so concurrent uploads never lose one.
pub(super) fn register(s: &State, name: &str, bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    let mut registry = s.registry();
    let m = registry
        .register_bytes(bytes, name, &format!("upload '{name}'"))
        .map_err(|e| {
            let clash = e.to_string().contains("already");
            let status = if clash { StatusCode::CONFLICT } else { StatusCode::BAD_REQUEST };
            ApiError::new(status, e.to_string())
                .hint("build it with the eddy-udf SDK: cargo build --release --target wasm32-unknown-unknown")
        })?;
    Ok(module_json(&m))
}

/// Calls a function on the rows given, on a fresh instance.
fn try_function(
    s: &State,
    module: &str,
    function: &str,
    rows: &[Vec<serde_json::Value>],
) -> Result<warp::reply::Response, ApiError> {
    let m = s
        .udfs()
        .into_iter()
        .find(|m| m.name == module)
        .ok_or_else(|| {
            ApiError::not_found("module", module).hint("GET /api/udfs lists the registered modules")
        })?;
    let out = crate::udf::try_call::try_call(&m, function, rows).map_err(|e| {
        let hint = match e {
            crate::udf::UdfError::Input { .. } => {
                "give {\"rows\": [[arg1, arg2, ...], ...]}, one list of arguments per row"
            }
            _ => "the call failed as it would in a query; see docs/udf-guide.md on limits",
        };
        ApiError::new(StatusCode::BAD_REQUEST, e.to_string()).hint(hint)
    })?;
    let limits = m.limits();
    Ok(warp::reply::json(&serde_json::json!({
        "results": out.results,
        "elapsed_us": out.elapsed.as_micros() as u64,
        "memory_bytes": out.memory_bytes,
        "memory_limit_bytes": limits.memory_bytes,
        "time_limit_ms": duration_ms(limits.call_timeout),
    }))
    .into_response())
}

fn duration_ms(d: Duration) -> u64 {
    d.as_millis() as u64
}
