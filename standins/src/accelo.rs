//! Accelo API v0 stand-in: OAuth2 client credentials, envelope, rate limit, filters, and the
//! resources the bridge uses (issues, activities, companies, staff, issue lookups).

use crate::common::*;
use crate::filters::{self, search_match, FieldReq, FilterSpec};
use crate::{AcceloConfig, Seed};
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Response};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

pub type Shared = Arc<Mutex<AcceloState>>;

const MORE_INFO: &str = "https://api.accelo.com/docs/#status-codes";
const DEFAULT_TOKEN_LIFETIME: u64 = 2_592_000; // 30 days, per the docs
const LOCKOUT_WINDOW: u64 = 300;
const LOCKOUT_FAILURES: usize = 100;

/// Collections that exist in the stand-in (and can be upserted through control routes).
pub const COLLECTIONS: &[&str] = &[
    "companies",
    "staff",
    "issue_statuses",
    "issue_types",
    "issue_priorities",
    "issue_classes",
    "issue_resolutions",
    "affiliations",
    "issues",
    "activities",
];

// ---------- resource descriptions ----------

struct ResSpec {
    col: &'static str,
    singular: &'static str,
    defaults: &'static [&'static str],
    /// field -> collection, for `field()` nested objects in `_fields`.
    links: &'static [(&'static str, &'static str)],
    filters: FilterSpec,
    /// `_search` fields; empty = `_search` not supported.
    search: &'static [&'static str],
}

/// Resource names, default fields, nested links and filters, as the spec lists them.
#[rustfmt::skip]
static SPECS: &[ResSpec] = &[
    ResSpec {
        col: "issues", singular: "issue",
        defaults: &["id", "title"],
        links: &[
            ("status", "issue_statuses"), ("issue_type", "issue_types"), ("issue_priority", "issue_priorities"),
            ("class", "issue_classes"), ("resolution", "issue_resolutions"), ("company", "companies"),
            ("affiliation", "affiliations"), ("assignee", "staff"), ("submitted_by", "staff"),
            ("opened_by", "staff"), ("resolved_by", "staff"), ("closed_by", "staff"),
        ],
        filters: FilterSpec {
            basic: &["id", "standing", "custom_id", "referrer_type", "referrer_id", "against_type", "against_id",
                "status", "issue_type", "affiliation", "class", "issue_priority", "resolution", "submitted_by",
                "opened_by", "closed_by", "resolved_by", "assignee", "contract"],
            date: &["date_opened", "date_submitted", "date_started", "date_due", "date_closed", "date_modified"],
            order: &["id", "title", "standing", "status", "date_opened", "date_submitted", "date_started", "date_due",
                "date_closed", "date_modified", "date_resolved", "date_last_interacted"],
            range: &["id", "reopened_count", "rate_charged", "billable_seconds", "against_id", "rate", "referrer_id",
                "status", "issue_type", "affiliation", "class", "issue_priority", "resolution", "submitted_by",
                "opened_by", "closed_by", "resolved_by", "assignee", "contract"],
            object: &["against", "referrer"],
        },
        // Unstated in the docs (they name `subject`); the stand-in searches the title.
        search: &["title"],
    },
    ResSpec {
        col: "activities", singular: "activity",
        defaults: &["id", "subject", "confidential"],
        links: &[("staff", "staff")],
        filters: FilterSpec {
            basic: &["id", "parent_id", "thread_id", "against_type", "against_id", "owner_id", "owner_type", "medium",
                "visibility", "staff", "activity_class", "activity_priority", "task", "time_allocation"],
            date: &["date_created", "date_started", "date_ended", "date_logged", "date_modified"],
            order: &["date_created", "date_started", "date_ended", "date_logged", "date_modified", "id", "billable",
                "nonbillable"],
            range: &["id"],
            object: &["owner", "against"],
        },
        search: &[],
    },
    ResSpec {
        col: "companies", singular: "company",
        defaults: &["id", "name"],
        links: &[],
        filters: FilterSpec {
            basic: &["id", "status", "standing", "default_affiliation", "postal_address", "manager_id",
                "contact_number", "custom_id", "website"],
            date: &["date_created", "date_modified"],
            order: &["id", "name", "date_created", "date_modified", "date_last_interacted"],
            range: &["id"],
            object: &[],
        },
        search: &["name", "website", "phone", "fax"],
    },
    ResSpec {
        col: "staff", singular: "staff member",
        defaults: &["id", "firstname", "surname"],
        links: &[],
        filters: FilterSpec { basic: &["id", "email", "standing", "username"], date: &[],
            order: &["id", "firstname", "surname"], range: &["id", "rate"], object: &[] },
        search: &[],
    },
    ResSpec {
        col: "issue_statuses", singular: "issue status",
        defaults: &["id", "title"],
        links: &[],
        filters: FilterSpec { basic: &["id", "title", "standing", "color"], date: &[],
            order: &["id", "title", "standing", "ordering"], range: &["id"], object: &[] },
        search: &["title"],
    },
    ResSpec {
        col: "issue_types", singular: "issue type",
        defaults: &["id", "title"],
        links: &[],
        filters: FilterSpec { basic: &["id", "title", "standing", "parent"], date: &[],
            order: &["id", "title", "ordering"], range: &["id"], object: &[] },
        search: &["title"],
    },
    ResSpec {
        col: "issue_priorities", singular: "issue priority",
        defaults: &["id", "title"],
        links: &[],
        filters: FilterSpec { basic: &["id", "title", "color", "factor"], date: &[],
            order: &["id", "title", "factor"], range: &["id", "factor"], object: &[] },
        search: &["title"],
    },
    ResSpec {
        col: "issue_classes", singular: "issue class",
        defaults: &["id", "title"],
        links: &[],
        filters: FilterSpec { basic: &["id", "title", "standing", "parent"], date: &[],
            order: &["id", "title"], range: &["id"], object: &[] },
        search: &["title"],
    },
    ResSpec {
        col: "issue_resolutions", singular: "issue resolution",
        defaults: &["id", "title"],
        links: &[],
        filters: FilterSpec { basic: &["id", "title", "standing", "parent"], date: &[],
            order: &["id", "title"], range: &["id"], object: &[] },
        search: &["title"],
    },
    ResSpec {
        col: "affiliations", singular: "affiliation",
        defaults: &["id"],
        links: &[],
        filters: FilterSpec { basic: &["id"], date: &[], order: &["id"], range: &["id"], object: &[] },
        search: &[],
    },
];

fn spec(col: &str) -> &'static ResSpec {
    SPECS
        .iter()
        .find(|s| s.col == col)
        .expect("known collection")
}

// ---------- errors & envelope ----------

pub struct ApiErr(u16, &'static str, String);

fn bad(m: impl Into<String>) -> ApiErr {
    ApiErr(400, "invalid_request", m.into())
}

fn flag(p: &Obj, k: &str) -> bool {
    p.get(k)
        .and_then(vstr)
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "yes" | "true"))
}

fn envelope(code: u16, status: &str, message: &str, response: Value, p: &Obj) -> Response<Body> {
    let mut meta = json!({"status": status, "message": message, "more_info": MORE_INFO});
    if flag(p, "_suppress_message") {
        meta = json!({"status": status});
    }
    let http = if flag(p, "_suppress_http_status") {
        meta["response_code"] = json!(code);
        200
    } else {
        code
    };
    let body = if flag(p, "_suppress_meta") {
        json!({ "response": response })
    } else {
        json!({"meta": meta, "response": response})
    };
    json_response(http, &body)
}

fn err_envelope(e: ApiErr, p: &Obj) -> Response<Body> {
    envelope(e.0, e.1, &e.2, Value::Null, p)
}

