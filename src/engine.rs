//! The worker loop's body: takes due jobs from the store and makes the calls the sync plan says
//! are due, recording every outcome. Plain Rust over the ports, so it runs natively in tests.

use std::cell::RefCell;

use serde::Serialize;

use crate::accelo::{AcceloClient, AcceloError};
use crate::continuum::outbound::{ContinuumClient, ContinuumError};
use crate::mappings::{AcceloCatalog, DocError, Mappings};
use crate::ports::{HttpClient, Sql};
use crate::retry::{Decision, FailureKind, RetryPolicy};
use crate::store::{Job, Store, JOB_PULL_TICKET, JOB_SYNC_TICKET};
use crate::sync::{self, CompanyRoute, IssueCall, LinkState};

/// Requests left unused in Accelo's hourly window, for the people and apps sharing it.
pub const RATE_LIMIT_RESERVE: i64 = 100;

/// One structured log line (operator-surface.md, "Logs"); the edge prints it. Never a secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogLine {
    pub level: &'static str,
    pub event: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issue: Option<String>,
    pub msg: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunReport {
    pub processed: u32,
    pub synced: u32,
    pub skipped: u32,
    pub waiting: u32,
    pub retried: u32,
    pub dead: u32,
    /// Accelo asked to wait (rate limit, lockout): the rest of the queue waits until then.
    pub paused_until_ms: Option<i64>,
}

enum Failure {
    Accelo(AcceloError),
    Continuum(ContinuumError),
    Store(String),
}

impl Failure {
    fn kind(&self, now_ms: i64) -> FailureKind {
        match self {
            Failure::Accelo(AcceloError::RateLimited { reset_at }) => {
                FailureKind::WaitUntil(reset_at.map(|s| s * 1000).unwrap_or(now_ms + 60_000))
            }
            Failure::Accelo(AcceloError::LockedOut { retry_after }) => {
                FailureKind::WaitUntil(now_ms + retry_after.unwrap_or(300) * 1000)
            }
            Failure::Accelo(e) if e.needs_operator() => FailureKind::Operator,
            Failure::Accelo(e) if e.is_transient() => FailureKind::Transient,
            Failure::Accelo(_) => FailureKind::Permanent,
            Failure::Continuum(ContinuumError::Credentials(_)) => FailureKind::Operator,
            Failure::Continuum(ContinuumError::RateLimited { retry_after_s }) => {
                FailureKind::WaitUntil(now_ms + retry_after_s.unwrap_or(60) * 1000)
            }
            Failure::Continuum(ContinuumError::Server(_) | ContinuumError::Network(_)) => FailureKind::Transient,
            Failure::Continuum(_) => FailureKind::Permanent,
            Failure::Store(_) => FailureKind::Transient,
        }
    }
    fn message(&self) -> String {
        match self {
            Failure::Accelo(e) => e.to_string(),
            Failure::Continuum(e) => e.to_string(),
            Failure::Store(e) => format!("storage: {e}"),
        }
    }
    /// Waits that apply to every Accelo call, not just this job's.
    fn pauses_accelo(&self) -> bool {
        matches!(self, Failure::Accelo(AcceloError::RateLimited { .. } | AcceloError::LockedOut { .. }))
    }
}

impl From<AcceloError> for Failure {
    fn from(e: AcceloError) -> Self {
        Failure::Accelo(e)
    }
}
impl From<ContinuumError> for Failure {
    fn from(e: ContinuumError) -> Self {
        Failure::Continuum(e)
    }
}
impl From<String> for Failure {
    fn from(e: String) -> Self {
        Failure::Store(e)
    }
}

enum Done {
    Synced { issue_id: String, detail: String },
    Skipped(String),
    Waiting(DocError),
    Pulled,
    Gone,
}

pub struct Engine<'a, S: Sql, H: HttpClient> {
    pub store: Store<'a, S>,
    pub accelo: &'a AcceloClient<'a, H>,
    pub continuum: &'a ContinuumClient<'a, H>,
    pub mappings: &'a Mappings,
    pub policy: RetryPolicy,
    pub now_ms: i64,
    /// What Accelo lists (start statuses, ids), when known.
    pub catalog: Option<&'a AcceloCatalog>,
    logs: RefCell<Vec<LogLine>>,
}

