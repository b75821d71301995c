//! The operator's mapping documents (operator-surface.md, "Mappings"): one JSON document per KV
//! key, parsed and validated here. A broken document is reported by key and reason; it never
//! panics and never blocks tickets that do not need it.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

pub const CONFIG: &str = "config";
pub const STATUS_IN: &str = "status_in";
pub const STATUS_OUT: &str = "status_out";
pub const USERS: &str = "users";
pub const SITES: &str = "sites";
pub const PRIORITIES: &str = "priorities";
/// Every key the bridge reads from the `MAPPINGS` namespace.
pub const KEYS: [&str; 6] = [CONFIG, STATUS_IN, STATUS_OUT, USERS, SITES, PRIORITIES];

/// A broken document: which key, and why (shown in `/admin/status` and the log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocError {
    pub key: String,
    pub reason: String,
}

impl DocError {
    fn new(key: &str, reason: impl Into<String>) -> Self {
        Self { key: key.to_string(), reason: reason.into() }
    }
}

impl std::fmt::Display for DocError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "mapping '{}': {}", self.key, self.reason)
    }
}

/// Visibility for activities made from Continuum comments flagged `Internal`.
pub const DEFAULT_INTERNAL_VISIBILITY: &str = "private";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    pub noc_user_id: i64,
    pub helpdesk_user_id: i64,
    pub issue_type_id: i64,
    pub continuum_ticket_type: String,
    /// Optional: `private` (default) or `confidential`, for internal comments.
    pub internal_visibility: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PriorityLink {
    pub continuum_id: Option<String>,
    pub accelo_priority_id: i64,
}

/// A map looked up case-insensitively (Continuum names arrive in any case), keeping the
/// operator's spelling for display.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NameMap<V> {
    entries: BTreeMap<String, (String, V)>,
}

impl<V> Default for NameMap<V> {
    fn default() -> Self {
        Self { entries: BTreeMap::new() }
    }
}

impl<V> NameMap<V> {
    pub fn get(&self, name: &str) -> Option<&V> {
        self.entries.get(&fold(name)).map(|(_, v)| v)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.entries.values().map(|(k, v)| (k.as_str(), v))
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    fn insert(&mut self, name: &str, v: V) -> bool {
        self.entries.insert(fold(name), (name.to_string(), v)).is_none()
    }
}

fn fold(s: &str) -> String {
    s.trim().to_lowercase()
}

/// All documents as read from KV. Each is `Ok` (possibly empty) or the reason it is unusable.
#[derive(Debug, Clone)]
pub struct Mappings {
    pub config: Result<Config, DocError>,
    pub status_in: Result<NameMap<i64>, DocError>,
    pub status_out: Result<BTreeMap<i64, String>, DocError>,
    pub users: Result<NameMap<i64>, DocError>,
    pub sites: Result<NameMap<i64>, DocError>,
    pub priorities: Result<NameMap<PriorityLink>, DocError>,
}

impl Mappings {
    /// Parses every document. `raw(key)` returns the KV value, `None` when the key is absent.
    /// Only `config` is required; an absent map is an empty one.
    pub fn parse(raw: impl Fn(&str) -> Option<String>) -> Mappings {
        let doc = |key: &str| -> Result<Option<Value>, DocError> {
            match raw(key) {
                None => Ok(None),
                Some(text) if text.trim().is_empty() => Ok(None),
                Some(text) => serde_json::from_str::<Value>(&text)
                    .map(Some)
                    .map_err(|e| DocError::new(key, format!("not valid JSON: {e}"))),
            }
        };
        Mappings {
            config: doc(CONFIG).and_then(|v| match v {
                None => Err(DocError::new(CONFIG, "missing: put it with `wrangler kv key put --binding MAPPINGS config '{...}'`")),
                Some(v) => parse_config(&v),
            }),
            status_in: doc(STATUS_IN).and_then(|v| name_to_id(STATUS_IN, v)),
            status_out: doc(STATUS_OUT).and_then(parse_status_out),
            users: doc(USERS).and_then(|v| name_to_id(USERS, v)),
            sites: doc(SITES).and_then(|v| name_to_id(SITES, v)),
            priorities: doc(PRIORITIES).and_then(parse_priorities),
        }
    }