fn oauth_err(code: u16, error: &str, desc: &str) -> Response<Body> {
    json_response(code, &json!({"error": error, "error_description": desc}))
}

fn meta_status_for(code: u16) -> &'static str {
    match code {
        400 => "invalid_request",
        401 => "invalid_client",
        403 => "invalid_permission",
        429 => "too_many_requests",
        _ => "server_error",
    }
}

fn set_header(r: &mut Response<Body>, name: &'static str, v: impl ToString) {
    if let Ok(v) = HeaderValue::from_str(&v.to_string()) {
        r.headers_mut().insert(name, v);
    }
}

// ---------- params ----------

/// Query string and body merged; a parameter given twice is an `invalid_request`.
fn merge_params(pairs: &[(String, String)], body: &ReqBody) -> Result<Obj, String> {
    let mut p = Obj::new();
    let mut put = |k: &str, v: Value| {
        if p.insert(k.to_string(), v).is_some() {
            Err(format!("Parameter '{k}' was given more than once"))
        } else {
            Ok(())
        }
    };
    for (k, v) in pairs {
        put(k, Value::String(v.clone()))?;
    }
    match body {
        ReqBody::None => {}
        ReqBody::Json(Value::Object(m)) => {
            for (k, v) in m {
                put(k, v.clone())?;
            }
        }
        ReqBody::Json(_) => return Err("A JSON body must be an object".into()),
        ReqBody::Form(pairs) => {
            for (k, v) in pairs {
                put(k, Value::String(v.clone()))?;
            }
        }
        ReqBody::Invalid(e) => return Err(e.clone()),
    }
    Ok(p)
}

/// A non-empty string parameter.
fn pstr(p: &Obj, k: &str) -> Option<String> {
    p.get(k)
        .and_then(vstr)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn required(p: &Obj, k: &str) -> Result<String, ApiErr> {
    pstr(p, k).ok_or_else(|| bad(format!("Missing required parameter: {k}")))
}

fn timestamp(p: &Obj, k: &str) -> Result<Option<String>, ApiErr> {
    match pstr(p, k) {
        None => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .map(|n| Some(n.to_string()))
            .map_err(|_| bad(format!("Parameter {k} must be a unix timestamp"))),
    }
}

fn s(v: impl ToString) -> Value {
    Value::String(v.to_string())
}

fn plural(t: &str) -> String {
    match t {
        "company" => "companies".into(),
        "activity" => "activities".into(),
        "staff" => "staff".into(),
        other => format!("{other}s"),
    }
}

// ---------- OAuth scope ----------

#[derive(Debug, Clone, Default)]
struct Scope {
    read: Vec<String>,
    write: Vec<String>,
}

impl Scope {
    /// `(read|write)(resource,...|all)` clauses joined by commas.
    fn parse(s: &str) -> Option<Scope> {
        let mut sc = Scope::default();
        let mut rest = s.trim();
        while !rest.is_empty() {
            let open = rest.find('(')?;
            let close = rest.find(')')?;
            if close < open {
                return None;
            }
            let list: Vec<String> = rest[open + 1..close]
                .split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect();
            if list.is_empty() {
                return None;
            }
            match rest[..open].trim() {
                "read" => sc.read.extend(list),
                "write" => sc.write.extend(list),
                _ => return None,
            }
            rest = rest[close + 1..].trim_start();
            rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
        }
        Some(sc)
    }
    fn allows(&self, resource: &str, write: bool) -> bool {
        let has = |l: &[String]| l.iter().any(|x| x == "all" || x == resource);
        has(&self.write) || (!write && has(&self.read))
    }
}

#[derive(Debug, Clone)]
struct Token {
    expires_at: u64,
    scope: Scope,
    valid: bool,
}

// ---------- state ----------

/// Rate-limit counters as shown in `X-RateLimit-*`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RateInfo {
    pub limit: u32,
    pub remaining: u32,
    pub reset: u64,
}

/// Everything a test may want to look at.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AcceloSnapshot {
    pub issues: Vec<Value>,
    pub activities: Vec<Value>,
    pub companies: Vec<Value>,
    pub staff: Vec<Value>,
    pub tokens_issued: u64,
    pub tokens_valid: usize,
    pub rate_limit: RateInfo,
    pub faults: Vec<Fault>,
    pub requests: Vec<RequestRecord>,
}

pub struct AcceloState {
    cfg: AcceloConfig,
    seed: Seed,
    base_url: String,
    cols: BTreeMap<&'static str, Vec<Obj>>,
    next_id: BTreeMap<&'static str, u64>,
    tokens: HashMap<String, Token>,
    tokens_issued: u64,
    rate_limit: u32,
    rate_used: u32,
    rate_window: u64,
    failed_logins: Vec<u64>,
    lockout_until: u64,
    journal: Journal,
}

fn seed_col(seed: &Seed, col: &str) -> Vec<Value> {
    match col {
        "companies" => seed.companies.clone(),
        "staff" => seed.staff.clone(),
        "issue_statuses" => seed.issue_statuses.clone(),
        "issue_types" => seed.issue_types.clone(),
        "issue_priorities" => seed.issue_priorities.clone(),
        "issue_classes" => seed.issue_classes.clone(),
        "issue_resolutions" => seed.issue_resolutions.clone(),
        "affiliations" => seed.affiliations.clone(),
        "issues" => seed.issues.clone(),
        "activities" => seed.activities.clone(),
        _ => vec![],
    }
}

/// Fresh ids for created objects start above these, so issue, activity and company ids are
/// easy to tell apart in tests.
fn id_floor(col: &str) -> u64 {
    match col {
        "issues" => 100,
        "activities" => 500,
        _ => 0,
    }
}

impl AcceloState {
    pub fn new(cfg: AcceloConfig, seed: Seed, base_url: String) -> Self {
        let mut st = AcceloState {
            rate_limit: cfg.rate_limit_per_hour,
            cfg,
            seed,
            base_url,
            cols: BTreeMap::new(),
            next_id: BTreeMap::new(),
            tokens: HashMap::new(),
            tokens_issued: 0,
            rate_used: 0,
            rate_window: 0,
            failed_logins: vec![],
            lockout_until: 0,
            journal: Journal::default(),
        };
        st.reset();
        st
    }

    /// Back to the seed: data, faults, request log, rate counter, lockout. Issued tokens stay valid.
    pub fn reset(&mut self) {
        self.cols.clear();
        self.next_id.clear();
        for col in COLLECTIONS {
            self.cols.insert(col, vec![]);
            self.next_id.insert(col, id_floor(col) + 1);
            for v in seed_col(&self.seed, col) {
                let _ = self.upsert(col, v, false);
            }
        }
        self.rate_limit = self.cfg.rate_limit_per_hour;
        self.rate_used = 0;
        self.failed_logins.clear();
        self.lockout_until = 0;
        self.journal.clear();
    }

    pub fn snapshot(&mut self) -> AcceloSnapshot {
        let vals = |c: &str| self.cols[c].iter().cloned().map(Value::Object).collect();
        let now = now();
        AcceloSnapshot {
            issues: vals("issues"),
            activities: vals("activities"),
            companies: vals("companies"),
            staff: vals("staff"),
            tokens_issued: self.tokens_issued,
            tokens_valid: self
                .tokens
                .values()
                .filter(|t| t.valid && t.expires_at > now)
                .count(),
            rate_limit: self.rate_info(),
            faults: self.journal.faults().to_vec(),
            requests: self.journal.requests().to_vec(),
        }
    }

