//! The errors the HTTP surface answers with: one stable code each, with its status, listed in
//! docs/api.md. Every handler (collector, API, dashboard) answers through [`ApiError`].

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A stable error code and the HTTP status that goes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiErrorCode {
    /// 400: a parameter the endpoint does not take, or a value it cannot take.
    InvalidParameter,
    /// 400: a collector body over Segment's size limits.
    TooLarge,
    /// 400: a collector body sent as gzip that does not decompress.
    InvalidGzip,
    /// 400: a collector body that is not the JSON Segment's API takes.
    InvalidJson,
    /// 400: a batch with more messages than Segment allows.
    TooMany,
    /// 400: some messages of a request refused (the others stored).
    InvalidEvents,
    /// 401: no or a wrong read token (or write key, on the collector).
    Unauthorized,
    /// 403: a form without the session's CSRF token.
    Forbidden,
    /// 404: no such endpoint or page.
    NotFound,
    /// 422: the analysis refused its input or failed.
    AnalysisFailed,
    /// 429: a write key over its request rate.
    RateLimited,
    /// 429: an address over its failed sign-ins and wrong tokens.
    TooManyFailures,
    /// 500: a fault of the server.
    Internal,
    /// 503: the log cannot be written now.
    Unavailable,
    /// 503: the request was not made durable in time.
    Timeout,
}

impl ApiErrorCode {
    /// Every code, in the order docs/api.md lists them.
    pub const ALL: [ApiErrorCode; 15] = [
        ApiErrorCode::InvalidParameter,
        ApiErrorCode::TooLarge,
        ApiErrorCode::InvalidGzip,
        ApiErrorCode::InvalidJson,
        ApiErrorCode::TooMany,
        ApiErrorCode::InvalidEvents,
        ApiErrorCode::Unauthorized,
        ApiErrorCode::Forbidden,
        ApiErrorCode::NotFound,
        ApiErrorCode::AnalysisFailed,
        ApiErrorCode::RateLimited,
        ApiErrorCode::TooManyFailures,
        ApiErrorCode::Internal,
        ApiErrorCode::Unavailable,
        ApiErrorCode::Timeout,
    ];

    /// The code as JSON carries it (`"error": "not_found"`).
    pub fn code(self) -> &'static str {
        match self {
            ApiErrorCode::InvalidParameter => "invalid_parameter",
            ApiErrorCode::TooLarge => "too_large",
            ApiErrorCode::InvalidGzip => "invalid_gzip",
            ApiErrorCode::InvalidJson => "invalid_json",
            ApiErrorCode::TooMany => "too_many",
            ApiErrorCode::InvalidEvents => "invalid_events",
            ApiErrorCode::Unauthorized => "unauthorized",
            ApiErrorCode::Forbidden => "forbidden",
            ApiErrorCode::NotFound => "not_found",
            ApiErrorCode::AnalysisFailed => "analysis_failed",
            ApiErrorCode::RateLimited => "rate_limited",
            ApiErrorCode::TooManyFailures => "too_many_failures",
            ApiErrorCode::Internal => "internal",
            ApiErrorCode::Unavailable => "unavailable",
            ApiErrorCode::Timeout => "timeout",
        }
    }

    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        match self {
            ApiErrorCode::InvalidParameter
            | ApiErrorCode::TooLarge
            | ApiErrorCode::InvalidGzip
            | ApiErrorCode::InvalidJson
            | ApiErrorCode::TooMany
            | ApiErrorCode::InvalidEvents => StatusCode::BAD_REQUEST,
            ApiErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ApiErrorCode::NotFound => StatusCode::NOT_FOUND,
            ApiErrorCode::AnalysisFailed => StatusCode::UNPROCESSABLE_ENTITY,
            ApiErrorCode::RateLimited | ApiErrorCode::TooManyFailures => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ApiErrorCode::Unavailable | ApiErrorCode::Timeout => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// A refused or failed request: a stable code (which sets the status) and a message in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// What kind of error, and so the status.
    pub code: ApiErrorCode,
    /// What went wrong, in words.
    pub message: String,
}

impl ApiError {
    /// An error of kind `code`.
    pub fn new(code: ApiErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.code(), self.message)
    }
}

impl std::error::Error for ApiError {}

/// `{"success": false, "error": CODE, "message": "…"}` with the code's status.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status(),
            Json(json!({"success": false, "error": self.code.code(), "message": self.message})),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/api.md lists every code with its status, and no code twice.
    #[test]
    fn every_code_is_documented_with_its_status() {
        let doc = include_str!("../../../docs/api.md");
        let mut seen = std::collections::HashSet::new();
        for c in ApiErrorCode::ALL {
            assert!(seen.insert(c.code()), "{} twice", c.code());
            let row = format!("| {} | `{}` |", c.status().as_u16(), c.code());
            assert!(doc.contains(&row), "docs/api.md lacks the row `{row}`");
        }
    }
}
