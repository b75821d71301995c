//! Drafts of the mapping documents, built from both sides' lists (`GET /admin/suggest-mappings`)
//! and the priority import (`POST /admin/import-priorities`). Pure: the lists come in as JSON.

use serde_json::{json, Map, Value};

use crate::accelo::envelope::{id_of, int_of};

fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).map(str::trim).filter(|x| !x.is_empty())
}

fn fold(x: &str) -> String {
    x.trim().to_lowercase()
}

/// Accelo `standing` a Continuum status name most likely means, for names Accelo lacks.
fn standing_for(continuum_status: &str) -> Option<&'static str> {
    let n = fold(continuum_status);
    let has = |w: &[&str]| w.iter().any(|x| n.contains(x));
    if has(&["closed", "close", "cancel", "complete", "done"]) {
        Some("closed")
    } else if has(&["resolved", "fixed"]) {
        Some("resolved")
    } else if has(&["new", "open", "submitted", "created"]) {
        Some("submitted")
    } else if has(&["progress", "assigned", "wait", "pending", "hold", "scheduled", "work"]) {
        Some("open")
    } else {
        None
    }
}

/// The lists each side offers. Continuum: `statuses` [{StatusID, Name}], `users` [{UserID, Name,
/// Email}], `sites` [{SiteCode, SiteName}]; Accelo: `issue_statuses` [{id, title, standing}],
/// `staff` [{id, firstname, surname, email, username}], `companies` [{id, name}].
#[derive(Debug, Default)]
pub struct Lists {
    pub continuum_statuses: Vec<Value>,
    pub continuum_users: Vec<Value>,
    pub continuum_sites: Vec<Value>,
    pub accelo_statuses: Vec<Value>,
    pub accelo_staff: Vec<Value>,
    pub accelo_companies: Vec<Value>,
}

/// Draft `status_in`, `status_out`, `users` and `sites`, plus what could not be matched.
pub fn suggest_mappings(l: &Lists) -> Value {
    let mut unmatched: Map<String, Value> = Map::new();
    let mut note = |doc: &str, what: String| {
        unmatched.entry(doc.to_string()).or_insert_with(|| json!([])).as_array_mut().unwrap().push(json!(what));
    };

    let accelo_status = |title: &str| l.accelo_statuses.iter().find(|a| s(a, "title").is_some_and(|t| fold(t) == fold(title)));
    let by_standing = |standing: &str| l.accelo_statuses.iter().find(|a| s(a, "standing") == Some(standing));
    let mut status_in = Map::new();
    for c in &l.continuum_statuses {
        let Some(name) = s(c, "Name") else { continue };
        match accelo_status(name).or_else(|| standing_for(name).and_then(by_standing)).and_then(|a| a.get("id")).and_then(int_of) {
            Some(id) => {
                status_in.insert(name.to_string(), json!(id));
            }
            None => note("status_in", format!("Continuum status \"{name}\"")),
        }
    }

    let mut status_out = Map::new();
    for a in &l.accelo_statuses {
        let (Some(id), Some(title)) = (a.get("id").and_then(id_of), s(a, "title")) else { continue };
        let same = l.continuum_statuses.iter().filter_map(|c| s(c, "Name")).find(|n| fold(n) == fold(title));
        let standing = s(a, "standing");
        let alike = || l.continuum_statuses.iter().filter_map(|c| s(c, "Name")).find(|n| standing_for(n) == standing);
        match same.or_else(alike) {
            Some(name) => {
                status_out.insert(id, json!(name));
            }
            None => note("status_out", format!("Accelo status {id} \"{title}\"")),
        }
    }

    let mut users = Map::new();
    for u in &l.continuum_users {
        let email = s(u, "Email");
        let name = s(u, "Name");
        let Some(key) = email.or(name) else { continue };
        let staff = l.accelo_staff.iter().find(|st| {
            let full = format!("{} {}", s(st, "firstname").unwrap_or(""), s(st, "surname").unwrap_or(""));
            email.is_some_and(|e| s(st, "email").is_some_and(|se| fold(se) == fold(e)))
                || name.is_some_and(|n| fold(&full) == fold(n))
        });
        match staff.and_then(|st| st.get("id")).and_then(int_of) {
            Some(id) => {
                users.insert(key.to_string(), json!(id));
            }
            None => note("users", format!("Continuum user \"{key}\"")),
        }
    }

    let mut sites = Map::new();
    for site in &l.continuum_sites {
        let Some(code) = s(site, "SiteCode") else { continue };
        let name = s(site, "SiteName").unwrap_or("");
        let company = l.accelo_companies.iter().find(|c| s(c, "name").is_some_and(|n| fold(n) == fold(name)));
        match company.and_then(|c| c.get("id")).and_then(int_of) {
            Some(id) => {
                sites.insert(code.to_string(), json!(id));
            }
            None => note("sites", format!("site {code} \"{name}\"")),
        }
    }

    json!({
        "status_in": status_in,
        "status_out": status_out,
        "users": users,
        "sites": sites,
        "unmatched": unmatched,
    })
}

