//! The bridge's durable state, in the Durable Object's SQLite (rusqlite in native tests), behind
//! the [`Sql`] port. One queue (`jobs`) holds everything owed to either API: today `sync_ticket`
//! (Continuum ticket → Accelo) and `pull_ticket` (notify → `GET /tickets/{id}`); pushes to
//! Continuum and webhook work are further `kind`s of the same queue, not new machinery.
//!
//! Methods never `await`: statements issued in one synchronous run are committed together by the
//! Durable Object, so a method is all-or-nothing.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{json, Value};

use crate::continuum::inbound::TicketEntry;
use crate::continuum::ticket::TicketSnapshot;
use crate::ports::{Sql, SqlValue};
use crate::sync::{Gap, IssueFields};

pub type StoreResult<T> = Result<T, String>;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS tickets (
        ticket_id TEXT PRIMARY KEY,
        snapshot TEXT NOT NULL,          -- merged TicketSnapshot (JSON), unknown fields included
        last_updated TEXT,               -- newest UpdatedDate received (RFC 3339)
        state TEXT NOT NULL,             -- pending | synced | skipped | waiting | retrying | dead
        reason TEXT,
        gaps TEXT NOT NULL DEFAULT '[]', -- values with no mapping (JSON)
        company_id INTEGER,
        issue_id TEXT,
        applied TEXT,                    -- IssueFields last written to Accelo (JSON)
        applied_updated TEXT,            -- UpdatedDate of the snapshot last applied
        create_started_at INTEGER,       -- set before POST /issues, cleared once linked
        received_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        state TEXT NOT NULL,             -- pending | dead
        attempts INTEGER NOT NULL DEFAULT 0,
        generation INTEGER NOT NULL DEFAULT 0, -- bumped by new input; a stale run cannot drop it
        due_at INTEGER NOT NULL,
        last_error TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE (kind, subject))",
    "CREATE INDEX IF NOT EXISTS jobs_due ON jobs (state, due_at)",
    "CREATE TABLE IF NOT EXISTS comments (
        ticket_id TEXT NOT NULL,
        comment_key TEXT NOT NULL,
        activity_id TEXT,                -- NULL while POST /activities is under way
        synced_at INTEGER NOT NULL,
        PRIMARY KEY (ticket_id, comment_key))",
    "CREATE TABLE IF NOT EXISTS history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ticket_id TEXT NOT NULL,
        at INTEGER NOT NULL,
        action TEXT NOT NULL,
        outcome TEXT NOT NULL,
        detail TEXT)",
    "CREATE INDEX IF NOT EXISTS history_ticket ON history (ticket_id, id)",
    "CREATE TABLE IF NOT EXISTS site_companies (
        site_key TEXT PRIMARY KEY,
        company_id INTEGER NOT NULL,
        company_name TEXT NOT NULL,
        matched_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS rejects (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        ticket_id TEXT,
        reason TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
];

pub const JOB_SYNC_TICKET: &str = "sync_ticket";
pub const JOB_PULL_TICKET: &str = "pull_ticket";
/// History lines kept per ticket.
const HISTORY_KEPT: i64 = 100;
/// Refused tickets kept for the operator (the newest).
const REJECTS_KEPT: i64 = 1000;

#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub subject: String,
    pub attempts: i64,
    pub generation: i64,
}

/// What became of one entry of a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum EntryOutcome {
    Stored { ticket_id: String },
    /// Already known, or older than what was received: accepted, changes nothing.
    Unchanged { ticket_id: String, why: String },
    PullQueued { ticket_id: String },
    Invalid { index: usize, ticket_id: Option<String>, reason: String },
}

impl EntryOutcome {
    pub fn accepted(&self) -> bool {
        !matches!(self, EntryOutcome::Invalid { .. })
    }
}

