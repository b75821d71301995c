//! Tickets become issues: JSON and XML, single and in batches, aliases, partly invalid batches.

use std::sync::Arc;

use e2e::{check, check_eq, text, ticket, wait_for, Ctx, Outcome};
use serde_json::{json, Value};

use crate::common::{check_issue, expect_issue, Expect, CREATED_0915, CREATED_1430};

pub async fn json_ticket_becomes_issue_with_every_field(c: Arc<Ctx>) -> Outcome {
    let id = "E2E-JSON-1";
    let t = ticket(
        id,
        json!({
            "Subject": "Disk C: below 5% free on ACME-SRV01",
            "Description": "Continuum alert: free space on C: is 3.2 GB (4%).",
            "Status": "In Progress", // → 2, which is not a start status in Accelo
            "Priority": "Critical",
            "Device": "ACME-SRV01",
            "RegID": "70012345",
            "MemberCode": "M42",
            "CustomerRef": "PO-7731", // unknown: kept on the sync record
            "Comments": [{"CommentID": "n1", "Body": "Alert raised by the disk space monitor.", "Author": "NOC",
                          "CreatedDate": "2026-12-04T09:15:00Z", "Internal": false}]
        }),
    );
    let r = c.post_ticket(&t, 1).await?;
    check!(
        r.content_type.starts_with("application/json"),
        "answer content type {:?}",
        r.content_type
    );

    let want = Expect {
        fields: &[
            ("title", "Disk C: below 5% free on ACME-SRV01"),
            ("issue_type", "3"),
            ("against_type", "company"),
            ("against_id", "39"),
            ("assignee", "14"),
            ("issue_priority", "5"),
            ("status", "2"),
            ("date_started", CREATED_0915),
        ],
        starts: "Continuum alert: free space on C: is 3.2 GB (4%).",
        holds: &[
            "Device: ACME-SRV01 (RegID 70012345)",
            "Site: Acme Dental (S100)",
        ],
        notes: &[("Alert raised by the disk space monitor.", "all")],
    };
    let issue = expect_issue(&c, id, |i| i["status"] == "2", &want).await?;

    let rec = c.settle(id).await?;
    for key in [
        "state",
        "reason",
        "links",
        "gaps",
        "last_snapshot_received",
        "unknown_fields",
        "last_applied",
        "queue",
        "history",
    ] {
        check!(
            rec.get(key).is_some(),
            "the sync record lacks `{key}`: {rec}"
        );
    }
    check!(
        rec["history"].as_array().is_some_and(|h| !h.is_empty()),
        "the sync record has no history: {rec}"
    );
    check_eq!(rec["state"], json!("synced"), "sync record state");
    check_eq!(
        text(&rec["links"]["accelo_issue_id"]),
        text(&issue["id"]),
        "links.accelo_issue_id"
    );
    check_eq!(
        text(&rec["links"]["accelo_company_id"]),
        "39",
        "links.accelo_company_id"
    );
    check!(
        rec["gaps"].as_array().is_none_or(|g| g.is_empty()),
        "a fully mapped ticket has gaps: {}",
        rec["gaps"]
    );
    check!(
        rec["unknown_fields"].to_string().contains("PO-7731"),
        "unknown field CustomerRef not kept: {}",
        rec["unknown_fields"]
    );
    c.one_issue(id)?;
    Ok(())
}

pub async fn xml_ticket_becomes_issue(c: Arc<Ctx>) -> Outcome {
    let id = "E2E-XML-1";
    // Continuum's aliases, a lower-case element name, 12-hour dates, an internal note. S200 is in
    // no sites mapping: the bridge must find "Globex Corporation" (40) by name.
    let xml = format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<Ticket>
  <TaskID>{id}</TaskID>
  <TaskSubject>Backup job failed on GLOBEX-DC01</TaskSubject>
  <TaskDesc>The nightly image backup ended with error 0x80070005.</TaskDesc>
  <CreatedOn>12/04/2026 02:30:00 PM</CreatedOn>
  <UpdatedOn>12/04/2026 02:30:00 PM</UpdatedOn>
  <StatusName>New</StatusName>
  <PriorityName>High</PriorityName>
  <IncidentType>Incident</IncidentType>
  <AssignedTo>Service Desk</AssignedTo>
  <SiteCode>S200</SiteCode>
  <SiteName>Globex Corporation</SiteName>
  <resourcename>GLOBEX-DC01</resourcename>
  <RegID>70054321</RegID>
  <Comments>
    <Comment><NoteID>x1</NoteID><Details>Backup agent restarted; waiting for next run.</Details><CreatedBy>jdoe</CreatedBy><CreatedAt>12/04/2026 02:45:00 PM</CreatedAt><InternalFlag>true</InternalFlag></Comment>
  </Comments>
</Ticket>"#
    );
    c.post_callback("application/xml", xml)
        .await?
        .expect_accepted_xml(1)?;

    let want = Expect {
        fields: &[
            ("title", "Backup job failed on GLOBEX-DC01"),
            ("issue_type", "3"),
            ("against_type", "company"),
            ("against_id", "40"),
            ("assignee", "15"),
            ("issue_priority", "4"),
            ("status", "1"),
            ("date_started", CREATED_1430),
        ],
        starts: "The nightly image backup ended with error 0x80070005.",
        holds: &[
            "Device: GLOBEX-DC01 (RegID 70054321)",
            "Site: Globex Corporation (S200)",
        ],
        notes: &[("Backup agent restarted; waiting for next run.", "private")],
    };
    let issue = expect_issue(&c, id, |_| true, &want).await?;
    let rec = c.settle(id).await?;
    check_eq!(rec["state"], json!("synced"), "sync record state");
    check_eq!(
        c.activities_on(&text(&issue["id"])).len(),
        1,
        "activities on the issue"
    );
    Ok(())
}

