//! A ticket over time: re-deliveries and concurrent ones make one issue; updates change only
//! what changed; stale snapshots change nothing; each comment becomes one note.

use std::sync::Arc;

use e2e::{check, check_eq, text, ticket, wait_for, Ctx, Outcome};
use serde_json::{json, Value};

use crate::common::{check_issue, creates_of, expect_issue, Expect};

/// Delivers the snapshot and waits until its ticket has settled: the issue, and its PUTs so far.
async fn settled_issue(c: &Ctx, snapshot: &Value) -> Result<(Value, usize), String> {
    let id = text(&snapshot["TicketID"]);
    c.post_ticket(snapshot, 1).await?;
    let issue = c.wait_issue(&id, |_| true).await?;
    c.settle(&id).await?;
    let puts = c.issue_puts(&text(&issue["id"])).len();
    Ok((issue, puts))
}

pub async fn duplicate_delivery_makes_one_issue(c: Arc<Ctx>) -> Outcome {
    let id = "E2E-DUP-1";
    let t = ticket(
        id,
        json!({"Comments": [{"CommentID": "d1", "Body": "duplicate me not", "Author": "NOC", "CreatedDate": "2026-12-04T09:16:00Z"}]}),
    );
    c.post_ticket(&t, 1).await?;
    let (issue, puts) = settled_issue(&c, &t).await?;
    let issue_id = text(&issue["id"]);
    c.post_ticket(&t, 1).await?;
    c.settle(id).await?;
    c.one_issue(id)?;
    check_eq!(
        c.activities_on(&issue_id).len(),
        1,
        "activities after three identical deliveries"
    );
    check_eq!(
        c.issue_puts(&issue_id).len(),
        puts,
        "PUTs caused by re-delivering the same snapshot"
    );
    Ok(())
}

pub async fn concurrent_deliveries_make_one_issue(c: Arc<Ctx>) -> Outcome {
    let id = "E2E-CONC-1";
    let t = ticket(id, json!({}));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (c, t) = (c.clone(), t.clone());
        set.spawn(async move { c.post_callback("application/json", t.to_string()).await });
    }
    while let Some(r) = set.join_next().await {
        let r = r.map_err(|e| e.to_string())??;
        r.expect(200)?;
    }
    c.wait_issue(id, |_| true).await?;
    c.settle(id).await?;
    c.one_issue(id)?;
    check_eq!(
        creates_of(&c, id).len(),
        1,
        "POST /issues calls for ten deliveries of one new ticket"
    );
    Ok(())
}

pub async fn rapid_snapshots_end_in_the_newest(c: Arc<Ctx>) -> Outcome {
    // Three snapshots of a new ticket, back to back: one issue, with the last one's fields.
    let id = "E2E-RAPID-1";
    for (n, (status, prio)) in [
        ("New", "Low"),
        ("In Progress", "Medium"),
        ("Closed", "High"),
    ]
    .iter()
    .enumerate()
    {
        let v = ticket(
            id,
            json!({"Subject": format!("rapid v{}", n + 1), "Status": status, "Priority": prio,
                                  "UpdatedDate": format!("2026-12-04T1{n}:00:00Z")}),
        );
        c.post_ticket(&v, 1).await?;
    }
    c.wait_issue(id, |i| i["title"] == "rapid v3" && i["status"] == "5")
        .await?;
    c.settle(id).await?;
    check_issue(
        &c.one_issue(id)?,
        &[
            ("title", "rapid v3"),
            ("status", "5"),
            ("issue_priority", "4"),
        ],
    )
}

