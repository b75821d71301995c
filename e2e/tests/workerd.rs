//! The end-to-end run: the stand-ins in-process, ONE `wrangler dev` (the worker in workerd, built
//! once at the start and served from a frozen copy), the demo mappings, then every scenario in
//! turn. Prints `ok <name>` / `FAILED <name>: <why>` and finally `N passed, M failed`; exits
//! non-zero when a scenario failed.
//!
//! `E2E_ONLY=name,name` runs only those scenarios; `E2E_KEEP=1` keeps the temp dir (wrangler log,
//! local state) even when everything passed.
//!
//! Scenarios check the worker against shared/spec (continuum-protocol.md §1 and §3,
//! accelo-api.md, operator-surface.md). They share one worker, so each uses its own TicketIDs;
//! one scenario restarts it (same port and local state), another starts a second, misconfigured
//! worker of its own from the same frozen build.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::{
    check, check_eq, project_root, text, ticket, wait_for, Auth, Ctx, Outcome, Worker, PASSWORD,
    USER,
};
use serde_json::{json, Value};
use standins::{Fault, Standins};

type Scenario = fn(Arc<Ctx>) -> Pin<Box<dyn Future<Output = Outcome> + Send>>;

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        vec![$((stringify!($name), (|c| Box::pin($name(c))) as Scenario)),*]
    };
}

/// No scenario may hang the run.
const SCENARIO_LIMIT: Duration = Duration::from_secs(150);
/// 2026-12-04T09:15:00Z and 2026-12-04T14:30:00Z in unix seconds (Accelo dates).
const CREATED_0915: &str = "1796375700";
const CREATED_1430: &str = "1796394600";
/// 2026-12-04T00:05:00Z and 2026-12-04T12:30:00Z: the 12 AM / 12 PM corners of Continuum dates.
const CREATED_0005: &str = "1796342700";
const CREATED_1230: &str = "1796387400";
#[tokio::main]
async fn main() {
    let code = run().await;
    std::process::exit(code);
}

async fn run() -> i32 {
    let started = Instant::now();
    let stand = match Standins::start_demo().await {
        Ok(s) => s,
        Err(e) => return startup_failed(&format!("stand-ins: {e}"), None),
    };
    eprintln!(
        "e2e: stand-ins up (Accelo {}, Continuum {}); building the worker, then wrangler dev",
        stand.accelo_url, stand.continuum_url
    );
    let worker = match Worker::start(&stand).await {
        Ok(w) => w,
        Err(e) => return startup_failed(&e, None),
    };
    // Ctrl-C reaches only our process group: take wrangler's groups down with us.
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            e2e::kill_all_workers();
            std::process::exit(130);
        }
    });
    eprintln!(
        "e2e: worker ready at {} after {:.0}s",
        worker.base_url,
        started.elapsed().as_secs_f64()
    );
    let ctx = Arc::new(Ctx::new(worker, Arc::new(stand)));
    if let Err(e) = ctx
        .load_mappings(&project_root().join("fixtures/mappings"))
        .await
    {
        return startup_failed(&format!("loading fixtures/mappings: {e}"), Some(&ctx));
    }

    let all = scenarios![
        healthz_and_admin_auth,
        rejects_store_nothing,
        json_ticket_becomes_issue_with_every_field,
        xml_ticket_becomes_issue,
        batch_json,
        xml_batch,
        json_aliases_and_numeric_id,
        batch_keeps_newest_snapshot,
        large_batch_all_synced,
        text_survives_intact,
        content_type_sniffing,
        datetime_forms,
        unparseable_date_is_a_field_error,
        size_limit_boundary,
        partial_batch_reports_invalid,
        duplicate_delivery_makes_one_issue,
        concurrent_deliveries_make_one_issue,
        rapid_snapshots_end_in_the_newest,
        update_changes_same_issue_only_changed_fields,
        stale_snapshot_changes_nothing,
        comments_synced_once_each,
        notify_then_pull,
        get_notify,
        unmapped_status_recorded_as_gap,
        name_matching_remembered,
        unmatched_site_skipped_then_pulled_in_after_sites_mapping,
        accelo_500_is_retried_once_issue,
        accelo_429_waits_for_the_window,
        expired_token_is_refreshed,
        slow_accelo_does_not_slow_callback,
        update_during_slow_create_makes_one_issue,
        accelo_html_503_is_retried,
        token_refused_then_recovers,
        dead_letter_replayed,
        suggest_mappings_drafts_documents,
        import_priorities_links_priorities,
        broken_mapping_reported_and_tickets_wait,
        accepted_ticket_survives_a_restart,
        missing_secret_gives_503_and_is_named,
        log_lines_are_json_with_ticket_and_issue,
        no_secret_in_logs_or_answers,
    ];
    let only: Option<Vec<String>> = std::env::var("E2E_ONLY")
        .ok()
        .map(|v| v.split(',').map(|n| n.trim().to_string()).collect());
    let (mut passed, mut failed) = (0, 0);
    for (name, scenario) in all {
        if only.as_ref().is_some_and(|o| !o.iter().any(|n| n == name)) {
            continue;
        }
        let t0 = Instant::now();
        // Spawned, so that a panic is one failed scenario, not the end of the run; aborted when
        // late, so that it lets go of the worker (and stops any worker of its own).
        let task = tokio::spawn(scenario(ctx.clone()));
        let abort = task.abort_handle();
        let outcome = match tokio::time::timeout(SCENARIO_LIMIT, task).await {
            Ok(Ok(o)) => o,
            Ok(Err(join)) => Err(format!("panicked: {join}")),
            Err(_) => {
                abort.abort();
                Err(format!(
                    "did not finish within {}s",
                    SCENARIO_LIMIT.as_secs()
                ))
            }
        };
        ctx.stand.clear_faults();
        match outcome {
            Ok(()) => {
                passed += 1;
                println!("ok {name}");
            }
            Err(why) => {
                failed += 1;
                println!("FAILED {name}: {why}");
            }
        }
        eprintln!("e2e: {name} took {:.1}s", t0.elapsed().as_secs_f64());
    }
    if failed > 0 {
        println!(
            "--- last 60 lines of the wrangler log ---\n{}\n---",
            ctx.log_tail(60)
        );
    }
    if failed > 0 || std::env::var_os("E2E_KEEP").is_some() {
        println!(
            "e2e: log and local state kept in {}",
            ctx.keep_dir().await.display()
        );
    }
    eprintln!("e2e: total {:.0}s", started.elapsed().as_secs_f64());
    println!("{passed} passed, {failed} failed");
    ctx.stop_worker(e2e::STOP_GRACE).await;
    i32::from(failed > 0)
}

