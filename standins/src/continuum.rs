//! Continuum API stand-in (continuum-protocol.md section 2): lookups, tickets, comments.

use crate::common::*;
use crate::{ContinuumConfig, ContinuumSeed};
use axum::body::Body;
use axum::http::{HeaderMap, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

pub type Shared = Arc<Mutex<ContinuumState>>;

/// Lookup lists and the key field of their items.
pub const LISTS: &[(&str, &str)] = &[
    ("priorities", "PriorityID"),
    ("statuses", "StatusID"),
    ("tickettypes", "TypeID"),
    ("users", "UserID"),
    ("sites", "SiteCode"),
];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContinuumSnapshot {
    /// TicketID -> ticket JSON, as `GET /tickets/{id}` would return it.
    pub tickets: BTreeMap<String, Value>,
    /// Every comment posted through the API, with its `TicketID`, in order.
    pub comments: Vec<Value>,
    pub lists: BTreeMap<String, Vec<Value>>,
    pub faults: Vec<Fault>,
    pub requests: Vec<RequestRecord>,
}

pub struct ContinuumState {
    cfg: ContinuumConfig,
    seed: ContinuumSeed,
    lists: BTreeMap<String, Vec<Value>>,
    tickets: Vec<(String, Value)>,
    comments: Vec<Value>,
    next_ticket: u64,
    next_comment: u64,
    journal: Journal,
}

fn rfc3339_now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn err(code: u16, msg: impl Into<String>) -> Response<Body> {
    json_response(code, &json!({"error": msg.into()}))
}

impl ContinuumState {
    pub fn new(cfg: ContinuumConfig, seed: ContinuumSeed) -> Self {
        let mut s = ContinuumState {
            cfg,
            seed,
            lists: BTreeMap::new(),
            tickets: vec![],
            comments: vec![],
            next_ticket: 5001,
            next_comment: 9001,
            journal: Journal::default(),
        };
        s.reset();
        s
    }

    /// Back to the seed: lookups, tickets, comments, faults, request log.
    pub fn reset(&mut self) {
        let sd = &self.seed;
        self.lists = [
            ("priorities", &sd.priorities),
            ("statuses", &sd.statuses),
            ("tickettypes", &sd.tickettypes),
            ("users", &sd.users),
            ("sites", &sd.sites),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
        self.tickets.clear();
        self.comments.clear();
        self.next_ticket = 5001;
        self.next_comment = 9001;
        for t in self.seed.tickets.clone() {
            if let Some(id) = t.get("TicketID").and_then(vstr) {
                self.put_ticket(&id, t);
            }
        }
        self.journal.clear();
    }

    pub fn snapshot(&self) -> ContinuumSnapshot {
        ContinuumSnapshot {
            tickets: self.tickets.iter().cloned().collect(),
            comments: self.comments.clone(),
            lists: self.lists.clone(),
            faults: self.journal.faults().to_vec(),
            requests: self.journal.requests().to_vec(),
        }
    }

    /// Stores a ticket that `GET /tickets/{id}` then returns byte-for-byte as JSON.
    pub fn put_ticket(&mut self, id: &str, ticket: Value) {
        if let Ok(n) = id.parse::<u64>() {
            self.next_ticket = self.next_ticket.max(n + 1);
        }
        match self.ticket_mut(id) {
            Some(t) => *t = ticket,
            None => self.tickets.push((id.to_string(), ticket)),
        }
    }

    pub fn delete_ticket(&mut self, id: &str) -> bool {
        let before = self.tickets.len();
        self.tickets.retain(|(k, _)| k != id);
        before != self.tickets.len()
    }

    pub fn ticket(&self, id: &str) -> Option<&Value> {
        self.tickets.iter().find(|(k, _)| k == id).map(|(_, t)| t)
    }

    fn ticket_mut(&mut self, id: &str) -> Option<&mut Value> {
        self.tickets
            .iter_mut()
            .find(|(k, _)| k == id)
            .map(|(_, t)| t)
    }

    /// Insert or replace lookup items (`sites`, `users`, ...) by their key field.
    pub fn upsert_list(&mut self, list: &str, item: Value) -> Result<Value, String> {
        let key = LISTS
            .iter()
            .find(|(l, _)| *l == list)
            .map(|(_, k)| *k)
            .ok_or(format!("unknown list {list}"))?;
        let id = item
            .get(key)
            .and_then(vstr)
            .ok_or(format!("item needs {key}"))?;
        let items = self.lists.entry(list.to_string()).or_default();
        match items
            .iter_mut()
            .find(|i| i.get(key).and_then(vstr).as_deref() == Some(&id))
        {
            Some(i) => *i = item.clone(),
            None => items.push(item.clone()),
        }
        Ok(item)
    }

    fn names(&self, list: &str) -> Vec<String> {
        self.lists
            .get(list)
            .into_iter()
            .flatten()
            .filter_map(|i| i.get("Name").and_then(vstr))
            .collect()
    }

    /// Status/Priority/TicketType/SiteCode/AssignTo values must be known to Continuum; names
    /// match case-insensitively and are stored as Continuum spells them.
    fn validate(&self, t: &mut Obj) -> Result<(), String> {
        for (field, list) in [
            ("Status", "statuses"),
            ("Priority", "priorities"),
            ("TicketType", "tickettypes"),
        ] {
            if let Some(v) = t.get(field).and_then(vstr) {
                let name = self
                    .names(list)
                    .into_iter()
                    .find(|n| n.eq_ignore_ascii_case(&v));
                t.insert(
                    field.into(),
                    json!(name.ok_or(format!("Unknown {field} '{v}'"))?),
                );
            }
        }
        if let Some(code) = t.get("SiteCode").and_then(vstr) {
            if self.site(&code).is_none() {
                return Err(format!("Unknown SiteCode '{code}'"));
            }
        }
        if let Some(a) = t.get("AssignTo").and_then(vstr) {
            let team = ["NOC Team", "Service Desk"]
                .iter()
                .any(|n| n.eq_ignore_ascii_case(&a));
            let user = self.lists.get("users").into_iter().flatten().any(|u| {
                ["UserID", "Name", "Email"].iter().any(|k| {
                    u.get(*k)
                        .and_then(vstr)
                        .is_some_and(|v| v.eq_ignore_ascii_case(&a))
                })
            });
            if !team && !user {
                return Err(format!("Unknown AssignTo '{a}'"));
            }
        }
        Ok(())
    }

    fn site(&self, code: &str) -> Option<&Value> {
        self.lists
            .get("sites")?
            .iter()
            .find(|s| s.get("SiteCode").and_then(vstr).as_deref() == Some(code))
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let user = headers
            .get("x-integrator-user")
            .and_then(|v| v.to_str().ok());
        bearer(headers).as_deref() == Some(self.cfg.api_token.as_str())
            && user == Some(self.cfg.integrator_user.as_str())
    }

    fn serve(
        &mut self,
        method: &str,
        path: &str,
        pairs: &[(String, String)],
        raw: &[u8],
        headers: &HeaderMap,
    ) -> Response<Body> {
        if !self.authorized(headers) {
            return err(401, "Unauthorized");
        }
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        // Bodies are JSON whatever the Content-Type says.
        let obj_body = || match serde_json::from_slice::<Value>(raw) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err("Body must be a JSON object".to_string()),
            Err(_) if raw.iter().all(|b| b.is_ascii_whitespace()) => {
                Err("A JSON body is required".to_string())
            }
            Err(e) => Err(format!("Malformed JSON body: {e}")),
        };
        match (method, segs.as_slice()) {
            ("GET", [list @ ("priorities" | "statuses" | "tickettypes" | "users" | "sites")]) => {
                json_response(
                    200,
                    &Value::Array(self.lists.get(*list).cloned().unwrap_or_default()),
                )
            }
            ("GET", ["tickets"]) => {
                let ext = pairs
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("ExternalID"))
                    .map(|(_, v)| v.clone());
                let found: Vec<Value> = self
                    .tickets
                    .iter()
                    .map(|(_, t)| t)
                    .filter(|t| {
                        ext.as_ref()
                            .is_none_or(|e| t.get("ExternalID").and_then(vstr).as_ref() == Some(e))
                    })
                    .cloned()
                    .collect();
                json_response(200, &Value::Array(found))
            }
            ("GET", ["tickets", id]) => match self.ticket(id) {
                Some(t) => json_response(200, t),
                None => err(404, format!("Ticket {id} not found")),
            },
            ("POST", ["tickets"]) => {
                let mut t = match obj_body() {
                    Ok(t) => t,
                    Err(e) => return err(400, e),
                };
                for req in ["Subject", "SiteCode"] {
                    if t.get(req)
                        .and_then(vstr)
                        .is_none_or(|v| v.trim().is_empty())
                    {
                        return err(422, format!("{req} is required"));
                    }
                }
                if let Err(e) = self.validate(&mut t) {
                    return err(422, e);
                }
                let id = self.next_ticket.to_string();
                let now = rfc3339_now();
                let site_name = self
                    .site(&t["SiteCode"].as_str().map(String::from).unwrap_or_default())
                    .and_then(|s| s.get("SiteName").cloned());
                t.insert("TicketID".into(), json!(id));
                t.entry("SiteName")
                    .or_insert(site_name.unwrap_or(Value::Null));
                t.entry("Status").or_insert(json!("New"));
                t.insert("CreatedDate".into(), json!(now));
                t.insert("UpdatedDate".into(), json!(now));
                t.entry("Comments").or_insert(json!([]));
                self.put_ticket(&id, Value::Object(t));
                json_response(201, &json!({"TicketID": id}))
            }
            ("PUT", ["tickets", id]) => {
                if self.ticket(id).is_none() {
                    return err(404, format!("Ticket {id} not found"));
                }
                let b = match obj_body() {
                    Ok(b) => b,
                    Err(e) => return err(400, e),
                };
                // Only these are updatable; anything else in the body is ignored.
                let mut upd: Obj = b
                    .into_iter()
                    .filter(|(k, _)| {
                        matches!(
                            k.as_str(),
                            "Subject" | "Description" | "Status" | "Priority" | "AssignTo"
                        )
                    })
                    .collect();
                if let Err(e) = self.validate(&mut upd) {
                    return err(422, e);
                }
                let t = self.ticket_mut(id).expect("checked");
                if let Value::Object(m) = t {
                    m.extend(upd);
                    m.insert("UpdatedDate".into(), json!(rfc3339_now()));
                }
                json_response(200, t)
            }
            ("POST", ["tickets", id, "comments"]) => {
                if self.ticket(id).is_none() {
                    return err(404, format!("Ticket {id} not found"));
                }
                let mut c = match obj_body() {
                    Ok(c) => c,
                    Err(e) => return err(400, e),
                };
                if c.get("Body")
                    .and_then(vstr)
                    .is_none_or(|v| v.trim().is_empty())
                {
                    return err(422, "Body is required");
                }
                let cid = self.next_comment.to_string();
                self.next_comment += 1;
                let now = rfc3339_now();
                c.insert("CommentID".into(), json!(cid));
                c.entry("CreatedDate").or_insert(json!(now));
                let t = self.ticket_mut(id).expect("checked");
                if let Value::Object(m) = t {
                    // The comment shows up on the ticket, as a later pull would see it.
                    let list = m.entry("Comments").or_insert(json!([]));
                    if !list.is_array() {
                        *list = json!([]);
                    }
                    list.as_array_mut()
                        .expect("array")
                        .push(Value::Object(c.clone()));
                    m.insert("UpdatedDate".into(), json!(now));
                }
                c.insert("TicketID".into(), json!(id));
                self.comments.push(Value::Object(c));
                json_response(201, &json!({"CommentID": cid}))
            }
            _ => err(404, format!("No route for {method} {path}")),
        }
    }
}

