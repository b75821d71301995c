use chrono::{TimeZone, Utc};

use super::testing::MemorySql;
use super::*;
use crate::continuum::ticket::TicketComment;

fn snap(id: &str, minute: Option<u32>) -> TicketSnapshot {
    TicketSnapshot {
        ticket_id: id.into(),
        subject: Some("Disk low".into()),
        updated: minute.map(|m| Utc.with_ymd_and_hms(2026, 12, 4, 9, m, 0).unwrap()),
        status: Some("New".into()),
        ..Default::default()
    }
}

fn store(sql: &MemorySql) -> Store<'_, MemorySql> {
    let s = Store::new(sql);
    s.migrate().unwrap();
    s.migrate().unwrap(); // idempotent
    s
}

#[test]
fn a_new_ticket_is_stored_and_queued() {
    let sql = MemorySql::new();
    let st = store(&sql);
    let out = st.ingest(&[TicketEntry::Snapshot(snap("1", Some(0)))], 1000).unwrap();
    assert_eq!(out, vec![EntryOutcome::Stored { ticket_id: "1".into() }]);
    let jobs = st.due_jobs(1000, 10).unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!((jobs[0].kind.as_str(), jobs[0].subject.as_str()), (JOB_SYNC_TICKET, "1"));
    assert_eq!(st.ticket("1").unwrap().unwrap().state, "pending");
}

#[test]
fn stale_and_duplicate_snapshots_change_nothing() {
    let sql = MemorySql::new();
    let st = store(&sql);
    st.ingest(&[TicketEntry::Snapshot(snap("1", Some(10)))], 1000).unwrap();
    let job = &st.due_jobs(1000, 10).unwrap()[0];
    st.job_done(job).unwrap();
    for m in [Some(10), Some(5)] {
        let mut s = snap("1", m);
        s.status = Some("Closed".into());
        let out = st.ingest(&[TicketEntry::Snapshot(s)], 2000).unwrap();
        assert!(matches!(out[0], EntryOutcome::Unchanged { .. }), "{out:?}");
    }
    assert!(st.due_jobs(5000, 10).unwrap().is_empty());
    assert_eq!(st.ticket("1").unwrap().unwrap().snapshot.status.as_deref(), Some("New"));
    // Without UpdatedDate, an identical snapshot is a duplicate too.
    st.ingest(&[TicketEntry::Snapshot(snap("2", None))], 1000).unwrap();
    let out = st.ingest(&[TicketEntry::Snapshot(snap("2", None))], 1000).unwrap();
    assert!(matches!(out[0], EntryOutcome::Unchanged { .. }));
}

#[test]
fn newer_snapshot_merges_and_requeues() {
    let sql = MemorySql::new();
    let st = store(&sql);
    st.ingest(&[TicketEntry::Snapshot(snap("1", Some(0)))], 1000).unwrap();
    let job = st.due_jobs(1000, 10).unwrap().remove(0);
    let mut newer = snap("1", Some(1));
    newer.subject = None; // omitted fields keep their earlier value
    newer.status = Some("In Progress".into());
    newer.comments = vec![TicketComment { comment_id: Some("c1".into()), body: "hi".into(), ..Default::default() }];
    st.ingest(&[TicketEntry::Snapshot(newer)], 1500).unwrap();
    // The run that started before the new snapshot cannot drop the job.
    st.job_done(&job).unwrap();
    assert_eq!(st.due_jobs(2000, 10).unwrap().len(), 1);
    let t = st.ticket("1").unwrap().unwrap().snapshot;
    assert_eq!((t.subject.as_deref(), t.status.as_deref(), t.comments.len()), (Some("Disk low"), Some("In Progress"), 1));
}

#[test]
fn new_ticket_without_subject_is_invalid_and_batches_record_rejects() {
    let sql = MemorySql::new();
    let st = store(&sql);
    let mut s = snap("9", None);
    s.subject = None;
    let out = st.ingest(&[TicketEntry::Snapshot(s.clone())], 1).unwrap();
    assert!(matches!(&out[0], EntryOutcome::Invalid { reason, .. } if reason.contains("Subject")));
    assert_eq!(st.counts().unwrap(), Counts::default(), "a refused request changes nothing");
    let out = st.ingest(&[TicketEntry::Snapshot(snap("1", None)), TicketEntry::Snapshot(s)], 1).unwrap();
    assert!(matches!(&out[1], EntryOutcome::Invalid { index: 1, .. }));
    assert_eq!(st.counts().unwrap().rejected, 1);
}