impl<'a, S: Sql, H: HttpClient> Engine<'a, S, H> {
    pub fn new(
        store: Store<'a, S>,
        accelo: &'a AcceloClient<'a, H>,
        continuum: &'a ContinuumClient<'a, H>,
        mappings: &'a Mappings,
        policy: RetryPolicy,
        now_ms: i64,
    ) -> Self {
        Self { store, accelo, continuum, mappings, policy, now_ms, catalog: None, logs: RefCell::new(Vec::new()) }
    }

    pub fn take_logs(&self) -> Vec<LogLine> {
        std::mem::take(&mut self.logs.borrow_mut())
    }

    fn log(&self, level: &'static str, event: &str, ticket: Option<&str>, issue: Option<&str>, msg: String) {
        self.logs.borrow_mut().push(LogLine {
            level,
            event: event.into(),
            ticket: ticket.map(str::to_string),
            issue: issue.map(str::to_string),
            msg,
        });
    }

    /// Works through due jobs, at most `max_jobs` (a bound on one run's Accelo calls).
    pub async fn run_due(&self, max_jobs: i64) -> Result<RunReport, String> {
        let mut report = RunReport::default();
        // Jobs pulled from Continuum are stored as snapshots and become due in this same run.
        for _round in 0..2 {
            let jobs = self.store.due_jobs(self.now_ms, max_jobs)?;
            if jobs.is_empty() {
                break;
            }
            for job in jobs {
                if report.paused_until_ms.is_some() && job.kind == JOB_SYNC_TICKET {
                    continue;
                }
                report.processed += 1;
                let result = match job.kind.as_str() {
                    JOB_SYNC_TICKET => self.sync_ticket(&job.subject).await,
                    JOB_PULL_TICKET => self.pull_ticket(&job.subject).await,
                    other => Err(Failure::Store(format!("unknown job kind {other}"))),
                };
                self.settle(&job, result, &mut report)?;
                // Leave headroom in the hourly budget Accelo shares among every app of the deployment.
                let rate = self.accelo.rate_limit();
                if let (Some(left), Some(reset)) = (rate.remaining, rate.reset_at) {
                    if left <= RATE_LIMIT_RESERVE && report.paused_until_ms.is_none() {
                        report.paused_until_ms = Some(reset * 1000);
                        self.log("warn", "accelo.budget", None, None, format!("{left} Accelo requests left this hour; pausing until {reset}"));
                    }
                }
            }
        }
        Ok(report)
    }

    fn settle(&self, job: &Job, result: Result<Done, Failure>, report: &mut RunReport) -> Result<(), String> {
        let (now, id) = (self.now_ms, job.subject.as_str());
        let is_ticket = job.kind == JOB_SYNC_TICKET;
        match result {
            Ok(Done::Synced { issue_id, detail }) => {
                report.synced += 1;
                self.store.set_state(id, "synced", None, now)?;
                self.store.job_done(job)?;
                self.log("info", "ticket.synced", Some(id), Some(&issue_id), detail);
            }
            Ok(Done::Pulled | Done::Gone) => self.store.job_done(job)?,
            Ok(Done::Skipped(reason)) => {
                report.skipped += 1;
                self.store.set_state(id, "skipped", Some(&reason), now)?;
                self.store.history(id, now, "sync", "skipped", &reason)?;
                // Not a failure: the reconcile (or the next snapshot) brings it back.
                self.store.job_done(job)?;
                self.log("warn", "ticket.skipped", Some(id), None, reason);
            }
            Ok(Done::Waiting(doc)) => {
                report.waiting += 1;
                let reason = format!("waiting for a usable {doc}");
                self.store.set_state(id, "waiting", Some(&reason), now)?;
                self.store.history(id, now, "sync", "waiting", &reason)?;
                self.store.job_retry(job, now + self.policy.operator_recheck_ms, &reason, false, now)?;
                self.log("warn", "ticket.waiting", Some(id), None, reason);
            }
            Err(f) => {
                let (msg, kind) = (f.message(), f.kind(now));
                if let (true, FailureKind::WaitUntil(t)) = (f.pauses_accelo(), kind) {
                    report.paused_until_ms = Some(t);
                }
                match self.policy.decide(kind, job.attempts, now) {
                    Decision::RetryAt { at_ms, counts } => {
                        report.retried += 1;
                        if is_ticket {
                            self.store.set_state(id, "retrying", Some(&msg), now)?;
                            self.store.history(id, now, "sync", "retry", &msg)?;
                        }
                        self.store.job_retry(job, at_ms, &msg, counts, now)?;
                        self.log("warn", "job.retry", Some(id), None, format!("{} failed: {msg}; next try at {at_ms}", job.kind));
                    }
                    Decision::DeadLetter => {
                        report.dead += 1;
                        if is_ticket {
                            self.store.set_state(id, "dead", Some(&msg), now)?;
                            self.store.history(id, now, "sync", "dead_letter", &msg)?;
                        }
                        self.store.job_dead(job, &msg, now)?;
                        self.log("error", "job.dead_letter", Some(id), None, format!("{}: {msg}", job.kind));
                    }
                }
            }
        }
        Ok(())
    }

