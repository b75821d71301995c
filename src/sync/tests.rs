use std::collections::HashMap;

use chrono::{TimeZone, Utc};
use serde_json::json;

use super::*;

fn mappings(extra: &[(&str, &str)]) -> Mappings {
    let mut docs: HashMap<String, String> = [
        ("config", r#"{"noc_user_id": 14, "helpdesk_user_id": 15, "issue_type_id": 3}"#),
        ("status_in", r#"{"New": 1, "In Progress": 2, "Closed": 5}"#),
        ("users", r#"{"jane@msp.example": 21, "jdoe": 22}"#),
        ("sites", r#"{"S100": 39}"#),
        ("priorities", r#"{"Critical": {"continuum_id": "1", "accelo_priority_id": 5}}"#),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        docs.insert(k.to_string(), v.to_string());
    }
    Mappings::parse(|k| docs.get(k).cloned())
}

fn ticket() -> TicketSnapshot {
    TicketSnapshot {
        ticket_id: "1001".into(),
        subject: Some("Disk C: low".into()),
        description: Some("Free space under 5%".into()),
        created: Some(Utc.with_ymd_and_hms(2026, 12, 4, 9, 15, 0).unwrap()),
        status: Some("new".into()),
        priority: Some("Critical".into()),
        assign_to: Some("NOC Team".into()),
        site_code: Some("S100".into()),
        site_name: Some("Acme Dental".into()),
        device: Some("SRV-01".into()),
        reg_id: Some("555".into()),
        ticket_type: Some("Incident".into()),
        ..Default::default()
    }
}

#[test]
fn new_ticket_creates_issue_with_every_mapped_field() {
    let p = plan(&ticket(), &mappings(&[]), 39, &LinkState::default(), None).unwrap();
    let IssueCall::Create { body, status_after: None } = p.issue else { panic!("expected create") };
    assert_eq!(body["title"], "Disk C: low");
    assert_eq!(body["type_id"], 3);
    assert_eq!(body["against_type"], "company");
    assert_eq!(body["against_id"], 39);
    assert_eq!(body["status_id"], 1);
    assert_eq!(body["priority_id"], 5);
    assert_eq!(body["assignee"], 14);
    assert_eq!(body["date_started"], 1_796_375_700);
    let d = body["description"].as_str().unwrap();
    assert!(d.starts_with("Free space under 5%"));
    assert!(d.contains("Device: SRV-01 (RegID 555)"));
    assert!(d.contains("Site: Acme Dental (S100)"));
    assert!(d.contains("Continuum ticket: 1001"));
    assert!(p.gaps.is_empty());
}

#[test]
fn assignees_map_noc_helpdesk_aliases_and_technicians() {
    let m = mappings(&[]);
    for (who, id) in [("NOC Team", 14), ("Service Desk", 15), ("Continuum Helpdesk", 15), ("helpdesk", 15), ("ServiceDesk", 15), ("JDOE", 22), ("jane@msp.example", 21)] {
        let mut t = ticket();
        t.assign_to = Some(who.into());
        assert_eq!(desired_issue(&t, &m).unwrap().0.assignee, Some(id), "{who}");
    }
}

#[test]
fn unmapped_values_leave_gaps_but_do_not_block() {
    let mut t = ticket();
    t.status = Some("Escalated".into());
    t.priority = Some("Whenever".into());
    t.assign_to = Some("nobody@msp.example".into());
    let p = plan(&t, &mappings(&[]), 39, &LinkState::default(), None).unwrap();
    let IssueCall::Create { body, .. } = p.issue else { panic!() };
    assert!(body.get("status_id").is_none() && body.get("priority_id").is_none() && body.get("assignee").is_none());
    let fields: Vec<_> = p.gaps.iter().map(|g| g.field.as_str()).collect();
    assert_eq!(fields, ["Status", "Priority", "AssignTo"]);
}

#[test]
fn priority_may_arrive_as_continuum_id() {
    let mut t = ticket();
    t.priority = Some("1".into());
    assert_eq!(desired_issue(&t, &mappings(&[])).unwrap().0.priority_id, Some(5));
}

#[test]
fn update_sends_only_changed_fields() {
    let m = mappings(&[]);
    let (applied, _) = desired_issue(&ticket(), &m).unwrap();
    let link = LinkState { issue_id: Some("7".into()), applied: Some(applied), ..Default::default() };
    let mut t = ticket();
    t.status = Some("In Progress".into());
    let p = plan(&t, &m, 39, &link, None).unwrap();
    assert_eq!(p.issue, IssueCall::Update { issue_id: "7".into(), body: json!({"status_id": 2}) });
    // The same snapshot again: nothing due.
    let p = plan(&ticket(), &m, 39, &link, None).unwrap();
    assert_eq!(p.issue, IssueCall::Nothing);
}

#[test]
fn a_mapping_added_later_fills_the_gap_on_the_next_pass() {
    let mut t = ticket();
    t.status = Some("Escalated".into());
    let (applied, gaps) = desired_issue(&t, &mappings(&[])).unwrap();
    assert_eq!(gaps.len(), 1);
    let link = LinkState { issue_id: Some("7".into()), applied: Some(applied), ..Default::default() };
    let m = mappings(&[("status_in", r#"{"Escalated": 2}"#)]);
    let p = plan(&t, &m, 39, &link, None).unwrap();
    assert_eq!(p.issue, IssueCall::Update { issue_id: "7".into(), body: json!({"status_id": 2}) });
    assert!(p.gaps.is_empty());
}

#[test]
fn unmapped_field_is_never_cleared() {
    let m = mappings(&[]);
    let (applied, _) = desired_issue(&ticket(), &m).unwrap();
    let mut t = ticket();
    t.status = Some("Escalated".into());
    let (d, _) = desired_issue(&t, &m).unwrap();
    assert_eq!(update_issue_body(&applied, &d), None);
    assert_eq!(applied_after(Some(&applied), &d).status_id, Some(1));
}

#[test]
fn comments_are_due_once_each() {
    let mut t = ticket();
    t.comments = vec![
        TicketComment { comment_id: Some("c1".into()), body: "Rebooted".into(), ..Default::default() },
        TicketComment { comment_id: None, body: "Still low".into(), author: Some("jdoe".into()), internal: true, ..Default::default() },
    ];
    let mut link = LinkState::default();
    assert_eq!(plan(&t, &mappings(&[]), 39, &link, None).unwrap().comments.len(), 2);
    link.synced_comments.insert(t.comments[0].sync_key());
    let due = plan(&t, &mappings(&[]), 39, &link, None).unwrap().comments;
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].body, "Still low");
}

#[test]
fn activity_is_a_silent_note_with_internal_visibility() {
    let cfg = mappings(&[]).config.unwrap();
    let c = TicketComment { body: "Line one\nmore".into(), internal: true, ..Default::default() };
    let a = activity_body(&c, "7", &cfg);
    assert_eq!(a["medium"], "note");
    assert_eq!(a["block_send"], 1);
    assert_eq!(a["visibility"], "private");
    assert_eq!(a["subject"], "Line one");
    assert_eq!(a["body"], "Line one\nmore");
    assert_eq!(a["against_type"], "issue");
    assert_eq!(a["against_id"], 7);
    let public = TicketComment { internal: false, ..c };
    assert_eq!(activity_body(&public, "7", &cfg)["visibility"], "all");
}

#[test]
fn company_route_prefers_sites_then_name() {
    let m = mappings(&[]);
    assert_eq!(company_route(&ticket(), &m), CompanyRoute::Mapped(39));
    let mut t = ticket();
    t.site_code = Some("S200".into());
    t.site_name = Some("Globex Corporation".into());
    assert_eq!(company_route(&t, &m), CompanyRoute::ByName { site_key: "S200".into(), name: "Globex Corporation".into() });
    t.site_name = None;
    assert!(matches!(company_route(&t, &m), CompanyRoute::Unplaceable(_)));
}

#[test]
fn exact_name_match_is_case_insensitive_and_whole() {
    let found = vec![(40, "Globex Corporation".to_string()), (41, "Globex Corporation Ltd".to_string())];
    assert_eq!(exact_company_match("globex corporation", &found), Ok(Some(40)));
    assert_eq!(exact_company_match("Globex", &found), Ok(None));
    let twins = vec![(40, "Globex".to_string()), (42, "GLOBEX".to_string())];
    assert!(exact_company_match("Globex", &twins).is_err());
}

#[test]
fn broken_documents_block_only_tickets_that_need_them() {
    let m = mappings(&[("users", "{broken")]);
    assert_eq!(blocking_doc_error(&ticket(), &m), None, "NOC ticket needs no users map");
    let mut t = ticket();
    t.assign_to = Some("jdoe".into());
    assert_eq!(blocking_doc_error(&t, &m).unwrap().key, "users");
    let m = mappings(&[("config", "[]")]);
    assert_eq!(blocking_doc_error(&ticket(), &m).unwrap().key, "config");
}

#[test]
fn a_status_not_allowed_at_creation_is_set_right_after() {
    let mut t = ticket();
    t.status = Some("In Progress".into());
    let p = plan(&t, &mappings(&[]), 39, &LinkState::default(), Some(&[1])).unwrap();
    let IssueCall::Create { body, status_after } = p.issue else { panic!() };
    assert!(body.get("status_id").is_none());
    assert_eq!(status_after, Some(2));
    assert_eq!(p.desired.status_id, Some(2));
    let p = plan(&ticket(), &mappings(&[]), 39, &LinkState::default(), Some(&[1])).unwrap();
    assert!(matches!(p.issue, IssueCall::Create { ref body, status_after: None } if body["status_id"] == 1));
}

#[test]
fn a_ticket_moved_to_another_site_moves_its_issue() {
    let m = mappings(&[("sites", r#"{"S100": 39, "S200": 40}"#)]);
    let (applied, _) = desired_issue(&ticket(), &m).unwrap();
    let link = LinkState { issue_id: Some("7".into()), company_id: Some(39), applied: Some(applied), ..Default::default() };
    assert_eq!(plan(&ticket(), &m, 39, &link, None).unwrap().issue, IssueCall::Nothing);
    let mut t = ticket();
    t.site_code = Some("S200".into());
    t.site_name = None;
    let p = plan(&t, &m, 40, &link, None).unwrap();
    let IssueCall::Update { body, .. } = p.issue else { panic!() };
    assert_eq!((body["against_type"].as_str(), body["against_id"].as_i64()), (Some("company"), Some(40)));
}