impl StandIn for ContinuumState {
    fn journal(&mut self) -> &mut Journal {
        &mut self.journal
    }

    fn answer(&mut self, req: &Req<'_>, fault: Option<(u16, &Fault)>) -> Response<Body> {
        match fault {
            Some((429, f)) => {
                let mut r = err(429, "Too Many Requests");
                let secs = f.retry_after_secs.unwrap_or(1).to_string();
                r.headers_mut()
                    .insert("Retry-After", secs.parse().expect("digits"));
                r
            }
            Some((code, _)) => err(code, "Injected fault"),
            None => self.serve(req.method, req.path, &req.pairs, req.raw, req.headers),
        }
    }

    fn control(&mut self, method: &str, route: &str, body: &[u8]) -> Option<Response<Body>> {
        control(self, method, route, body)
    }
}

fn control(
    s: &mut ContinuumState,
    method: &str,
    route: &str,
    body: &[u8],
) -> Option<Response<Body>> {
    let ok = |v: Value| json_response(200, &v);
    let segs: Vec<&str> = route.split('/').collect();
    Some(match (method, segs.as_slice()) {
        ("GET", ["state"]) => ok(serde_json::to_value(s.snapshot()).unwrap_or_default()),
        ("POST", ["reset"]) => {
            s.reset();
            ok(json!({"ok": true}))
        }
        ("PUT", ["tickets", id]) => match control_json(body) {
            Ok(t) => {
                s.put_ticket(id, t.clone());
                ok(t)
            }
            Err(e) => control_fail(400, e),
        },
        ("DELETE", ["tickets", id]) => {
            if s.delete_ticket(id) {
                ok(json!({"ok": true}))
            } else {
                control_fail(404, format!("no ticket {id}"))
            }
        }
        ("PUT" | "POST", [list]) if LISTS.iter().any(|(l, _)| l == list) => {
            match control_json(body).and_then(|v| {
                one_or_many(v)
                    .into_iter()
                    .map(|i| s.upsert_list(list, i))
                    .collect::<Result<Vec<_>, _>>()
            }) {
                Ok(v) => ok(Value::Array(v)),
                Err(e) => control_fail(400, e),
            }
        }
        _ => return None,
    })
}
