//! Ports between the plain-Rust core and the Workers edge. The edge implements them with
//! `worker::` calls; tests implement them in memory (or with rusqlite for [`Sql`]).

use std::future::Future;

/// An outgoing HTTP request, as the core builds it.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

impl HttpRequest {
    pub fn new(method: &'static str, url: impl Into<String>) -> Self {
        Self { method, url: url.into(), headers: Vec::new(), body: None }
    }
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
    pub fn json_body(mut self, body: &serde_json::Value) -> Self {
        self.body = Some(body.to_string());
        self.header("Content-Type", "application/json")
    }
    pub fn form_body(mut self, body: String) -> Self {
        self.body = Some(body);
        self.header("Content-Type", "application/x-www-form-urlencoded")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// Header lookup, case-insensitive as HTTP says.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends HTTP requests. `Err` is a transport failure (DNS, refused, reset, timeout): the request
/// may or may not have reached the peer.
pub trait HttpClient {
    fn send(&self, req: HttpRequest) -> impl Future<Output = Result<HttpResponse, String>>;
}

/// A value bound to or read from SQLite (the Durable Object's storage, or rusqlite in tests).
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
}

impl SqlValue {
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            SqlValue::Integer(i) => Some(*i),
            SqlValue::Real(f) => Some(*f as i64),
            SqlValue::Text(s) => s.parse().ok(),
            SqlValue::Null => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            SqlValue::Text(s) => Some(s),
            _ => None,
        }
    }
    pub fn into_string(self) -> Option<String> {
        match self {
            SqlValue::Text(s) => Some(s),
            SqlValue::Integer(i) => Some(i.to_string()),
            _ => None,
        }
    }
}

impl From<i64> for SqlValue {
    fn from(v: i64) -> Self {
        SqlValue::Integer(v)
    }
}
impl From<&str> for SqlValue {
    fn from(v: &str) -> Self {
        SqlValue::Text(v.to_string())
    }
}
impl From<String> for SqlValue {
    fn from(v: String) -> Self {
        SqlValue::Text(v)
    }
}
impl<T: Into<SqlValue>> From<Option<T>> for SqlValue {
    fn from(v: Option<T>) -> Self {
        v.map(Into::into).unwrap_or(SqlValue::Null)
    }
}

/// Synchronous SQL, as Durable Object SQLite storage offers it: statements issued without an
/// `await` between them are committed together, which the store relies on.
pub trait Sql {
    fn exec(&self, query: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, String>;
}