fn startup_failed(why: &str, ctx: Option<&Ctx>) -> i32 {
    println!("FAILED startup: {why}");
    if let Some(c) = ctx {
        println!(
            "--- last 60 lines of the wrangler log ---\n{}\n---",
            c.log_tail(60)
        );
    }
    println!("0 passed, 1 failed");
    1
}

// ---------------------------------------------------------------------------------------------
// Operator surface

async fn healthz_and_admin_auth(c: Arc<Ctx>) -> Outcome {
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

// ---------------------------------------------------------------------------------------------
// Callback refusals

/// Counts that any stored delivery would move.
async fn store_counts(c: &Ctx) -> Result<Value, String> {
    let s = c.status().await?;
    Ok(json!({
        "tickets": s["tickets"], "pending": s["pending"], "synced": s["synced"], "skipped": s["skipped"],
        "rejected": s["rejected"], "dead_letters": s["dead_letters"], "waiting": s["waiting"],
        "issues": c.stand.accelo_state().issues.len(),
    }))
}

/// Waits until two status reads a second apart agree, so that a comparison is not disturbed
/// by work left over from an earlier scenario.
async fn quiet_counts(c: &Ctx) -> Result<Value, String> {
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

async fn rejects_store_nothing(c: Arc<Ctx>) -> Outcome {
    let before = quiet_counts(&c).await?;
    let path = Ctx::callback_path();
    let json_ct = Some("application/json");
    let good = |id: &str| ticket(id, json!({})).to_string();
    let big = ticket(
        "E2E-REJ-BIG",
        json!({"Description": "x".repeat(300 * 1024)}),
    )
    .to_string();
    let billion_laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<Ticket><TicketID>E2E-REJ-DTD</TicketID><Subject>&lol3;</Subject><SiteCode>S100</SiteCode></Ticket>"#;
    let plain_doctype = "<?xml version=\"1.0\"?><!DOCTYPE Ticket><Ticket><TicketID>E2E-REJ-DT2</TicketID><Subject>x</Subject></Ticket>";
    let xxe =
        "<?xml version=\"1.0\"?><!DOCTYPE Ticket [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\
               <Ticket><TicketID>E2E-REJ-XXE</TicketID><Subject>&xxe;</Subject></Ticket>";
    let all_invalid =
        json!([{"Subject": "no id"}, {"TicketID": "E2E-REJ-NOSUBJ", "Status": "New"}]).to_string();
    // (what, path, auth, content type, body, expected status)
    type Refusal<'a> = (&'a str, &'a str, Auth<'a>, Option<&'a str>, String, u16);
    let cases: Vec<Refusal> = vec![
        (
            "wrong password",
            path.as_str(),
            Auth::Basic(USER, "not-the-password"),
            json_ct,
            good("E2E-REJ-PW"),
            401,
        ),
        (
            "missing auth",
            path.as_str(),
            Auth::None,
            json_ct,
            good("E2E-REJ-NOAUTH"),
            401,
        ),
        (
            "wrong user name",
            path.as_str(),
            Auth::Basic("mallory", PASSWORD),
            json_ct,
            good("E2E-REJ-USER"),
            401,
        ),
        (
            "unknown path user",
            "/continuum/someoneelse",
            Auth::Basic("someoneelse", PASSWORD),
            json_ct,
            good("E2E-REJ-PATH"),
            404,
        ),
        (
            "unknown path user, right creds",
            "/continuum/someoneelse",
            Auth::Basic(USER, PASSWORD),
            json_ct,
            good("E2E-REJ-PATH2"),
            404,
        ),
        (
            "malformed JSON",
            path.as_str(),
            Auth::Basic(USER, PASSWORD),
            json_ct,
            r#"{"TicketID": "E2E-REJ-MJ", "Subject": "#.into(),
            400,
        ),
        (
            "malformed XML",
            path.as_str(),
            Auth::Basic(USER, PASSWORD),
            Some("application/xml"),
            "<Ticket><TicketID>E2E-REJ-MX</TicketID><Subject>x</Ticket>".into(),
            400,
        ),
        (
            "oversized (300 KiB)",
            path.as_str(),
            Auth::Basic(USER, PASSWORD),
            json_ct,
            big,
            413,
        ),
        (
            "text/csv",
            path.as_str(),
            Auth::Basic(USER, PASSWORD),
            Some("text/csv"),
            "TicketID,Subject\nE2E-REJ-CSV,csv ticket\n".into(),
            415,
        ),
        (
            "sniffed non-ticket body",
            path.as_str(),
            Auth::Basic(USER, PASSWORD),
            None,
            "TicketID=E2E-REJ-FORM&Subject=form".into(),
            415,
        ),
        (
            "DOCTYPE billion laughs",
            path.as_str(),
            Auth::Basic(USER, PASSWORD),
            Some("text/xml"),
            billion_laughs.into(),
            400,
        ),
        (
            "plain DOCTYPE",
            path.as_str(),
            Auth::Basic(USER, PASSWORD),
            Some("application/xml"),
            plain_doctype.into(),
            400,
        ),
        (
            "external entity",
            path.as_str(),
            Auth::Basic(USER, PASSWORD),
            None,
            xxe.into(),
            400,
        ),
        (
            "all-invalid batch",
            path.as_str(),
            Auth::Basic(USER, PASSWORD),
            json_ct,
            all_invalid,
            400,
        ),
    ];
    for (what, path, auth, ct, body, want) in cases {
        let r = c.send("POST", path, auth, ct, body).await?;
        check!(
            r.status == want,
            "{what}: got {} ({}), expected {want}",
            r.status,
            r.body.chars().take(300).collect::<String>()
        );
        if want == 401 {
            check_eq!(
                r.www_authenticate.as_deref(),
                Some("Basic realm=\"continuum\""),
                format!("{what}: WWW-Authenticate")
            );
            check!(
                !r.body.contains(PASSWORD),
                "{what}: the answer shows the password"
            );
        }
        if what == "all-invalid batch" {
            check!(
                r.body.contains("TicketID"),
                "all-invalid batch: the answer gives no reason per ticket: {}",
                r.body
            );
        }
    }
    // Oversized without a Content-Length (chunked): the limit is on the bytes.
    let big_xml = format!(
        "<Ticket><TicketID>E2E-REJ-CHUNK</TicketID><Subject>chunked</Subject><SiteCode>S100</SiteCode><Description>{}</Description></Ticket>",
        "x".repeat(300 * 1024)
    );
    let code = c
        .post_chunked("application/xml", big_xml.as_bytes())
        .await?;
    check!(
        code == 413,
        "oversized chunked body: got {code}, expected 413"
    );
    // A GET notify without a TicketID is no delivery either.
    let r = c
        .send(
            "GET",
            &Ctx::callback_path(),
            Auth::Basic(USER, PASSWORD),
            None,
            "",
        )
        .await?;
    check!(
        r.status == 400,
        "GET callback without TicketID: got {}, expected 400",
        r.status
    );

    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = store_counts(&c).await?;
    check_eq!(
        after,
        before,
        "/admin/status counts and Accelo issues after refused requests"
    );
    for id in [
        "E2E-REJ-PW",
        "E2E-REJ-NOAUTH",
        "E2E-REJ-PATH",
        "E2E-REJ-MJ",
        "E2E-REJ-BIG",
        "E2E-REJ-DTD",
        "E2E-REJ-NOSUBJ",
        "E2E-REJ-CSV",
        "E2E-REJ-CHUNK",
        "E2E-REJ-DT2",
        "E2E-REJ-XXE",
    ] {
        check!(
            c.ticket_record(id).await?.is_none(),
            "refused ticket {id} has a sync record"
        );
        check!(
            c.issues_for(id).is_empty(),
            "refused ticket {id} has an Accelo issue"
        );
    }
    Ok(())
}

async fn size_limit_boundary(c: Arc<Ctx>) -> Outcome {
    const LIMIT: usize = 256 * 1024;
    // A ticket padded to exactly the limit is fine; one byte more is not.
    let padded = |id: &str, size: usize| {
        let bare = ticket(id, json!({"Description": ""})).to_string();
        ticket(id, json!({"Description": "y".repeat(size - bare.len())})).to_string()
    };
    let exact = padded("E2E-SIZE-1", LIMIT);
    check_eq!(exact.len(), LIMIT, "padded body size");
    let r = c.post_callback("application/json", exact).await?;
    r.expect(200)
        .map_err(|e| format!("a body of exactly 256 KiB: {e}"))?;
    let over = padded("E2E-SIZE-2", LIMIT + 1);
    let r = c.post_callback("application/json", over).await?;
    check!(
        r.status == 413,
        "a body of 256 KiB + 1 byte: got {}, expected 413",
        r.status
    );
    c.wait_issue("E2E-SIZE-1", |_| true).await?;
    check!(
        c.ticket_record("E2E-SIZE-2").await?.is_none(),
        "the oversized ticket was stored"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Tickets become issues

async fn json_ticket_becomes_issue_with_every_field(c: Arc<Ctx>) -> Outcome {
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

    let issue = c.wait_issue(id, |i| i["status"] == "2").await?;
    check_issue(
        &issue,
        &[
            ("title", "Disk C: below 5% free on ACME-SRV01"),
            ("issue_type", "3"),
            ("against_type", "company"),
            ("against_id", "39"),
            ("assignee", "14"),
            ("issue_priority", "5"),
            ("status", "2"),
            ("date_started", CREATED_0915),
        ],
    )?;
    let desc = text(&issue["description"]);
    check!(
        desc.starts_with("Continuum alert: free space on C: is 3.2 GB (4%)."),
        "description does not start with the ticket's Description: {desc:?}"
    );
    for part in [
        "Device: ACME-SRV01 (RegID 70012345)",
        "Site: Acme Dental (S100)",
    ] {
        check!(desc.contains(part), "description lacks {part:?}: {desc:?}");
    }

    let notes = wait_for("the comment's activity", || async {
        Some(c.activities_on(&text(&issue["id"]))).filter(|a| !a.is_empty())
    })
    .await?;
    check_eq!(notes.len(), 1, "activities on the issue");
    check_note(&notes[0], "Alert raised by the disk space monitor.", "all")?;

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

/// The issue's fields (as the Accelo stand-in stores them: strings).
fn check_issue(issue: &Value, want: &[(&str, &str)]) -> Outcome {
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
fn check_note(activity: &Value, body: &str, visibility: &str) -> Outcome {
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

async fn xml_ticket_becomes_issue(c: Arc<Ctx>) -> Outcome {
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
    let r = c.post_callback("application/xml", xml).await?;
    r.expect(200)?;
    check_eq!(
        r.body.trim(),
        "<Result><Accepted>1</Accepted></Result>",
        "XML answer"
    );
    check!(
        r.content_type.contains("xml"),
        "XML answer content type {:?}",
        r.content_type
    );

    let issue = c.wait_issue(id, |_| true).await?;
    check_issue(
        &issue,
        &[
            ("title", "Backup job failed on GLOBEX-DC01"),
            ("issue_type", "3"),
            ("against_type", "company"),
            ("against_id", "40"),
            ("assignee", "15"),
            ("issue_priority", "4"),
            ("status", "1"),
            ("date_started", CREATED_1430),
        ],
    )?;
    let desc = text(&issue["description"]);
    check!(
        desc.starts_with("The nightly image backup ended with error 0x80070005."),
        "description: {desc:?}"
    );
    for part in [
        "Device: GLOBEX-DC01 (RegID 70054321)",
        "Site: Globex Corporation (S200)",
    ] {
        check!(desc.contains(part), "description lacks {part:?}: {desc:?}");
    }
    let notes = wait_for("the internal note's activity", || async {
        Some(c.activities_on(&text(&issue["id"]))).filter(|a| !a.is_empty())
    })
    .await?;
    check_note(
        &notes[0],
        "Backup agent restarted; waiting for next run.",
        "private",
    )?;
    let rec = c.settle(id).await?;
    check_eq!(rec["state"], json!("synced"), "sync record state");
    check_eq!(
        c.activities_on(&text(&issue["id"])).len(),
        1,
        "activities on the issue"
    );
    Ok(())
}

/// Delivers, waits for every ticket's issue, and checks company, assignee and priority.
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

async fn batch_json(c: Arc<Ctx>) -> Outcome {
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

async fn xml_batch(c: Arc<Ctx>) -> Outcome {
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
    let r = c.post_callback("text/xml", xml).await?;
    r.expect(200)?;
    check_eq!(
        r.body.trim(),
        "<Result><Accepted>2</Accepted></Result>",
        "XML batch answer"
    );
    expect_issues(
        &c,
        &[
            ("E2E-XBATCH-1", "39", "15", "2"),
            ("E2E-XBATCH-2", "39", "14", "4"),
        ],
    )
    .await
}

async fn json_aliases_and_numeric_id(c: Arc<Ctx>) -> Outcome {
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

    let issue = c.wait_issue("E2E-ALIAS-1", |i| i["status"] == "2").await?;
    check_issue(
        &issue,
        &[
            ("title", "aliased subject"),
            ("assignee", "21"),
            ("issue_priority", "2"),
            ("date_started", CREATED_0915),
        ],
    )?;
    let desc = text(&issue["description"]);
    check!(
        desc.starts_with("aliased description") && desc.contains("Device: ALIAS-PC (RegID 42)"),
        "description: {desc:?}"
    );
    let notes = wait_for("the aliased note's activity", || async {
        Some(c.activities_on(&text(&issue["id"]))).filter(|a| !a.is_empty())
    })
    .await?;
    check_note(&notes[0], "aliased note", "private")?;

    let issue = c.wait_issue("E2E-ALIAS-2", |_| true).await?;
    check_issue(&issue, &[("title", "id alias")])?;
    check!(
        text(&issue["description"]).contains("Device: FRIENDLY-PC (RegID 43)"),
        "description: {}",
        issue["description"]
    );
    c.wait_issue("990001", |_| true).await?;
    Ok(())
}

async fn batch_keeps_newest_snapshot(c: Arc<Ctx>) -> Outcome {
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

async fn large_batch_all_synced(c: Arc<Ctx>) -> Outcome {
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

async fn partial_batch_reports_invalid(c: Arc<Ctx>) -> Outcome {
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

// ---------------------------------------------------------------------------------------------
// Body formats and field values

async fn text_survives_intact(c: Arc<Ctx>) -> Outcome {
    // Accented and non-Latin text, and characters Accelo wants sent as JSON (@ .).
    let subject = "Café serveur ☕ hors ligne — contact jane@msp.example (Ünïcödé ✓)";
    c.post_ticket(
        &ticket(
            "E2E-TEXT-1",
            json!({"Subject": subject, "Description": "Ligne 1\nLigne 2 «ok»"}),
        ),
        1,
    )
    .await?;
    let issue = c.wait_issue("E2E-TEXT-1", |_| true).await?;
    check_issue(&issue, &[("title", subject)])?;
    check!(
        text(&issue["description"]).starts_with("Ligne 1\nLigne 2 «ok»"),
        "description: {:?}",
        issue["description"]
    );

    // XML: predefined entities and CDATA are text, not declarations.
    let xml = "<Ticket><TicketID>E2E-TEXT-2</TicketID><Subject>Disk &lt;C:&gt; low &amp; &quot;urgent&quot;</Subject>\
               <Description><![CDATA[Raw <b>markup</b> & more]]></Description><SiteCode>S100</SiteCode><SiteName>Acme Dental</SiteName>\
               <Status>New</Status></Ticket>";
    c.post_callback("application/xml", xml).await?.expect(200)?;
    let issue = c.wait_issue("E2E-TEXT-2", |_| true).await?;
    check_issue(&issue, &[("title", "Disk <C:> low & \"urgent\"")])?;
    check!(
        text(&issue["description"]).starts_with("Raw <b>markup</b> & more"),
        "description: {:?}",
        issue["description"]
    );
    Ok(())
}

async fn content_type_sniffing(c: Arc<Ctx>) -> Outcome {
    let json_body = |id: &str| format!("\n  {}", ticket(id, json!({})));
    let xml_body = |id: &str| {
        format!(
            "\n<Ticket><TicketID>{id}</TicketID><Subject>e2e ticket {id}</Subject><SiteCode>S100</SiteCode>\
             <SiteName>Acme Dental</SiteName><Status>New</Status><Priority>Medium</Priority><AssignTo>NOC Team</AssignTo></Ticket>"
        )
    };
    let cases = [
        ("E2E-CT-1", None, json_body("E2E-CT-1"), false),
        (
            "E2E-CT-2",
            Some("application/octet-stream"),
            json_body("E2E-CT-2"),
            false,
        ),
        (
            "E2E-CT-3",
            Some("application/json; charset=utf-8"),
            json_body("E2E-CT-3"),
            false,
        ),
        ("E2E-CT-4", None, xml_body("E2E-CT-4"), true),
        (
            "E2E-CT-5",
            Some("text/xml; charset=utf-8"),
            xml_body("E2E-CT-5"),
            true,
        ),
    ];
    for (id, ct, body, xml) in &cases {
        let (ct, xml) = (*ct, *xml);
        let r = c
            .send(
                "POST",
                &Ctx::callback_path(),
                Auth::Basic(USER, PASSWORD),
                ct,
                body.clone(),
            )
            .await?;
        r.expect(200)
            .map_err(|e| format!("{id} (Content-Type {ct:?}): {e}"))?;
        if xml {
            check_eq!(
                r.body.trim(),
                "<Result><Accepted>1</Accepted></Result>",
                format!("{id}: answer to an XML body")
            );
        } else {
            check_eq!(
                r.json()?["accepted"],
                json!(1),
                format!("{id}: answer to a JSON body")
            );
        }
    }
    for (id, ..) in cases {
        c.wait_issue(id, |_| true).await?;
    }
    Ok(())
}

async fn datetime_forms(c: Arc<Ctx>) -> Outcome {
    let with_created = |id: &str, created: &str| ticket(id, json!({"CreatedDate": created}));
    c.post_ticket(
        &json!([
            with_created("E2E-DATE-1", "2026-12-04T10:15:00+01:00"), // offset
            with_created("E2E-DATE-2", "2026-12-04T09:15:00"),       // no offset: UTC
        ]),
        2,
    )
    .await?;
    let xml = |id: &str, created: &str| {
        format!(
            "<Ticket><TicketID>{id}</TicketID><Subject>e2e ticket {id}</Subject><SiteCode>S100</SiteCode><SiteName>Acme Dental</SiteName>\
             <CreatedDate>{created}</CreatedDate><UpdatedDate>{created}</UpdatedDate><Status>New</Status></Ticket>"
        )
    };
    let batch = format!(
        "<Tickets>{}{}</Tickets>",
        xml("E2E-DATE-3", "12/04/2026 12:05:00 AM"),
        xml("E2E-DATE-4", "12/04/2026 12:30:00 PM")
    );
    c.post_callback("application/xml", batch)
        .await?
        .expect(200)?;
    for (id, started) in [
        ("E2E-DATE-1", CREATED_0915),
        ("E2E-DATE-2", CREATED_0915),
        ("E2E-DATE-3", CREATED_0005),
        ("E2E-DATE-4", CREATED_1230),
    ] {
        let issue = c.wait_issue(id, |_| true).await?;
        check_issue(&issue, &[("date_started", started)])?;
    }
    Ok(())
}

async fn unparseable_date_is_a_field_error(c: Arc<Ctx>) -> Outcome {
    let id = "E2E-DATE-BAD";
    let body = ticket(
        id,
        json!({"CreatedDate": "the 4th of December", "UpdatedDate": "2026-12-04T09:15:00Z"}),
    );
    let r = c
        .post_callback("application/json", body.to_string())
        .await?;
    check!(
        r.status < 500,
        "an unparseable CreatedDate crashed the callback: {} {}",
        r.status,
        r.body
    );
    let named = r.body.contains("CreatedDate")
        || c.ticket_record(id)
            .await?
            .is_some_and(|rec| rec.to_string().contains("CreatedDate"));
    check!(
        named,
        "the field error names no CreatedDate (answer {} {})",
        r.status,
        r.body
    );
    c.send("GET", "/healthz", Auth::None, None, "")
        .await?
        .expect(200)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Exactly once

async fn duplicate_delivery_makes_one_issue(c: Arc<Ctx>) -> Outcome {
    let id = "E2E-DUP-1";
    let t = ticket(
        id,
        json!({"Comments": [{"CommentID": "d1", "Body": "duplicate me not", "Author": "NOC", "CreatedDate": "2026-12-04T09:16:00Z"}]}),
    );
    c.post_ticket(&t, 1).await?;
    c.post_ticket(&t, 1).await?;
    let issue = c.wait_issue(id, |_| true).await?;
    c.settle(id).await?;
    let puts = c.issue_puts(&text(&issue["id"])).len();
    c.post_ticket(&t, 1).await?;
    c.settle(id).await?;
    c.one_issue(id)?;
    check_eq!(
        c.activities_on(&text(&issue["id"])).len(),
        1,
        "activities after three identical deliveries"
    );
    check_eq!(
        c.issue_puts(&text(&issue["id"])).len(),
        puts,
        "PUTs caused by re-delivering the same snapshot"
    );
    Ok(())
}

async fn concurrent_deliveries_make_one_issue(c: Arc<Ctx>) -> Outcome {
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
    let creates = c
        .accelo_requests("POST", "/api/v0/issues")
        .into_iter()
        .filter(|r| r.body["title"] == t["Subject"])
        .count();
    check_eq!(
        creates,
        1,
        "POST /issues calls for ten deliveries of one new ticket"
    );
    Ok(())
}

async fn rapid_snapshots_end_in_the_newest(c: Arc<Ctx>) -> Outcome {
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

// ---------------------------------------------------------------------------------------------
// Snapshots over time

async fn update_changes_same_issue_only_changed_fields(c: Arc<Ctx>) -> Outcome {
    let id = "E2E-UPD-1";
    let v1 = ticket(
        id,
        json!({"Priority": "Medium", "UpdatedDate": "2026-12-04T09:15:00Z"}),
    );
    c.post_ticket(&v1, 1).await?;
    let issue = c.wait_issue(id, |_| true).await?;
    let issue_id = text(&issue["id"]);
    c.settle(id).await?;
    let baseline = c.issue_puts(&issue_id).len();

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
    let puts = c.issue_puts(&issue_id)[baseline..].to_vec();
    check!(
        !puts.is_empty(),
        "the update made no PUT /issues/{issue_id}"
    );
    for body in &puts {
        let keys: Vec<&String> = body
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        check!(
            keys.iter()
                .all(|k| ["title", "priority_id"].contains(&k.as_str())),
            "PUT body carries unchanged fields: {body}"
        );
    }
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
    for body in &c.issue_puts(&issue_id)[baseline..] {
        let keys: Vec<&String> = body
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        check!(
            keys.iter()
                .all(|k| ["assignee", "description"].contains(&k.as_str())),
            "PUT body carries unchanged fields: {body}"
        );
    }
    c.one_issue(id)?;
    Ok(())
}

async fn stale_snapshot_changes_nothing(c: Arc<Ctx>) -> Outcome {
    let id = "E2E-STALE-1";
    let current = ticket(id, json!({"UpdatedDate": "2026-12-04T10:00:00Z"}));
    c.post_ticket(&current, 1).await?;
    let issue = c.wait_issue(id, |_| true).await?;
    let issue_id = text(&issue["id"]);
    c.settle(id).await?;
    let puts = c.issue_puts(&issue_id).len();

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
        c.send(
            "POST",
            &Ctx::callback_path(),
            Auth::Basic(USER, PASSWORD),
            Some("application/json"),
            snapshot.to_string(),
        )
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

async fn comments_synced_once_each(c: Arc<Ctx>) -> Outcome {
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
    let issue_id = text(&c.wait_issue(id, |_| true).await?["id"]);
    wait_for("three activities", || async {
        Some(()).filter(|_| c.activities_on(&issue_id).len() >= 3)
    })
    .await?;
    c.settle(id).await?;
    let notes = c.activities_on(&issue_id);
    check_eq!(notes.len(), 3, "activities for three comments");
    for (body, visibility) in [
        ("public note one", "all"),
        ("internal note two", "private"),
        ("note without an id", "all"),
    ] {
        let note = notes
            .iter()
            .find(|a| text(&a["body"]).contains(body))
            .ok_or(format!("no activity for {body:?}"))?;
        check_note(note, body, visibility)?;
    }

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
    let other_issue = text(&c.wait_issue(other, |_| true).await?["id"]);
    wait_for("the other ticket's c1 activity", || async {
        Some(()).filter(|_| !c.activities_on(&other_issue).is_empty())
    })
    .await?;
    check_note(
        &c.activities_on(&other_issue)[0],
        "c1 of the other ticket",
        "all",
    )?;
    c.settle(other).await?;
    let synced = c.status().await?["comments_synced"].as_i64().unwrap_or(0) - synced_before;
    check_eq!(synced, 5, "growth of /admin/status comments_synced");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Notify: the bridge pulls the ticket

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

async fn notify_then_pull(c: Arc<Ctx>) -> Outcome {
    let id = "E2E-NOTIFY-1";
    c.stand.put_continuum_ticket(
        id,
        ticket(
            id,
            json!({"Subject": "pulled after a notify", "Priority": "High"}),
        ),
    );
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
    c.stand.put_continuum_ticket(
        xml_id,
        ticket(
            xml_id,
            json!({"Subject": "pulled after an XML notify", "Priority": "High"}),
        ),
    );
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

async fn get_notify(c: Arc<Ctx>) -> Outcome {
    let id = "E2E-GETNOTIFY-1";
    c.stand.put_continuum_ticket(
        id,
        ticket(
            id,
            json!({"Subject": "pulled after a GET notify", "Priority": "High"}),
        ),
    );
    let r = c
        .send(
            "GET",
            &format!("{}?TicketID={id}", Ctx::callback_path()),
            Auth::Basic(USER, PASSWORD),
            None,
            "",
        )
        .await?;
    r.expect(200)?;
    expect_pulled(&c, id, "pulled after a GET notify").await
}

// ---------------------------------------------------------------------------------------------
// Mapping gaps and site matching

async fn unmapped_status_recorded_as_gap(c: Arc<Ctx>) -> Outcome {
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
    let status = c.status().await?;
    let listed = status["attention"]["unmapped"]
        .as_array()
        .is_some_and(|u| u.iter().any(|e| e.to_string().contains(id)));
    check!(
        listed,
        "attention.unmapped does not list {id}: {}",
        status["attention"]
    );
    Ok(())
}

async fn name_matching_remembered(c: Arc<Ctx>) -> Outcome {
    let hooli = c
        .stand
        .add_company(json!({"name": "Hooli", "standing": "active"}));
    let hooli_id = text(&hooli["id"]);
    // Case-insensitive exact name.
    c.post_ticket(
        &ticket(
            "E2E-NAME-1",
            json!({"SiteCode": "S500", "SiteName": "HOOLI"}),
        ),
        1,
    )
    .await?;
    let first = c.wait_issue("E2E-NAME-1", |_| true).await?;
    check_issue(&first, &[("against_id", hooli_id.as_str())])?;
    c.settle("E2E-NAME-1").await?;

    // Renamed in Accelo: only the remembered match can still place the site.
    c.stand.upsert_accelo(
        "companies",
        json!({"id": hooli_id, "name": "Hooli XYZ Holdings"}),
    )?;
    c.post_ticket(
        &ticket(
            "E2E-NAME-2",
            json!({"SiteCode": "S500", "SiteName": "Hooli"}),
        ),
        1,
    )
    .await?;
    let second = c.wait_issue("E2E-NAME-2", |_| true).await?;
    check_issue(&second, &[("against_id", hooli_id.as_str())])?;

    // Exact names only: "Globex" is not "Globex Corporation".
    let id = "E2E-NAME-3";
    c.post_ticket(
        &ticket(id, json!({"SiteCode": "S600", "SiteName": "Globex"})),
        1,
    )
    .await?;
    let rec = c.settle(id).await?;
    check_eq!(
        rec["state"],
        json!("skipped"),
        format!("state of a ticket whose site only resembles a company: {rec}")
    );
    check!(
        c.issues_for(id).is_empty(),
        "{id} became an issue by a partial name match"
    );
    Ok(())
}

async fn unmatched_site_skipped_then_pulled_in_after_sites_mapping(c: Arc<Ctx>) -> Outcome {
    let id = "E2E-SKIP-1";
    c.post_ticket(
        &ticket(id, json!({"SiteCode": "S400", "SiteName": "Umbrella Corp"})),
        1,
    )
    .await?;
    let rec = c.settle(id).await?;
    check_eq!(
        rec["state"],
        json!("skipped"),
        format!("state of a ticket with an unknown site: {rec}")
    );
    check!(
        rec["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "skipped without a reason: {rec}"
    );
    check!(
        c.issues_for(id).is_empty(),
        "a skipped ticket became an issue"
    );
    let status = c.status().await?;
    let listed = status["attention"]["skipped_tickets"]
        .as_array()
        .is_some_and(|s| s.iter().any(|e| e.to_string().contains(id)));
    check!(
        listed,
        "attention.skipped_tickets does not list {id}: {}",
        status["attention"]
    );

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

// ---------------------------------------------------------------------------------------------
// Accelo misbehaving

async fn accelo_500_is_retried_once_issue(c: Arc<Ctx>) -> Outcome {
    let id = "E2E-500-1";
    let before = quiet_counts(&c).await?;
    c.stand
        .set_accelo_fault(Fault::status("POST", "/api/v0/issues", 500, 1));
    let t = ticket(id, json!({}));
    c.post_ticket(&t, 1).await?;
    c.wait_issue(id, |_| true).await?;
    c.settle(id).await?;
    c.one_issue(id)?;
    let answers: Vec<u16> = c
        .accelo_requests("POST", "/api/v0/issues")
        .into_iter()
        .filter(|r| r.body["title"] == t["Subject"])
        .map(|r| r.status)
        .collect();
    check!(
        answers.first() == Some(&500) && answers.contains(&200),
        "POST /issues answers for {id}: {answers:?}, expected a 500 then a 200"
    );
    check_eq!(
        c.status().await?["dead_letters"],
        before["dead_letters"],
        "dead letters"
    );
    Ok(())
}

async fn accelo_429_waits_for_the_window(c: Arc<Ctx>) -> Outcome {
    let id = "E2E-429-1";
    let before = quiet_counts(&c).await?;
    c.stand.set_accelo_fault(Fault {
        retry_after_secs: Some(2),
        ..Fault::status("POST", "/api/v0/issues", 429, 1)
    });
    let t = ticket(id, json!({}));
    c.post_ticket(&t, 1).await?;
    c.wait_issue(id, |_| true).await?;
    c.settle(id).await?;
    let answers: Vec<(u16, u64)> = c
        .accelo_requests("POST", "/api/v0/issues")
        .into_iter()
        .filter(|r| r.body["title"] == t["Subject"])
        .map(|r| (r.status, r.at))
        .collect();
    check!(
        answers.len() == 2 && answers[0].0 == 429 && answers[1].0 == 200,
        "POST /issues answers for {id}: {answers:?}, expected a 429 then a 200"
    );
    // X-RateLimit-Reset was 2 s ahead: the retry must not come at once.
    check!(
        answers[1].1 > answers[0].1,
        "retried within the same second as the 429: {answers:?}"
    );
    check_eq!(
        c.status().await?["dead_letters"],
        before["dead_letters"],
        "dead letters"
    );
    Ok(())
}

async fn expired_token_is_refreshed(c: Arc<Ctx>) -> Outcome {
    let id = "E2E-TOKEN-1";
    check!(
        c.stand.accelo_state().tokens_issued > 0,
        "no Accelo token was issued before this scenario"
    );
    quiet_counts(&c).await?;
    c.stand.expire_accelo_tokens();
    let issued = c.stand.accelo_state().tokens_issued;
    c.post_ticket(&ticket(id, json!({})), 1).await?;
    c.wait_issue(id, |_| true).await?;
    let rec = c.settle(id).await?;
    check_eq!(rec["state"], json!("synced"), "state after a token refresh");
    check!(
        c.stand.accelo_state().tokens_issued > issued,
        "the bridge did not ask for a new token"
    );
    Ok(())
}

async fn slow_accelo_does_not_slow_callback(c: Arc<Ctx>) -> Outcome {
    quiet_counts(&c).await?;
    c.stand
        .set_accelo_fault(Fault::delay("POST", "/api/v0/issues", 5000, 2));
    let limit = Duration::from_secs(1);
    let first = c.post_ticket(&ticket("E2E-SLOW-1", json!({})), 1).await?;
    check!(
        first.elapsed < limit,
        "first callback took {:?}",
        first.elapsed
    );
    // By now the bridge is waiting on the slow Accelo for the first ticket.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let second = c.post_ticket(&ticket("E2E-SLOW-2", json!({})), 1).await?;
    check!(
        second.elapsed < limit,
        "callback while Accelo is slow took {:?}",
        second.elapsed
    );
    c.wait_issue("E2E-SLOW-1", |_| true).await?;
    c.wait_issue("E2E-SLOW-2", |_| true).await?;
    Ok(())
}

async fn update_during_slow_create_makes_one_issue(c: Arc<Ctx>) -> Outcome {
    // A newer snapshot arrives while the create is still waiting on a slow Accelo.
    let id = "E2E-SLOWUPD-1";
    quiet_counts(&c).await?;
    c.stand
        .set_accelo_fault(Fault::delay("POST", "/api/v0/issues", 4000, 1));
    c.post_ticket(
        &ticket(
            id,
            json!({"Subject": "slow v1", "UpdatedDate": "2026-12-04T09:15:00Z"}),
        ),
        1,
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    c.post_ticket(&ticket(id, json!({"Subject": "slow v2", "Priority": "High", "UpdatedDate": "2026-12-04T09:30:00Z"})), 1).await?;
    c.wait_issue(id, |i| i["title"] == "slow v2").await?;
    c.settle(id).await?;
    check_issue(
        &c.one_issue(id)?,
        &[("title", "slow v2"), ("issue_priority", "4")],
    )
}

async fn accelo_html_503_is_retried(c: Arc<Ctx>) -> Outcome {
    // A gateway error with an HTML body (not Accelo's envelope), twice.
    let id = "E2E-503-1";
    let before = quiet_counts(&c).await?;
    c.stand
        .set_accelo_fault(Fault::status("POST", "/api/v0/issues", 503, 2));
    c.post_ticket(&ticket(id, json!({})), 1).await?;
    c.wait_issue(id, |_| true).await?;
    let rec = c.settle(id).await?;
    check_eq!(rec["state"], json!("synced"), "state after two 503s");
    c.one_issue(id)?;
    check_eq!(
        c.status().await?["dead_letters"],
        before["dead_letters"],
        "dead letters"
    );
    Ok(())
}

async fn token_refused_then_recovers(c: Arc<Ctx>) -> Outcome {
    // The token endpoint refuses once (as for wrong credentials): not dropped, tried again.
    let id = "E2E-TOKEN-2";
    let before = quiet_counts(&c).await?;
    c.stand.expire_accelo_tokens();
    c.stand
        .set_accelo_fault(Fault::status("POST", "/oauth2/v0/token", 401, 1));
    c.post_ticket(&ticket(id, json!({})), 1).await?;
    c.wait_issue(id, |_| true).await?;
    let rec = c.settle(id).await?;
    check_eq!(
        rec["state"],
        json!("synced"),
        "state after a refused token request"
    );
    check_eq!(
        c.status().await?["dead_letters"],
        before["dead_letters"],
        "dead letters"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Restarts and configuration

async fn accepted_ticket_survives_a_restart(c: Arc<Ctx>) -> Outcome {
    let (retrying, fresh) = ("E2E-RESTART-1", "E2E-RESTART-2");
    let before = quiet_counts(&c).await?;
    // Accelo fails every create for now: the tickets are stored, but cannot become issues yet.
    c.stand
        .set_accelo_fault(Fault::status("POST", "/api/v0/issues", 503, 1000));
    c.post_ticket(&ticket(retrying, json!({})), 1).await?;
    wait_for(&format!("{retrying} to be retrying"), || async {
        c.ticket_record(retrying)
            .await
            .ok()
            .flatten()
            .filter(|r| r["state"] == "retrying")
    })
    .await?;
    // The worker is killed outright, as in a crash, right after the second ticket's 200.
    c.post_ticket(&ticket(fresh, json!({})), 1).await?;
    c.stop_worker(Duration::ZERO).await;
    for id in [retrying, fresh] {
        check!(
            c.issues_for(id).is_empty(),
            "{id} became an issue although Accelo refused every create"
        );
    }
    c.stand.clear_faults();
    c.start_worker_again().await?;

    // Not sent again: the stored tickets and the queue's alarm must have outlived the crash.
    for id in [retrying, fresh] {
        if let Err(e) = c.wait_issue(id, |_| true).await {
            c.admin("POST", "/admin/reconcile").await?.expect(200)?;
            let after_reconcile = match c.wait_issue(id, |_| true).await {
                Ok(_) => "it was".to_string(),
                Err(e) => format!("it was not either: {e}"),
            };
            return Err(format!(
                "{id} not processed by itself after the restart ({e}); after POST /admin/reconcile {after_reconcile}"
            ));
        }
        let rec = c.settle(id).await?;
        check_eq!(
            rec["state"],
            json!("synced"),
            format!("state of {id} after the restart")
        );
        c.one_issue(id)?;
    }
    check_eq!(
        c.status().await?["dead_letters"],
        before["dead_letters"],
        "dead letters"
    );
    Ok(())
}

async fn missing_secret_gives_503_and_is_named(c: Arc<Ctx>) -> Outcome {
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
    let notify = c
        .send(
            "GET",
            &format!("{}?TicketID={id}", Ctx::callback_path()),
            Auth::Basic(USER, PASSWORD),
            None,
            "",
        )
        .await?;
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
    let log = std::fs::read_to_string(&c.log_path).map_err(|e| e.to_string())?;
    // The worker's own lines (wrangler's banner names only the secrets it was given).
    let messages: Vec<String> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .filter(|l| l.get("event").is_some())
        .map(|l| text(&l["msg"]))
        .collect();
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
    for (name, secret) in e2e::SECRETS {
        check!(
            !answers.iter().any(|a| a.contains(secret)),
            "an answer shows the value of {name}"
        );
        check!(!log.contains(secret), "the log shows the value of {name}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Operator work: dead letters, mappings, logs

async fn dead_letter_replayed(c: Arc<Ctx>) -> Outcome {
    let id = "E2E-DEAD-1";
    let before = quiet_counts(&c).await?;
    // Accelo refusing the create (invalid_request) cannot succeed by retrying as is.
    c.stand
        .set_accelo_fault(Fault::status("POST", "/api/v0/issues", 400, 1));
    c.post_ticket(&ticket(id, json!({})), 1).await?;
    let listed = |s: &Value| {
        s["attention"]["dead_letter_list"]
            .as_array()
            .is_some_and(|d| d.iter().any(|e| e.to_string().contains(id)))
    };
    wait_for(&format!("{id} among the dead letters"), || async {
        c.status().await.ok().filter(|s| listed(s))
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
    c.wait_issue(id, |_| true).await?;
    let rec = c.settle(id).await?;
    check_eq!(rec["state"], json!("synced"), "state after the replay");
    check_eq!(
        c.status().await?["dead_letters"],
        before["dead_letters"],
        "dead_letters after the replay"
    );
    Ok(())
}

async fn suggest_mappings_drafts_documents(c: Arc<Ctx>) -> Outcome {
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

/// Puts the demo documents back (later scenarios rely on them), whatever the scenario did.
async fn restore_mappings(c: &Ctx, keys: &[&str], outcome: Outcome) -> Outcome {
    for key in keys {
        let path = project_root().join(format!("fixtures/mappings/{key}.json"));
        let doc = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        c.kv_put(key, doc.trim()).await?;
    }
    outcome
}

async fn import_priorities_links_priorities(c: Arc<Ctx>) -> Outcome {
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

async fn broken_mapping_reported_and_tickets_wait(c: Arc<Ctx>) -> Outcome {
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
    wait_for(&format!("{waiting} to wait"), || async {
        c.ticket_record(waiting)
            .await
            .ok()
            .flatten()
            .filter(|r| r["state"] == "waiting")
    })
    .await?;
    check!(
        c.issues_for(waiting).is_empty(),
        "{waiting} became an issue while its mapping was broken"
    );
    let s = c.status().await?;
    let listed = s["attention"]["waiting_tickets"]
        .as_array()
        .is_some_and(|w| w.iter().any(|e| e.to_string().contains(waiting)));
    check!(
        listed,
        "attention.waiting_tickets does not list {waiting}: {}",
        s["attention"]
    );
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

async fn log_lines_are_json_with_ticket_and_issue(c: Arc<Ctx>) -> Outcome {
    let log = std::fs::read_to_string(&c.log_path).map_err(|e| e.to_string())?;
    // The worker's own lines: one JSON object each, with the documented keys.
    let lines: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .filter(|v| v.get("event").is_some())
        .collect();
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

async fn no_secret_in_logs_or_answers(c: Arc<Ctx>) -> Outcome {
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
    let log = std::fs::read_to_string(&c.log_path).map_err(|e| e.to_string())?;
    // Every secret the worker holds in this run.
    for (_, secret) in e2e::SECRETS {
        check!(
            !answers.iter().any(|a| a.contains(secret)),
            "an admin answer shows the secret {secret:?}"
        );
        check!(!log.contains(secret), "the log shows the secret {secret:?}");
    }
    Ok(())
}