#[derive(Debug, Clone)]
pub struct TicketRow {
    pub ticket_id: String,
    pub snapshot: TicketSnapshot,
    pub state: String,
    pub company_id: Option<i64>,
    pub issue_id: Option<String>,
    pub applied: Option<IssueFields>,
    pub create_started_at: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    pub pending: i64,
    pub dead_letters: i64,
    pub skipped: i64,
    pub synced: i64,
    pub waiting: i64,
    pub retrying: i64,
    pub tickets: i64,
    pub comments_synced: i64,
    pub rejected: i64,
}

pub struct Store<'a, S: Sql> {
    sql: &'a S,
}

fn text(v: impl Into<String>) -> SqlValue {
    SqlValue::Text(v.into())
}

impl<'a, S: Sql> Store<'a, S> {
    pub fn new(sql: &'a S) -> Self {
        Self { sql }
    }

    pub fn migrate(&self) -> StoreResult<()> {
        for stmt in SCHEMA {
            self.sql.exec(stmt, &[])?;
        }
        Ok(())
    }

    fn rows(&self, q: &str, p: &[SqlValue]) -> StoreResult<Vec<Vec<SqlValue>>> {
        self.sql.exec(q, p)
    }

    fn exec(&self, q: &str, p: &[SqlValue]) -> StoreResult<()> {
        self.sql.exec(q, p).map(|_| ())
    }

    fn scalar(&self, q: &str, p: &[SqlValue]) -> StoreResult<i64> {
        Ok(self.rows(q, p)?.first().and_then(|r| r.first()).and_then(SqlValue::as_i64).unwrap_or(0))
    }

    // ---- ingest -------------------------------------------------------------------------------

