//! Sync decisions, as pure functions: given a ticket snapshot, the mappings and what the bridge
//! already wrote to Accelo (the link state), which Accelo calls are due. No I/O here.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::continuum::fields::{is_noc_team, is_service_desk};
use crate::continuum::ticket::{TicketComment, TicketSnapshot};
use crate::mappings::{Config, DocError, Mappings};

/// The Accelo issue fields the bridge owns, as it wants them to be.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IssueFields {
    pub title: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<i64>,
    /// Continuum's `CreatedDate`, unix seconds (Accelo's `date_started`: `date_submitted` is
    /// set by Accelo itself and cannot be written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_started: Option<i64>,
}

/// A Continuum value with no mapping: the issue is made without that field, and this is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    pub field: String,
    pub value: String,
    pub reason: String,
}

/// What the bridge has already written for a ticket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkState {
    pub issue_id: Option<String>,
    /// The company the issue is against, as last written.
    pub company_id: Option<i64>,
    pub applied: Option<IssueFields>,
    pub synced_comments: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum IssueCall {
    /// `POST /issues`; `status_after` is a status Accelo will not take at creation (not a
    /// `start` status), set by a `PUT` right after.
    Create { body: Value, status_after: Option<i64> },
    Update { issue_id: String, body: Value },
    Nothing,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SyncPlan {
    pub desired: IssueFields,
    pub issue: IssueCall,
    /// Comments not yet synced, in delivery order.
    pub comments: Vec<TicketComment>,
    pub gaps: Vec<Gap>,
}

/// Where a ticket's company comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum CompanyRoute {
    /// The `sites` map names it.
    Mapped(i64),
    /// No `sites` entry: look for the company of exactly this name (remembered once found).
    ByName { site_key: String, name: String },
    /// Neither a mapped site nor a site name to match: cannot be placed.
    Unplaceable(String),
}

/// The line that ties an Accelo issue to its Continuum ticket; also how an issue whose creation
/// answer was lost is found again.
pub fn ticket_marker(ticket_id: &str) -> String {
    format!("Continuum ticket: {ticket_id}")
}

/// Documents this ticket cannot be synced without. A broken one makes it wait, stored.
pub fn blocking_doc_error(s: &TicketSnapshot, m: &Mappings) -> Option<DocError> {
    fn need<T>(doc: &Result<T, DocError>) -> Option<DocError> {
        doc.as_ref().err().cloned()
    }
    let has = |v: &Option<String>| v.as_deref().is_some_and(|x| !x.trim().is_empty());
    need(&m.config)
        .or_else(|| need(&m.sites))
        .or_else(|| if has(&s.status) { need(&m.status_in) } else { None })
        .or_else(|| if has(&s.priority) { need(&m.priorities) } else { None })
        .or_else(|| match s.assign_to.as_deref() {
            Some(a) if !a.trim().is_empty() && !is_noc_team(a) && !is_service_desk(a) => need(&m.users),
            _ => None,
        })
}

/// Where to find the ticket's company. `sites` must be usable (see [`blocking_doc_error`]).
pub fn company_route(s: &TicketSnapshot, m: &Mappings) -> CompanyRoute {
    let code = s.site_code.as_deref().map(str::trim).filter(|c| !c.is_empty());
    if let (Some(code), Ok(sites)) = (code, &m.sites) {
        if let Some(id) = sites.get(code) {
            return CompanyRoute::Mapped(*id);
        }
    }
    match s.site_name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        Some(name) => CompanyRoute::ByName {
            site_key: code.map(str::to_string).unwrap_or_else(|| format!("name:{}", name.to_lowercase())),
            name: name.to_string(),
        },
        None => CompanyRoute::Unplaceable(match code {
            Some(c) => format!("site {c} has no `sites` mapping and the ticket has no SiteName to match"),
            None => "the ticket has neither SiteCode nor SiteName".to_string(),
        }),
    }
}

