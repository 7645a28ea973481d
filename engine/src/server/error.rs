//! API errors: a status and `{"error": ..., "hint": ...}`, plus the SQL
//! position for plan errors.

use warp::http::StatusCode;

use crate::error::PlanError;

/// An error answered to an API call.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What is wrong.
    pub error: String,
    /// What to do about it.
    pub hint: Option<String>,
    /// For SQL: where (1-based line and column).
    pub at: Option<(u64, u64)>,
    /// More fields of the body (e.g. the streams a failed check still knows).
    pub extra: Vec<(&'static str, serde_json::Value)>,
}

impl ApiError {
    /// An error with `status`.
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        Self {
            status,
            error: error.into(),
            hint: None,
            at: None,
            extra: Vec::new(),
        }
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds a field to the body.
    pub fn with(mut self, key: &'static str, value: serde_json::Value) -> Self {
        self.extra.push((key, value));
        self
    }

    /// 400 for SQL that does not plan, with its position.
    pub fn sql(e: &PlanError) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: e.message.clone(),
            hint: e.hint.clone(),
            at: e.pos.is_known().then_some((e.pos.line, e.pos.column)),
            extra: Vec::new(),
        }
    }

    /// 404 for a name that is not there.
    pub fn not_found(what: &str, name: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("no {what} named '{name}'"))
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        let mut v = serde_json::json!({ "error": self.error, "hint": self.hint });
        if let Some((line, column)) = self.at {
            v["line"] = line.into();
            v["column"] = column.into();
        }
        for (k, x) in &self.extra {
            v[*k] = x.clone();
        }
        v
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.error)?;
        if let Some((line, column)) = self.at {
            write!(f, " at line {line}, column {column}")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\nhint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

impl warp::reject::Reject for ApiError {}

/// An `ApiError` as a reply.
pub fn reply(e: &ApiError) -> warp::reply::Response {
    use warp::Reply;
    warp::reply::with_status(warp::reply::json(&e.body()), e.status).into_response()
}