/// The `priorities` document: each Continuum priority linked to the Accelo priority of the same
/// title, else to the one of the same rank (Continuum's lowest id is the most urgent; Accelo's
/// highest `factor` is). Entries already in `existing` (the operator's edits) are kept.
pub fn import_priorities(continuum: &[Value], accelo: &[Value], existing: Option<&Value>) -> Value {
    let mut ranked_accelo: Vec<(i64, String, i64)> = accelo
        .iter()
        .filter_map(|a| Some((int_of(a.get("id")?)?, s(a, "title").unwrap_or("").to_string(), a.get("factor").and_then(int_of).unwrap_or(0))))
        .collect();
    ranked_accelo.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    let mut ranked_continuum: Vec<(String, String)> = continuum
        .iter()
        .filter_map(|c| Some((c.get("PriorityID").and_then(id_of)?, s(c, "Name")?.to_string())))
        .collect();
    ranked_continuum.sort_by_key(|(id, _)| (id.parse::<i64>().unwrap_or(i64::MAX), id.clone()));

    let mut doc = existing.and_then(Value::as_object).cloned().unwrap_or_default();
    for (rank, (cid, name)) in ranked_continuum.iter().enumerate() {
        if doc.keys().any(|k| fold(k) == fold(name)) {
            continue;
        }
        let same = ranked_accelo.iter().find(|(_, t, _)| fold(t) == fold(name));
        let by_rank = ranked_accelo.get(rank.min(ranked_accelo.len().saturating_sub(1)));
        if let Some((aid, _, _)) = same.or(by_rank) {
            doc.insert(name.clone(), json!({"continuum_id": cid, "accelo_priority_id": aid}));
        }
    }
    Value::Object(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists() -> Lists {
        Lists {
            continuum_statuses: vec![json!({"StatusID": "1", "Name": "New"}), json!({"StatusID": "2", "Name": "In Progress"}), json!({"StatusID": "3", "Name": "Waiting on Customer"}), json!({"StatusID": "4", "Name": "Closed"}), json!({"StatusID": "9", "Name": "Zzz"})],
            continuum_users: vec![json!({"UserID": "7", "Name": "Jane Doe", "Email": "JANE@msp.example"}), json!({"UserID": "8", "Name": "John Doe"}), json!({"UserID": "9", "Name": "Ghost"})],
            continuum_sites: vec![json!({"SiteCode": "S100", "SiteName": "acme dental"}), json!({"SiteCode": "S400", "SiteName": "Umbrella"})],
            accelo_statuses: vec![json!({"id": "1", "title": "New", "standing": "submitted"}), json!({"id": "2", "title": "Working", "standing": "open"}), json!({"id": "5", "title": "Closed", "standing": "closed"}), json!({"id": "6", "title": "Archived", "standing": "inactive"})],
            accelo_staff: vec![json!({"id": "21", "firstname": "Jane", "surname": "Roe", "email": "jane@msp.example"}), json!({"id": "22", "firstname": "John", "surname": "Doe"})],
            accelo_companies: vec![json!({"id": "39", "name": "Acme Dental"})],
        }
    }

    #[test]
    fn drafts_every_document_and_lists_the_rest() {
        let d = suggest_mappings(&lists());
        assert_eq!(d["status_in"], json!({"New": 1, "In Progress": 2, "Waiting on Customer": 2, "Closed": 5}));
        assert_eq!(d["status_out"], json!({"1": "New", "2": "In Progress", "5": "Closed"}));
        assert_eq!(d["users"], json!({"JANE@msp.example": 21, "John Doe": 22}));
        assert_eq!(d["sites"], json!({"S100": 39}));
        assert_eq!(d["unmatched"]["status_in"], json!(["Continuum status \"Zzz\""]));
        assert_eq!(d["unmatched"]["status_out"], json!(["Accelo status 6 \"Archived\""]));
        assert_eq!(d["unmatched"]["users"], json!(["Continuum user \"Ghost\""]));
        assert_eq!(d["unmatched"]["sites"], json!(["site S400 \"Umbrella\""]));
    }

    #[test]
    fn priorities_link_by_title_then_rank_and_keep_edits() {
        let continuum = [json!({"PriorityID": "2", "Name": "High"}), json!({"PriorityID": "1", "Name": "Critical"}), json!({"PriorityID": "3", "Name": "Medium"}), json!({"PriorityID": "4", "Name": "Low"})];
        let accelo = [json!({"id": "1", "title": "None", "factor": "1"}), json!({"id": "3", "title": "Medium", "factor": "3"}), json!({"id": "5", "title": "Extreme", "factor": "5"}), json!({"id": "4", "title": "High", "factor": "4"})];
        let doc = import_priorities(&continuum, &accelo, Some(&json!({"low": {"continuum_id": "4", "accelo_priority_id": 1}})));
        assert_eq!(doc["Critical"], json!({"continuum_id": "1", "accelo_priority_id": 5}));
        assert_eq!(doc["High"], json!({"continuum_id": "2", "accelo_priority_id": 4}));
        assert_eq!(doc["Medium"], json!({"continuum_id": "3", "accelo_priority_id": 3}));
        assert_eq!(doc["low"], json!({"continuum_id": "4", "accelo_priority_id": 1}), "operator's entry kept");
        assert!(doc.get("Low").is_none());
        // The result is a valid `priorities` document.
        let text = doc.to_string();
        let m = crate::mappings::Mappings::parse(|k| (k == "priorities").then(|| text.clone()));
        assert!(m.priorities.is_ok());
    }
}