#[test]
fn notify_queues_a_pull() {
    let sql = MemorySql::new();
    let st = store(&sql);
    let out = st.ingest(&[TicketEntry::Notify { ticket_id: "77".into() }], 1).unwrap();
    assert_eq!(out, vec![EntryOutcome::PullQueued { ticket_id: "77".into() }]);
    assert_eq!(st.due_jobs(1, 10).unwrap()[0].kind, JOB_PULL_TICKET);
    assert!(st.ticket_record("77").unwrap().is_some());
}

#[test]
fn retries_dead_letters_and_replay() {
    let sql = MemorySql::new();
    let st = store(&sql);
    st.ingest(&[TicketEntry::Snapshot(snap("1", None))], 0).unwrap();
    let job = st.due_jobs(0, 10).unwrap().remove(0);
    st.job_retry(&job, 60_000, "Accelo unreachable", true, 0).unwrap();
    assert!(st.due_jobs(59_999, 10).unwrap().is_empty());
    assert_eq!(st.next_due_at().unwrap(), Some(60_000));
    let job = st.due_jobs(60_000, 10).unwrap().remove(0);
    assert_eq!(job.attempts, 1);
    st.job_dead(&job, "invalid_request: no such status", 60_000).unwrap();
    let c = st.counts().unwrap();
    assert_eq!((c.pending, c.dead_letters), (0, 1));
    assert_eq!(st.replay_dead(Some("nope"), 70_000).unwrap(), 0);
    assert_eq!(st.replay_dead(Some("1"), 70_000).unwrap(), 1);
    let job = st.due_jobs(70_000, 10).unwrap().remove(0);
    assert_eq!(job.attempts, 0);
}

#[test]
fn reconcile_requeues_skipped_tickets() {
    let sql = MemorySql::new();
    let st = store(&sql);
    st.ingest(&[TicketEntry::Snapshot(snap("1", None))], 0).unwrap();
    let job = st.due_jobs(0, 10).unwrap().remove(0);
    st.set_state("1", "skipped", Some("no company"), 0).unwrap();
    st.job_done(&job).unwrap();
    assert_eq!(st.counts().unwrap().skipped, 1);
    assert_eq!(st.requeue_for_reconcile(10).unwrap(), 1);
    assert_eq!(st.due_jobs(10, 10).unwrap().len(), 1);
}

#[test]
fn history_is_bounded_and_record_is_readable() {
    let sql = MemorySql::new();
    let st = store(&sql);
    st.ingest(&[TicketEntry::Snapshot(snap("1", None))], 0).unwrap();
    for i in 0..150 {
        st.history("1", i, "sync", "ok", "x").unwrap();
    }
    let rec = st.ticket_record("1").unwrap().unwrap();
    assert_eq!(rec["history"].as_array().unwrap().len(), 100);
    assert_eq!(rec["state"], "pending");
    assert!(st.ticket_record("nope").unwrap().is_none());
}

#[test]
fn company_matches_are_remembered_case_insensitively() {
    let sql = MemorySql::new();
    let st = store(&sql);
    st.remember_company("S200", 40, "Globex", 0).unwrap();
    assert_eq!(st.remembered_company("s200").unwrap(), Some(40));
    assert_eq!(st.remembered_company("S300").unwrap(), None);
}

#[test]
fn the_reject_log_keeps_the_newest() {
    let sql = MemorySql::new();
    let st = store(&sql);
    let bad = TicketEntry::Invalid { index: 1, ticket_id: None, reason: "TicketID missing".into() };
    for i in 0..1_005 {
        st.ingest(&[TicketEntry::Snapshot(snap(&i.to_string(), None)), bad.clone()], i).unwrap();
    }
    assert_eq!(st.counts().unwrap().rejected, 1_000);
}
