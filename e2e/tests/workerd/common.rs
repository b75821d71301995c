//! What scenarios of several areas share: the expected issue and its notes, the bridge's counts
//! once idle, waiting for a ticket's state, and putting the demo mappings back.

use std::time::{Duration, Instant};

use e2e::{check, check_eq, project_root, text, ticket, wait_for, Ctx, Outcome};
use serde_json::{json, Value};
use standins::{Fault, RequestRecord};

/// 2026-12-04T09:15:00Z and 2026-12-04T14:30:00Z in unix seconds (Accelo dates).
pub const CREATED_0915: &str = "1796375700";
pub const CREATED_1430: &str = "1796394600";
/// 2026-12-04T00:05:00Z and 2026-12-04T12:30:00Z: the 12 AM / 12 PM corners of Continuum dates.
pub const CREATED_0005: &str = "1796342700";
pub const CREATED_1230: &str = "1796387400";

/// Counts that any stored delivery would move.
pub async fn store_counts(c: &Ctx) -> Result<Value, String> {
    let s = c.status().await?;
    Ok(json!({
        "tickets": s["tickets"], "pending": s["pending"], "synced": s["synced"], "skipped": s["skipped"],
        "rejected": s["rejected"], "dead_letters": s["dead_letters"], "waiting": s["waiting"],
        "issues": c.stand.accelo_state().issues.len(),
    }))
}

/// Waits until two status reads a second apart agree, so that a comparison is not disturbed
/// by work left over from an earlier scenario.
pub async fn quiet_counts(c: &Ctx) -> Result<Value, String> {
    let deadline = Instant::now() + e2e::PATIENCE;
    let mut last = store_counts(c).await?;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = store_counts(c).await?;
        if now["pending"] == json!(0) && now == last {
            return Ok(now);
        }
        check!(
            Instant::now() < deadline,
            "the bridge never became idle: {now}"
        );
        last = now;
    }
}

/// No more dead letters than `before` (from [`quiet_counts`]).
async fn check_no_new_dead_letter(c: &Ctx, before: &Value) -> Outcome {
    check_eq!(
        c.status().await?["dead_letters"],
        before["dead_letters"],
        "dead letters"
    );
    Ok(())
}

/// Whether `/admin/status` lists the ticket in `attention.<list>`.
pub fn listed(status: &Value, list: &str, id: &str) -> bool {
    status["attention"][list]
        .as_array()
        .is_some_and(|l| l.iter().any(|e| e.to_string().contains(id)))
}

/// `/admin/status` lists the ticket in `attention.<list>`.
pub async fn check_listed(c: &Ctx, list: &str, id: &str) -> Outcome {
    let status = c.status().await?;
    check!(
        listed(&status, list, id),
        "attention.{list} does not list {id}: {}",
        status["attention"]
    );
    Ok(())
}

/// Waits until the ticket's sync record is in `state`.
pub async fn wait_state(c: &Ctx, id: &str, state: &str) -> Outcome {
    wait_for(&format!("{id} to be {state}"), || async {
        c.ticket_record(id)
            .await
            .ok()
            .flatten()
            .filter(|r| r["state"] == state)
    })
    .await?;
    Ok(())
}

/// The `POST /issues` calls Accelo received for the plain ticket `id` (by its Subject), in order.
pub fn creates_of(c: &Ctx, id: &str) -> Vec<RequestRecord> {
    let subject = &ticket(id, json!({}))["Subject"];
    c.accelo_requests("POST", "/api/v0/issues")
        .into_iter()
        .filter(|r| r.body["title"] == *subject)
        .collect()
}

/// Once the bridge is idle, makes Accelo misbehave and delivers the plain ticket `id`; returns
/// the idle counts (for [`expect_synced`]).
pub async fn deliver_despite(c: &Ctx, fault: Fault, id: &str) -> Result<Value, String> {
    let before = quiet_counts(c).await?;
    c.stand.set_accelo_fault(fault);
    c.post_ticket(&ticket(id, json!({})), 1).await?;
    Ok(before)
}

/// The ticket ends as one issue, synced (`after` says after what), and no dead letter was added
/// since `before`.
pub async fn expect_synced(c: &Ctx, id: &str, before: &Value, after: &str) -> Outcome {
    c.wait_issue(id, |_| true).await?;
    let rec = c.settle(id).await?;
    check_eq!(
        rec["state"],
        json!("synced"),
        format!("state after {after}")
    );
    c.one_issue(id)?;
    check_no_new_dead_letter(c, before).await
}

/// The issue's fields (as the Accelo stand-in stores them: strings).
pub fn check_issue(issue: &Value, want: &[(&str, &str)]) -> Outcome {
    for (field, value) in want {
        check!(
            text(&issue[*field]) == *value,
            "issue {} `{field}`: got {:?}, expected {value:?}",
            text(&issue["id"]),
            text(&issue[*field])
        );
    }
    Ok(())
}

/// A synced comment: a note that sends no email, with the comment's text and visibility.
pub fn check_note(activity: &Value, body: &str, visibility: &str) -> Outcome {
    check_eq!(text(&activity["medium"]), "note", "activity medium");
    check_eq!(text(&activity["block_send"]), "1", "activity block_send");
    check_eq!(
        text(&activity["visibility"]),
        visibility,
        format!("visibility of the activity for {body:?}")
    );
    check!(
        text(&activity["body"]).contains(body),
        "activity body {:?} lacks the comment {body:?}",
        text(&activity["body"])
    );
    Ok(())
}

/// A ticket's issue as a scenario expects it; what is left empty is not checked.
#[derive(Default)]
pub struct Expect<'a> {
    /// See [`check_issue`].
    pub fields: &'a [(&'a str, &'a str)],
    /// How the description starts, and what else it holds.
    pub starts: &'a str,
    pub holds: &'a [&'a str],
    /// `(body, visibility)` of each synced comment: the issue gets exactly these notes.
    pub notes: &'a [(&'a str, &'a str)],
}

/// Waits for the ticket's issue (until `ready` accepts it) and for its notes; checks them.
pub async fn expect_issue(
    c: &Ctx,
    id: &str,
    ready: impl Fn(&Value) -> bool,
    want: &Expect<'_>,
) -> Result<Value, String> {
    let issue = c.wait_issue(id, ready).await?;
    check_issue(&issue, want.fields)?;
    let desc = text(&issue["description"]);
    check!(
        desc.starts_with(want.starts),
        "description does not start with {:?}: {desc:?}",
        want.starts
    );
    for part in want.holds {
        check!(desc.contains(part), "description lacks {part:?}: {desc:?}");
    }
    if !want.notes.is_empty() {
        let issue_id = text(&issue["id"]);
        let n = want.notes.len();
        let notes = wait_for(&format!("{n} activities on issue {issue_id}"), || async {
            Some(c.activities_on(&issue_id)).filter(|a| a.len() >= n)
        })
        .await?;
        check_eq!(notes.len(), n, format!("activities on issue {issue_id}"));
        for (body, visibility) in want.notes {
            let note = notes
                .iter()
                .find(|a| text(&a["body"]).contains(body))
                .ok_or(format!("no activity for {body:?}"))?;
            check_note(note, body, visibility)?;
        }
    }
    Ok(issue)
}

/// Puts the demo documents back (later scenarios rely on them), whatever the scenario did.
pub async fn restore_mappings(c: &Ctx, keys: &[&str], outcome: Outcome) -> Outcome {
    for key in keys {
        let path = project_root().join(format!("fixtures/mappings/{key}.json"));
        let doc = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        c.kv_put(key, doc.trim()).await?;
    }
    outcome
}
