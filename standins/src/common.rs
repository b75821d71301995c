//! Helpers shared by both stand-ins: values, params, faults, request log, responses.

use axum::body::Body;
use axum::http::{header, HeaderMap, Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub type Obj = Map<String, Value>;

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("OS randomness");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A scalar as a string (numbers and booleans too); `None` for null, arrays, objects.
pub fn vstr(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "1" } else { "0" }.into()),
        _ => None,
    }
}

/// Accelo returns ids and numbers as strings: normalise top-level numbers of a record.
pub fn stringify_numbers(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| match v {
                    Value::Number(n) => (k, Value::String(n.to_string())),
                    other => (k, other),
                })
                .collect(),
        ),
        other => other,
    }
}

/// One injected failure (or slowdown) for the next `times` matching requests.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Fault {
    /// HTTP method to match (case-insensitive); `None` = any.
    #[serde(default)]
    pub method: Option<String>,
    /// Path prefix to match, e.g. `/api/v0/issues`; empty = any path.
    #[serde(default)]
    pub path_prefix: String,
    /// Status to answer with (429, 500, 503, ...); `None` = only delay, then answer normally.
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default = "one")]
    pub times: u32,
    #[serde(default)]
    pub delay_ms: u64,
    /// For 429: seconds until the limit resets (`X-RateLimit-Reset` / `Retry-After`). Default 1.
    #[serde(default)]
    pub retry_after_secs: Option<u64>,
}

fn one() -> u32 {
    1
}

impl Fault {
    /// Only slow: the next `times` matching requests wait `delay_ms`, then answer normally.
    pub fn delay(method: &str, path_prefix: &str, delay_ms: u64, times: u32) -> Self {
        Fault {
            status: None,
            delay_ms,
            ..Fault::status(method, path_prefix, 0, times)
        }
    }

    pub fn status(method: &str, path_prefix: &str, status: u16, times: u32) -> Self {
        Fault {
            method: Some(method.into()),
            path_prefix: path_prefix.into(),
            status: Some(status),
            times,
            delay_ms: 0,
            retry_after_secs: None,
        }
    }
}

/// Takes (and consumes one use of) the first fault matching this request.
pub fn take_fault(faults: &mut Vec<Fault>, method: &str, path: &str) -> Option<Fault> {
    let i = faults.iter().position(|f| {
        f.times > 0
            && f.method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && path.starts_with(&f.path_prefix)
    })?;
    faults[i].times -= 1;
    let f = faults[i].clone();
    if faults[i].times == 0 {
        faults.remove(i);
    }
    Some(f)
}

/// What the request log keeps: no header values, so no credentials.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    /// Query string parsed into an object (`_bearer_token` masked).
    pub query: Value,
    /// JSON body, form body parsed into an object, raw text, or null.
    pub body: Value,
    pub status: u16,
    /// Unix seconds.
    pub at: u64,
}

/// Query pairs in order (`+` decoded as space).
pub fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(q.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// Parameters whose values are credentials: logged as `***`.
const SECRET_PARAMS: &[&str] = &["_bearer_token", "client_secret", "token", "access_token"];

pub fn pairs_to_log(pairs: &[(String, String)]) -> Value {
    let m: Obj = pairs
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    mask(Value::Object(m))
}

fn mask(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let secret = SECRET_PARAMS.contains(&k.as_str());
                    (
                        k,
                        if secret {
                            Value::String("***".into())
                        } else {
                            v
                        },
                    )
                })
                .collect(),
        ),
        other => other,
    }
}

/// Parsed request body.
pub enum ReqBody {
    None,
    Json(Value),
    Form(Vec<(String, String)>),
    Invalid(String),
}

pub fn parse_body(headers: &HeaderMap, bytes: &[u8]) -> ReqBody {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return ReqBody::None;
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if ct.contains("json") || (!ct.contains("form") && matches!(first, Some(b'{') | Some(b'['))) {
        match serde_json::from_slice(bytes) {
            Ok(v) => ReqBody::Json(v),
            Err(e) => ReqBody::Invalid(format!("Malformed JSON body: {e}")),
        }
    } else {
        ReqBody::Form(form_urlencoded::parse(bytes).into_owned().collect())
    }
}

impl ReqBody {
    pub fn to_log(&self) -> Value {
        match self {
            ReqBody::None => Value::Null,
            ReqBody::Json(v) => mask(v.clone()),
            ReqBody::Form(p) => pairs_to_log(p),
            ReqBody::Invalid(s) => Value::String(s.clone()),
        }
    }
}

pub fn json_response(status: u16, body: &Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap_or_default()))
        .expect("valid response")
}

pub fn text_response(status: u16, ctype: &str, body: String) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, ctype)
        .body(Body::from(body))
        .expect("valid response")
}

/// Bearer token from an `Authorization` header, if that header is a Bearer one.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim().to_string())
}

/// Control-route body: a single object or an array of them.
pub fn one_or_many(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        other => vec![other],
    }
}