    /// Every token issued so far answers 401 `invalid_client` from now on.
    pub fn expire_tokens(&mut self) {
        for t in self.tokens.values_mut() {
            t.valid = false;
        }
    }

    /// Sets the hourly limit and how many requests remain in the current window.
    pub fn set_rate_limit(&mut self, limit: u32, remaining: Option<u32>) {
        self.roll_window();
        self.rate_limit = limit;
        self.rate_used = limit.saturating_sub(remaining.unwrap_or(limit));
    }

    fn col(&self, c: &str) -> &Vec<Obj> {
        &self.cols[c]
    }

    fn find(&self, col: &str, id: &str) -> Option<&Obj> {
        self.cols
            .get(col)?
            .iter()
            .find(|r| r.get("id").and_then(vstr).as_deref() == Some(id))
    }

    fn find_mut(&mut self, col: &str, id: &str) -> Option<&mut Obj> {
        self.cols
            .get_mut(col)?
            .iter_mut()
            .find(|r| r.get("id").and_then(vstr).as_deref() == Some(id))
    }

    fn must(&self, col: &str, id: &str) -> Result<&Obj, ApiErr> {
        self.find(col, id)
            .ok_or_else(|| bad(format!("No {} with id '{id}' exists", spec(col).singular)))
    }

    fn fresh_id(&mut self, col: &'static str) -> String {
        let n = self.next_id.entry(col).or_insert(1);
        let id = *n;
        *n += 1;
        id.to_string()
    }

    /// Insert or merge a record (control routes and seeding). Numbers become strings; new
    /// issues/activities get the full field set; issue `standing` follows `status`.
    pub fn upsert(&mut self, col: &str, v: Value, touch: bool) -> Result<Value, String> {
        let col: &'static str = COLLECTIONS
            .iter()
            .find(|c| **c == col)
            .ok_or(format!("unknown collection {col}"))?;
        let Value::Object(mut rec) = stringify_numbers(v) else {
            return Err("a record must be a JSON object".into());
        };
        let id = match rec.get("id").and_then(vstr) {
            Some(id) => id,
            None => self.fresh_id(col),
        };
        rec.insert("id".into(), s(&id));
        if let Ok(n) = id.parse::<u64>() {
            let next = self.next_id.entry(col).or_insert(1);
            *next = (*next).max(n + 1);
        }
        let now = now();
        if touch && matches!(col, "issues" | "activities") && !rec.contains_key("date_modified") {
            rec.insert("date_modified".into(), s(now));
        }
        if col == "issues" && !rec.contains_key("standing") {
            if let Some(st) = rec
                .get("status")
                .and_then(vstr)
                .and_then(|sid| self.find("issue_statuses", &sid))
            {
                rec.insert(
                    "standing".into(),
                    st.get("standing").cloned().unwrap_or(Value::Null),
                );
            }
        }
        // Derived fields follow against_type/against_id unless given explicitly.
        let derive = matches!(col, "issues" | "activities")
            && (rec.contains_key("against_type") || rec.contains_key("against_id"))
            && !rec.contains_key("against");
        let merged = if let Some(existing) = self.find_mut(col, &id) {
            existing.extend(rec);
            existing.clone()
        } else {
            let mut full = match col {
                "issues" => issue_template(&id, now),
                "activities" => activity_template(&id, now),
                _ => Obj::new(),
            };
            full.extend(rec);
            self.cols
                .get_mut(col)
                .expect("collection")
                .push(full.clone());
            full
        };
        if !derive {
            return Ok(Value::Object(merged));
        }
        let (t, i) = (
            merged
                .get("against_type")
                .and_then(vstr)
                .unwrap_or_default(),
            merged.get("against_id").and_then(vstr).unwrap_or_default(),
        );
        let r = self.find_mut(col, &id).expect("just stored");
        r.insert("against".into(), s(format!("{}/{i}", plural(&t))));
        if col == "issues" {
            r.insert(
                "company".into(),
                s(if t == "company" { i } else { "0".into() }),
            );
        }
        Ok(Value::Object(r.clone()))
    }

    fn rate_info(&self) -> RateInfo {
        RateInfo {
            limit: self.rate_limit,
            remaining: self.rate_limit.saturating_sub(self.rate_used),
            reset: self.rate_window + 3600,
        }
    }

    /// Fixed clock-hour windows.
    fn roll_window(&mut self) {
        let now = now();
        let window = now - now % 3600;
        if window != self.rate_window {
            self.rate_window = window;
            self.rate_used = 0;
        }
    }

    fn rate_headers(&self, r: &mut Response<Body>) {
        let i = self.rate_info();
        set_header(r, "X-RateLimit-Limit", i.limit);
        set_header(r, "X-RateLimit-Remaining", i.remaining);
        set_header(r, "X-RateLimit-Reset", i.reset);
    }

    fn token_staff(&self) -> Option<&Obj> {
        match &self.seed.token_staff_id {
            Some(id) => self.find("staff", id),
            None => self.col("staff").first(),
        }
    }

    fn token_staff_id(&self) -> String {
        self.token_staff()
            .and_then(|s| s.get("id"))
            .and_then(vstr)
            .unwrap_or_else(|| "0".into())
    }

    // ---------- request entry ----------

    fn fault_response(&self, code: u16, f: &Fault, path: &str) -> Response<Body> {
        let oauth = path.starts_with("/oauth2/");
        let mut r = match code {
            502..=504 => text_response(
                code,
                "text/html",
                format!("<html><body><h1>{code} Service Unavailable</h1></body></html>"),
            ),
            _ if oauth => oauth_err(code, meta_status_for(code), "Injected fault"),
            _ => envelope(
                code,
                meta_status_for(code),
                "Injected fault",
                Value::Null,
                &Obj::new(),
            ),
        };
        if code == 429 {
            set_header(&mut r, "X-RateLimit-Limit", self.rate_limit);
            set_header(&mut r, "X-RateLimit-Remaining", 0);
            set_header(
                &mut r,
                "X-RateLimit-Reset",
                now() + f.retry_after_secs.unwrap_or(1),
            );
        }
        r
    }

    fn serve(
        &mut self,
        method: &str,
        path: &str,
        pairs: &[(String, String)],
        body: &ReqBody,
        headers: &HeaderMap,
    ) -> Response<Body> {
        if let Some(rest) = path.strip_prefix("/oauth2/") {
            return self.oauth(method, rest, pairs, body, headers);
        }
        let Some(rest) = path.strip_prefix("/api/v0/") else {
            return err_envelope(
                bad(format!("Unknown API version or resource: {path}")),
                &Obj::new(),
            );
        };
        let p = match merge_params(pairs, body) {
            Ok(p) => p,
            Err(e) => {
                let mut r = err_envelope(bad(e), &Obj::new());
                self.rate_headers(&mut r);
                return r;
            }
        };
        self.roll_window();
        if self.rate_used >= self.rate_limit {
            let mut r = err_envelope(
                ApiErr(429, "too_many_requests", "Rate limit exceeded".into()),
                &p,
            );
            self.rate_headers(&mut r);
            return r;
        }
        self.rate_used += 1;
        let mut r = match self.api(method, rest, &p, headers) {
            Ok(v) => envelope(200, "ok", "Everything executed as expected.", v, &p),
            Err(e) => err_envelope(e, &p),
        };
        self.rate_headers(&mut r);
        r
    }

