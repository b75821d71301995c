//! Measures the bridge's claims (`bash scripts/bench.sh`, or `cargo bench -p e2e --bench bridge`):
//! the worker built once and run in workerd (`wrangler dev`, as in the e2e run) against the
//! in-process stand-ins with the demo mappings, after one warm-up ticket. Prints a table:
//!
//! 1. callbacks while Accelo answers `POST /issues` after 2 s: N new tickets from C clients;
//! 2. the same with Accelo at normal speed, and the drain: from the first of those callbacks
//!    until `/admin/status` counts all N synced with nothing pending, and the Accelo API calls
//!    made per ticket (the stand-in's request log);
//! 3. a duplicate storm: concurrent deliveries of one new ticket, and how many issues it got.
//!
//! Asserts nothing about speed; exits non-zero when the run breaks down or the storm's ticket
//! does not end as exactly one issue.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::{project_root, ticket, Ctx, Worker};
use serde_json::json;
use standins::{Fault, Standins};

const N: usize = 200;
const CLIENTS: usize = 8;
const STORM: usize = 50;
const SLOW_MS: u64 = 2000;
/// How long the bridge may take to sync a batch before the run gives up.
const DRAIN_LIMIT: Duration = Duration::from_secs(600);
/// How often the drain polls `/admin/status` (the drain time's resolution).
const DRAIN_POLL: Duration = Duration::from_millis(50);
/// Non-200 answers shown in full per batch.
const SHOWN_FAILURES: usize = 3;