/// Waits for every ticket's issue, and checks company, assignee and priority.
async fn expect_issues(c: &Ctx, want: &[(&str, &str, &str, &str)]) -> Outcome {
    for (id, company, assignee, priority) in want {
        let issue = c.wait_issue(id, |_| true).await?;
        check_issue(
            &issue,
            &[
                ("against_id", company),
                ("assignee", assignee),
                ("issue_priority", priority),
                ("issue_type", "3"),
            ],
        )?;
    }
    Ok(())
}

pub async fn batch_json(c: Arc<Ctx>) -> Outcome {
    // {"Tickets": [...]}: a name-matched site (Initech, S300), a technician login, the Helpdesk.
    let wrapped = json!({"Tickets": [
        ticket("E2E-BATCH-1", json!({"SiteCode": "S300", "SiteName": "Initech", "AssignTo": "jdoe", "Priority": "Medium"})),
        ticket("E2E-BATCH-2", json!({"AssignTo": "Continuum Helpdesk", "Priority": "Low"})),
    ]});
    c.post_ticket(&wrapped, 2).await?;
    // A bare array, with field names in other cases and a technician's email.
    let array = json!([
        {"ticketid": "E2E-BATCH-3", "SUBJECT": "e2e ticket E2E-BATCH-3", "sitecode": "S100", "SiteName": "Acme Dental",
         "assignto": "jane@msp.example", "PRIORITY": "High", "Status": "New", "UpdatedDate": "2026-12-04T10:00:00Z"},
        ticket("E2E-BATCH-4", json!({"AssignTo": "Helpdesk", "Priority": "Critical"})),
    ]);
    c.post_ticket(&array, 2).await?;
    expect_issues(
        &c,
        &[
            ("E2E-BATCH-1", "41", "22", "3"),
            ("E2E-BATCH-2", "39", "15", "2"),
            ("E2E-BATCH-3", "39", "21", "4"),
            ("E2E-BATCH-4", "39", "15", "5"),
        ],
    )
    .await
}

pub async fn xml_batch(c: Arc<Ctx>) -> Outcome {
    let one = |id: &str, assign: &str, prio: &str| {
        format!(
            "<Ticket><TicketID>{id}</TicketID><Subject>e2e ticket {id}</Subject><SiteCode>S100</SiteCode>\
             <SiteName>Acme Dental</SiteName><Status>New</Status><Priority>{prio}</Priority><AssignTo>{assign}</AssignTo>\
             <Device>DEV-{id}</Device><UpdatedDate>2026-12-04T10:00:00+01:00</UpdatedDate></Ticket>"
        )
    };
    let xml = format!(
        "<Tickets>{}{}</Tickets>",
        one("E2E-XBATCH-1", "ServiceDesk", "Low"),
        one("E2E-XBATCH-2", "NOC Team", "High")
    );
    c.post_callback("text/xml", xml)
        .await?
        .expect_accepted_xml(2)?;
    expect_issues(
        &c,
        &[
            ("E2E-XBATCH-1", "39", "15", "2"),
            ("E2E-XBATCH-2", "39", "14", "4"),
        ],
    )
    .await
}

