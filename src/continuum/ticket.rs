//! The bridge's view of one Continuum ticket: a *snapshot* as delivered by a callback or pulled
//! with `GET /tickets/{id}`. Field meaning follows continuum-protocol.md section 1.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One delivered state of a Continuum ticket. `None` means "not present in this delivery"
/// (a later snapshot that omits a field keeps the earlier value, see [`TicketSnapshot::merge_from`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TicketSnapshot {
    pub ticket_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assign_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reg_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comments: Vec<TicketComment>,
    /// Fields the adapter does not know, kept verbatim (original name as key) for the sync record.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unknown_fields: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TicketComment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment_id: Option<String>,
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<DateTime<Utc>>,
    #[serde(default)]
    pub internal: bool,
}

impl TicketComment {
    /// The identity a comment is synced by: its `CommentID`, or where that is missing a hash of
    /// author, date and body (continuum-protocol.md: "Comments are synced once each").
    pub fn sync_key(&self) -> String {
        match self.comment_id.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() => format!("id:{id}"),
            _ => {
                let mut h = Sha256::new();
                h.update(self.author.as_deref().unwrap_or("").as_bytes());
                h.update([0u8]);
                h.update(self.created.map(|d| d.to_rfc3339()).unwrap_or_default().as_bytes());
                h.update([0u8]);
                h.update(self.body.as_bytes());
                let digest = h.finalize();
                let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
                format!("hash:{hex}")
            }
        }
    }
}

impl TicketSnapshot {
    /// Folds a newer delivery into this one: fields present in `newer` win, absent ones keep their
    /// earlier value; comments are unioned by sync key (a re-sent comment replaces its old copy).
    pub fn merge_from(&mut self, newer: &TicketSnapshot) {
        macro_rules! take {
            ($($f:ident),*) => { $( if newer.$f.is_some() { self.$f = newer.$f.clone(); } )* };
        }
        take!(subject, description, created, updated, status, priority, ticket_type, assign_to,
              site_code, site_name, member_code, device, reg_id, event);
        for c in &newer.comments {
            let key = c.sync_key();
            match self.comments.iter_mut().find(|old| old.sync_key() == key) {
                Some(old) => *old = c.clone(),
                None => self.comments.push(c.clone()),
            }
        }
        for (k, v) in &newer.unknown_fields {
            self.unknown_fields.insert(k.clone(), v.clone());
        }
    }
}
