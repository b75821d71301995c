//! Mappings: sites by code or by remembered name, gaps for unmapped values, broken documents
//! reported while their tickets wait.

use std::sync::Arc;

use e2e::{check, check_eq, text, ticket, wait_for, Ctx, Outcome};
use serde_json::{json, Value};

use crate::common::{check_issue, check_listed, restore_mappings, wait_state};

/// Delivers a ticket from the site with this code and name.
async fn post_from_site(c: &Ctx, id: &str, code: &str, name: &str) -> Outcome {
    let t = ticket(id, json!({"SiteCode": code, "SiteName": name}));
    c.post_ticket(&t, 1).await.map(drop)
}

/// Waits until the ticket is settled as skipped (`what` says which), with no issue; its record.
async fn expect_skipped(c: &Ctx, id: &str, what: &str) -> Result<Value, String> {
    let rec = c.settle(id).await?;
    check_eq!(
        rec["state"],
        json!("skipped"),
        format!("state of a ticket {what}: {rec}")
    );
    check!(
        c.issues_for(id).is_empty(),
        "{id}, a ticket {what}, became an issue"
    );
    Ok(rec)
}

pub async fn unmapped_status_recorded_as_gap(c: Arc<Ctx>) -> Outcome {
    let id = "E2E-GAP-1";
    c.post_ticket(
        &ticket(
            id,
            json!({"Status": "Escalated", "Priority": "Urgent", "AssignTo": "bob.smith"}),
        ),
        1,
    )
    .await?;
    let issue = c.wait_issue(id, |_| true).await?;
    let rec = c.settle(id).await?;
    check_issue(
        &issue,
        &[
            ("against_id", "39"),
            ("assignee", "0"),
            ("issue_priority", "0"),
        ],
    )?;
    let gaps = rec["gaps"].to_string();
    for value in ["Escalated", "Urgent", "bob.smith"] {
        check!(
            gaps.contains(value),
            "gaps do not name the unmapped {value:?}: {gaps}"
        );
    }
    check_listed(&c, "unmapped", id).await
}

pub async fn name_matching_remembered(c: Arc<Ctx>) -> Outcome {
    let hooli = c
        .stand
        .add_company(json!({"name": "Hooli", "standing": "active"}));
    let hooli_id = text(&hooli["id"]);
    // Case-insensitive exact name.
    post_from_site(&c, "E2E-NAME-1", "S500", "HOOLI").await?;
    let first = c.wait_issue("E2E-NAME-1", |_| true).await?;
    check_issue(&first, &[("against_id", hooli_id.as_str())])?;
    c.settle("E2E-NAME-1").await?;

    // Renamed in Accelo: only the remembered match can still place the site.
    c.stand.upsert_accelo(
        "companies",
        json!({"id": hooli_id, "name": "Hooli XYZ Holdings"}),
    )?;
    post_from_site(&c, "E2E-NAME-2", "S500", "Hooli").await?;
    let second = c.wait_issue("E2E-NAME-2", |_| true).await?;
    check_issue(&second, &[("against_id", hooli_id.as_str())])?;

    // Exact names only: "Globex" is not "Globex Corporation".
    post_from_site(&c, "E2E-NAME-3", "S600", "Globex").await?;
    expect_skipped(&c, "E2E-NAME-3", "whose site only resembles a company")
        .await
        .map(drop)
}

pub async fn unmatched_site_skipped_then_pulled_in_after_sites_mapping(c: Arc<Ctx>) -> Outcome {
    let id = "E2E-SKIP-1";
    post_from_site(&c, id, "S400", "Umbrella Corp").await?;
    let rec = expect_skipped(&c, id, "with an unknown site").await?;
    check!(
        rec["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "skipped without a reason: {rec}"
    );
    check_listed(&c, "skipped_tickets", id).await?;

    c.kv_put("sites", r#"{"S100": 39, "S400": 41}"#).await?;
    c.admin("POST", "/admin/reconcile").await?.expect(200)?;
    let s = c.status().await?;
    check!(
        s["last_reconcile"].as_str().is_some_and(|t| !t.is_empty()),
        "last_reconcile not set after POST /admin/reconcile: {}",
        s["last_reconcile"]
    );
    let issue = c.wait_issue(id, |_| true).await?;
    check_issue(&issue, &[("against_id", "41")])?;
    let rec = c.settle(id).await?;
    check_eq!(
        rec["state"],
        json!("synced"),
        "state after the mapping and a reconcile"
    );
    Ok(())
}

async fn config_error_for(c: &Ctx, key: &str) -> Result<Value, String> {
    wait_for(&format!("config_errors to name `{key}`"), || async {
        let s = c.status().await.ok()?;
        s["config_errors"]
            .as_array()?
            .iter()
            .find(|e| e["key"] == key)
            .cloned()
    })
    .await
}

pub async fn broken_mapping_reported_and_tickets_wait(c: Arc<Ctx>) -> Outcome {
    let outcome = broken_mapping_steps(&c).await;
    restore_mappings(&c, &["users", "status_in"], outcome).await
}

async fn broken_mapping_steps(c: &Ctx) -> Outcome {
    c.kv_put("users", "{\"jdoe\": 22,").await?;
    let err = config_error_for(c, "users").await?;
    check!(
        err["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "config error without a reason: {err}"
    );

    // A ticket that needs the users document waits for it, stored...
    let waiting = "E2E-WAIT-1";
    c.post_ticket(&ticket(waiting, json!({"AssignTo": "jdoe"})), 1)
        .await?;
    wait_state(c, waiting, "waiting").await?;
    check!(
        c.issues_for(waiting).is_empty(),
        "{waiting} became an issue while its mapping was broken"
    );
    check_listed(c, "waiting_tickets", waiting).await?;
    // ...while the rest of the bridge keeps working.
    c.post_ticket(&ticket("E2E-WAIT-2", json!({"AssignTo": "NOC Team"})), 1)
        .await?;
    c.wait_issue("E2E-WAIT-2", |_| true).await?;

    // Fixed: the waiting ticket goes through on its own.
    c.kv_put(
        "users",
        r#"{"jane@msp.example": 21, "jane": 21, "jdoe": 22}"#,
    )
    .await?;
    let issue = c.wait_issue(waiting, |_| true).await?;
    check_issue(&issue, &[("assignee", "22")])?;
    wait_for("config_errors to clear", || async {
        c.status()
            .await
            .ok()
            .filter(|s| s["config_errors"] == json!([]))
    })
    .await?;

    // A document naming an Accelo status that does not exist.
    c.kv_put(
        "status_in",
        r#"{"New": 1, "In Progress": 2, "Waiting on Customer": 3, "Closed": 99}"#,
    )
    .await?;
    let err = config_error_for(c, "status_in").await?;
    check!(
        err.to_string().contains("99"),
        "the status_in error does not name the unknown id 99: {err}"
    );
    Ok(())
}
