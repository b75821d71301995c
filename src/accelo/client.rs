//! Accelo API v0 client: service-app OAuth (client credentials), token cached until shortly
//! before it expires and refreshed once on a `401`, every answer read through the envelope.

use std::cell::RefCell;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::envelope::{id_of, read_envelope, AcceloError};
use crate::ports::{HttpClient, HttpRequest, HttpResponse};

/// What the service app needs to reach one deployment.
#[derive(Clone)]
pub struct AcceloCredentials {
    /// e.g. `https://acme.api.accelo.com` (no trailing slash).
    pub base_url: String,
    pub client_id: String,
    pub client_secret: String,
}

impl std::fmt::Debug for AcceloCredentials {
    // Never print the secret, even in a debug dump.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcceloCredentials").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

/// Scope asked for: read everything (companies, staff, lookups), write issues and activities.
pub const TOKEN_SCOPE: &str = "read(all),write(issues,activities)";
/// Lifetime asked for; Accelo's default is 30 days, a day keeps a leaked token short-lived.
pub const TOKEN_LIFETIME_SECS: i64 = 86_400;

#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct CachedToken {
    pub access_token: String,
    /// When the bridge stops using it (unix ms): a margin before Accelo's expiry.
    pub use_until_ms: i64,
}

impl std::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken").field("use_until_ms", &self.use_until_ms).finish_non_exhaustive()
    }
}

/// Rate-limit headers of the last API answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RateLimit {
    pub limit: Option<i64>,
    pub remaining: Option<i64>,
    pub reset_at: Option<i64>,
}

pub struct AcceloClient<'h, H: HttpClient> {
    http: &'h H,
    creds: AcceloCredentials,
    now_ms: i64,
    token: RefCell<Option<CachedToken>>,
    rate: RefCell<RateLimit>,
    calls: RefCell<u32>,
}

/// Parses the token answer leniently: the docs' sample spells `token_tpye` and sends
/// `expires_in` as a string.
pub fn parse_token_answer(body: &str, now_ms: i64) -> Result<CachedToken, AcceloError> {
    let v: Value = serde_json::from_str(body)
        .map_err(|_| AcceloError::Unexpected("token answer is not JSON".into()))?;
    let access_token = v
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AcceloError::Unexpected("token answer has no access_token".into()))?
        .to_string();
    let expires_in = v
        .get("expires_in")
        .and_then(|e| e.as_i64().or_else(|| e.as_str().and_then(|s| s.trim().parse().ok())))
        .unwrap_or(TOKEN_LIFETIME_SECS);
    // Stop using it 5 minutes early (or a tenth of its life, for short-lived tokens).
    let margin = (expires_in / 10).min(300);
    Ok(CachedToken { access_token, use_until_ms: now_ms + (expires_in - margin) * 1000 })
}

/// `(id, text of field)` for each object of a list answer.
fn ids_with(list: &Value, field: &str) -> Vec<(String, String)> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| Some((i.get("id").and_then(id_of)?, i.get(field).and_then(Value::as_str).unwrap_or("").to_string())))
        .collect()
}

fn oauth_error(resp: &HttpResponse) -> AcceloError {
    let v: Value = serde_json::from_str(&resp.body).unwrap_or(Value::Null);
    let err = v.get("error").and_then(Value::as_str).unwrap_or("");
    let desc = v.get("error_description").and_then(Value::as_str).unwrap_or("").to_string();
    match (err, resp.status) {
        ("too_many_failed_logins", _) => AcceloError::LockedOut {
            retry_after: resp.header("Retry-After").and_then(|s| s.trim().parse().ok()),
        },
        ("invalid_client" | "unauthorized_client" | "unauthorized client", _) | (_, 401) => {
            AcceloError::Unauthorized { status: if err.is_empty() { "401".into() } else { err.into() }, message: desc }
        }
        (_, 403) => AcceloError::Forbidden(desc),
        (_, 429) => AcceloError::RateLimited { reset_at: None },
        (_, s) if s >= 500 => AcceloError::Server(format!("token endpoint HTTP {s}")),
        (e, _) => AcceloError::Unauthorized { status: e.to_string(), message: desc },
    }
}

impl<'h, H: HttpClient> AcceloClient<'h, H> {
    pub fn new(http: &'h H, creds: AcceloCredentials, now_ms: i64, cached: Option<CachedToken>) -> Self {
        Self {
            http,
            creds,
            now_ms,
            token: RefCell::new(cached),
            rate: RefCell::new(RateLimit::default()),
            calls: RefCell::new(0),
        }
    }

    /// The token now in use, for the caller to persist between runs.
    pub fn token(&self) -> Option<CachedToken> {
        self.token.borrow().clone()
    }
    pub fn rate_limit(&self) -> RateLimit {
        *self.rate.borrow()
    }
    /// API calls made (OAuth excluded: Accelo does not count those against the budget).
    pub fn api_calls(&self) -> u32 {
        *self.calls.borrow()
    }