pub async fn json_aliases_and_numeric_id(c: Arc<Ctx>) -> Outcome {
    let aliased = json!({
        "TicketNumber": "E2E-ALIAS-1", "Title": "aliased subject", "TaskDescription": "aliased description",
        "TaskDateTime": "2026-12-04T09:15:00Z", "LastModified": "2026-12-04T09:15:00Z", "IncidentStatus": "In Progress",
        "PriorityName": "Low", "Type": "Incident", "AssignTaskTo": "jane", "SiteCode": "S100", "SiteName": "Acme Dental",
        "PartnerCode": "P1", "MachineName": "ALIAS-PC", "RegID": "42", "Action": "Created",
        "Notes": [{"NoteID": "a1", "Comment": "aliased note", "CreatedBy": "NOC", "CreatedAt": "2026-12-04T09:16:00Z", "InternalFlag": true}]
    });
    let by_id = json!({"ID": "E2E-ALIAS-2", "TaskSubject": "id alias", "SiteCode": "S100", "SiteName": "Acme Dental",
                       "ResFriendlyName": "FRIENDLY-PC", "RegID": "43", "StatusName": "New"});
    // Continuum may well send numbers: tolerant parsing takes them as the id's text.
    let numeric = json!({"TicketID": 990001, "Subject": "numeric id", "SiteCode": "S100", "SiteName": "Acme Dental", "Status": "New"});
    c.post_ticket(&json!([aliased, by_id, numeric]), 3).await?;

    let aliased = Expect {
        fields: &[
            ("title", "aliased subject"),
            ("assignee", "21"),
            ("issue_priority", "2"),
            ("date_started", CREATED_0915),
        ],
        starts: "aliased description",
        holds: &["Device: ALIAS-PC (RegID 42)"],
        notes: &[("aliased note", "private")],
    };
    expect_issue(&c, "E2E-ALIAS-1", |i| i["status"] == "2", &aliased).await?;
    let by_id = Expect {
        fields: &[("title", "id alias")],
        holds: &["Device: FRIENDLY-PC (RegID 43)"],
        ..Expect::default()
    };
    expect_issue(&c, "E2E-ALIAS-2", |_| true, &by_id).await?;
    c.wait_issue("990001", |_| true).await?;
    Ok(())
}

pub async fn batch_keeps_newest_snapshot(c: Arc<Ctx>) -> Outcome {
    // Two snapshots of one new ticket in one request, the newer first: the older changes nothing.
    let id = "E2E-ORDER-1";
    let newer = ticket(
        id,
        json!({"Subject": "newest subject", "Priority": "High", "UpdatedDate": "2026-12-04T10:00:00Z"}),
    );
    let older = ticket(
        id,
        json!({"Subject": "older subject", "Priority": "Low", "UpdatedDate": "2026-12-04T09:00:00Z"}),
    );
    let r = c
        .post_callback("application/json", json!([newer, older]).to_string())
        .await?;
    r.expect(200)?;
    c.wait_issue(id, |_| true).await?;
    c.settle(id).await?;
    check_issue(
        &c.one_issue(id)?,
        &[("title", "newest subject"), ("issue_priority", "4")],
    )
}

pub async fn large_batch_all_synced(c: Arc<Ctx>) -> Outcome {
    // More tickets than one processing run takes: the queue must keep draining.
    let ids: Vec<String> = (1..=60).map(|n| format!("E2E-BULK-{n:02}")).collect();
    let batch: Vec<Value> = ids.iter().map(|id| ticket(id, json!({}))).collect();
    c.post_ticket(&json!({"Tickets": batch}), 60).await?;
    let missing = wait_for("60 issues", || async {
        let missing: Vec<&String> = ids
            .iter()
            .filter(|id| c.issues_for(id).is_empty())
            .collect();
        missing.is_empty().then_some(())
    })
    .await;
    missing.map_err(|e| {
        let left: Vec<&String> = ids
            .iter()
            .filter(|id| c.issues_for(id).is_empty())
            .collect();
        format!("{e}; still without an issue: {left:?}")
    })?;
    for id in &ids {
        c.one_issue(id)?;
    }
    Ok(())
}

pub async fn partial_batch_reports_invalid(c: Arc<Ctx>) -> Outcome {
    let before = c.status().await?;
    let body = json!([
        ticket("E2E-PART-1", json!({})),
        {"Subject": "a ticket without an id", "SiteCode": "S100"},
        {"TicketID": "E2E-PART-BAD", "Status": "New", "SiteCode": "S100"}, // new, but no Subject
    ]);
    let r = c.post_ticket(&body, 1).await?;
    let answer = r.json()?;
    let rejected = answer["rejected"].as_array().cloned().unwrap_or_default();
    check_eq!(rejected.len(), 2, format!("rejected list in {answer}"));
    check!(
        answer.to_string().contains("TicketID"),
        "no reason names the missing TicketID: {answer}"
    );
    check!(
        answer.to_string().contains("E2E-PART-BAD"),
        "the rejected ticket with an id is not named: {answer}"
    );

    // XML: the same, one of two refused.
    let xml = "<Tickets><Ticket><TicketID>E2E-PART-2</TicketID><Subject>e2e ticket E2E-PART-2</Subject><SiteCode>S100</SiteCode>\
               <SiteName>Acme Dental</SiteName><Status>New</Status></Ticket><Ticket><Subject>no id</Subject></Ticket></Tickets>";
    let r = c.post_callback("application/xml", xml).await?;
    r.expect(200)?;
    check!(
        r.body.contains("<Accepted>1</Accepted>"),
        "XML partial batch answer: {}",
        r.body
    );

    c.wait_issue("E2E-PART-1", |_| true).await?;
    c.wait_issue("E2E-PART-2", |_| true).await?;
    check!(
        c.issues_for("E2E-PART-BAD").is_empty(),
        "the invalid ticket became an issue"
    );
    let after = c.status().await?;
    let recorded =
        after["rejected"].as_i64().unwrap_or(0) - before["rejected"].as_i64().unwrap_or(0);
    check_eq!(recorded, 3, "rejects recorded in /admin/status `rejected`");
    Ok(())
}