    /// A document that could not be read at all (storage failure): unusable, with that reason.
    pub fn mark_unreadable(&mut self, key: &str, reason: &str) {
        let e = DocError::new(key, format!("could not be read: {reason}"));
        match key {
            CONFIG => self.config = Err(e),
            STATUS_IN => self.status_in = Err(e),
            STATUS_OUT => self.status_out = Err(e),
            USERS => self.users = Err(e),
            SITES => self.sites = Err(e),
            PRIORITIES => self.priorities = Err(e),
            _ => {}
        }
    }

    /// Every broken document, in key order.
    pub fn errors(&self) -> Vec<DocError> {
        [
            self.config.as_ref().err(),
            self.status_in.as_ref().err(),
            self.status_out.as_ref().err(),
            self.users.as_ref().err(),
            self.sites.as_ref().err(),
            self.priorities.as_ref().err(),
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect()
    }
}

/// An id in a mapping: a positive integer, written as a number or a numeric string.
fn positive_id(v: &Value) -> Option<i64> {
    let n = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }?;
    (n > 0).then_some(n)
}

fn object<'a>(key: &str, v: &'a Value) -> Result<&'a serde_json::Map<String, Value>, DocError> {
    v.as_object().ok_or_else(|| DocError::new(key, "must be a JSON object"))
}

fn parse_config(v: &Value) -> Result<Config, DocError> {
    let o = object(CONFIG, v)?;
    let id = |field: &str| -> Result<i64, DocError> {
        match o.get(field) {
            None | Some(Value::Null) => Err(DocError::new(CONFIG, format!("`{field}` is missing"))),
            Some(x) => positive_id(x)
                .ok_or_else(|| DocError::new(CONFIG, format!("`{field}` must be a positive Accelo id, got {x}"))),
        }
    };
    let ticket_type = match o.get("continuum_ticket_type") {
        None | Some(Value::Null) => "Incident".to_string(),
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(x) => return Err(DocError::new(CONFIG, format!("`continuum_ticket_type` must be a non-empty string, got {x}"))),
    };
    let internal_visibility = match o.get("internal_visibility") {
        None | Some(Value::Null) => DEFAULT_INTERNAL_VISIBILITY.to_string(),
        Some(Value::String(s)) if matches!(s.as_str(), "private" | "confidential" | "all") => s.clone(),
        Some(x) => {
            return Err(DocError::new(CONFIG, format!("`internal_visibility` must be private, confidential or all, got {x}")))
        }
    };
    Ok(Config {
        noc_user_id: id("noc_user_id")?,
        helpdesk_user_id: id("helpdesk_user_id")?,
        issue_type_id: id("issue_type_id")?,
        continuum_ticket_type: ticket_type,
        internal_visibility,
    })
}

fn name_to_id(key: &str, v: Option<Value>) -> Result<NameMap<i64>, DocError> {
    let mut map = NameMap::default();
    let Some(v) = v else { return Ok(map) };
    for (name, id) in object(key, &v)? {
        if name.trim().is_empty() {
            return Err(DocError::new(key, "has an empty name"));
        }
        let id = positive_id(id)
            .ok_or_else(|| DocError::new(key, format!("\"{name}\" must map to a positive Accelo id, got {id}")))?;
        if !map.insert(name, id) {
            return Err(DocError::new(key, format!("\"{name}\" appears twice (names are case-insensitive)")));
        }
    }
    Ok(map)
}

fn parse_status_out(v: Option<Value>) -> Result<BTreeMap<i64, String>, DocError> {
    let mut map = BTreeMap::new();
    let Some(v) = v else { return Ok(map) };
    for (id, name) in object(STATUS_OUT, &v)? {
        let id = positive_id(&Value::String(id.clone()))
            .ok_or_else(|| DocError::new(STATUS_OUT, format!("key \"{id}\" must be an Accelo status id")))?;
        let name = name
            .as_str()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| DocError::new(STATUS_OUT, format!("status {id} must map to a Continuum status name, got {name}")))?;
        map.insert(id, name.trim().to_string());
    }
    Ok(map)
}

fn parse_priorities(v: Option<Value>) -> Result<NameMap<PriorityLink>, DocError> {
    let mut map = NameMap::default();
    let Some(v) = v else { return Ok(map) };
    for (name, link) in object(PRIORITIES, &v)? {
        let bad = |why: &str| DocError::new(PRIORITIES, format!("\"{name}\": {why}"));
        let o = link.as_object().ok_or_else(|| bad("must be an object like {\"continuum_id\": \"1\", \"accelo_priority_id\": 5}"))?;
        let accelo = o
            .get("accelo_priority_id")
            .and_then(positive_id)
            .ok_or_else(|| bad("`accelo_priority_id` must be a positive Accelo priority id"))?;
        let continuum_id = match o.get("continuum_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(_) => return Err(bad("`continuum_id` must be a string")),
        };
        map.insert(name, PriorityLink { continuum_id, accelo_priority_id: accelo });
    }
    Ok(map)
}