    /// Stores a parsed delivery. Every accepted entry is in storage when this returns.
    pub fn ingest(&self, entries: &[TicketEntry], now_ms: i64) -> StoreResult<Vec<EntryOutcome>> {
        let mut out = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            out.push(match e {
                TicketEntry::Snapshot(s) => match self.ingest_snapshot(s, now_ms)? {
                    EntryOutcome::Invalid { ticket_id, reason, .. } => EntryOutcome::Invalid { index: i, ticket_id, reason },
                    ok => ok,
                },
                TicketEntry::Notify { ticket_id } => {
                    self.enqueue(JOB_PULL_TICKET, ticket_id, now_ms)?;
                    EntryOutcome::PullQueued { ticket_id: ticket_id.clone() }
                }
                TicketEntry::Invalid { index, ticket_id, reason } => {
                    EntryOutcome::Invalid { index: *index, ticket_id: ticket_id.clone(), reason: reason.clone() }
                }
            });
        }
        // Invalid tickets are recorded only beside valid ones: a request refused whole changes nothing.
        if out.iter().any(EntryOutcome::accepted) {
            for o in &out {
                if let EntryOutcome::Invalid { ticket_id, reason, .. } = o {
                    self.exec(
                        "INSERT INTO rejects (at, ticket_id, reason) VALUES (?, ?, ?)",
                        &[now_ms.into(), ticket_id.clone().into(), text(reason.as_str())],
                    )?;
                }
            }
            self.exec("DELETE FROM rejects WHERE id <= (SELECT MAX(id) FROM rejects) - ?", &[REJECTS_KEPT.into()])?;
        }
        Ok(out)
    }

    pub fn ingest_snapshot(&self, s: &TicketSnapshot, now_ms: i64) -> StoreResult<EntryOutcome> {
        let id = s.ticket_id.clone();
        let existing = self.rows("SELECT snapshot, last_updated FROM tickets WHERE ticket_id = ?", &[text(&id)])?;
        let Some(row) = existing.into_iter().next() else {
            if s.subject.as_deref().is_none_or(|x| x.trim().is_empty()) {
                return Ok(EntryOutcome::Invalid {
                    index: 0,
                    ticket_id: Some(id),
                    reason: "Subject missing (required for a ticket new to the bridge)".into(),
                });
            }
            self.exec(
                "INSERT INTO tickets (ticket_id, snapshot, last_updated, state, received_at, updated_at)
                 VALUES (?, ?, ?, 'pending', ?, ?)",
                &[text(&id), text(to_json(s)), s.updated.map(|d| d.to_rfc3339()).into(), now_ms.into(), now_ms.into()],
            )?;
            self.history(&id, now_ms, "received", "stored", &describe_snapshot(s))?;
            self.enqueue(JOB_SYNC_TICKET, &id, now_ms)?;
            return Ok(EntryOutcome::Stored { ticket_id: id });
        };
        let mut merged: TicketSnapshot = serde_json::from_str(row[0].as_str().unwrap_or("{}")).map_err(|e| e.to_string())?;
        let last = row[1].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        if let (Some(new), Some(old)) = (s.updated, last) {
            if new <= old {
                let why = if new == old { "same UpdatedDate as the last snapshot" } else { "older than the last snapshot" };
                self.history(&id, now_ms, "received", "ignored", &format!("UpdatedDate {} is {why}", new.to_rfc3339()))?;
                return Ok(EntryOutcome::Unchanged { ticket_id: id, why: why.into() });
            }
        }
        let before = merged.clone();
        merged.merge_from(s);
        if merged == before {
            return Ok(EntryOutcome::Unchanged { ticket_id: id, why: "identical to the stored snapshot".into() });
        }
        self.exec(
            "UPDATE tickets SET snapshot = ?, last_updated = COALESCE(?, last_updated), state = 'pending',
             reason = NULL, updated_at = ? WHERE ticket_id = ?",
            &[text(to_json(&merged)), s.updated.map(|d| d.to_rfc3339()).into(), now_ms.into(), text(&id)],
        )?;
        self.history(&id, now_ms, "received", "stored", &describe_snapshot(s))?;
        self.enqueue(JOB_SYNC_TICKET, &id, now_ms)?;
        Ok(EntryOutcome::Stored { ticket_id: id })
    }

    // ---- queue --------------------------------------------------------------------------------

    /// Queues (or re-queues, due now) work on `subject`. A dead job comes back to life: new input
    /// deserves a new try.
    pub fn enqueue(&self, kind: &str, subject: &str, now_ms: i64) -> StoreResult<()> {
        self.exec(
            "INSERT INTO jobs (kind, subject, state, attempts, generation, due_at, created_at, updated_at)
             VALUES (?, ?, 'pending', 0, 0, ?, ?, ?)
             ON CONFLICT (kind, subject) DO UPDATE SET state = 'pending', generation = generation + 1,
               attempts = CASE WHEN state = 'dead' THEN 0 ELSE attempts END,
               due_at = MIN(due_at, excluded.due_at), updated_at = excluded.updated_at",
            &[text(kind), text(subject), now_ms.into(), now_ms.into(), now_ms.into()],
        )
    }

    pub fn due_jobs(&self, now_ms: i64, limit: i64) -> StoreResult<Vec<Job>> {
        Ok(self
            .rows(
                "SELECT id, kind, subject, attempts, generation FROM jobs
                 WHERE state = 'pending' AND due_at <= ? ORDER BY due_at, id LIMIT ?",
                &[now_ms.into(), limit.into()],
            )?
            .into_iter()
            .map(|r| Job {
                id: r[0].as_i64().unwrap_or(0),
                kind: r[1].as_str().unwrap_or("").to_string(),
                subject: r[2].as_str().unwrap_or("").to_string(),
                attempts: r[3].as_i64().unwrap_or(0),
                generation: r[4].as_i64().unwrap_or(0),
            })
            .collect())
    }

    /// When the earliest pending job is due (unix ms), for the alarm.
    pub fn next_due_at(&self) -> StoreResult<Option<i64>> {
        Ok(self
            .rows("SELECT MIN(due_at) FROM jobs WHERE state = 'pending'", &[])?
            .first()
            .and_then(|r| r.first())
            .and_then(SqlValue::as_i64))
    }

    /// The job is done, unless new input arrived while it ran (then it stays, due now).
    pub fn job_done(&self, job: &Job) -> StoreResult<()> {
        self.exec("DELETE FROM jobs WHERE id = ? AND generation = ?", &[job.id.into(), job.generation.into()])
    }

    /// Failed, to be tried again at `due_at`; `counts` says whether this was an attempt against
    /// the limit (waiting for a mapping or for the rate-limit window is not).
    pub fn job_retry(&self, job: &Job, due_at: i64, error: &str, counts: bool, now_ms: i64) -> StoreResult<()> {
        self.exec(
            "UPDATE jobs SET attempts = attempts + ?, due_at = CASE WHEN generation = ? THEN ? ELSE MIN(due_at, ?) END,
             last_error = ?, updated_at = ? WHERE id = ?",
            &[
                i64::from(counts).into(),
                job.generation.into(),
                due_at.into(),
                now_ms.into(),
                text(error),
                now_ms.into(),
                job.id.into(),
            ],
        )
    }

    /// Out of retries, or rejected for good: parked as a dead letter with its reason.
    pub fn job_dead(&self, job: &Job, error: &str, now_ms: i64) -> StoreResult<()> {
        self.exec(
            "UPDATE jobs SET state = 'dead', attempts = attempts + 1, last_error = ?, updated_at = ? WHERE id = ?",
            &[text(error), now_ms.into(), job.id.into()],
        )
    }

    /// Puts dead letters back in the queue, due now: all, or the one with this job id or subject.
    pub fn replay_dead(&self, which: Option<&str>, now_ms: i64) -> StoreResult<i64> {
        let w: SqlValue = which.map(str::to_string).into();
        let dead = self.rows(
            "SELECT id, kind, subject FROM jobs WHERE state = 'dead' AND (? IS NULL OR CAST(id AS TEXT) = ? OR subject = ?)",
            &[w.clone(), w.clone(), w],
        )?;
        for job in &dead {
            if job[1].as_str() == Some(JOB_SYNC_TICKET) {
                self.set_state(job[2].as_str().unwrap_or(""), "pending", None, now_ms)?;
            }
            self.exec(
                "UPDATE jobs SET state = 'pending', attempts = 0, due_at = ?, generation = generation + 1, updated_at = ?
                 WHERE id = ?",
                &[now_ms.into(), now_ms.into(), job[0].clone()],
            )?;
        }
        Ok(dead.len() as i64)
    }

    /// The periodic reconcile's sweep: skipped and waiting tickets are looked at again (a mapping
    /// may now place them), and everything pending becomes due now.
    pub fn requeue_for_reconcile(&self, now_ms: i64) -> StoreResult<i64> {
        let ids: Vec<String> = self
            .rows("SELECT ticket_id FROM tickets WHERE state IN ('skipped', 'waiting')", &[])?
            .into_iter()
            .filter_map(|r| r.into_iter().next().and_then(SqlValue::into_string))
            .collect();
        for id in &ids {
            self.enqueue(JOB_SYNC_TICKET, id, now_ms)?;
        }
        self.exec("UPDATE jobs SET due_at = ? WHERE state = 'pending' AND due_at > ?", &[now_ms.into(), now_ms.into()])?;
        Ok(ids.len() as i64)
    }

    // ---- tickets ------------------------------------------------------------------------------

    pub fn ticket(&self, id: &str) -> StoreResult<Option<TicketRow>> {
        let rows = self.rows(
            "SELECT ticket_id, snapshot, state, company_id, issue_id, applied, create_started_at
             FROM tickets WHERE ticket_id = ?",
            &[text(id)],
        )?;
        let Some(r) = rows.into_iter().next() else { return Ok(None) };
        Ok(Some(TicketRow {
            ticket_id: r[0].as_str().unwrap_or("").to_string(),
            snapshot: serde_json::from_str(r[1].as_str().unwrap_or("{}")).map_err(|e| e.to_string())?,
            state: r[2].as_str().unwrap_or("").to_string(),
            company_id: r[3].as_i64(),
            issue_id: r[4].clone().into_string(),
            applied: r[5].as_str().and_then(|a| serde_json::from_str(a).ok()),
            create_started_at: r[6].as_i64(),
        }))
    }

    pub fn set_state(&self, id: &str, state: &str, reason: Option<&str>, now_ms: i64) -> StoreResult<()> {
        self.exec(
            "UPDATE tickets SET state = ?, reason = ?, updated_at = ? WHERE ticket_id = ?",
            &[text(state), reason.map(str::to_string).into(), now_ms.into(), text(id)],
        )
    }

    pub fn set_gaps(&self, id: &str, gaps: &[Gap]) -> StoreResult<()> {
        self.exec("UPDATE tickets SET gaps = ? WHERE ticket_id = ?", &[text(to_json(&gaps)), text(id)])
    }

    /// Recorded before `POST /issues`: if the answer is lost, the next try looks for the issue first.
    pub fn mark_create_started(&self, id: &str, company_id: i64, now_ms: i64) -> StoreResult<()> {
        self.exec(
            "UPDATE tickets SET create_started_at = COALESCE(create_started_at, ?), company_id = ? WHERE ticket_id = ?",
            &[now_ms.into(), company_id.into(), text(id)],
        )
    }

    pub fn link_issue(&self, id: &str, issue_id: &str, company_id: i64, applied: Option<&IssueFields>, applied_updated: Option<String>, now_ms: i64) -> StoreResult<()> {
        self.exec(
            "UPDATE tickets SET issue_id = ?, company_id = ?, applied = ?, applied_updated = COALESCE(?, applied_updated),
             create_started_at = NULL, updated_at = ? WHERE ticket_id = ?",
            &[text(issue_id), company_id.into(), applied.map(to_json).into(), applied_updated.into(), now_ms.into(), text(id)],
        )
    }

    pub fn set_applied(&self, id: &str, applied: &IssueFields, applied_updated: Option<String>, now_ms: i64) -> StoreResult<()> {
        self.exec(
            "UPDATE tickets SET applied = ?, applied_updated = COALESCE(?, applied_updated), updated_at = ? WHERE ticket_id = ?",
            &[text(to_json(applied)), applied_updated.into(), now_ms.into(), text(id)],
        )
    }

    pub fn synced_comments(&self, id: &str) -> StoreResult<BTreeSet<String>> {
        Ok(self
            .rows("SELECT comment_key FROM comments WHERE ticket_id = ? AND activity_id IS NOT NULL", &[text(id)])?
            .into_iter()
            .filter_map(|r| r.into_iter().next().and_then(SqlValue::into_string))
            .collect())
    }

    pub fn comment_synced(&self, id: &str, key: &str, activity_id: &str, now_ms: i64) -> StoreResult<()> {
        self.exec(
            "INSERT INTO comments (ticket_id, comment_key, activity_id, synced_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (ticket_id, comment_key) DO UPDATE SET activity_id = excluded.activity_id, synced_at = excluded.synced_at",
            &[text(id), text(key), text(activity_id), now_ms.into()],
        )
    }

    /// Recorded before `POST /activities`; `true` when an earlier attempt had already started
    /// (its answer may have been lost: look for the activity before posting another).
    pub fn comment_started(&self, id: &str, key: &str, now_ms: i64) -> StoreResult<bool> {
        let before = self.scalar("SELECT COUNT(*) FROM comments WHERE ticket_id = ? AND comment_key = ?", &[text(id), text(key)])?;
        if before == 0 {
            self.exec(
                "INSERT INTO comments (ticket_id, comment_key, activity_id, synced_at) VALUES (?, ?, NULL, ?)",
                &[text(id), text(key), now_ms.into()],
            )?;
        }
        Ok(before > 0)
    }

    pub fn history(&self, id: &str, now_ms: i64, action: &str, outcome: &str, detail: &str) -> StoreResult<()> {
        self.exec(
            "INSERT INTO history (ticket_id, at, action, outcome, detail) VALUES (?, ?, ?, ?, ?)",
            &[text(id), now_ms.into(), text(action), text(outcome), text(detail)],
        )?;
        self.exec(
            "DELETE FROM history WHERE ticket_id = ? AND id <= (SELECT id FROM history WHERE ticket_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
            &[text(id), text(id), HISTORY_KEPT.into()],
        )
    }

    pub fn remembered_company(&self, site_key: &str) -> StoreResult<Option<i64>> {
        Ok(self
            .rows("SELECT company_id FROM site_companies WHERE site_key = ?", &[text(site_key.to_lowercase())])?
            .first()
            .and_then(|r| r.first())
            .and_then(SqlValue::as_i64))
    }

    pub fn remember_company(&self, site_key: &str, company_id: i64, name: &str, now_ms: i64) -> StoreResult<()> {
        self.exec(
            "INSERT OR REPLACE INTO site_companies (site_key, company_id, company_name, matched_at) VALUES (?, ?, ?, ?)",
            &[text(site_key.to_lowercase()), company_id.into(), text(name), now_ms.into()],
        )
    }

    pub fn meta(&self, key: &str) -> StoreResult<Option<String>> {
        Ok(self
            .rows("SELECT value FROM meta WHERE key = ?", &[text(key)])?
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next())
            .and_then(SqlValue::into_string))
    }

    pub fn set_meta(&self, key: &str, value: Option<&str>) -> StoreResult<()> {
        match value {
            Some(v) => self.exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", &[text(key), text(v)]),
            None => self.exec("DELETE FROM meta WHERE key = ?", &[text(key)]),
        }
    }

    // ---- operator views -----------------------------------------------------------------------

    pub fn counts(&self) -> StoreResult<Counts> {
        let tickets = |state: &str| self.scalar("SELECT COUNT(*) FROM tickets WHERE state = ?", &[text(state)]);
        Ok(Counts {
            pending: self.scalar("SELECT COUNT(*) FROM jobs WHERE state = 'pending'", &[])?,
            dead_letters: self.scalar("SELECT COUNT(*) FROM jobs WHERE state = 'dead'", &[])?,
            skipped: tickets("skipped")?,
            synced: tickets("synced")?,
            waiting: tickets("waiting")?,
            retrying: tickets("retrying")?,
            tickets: self.scalar("SELECT COUNT(*) FROM tickets", &[])?,
            comments_synced: self.scalar("SELECT COUNT(*) FROM comments WHERE activity_id IS NOT NULL", &[])?,
            rejected: self.scalar("SELECT COUNT(*) FROM rejects", &[])?,
        })
    }

    /// Lists for the status answer: what waits for the operator, and why.
    pub fn attention(&self, limit: i64) -> StoreResult<Value> {
        let list = |q: &str| -> StoreResult<Vec<Value>> {
            Ok(self
                .rows(q, &[limit.into()])?
                .into_iter()
                .map(|r| json!({"ticket": r[0].clone().into_string(), "reason": r[1].clone().into_string()}))
                .collect())
        };
        let gaps: Vec<Value> = self
            .rows("SELECT ticket_id, gaps FROM tickets WHERE gaps != '[]' ORDER BY updated_at DESC LIMIT ?", &[limit.into()])?
            .into_iter()
            .map(|r| {
                json!({"ticket": r[0].clone().into_string(),
                       "gaps": r[1].as_str().and_then(|g| serde_json::from_str::<Value>(g).ok())})
            })
            .collect();
        let dead: Vec<Value> = self
            .rows(
                "SELECT id, kind, subject, attempts, last_error, updated_at FROM jobs WHERE state = 'dead' ORDER BY updated_at DESC LIMIT ?",
                &[limit.into()],
            )?
            .into_iter()
            .map(|r| {
                json!({"id": r[0].as_i64(), "kind": r[1].as_str(), "ticket": r[2].as_str(), "attempts": r[3].as_i64(),
                       "reason": r[4].as_str(), "at": r[5].as_i64()})
            })
            .collect();
        Ok(json!({
            "skipped_tickets": list("SELECT ticket_id, reason FROM tickets WHERE state = 'skipped' ORDER BY updated_at DESC LIMIT ?")?,
            "waiting_tickets": list("SELECT ticket_id, reason FROM tickets WHERE state = 'waiting' ORDER BY updated_at DESC LIMIT ?")?,
            "retrying_tickets": list("SELECT ticket_id, reason FROM tickets WHERE state = 'retrying' ORDER BY updated_at DESC LIMIT ?")?,
            "unmapped": gaps,
            "dead_letter_list": dead,
            "recent_rejects": list("SELECT ticket_id, reason FROM rejects ORDER BY id DESC LIMIT ?")?,
        }))
    }

    /// The ticket's sync record for `GET /admin/tickets/{id}`.
    pub fn ticket_record(&self, id: &str) -> StoreResult<Option<Value>> {
        let rows = self.rows(
            "SELECT snapshot, last_updated, state, reason, gaps, company_id, issue_id, applied, applied_updated,
                    received_at, updated_at FROM tickets WHERE ticket_id = ?",
            &[text(id)],
        )?;
        let parse = |v: &SqlValue| v.as_str().and_then(|s| serde_json::from_str::<Value>(s).ok()).unwrap_or(Value::Null);
        let Some(r) = rows.into_iter().next() else {
            // A notify not yet pulled is known only as a job.
            let job = self.rows("SELECT kind, state, attempts, last_error FROM jobs WHERE subject = ?", &[text(id)])?;
            return Ok(job.into_iter().next().map(|j| {
                json!({"ticket_id": id, "state": "pending", "job": {"kind": j[0].as_str(), "state": j[1].as_str(),
                       "attempts": j[2].as_i64(), "last_error": j[3].as_str()}})
            }));
        };
        let snapshot = parse(&r[0]);
        let comments: Vec<Value> = self
            .rows(
                "SELECT comment_key, activity_id, synced_at FROM comments WHERE ticket_id = ? AND activity_id IS NOT NULL ORDER BY synced_at",
                &[text(id)],
            )?
            .into_iter()
            .map(|c| json!({"comment_key": c[0].as_str(), "activity_id": c[1].as_str(), "synced_at": c[2].as_i64()}))
            .collect();
        let history: Vec<Value> = self
            .rows("SELECT at, action, outcome, detail FROM history WHERE ticket_id = ? ORDER BY id", &[text(id)])?
            .into_iter()
            .map(|h| json!({"at": h[0].as_i64(), "action": h[1].as_str(), "outcome": h[2].as_str(), "detail": h[3].as_str()}))
            .collect();
        let jobs: Vec<Value> = self
            .rows("SELECT kind, state, attempts, due_at, last_error FROM jobs WHERE subject = ?", &[text(id)])?
            .into_iter()
            .map(|j| json!({"kind": j[0].as_str(), "state": j[1].as_str(), "attempts": j[2].as_i64(), "due_at": j[3].as_i64(), "last_error": j[4].as_str()}))
            .collect();
        Ok(Some(json!({
            "ticket_id": id,
            "state": r[2].as_str(),
            "reason": r[3].as_str(),
            "links": {"accelo_issue_id": r[6].clone().into_string(), "accelo_company_id": r[5].as_i64(), "activities": comments},
            "gaps": parse(&r[4]),
            "last_snapshot_received": {"updated": r[1].as_str(), "snapshot": snapshot},
            "unknown_fields": snapshot.get("unknown_fields").cloned().unwrap_or(json!({})),
            "last_applied": {"updated": r[8].as_str(), "fields": parse(&r[7])},
            "received_at": r[9].as_i64(),
            "updated_at": r[10].as_i64(),
            "queue": jobs,
            "history": history,
        })))
    }
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn describe_snapshot(s: &TicketSnapshot) -> String {
    let mut parts = vec![];
    if let Some(u) = s.updated {
        parts.push(format!("UpdatedDate {}", u.to_rfc3339()));
    }
    if let Some(e) = &s.event {
        parts.push(format!("Event {e}"));
    }
    if let Some(st) = &s.status {
        parts.push(format!("Status {st}"));
    }
    if !s.comments.is_empty() {
        parts.push(format!("{} comment(s)", s.comments.len()));
    }
    if !s.unknown_fields.is_empty() {
        parts.push(format!("unknown fields kept: {}", s.unknown_fields.keys().cloned().collect::<Vec<_>>().join(", ")));
    }
    parts.join("; ")
}

#[cfg(test)]
pub mod testing;
#[cfg(test)]
mod tests;