#[tokio::main]
async fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` would run this target without it.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("bench: skipped (run `cargo bench -p e2e --bench bridge`)");
        return;
    }
    let code = match run().await {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            println!("bench FAILED: {e}");
            1
        }
    };
    std::process::exit(code);
}

/// Starts everything, measures, stops the worker; `Ok(false)` when the storm made duplicates.
async fn run() -> Result<bool, String> {
    let stand = Standins::start_demo()
        .await
        .map_err(|e| format!("stand-ins: {e}"))?;
    eprintln!("bench: building the worker, then wrangler dev");
    let worker = Worker::start(&stand).await?;
    tokio::spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            e2e::kill_all_workers();
            std::process::exit(130);
        }
    });
    let ctx = Arc::new(Ctx::new(worker, Arc::new(stand)));
    let measured = measure(&ctx).await;
    let stopped = ctx
        .shut_down(measured.as_ref().map(|_| ()).map_err(String::clone))
        .await;
    stopped.and(measured)
}

async fn measure(c: &Arc<Ctx>) -> Result<bool, String> {
    c.load_mappings(&project_root().join("fixtures/mappings"))
        .await?;
    // Warm-up: the Durable Object running, an Accelo token and the catalog cached.
    let mut synced = synced_count(c).await?;
    c.post_ticket(&ticket("BENCH-WARM", json!({})), 1).await?;
    synced += 1;
    drain(c, synced).await?;

    eprintln!("bench: {N} callbacks while Accelo takes {SLOW_MS} ms per new issue");
    c.stand.clear_requests();
    c.stand
        .set_accelo_fault(Fault::delay("POST", "/api/v0/issues", SLOW_MS, N as u32));
    let slow = deliver(c, new_tickets("BENCH-SLOW"), CLIENTS).await;
    // Evidence that the bridge was waiting on Accelo all along: creates answered meanwhile.
    let created_meanwhile = c.accelo_requests("POST", "/api/v0/issues").len();
    c.stand.clear_faults();
    synced += slow.accepted;
    drain(c, synced).await?; // the slow batch's backlog, at normal speed: not measured

    eprintln!("bench: {N} callbacks at normal speed, until all are synced");
    c.stand.clear_requests();
    let started = Instant::now();
    let normal = deliver(c, new_tickets("BENCH-FAST"), CLIENTS).await;
    synced += normal.accepted;
    drain(c, synced).await?;
    let drained = started.elapsed();
    let calls = api_calls(c);

    eprintln!("bench: {STORM} concurrent deliveries of one new ticket");
    let storm_id = "BENCH-STORM";
    let body = ticket(storm_id, json!({})).to_string();
    let storm = deliver(c, vec![body; STORM], STORM).await;
    c.settle(storm_id).await?;
    let issues = c.issues_for(storm_id).len();

    println!(
        "\n{:<32} {:>5} {:>7} {:>7} {:>8} {:>8} {:>8} {:>8}",
        "callbacks", "count", "non-200", "req/s", "p50", "p95", "p99", "max"
    );
    let rows = [
        (format!("new, Accelo +{SLOW_MS} ms, C={CLIENTS}"), &slow),
        (format!("new, Accelo normal, C={CLIENTS}"), &normal),
        (format!("same ticket, C={STORM}"), &storm),
    ];
    for (label, batch) in &rows {
        batch.row(label);
    }
    println!(
        "\nslow batch: Accelo answered {created_meanwhile} POST /issues while the {N} callbacks ran"
    );
    let total: usize = calls.values().sum();
    let per_ticket = |n: usize| n as f64 / N as f64;
    println!(
        "drain: {} tickets synced {:.1} s after the first callback: {:.1} tickets/s",
        normal.accepted,
        drained.as_secs_f64(),
        normal.accepted as f64 / drained.as_secs_f64()
    );
    println!(
        "Accelo API calls: {:.2} per ticket ({total} /api/v0 requests for {N} tickets)",
        per_ticket(total)
    );
    for (call, n) in &calls {
        println!("  {call:<40} {n:>5}  {:.2}/ticket", per_ticket(*n));
    }
    let verdict = if issues == 1 { "ok" } else { "UNEXPECTED" };
    println!("duplicate storm: {issues} Accelo issue(s) for the ticket (expect 1): {verdict}");
    for (label, batch) in &rows {
        for f in batch.failures.iter().take(SHOWN_FAILURES) {
            println!("non-200 ({label}): {f}");
        }
    }
    Ok(issues == 1)
}

/// N distinct new tickets for site S100, as callback bodies.
fn new_tickets(prefix: &str) -> Vec<String> {
    (1..=N)
        .map(|n| ticket(&format!("{prefix}-{n:03}"), json!({})).to_string())
        .collect()
}

/// What a batch of callbacks got.
struct Batch {
    /// Of every answer, whatever its status; sorted.
    latencies: Vec<Duration>,
    /// Non-200 answers and requests that got no answer.
    failures: Vec<String>,
    /// 200 answers.
    accepted: u64,
    wall: Duration,
}

impl Batch {
    fn pct(&self, p: f64) -> String {
        let i = ((p * self.latencies.len() as f64).ceil() as usize).saturating_sub(1);
        self.latencies
            .get(i)
            .map_or("-".into(), |d| format!("{:.1}ms", d.as_secs_f64() * 1000.0))
    }

    fn row(&self, label: &str) {
        println!(
            "{label:<32} {:>5} {:>7} {:>7.1} {:>8} {:>8} {:>8} {:>8}",
            self.latencies.len(),
            self.failures.len(),
            self.latencies.len() as f64 / self.wall.as_secs_f64(),
            self.pct(0.50),
            self.pct(0.95),
            self.pct(0.99),
            self.pct(1.0)
        );
    }
}

/// POSTs every body to the callback from `clients` concurrent clients, each taking the next.
async fn deliver(c: &Arc<Ctx>, bodies: Vec<String>, clients: usize) -> Batch {
    let (bodies, next) = (Arc::new(bodies), Arc::new(AtomicUsize::new(0)));
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (c, bodies, next) = (c.clone(), bodies.clone(), next.clone());
        set.spawn(async move {
            let mut replies = Vec::new();
            while let Some(body) = bodies.get(next.fetch_add(1, Ordering::Relaxed)) {
                replies.push(c.post_callback("application/json", body.clone()).await);
            }
            replies
        });
    }
    let (mut latencies, mut failures, mut accepted) = (Vec::new(), Vec::new(), 0);
    while let Some(joined) = set.join_next().await {
        for reply in joined.unwrap_or_else(|e| vec![Err(format!("client task: {e}"))]) {
            match reply {
                Ok(r) => {
                    latencies.push(r.elapsed);
                    match r.status {
                        200 => accepted += 1,
                        _ => failures.push(format!("{} {}", r.status, r.body)),
                    }
                }
                Err(e) => failures.push(e),
            }
        }
    }
    latencies.sort();
    Batch {
        latencies,
        failures,
        accepted,
        wall: started.elapsed(),
    }
}

async fn synced_count(c: &Ctx) -> Result<u64, String> {
    c.status().await?["synced"]
        .as_u64()
        .ok_or("/admin/status has no `synced` count".into())
}

/// Polls `/admin/status` until `synced` tickets are synced and no job is pending.
async fn drain(c: &Ctx, synced: u64) -> Result<(), String> {
    let deadline = Instant::now() + DRAIN_LIMIT;
    loop {
        let s = c.status().await?;
        if s["synced"].as_u64() >= Some(synced) && s["pending"] == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "not {synced} synced after {}s: {s}",
                DRAIN_LIMIT.as_secs()
            ));
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
}

/// The Accelo API requests logged so far, by method and path (ids as `{id}`).
fn api_calls(c: &Ctx) -> BTreeMap<String, usize> {
    let mut calls = BTreeMap::new();
    for r in c.stand.accelo_requests() {
        if r.path.starts_with("/api/v0") {
            let path: Vec<&str> = r
                .path
                .split('/')
                .map(|s| match s.parse::<u64>() {
                    Ok(_) => "{id}",
                    Err(_) => s,
                })
                .collect();
            *calls
                .entry(format!("{} {}", r.method, path.join("/")))
                .or_insert(0) += 1;
        }
    }
    calls
}