    fn api(
        &mut self,
        method: &str,
        rest: &str,
        p: &Obj,
        headers: &HeaderMap,
    ) -> Result<Value, ApiErr> {
        let segs: Vec<&str> = rest
            .trim_end_matches('/')
            .split('/')
            .map(|s| s.strip_suffix(".json").unwrap_or(s))
            .collect();
        // Authentication: header or `_bearer_token`, never both (tokeninfo may inspect another token).
        let header_tok = bearer(headers);
        let param_tok = pstr(p, "_bearer_token");
        let tokeninfo = segs == ["tokeninfo"];
        let tok = match (&header_tok, &param_tok) {
            (Some(_), Some(_)) if !tokeninfo => {
                return Err(bad("Several credentials were sent at once"))
            }
            (Some(h), _) => h.clone(),
            (None, Some(q)) => q.clone(),
            (None, None) => {
                return Err(ApiErr(
                    401,
                    "invalid_client",
                    "An access token is required".into(),
                ))
            }
        };
        let scope = self.check_token(&tok)?;
        let method = match pstr(p, "_method") {
            Some(m) => m.to_ascii_uppercase(),
            None => method.to_string(),
        };
        let write = method != "GET";
        if !matches!(segs.as_slice(), ["tokeninfo"] | ["staff", "whoami"])
            && !scope.allows(segs[0], write)
        {
            return Err(ApiErr(
                403,
                "invalid_permission",
                format!("The token's scope does not allow this on {}", segs[0]),
            ));
        }
        let me = self.token_staff_id();
        let num = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
        match (method.as_str(), segs.as_slice()) {
            ("GET", ["tokeninfo"]) => {
                let t = if header_tok.is_some() {
                    param_tok.unwrap_or(tok)
                } else {
                    tok
                };
                let info = self
                    .tokens
                    .get(&t)
                    .cloned()
                    .ok_or_else(|| bad("Unknown token"))?;
                let st = self.token_staff().cloned().unwrap_or_default();
                let g = |k: &str| st.get(k).cloned().unwrap_or(Value::Null);
                Ok(json!({
                    "email": g("email"), "firstname": g("firstname"), "surname": g("surname"),
                    "staff_id": g("id"), "expiry_date": s(info.expires_at), "deployment": self.cfg.deployment,
                    "locale": {"timezone": "UTC", "date_format": "d/m/Y"}
                }))
            }
            ("GET", ["staff", "whoami"]) => {
                let st = self
                    .token_staff()
                    .cloned()
                    .ok_or_else(|| bad("No staff member behind this token"))?;
                self.render_one(spec("staff"), &st, p)
            }
            ("GET", [res @ ("issues" | "activities" | "companies" | "staff")]) => {
                self.list(spec(res), p, None)
            }
            ("GET", [res @ ("issues" | "activities" | "companies" | "staff"), "count"]) => {
                let n = self.select(spec(res), p, None)?.len();
                Ok(json!({"count": s(n)}))
            }
            ("GET", ["issues", "recent"]) => {
                let mut items = self.select(spec("issues"), p, None)?;
                items.sort_by_key(|r| {
                    std::cmp::Reverse(
                        r.get("date_submitted")
                            .and_then(vstr)
                            .and_then(|v| v.parse::<i64>().ok()),
                    )
                });
                self.render(spec("issues"), items, p)
            }
            ("GET", ["issues", "statuses"]) => self.list(spec("issue_statuses"), p, None),
            ("GET", ["issues", "types"]) => {
                self.list(spec("issue_types"), p, Some("standing_not(inactive)"))
            }
            ("GET", ["issues", "classes"]) => self.list(spec("issue_classes"), p, None),
            ("GET", ["issues", c @ ("priorities" | "resolutions")]) => {
                self.list(spec(&format!("issue_{c}")), p, None)
            }
            ("GET", ["issues", c @ ("priorities" | "resolutions"), "count"]) => {
                let n = self.select(spec(&format!("issue_{c}")), p, None)?.len();
                Ok(json!({"count": s(n)}))
            }
            ("GET", ["issues", c @ ("types" | "priorities" | "resolutions"), id]) if num(id) => {
                let sp = spec(&format!("issue_{c}"));
                let r = self.must(sp.col, id)?.clone();
                self.render_one(sp, &r, p)
            }
            ("GET", [res @ ("issues" | "activities" | "companies" | "staff"), id]) if num(id) => {
                let r = self.must(res, id)?.clone();
                self.render_one(spec(res), &r, p)
            }
            ("GET", ["issues", id, "progressions"]) if num(id) => {
                let items = self.progressions(id)?;
                Ok(Value::Array(items))
            }
            ("POST" | "PUT", ["issues", id, "progressions", pid, "auto"]) if num(id) => {
                let target = self
                    .progressions(id)?
                    .into_iter()
                    .find(|pr| pr["id"].as_str() == Some(pid))
                    .ok_or_else(|| {
                        bad(format!("No progression '{pid}' available on issue {id}"))
                    })?;
                let status = self
                    .must("issue_statuses", target["status"].as_str().unwrap_or(""))?
                    .clone();
                let issue = self.find_mut("issues", id).expect("checked");
                apply_status(issue, &status, &me, now());
                let issue = issue.clone();
                self.render_one(spec("issues"), &issue, p)
            }
            ("POST", ["issues"]) => {
                let r = self.create_issue(p, &me)?;
                self.render_one(spec("issues"), &r, p)
            }
            ("PUT", ["issues", id]) if num(id) => {
                let r = self.update_issue(id, p, &me)?;
                self.render_one(spec("issues"), &r, p)
            }
            ("POST", ["activities"]) => {
                let r = self.create_activity(p, &me)?;
                self.render_one(spec("activities"), &r, p)
            }
            ("PUT", ["activities", id]) if num(id) => {
                let r = self.update_activity(id, p)?;
                self.render_one(spec("activities"), &r, p)
            }
            ("POST", ["companies"]) => {
                let r = self.create_company(p)?;
                self.render_one(spec("companies"), &r, p)
            }
            ("PUT", ["companies", id]) if num(id) => {
                self.must("companies", id)?;
                let c = self.find_mut("companies", id).expect("checked");
                for k in ["name", "website", "phone", "fax", "comments"] {
                    if let Some(v) = p.get(k).and_then(vstr) {
                        c.insert(k.into(), s(v));
                    }
                }
                c.insert("date_modified".into(), s(now()));
                let c = c.clone();
                self.render_one(spec("companies"), &c, p)
            }
            ("DELETE", [res @ ("issues" | "activities" | "companies"), id]) if num(id) => {
                self.must(res, id)?;
                self.cols
                    .get_mut(*res)
                    .expect("collection")
                    .retain(|r| r.get("id").and_then(vstr).as_deref() != Some(id));
                Ok(Value::Null)
            }
            _ => Err(bad(format!(
                "Unknown resource or method: {method} /api/v0/{rest}"
            ))),
        }
    }

    fn check_token(&mut self, tok: &str) -> Result<Scope, ApiErr> {
        match self.tokens.get(tok) {
            Some(t) if t.valid && t.expires_at > now() => Ok(t.scope.clone()),
            Some(_) => Err(ApiErr(
                401,
                "invalid_client",
                "The access token has expired".into(),
            )),
            None => Err(ApiErr(
                401,
                "invalid_client",
                "The access token is invalid".into(),
            )),
        }
    }

    // ---------- OAuth ----------

