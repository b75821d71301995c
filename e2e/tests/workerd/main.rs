//! The end-to-end run: the stand-ins in-process, ONE `wrangler dev` (the worker in workerd, built
//! once at the start and served from a frozen copy), the demo mappings, then every scenario in
//! turn. Prints `ok <name>` / `FAILED <name>: <why>` and finally `N passed, M failed`; exits
//! non-zero when a scenario failed.
//!
//! `E2E_ONLY=name,name` runs only those scenarios; `E2E_KEEP=1` keeps the temp dir (wrangler log,
//! local state) even when everything passed.
//!
//! Scenarios check the worker against shared/spec (continuum-protocol.md §1 and §3,
//! accelo-api.md, operator-surface.md). They share one worker, so each uses its own TicketIDs;
//! one scenario restarts it (same port and local state), another starts a second, misconfigured
//! worker of its own from the same frozen build.

mod common;
mod faults;
mod intake;
mod mappings;
mod notify;
mod operator;
mod snapshots;
mod tickets;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::{project_root, Ctx, Outcome, Worker};
use standins::Standins;

type Scenario = fn(Arc<Ctx>) -> Pin<Box<dyn Future<Output = Outcome> + Send>>;

macro_rules! scenarios {
    ($($area:ident::$name:ident),* $(,)?) => {
        vec![$((stringify!($name), (|c| Box::pin($area::$name(c))) as Scenario)),*]
    };
}

/// No scenario may hang the run.
const SCENARIO_LIMIT: Duration = Duration::from_secs(150);

#[tokio::main]
async fn main() {
    let code = run().await;
    std::process::exit(code);
}

async fn run() -> i32 {
    let started = Instant::now();
    let stand = match Standins::start_demo().await {
        Ok(s) => s,
        Err(e) => return startup_failed(&format!("stand-ins: {e}"), None),
    };
    eprintln!(
        "e2e: stand-ins up (Accelo {}, Continuum {}); building the worker, then wrangler dev",
        stand.accelo_url, stand.continuum_url
    );
    let worker = match Worker::start(&stand).await {
        Ok(w) => w,
        Err(e) => return startup_failed(&e, None),
    };
    // Ctrl-C reaches only our process group: take wrangler's groups down with us.
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            e2e::kill_all_workers();
            std::process::exit(130);
        }
    });
    eprintln!(
        "e2e: worker ready at {} after {:.0}s",
        worker.base_url,
        started.elapsed().as_secs_f64()
    );
    let ctx = Arc::new(Ctx::new(worker, Arc::new(stand)));
    if let Err(e) = ctx
        .load_mappings(&project_root().join("fixtures/mappings"))
        .await
    {
        return startup_failed(&format!("loading fixtures/mappings: {e}"), Some(&ctx));
    }

    let all = scenarios![
        operator::healthz_and_admin_auth,
        intake::rejects_store_nothing,
        tickets::json_ticket_becomes_issue_with_every_field,
        tickets::xml_ticket_becomes_issue,
        tickets::batch_json,
        tickets::xml_batch,
        tickets::json_aliases_and_numeric_id,
        tickets::batch_keeps_newest_snapshot,
        tickets::large_batch_all_synced,
        intake::text_survives_intact,
        intake::content_type_sniffing,
        intake::datetime_forms,
        intake::unparseable_date_is_a_field_error,
        intake::size_limit_boundary,
        tickets::partial_batch_reports_invalid,
        snapshots::duplicate_delivery_makes_one_issue,
        snapshots::concurrent_deliveries_make_one_issue,
        snapshots::rapid_snapshots_end_in_the_newest,
        snapshots::update_changes_same_issue_only_changed_fields,
        snapshots::stale_snapshot_changes_nothing,
        snapshots::comments_synced_once_each,
        notify::notify_then_pull,
        notify::get_notify,
        mappings::unmapped_status_recorded_as_gap,
        mappings::name_matching_remembered,
        mappings::unmatched_site_skipped_then_pulled_in_after_sites_mapping,
        faults::accelo_500_is_retried_once_issue,
        faults::accelo_429_waits_for_the_window,
        faults::expired_token_is_refreshed,
        faults::slow_accelo_does_not_slow_callback,
        faults::update_during_slow_create_makes_one_issue,
        faults::accelo_html_503_is_retried,
        faults::token_refused_then_recovers,
        operator::dead_letter_replayed,
        operator::suggest_mappings_drafts_documents,
        operator::import_priorities_links_priorities,
        mappings::broken_mapping_reported_and_tickets_wait,
        faults::accepted_ticket_survives_a_restart,
        operator::missing_secret_gives_503_and_is_named,
        operator::log_lines_are_json_with_ticket_and_issue,
        operator::no_secret_in_logs_or_answers,
    ];
    let only: Option<Vec<String>> = std::env::var("E2E_ONLY")
        .ok()
        .map(|v| v.split(',').map(|n| n.trim().to_string()).collect());
    let (mut passed, mut failed) = (0, 0);
    for (name, scenario) in all {
        if only.as_ref().is_some_and(|o| !o.iter().any(|n| n == name)) {
            continue;
        }
        let t0 = Instant::now();
        // Spawned, so that a panic is one failed scenario, not the end of the run; aborted when
        // late, so that it lets go of the worker (and stops any worker of its own).
        let task = tokio::spawn(scenario(ctx.clone()));
        let abort = task.abort_handle();
        let outcome = match tokio::time::timeout(SCENARIO_LIMIT, task).await {
            Ok(Ok(o)) => o,
            Ok(Err(join)) => Err(format!("panicked: {join}")),
            Err(_) => {
                abort.abort();
                Err(format!(
                    "did not finish within {}s",
                    SCENARIO_LIMIT.as_secs()
                ))
            }
        };
        ctx.stand.clear_faults();
        match outcome {
            Ok(()) => {
                passed += 1;
                println!("ok {name}");
            }
            Err(why) => {
                failed += 1;
                println!("FAILED {name}: {why}");
            }
        }
        eprintln!("e2e: {name} took {:.1}s", t0.elapsed().as_secs_f64());
    }
    if failed > 0 {
        println!(
            "--- last 60 lines of the wrangler log ---\n{}\n---",
            ctx.log_tail(60)
        );
    }
    if failed > 0 || std::env::var_os("E2E_KEEP").is_some() {
        println!(
            "e2e: log and local state kept in {}",
            ctx.keep_dir().await.display()
        );
    }
    eprintln!("e2e: total {:.0}s", started.elapsed().as_secs_f64());
    println!("{passed} passed, {failed} failed");
    ctx.stop_worker(e2e::STOP_GRACE).await;
    i32::from(failed > 0)
}

fn startup_failed(why: &str, ctx: Option<&Ctx>) -> i32 {
    println!("FAILED startup: {why}");
    if let Some(c) = ctx {
        println!(
            "--- last 60 lines of the wrangler log ---\n{}\n---",
            c.log_tail(60)
        );
    }
    println!("0 passed, 1 failed");
    1
}