/// The exact-name match among search results (case-insensitive, whole name). Several companies
/// with that very name are ambiguous: no match rather than a guess.
pub fn exact_company_match(name: &str, found: &[(i64, String)]) -> Result<Option<i64>, String> {
    let want = name.trim().to_lowercase();
    let mut ids: Vec<i64> = found.iter().filter(|(_, n)| n.trim().to_lowercase() == want).map(|(id, _)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    match ids.as_slice() {
        [] => Ok(None),
        [id] => Ok(Some(*id)),
        many => Err(format!("{} Accelo companies are named \"{name}\" ({many:?}): add a `sites` entry", many.len())),
    }
}

/// The issue description: Continuum's text, then the device and site details and the marker.
pub fn issue_description(s: &TicketSnapshot) -> String {
    let mut out = s.description.clone().unwrap_or_default().trim_end().to_string();
    let mut details = Vec::new();
    if let Some(d) = s.device.as_deref().filter(|d| !d.is_empty()) {
        match s.reg_id.as_deref().filter(|r| !r.is_empty()) {
            Some(r) => details.push(format!("Device: {d} (RegID {r})")),
            None => details.push(format!("Device: {d}")),
        }
    } else if let Some(r) = s.reg_id.as_deref().filter(|r| !r.is_empty()) {
        details.push(format!("Device RegID: {r}"));
    }
    match (s.site_name.as_deref(), s.site_code.as_deref()) {
        (Some(n), Some(c)) => details.push(format!("Site: {n} ({c})")),
        (Some(n), None) => details.push(format!("Site: {n}")),
        (None, Some(c)) => details.push(format!("Site: {c}")),
        _ => {}
    }
    if let Some(t) = s.ticket_type.as_deref().filter(|t| !t.is_empty()) {
        details.push(format!("Ticket type: {t}"));
    }
    details.push(ticket_marker(&s.ticket_id));
    if !out.is_empty() {
        out.push_str("\n\n");
    }
    out.push_str(&details.join("\n"));
    out
}

fn assignee_for(assign_to: &str, m: &Mappings, cfg: &Config) -> Result<i64, Gap> {
    let gap = |reason: &str| Gap { field: "AssignTo".into(), value: assign_to.into(), reason: reason.into() };
    if is_noc_team(assign_to) {
        Ok(cfg.noc_user_id)
    } else if is_service_desk(assign_to) {
        Ok(cfg.helpdesk_user_id)
    } else {
        m.users.as_ref().ok().and_then(|u| u.get(assign_to)).copied().ok_or_else(|| gap("no `users` mapping"))
    }
}

/// The fields the issue should have, and the values that could not be mapped.
/// Needs a usable `config` (see [`blocking_doc_error`]).
pub fn desired_issue(s: &TicketSnapshot, m: &Mappings) -> Result<(IssueFields, Vec<Gap>), DocError> {
    let cfg = m.config.as_ref().map_err(Clone::clone)?;
    let mut gaps = Vec::new();
    let present = |v: &Option<String>| v.as_deref().map(str::trim).filter(|x| !x.is_empty()).map(str::to_string);

    let status_id = present(&s.status).and_then(|st| {
        let id = m.status_in.as_ref().ok().and_then(|map| map.get(&st)).copied();
        if id.is_none() {
            gaps.push(Gap { field: "Status".into(), value: st, reason: "no `status_in` mapping".into() });
        }
        id
    });
    let priority_id = present(&s.priority).and_then(|p| {
        let id = m.priorities.as_ref().ok().and_then(|map| map.find(&p)).map(|l| l.accelo_priority_id);
        if id.is_none() {
            gaps.push(Gap { field: "Priority".into(), value: p, reason: "no `priorities` mapping".into() });
        }
        id
    });
    let assignee = present(&s.assign_to).and_then(|a| assignee_for(&a, m, cfg).map_err(|g| gaps.push(g)).ok());

    let title = present(&s.subject).unwrap_or_else(|| format!("Continuum ticket {}", s.ticket_id));
    Ok((
        IssueFields {
            title,
            description: issue_description(s),
            status_id,
            priority_id,
            assignee,
            date_started: s.created.map(|d| d.timestamp()),
        },
        gaps,
    ))
}

fn put_opt(body: &mut Map<String, Value>, key: &str, v: Option<i64>) {
    if let Some(v) = v {
        body.insert(key.into(), json!(v));
    }
}

/// `POST /issues` body (Accelo's write names: `type_id`, `status_id`, `priority_id`).
pub fn create_issue_body(d: &IssueFields, company_id: i64, type_id: i64) -> Value {
    let mut body = Map::new();
    body.insert("title".into(), json!(d.title));
    body.insert("description".into(), json!(d.description));
    body.insert("type_id".into(), json!(type_id));
    body.insert("against_type".into(), json!("company"));
    body.insert("against_id".into(), json!(company_id));
    put_opt(&mut body, "status_id", d.status_id);
    put_opt(&mut body, "priority_id", d.priority_id);
    put_opt(&mut body, "assignee", d.assignee);
    put_opt(&mut body, "date_started", d.date_started);
    Value::Object(body)
}

/// `PUT /issues/{id}` body with only the fields that changed since the last write; `None` when
/// nothing did. A field that became unmapped is left as it is in Accelo, never cleared.
pub fn update_issue_body(applied: &IssueFields, d: &IssueFields) -> Option<Value> {
    let mut body = Map::new();
    if d.title != applied.title {
        body.insert("title".into(), json!(d.title));
    }
    if d.description != applied.description {
        body.insert("description".into(), json!(d.description));
    }
    let mut changed = |key: &str, new: Option<i64>, old: Option<i64>| {
        if new.is_some() && new != old {
            put_opt(&mut body, key, new);
        }
    };
    changed("status_id", d.status_id, applied.status_id);
    changed("priority_id", d.priority_id, applied.priority_id);
    changed("assignee", d.assignee, applied.assignee);
    changed("date_started", d.date_started, applied.date_started);
    (!body.is_empty()).then_some(Value::Object(body))
}

/// What `applied` becomes once `update` succeeded: unmapped fields keep their earlier value.
pub fn applied_after(applied: Option<&IssueFields>, d: &IssueFields) -> IssueFields {
    let keep = |new: Option<i64>, old: Option<i64>| new.or(old);
    match applied {
        None => d.clone(),
        Some(a) => IssueFields {
            title: d.title.clone(),
            description: d.description.clone(),
            status_id: keep(d.status_id, a.status_id),
            priority_id: keep(d.priority_id, a.priority_id),
            assignee: keep(d.assignee, a.assignee),
            date_started: keep(d.date_started, a.date_started),
        },
    }
}

/// The activity for one Continuum comment: a note, never emailed (`block_send=1`), visible as
/// Continuum's `Internal` flag says.
pub fn activity_body(c: &TicketComment, issue_id: &str, cfg: &Config) -> Value {
    let first_line = c.body.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("Continuum comment");
    let mut subject: String = first_line.chars().take(120).collect();
    if subject.len() < first_line.len() {
        subject.push('…');
    }
    let against_id: Value = issue_id.parse::<i64>().map(Value::from).unwrap_or_else(|_| json!(issue_id));
    json!({
        "subject": subject,
        "body": c.body,
        "against_type": "issue",
        "against_id": against_id,
        "medium": "note",
        "visibility": if c.internal { cfg.internal_visibility.as_str() } else { "all" },
        "block_send": 1,
    })
}

/// Everything due for a ticket whose company is known. `start_statuses` are the statuses Accelo
/// accepts at creation, when known.
pub fn plan(
    s: &TicketSnapshot,
    m: &Mappings,
    company_id: i64,
    link: &LinkState,
    start_statuses: Option<&[i64]>,
) -> Result<SyncPlan, DocError> {
    let (desired, gaps) = desired_issue(s, m)?;
    let type_id = m.config.as_ref().map_err(Clone::clone)?.issue_type_id;
    let issue = match (&link.issue_id, &link.applied) {
        (None, _) => {
            let late = desired.status_id.filter(|st| start_statuses.is_some_and(|ok| !ok.contains(st)));
            let at_creation = IssueFields { status_id: if late.is_some() { None } else { desired.status_id }, ..desired.clone() };
            IssueCall::Create { body: create_issue_body(&at_creation, company_id, type_id), status_after: late }
        }
        (Some(id), applied) => {
            // Linked but nothing recorded as written (recovered link): write every field once.
            let mut body = update_issue_body(applied.as_ref().unwrap_or(&IssueFields::default()), &desired);
            // The ticket moved to another site: move the issue (Accelo wants both fields together).
            if link.company_id.is_some_and(|c| c != company_id) {
                let b = body.get_or_insert_with(|| json!({}));
                b["against_type"] = json!("company");
                b["against_id"] = json!(company_id);
            }
            match body {
                Some(body) => IssueCall::Update { issue_id: id.clone(), body },
                None => IssueCall::Nothing,
            }
        }
    };
    let comments = s
        .comments
        .iter()
        .filter(|c| !link.synced_comments.contains(&c.sync_key()))
        .cloned()
        .collect();
    Ok(SyncPlan { desired, issue, comments, gaps })
}

#[cfg(test)]
mod tests;
