//! The operator's side: admin routes and their token, dead letters, suggested and imported
//! mappings, log lines, secrets kept out of sight, a worker that lacks secrets.

use std::sync::Arc;

use e2e::{check, check_eq, text, ticket, wait_for, Auth, Ctx, Outcome, PASSWORD, USER};
use serde_json::{json, Value};
use standins::Fault;

use crate::common::{check_issue, deliver_despite, expect_synced, listed, restore_mappings};

/// The wrangler log, and the worker's own lines in it (JSON objects with an `event`).
fn worker_log(c: &Ctx) -> Result<(String, Vec<Value>), String> {
    let log = std::fs::read_to_string(&c.log_path).map_err(|e| e.to_string())?;
    let lines = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .filter(|l| l.get("event").is_some())
        .collect();
    Ok((log, lines))
}

/// No secret the worker holds in this run shows in the answers or the log.
fn check_no_secret(answers: &[String], log: &str) -> Outcome {
    for (name, secret) in e2e::SECRETS {
        check!(
            !answers.iter().any(|a| a.contains(secret)),
            "an answer shows the value of {name}"
        );
        check!(!log.contains(secret), "the log shows the value of {name}");
    }
    Ok(())
}

pub async fn healthz_and_admin_auth(c: Arc<Ctx>) -> Outcome {
    let r = c.send("GET", "/healthz", Auth::None, None, "").await?;
    r.expect(200)?;
    check_eq!(r.body.trim(), "ok", "GET /healthz body");

    for (method, path, auth) in [
        ("GET", "/admin/status", Auth::None),
        ("GET", "/admin/status", Auth::Bearer("wrong-token")),
        ("GET", "/admin", Auth::None),
        ("GET", "/admin/tickets/E2E-JSON-1", Auth::None),
        ("POST", "/admin/reconcile", Auth::None),
        (
            "POST",
            "/admin/dead-letters/replay",
            Auth::Basic(USER, PASSWORD),
        ),
    ] {
        let r = c.send(method, path, auth, None, "").await?;
        check!(
            r.status == 401,
            "{method} {path} without the admin token: got {}, expected 401",
            r.status
        );
        check!(
            !r.body.contains(e2e::ADMIN_TOKEN),
            "{method} {path}: the answer shows the admin token"
        );
    }

    let status = c.status().await?;
    for key in [
        "pending",
        "dead_letters",
        "skipped",
        "synced",
        "config_errors",
        "last_reconcile",
        "waiting",
        "retrying",
        "tickets",
        "comments_synced",
        "rejected",
        "attention",
    ] {
        check!(
            status.get(key).is_some(),
            "/admin/status lacks `{key}`: {status}"
        );
    }
    for key in [
        "skipped_tickets",
        "waiting_tickets",
        "unmapped",
        "dead_letter_list",
    ] {
        check!(
            status["attention"][key].is_array(),
            "/admin/status attention lacks the list `{key}`: {}",
            status["attention"]
        );
    }
    check_eq!(
        status["config_errors"],
        json!([]),
        "config_errors with the demo mappings"
    );

    let page = c.admin("GET", "/admin").await?;
    page.expect(200)?;
    check!(
        page.content_type.starts_with("text/html"),
        "GET /admin content type {:?}",
        page.content_type
    );

    for (method, path) in [
        ("GET", "/nope"),
        ("GET", "/continuum"),
        ("GET", "/admin/nope"),
    ] {
        let r = c.admin(method, path).await?;
        check!(
            r.status == 404,
            "{method} {path}: got {}, expected 404",
            r.status
        );
    }
    for (method, path) in [
        ("POST", "/healthz"),
        ("PUT", "/continuum/acme"),
        ("DELETE", "/continuum/acme"),
        ("POST", "/admin/status"),
        ("GET", "/admin/reconcile"),
        ("GET", "/admin/dead-letters/replay"),
    ] {
        let r = c.admin(method, path).await?;
        check!(
            r.status == 405,
            "{method} {path}: got {}, expected 405",
            r.status
        );
    }
    Ok(())
}

pub async fn dead_letter_replayed(c: Arc<Ctx>) -> Outcome {
    let id = "E2E-DEAD-1";
    // Accelo refusing the create (invalid_request) cannot succeed by retrying as is.
    let fault = Fault::status("POST", "/api/v0/issues", 400, 1);
    let before = deliver_despite(&c, fault, id).await?;
    wait_for(&format!("{id} among the dead letters"), || async {
        c.status()
            .await
            .ok()
            .filter(|s| listed(s, "dead_letter_list", id))
    })
    .await?;
    check!(
        c.issues_for(id).is_empty(),
        "{id} has an issue although its create was refused"
    );
    let dead = c.status().await?["dead_letters"].as_i64().unwrap_or(0);
    check_eq!(
        dead,
        before["dead_letters"].as_i64().unwrap_or(0) + 1,
        "dead_letters"
    );

    c.admin("POST", &format!("/admin/dead-letters/replay?id={id}"))
        .await?
        .expect(200)?;
    expect_synced(&c, id, &before, "the replay").await
}

