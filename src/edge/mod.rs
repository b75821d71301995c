//! The Workers edge: every `worker::` call lives under this folder. It reads requests, config,
//! KV and Durable Object storage, and hands plain values to the core.

mod bridge_queue;
mod config;
mod http;
mod log;
mod routes;
mod sql;

#[allow(unused_imports)] // exported to JS by #[durable_object]
pub use bridge_queue::BridgeQueue;

use worker::*;

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    routes::handle(req, env).await
}

/// The cron trigger: the periodic reconcile runs inside the Durable Object.
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    match routes::queue_call(&env, "POST", "/reconcile", None).await {
        Ok(r) if r.status_code() < 300 => log::line("info", "reconcile.cron", None, None, "scheduled reconcile started"),
        Ok(r) => log::line("error", "reconcile.cron", None, None, &format!("queue answered {}", r.status_code())),
        Err(e) => log::line("error", "reconcile.cron", None, None, &format!("queue unreachable: {e}")),
    }
}