pub async fn update_changes_same_issue_only_changed_fields(c: Arc<Ctx>) -> Outcome {
    let id = "E2E-UPD-1";
    let v1 = ticket(
        id,
        json!({"Priority": "Medium", "UpdatedDate": "2026-12-04T09:15:00Z"}),
    );
    let (issue, baseline) = settled_issue(&c, &v1).await?;
    let issue_id = text(&issue["id"]);

    let v2 = ticket(
        id,
        json!({"Subject": "e2e ticket E2E-UPD-1, renamed", "Priority": "High", "UpdatedDate": "2026-12-04T10:00:00Z", "Event": "Updated"}),
    );
    c.post_ticket(&v2, 1).await?;
    let updated = c
        .wait_issue(id, |i| {
            i["title"] == "e2e ticket E2E-UPD-1, renamed" && i["issue_priority"] == "4"
        })
        .await?;
    check_eq!(text(&updated["id"]), issue_id, "issue id after the update");
    c.settle(id).await?;
    let puts = &c.issue_puts(&issue_id)[baseline..];
    check!(
        !puts.is_empty(),
        "the update made no PUT /issues/{issue_id}"
    );
    check_only_changed(puts, &["title", "priority_id"])?;
    check_issue(
        &updated,
        &[("against_id", "39"), ("assignee", "14"), ("status", "1")],
    )?;

    // A status that is not a start status, later on.
    let baseline = c.issue_puts(&issue_id).len();
    let v3 = ticket(
        id,
        json!({"Subject": "e2e ticket E2E-UPD-1, renamed", "Priority": "High", "Status": "Closed", "UpdatedDate": "2026-12-04T11:00:00Z"}),
    );
    c.post_ticket(&v3, 1).await?;
    c.wait_issue(id, |i| i["status"] == "5").await?;
    c.settle(id).await?;
    for body in &c.issue_puts(&issue_id)[baseline..] {
        for unchanged in [
            "title",
            "description",
            "priority_id",
            "assignee",
            "type_id",
            "against_id",
        ] {
            check!(
                body.get(unchanged).is_none(),
                "status change PUT also sends unchanged `{unchanged}`: {body}"
            );
        }
    }

    // A partial snapshot of a known ticket (no Subject needed): a new assignee and description.
    let baseline = c.issue_puts(&issue_id).len();
    let v4 = json!({"TicketID": id, "AssignTo": "jdoe", "Description": "Now handled by John.", "UpdatedDate": "2026-12-04T12:00:00Z"});
    c.post_ticket(&v4, 1).await?;
    let issue = c
        .wait_issue(id, |i| {
            i["assignee"] == "22" && text(&i["description"]).starts_with("Now handled by John.")
        })
        .await?;
    c.settle(id).await?;
    check_issue(
        &issue,
        &[
            ("title", "e2e ticket E2E-UPD-1, renamed"),
            ("status", "5"),
            ("issue_priority", "4"),
            ("against_id", "39"),
        ],
    )?;
    check_only_changed(
        &c.issue_puts(&issue_id)[baseline..],
        &["assignee", "description"],
    )?;
    c.one_issue(id)?;
    Ok(())
}

/// Every PUT body carries only the `changed` fields.
fn check_only_changed(puts: &[Value], changed: &[&str]) -> Outcome {
    for body in puts {
        check!(
            body.as_object()
                .is_none_or(|o| o.keys().all(|k| changed.contains(&k.as_str()))),
            "PUT body carries unchanged fields: {body}"
        );
    }
    Ok(())
}

pub async fn stale_snapshot_changes_nothing(c: Arc<Ctx>) -> Outcome {
    let id = "E2E-STALE-1";
    let current = ticket(id, json!({"UpdatedDate": "2026-12-04T10:00:00Z"}));
    let (issue, puts) = settled_issue(&c, &current).await?;
    let issue_id = text(&issue["id"]);

    let older = ticket(
        id,
        json!({"Subject": "STALE subject", "Status": "Closed", "Priority": "Critical", "UpdatedDate": "2026-12-04T09:00:00Z",
               "Comments": [{"CommentID": "s1", "Body": "from a stale snapshot", "Author": "NOC", "CreatedDate": "2026-12-04T09:00:00Z"}]}),
    );
    let same_date = ticket(
        id,
        json!({"Subject": "SAME-DATE subject", "UpdatedDate": "2026-12-04T10:00:00Z"}),
    );
    for (what, snapshot) in [("older", older), ("equal UpdatedDate", same_date)] {
        c.post_callback("application/json", snapshot.to_string())
            .await?
            .expect(200)?;
        c.settle(id).await?;
        let now = c.one_issue(id)?;
        check_issue(
            &now,
            &[
                ("title", text(&issue["title"]).as_str()),
                ("status", "1"),
                ("issue_priority", "3"),
            ],
        )
        .map_err(|e| format!("{what} snapshot changed the issue: {e}"))?;
        check_eq!(
            c.issue_puts(&issue_id).len(),
            puts,
            format!("PUTs after an {what} snapshot")
        );
        check!(
            c.activities_on(&issue_id).is_empty(),
            "{what} snapshot added an activity"
        );
    }
    Ok(())
}

