//! Notify: a delivery with only the TicketID (JSON, XML or GET) makes the bridge pull the ticket.

use std::sync::Arc;

use e2e::{check, ticket, Ctx, Outcome};
use serde_json::json;

use crate::common::check_issue;

/// Puts the ticket (with `subject`, priority High) in the Continuum stand-in, to be pulled.
fn stage(c: &Ctx, id: &str, subject: &str) {
    c.stand.put_continuum_ticket(
        id,
        ticket(id, json!({"Subject": subject, "Priority": "High"})),
    );
}

async fn expect_pulled(c: &Ctx, id: &str, subject: &str) -> Outcome {
    let issue = c.wait_issue(id, |_| true).await?;
    check_issue(
        &issue,
        &[
            ("title", subject),
            ("against_id", "39"),
            ("issue_priority", "4"),
        ],
    )?;
    let pulls = c
        .stand
        .continuum_requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path == format!("/tickets/{id}"))
        .count();
    check!(
        pulls >= 1,
        "no GET /tickets/{id} reached the Continuum stand-in"
    );
    Ok(())
}

pub async fn notify_then_pull(c: Arc<Ctx>) -> Outcome {
    let id = "E2E-NOTIFY-1";
    stage(&c, id, "pulled after a notify");
    c.post_ticket(&json!({"TicketID": id}), 1).await?;
    expect_pulled(&c, id, "pulled after a notify").await?;
    c.settle(id).await?;

    // Changed in Continuum, notified again: the same issue follows.
    let changed = ticket(
        id,
        json!({"Subject": "pulled again, renamed", "Priority": "High", "UpdatedDate": "2026-12-04T11:00:00Z"}),
    );
    c.stand.put_continuum_ticket(id, changed);
    c.post_ticket(&json!({"TicketID": id}), 1).await?;
    c.wait_issue(id, |i| i["title"] == "pulled again, renamed")
        .await?;

    // An XML body with only the id is a notify too.
    let xml_id = "E2E-NOTIFY-2";
    stage(&c, xml_id, "pulled after an XML notify");
    let r = c
        .post_callback(
            "application/xml",
            format!("<Ticket><TicketID>{xml_id}</TicketID></Ticket>"),
        )
        .await?;
    r.expect(200)?;
    check!(
        r.body.contains("<Accepted>1</Accepted>"),
        "answer to an XML notify: {}",
        r.body
    );
    expect_pulled(&c, xml_id, "pulled after an XML notify").await
}

pub async fn get_notify(c: Arc<Ctx>) -> Outcome {
    let id = "E2E-GETNOTIFY-1";
    stage(&c, id, "pulled after a GET notify");
    let r = c.get_notify(Some(id)).await?;
    r.expect(200)?;
    expect_pulled(&c, id, "pulled after a GET notify").await
}
