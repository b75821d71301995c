//! The engine against an in-memory Accelo/Continuum (answers scripted per path) and rusqlite.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

use futures::executor::block_on;
use serde_json::{json, Value};

use super::*;
use crate::accelo::AcceloCredentials;
use crate::continuum::inbound::TicketEntry;
use crate::continuum::outbound::ContinuumApi;
use crate::continuum::ticket::{TicketComment, TicketSnapshot};
use crate::ports::{HttpRequest, HttpResponse};
use crate::store::testing::MemorySql;

#[derive(Default)]
struct FakeApis {
    log: RefCell<Vec<HttpRequest>>,
    /// Scripted failures, taken in order, by "METHOD path-prefix".
    failures: RefCell<HashMap<String, VecDeque<Result<HttpResponse, String>>>>,
    next_id: RefCell<u32>,
    companies: Vec<(i64, &'static str)>,
    continuum_tickets: HashMap<String, Value>,
}

fn ok(v: Value) -> HttpResponse {
    HttpResponse { status: 200, headers: vec![], body: json!({"meta": {"status": "ok"}, "response": v}).to_string() }
}

impl FakeApis {
    fn fail(&self, key: &str, r: Result<HttpResponse, String>) {
        self.failures.borrow_mut().entry(key.into()).or_default().push_back(r);
    }
    fn calls(&self, method: &str, path_prefix: &str) -> Vec<HttpRequest> {
        self.log.borrow().iter().filter(|r| r.method == method && path_of(&r.url).starts_with(path_prefix)).cloned().collect()
    }
}

fn path_of(url: &str) -> &str {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    rest.find('/').map(|i| &rest[i..]).unwrap_or("/")
}

impl HttpClient for FakeApis {
    async fn send(&self, req: HttpRequest) -> Result<HttpResponse, String> {
        self.log.borrow_mut().push(req.clone());
        let path = path_of(&req.url).to_string();
        let scripted = {
            let mut f = self.failures.borrow_mut();
            f.iter_mut().find(|(k, q)| !q.is_empty() && format!("{} {}", req.method, path).starts_with(k.as_str())).and_then(|(_, q)| q.pop_front())
        };
        if let Some(r) = scripted {
            return r;
        }
        let next = || {
            *self.next_id.borrow_mut() += 1;
            (100 + *self.next_id.borrow()).to_string()
        };
        Ok(match (req.method, path.split('?').next().unwrap()) {
            ("POST", "/oauth2/v0/token") => HttpResponse {
                status: 200,
                headers: vec![],
                body: json!({"access_token": "tok", "token_tpye": "bearer", "expires_in": "86400"}).to_string(),
            },
            ("GET", "/api/v0/companies") => ok(Value::Array(
                self.companies.iter().map(|(id, n)| json!({"id": id.to_string(), "name": n})).collect(),
            )),
            ("GET", "/api/v0/issues") => ok(json!([])),
            ("POST", "/api/v0/issues") => ok(json!({"id": next()})),
            ("PUT", p) if p.starts_with("/api/v0/issues/") => ok(json!({"id": p.rsplit('/').next()})),
            ("POST", "/api/v0/activities") => ok(json!({"id": next()})),
            ("GET", p) if p.starts_with("/tickets/") => match self.continuum_tickets.get(&p["/tickets/".len()..]) {
                Some(t) => HttpResponse { status: 200, headers: vec![("Content-Type".into(), "application/json".into())], body: t.to_string() },
                None => HttpResponse { status: 404, headers: vec![], body: String::new() },
            },
            _ => HttpResponse { status: 400, headers: vec![], body: json!({"meta": {"status": "invalid_request"}}).to_string() },
        })
    }
}

fn mappings() -> Mappings {
    let docs: HashMap<&str, &str> = [
        ("config", r#"{"noc_user_id": 14, "helpdesk_user_id": 15, "issue_type_id": 3}"#),
        ("status_in", r#"{"New": 1, "In Progress": 2}"#),
        ("sites", r#"{"S100": 39}"#),
    ]
    .into_iter()
    .collect();
    Mappings::parse(|k| docs.get(k).map(|s| s.to_string()))
}

fn ticket(id: &str, minute: u32) -> TicketSnapshot {
    TicketSnapshot {
        ticket_id: id.into(),
        subject: Some("Disk low".into()),
        status: Some("New".into()),
        site_code: Some("S100".into()),
        site_name: Some("Acme Dental".into()),
        updated: Some(chrono::DateTime::from_timestamp(1_796_000_000 + i64::from(minute) * 60, 0).unwrap()),
        ..Default::default()
    }
}

struct World {
    sql: MemorySql,
    apis: FakeApis,
    mappings: Mappings,
    policy: RetryPolicy,
}

impl World {
    fn new(apis: FakeApis) -> Self {
        let sql = MemorySql::new();
        Store::new(&sql).migrate().unwrap();
        World { sql, apis, mappings: mappings(), policy: RetryPolicy::default() }
    }
    fn store(&self) -> Store<'_, MemorySql> {
        Store::new(&self.sql)
    }
    fn deliver(&self, t: TicketSnapshot, now: i64) {
        self.store().ingest(&[TicketEntry::Snapshot(t)], now).unwrap();
    }
    fn run(&self, now: i64) -> RunReport {
        self.run_with(now, None)
    }
    fn run_with(&self, now: i64, catalog: Option<&AcceloCatalog>) -> RunReport {
        let creds = AcceloCredentials { base_url: "https://a.test".into(), client_id: "id".into(), client_secret: "secret".into() };
        let accelo = AcceloClient::new(&self.apis, creds, now, None);
        let api = ContinuumApi { base_url: "https://c.test".into(), api_token: "t".into(), integrator_user: "acme".into() };
        let continuum = ContinuumClient::new(&self.apis, api);
        let mut engine = Engine::new(self.store(), &accelo, &continuum, &self.mappings, self.policy, now);
        engine.catalog = catalog;
        block_on(engine.run_due(50)).unwrap()
    }
    fn state(&self, id: &str) -> String {
        self.store().ticket(id).unwrap().unwrap().state
    }
}

fn body(r: &HttpRequest) -> Value {
    serde_json::from_str(r.body.as_deref().unwrap_or("null")).unwrap()
}

#[test]
fn a_ticket_becomes_one_issue_and_updates_touch_only_changes() {
    let w = World::new(FakeApis::default());
    w.deliver(ticket("1", 0), 0);
    assert_eq!(w.run(0).synced, 1);
    assert_eq!(w.apis.calls("POST", "/api/v0/issues").len(), 1);
    assert_eq!(w.state("1"), "synced");
    // Nothing new: nothing due.
    assert_eq!(w.run(1).processed, 0);
    let mut t = ticket("1", 5);
    t.status = Some("In Progress".into());
    w.deliver(t, 10);
    w.run(10);
    let puts = w.apis.calls("PUT", "/api/v0/issues/101");
    assert_eq!(puts.len(), 1);
    assert_eq!(body(&puts[0]), json!({"status_id": 2}));
    assert_eq!(w.apis.calls("POST", "/api/v0/issues").len(), 1, "still one issue");
}

#[test]
fn comments_become_activities_once() {
    let w = World::new(FakeApis::default());
    let mut t = ticket("1", 0);
    t.comments = vec![TicketComment { comment_id: Some("a".into()), body: "one".into(), ..Default::default() }];
    w.deliver(t.clone(), 0);
    w.run(0);
    t.updated = Some(t.updated.unwrap() + chrono::Duration::minutes(1));
    t.comments.push(TicketComment { comment_id: Some("b".into()), body: "two".into(), internal: true, ..Default::default() });
    w.deliver(t, 1);
    w.run(1);
    let acts = w.apis.calls("POST", "/api/v0/activities");
    assert_eq!(acts.len(), 2);
    assert_eq!(body(&acts[1])["visibility"], "private");
    assert_eq!(body(&acts[1])["against_id"], 101);
}

#[test]
fn transient_failures_retry_with_backoff_then_succeed() {
    let w = World::new(FakeApis::default());
    w.apis.fail("POST /api/v0/issues", Ok(HttpResponse { status: 500, headers: vec![], body: r#"{"meta":{"status":"server_error"}}"#.into() }));
    w.deliver(ticket("1", 0), 0);
    let r = w.run(0);
    assert_eq!((r.retried, r.synced), (1, 0));
    assert_eq!(w.state("1"), "retrying");
    assert_eq!(w.run(29_999).processed, 0, "backoff respected");
    assert_eq!(w.run(30_000).synced, 1);
}

#[test]
fn lost_create_answer_finds_the_issue_instead_of_making_another() {
    let w = World::new(FakeApis::default());
    w.apis.fail("POST /api/v0/issues", Err("connection reset".into()));
    w.deliver(ticket("1", 0), 0);
    w.run(0);
    // The issue was made after all; Accelo lists it with the marker.
    w.apis.fail("GET /api/v0/issues", Ok(ok(json!([{"id": "77", "description": "x\nContinuum ticket: 1"}]))));
    w.run(60_000);
    assert_eq!(w.apis.calls("POST", "/api/v0/issues").len(), 1, "no second create");
    assert_eq!(w.store().ticket("1").unwrap().unwrap().issue_id.as_deref(), Some("77"));
}

#[test]
fn invalid_request_goes_to_dead_letters_and_replay_revives() {
    let w = World::new(FakeApis::default());
    w.apis.fail("POST /api/v0/issues", Ok(HttpResponse { status: 400, headers: vec![], body: r#"{"meta":{"status":"invalid_request","message":"bad status"}}"#.into() }));
    w.deliver(ticket("1", 0), 0);
    assert_eq!(w.run(0).dead, 1);
    assert_eq!(w.state("1"), "dead");
    assert_eq!(w.store().counts().unwrap().dead_letters, 1);
    assert_eq!(w.store().replay_dead(None, 5).unwrap(), 1);
    assert_eq!(w.run(5).synced, 1);
}

#[test]
fn rate_limit_pauses_the_queue_until_reset() {
    let w = World::new(FakeApis::default());
    w.apis.fail(
        "POST /api/v0/issues",
        Ok(HttpResponse { status: 429, headers: vec![("X-RateLimit-Reset".into(), "100".into())], body: r#"{"meta":{"status":"too_many_requests"}}"#.into() }),
    );
    w.deliver(ticket("1", 0), 0);
    w.deliver(ticket("2", 0), 0);
    let r = w.run(0);
    assert_eq!(r.paused_until_ms, Some(100_000));
    assert_eq!(w.apis.calls("POST", "/api/v0/issues").len(), 1, "second ticket not tried while limited");
    assert_eq!(w.run(100_000).synced, 2);
}

#[test]
fn expired_token_is_refreshed_once() {
    let w = World::new(FakeApis::default());
    w.apis.fail("POST /api/v0/issues", Ok(HttpResponse { status: 401, headers: vec![], body: r#"{"meta":{"status":"invalid_client"}}"#.into() }));
    w.deliver(ticket("1", 0), 0);
    assert_eq!(w.run(0).synced, 1);
    assert_eq!(w.apis.calls("POST", "/oauth2/v0/token").len(), 2);
}

#[test]
fn unmatched_site_is_skipped_then_name_match_is_remembered() {
    let apis = FakeApis { companies: vec![(40, "Globex Corporation"), (41, "Globex Corporation Ltd")], ..Default::default() };
    let w = World::new(apis);
    let mut t = ticket("1", 0);
    t.site_code = Some("S400".into());
    t.site_name = Some("Umbrella Corp".into());
    w.deliver(t, 0);
    assert_eq!(w.run(0).skipped, 1);
    assert_eq!(w.state("1"), "skipped");
    let mut g = ticket("2", 0);
    g.site_code = Some("S200".into());
    g.site_name = Some("globex corporation".into());
    w.deliver(g.clone(), 0);
    w.run(0);
    assert_eq!(body(&w.apis.calls("POST", "/api/v0/issues")[0])["against_id"], 40);
    g.ticket_id = "3".into();
    w.deliver(g, 0);
    let searches = w.apis.calls("GET", "/api/v0/companies").len();
    w.run(0);
    assert_eq!(w.apis.calls("GET", "/api/v0/companies").len(), searches, "remembered, not searched again");
}

#[test]
fn broken_mapping_makes_tickets_wait_stored() {
    let mut w = World::new(FakeApis::default());
    w.mappings = Mappings::parse(|k| (k == "config").then(|| "{oops".to_string()));
    w.deliver(ticket("1", 0), 0);
    assert_eq!(w.run(0).waiting, 1);
    assert_eq!(w.state("1"), "waiting");
    assert!(w.apis.log.borrow().is_empty(), "no call made");
    w.mappings = mappings();
    w.store().requeue_for_reconcile(1).unwrap();
    assert_eq!(w.run(1).synced, 1);
}

#[test]
fn notify_pulls_the_ticket_then_syncs_it() {
    let mut apis = FakeApis::default();
    apis.continuum_tickets.insert("9".into(), json!({"TicketID": "9", "Subject": "Pulled", "SiteCode": "S100"}));
    let w = World::new(apis);
    w.store().ingest(&[TicketEntry::Notify { ticket_id: "9".into() }], 0).unwrap();
    let r = w.run(0);
    assert_eq!(r.synced, 1);
    assert_eq!(body(&w.apis.calls("POST", "/api/v0/issues")[0])["title"], "Pulled");
    let pull = &w.apis.calls("GET", "/tickets/9")[0];
    assert!(pull.headers.iter().any(|(k, v)| k == "X-Integrator-User" && v == "acme"));
    // An unknown ticket is a dead letter with the reason, not a crash.
    w.store().ingest(&[TicketEntry::Notify { ticket_id: "404".into() }], 1).unwrap();
    assert_eq!(w.run(1).dead, 1);
}

#[test]
fn non_start_status_is_set_after_creation() {
    let w = World::new(FakeApis::default());
    let mut t = ticket("1", 0);
    t.status = Some("In Progress".into());
    w.deliver(t, 0);
    let cat = AcceloCatalog { start_statuses: Some(vec![1]), ..Default::default() };
    assert_eq!(w.run_with(0, Some(&cat)).synced, 1);
    assert!(body(&w.apis.calls("POST", "/api/v0/issues")[0]).get("status_id").is_none());
    assert_eq!(body(&w.apis.calls("PUT", "/api/v0/issues/101")[0]), json!({"status_id": 2}));
}

#[test]
fn the_queue_pauses_before_the_hourly_budget_runs_out() {
    let w = World::new(FakeApis::default());
    let low = HttpResponse {
        status: 200,
        headers: vec![("X-RateLimit-Remaining".into(), "50".into()), ("X-RateLimit-Reset".into(), "3600".into())],
        body: json!({"meta": {"status": "ok"}, "response": {"id": "900"}}).to_string(),
    };
    w.apis.fail("POST /api/v0/issues", Ok(low));
    w.deliver(ticket("1", 0), 0);
    w.deliver(ticket("2", 0), 0);
    let r = w.run(0);
    assert_eq!((r.synced, r.paused_until_ms), (1, Some(3_600_000)));
    assert_eq!(w.store().counts().unwrap().pending, 1, "the other ticket waits, stored");
}

#[test]
fn lost_activity_answer_is_found_instead_of_posting_twice() {
    let w = World::new(FakeApis::default());
    let mut t = ticket("1", 0);
    t.comments = vec![TicketComment { comment_id: Some("a".into()), body: "one".into(), ..Default::default() }];
    w.apis.fail("POST /api/v0/activities", Err("connection reset".into()));
    w.deliver(t, 0);
    w.run(0);
    assert_eq!(w.store().counts().unwrap().comments_synced, 0);
    // The note was written after all; Accelo lists it.
    w.apis.fail("GET /api/v0/activities", Ok(ok(json!([{"id": "900", "subject": "one", "body": "one"}]))));
    assert_eq!(w.run(60_000).synced, 1);
    assert_eq!(w.apis.calls("POST", "/api/v0/activities").len(), 1, "no second note");
    let rec = w.store().ticket_record("1").unwrap().unwrap();
    assert_eq!(rec["links"]["activities"][0]["activity_id"], "900");
}

#[test]
fn a_linked_ticket_whose_new_site_is_unplaceable_stays_with_its_company() {
    let w = World::new(FakeApis::default());
    w.deliver(ticket("1", 0), 0);
    w.run(0);
    let mut moved = ticket("1", 1);
    moved.site_code = Some("S999".into());
    moved.site_name = Some("Nobody Inc".into());
    w.deliver(moved, 1);
    assert_eq!(w.run(1).synced, 1, "not skipped: the issue exists");
    assert!(w.apis.calls("PUT", "/api/v0/issues/").iter().all(|p| body(p).get("against_id").is_none()));
    assert_eq!(w.store().ticket("1").unwrap().unwrap().company_id, Some(39));
}