pub async fn suggest_mappings_drafts_documents(c: Arc<Ctx>) -> Outcome {
    let draft = c.admin_get("/admin/suggest-mappings").await?;
    let expect = |doc: &str, pairs: &[(&str, &str)]| -> Outcome {
        let d = &draft[doc];
        check!(
            d.is_object(),
            "suggested `{doc}` is not a JSON object: {draft}"
        );
        for (k, v) in pairs {
            check!(
                text(&d[*k]) == *v,
                "suggested {doc}[{k:?}] = {}, expected {v}",
                d[*k]
            );
        }
        Ok(())
    };
    // Same names (case-insensitive) on both sides.
    expect("sites", &[("S100", "39"), ("S200", "40"), ("S300", "41")])?;
    expect(
        "users",
        &[("jane@msp.example", "21"), ("jdoe@msp.example", "22")],
    )?;
    expect(
        "status_in",
        &[("New", "1"), ("In Progress", "2"), ("Closed", "5")],
    )?;
    expect(
        "status_out",
        &[("1", "New"), ("2", "In Progress"), ("5", "Closed")],
    )?;
    check!(
        draft["sites"].get("S400").is_none_or(Value::is_null),
        "S400 (Umbrella Corp) has no Accelo company but is suggested: {}",
        draft["sites"]
    );
    Ok(())
}

pub async fn import_priorities_links_priorities(c: Arc<Ctx>) -> Outcome {
    let outcome = async {
        let r = c.admin("POST", "/admin/import-priorities").await?;
        r.expect(200)?;
        for name in ["Critical", "High", "Medium", "Low"] {
            check!(
                r.body.contains(name),
                "the import's answer does not mention Continuum priority {name}: {}",
                r.body
            );
        }
        check_eq!(
            c.status().await?["config_errors"],
            json!([]),
            "config_errors after the import"
        );
        // Linked by name: Continuum "High" is Accelo "High" (4).
        let id = "E2E-PRIO-1";
        c.post_ticket(&ticket(id, json!({"Priority": "High"})), 1)
            .await?;
        let issue = c.wait_issue(id, |_| true).await?;
        check_issue(&issue, &[("issue_priority", "4")])
    }
    .await;
    restore_mappings(&c, &["priorities"], outcome).await
}

pub async fn log_lines_are_json_with_ticket_and_issue(c: Arc<Ctx>) -> Outcome {
    // The worker's own lines: one JSON object each, with the documented keys.
    let (_, lines) = worker_log(&c)?;
    check!(
        !lines.is_empty(),
        "no JSON log line with an `event` in the wrangler output"
    );
    for line in &lines {
        for key in ["ts", "level", "event", "ticket", "issue", "msg"] {
            check!(line.get(key).is_some(), "log line without `{key}`: {line}");
        }
    }
    check!(
        lines.iter().any(|l| l["ticket"] == "E2E-JSON-1"),
        "no log line names ticket E2E-JSON-1"
    );
    // A line about Accelo issue N carries N in `issue`.
    for line in &lines {
        let msg = text(&line["msg"]);
        if let Some(n) = msg.split("issue ").nth(1).map(|rest| {
            rest.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        }) {
            if !n.is_empty() {
                check!(
                    text(&line["issue"]) == n,
                    "log line about issue {n} has `issue` {}: {line}",
                    line["issue"]
                );
            }
        }
    }
    Ok(())
}

pub async fn no_secret_in_logs_or_answers(c: Arc<Ctx>) -> Outcome {
    let mut answers = vec![
        c.status().await?.to_string(),
        c.admin("GET", "/admin").await?.body,
    ];
    for id in ["E2E-JSON-1", "E2E-TOKEN-1", "E2E-500-1"] {
        answers.push(
            c.ticket_record(id)
                .await?
                .map(|r| r.to_string())
                .unwrap_or_default(),
        );
    }
    check_no_secret(&answers, &worker_log(&c)?.0)
}

pub async fn missing_secret_gives_503_and_is_named(c: Arc<Ctx>) -> Outcome {
    const MISSING: [&str; 2] = ["CONTINUUM_API_TOKEN", "ACCELO_CLIENT_SECRET"];
    let other = c.sibling(&MISSING).await?;
    let outcome = missing_secret_steps(&other, &MISSING).await;
    other.shut_down(outcome).await
}

async fn missing_secret_steps(c: &Ctx, missing: &[&str]) -> Outcome {
    let id = "E2E-NOCONF-1";
    let mut answers = Vec::new();
    let post = c
        .post_callback("application/json", ticket(id, json!({})).to_string())
        .await?;
    let notify = c.get_notify(Some(id)).await?;
    for (what, r) in [("POST callback", post), ("GET notify", notify)] {
        check!(
            r.status == 503,
            "{what} with the right credentials but {missing:?} missing: got {}, expected 503: {}",
            r.status,
            r.body
        );
        answers.push(r.body);
    }
    check!(
        c.ticket_record(id).await?.is_none(),
        "{id} was stored although the callback answered 503"
    );

    let status = c.status().await?;
    let named: Vec<String> = status["config_errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| text(&e["key"]))
        .collect();
    answers.push(status.to_string());
    answers.push(c.admin("GET", "/admin").await?.expect(200)?.body.clone());
    // The worker's own lines (wrangler's banner names only the secrets it was given).
    let (log, lines) = worker_log(c)?;
    let messages: Vec<String> = lines.iter().map(|l| text(&l["msg"])).collect();
    for name in missing {
        check!(
            named.iter().any(|n| n == name),
            "config_errors does not name the missing {name}: {}",
            status["config_errors"]
        );
        check!(
            messages.iter().any(|m| m.contains(name)),
            "no log line names the missing {name}"
        );
    }
    check_no_secret(&answers, &log)
}
