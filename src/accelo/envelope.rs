//! Reading Accelo's answers: the `{"meta": {...}, "response": ...}` envelope on the API, and the
//! `{"error", "error_description"}` shape on OAuth. `meta.status` is read on every answer.

use serde_json::Value;

use crate::ports::HttpResponse;

/// Every way an Accelo call can fail, typed by what the bridge must do about it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AcceloError {
    /// `invalid_request`: bad parameter or unknown id. Not retried: the same call fails again.
    #[error("Accelo rejected the request (invalid_request): {0}")]
    InvalidRequest(String),
    #[error("Accelo reports a duplicate: {0}")]
    Duplicate(String),
    /// Credentials rejected even after a fresh token: the operator must fix the service app.
    #[error("Accelo rejected the credentials ({status}): {message}")]
    Unauthorized { status: String, message: String },
    #[error("Accelo denied permission: {0}")]
    Forbidden(String),
    /// 429: wait until `X-RateLimit-Reset` (unix seconds) when given.
    #[error("Accelo rate limit reached")]
    RateLimited { reset_at: Option<i64> },
    /// Too many failed logins: locked out for `retry_after` seconds.
    #[error("Accelo locked the account out after failed logins")]
    LockedOut { retry_after: Option<i64> },
    #[error("Accelo server error ({0})")]
    Server(String),
    #[error("Accelo unreachable: {0}")]
    Network(String),
    /// An answer the bridge could not read (not JSON, no envelope, missing id...).
    #[error("unexpected answer from Accelo: {0}")]
    Unexpected(String),
}

impl AcceloError {
    /// Transient failures are retried with backoff; the rest go to the dead letters (or, for
    /// credentials, wait for the operator) with their reason.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            AcceloError::RateLimited { .. }
                | AcceloError::LockedOut { .. }
                | AcceloError::Server(_)
                | AcceloError::Network(_)
                | AcceloError::Unexpected(_)
        )
    }
    /// Failures that no retry of the same call can fix, but an operator can (credentials,
    /// permissions): kept in the queue, retried slowly, and shown as a config error.
    pub fn needs_operator(&self) -> bool {
        matches!(self, AcceloError::Unauthorized { .. } | AcceloError::Forbidden(_))
    }
}

fn header_i64(resp: &HttpResponse, name: &str) -> Option<i64> {
    resp.header(name).and_then(|v| v.trim().parse::<f64>().ok()).map(|f| f as i64)
}

/// Unwraps an API answer: `Ok(response)` when `meta.status` is `ok`, else a typed error.
/// Honours `_suppress_http_status` answers (HTTP 200 with the real code in `meta.response_code`).
pub fn read_envelope(resp: &HttpResponse) -> Result<Value, AcceloError> {
    let parsed: Option<Value> = serde_json::from_str(&resp.body).ok();
    let meta = parsed.as_ref().and_then(|v| v.get("meta"));
    let status = meta
        .and_then(|m| m.get("status"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let message = meta
        .and_then(|m| m.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let rate_reset = header_i64(resp, "X-RateLimit-Reset");

    match status.as_deref() {
        Some("ok") => Ok(parsed
            .and_then(|mut v| v.get_mut("response").map(Value::take))
            .unwrap_or(Value::Null)),
        Some("invalid_request") => Err(AcceloError::InvalidRequest(message)),
        Some("duplicate") => Err(AcceloError::Duplicate(message)),
        Some(s @ ("invalid_client" | "unauthorized client" | "unauthorized_client")) => {
            Err(AcceloError::Unauthorized { status: s.to_string(), message })
        }
        Some("invalid_permission") => Err(AcceloError::Forbidden(message)),
        Some("too_many_requests") => Err(AcceloError::RateLimited { reset_at: rate_reset }),
        Some("too_many_failed_logins") => Err(AcceloError::LockedOut {
            retry_after: header_i64(resp, "Retry-After"),
        }),
        Some("server_error") => Err(AcceloError::Server(message)),
        Some(other) => Err(AcceloError::InvalidRequest(format!("{other}: {message}"))),
        // No envelope: fall back on the HTTP code (proxies, gateways, HTML error pages).
        None => Err(match resp.status {
            401 => AcceloError::Unauthorized { status: "401".into(), message: String::new() },
            403 => AcceloError::Forbidden(String::new()),
            429 => AcceloError::RateLimited { reset_at: rate_reset },
            s if s >= 500 => AcceloError::Server(format!("HTTP {s}")),
            s => AcceloError::Unexpected(format!("HTTP {s} without an Accelo envelope")),
        }),
    }
}

/// Accelo returns ids and numbers as strings (sometimes as numbers): read either.
pub fn id_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `id_of` as an integer, for ids the mappings hold as numbers.
pub fn int_of(v: &Value) -> Option<i64> {
    id_of(v).and_then(|s| s.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, body: &str) -> HttpResponse {
        HttpResponse { status, headers: vec![], body: body.into() }
    }

    #[test]
    fn ok_envelope_yields_response() {
        let r = resp(200, r#"{"meta":{"status":"ok"},"response":{"id":"7"}}"#);
        assert_eq!(read_envelope(&r).unwrap()["id"], "7");
    }

    #[test]
    fn suppressed_http_status_is_read_from_meta() {
        let r = resp(200, r#"{"meta":{"status":"invalid_request","message":"no such id","response_code":400},"response":null}"#);
        assert_eq!(read_envelope(&r), Err(AcceloError::InvalidRequest("no such id".into())));
    }

    #[test]
    fn rate_limit_carries_reset() {
        let mut r = resp(429, r#"{"meta":{"status":"too_many_requests"}}"#);
        r.headers.push(("x-ratelimit-reset".into(), "1700000000".into()));
        assert_eq!(read_envelope(&r), Err(AcceloError::RateLimited { reset_at: Some(1_700_000_000) }));
        assert!(read_envelope(&r).unwrap_err().is_transient());
    }

    #[test]
    fn statuses_are_typed() {
        let cases = [
            ("invalid_client", 401, false, true),
            ("invalid_permission", 403, false, true),
            ("duplicate", 400, false, false),
            ("server_error", 500, true, false),
        ];
        for (status, code, transient, operator) in cases {
            let e = read_envelope(&resp(code, &format!(r#"{{"meta":{{"status":"{status}"}}}}"#))).unwrap_err();
            assert_eq!(e.is_transient(), transient, "{status}");
            assert_eq!(e.needs_operator(), operator, "{status}");
        }
    }

    #[test]
    fn no_envelope_falls_back_on_http_code() {
        assert!(matches!(read_envelope(&resp(502, "<html>bad gateway</html>")), Err(AcceloError::Server(_))));
        assert!(matches!(read_envelope(&resp(200, "not json")), Err(AcceloError::Unexpected(_))));
    }

    #[test]
    fn ids_as_strings_or_numbers() {
        assert_eq!(int_of(&serde_json::json!("39")), Some(39));
        assert_eq!(int_of(&serde_json::json!(39)), Some(39));
        assert_eq!(id_of(&serde_json::json!("")), None);
    }
}