impl NameMap<PriorityLink> {
    /// Continuum may send the priority's name or its id.
    pub fn find(&self, priority: &str) -> Option<&PriorityLink> {
        self.get(priority).or_else(|| {
            self.iter()
                .map(|(_, l)| l)
                .find(|l| l.continuum_id.as_deref() == Some(priority.trim()))
        })
    }
}

/// The Accelo ids that exist, as listed by Accelo; used to report mappings that name an id
/// that does not exist. A `None` list was not fetched and is not checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct AcceloCatalog {
    pub staff: Option<Vec<i64>>,
    pub issue_statuses: Option<Vec<i64>>,
    pub issue_types: Option<Vec<i64>>,
    pub issue_priorities: Option<Vec<i64>>,
    pub companies: Option<Vec<i64>>,
    /// The company ids looked up (those the `sites` map named then); only these are checked.
    #[serde(default)]
    pub companies_asked: Vec<i64>,
    /// Statuses Accelo accepts when an issue is created (`start=yes`).
    #[serde(default)]
    pub start_statuses: Option<Vec<i64>>,
    /// When it was listed (unix ms).
    #[serde(default)]
    pub fetched_at_ms: i64,
}

impl Mappings {
    /// Marks documents that name ids Accelo does not have as broken.
    pub fn check_ids(&mut self, cat: &AcceloCatalog) {
        fn unknown(list: &Option<Vec<i64>>, id: i64) -> bool {
            list.as_ref().is_some_and(|l| !l.contains(&id))
        }
        fn first_unknown<V>(
            doc: &Result<NameMap<V>, DocError>,
            list: &Option<Vec<i64>>,
            id: impl Fn(&V) -> i64,
        ) -> Option<(String, i64)> {
            let m = doc.as_ref().ok()?;
            let found = m.iter().find(|(_, v)| unknown(list, id(v))).map(|(n, v)| (n.to_string(), id(v)));
            found
        }
        let err = |key: &str, name: String, id: i64, what: &str| {
            DocError::new(key, format!("\"{name}\" → {id} is not an Accelo {what}"))
        };
        if let Ok(c) = &self.config {
            let checks = [
                ("noc_user_id", c.noc_user_id, &cat.staff, "staff member"),
                ("helpdesk_user_id", c.helpdesk_user_id, &cat.staff, "staff member"),
                ("issue_type_id", c.issue_type_id, &cat.issue_types, "issue type"),
            ];
            let bad = checks.iter().find(|(_, id, l, _)| unknown(l, *id)).map(|(f, id, _, what)| {
                DocError::new(CONFIG, format!("`{f}` {id} is not an Accelo {what}"))
            });
            if let Some(e) = bad {
                self.config = Err(e);
            }
        }
        if let Some((n, id)) = first_unknown(&self.status_in, &cat.issue_statuses, |v| *v) {
            self.status_in = Err(err(STATUS_IN, n, id, "issue status"));
        }
        if let Some((n, id)) = first_unknown(&self.users, &cat.staff, |v| *v) {
            self.users = Err(err(USERS, n, id, "staff member"));
        }
        let asked_companies = cat.companies.as_ref().map(|found| {
            // Ids not looked up yet are not known to be missing: treat them as present.
            let mut known = found.clone();
            if let Ok(sites) = &self.sites {
                known.extend(sites.iter().map(|(_, id)| *id).filter(|id| !cat.companies_asked.contains(id)));
            }
            known
        });
        if let Some((n, id)) = first_unknown(&self.sites, &asked_companies, |v| *v) {
            self.sites = Err(err(SITES, n, id, "company"));
        }
        if let Some((n, id)) = first_unknown(&self.priorities, &cat.issue_priorities, |l| l.accelo_priority_id) {
            self.priorities = Err(err(PRIORITIES, n, id, "issue priority"));
        }
        let bad_out = self.status_out.as_ref().ok().and_then(|m| m.keys().copied().find(|id| unknown(&cat.issue_statuses, *id)));
        if let Some(id) = bad_out {
            self.status_out = Err(DocError::new(STATUS_OUT, format!("{id} is not an Accelo issue status")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(docs: &[(&str, &str)]) -> Mappings {
        let m: HashMap<String, String> = docs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Mappings::parse(|k| m.get(k).cloned())
    }

    const CONFIG_OK: &str = r#"{"noc_user_id": 14, "helpdesk_user_id": "15", "issue_type_id": 3, "continuum_ticket_type": "Incident"}"#;

    #[test]
    fn operator_surface_examples_parse() {
        let m = parse(&[
            ("config", CONFIG_OK),
            ("status_in", r#"{"New": 1, "In Progress": 2, "Waiting on Customer": 2, "Closed": 5}"#),
            ("status_out", r#"{"1": "New", "2": "In Progress", "5": "Closed"}"#),
            ("users", r#"{"jane@msp.example": 21, "jdoe": 22}"#),
            ("sites", r#"{"S100": 39}"#),
            ("priorities", r#"{"Critical": {"continuum_id": "1", "accelo_priority_id": 5}}"#),
        ]);
        assert!(m.errors().is_empty(), "{:?}", m.errors());
        let c = m.config.unwrap();
        assert_eq!((c.noc_user_id, c.helpdesk_user_id, c.issue_type_id), (14, 15, 3));
        assert_eq!(m.status_in.as_ref().unwrap().get("waiting on customer"), Some(&2));
        assert_eq!(m.status_out.unwrap().get(&5).map(String::as_str), Some("Closed"));
        assert_eq!(m.users.unwrap().get("JANE@msp.example"), Some(&21));
        assert_eq!(m.sites.unwrap().get("s100"), Some(&39));
        let p = m.priorities.unwrap();
        assert_eq!(p.find("critical").unwrap().accelo_priority_id, 5);
        assert_eq!(p.find("1").unwrap().accelo_priority_id, 5);
    }

    #[test]
    fn absent_maps_are_empty_but_config_is_required() {
        let m = parse(&[]);
        assert_eq!(m.errors().len(), 1);
        assert_eq!(m.errors()[0].key, "config");
        assert!(m.sites.unwrap().is_empty());
    }

    #[test]
    fn broken_documents_are_reported_by_key_and_reason() {
        let m = parse(&[
            ("config", r#"{"noc_user_id": 14, "issue_type_id": 3}"#),
            ("status_in", "{not json"),
            ("users", r#"["jane"]"#),
            ("sites", r#"{"S100": "abc"}"#),
            ("priorities", r#"{"Critical": 5}"#),
            ("status_out", r#"{"one": "New"}"#),
        ]);
        let errs = m.errors();
        let keys: Vec<_> = errs.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["config", "status_in", "status_out", "users", "sites", "priorities"]);
        assert!(errs[0].reason.contains("helpdesk_user_id"));
        assert!(errs[1].reason.contains("not valid JSON"));
        assert!(errs[3].reason.contains("object"));
        assert!(errs[4].reason.contains("S100"));
    }

    #[test]
    fn case_insensitive_duplicates_are_refused() {
        let m = parse(&[("config", CONFIG_OK), ("status_in", r#"{"New": 1, "new": 2}"#)]);
        assert!(m.status_in.unwrap_err().reason.contains("twice"));
    }

    #[test]
    fn ids_that_do_not_exist_in_accelo_are_reported() {
        let mut m = parse(&[("config", CONFIG_OK), ("status_in", r#"{"New": 1, "Odd": 99}"#), ("sites", r#"{"S100": 39}"#)]);
        m.check_ids(&AcceloCatalog {
            staff: Some(vec![14, 15]),
            issue_statuses: Some(vec![1, 2, 5]),
            issue_types: Some(vec![3]),
            issue_priorities: None,
            companies: None,
            ..Default::default()
        });
        assert!(m.config.is_ok());
        assert!(m.sites.is_ok(), "unchecked list leaves the document alone");
        assert!(m.status_in.unwrap_err().reason.contains("99"));
        let mut m = parse(&[("config", CONFIG_OK)]);
        m.check_ids(&AcceloCatalog { staff: Some(vec![14]), ..Default::default() });
        assert!(m.config.unwrap_err().reason.contains("helpdesk_user_id"));
    }

    #[test]
    fn bad_internal_visibility_is_refused() {
        let m = parse(&[("config", r#"{"noc_user_id": 14, "helpdesk_user_id": 15, "issue_type_id": 3, "internal_visibility": "secret"}"#)]);
        assert!(m.config.is_err());
    }
}
