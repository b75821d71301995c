//! Intake: refused deliveries store nothing; sizes, content types, text and dates as sent.

use std::sync::Arc;
use std::time::Duration;

use e2e::{check, check_eq, ticket, Auth, Ctx, Outcome, PASSWORD, USER};
use serde_json::json;

use crate::common::{
    check_issue, expect_issue, quiet_counts, store_counts, Expect, CREATED_0005, CREATED_0915,
    CREATED_1230,
};

pub async fn rejects_store_nothing(c: Arc<Ctx>) -> Outcome {
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
    // Refused for who asks: (what, path, auth, a good ticket's id, expected status).
    let (here, elsewhere) = (path.as_str(), "/continuum/someoneelse");
    let right = Auth::Basic(USER, PASSWORD);
    let wrong_pw = Auth::Basic(USER, "not-the-password");
    let (mallory, other) = (
        Auth::Basic("mallory", PASSWORD),
        Auth::Basic("someoneelse", PASSWORD),
    );
    let who = [
        ("wrong password", here, wrong_pw, "E2E-REJ-PW", 401),
        ("missing auth", here, Auth::None, "E2E-REJ-NOAUTH", 401),
        ("wrong user name", here, mallory, "E2E-REJ-USER", 401),
        ("unknown path user", elsewhere, other, "E2E-REJ-PATH", 404),
        (
            "unknown path user, right creds",
            elsewhere,
            right,
            "E2E-REJ-PATH2",
            404,
        ),
    ];
    // Refused for the body, with the right credentials: (what, content type, body, expected status).
    let (xml_ct, text_xml) = (Some("application/xml"), Some("text/xml"));
    let malformed_json = r#"{"TicketID": "E2E-REJ-MJ", "Subject": "#;
    let malformed_xml = "<Ticket><TicketID>E2E-REJ-MX</TicketID><Subject>x</Ticket>";
    let csv = "TicketID,Subject\nE2E-REJ-CSV,csv ticket\n";
    let form = "TicketID=E2E-REJ-FORM&Subject=form";
    let what_is_sent = [
        ("malformed JSON", json_ct, malformed_json, 400),
        ("malformed XML", xml_ct, malformed_xml, 400),
        ("oversized (300 KiB)", json_ct, &big, 413),
        ("text/csv", Some("text/csv"), csv, 415),
        ("sniffed non-ticket body", None, form, 415),
        ("DOCTYPE billion laughs", text_xml, billion_laughs, 400),
        ("plain DOCTYPE", xml_ct, plain_doctype, 400),
        ("external entity", None, xxe, 400),
        ("all-invalid batch", json_ct, &all_invalid, 400),
    ];
    let cases = who
        .into_iter()
        .map(|(what, path, auth, id, want)| (what, path, auth, json_ct, good(id), want))
        .chain(
            what_is_sent
                .into_iter()
                .map(|(what, ct, body, want)| (what, here, right, ct, body.to_string(), want)),
        );
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
    let r = c.get_notify(None).await?;
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

pub async fn size_limit_boundary(c: Arc<Ctx>) -> Outcome {
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

pub async fn text_survives_intact(c: Arc<Ctx>) -> Outcome {
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
    let want = Expect {
        fields: &[("title", subject)],
        starts: "Ligne 1\nLigne 2 «ok»",
        ..Expect::default()
    };
    expect_issue(&c, "E2E-TEXT-1", |_| true, &want).await?;

    // XML: predefined entities and CDATA are text, not declarations.
    let xml = "<Ticket><TicketID>E2E-TEXT-2</TicketID><Subject>Disk &lt;C:&gt; low &amp; &quot;urgent&quot;</Subject>\
               <Description><![CDATA[Raw <b>markup</b> & more]]></Description><SiteCode>S100</SiteCode><SiteName>Acme Dental</SiteName>\
               <Status>New</Status></Ticket>";
    c.post_callback("application/xml", xml).await?.expect(200)?;
    let want = Expect {
        fields: &[("title", "Disk <C:> low & \"urgent\"")],
        starts: "Raw <b>markup</b> & more",
        ..Expect::default()
    };
    expect_issue(&c, "E2E-TEXT-2", |_| true, &want).await?;
    Ok(())
}

pub async fn content_type_sniffing(c: Arc<Ctx>) -> Outcome {
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
        let answered = if xml {
            r.expect_accepted_xml(1)
        } else {
            r.expect_accepted(1)
        };
        answered.map_err(|e| format!("{id} (Content-Type {ct:?}): {e}"))?;
    }
    for (id, ..) in cases {
        c.wait_issue(id, |_| true).await?;
    }
    Ok(())
}

pub async fn datetime_forms(c: Arc<Ctx>) -> Outcome {
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

pub async fn unparseable_date_is_a_field_error(c: Arc<Ctx>) -> Outcome {
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