    fn oauth(
        &mut self,
        method: &str,
        rest: &str,
        pairs: &[(String, String)],
        body: &ReqBody,
        headers: &HeaderMap,
    ) -> Response<Body> {
        let p = match merge_params(pairs, body) {
            Ok(p) => p,
            Err(e) => return oauth_err(400, "invalid_request", &e),
        };
        match (method, rest) {
            ("POST", "v0/token") => {
                if let Err(r) = self.client_auth(headers, &p, false) {
                    return *r;
                }
                match pstr(&p, "grant_type").as_deref() {
                    None => return oauth_err(400, "invalid_request", "grant_type is required"),
                    Some("client_credentials") => {}
                    Some(g) => {
                        return oauth_err(
                            400,
                            "unsupported_grant_type",
                            &format!("Unsupported grant_type '{g}'"),
                        )
                    }
                }
                let scope_str = pstr(&p, "scope").unwrap_or_else(|| "read(all)".into());
                let Some(scope) = Scope::parse(&scope_str) else {
                    return oauth_err(
                        400,
                        "invalid_scope",
                        &format!("Invalid scope '{scope_str}'"),
                    );
                };
                let expires_in = match pstr(&p, "expires_in") {
                    None => DEFAULT_TOKEN_LIFETIME,
                    Some(v) => match v.parse::<u64>() {
                        Ok(n) if n > 0 => n,
                        _ => {
                            return oauth_err(
                                400,
                                "invalid_request",
                                "expires_in must be a positive number of seconds",
                            )
                        }
                    },
                };
                let token = random_hex(20);
                self.tokens.insert(
                    token.clone(),
                    Token {
                        expires_at: now() + expires_in,
                        scope,
                        valid: true,
                    },
                );
                self.tokens_issued += 1;
                let d = &self.cfg.deployment;
                json_response(
                    200,
                    &json!({
                        "access_token": token, "token_type": "bearer", "expires_in": expires_in,
                        "deployment": d, "deployment_name": format!("{d} (stand-in)"),
                        "deployment_uri": self.base_url, "account_id": "1",
                        "account_details": {"user_access": {}, "user_defined_title": "Stand-in", "locale": {"timezone": "UTC"}}
                    }),
                )
            }
            ("POST", "v0/revoke") => {
                if let Err(r) = self.client_auth(headers, &p, true) {
                    return *r;
                }
                let Some(t) = pstr(&p, "token") else {
                    return oauth_err(400, "invalid_request", "token is required");
                };
                match self.tokens.get_mut(&t) {
                    Some(tok) => tok.valid = false,
                    None => return oauth_err(400, "invalid_request", "Unknown token"),
                }
                envelope(200, "ok", "Token revoked", Value::Null, &p)
            }
            _ => oauth_err(
                400,
                "invalid_request",
                &format!("Unknown OAuth endpoint {method} /oauth2/{rest}"),
            ),
        }
    }