    async fn pull_ticket(&self, ticket_id: &str) -> Result<Done, Failure> {
        let snapshot = self.continuum.get_ticket(ticket_id).await?;
        use crate::store::EntryOutcome;
        let msg = match self.store.ingest_snapshot(&snapshot, self.now_ms)? {
            EntryOutcome::Invalid { reason, .. } => {
                return Err(Failure::Continuum(ContinuumError::Rejected { status: 200, body: reason }))
            }
            EntryOutcome::Unchanged { why, .. } => format!("pulled from Continuum, unchanged: {why}"),
            _ => "pulled from Continuum and stored".to_string(),
        };
        self.log("info", "ticket.pulled", Some(ticket_id), None, msg);
        Ok(Done::Pulled)
    }

    async fn company_for(&self, row: &crate::store::TicketRow) -> Result<Result<i64, String>, Failure> {
        match sync::company_route(&row.snapshot, self.mappings) {
            CompanyRoute::Mapped(id) => Ok(Ok(id)),
            CompanyRoute::Unplaceable(reason) => Ok(Err(reason)),
            CompanyRoute::ByName { site_key, name } => {
                if let Some(id) = self.store.remembered_company(&site_key)? {
                    return Ok(Ok(id));
                }
                let found = self.accelo.search_companies(&name).await?;
                match sync::exact_company_match(&name, &found) {
                    Ok(Some(id)) => {
                        self.store.remember_company(&site_key, id, &name, self.now_ms)?;
                        self.log("info", "site.matched", Some(&row.ticket_id), None, format!("site {site_key} matched Accelo company {id} by name"));
                        Ok(Ok(id))
                    }
                    Ok(None) => Ok(Err(format!(
                        "no Accelo company matches site {} (\"{name}\"): add a `sites` mapping",
                        row.snapshot.site_code.as_deref().unwrap_or("-")
                    ))),
                    Err(ambiguous) => Ok(Err(ambiguous)),
                }
            }
        }
    }