    async fn fresh_token(&self) -> Result<String, AcceloError> {
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.creds.client_id, self.creds.client_secret));
        let body = format!(
            "grant_type=client_credentials&scope={}&expires_in={}",
            urlencoding::encode(TOKEN_SCOPE),
            TOKEN_LIFETIME_SECS
        );
        let req = HttpRequest::new("POST", format!("{}/oauth2/v0/token", self.creds.base_url))
            .header("Authorization", format!("Basic {basic}"))
            .header("Accept", "application/json")
            .form_body(body);
        let resp = self.http.send(req).await.map_err(AcceloError::Network)?;
        if resp.status != 200 {
            return Err(oauth_error(&resp));
        }
        let token = parse_token_answer(&resp.body, self.now_ms)?;
        let access = token.access_token.clone();
        *self.token.borrow_mut() = Some(token);
        Ok(access)
    }

    async fn bearer(&self) -> Result<String, AcceloError> {
        let cached = self.token.borrow().clone();
        match cached {
            Some(t) if t.use_until_ms > self.now_ms => Ok(t.access_token),
            _ => self.fresh_token().await,
        }
    }

    /// One API call: `path` is under `/api/v0` and may carry a query string.
    pub async fn call(&self, method: &'static str, path: &str, body: Option<&Value>) -> Result<Value, AcceloError> {
        let mut refreshed = false;
        loop {
            let token = self.bearer().await?;
            let mut req = HttpRequest::new(method, format!("{}/api/v0{}", self.creds.base_url, path))
                .header("Authorization", format!("Bearer {token}"))
                .header("Accept", "application/json");
            if let Some(b) = body {
                req = req.json_body(b);
            }
            *self.calls.borrow_mut() += 1;
            let resp = self.http.send(req).await.map_err(AcceloError::Network)?;
            self.note_rate_limit(&resp);
            match read_envelope(&resp) {
                // A token Accelo no longer accepts (revoked, clock skew): fetch one more, once.
                Err(AcceloError::Unauthorized { .. }) if !refreshed => {
                    *self.token.borrow_mut() = None;
                    refreshed = true;
                }
                other => return other,
            }
        }
    }

    fn note_rate_limit(&self, resp: &HttpResponse) {
        let num = |n: &str| resp.header(n).and_then(|v| v.trim().parse::<f64>().ok()).map(|f| f as i64);
        let seen = RateLimit {
            limit: num("X-RateLimit-Limit"),
            remaining: num("X-RateLimit-Remaining"),
            reset_at: num("X-RateLimit-Reset"),
        };
        if seen.remaining.is_some() || seen.reset_at.is_some() {
            *self.rate.borrow_mut() = seen;
        }
    }

    /// Companies whose name contains `name` (Accelo has no exact-name filter: the caller compares).
    pub async fn search_companies(&self, name: &str) -> Result<Vec<(i64, String)>, AcceloError> {
        let mut found = Vec::new();
        for page in 0..10 {
            let path = format!(
                "/companies?_search={}&_fields=name&_limit=100&_page={page}",
                urlencoding::encode(name)
            );
            let list = self.call("GET", &path, None).await?;
            let items = list.as_array().cloned().unwrap_or_default();
            for c in &items {
                if let (Some(id), Some(n)) = (
                    c.get("id").and_then(id_of).and_then(|s| s.parse().ok()),
                    c.get("name").and_then(Value::as_str),
                ) {
                    found.push((id, n.to_string()));
                }
            }
            if items.len() < 100 {
                break;
            }
        }
        Ok(found)
    }

    /// Every item of a list endpoint, page by page (100 a page; a short page is the last).
    pub async fn list_all(&self, path: &str, fields: &str) -> Result<Vec<Value>, AcceloError> {
        let mut all = Vec::new();
        for page in 0..50 {
            let sep = if path.contains('?') { '&' } else { '?' };
            let list = self.call("GET", &format!("{path}{sep}_fields={fields}&_limit=100&_page={page}"), None).await?;
            let items = list.as_array().cloned().unwrap_or_default();
            let short = items.len() < 100;
            all.extend(items);
            if short {
                break;
            }
        }
        Ok(all)
    }

    /// The ids that exist in Accelo, to check mappings against and to know which statuses an
    /// issue may be created with. `company_ids` are the ones the `sites` map names.
    pub async fn catalog(&self, company_ids: &[i64]) -> Result<crate::mappings::AcceloCatalog, AcceloError> {
        let ids = |items: &[Value]| -> Vec<i64> { items.iter().filter_map(|i| i.get("id").and_then(super::envelope::int_of)).collect() };
        let statuses = self.list_all("/issues/statuses", "title,standing,start").await?;
        let start = statuses
            .iter()
            .filter(|s| s.get("start").and_then(Value::as_str).is_some_and(|v| v.eq_ignore_ascii_case("yes") || v == "1"))
            .filter_map(|s| s.get("id").and_then(super::envelope::int_of))
            .collect();
        let companies = if company_ids.is_empty() {
            Vec::new()
        } else {
            let list: Vec<String> = company_ids.iter().map(i64::to_string).collect();
            let filter = urlencoding::encode(&format!("id({})", list.join(","))).into_owned();
            ids(&self.list_all(&format!("/companies?_filters={filter}"), "name").await?)
        };
        Ok(crate::mappings::AcceloCatalog {
            staff: Some(ids(&self.list_all("/staff", "firstname,surname").await?)),
            issue_statuses: Some(ids(&statuses)),
            issue_types: Some(ids(&self.list_all("/issues/types", "title").await?)),
            issue_priorities: Some(ids(&self.list_all("/issues/priorities", "title").await?)),
            companies: Some(companies),
            companies_asked: company_ids.to_vec(),
            start_statuses: Some(start),
            fetched_at_ms: self.now_ms,
        })
    }

    /// `POST` that creates an object; returns the new object's id.
    async fn create(&self, path: &str, body: &Value) -> Result<String, AcceloError> {
        let created = self.call("POST", path, Some(body)).await?;
        created
            .get("id")
            .and_then(id_of)
            .ok_or_else(|| AcceloError::Unexpected(format!("POST {path} answered no id")))
    }

    /// `POST /issues`; returns the new issue's id.
    pub async fn create_issue(&self, body: &Value) -> Result<String, AcceloError> {
        self.create("/issues", body).await
    }

    pub async fn update_issue(&self, issue_id: &str, body: &Value) -> Result<(), AcceloError> {
        self.call("PUT", &format!("/issues/{}", urlencoding::encode(issue_id)), Some(body)).await?;
        Ok(())
    }

    /// `POST /activities`; returns the new activity's id.
    pub async fn create_activity(&self, body: &Value) -> Result<String, AcceloError> {
        self.create("/activities", body).await
    }

    /// Activities against an issue (newest first) with their bodies: used to find an activity
    /// whose creation answer was lost.
    pub async fn issue_activities(&self, issue_id: &str) -> Result<Vec<(String, String)>, AcceloError> {
        let filters = format!("against(issue({issue_id})),order_by_desc(id)");
        let path = format!("/activities?_filters={}&_fields=subject,body&_limit=100", urlencoding::encode(&filters));
        Ok(ids_with(&self.call("GET", &path, None).await?, "body"))
    }

    /// Issues against `company_id` submitted at or after `since` (unix s), newest first, with their
    /// descriptions: used to find an issue whose creation answer was lost.
    pub async fn recent_issues_for_company(&self, company_id: i64, since: i64) -> Result<Vec<(String, String)>, AcceloError> {
        // Filters go in the query string: fetch refuses a body on GET.
        let filters = format!(
            "against_type(company),against_id({company_id}),date_submitted_after({}),order_by_desc(id)",
            since - 1
        );
        let path = format!("/issues?_filters={}&_fields=title,description&_limit=100", urlencoding::encode(&filters));
        Ok(ids_with(&self.call("GET", &path, None).await?, "description"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_answer_is_read_leniently() {
        let t = parse_token_answer(r#"{"access_token":"abc","token_tpye":"bearer","expires_in":"3600"}"#, 1_000).unwrap();
        assert_eq!(t.access_token, "abc");
        assert_eq!(t.use_until_ms, 1_000 + (3600 - 300) * 1000, "used until 5 minutes before expiry");
        let short = parse_token_answer(r#"{"access_token":"abc","expires_in":60}"#, 0).unwrap();
        assert_eq!(short.use_until_ms, 54_000, "a tenth of a short life as margin");
        assert!(parse_token_answer(r#"{"error":"invalid_client"}"#, 0).is_err());
    }

    #[test]
    fn oauth_errors_are_typed() {
        let resp = |status, body: &str| HttpResponse { status, headers: vec![("Retry-After".into(), "300".into())], body: body.into() };
        assert!(matches!(oauth_error(&resp(401, r#"{"error":"invalid_client"}"#)), AcceloError::Unauthorized { .. }));
        assert_eq!(oauth_error(&resp(429, r#"{"error":"too_many_failed_logins"}"#)), AcceloError::LockedOut { retry_after: Some(300) });
        assert!(matches!(oauth_error(&resp(503, "")), AcceloError::Server(_)));
    }

    #[test]
    fn debug_output_hides_secrets() {
        let c = AcceloCredentials { base_url: "https://x".into(), client_id: "id".into(), client_secret: "s3cret".into() };
        assert!(!format!("{c:?}").contains("s3cret"));
        let t = CachedToken { access_token: "tok123".into(), use_until_ms: 0 };
        assert!(!format!("{t:?}").contains("tok123"));
    }
}