    /// Basic auth (or, for revoke, client_id/client_secret params); counts failures for lockout.
    fn client_auth(
        &mut self,
        headers: &HeaderMap,
        p: &Obj,
        allow_params: bool,
    ) -> Result<(), Box<Response<Body>>> {
        let now = now();
        if now < self.lockout_until {
            self.lockout_until = now + LOCKOUT_WINDOW; // each attempt restarts the timer
            let mut r = oauth_err(
                429,
                "too_many_failed_logins",
                "Too many failed logins; try again later",
            );
            set_header(&mut r, "Retry-After", LOCKOUT_WINDOW);
            return Err(Box::new(r));
        }
        let basic = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
            .and_then(|(_, b64)| {
                base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .ok()
            })
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|s| {
                s.split_once(':')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
            });
        let params = match (pstr(p, "client_id"), pstr(p, "client_secret")) {
            (Some(a), Some(b)) if allow_params => Some((a, b)),
            _ => None,
        };
        let creds = match (basic, params) {
            (Some(_), Some(_)) => {
                return Err(Box::new(oauth_err(
                    400,
                    "invalid_request",
                    "Several credentials were sent at once",
                )))
            }
            (Some(c), None) | (None, Some(c)) => Some(c),
            (None, None) => None,
        };
        if creds
            .as_ref()
            .is_some_and(|(id, sec)| *id == self.cfg.client_id && *sec == self.cfg.client_secret)
        {
            return Ok(());
        }
        self.failed_logins.retain(|t| *t + LOCKOUT_WINDOW > now);
        self.failed_logins.push(now);
        if self.failed_logins.len() > LOCKOUT_FAILURES {
            self.lockout_until = now + LOCKOUT_WINDOW;
        }
        Err(Box::new(oauth_err(
            401,
            "invalid_client",
            "Client authentication failed",
        )))
    }

    // ---------- reading ----------

    /// Filtered (`_filters`, `_search`) and sorted records, before pagination.
    fn select(
        &self,
        sp: &ResSpec,
        p: &Obj,
        default_filter: Option<&str>,
    ) -> Result<Vec<Obj>, ApiErr> {
        let mut clauses = match p.get("_filters") {
            Some(v) => filters::parse_json(v).map_err(bad)?,
            None => vec![],
        };
        if let Some(d) = default_filter {
            let overridden = clauses
                .iter()
                .any(|c| matches!(c, filters::Clause::Leaf(n, _) if n.starts_with("standing")));
            if !overridden {
                clauses.insert(
                    0,
                    filters::parse_str(d)
                        .expect("valid default filter")
                        .remove(0),
                );
            }
        }
        let q = filters::compile(&clauses, &sp.filters).map_err(bad)?;
        let search = pstr(p, "_search");
        if search.is_some() && sp.search.is_empty() {
            return Err(bad(format!("_search is not supported on {}", sp.col)));
        }
        let mut out: Vec<Obj> = self
            .col(sp.col)
            .iter()
            .filter(|r| {
                q.matches(r, sp.search)
                    && search
                        .as_ref()
                        .is_none_or(|t| search_match(r, sp.search, std::slice::from_ref(t)))
            })
            .cloned()
            .collect();
        q.sort(&mut out);
        Ok(out)
    }

    fn list(&self, sp: &ResSpec, p: &Obj, default_filter: Option<&str>) -> Result<Value, ApiErr> {
        let items = self.select(sp, p, default_filter)?;
        self.render(sp, items, p)
    }

    /// `_limit` (default 10, max 100), `_page` (zero-based; `_offset` ignored when present), then `_fields`.
    fn render(&self, sp: &ResSpec, items: Vec<Obj>, p: &Obj) -> Result<Value, ApiErr> {
        let int = |k: &str| -> Result<Option<usize>, ApiErr> {
            pstr(p, k)
                .map(|v| {
                    v.parse::<usize>()
                        .map_err(|_| bad(format!("{k} must be a non-negative integer")))
                })
                .transpose()
        };
        let limit = int("_limit")?.unwrap_or(10).clamp(1, 100);
        let skip = match int("_page")? {
            Some(page) => page * limit,
            None => int("_offset")?.unwrap_or(0),
        };
        let fields = self.fields(p)?;
        let hide = flag(p, "_hide_defaults");
        Ok(Value::Array(
            items
                .iter()
                .skip(skip)
                .take(limit)
                .map(|r| self.project(sp, r, &fields, hide))
                .collect(),
        ))
    }

    fn render_one(&self, sp: &ResSpec, r: &Obj, p: &Obj) -> Result<Value, ApiErr> {
        Ok(self.project(sp, r, &self.fields(p)?, flag(p, "_hide_defaults")))
    }

    fn fields(&self, p: &Obj) -> Result<Vec<FieldReq>, ApiErr> {
        filters::parse_fields(&pstr(p, "_fields").unwrap_or_default()).map_err(bad)
    }

    /// Defaults (unless `_hide_defaults`) + named fields; `x()`/`x(a,b)` nest linked objects.
    fn project(&self, sp: &ResSpec, r: &Obj, fields: &[FieldReq], hide: bool) -> Value {
        let mut out = Obj::new();
        if !hide {
            for d in sp.defaults {
                out.insert(d.to_string(), r.get(*d).cloned().unwrap_or(Value::Null));
            }
        }
        for f in fields {
            if f.name == "_ALL" {
                for (k, v) in r {
                    if !matches!(k.as_str(), "staff_rate" | "staff_cost_rate") {
                        out.insert(k.clone(), v.clone());
                    }
                }
                continue;
            }
            let Some(v) = r.get(&f.name) else { continue };
            let link = sp.links.iter().find(|(n, _)| *n == f.name).map(|(_, c)| *c);
            match (&f.sub, link) {
                (Some(sub), Some(col)) => {
                    let nested = vstr(v)
                        .and_then(|id| self.find(col, &id))
                        .map(|o| self.project(spec(col), o, sub, false))
                        .unwrap_or(Value::Null);
                    out.insert(f.name.clone(), nested);
                }
                _ => {
                    out.insert(f.name.clone(), v.clone());
                }
            }
        }
        Value::Object(out)
    }

    // ---------- issues ----------

    fn check_against(&self, t: &str, id: &str) -> Result<(), ApiErr> {
        let col = match t {
            "company" => "companies",
            "issue" => "issues",
            "staff" => "staff",
            "affiliation" => "affiliations",
            _ => return Err(bad(format!("No {t} with id '{id}' exists"))),
        };
        self.must(col, id).map(|_| ())
    }

    /// Status from `standing` (wins) or `status_id`; at creation only `start=yes` statuses.
    fn pick_status(&self, p: &Obj, creating: bool) -> Result<Option<Obj>, ApiErr> {
        let mut statuses = self.col("issue_statuses").clone();
        let ord = |r: &Obj, k: &str| {
            r.get(k)
                .and_then(vstr)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0)
        };
        statuses.sort_by_key(|r| (ord(r, "ordering"), ord(r, "id")));
        let startable = |r: &Obj| r.get("start").and_then(vstr).as_deref() == Some("yes");
        if let Some(standing) = pstr(p, "standing") {
            if !matches!(
                standing.as_str(),
                "submitted" | "open" | "resolved" | "closed" | "inactive"
            ) {
                return Err(bad(format!("Invalid standing '{standing}'")));
            }
            let with: Vec<&Obj> = statuses
                .iter()
                .filter(|r| r.get("standing").and_then(vstr).as_deref() == Some(&standing))
                .collect();
            let pick = if creating {
                with.iter().find(|r| startable(r)).or(with.first())
            } else {
                with.first()
            };
            return pick
                .map(|r| Some((*r).clone()))
                .ok_or_else(|| bad(format!("No issue status has standing '{standing}'")));
        }
        if let Some(id) = pstr(p, "status_id") {
            let st = self.must("issue_statuses", &id)?;
            if creating && !startable(st) {
                return Err(bad(format!(
                    "Issue status '{id}' cannot be used when creating an issue"
                )));
            }
            return Ok(Some(st.clone()));
        }
        Ok(if creating {
            statuses
                .iter()
                .find(|r| startable(r))
                .or(statuses.first())
                .cloned()
        } else {
            None
        })
    }

    fn opt_ref(&self, p: &Obj, param: &str, col: &str) -> Result<Option<String>, ApiErr> {
        match pstr(p, param) {
            None => Ok(None),
            Some(v) if v == "0" => Ok(Some(v)),
            Some(v) => self.must(col, &v).map(|_| Some(v)),
        }
    }

    fn create_issue(&mut self, p: &Obj, me: &str) -> Result<Obj, ApiErr> {
        let title = required(p, "title")?;
        let type_id = required(p, "type_id")?;
        let at = required(p, "against_type")?;
        let aid = required(p, "against_id")?;
        self.check_against(&at, &aid)?;
        let ty = self.must("issue_types", &type_id)?.clone();
        let status = self
            .pick_status(p, true)?
            .ok_or_else(|| bad("No issue statuses are configured"))?;
        let priority = self
            .opt_ref(p, "priority_id", "issue_priorities")?
            .or_else(|| ty.get("default_issue_priority").and_then(vstr))
            .unwrap_or_else(|| "0".into());
        let assignee = self.opt_ref(p, "assignee", "staff")?;
        let class = self
            .opt_ref(p, "class_id", "issue_classes")?
            .or_else(|| ty.get("default_issue_class").and_then(vstr));
        let affiliation = self.opt_ref(p, "affiliation_id", "affiliations")?;
        let date_started = timestamp(p, "date_started")?;
        let date_due = timestamp(p, "date_due")?;
        let now = now();
        let id = self.fresh_id("issues");
        let mut r = issue_template(&id, now);
        let set = |r: &mut Obj, k: &str, v: Option<String>| {
            if let Some(v) = v {
                r.insert(k.into(), s(v));
            }
        };
        set(&mut r, "title", Some(title));
        set(&mut r, "description", pstr(p, "description"));
        set(&mut r, "against_type", Some(at.clone()));
        set(&mut r, "against_id", Some(aid.clone()));
        set(&mut r, "against", Some(format!("{}/{aid}", plural(&at))));
        set(
            &mut r,
            "company",
            Some(if at == "company" {
                aid.clone()
            } else {
                "0".into()
            }),
        );
        set(&mut r, "issue_type", Some(type_id));
        set(&mut r, "issue_priority", Some(priority));
        set(&mut r, "assignee", assignee);
        set(&mut r, "class", class);
        set(&mut r, "affiliation", affiliation);
        set(&mut r, "submitted_by", Some(me.into()));
        set(&mut r, "date_submitted", Some(now.to_string()));
        set(&mut r, "date_started", date_started);
        set(&mut r, "date_due", date_due);
        apply_status(&mut r, &status, me, now);
        self.cols.get_mut("issues").expect("issues").push(r.clone());
        Ok(r)
    }

    fn update_issue(&mut self, id: &str, p: &Obj, me: &str) -> Result<Obj, ApiErr> {
        self.must("issues", id)?;
        if p.contains_key("type_id") {
            return Err(bad("type_id cannot be updated"));
        }
        let against = match (pstr(p, "against_type"), pstr(p, "against_id")) {
            (None, None) => None,
            (Some(t), Some(i)) => {
                self.check_against(&t, &i)?;
                Some((t, i))
            }
            _ => return Err(bad("against_type and against_id must be sent together")),
        };
        if p.contains_key("title") && pstr(p, "title").is_none() {
            return Err(bad("title cannot be empty"));
        }
        let status = self.pick_status(p, false)?;
        let mut refs = Vec::new();
        for (param, field, col) in [
            ("priority_id", "issue_priority", "issue_priorities"),
            ("assignee", "assignee", "staff"),
            ("class_id", "class", "issue_classes"),
            ("affiliation_id", "affiliation", "affiliations"),
            ("resolution_id", "resolution", "issue_resolutions"),
        ] {
            if let Some(v) = self.opt_ref(p, param, col)? {
                refs.push((field, v));
            }
        }
        let dates = [
            ("date_started", timestamp(p, "date_started")?),
            ("date_due", timestamp(p, "date_due")?),
        ];
        let now = now();
        let r = self.find_mut("issues", id).expect("checked");
        for k in ["title", "description"] {
            if let Some(v) = p.get(k).and_then(vstr) {
                r.insert(k.into(), s(v));
            }
        }
        // Sending these empty clears them.
        for (param, field) in [
            ("resolution_detail", "resolution_detail"),
            ("contract_id", "contract"),
        ] {
            if let Some(v) = p.get(param).and_then(vstr) {
                r.insert(
                    field.into(),
                    s(if v.is_empty() && field == "contract" {
                        "0".into()
                    } else {
                        v
                    }),
                );
            }
        }
        for (field, v) in refs {
            r.insert(field.into(), s(v));
        }
        for (k, v) in dates {
            if let Some(v) = v {
                r.insert(k.into(), s(v));
            }
        }
        if let Some((t, i)) = against {
            r.insert("against".into(), s(format!("{}/{i}", plural(&t))));
            r.insert(
                "company".into(),
                s(if t == "company" {
                    i.clone()
                } else {
                    "0".into()
                }),
            );
            r.insert("against_type".into(), s(t));
            r.insert("against_id".into(), s(i));
        }
        if let Some(st) = status {
            apply_status(r, &st, me, now);
        }
        r.insert("date_modified".into(), s(now));
        Ok(r.clone())
    }

    /// One progression per other usable status (id = target status id).
    fn progressions(&self, id: &str) -> Result<Vec<Value>, ApiErr> {
        let issue = self.must("issues", id)?;
        let current = issue.get("status").and_then(vstr).unwrap_or_default();
        Ok(self
            .col("issue_statuses")
            .iter()
            .filter(|st| st.get("id").and_then(vstr) != Some(current.clone()))
            .filter(|st| st.get("standing").and_then(vstr).as_deref() != Some("inactive"))
            .map(|st| {
                let sid = st.get("id").and_then(vstr).unwrap_or_default();
                let title = st.get("title").and_then(vstr).unwrap_or_default();
                json!({"id": sid, "title": format!("Move to {title}"), "status": sid})
            })
            .collect())
    }

    // ---------- activities ----------

    fn create_activity(&mut self, p: &Obj, me: &str) -> Result<Obj, ApiErr> {
        const AGAINST: &[&str] = &[
            "activity_event",
            "asset",
            "affiliation",
            "account_invoice",
            "account_purchase",
            "contact",
            "contract",
            "contract_period",
            "company",
            "issue",
            "job",
            "milestone",
            "prospect",
            "request",
            "staff",
            "task",
        ];
        let subject = required(p, "subject")?;
        let at = required(p, "against_type")?;
        let aid = required(p, "against_id")?;
        if !AGAINST.contains(&at.as_str()) {
            return Err(bad(format!("Invalid against_type '{at}'")));
        }
        self.check_against(&at, &aid)?;
        let medium = pstr(p, "medium").unwrap_or_else(|| "note".into());
        if !matches!(medium.as_str(), "note" | "email" | "meeting" | "call") {
            return Err(bad(format!("Invalid medium '{medium}'")));
        }
        let visibility = pstr(p, "visibility").unwrap_or_else(|| "private".into());
        if !matches!(visibility.as_str(), "private" | "confidential" | "all") {
            return Err(bad(format!("Invalid visibility '{visibility}'")));
        }
        let owner_type = pstr(p, "owner_type").unwrap_or_else(|| "staff".into());
        let owner_id = pstr(p, "owner_id").unwrap_or_else(|| me.into());
        match owner_type.as_str() {
            "staff" => self.must("staff", &owner_id).map(|_| ())?,
            "affiliation" => self.must("affiliations", &owner_id).map(|_| ())?,
            _ => return Err(bad(format!("Invalid owner_type '{owner_type}'"))),
        }
        let secs = |k: &str| -> Result<String, ApiErr> {
            pstr(p, k).map_or(Ok("0".into()), |v| {
                v.parse::<u64>()
                    .map(|n| n.to_string())
                    .map_err(|_| bad(format!("{k} must be seconds")))
            })
        };
        let (billable, nonbillable) = (secs("billable")?, secs("nonbillable")?);
        if billable != "0" || nonbillable != "0" {
            if owner_type != "staff" {
                return Err(bad("Logging time needs a staff owner"));
            }
            if visibility != "all" {
                return Err(bad("visibility must be 'all' to log time"));
            }
            if billable != "0"
                && !matches!(
                    at.as_str(),
                    "issue" | "job" | "milestone" | "contract" | "contract_period"
                )
            {
                return Err(bad(
                    "billable time needs an issue, job, milestone, contract or period",
                ));
            }
        }
        let block_send = match pstr(p, "block_send").map(|v| v.to_ascii_lowercase()) {
            None => "0",
            Some(v) if matches!(v.as_str(), "1" | "yes" | "true") => "1",
            Some(v) if matches!(v.as_str(), "0" | "no" | "false") => "0",
            Some(v) => return Err(bad(format!("Invalid block_send '{v}'"))),
        };
        let thread_id = self.opt_ref(p, "thread_id", "activities")?;
        let parent_id = self
            .opt_ref(p, "parent_id", "activities")?
            .unwrap_or_else(|| "0".into());
        let class = pstr(p, "class_id").unwrap_or_else(|| "0".into()); // no activity classes modelled
        let dates = [
            ("date_started", timestamp(p, "date_started")?),
            ("date_ended", timestamp(p, "date_ended")?),
        ];
        let now = now();
        let id = self.fresh_id("activities");
        let thread_id = thread_id.filter(|t| t != "0").unwrap_or_else(|| id.clone());
        let body = pstr(p, "body").unwrap_or_default();
        let mut r = activity_template(&id, now);
        for (k, v) in [
            ("subject", s(subject)),
            (
                "preview_body",
                s(body.chars().take(250).collect::<String>()),
            ),
            ("body", s(body)),
            ("html_body", s(pstr(p, "html_body").unwrap_or_default())),
            ("medium", s(medium)),
            ("visibility", s(visibility)),
            ("against", s(format!("{}/{aid}", plural(&at)))),
            ("against_type", s(at.clone())),
            ("against_id", s(aid.clone())),
            ("owner", s(format!("{}/{owner_id}", plural(&owner_type)))),
            (
                "staff",
                s(if owner_type == "staff" {
                    owner_id.clone()
                } else {
                    "0".into()
                }),
            ),
            ("owner_type", s(owner_type)),
            ("owner_id", s(owner_id)),
            ("thread", s(format!("activities/{thread_id}"))),
            ("thread_id", s(thread_id)),
            ("parent", s(format!("activities/{parent_id}"))),
            ("parent_id", s(parent_id)),
            ("billable", s(billable)),
            ("nonbillable", s(nonbillable)),
            ("details", s(pstr(p, "details").unwrap_or_default())),
            ("activity_class", s(class)),
            (
                "activity_priority",
                s(pstr(p, "priority_id").unwrap_or_else(|| "0".into())),
            ),
            (
                "message_id",
                p.get("message_id").cloned().unwrap_or(Value::Null),
            ),
            ("block_send", s(block_send)),
        ] {
            r.insert(k.into(), v);
        }
        for (k, v) in dates {
            if let Some(v) = v {
                r.insert(k.into(), s(v));
            }
        }
        for k in ["to", "cc", "bcc"] {
            if let Some(v) = p.get(k) {
                r.insert(k.into(), v.clone());
            }
        }
        self.cols
            .get_mut("activities")
            .expect("activities")
            .push(r.clone());
        if at == "issue" {
            if let Some(issue) = self.find_mut("issues", &aid) {
                issue.insert("date_last_interacted".into(), s(now));
            }
        }
        Ok(r)
    }

    fn update_activity(&mut self, id: &str, p: &Obj) -> Result<Obj, ApiErr> {
        self.must("activities", id)?;
        if let Some(v) = pstr(p, "visibility") {
            if !matches!(v.as_str(), "private" | "confidential" | "all") {
                return Err(bad(format!("Invalid visibility '{v}'")));
            }
        }
        let dates = [
            ("date_started", timestamp(p, "date_started")?),
            ("date_ended", timestamp(p, "date_ended")?),
        ];
        let r = self.find_mut("activities", id).expect("checked");
        for (param, field) in [
            ("subject", "subject"),
            ("body", "body"),
            ("visibility", "visibility"),
            ("details", "details"),
            ("priority_id", "activity_priority"),
            ("class_id", "activity_class"),
            ("message_id", "message_id"),
        ] {
            if let Some(v) = p.get(param).and_then(vstr) {
                if param == "body" {
                    r.insert(
                        "preview_body".into(),
                        s(v.chars().take(250).collect::<String>()),
                    );
                }
                r.insert(field.into(), s(v));
            }
        }
        for (k, v) in dates {
            if let Some(v) = v {
                r.insert(k.into(), s(v));
            }
        }
        r.insert("date_modified".into(), s(now()));
        Ok(r.clone())
    }

    // ---------- companies ----------

    fn create_company(&mut self, p: &Obj) -> Result<Obj, ApiErr> {
        let name = required(p, "name")?;
        let now = now();
        let id = self.fresh_id("companies");
        let mut r = Obj::new();
        r.insert("id".into(), s(&id));
        r.insert("name".into(), s(name));
        for k in ["website", "phone", "fax", "comments", "custom_id"] {
            r.insert(k.into(), s(pstr(p, k).unwrap_or_default()));
        }
        // Here status_id beats standing (the reverse of issues).
        r.insert(
            "status".into(),
            s(pstr(p, "status_id").unwrap_or_else(|| "0".into())),
        );
        r.insert(
            "standing".into(),
            s(pstr(p, "standing").unwrap_or_else(|| "active".into())),
        );
        r.insert(
            "parent".into(),
            s(pstr(p, "parent_id").unwrap_or_else(|| "0".into())),
        );
        r.insert("date_created".into(), s(now));
        r.insert("date_modified".into(), s(now));
        r.insert("date_last_interacted".into(), Value::Null);
        self.cols
            .get_mut("companies")
            .expect("companies")
            .push(r.clone());
        Ok(r)
    }
}

