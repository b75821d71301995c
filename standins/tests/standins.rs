//! End-to-end checks of the stand-ins over real loopback HTTP.

use reqwest::{Client, Response};
use serde_json::{json, Value};
use standins::{Fault, Standins};

const SCOPE: &str = "read(all),write(issues,activities)";

async fn up() -> (Standins, Client) {
    (Standins::start_demo().await.expect("start"), Client::new())
}

async fn token_with(s: &Standins, c: &Client, form: &[(&str, &str)]) -> Response {
    c.post(format!("{}/oauth2/v0/token", s.accelo_url))
        .basic_auth("local-client", Some("local-secret"))
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn token(s: &Standins, c: &Client) -> String {
    let r = token_with(
        s,
        c,
        &[("grant_type", "client_credentials"), ("scope", SCOPE)],
    )
    .await;
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn api(
    s: &Standins,
    c: &Client,
    tok: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut rb = c
        .request(
            method.parse().unwrap(),
            format!("{}/api/v0/{path}", s.accelo_url),
        )
        .bearer_auth(tok);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.unwrap();
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(Value::Null))
}

/// `GET /api/v0/staff{query}`, with a bearer token or none, for tests that read the headers.
async fn get_staff(s: &Standins, c: &Client, tok: Option<&str>, query: &str) -> Response {
    let mut rb = c.get(format!("{}/api/v0/staff{query}", s.accelo_url));
    if let Some(t) = tok {
        rb = rb.bearer_auth(t);
    }
    rb.send().await.unwrap()
}

fn header(r: &Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test]
async fn oauth_client_credentials() {
    let (s, c) = up().await;
    // Wrong secret: 401 in the OAuth error shape.
    let r = c
        .post(format!("{}/oauth2/v0/token", s.accelo_url))
        .basic_auth("local-client", Some("nope"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    // Bad grant type.
    let r = token_with(&s, &c, &[("grant_type", "password")]).await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
    // Success, with a numeric expires_in that is honoured.
    let r = token_with(
        &s,
        &c,
        &[("grant_type", "client_credentials"), ("expires_in", "1")],
    )
    .await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    for k in [
        "access_token",
        "deployment",
        "deployment_name",
        "deployment_uri",
        "account_id",
    ] {
        assert!(t.get(k).is_some(), "missing {k}");
    }
    assert_eq!(t["token_type"], "bearer");
    assert_eq!(t["expires_in"], 1);
    assert_eq!(t["deployment"], "local");
    let tok = t["access_token"].as_str().unwrap();
    let (code, v) = api(&s, &c, tok, "GET", "companies", None).await;
    assert_eq!((code, v["meta"]["status"].as_str()), (200, Some("ok")));
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (code, v) = api(&s, &c, tok, "GET", "companies", None).await;
    assert_eq!(
        (code, v["meta"]["status"].as_str()),
        (401, Some("invalid_client"))
    );
    // Default scope is read(all): writes are refused.
    let read_only: Value = token_with(&s, &c, &[("grant_type", "client_credentials")])
        .await
        .json()
        .await
        .unwrap();
    let read_only = read_only["access_token"].as_str().unwrap();
    let (code, v) = api(
        &s,
        &c,
        read_only,
        "POST",
        "issues",
        Some(json!({"title": "x"})),
    )
    .await;
    assert_eq!(
        (code, v["meta"]["status"].as_str()),
        (403, Some("invalid_permission"))
    );
    assert_eq!(s.accelo_state().tokens_issued, 2);
}

#[tokio::test]
async fn envelope_strings_and_rate_headers() {
    let (s, c) = up().await;
    let tok = token(&s, &c).await;
    let r = c
        .get(format!("{}/api/v0/companies", s.accelo_url))
        .bearer_auth(&tok)
        .query(&[("_search", "ACME dental"), ("_fields", "website")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-ratelimit-limit").as_deref(), Some("5000"));
    assert_eq!(header(&r, "x-ratelimit-remaining").as_deref(), Some("4999"));
    let reset: u64 = header(&r, "x-ratelimit-reset").unwrap().parse().unwrap();
    assert!(reset > standins_now());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["meta"]["status"], "ok");
    assert_eq!(
        v["response"],
        json!([{"id": "39", "name": "Acme Dental", "website": "https://acmedental.example"}])
    );
    // Both header and _bearer_token: invalid_request.
    let r = get_staff(&s, &c, Some(&tok), &format!("?_bearer_token={tok}")).await;
    assert_eq!(r.status(), 400);
    // No token at all: 401, still with rate headers.
    let r = get_staff(&s, &c, None, "").await;
    assert_eq!(r.status(), 401);
    assert!(header(&r, "x-ratelimit-remaining").is_some());
    // _suppress_http_status: 200 with the real code in meta.
    let r = c
        .get(format!(
            "{}/api/v0/issues/4242?_suppress_http_status=1",
            s.accelo_url
        ))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["meta"]["response_code"], 400);
    // Staff by email (JSON body on GET), lookups, whoami.
    let (_, v) = api(
        &s,
        &c,
        &tok,
        "GET",
        "staff",
        Some(json!({"_filters": {"email": ["jane@msp.example"]}, "_fields": "email,username"})),
    )
    .await;
    assert_eq!(v["response"][0]["id"], "21");
    assert_eq!(v["response"][0]["username"], "jane");
    let (_, v) = api(
        &s,
        &c,
        &tok,
        "GET",
        "issues/priorities?_fields=factor&_limit=2&_page=1",
        None,
    )
    .await;
    assert_eq!(
        v["response"],
        json!([{"id": "3", "title": "Medium", "factor": "3"}, {"id": "4", "title": "High", "factor": "4"}])
    );
    let (_, v) = api(&s, &c, &tok, "GET", "staff/whoami", None).await;
    assert_eq!(v["response"]["id"], "14");
}

fn standins_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn unknown_ids_and_resources_are_invalid_request() {
    let (s, c) = up().await;
    let tok = token(&s, &c).await;
    for path in [
        "issues/999",
        "companies/12345",
        "activities/7",
        "nonsense",
        "issues/statuses/1",
    ] {
        let (code, v) = api(&s, &c, &tok, "GET", path, None).await;
        assert_eq!(code, 400, "{path}");
        assert_eq!(v["meta"]["status"], "invalid_request", "{path}");
        assert_eq!(v["response"], Value::Null);
    }
    let (code, _) = api(
        &s,
        &c,
        &tok,
        "PUT",
        "issues/999",
        Some(json!({"title": "x"})),
    )
    .await;
    assert_eq!(code, 400);
}

#[tokio::test]
async fn issues_and_activities() {
    let (s, c) = up().await;
    let tok = token(&s, &c).await;
    let (code, v) = api(
        &s,
        &c,
        &tok,
        "POST",
        "issues",
        Some(json!({"title": "Disk low", "type_id": 3, "against_type": "company"})),
    )
    .await;
    assert_eq!(code, 400);
    assert!(v["meta"]["message"]
        .as_str()
        .unwrap()
        .contains("against_id"));
    let (code, v) = api(
        &s,
        &c,
        &tok,
        "POST",
        "issues",
        Some(json!({"title": "x", "type_id": 3, "against_type": "company", "against_id": 99})),
    )
    .await;
    assert_eq!(
        (code, v["meta"]["status"].as_str()),
        (400, Some("invalid_request"))
    );
    // standing beats status_id.
    let (code, v) = api(&s, &c, &tok, "POST", "issues", Some(json!({
        "title": "Disk low", "type_id": 3, "against_type": "company", "against_id": 39,
        "status_id": 2, "standing": "submitted", "priority_id": 4, "assignee": 21,
        "_fields": "status,standing,against,company,issue_priority,assignee,date_submitted,date_modified"
    }))).await;
    assert_eq!(code, 200, "{v}");
    let issue = &v["response"];
    assert_eq!(issue["id"], "101");
    assert_eq!(issue["status"], "1");
    assert_eq!(issue["standing"], "submitted");
    assert_eq!(issue["against"], "companies/39");
    assert_eq!(issue["company"], "39");
    assert!(issue["date_submitted"]
        .as_str()
        .unwrap()
        .parse::<u64>()
        .is_ok());
    let (code, v) = api(
        &s,
        &c,
        &tok,
        "PUT",
        "issues/101",
        Some(json!({"type_id": 3})),
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(v["meta"]["message"], "type_id cannot be updated");
    let (code, v) = api(
        &s,
        &c,
        &tok,
        "PUT",
        "issues/101",
        Some(json!({"status_id": 5, "_fields": "standing,date_closed"})),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(v["response"]["standing"], "closed");
    // Polling recipe and counts.
    let (_, v) = api(&s, &c, &tok, "GET", "issues?_filters=date_modified_after(1700000000),order_by_asc(date_modified),against(company(39))&_limit=100", None).await;
    assert_eq!(v["response"].as_array().unwrap().len(), 1);
    let (_, v) = api(
        &s,
        &c,
        &tok,
        "GET",
        "issues?_filters=standing_not(closed)",
        None,
    )
    .await;
    assert_eq!(v["response"], json!([]));
    let (_, v) = api(&s, &c, &tok, "GET", "issues/count", None).await;
    assert_eq!(v["response"], json!({"count": "1"}));
    // Activities: defaults and block_send recorded.
    let (code, v) = api(&s, &c, &tok, "POST", "activities", Some(json!({"subject": "Synced", "body": "hello", "against_type": "issue", "against_id": 101, "block_send": 1, "_fields": "medium,visibility,block_send"}))).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["response"]["medium"], "note");
    assert_eq!(v["response"]["visibility"], "private");
    assert_eq!(v["response"]["block_send"], "1");
    let (code, _) = api(
        &s,
        &c,
        &tok,
        "POST",
        "activities",
        Some(json!({"subject": "x", "against_type": "issue", "against_id": 4242})),
    )
    .await;
    assert_eq!(code, 400);
    let (_, v) = api(
        &s,
        &c,
        &tok,
        "GET",
        "activities?_filters=against(issue(101))&_fields=body",
        None,
    )
    .await;
    assert_eq!(v["response"][0]["body"], "hello");
    assert_eq!(s.accelo_state().activities.len(), 1);
}

#[tokio::test]
async fn faults_expiry_and_rate_limit() {
    let (s, c) = up().await;
    let tok = token(&s, &c).await;
    // 500 twice through the Rust API, then normal.
    s.set_accelo_fault(Fault::status("GET", "/api/v0/companies", 500, 2));
    for _ in 0..2 {
        let (code, v) = api(&s, &c, &tok, "GET", "companies", None).await;
        assert_eq!(
            (code, v["meta"]["status"].as_str()),
            (500, Some("server_error"))
        );
    }
    let (code, _) = api(&s, &c, &tok, "GET", "companies", None).await;
    assert_eq!(code, 200);
    // 429 through the control route carries the envelope and a near reset.
    let r = c
        .post(format!("{}/__control/faults", s.accelo_url))
        .json(&json!({"method": "POST", "path_prefix": "/api/v0/issues", "status": 429, "times": 1, "retry_after_secs": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .post(format!("{}/api/v0/issues", s.accelo_url))
        .bearer_auth(&tok)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "x-ratelimit-remaining").as_deref(), Some("0"));
    let reset: u64 = header(&r, "x-ratelimit-reset").unwrap().parse().unwrap();
    assert!(reset >= standins_now() + 2 && reset <= standins_now() + 4);
    assert_eq!(
        r.json::<Value>().await.unwrap()["meta"]["status"],
        "too_many_requests"
    );
    // Slow answer.
    s.set_accelo_fault(Fault::delay("GET", "/api/v0/staff", 300, 1));
    let t0 = std::time::Instant::now();
    let (code, _) = api(&s, &c, &tok, "GET", "staff", None).await;
    assert_eq!(code, 200);
    assert!(t0.elapsed().as_millis() >= 300);
    // Expired tokens force a refresh.
    c.post(format!("{}/__control/expire-tokens", s.accelo_url))
        .send()
        .await
        .unwrap();
    let (code, v) = api(&s, &c, &tok, "GET", "staff", None).await;
    assert_eq!(
        (code, v["meta"]["status"].as_str()),
        (401, Some("invalid_client"))
    );
    let tok = token(&s, &c).await;
    // Rate limit: 2 left, then 429 with Remaining 0 (the 401 above did count).
    s.set_accelo_rate_limit(10, Some(2));
    for want in ["1", "0"] {
        let r = get_staff(&s, &c, Some(&tok), "").await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-ratelimit-remaining").as_deref(), Some(want));
    }
    let r = get_staff(&s, &c, Some(&tok), "").await;
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "x-ratelimit-limit").as_deref(), Some("10"));
    // OAuth is not counted.
    token(&s, &c).await;
    // The request log keeps no credentials.
    let log = serde_json::to_string(&s.accelo_requests()).unwrap();
    assert!(!log.contains(&tok) && !log.contains("local-secret"));
    let state: Value = c
        .get(format!("{}/__control/state", s.accelo_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["tokens_issued"], 3);
    // Reset: back to seed.
    c.post(format!("{}/__control/reset", s.accelo_url))
        .send()
        .await
        .unwrap();
    assert!(s.accelo_state().requests.is_empty());
}

#[tokio::test]
async fn continuum_auth_tickets_and_faults() {
    let (s, c) = up().await;
    let u = &s.continuum_url;
    let ok = |rb: reqwest::RequestBuilder| {
        rb.bearer_auth("local-continuum-token")
            .header("X-Integrator-User", "acme")
    };
    assert_eq!(
        c.get(format!("{u}/priorities"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let wrong_user = c
        .get(format!("{u}/priorities"))
        .bearer_auth("local-continuum-token")
        .header("X-Integrator-User", "evil");
    assert_eq!(wrong_user.send().await.unwrap().status(), 401);
    let r = ok(c.get(format!("{u}/statuses"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap()[2],
        json!({"StatusID": "3", "Name": "Waiting on Customer"})
    );
    // Stored ticket comes back exactly; unknown is 404.
    let t = json!({"TicketID": "777", "Subject": "CPU high", "SiteCode": "S400", "Odd": [1, {"x": null}]});
    c.put(format!("{u}/__control/tickets/777"))
        .json(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(
        ok(c.get(format!("{u}/tickets/777")))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap(),
        t
    );
    assert_eq!(
        ok(c.get(format!("{u}/tickets/778")))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // Create, find by ExternalID, update, comment.
    let r = ok(c.post(format!("{u}/tickets")))
        .json(&json!({"Subject": "From Accelo", "Description": "d", "SiteCode": "S100", "Status": "New", "Priority": "High", "TicketType": "Incident", "AssignTo": "NOC Team", "ExternalID": "101"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["TicketID"]
        .as_str()
        .unwrap()
        .to_string();
    let found: Value = ok(c.get(format!("{u}/tickets?ExternalID=101")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found[0]["TicketID"], id.as_str());
    assert_eq!(found[0]["SiteName"], "Acme Dental");
    let r = ok(c.put(format!("{u}/tickets/{id}")))
        .json(&json!({"Status": "Closed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = ok(c.put(format!("{u}/tickets/{id}")))
        .json(&json!({"Priority": "Urgent"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = ok(c.post(format!("{u}/tickets/{id}/comments")))
        .json(&json!({"Body": "note", "Author": "Jane Doe", "ExternalID": "501"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(r.json::<Value>().await.unwrap()["CommentID"].is_string());
    let snap = s.continuum_state();
    assert_eq!(snap.tickets[&id]["Status"], "Closed");
    assert_eq!(snap.comments.len(), 1);
    // 429 with Retry-After.
    s.set_continuum_fault(Fault {
        retry_after_secs: Some(4),
        ..Fault::status("POST", "/tickets", 429, 1)
    });
    let r = ok(c.post(format!("{u}/tickets")))
        .json(&json!({"Subject": "x", "SiteCode": "S100"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "retry-after").as_deref(), Some("4"));
    let log = s.continuum_requests();
    assert!(log.iter().all(|r| !serde_json::to_string(r)
        .unwrap()
        .contains("local-continuum-token")));
    assert_eq!(log.last().unwrap().status, 429);
}

#[tokio::test]
async fn control_routes_upsert_and_reset() {
    let (s, c) = up().await;
    let tok = token(&s, &c).await;
    let r = c
        .put(format!("{}/__control/companies", s.accelo_url))
        .json(&json!([{"id": 42, "name": "Umbrella Corp"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, v) = api(&s, &c, &tok, "GET", "companies?_search=umbrella", None).await;
    assert_eq!(
        v["response"],
        json!([{"id": "42", "name": "Umbrella Corp"}])
    );
    // An issue "edited in Accelo": derived fields filled, date_modified bumped.
    c.put(format!("{}/__control/issues", s.accelo_url))
        .json(&json!({"id": 7, "title": "Printer offline", "against_type": "company", "against_id": 39, "status": 2, "issue_type": 3}))
        .send()
        .await
        .unwrap();
    let (code, v) = api(
        &s,
        &c,
        &tok,
        "GET",
        "issues/7?_fields=against,company,standing,date_modified",
        None,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(v["response"]["against"], "companies/39");
    assert_eq!(v["response"]["company"], "39");
    assert_eq!(v["response"]["standing"], "open");
    assert!(v["response"]["date_modified"].is_string());
    s.reset();
    let (code, _) = api(&s, &c, &tok, "GET", "issues/7", None).await;
    assert_eq!(code, 400);
    assert_eq!(s.accelo_state().companies.len(), 3);
}