    async fn sync_ticket(&self, ticket_id: &str) -> Result<Done, Failure> {
        let Some(row) = self.store.ticket(ticket_id)? else { return Ok(Done::Gone) };
        if let Some(doc) = sync::blocking_doc_error(&row.snapshot, self.mappings) {
            return Ok(Done::Waiting(doc));
        }
        let mut link = LinkState {
            issue_id: row.issue_id.clone(),
            company_id: row.company_id,
            applied: row.applied.clone(),
            synced_comments: self.store.synced_comments(ticket_id)?,
        };
        let company_id = match (self.company_for(&row).await?, row.issue_id.as_ref().and(row.company_id)) {
            (Ok(c), _) => c,
            // A linked issue whose new site cannot be placed stays where it is.
            (Err(_), Some(current)) => current,
            (Err(reason), None) => return Ok(Done::Skipped(reason)),
        };
        if link.issue_id.is_none() {
            if let Some(started) = row.create_started_at {
                link.issue_id = self.find_lost_issue(ticket_id, company_id, started).await?;
            }
        }
        let start_statuses = self.catalog.and_then(|c| c.start_statuses.as_deref());
        let plan = sync::plan(&row.snapshot, self.mappings, company_id, &link, start_statuses)
            .map_err(|e| Failure::Store(e.to_string()))?;
        self.store.set_gaps(ticket_id, &plan.gaps)?;
        let updated = row.snapshot.updated.map(|d| d.to_rfc3339());
        let now = self.now_ms;
        let mut did = Vec::new();
        let issue_id = match &plan.issue {
            IssueCall::Create { body, status_after } => {
                self.store.mark_create_started(ticket_id, company_id, now)?;
                let id = self.accelo.create_issue(body).await?;
                // Recorded as written without the late status, so a failed PUT is retried.
                let written = sync::IssueFields { status_id: plan.desired.status_id.filter(|_| status_after.is_none()), ..plan.desired.clone() };
                self.store.link_issue(ticket_id, &id, company_id, Some(&written), updated.clone(), now)?;
                self.store.history(ticket_id, now, "create_issue", "ok", &format!("Accelo issue {id} against company {company_id}"))?;
                did.push(format!("created issue {id}"));
                if let Some(status) = status_after {
                    self.accelo.update_issue(&id, &serde_json::json!({ "status_id": status })).await?;
                    self.store.set_applied(ticket_id, &plan.desired, updated, now)?;
                    self.store.history(ticket_id, now, "update_issue", "ok", &format!("issue {id}: status_id {status} (not a start status)"))?;
                }
                id
            }
            IssueCall::Update { issue_id, body } => {
                self.accelo.update_issue(issue_id, body).await?;
                let applied = sync::applied_after(link.applied.as_ref(), &plan.desired);
                self.store.link_issue(ticket_id, issue_id, company_id, Some(&applied), updated, now)?;
                let fields: Vec<&str> = body.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
                self.store.history(ticket_id, now, "update_issue", "ok", &format!("issue {issue_id}: {}", fields.join(", ")))?;
                did.push(format!("updated issue {issue_id} ({})", fields.join(", ")));
                issue_id.clone()
            }
            IssueCall::Nothing => {
                let id = link.issue_id.clone().unwrap_or_default();
                let applied = sync::applied_after(link.applied.as_ref(), &plan.desired);
                self.store.set_applied(ticket_id, &applied, updated, now)?;
                id
            }
        };
        let cfg = self.mappings.config.as_ref().map_err(|e| Failure::Store(e.to_string()))?;
        for c in &plan.comments {
            let key = c.sync_key();
            let earlier = if self.store.comment_started(ticket_id, &key, now)? {
                // An earlier POST may have landed without its answer reaching us.
                self.accelo.issue_activities(&issue_id).await?.into_iter().find(|(_, body)| body == &c.body).map(|(id, _)| id)
            } else {
                None
            };
            let activity = match earlier {
                Some(id) => id,
                None => self.accelo.create_activity(&sync::activity_body(c, &issue_id, cfg)).await?,
            };
            self.store.comment_synced(ticket_id, &key, &activity, now)?;
            self.store.history(ticket_id, now, "create_activity", "ok", &format!("comment {} → activity {activity}", c.sync_key()))?;
        }
        if !plan.comments.is_empty() {
            did.push(format!("{} comment(s) added", plan.comments.len()));
        }
        for g in &plan.gaps {
            self.log("warn", "ticket.unmapped", Some(ticket_id), Some(&issue_id), format!("{} \"{}\": {}", g.field, g.value, g.reason));
        }
        let detail = if did.is_empty() { format!("issue {issue_id} already up to date") } else { did.join("; ") };
        Ok(Done::Synced { issue_id, detail })
    }

    /// A `POST /issues` whose answer never came back may still have created the issue: look for
    /// it by the ticket marker before creating another.
    async fn find_lost_issue(&self, ticket_id: &str, company_id: i64, started_ms: i64) -> Result<Option<String>, Failure> {
        let marker = sync::ticket_marker(ticket_id);
        let recent = self.accelo.recent_issues_for_company(company_id, started_ms / 1000 - 300).await?;
        let found = recent.into_iter().find(|(_, d)| d.lines().any(|l| l.trim() == marker)).map(|(id, _)| id);
        if let Some(id) = &found {
            self.store.link_issue(ticket_id, id, company_id, None, None, self.now_ms)?;
            self.store.history(ticket_id, self.now_ms, "recover_issue", "ok", &format!("found issue {id} from an earlier attempt"))?;
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests;