fn issue_template(id: &str, now: u64) -> Obj {
    let mut r = Obj::new();
    for (k, v) in [
        ("id", s(id)),
        ("title", s("")),
        ("custom_id", s("")),
        ("description", s("")),
        ("against_type", Value::Null),
        ("against_id", Value::Null),
        ("against", Value::Null),
        ("company", s("0")),
        ("issue_type", s("0")),
        ("class", s("0")),
        ("issue_priority", s("0")),
        ("status", s("0")),
        ("standing", Value::Null),
        ("resolution", s("0")),
        ("resolution_detail", s("")),
        ("date_submitted", s(now)),
        ("date_opened", Value::Null),
        ("date_started", Value::Null),
        ("date_resolved", Value::Null),
        ("date_closed", Value::Null),
        ("date_due", Value::Null),
        ("date_last_interacted", Value::Null),
        ("date_modified", s(now)),
        ("submitted_by", s("0")),
        ("opened_by", s("0")),
        ("resolved_by", s("0")),
        ("closed_by", s("0")),
        ("assignee", s("0")),
        ("affiliation", s("0")),
        ("contract", s("0")),
        ("referrer_type", Value::Null),
        ("referrer_id", s("0")),
        ("billable_seconds", s("0")),
    ] {
        r.insert(k.into(), v);
    }
    r
}

