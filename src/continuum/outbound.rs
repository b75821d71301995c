//! Calls from the bridge to Continuum (continuum-protocol.md section 2). Today: pulling a ticket
//! after a notify-only callback.

use super::inbound::{parse_delivery, TicketEntry};
use super::ticket::TicketSnapshot;
use crate::ports::{HttpClient, HttpRequest, HttpResponse};

#[derive(Clone)]
pub struct ContinuumApi {
    /// `CONTINUUM_API_URL`, no trailing slash.
    pub base_url: String,
    pub api_token: String,
    pub integrator_user: String,
}

impl std::fmt::Debug for ContinuumApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContinuumApi").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ContinuumError {
    #[error("Continuum rejected the API token ({0}): the operator must fix CONTINUUM_API_TOKEN")]
    Credentials(u16),
    #[error("Continuum has no ticket {0}")]
    NotFound(String),
    #[error("Continuum rejected the request ({status}): {body}")]
    Rejected { status: u16, body: String },
    #[error("Continuum rate limit reached")]
    RateLimited { retry_after_s: Option<i64> },
    #[error("Continuum failed ({0})")]
    Server(String),
    #[error("Continuum unreachable: {0}")]
    Network(String),
}

fn classify(resp: &HttpResponse, what: &str) -> Result<(), ContinuumError> {
    let snippet = || resp.body.chars().take(300).collect::<String>();
    match resp.status {
        200..=299 => Ok(()),
        401 | 403 => Err(ContinuumError::Credentials(resp.status)),
        404 => Err(ContinuumError::NotFound(what.to_string())),
        429 => Err(ContinuumError::RateLimited {
            retry_after_s: resp.header("Retry-After").and_then(|v| v.trim().parse().ok()),
        }),
        400 | 422 => Err(ContinuumError::Rejected { status: resp.status, body: snippet() }),
        s if s >= 500 => Err(ContinuumError::Server(format!("HTTP {s}"))),
        s => Err(ContinuumError::Rejected { status: s, body: snippet() }),
    }
}

pub struct ContinuumClient<'h, H: HttpClient> {
    http: &'h H,
    api: ContinuumApi,
}

impl<'h, H: HttpClient> ContinuumClient<'h, H> {
    pub fn new(http: &'h H, api: ContinuumApi) -> Self {
        Self { http, api }
    }

    fn request(&self, method: &'static str, path: &str) -> HttpRequest {
        HttpRequest::new(method, format!("{}{}", self.api.base_url, path))
            .header("Authorization", format!("Bearer {}", self.api.api_token))
            .header("X-Integrator-User", self.api.integrator_user.clone())
            .header("Accept", "application/json")
    }

    /// One of Continuum's lists (`/priorities`, `/statuses`, `/users`, `/sites`, `/tickettypes`).
    pub async fn list(&self, path: &str) -> Result<Vec<serde_json::Value>, ContinuumError> {
        let resp = self.http.send(self.request("GET", path)).await.map_err(ContinuumError::Network)?;
        classify(&resp, path)?;
        match serde_json::from_str::<serde_json::Value>(&resp.body) {
            Ok(serde_json::Value::Array(items)) => Ok(items),
            _ => Err(ContinuumError::Rejected { status: resp.status, body: format!("{path} did not answer a JSON list") }),
        }
    }

    /// `GET /tickets/{id}`, read with the same tolerant parser as callbacks.
    pub async fn get_ticket(&self, ticket_id: &str) -> Result<TicketSnapshot, ContinuumError> {
        let req = self.request("GET", &format!("/tickets/{}", urlencoding::encode(ticket_id)));
        let resp = self.http.send(req).await.map_err(ContinuumError::Network)?;
        classify(&resp, ticket_id)?;
        let bad = |why: String| ContinuumError::Rejected { status: resp.status, body: why };
        let delivery = parse_delivery(resp.header("Content-Type"), resp.body.as_bytes()).map_err(|e| bad(e.to_string()))?;
        match delivery.entries.into_iter().next() {
            Some(TicketEntry::Snapshot(mut s)) => {
                // Trust the id we asked for if the answer spells it differently.
                if s.ticket_id.is_empty() {
                    s.ticket_id = ticket_id.to_string();
                }
                Ok(s)
            }
            Some(TicketEntry::Notify { ticket_id }) => Err(bad(format!("ticket {ticket_id} came back with no fields"))),
            Some(TicketEntry::Invalid { reason, .. }) => Err(bad(reason)),
            None => Err(bad("empty answer".into())),
        }
    }
}