pub async fn comments_synced_once_each(c: Arc<Ctx>) -> Outcome {
    let id = "E2E-COMM-1";
    let synced_before = c.status().await?["comments_synced"].as_i64().unwrap_or(0);
    let comments = json!([
        {"CommentID": "c1", "Body": "public note one", "Author": "NOC", "CreatedDate": "2026-12-04T09:20:00Z", "Internal": false},
        {"NoteID": "c2", "Details": "internal note two", "CreatedBy": "jdoe", "CreatedAt": "2026-12-04T09:21:00Z", "InternalFlag": true},
        {"Body": "note without an id", "Author": "jane", "CreatedDate": "2026-12-04T09:22:00Z"}
    ]);
    c.post_ticket(
        &ticket(
            id,
            json!({"Comments": comments.clone(), "UpdatedDate": "2026-12-04T09:30:00Z"}),
        ),
        1,
    )
    .await?;
    let want = Expect {
        notes: &[
            ("public note one", "all"),
            ("internal note two", "private"),
            ("note without an id", "all"),
        ],
        ..Expect::default()
    };
    let issue_id = text(&expect_issue(&c, id, |_| true, &want).await?["id"]);
    c.settle(id).await?;
    check_eq!(
        c.activities_on(&issue_id).len(),
        3,
        "activities for three comments"
    );

    // A newer snapshot with the same three comments and one more: exactly one new activity.
    let mut more = comments.as_array().cloned().unwrap_or_default();
    more.push(json!({"CommentID": "c4", "Body": "fourth note", "Author": "NOC", "CreatedDate": "2026-12-04T09:40:00Z"}));
    let v2 = ticket(
        id,
        json!({"Comments": more, "UpdatedDate": "2026-12-04T09:45:00Z", "Event": "CommentAdded"}),
    );
    c.post_ticket(&v2, 1).await?;
    wait_for("the fourth activity", || async {
        Some(()).filter(|_| c.activities_on(&issue_id).len() >= 4)
    })
    .await?;
    c.settle(id).await?;
    c.post_ticket(&v2, 1).await?; // and once more, identical
    let rec = c.settle(id).await?;
    let notes = c.activities_on(&issue_id);
    check_eq!(notes.len(), 4, "activities after re-deliveries");
    for body in [
        "public note one",
        "internal note two",
        "note without an id",
        "fourth note",
    ] {
        check_eq!(
            notes
                .iter()
                .filter(|a| text(&a["body"]).contains(body))
                .count(),
            1,
            format!("activities for {body:?}")
        );
    }
    check_eq!(
        rec["links"]["activities"].as_array().map(Vec::len),
        Some(4),
        "links.activities on the sync record"
    );

    // CommentIDs are per ticket: another ticket's "c1" is another comment.
    let other = "E2E-COMM-2";
    let c1 = json!([{"CommentID": "c1", "Body": "c1 of the other ticket", "Author": "NOC", "CreatedDate": "2026-12-04T09:20:00Z"}]);
    c.post_ticket(&ticket(other, json!({"Comments": c1})), 1)
        .await?;
    let want = Expect {
        notes: &[("c1 of the other ticket", "all")],
        ..Expect::default()
    };
    expect_issue(&c, other, |_| true, &want).await?;
    c.settle(other).await?;
    let synced = c.status().await?["comments_synced"].as_i64().unwrap_or(0) - synced_before;
    check_eq!(synced, 5, "growth of /admin/status comments_synced");
    Ok(())
}