fn activity_template(id: &str, now: u64) -> Obj {
    let mut r = Obj::new();
    for (k, v) in [
        ("id", s(id)),
        ("subject", s("")),
        ("confidential", s("0")),
        ("body", s("")),
        ("html_body", s("")),
        ("preview_body", s("")),
        ("medium", s("note")),
        ("visibility", s("private")),
        ("against_type", Value::Null),
        ("against_id", Value::Null),
        ("against", Value::Null),
        ("owner_type", s("staff")),
        ("owner_id", s("0")),
        ("owner", Value::Null),
        ("thread", s(format!("activities/{id}"))),
        ("thread_id", s(id)),
        ("parent", s("activities/0")),
        ("parent_id", s("0")),
        ("date_created", s(now)),
        ("date_started", Value::Null),
        ("date_ended", Value::Null),
        ("date_logged", s(now)),
        ("date_modified", s(now)),
        ("details", s("")),
        ("billable", s("0")),
        ("nonbillable", s("0")),
        ("staff", s("0")),
        ("activity_class", s("0")),
        ("activity_priority", s("0")),
        ("task", s("0")),
        ("rate", s("0")),
        ("block_send", s("0")),
    ] {
        r.insert(k.into(), v);
    }
    r
}

/// Sets status + standing and the date/by fields of the standing entered.
fn apply_status(r: &mut Obj, status: &Obj, me: &str, now: u64) {
    let standing = status.get("standing").and_then(vstr).unwrap_or_default();
    r.insert(
        "status".into(),
        status.get("id").cloned().unwrap_or(Value::Null),
    );
    r.insert("standing".into(), s(&standing));
    let unset = |r: &Obj, k: &str| matches!(r.get(k), None | Some(Value::Null));
    match standing.as_str() {
        "open" if unset(r, "date_opened") => {
            r.insert("date_opened".into(), s(now));
            r.insert("opened_by".into(), s(me));
        }
        "resolved" => {
            r.insert("date_resolved".into(), s(now));
            r.insert("resolved_by".into(), s(me));
        }
        "closed" => {
            r.insert("date_closed".into(), s(now));
            r.insert("closed_by".into(), s(me));
        }
        _ => {}
    }
    if matches!(standing.as_str(), "submitted" | "open") {
        r.insert("date_resolved".into(), Value::Null);
        r.insert("date_closed".into(), Value::Null);
    }
}

// ---------- HTTP ----------

impl StandIn for AcceloState {
    fn journal(&mut self) -> &mut Journal {
        &mut self.journal
    }

    fn answer(&mut self, req: &Req<'_>, fault: Option<(u16, &Fault)>) -> Response<Body> {
        match fault {
            Some((code, f)) => self.fault_response(code, f, req.path),
            None => self.serve(req.method, req.path, &req.pairs, &req.body, req.headers),
        }
    }

    fn control(&mut self, method: &str, route: &str, body: &[u8]) -> Option<Response<Body>> {
        control(self, method, route, body)
    }
}

#[derive(Deserialize)]
struct RateReq {
    limit: Option<u32>,
    remaining: Option<u32>,
}

fn control(s: &mut AcceloState, method: &str, route: &str, body: &[u8]) -> Option<Response<Body>> {
    let ok = |v: Value| json_response(200, &v);
    Some(match (method, route) {
        ("GET", "state") => ok(serde_json::to_value(s.snapshot()).unwrap_or_default()),
        ("POST", "expire-tokens") => {
            s.expire_tokens();
            ok(json!({"ok": true}))
        }
        ("POST", "reset") => {
            s.reset();
            ok(json!({"ok": true}))
        }
        ("POST", "rate-limit") => match control_json(body)
            .and_then(|v| serde_json::from_value::<RateReq>(v).map_err(|e| e.to_string()))
        {
            Ok(r) => {
                let limit = r.limit.unwrap_or(s.rate_limit);
                s.set_rate_limit(limit, r.remaining);
                ok(serde_json::to_value(s.rate_info()).unwrap_or_default())
            }
            Err(e) => control_fail(400, e),
        },
        ("PUT" | "POST", col) if COLLECTIONS.contains(&col) => {
            let res = control_json(body).and_then(|v| {
                one_or_many(v)
                    .into_iter()
                    .map(|r| s.upsert(col, r, true))
                    .collect::<Result<Vec<_>, _>>()
            });
            match res {
                Ok(v) => ok(Value::Array(v)),
                Err(e) => control_fail(400, e),
            }
        }
        _ => return None,
    })
}
