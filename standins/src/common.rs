//! Helpers shared by both stand-ins: values, params, faults, request log, responses.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, Response, StatusCode, Uri};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::sync::{Arc, Mutex};

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

/// Injected faults and the request log: the test-facing bookkeeping both stand-ins keep, so
/// the two servers cannot drift apart in how faults match or what the log records.
#[derive(Debug, Default)]
pub struct Journal {
    faults: Vec<Fault>,
    requests: Vec<RequestRecord>,
}

impl Journal {
    pub fn faults(&self) -> &[Fault] {
        &self.faults
    }

    pub fn requests(&self) -> &[RequestRecord] {
        &self.requests
    }

    pub fn add_fault(&mut self, f: Fault) {
        self.faults.push(f);
    }

    pub fn clear_faults(&mut self) {
        self.faults.clear();
    }

    pub fn clear_requests(&mut self) {
        self.requests.clear();
    }

    /// Faults and request log both emptied (a stand-in reset).
    pub fn clear(&mut self) {
        self.clear_faults();
        self.clear_requests();
    }

    /// Takes (and consumes one use of) the first fault matching this request.
    pub fn take_fault(&mut self, method: &str, path: &str) -> Option<Fault> {
        let faults = &mut self.faults;
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

    /// Logs an answered request (masked query and body, no headers).
    pub fn record(&mut self, req: &Req<'_>, status: u16) {
        self.requests.push(RequestRecord {
            method: req.method.to_string(),
            path: req.path.to_string(),
            query: pairs_to_log(&req.pairs),
            body: req.body.to_log(),
            status,
            at: now(),
        });
    }

    /// The `/__control/requests` and `/__control/faults` routes, the same on both stand-ins;
    /// `None` = not one of these.
    fn control(&mut self, method: &str, route: &str, body: &[u8]) -> Option<Response<Body>> {
        let ok = |v: Value| json_response(200, &v);
        Some(match (method, route) {
            ("GET", "requests") => ok(serde_json::to_value(&self.requests).unwrap_or_default()),
            ("DELETE", "requests") => {
                self.clear_requests();
                ok(json!({"ok": true}))
            }
            ("GET", "faults") => ok(serde_json::to_value(&self.faults).unwrap_or_default()),
            ("POST", "faults") => match control_json(body).and_then(|v| {
                one_or_many(v)
                    .into_iter()
                    .map(|f| serde_json::from_value::<Fault>(f).map_err(|e| e.to_string()))
                    .collect::<Result<Vec<_>, _>>()
            }) {
                Ok(fs) => {
                    self.faults.extend(fs);
                    ok(json!({"ok": true, "faults": self.faults}))
                }
                Err(e) => control_fail(400, e),
            },
            ("DELETE", "faults") => {
                self.clear_faults();
                ok(json!({"ok": true}))
            }
            _ => return None,
        })
    }
}

/// An API request (anything outside `/__control/`), parsed once for serving and for the log.
pub struct Req<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub pairs: Vec<(String, String)>,
    pub body: ReqBody,
    /// The body as sent (Continuum reads it as JSON whatever the Content-Type says).
    pub raw: &'a [u8],
    pub headers: &'a HeaderMap,
}

/// What differs between the two stand-ins; [`handle`] does the rest.
pub trait StandIn {
    fn journal(&mut self) -> &mut Journal;

    /// The answer to an API request; `fault` = an injected status to answer with instead.
    fn answer(&mut self, req: &Req<'_>, fault: Option<(u16, &Fault)>) -> Response<Body>;

    /// Its own control routes besides requests/faults; `None` = unknown route.
    /// `route` is the path after `/__control/` without trailing slashes.
    fn control(&mut self, method: &str, route: &str, body: &[u8]) -> Option<Response<Body>>;
}

/// The HTTP entry point of either stand-in. Control routes answer at once; an API request
/// consumes a matching fault, waits out its delay with the lock released (other requests keep
/// flowing), is answered, and is logged with the status it got.
pub async fn handle<S: StandIn>(
    State(st): State<Arc<Mutex<S>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let (method, path) = (method.as_str(), uri.path());
    if let Some(rest) = path.strip_prefix("/__control/") {
        let route = rest.trim_end_matches('/');
        let mut s = st.lock().expect("lock");
        return s
            .journal()
            .control(method, route, &body)
            .or_else(|| s.control(method, route, &body))
            .unwrap_or_else(|| {
                control_fail(
                    404,
                    format!("unknown control route {method} /__control/{rest}"),
                )
            });
    }
    let req = Req {
        method,
        path,
        pairs: query_pairs(uri.query()),
        body: parse_body(&headers, &body),
        raw: &body,
        headers: &headers,
    };
    let fault = st.lock().expect("lock").journal().take_fault(method, path);
    if let Some(f) = fault.as_ref().filter(|f| f.delay_ms > 0) {
        tokio::time::sleep(std::time::Duration::from_millis(f.delay_ms)).await;
    }
    let mut s = st.lock().expect("lock");
    let injected = fault.as_ref().and_then(|f| f.status.map(|c| (c, f)));
    let resp = s.answer(&req, injected);
    s.journal().record(&req, resp.status().as_u16());
    resp
}

/// Control-route body as JSON.
pub fn control_json(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("bad JSON: {e}"))
}

/// Control-route failure: `{"error": ...}`.
pub fn control_fail(code: u16, e: String) -> Response<Body> {
    json_response(code, &json!({ "error": e }))
}
