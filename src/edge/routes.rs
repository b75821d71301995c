//! Public routes (operator-surface.md, "Routes"). Thin: authenticate, parse with the core,
//! forward to the Durable Object, shape the answer.

use serde_json::{json, Value};
use worker::*;

use super::config::{load_mappings, Settings};
use super::log;
use crate::auth::{basic_auth_ok, bearer_ok};
use crate::continuum::inbound::{notify_from_query, parse_delivery, BodyFormat, TicketEntry, MAX_BODY_BYTES};
use crate::continuum::reply;

const QUEUE_NAME: &str = "main";

/// Calls the bridge's Durable Object (there is one: the queue must see every ticket).
pub async fn queue_call(env: &Env, method: &str, path: &str, body: Option<Value>) -> Result<Response> {
    let stub = env.durable_object("BRIDGE_QUEUE")?.id_from_name(QUEUE_NAME)?.get_stub()?;
    let mut init = RequestInit::new();
    init.with_method(if method == "POST" { Method::Post } else { Method::Get });
    if let Some(b) = body {
        let headers = Headers::new();
        headers.set("Content-Type", "application/json")?;
        init.with_headers(headers).with_body(Some(b.to_string().into()));
    }
    stub.fetch_with_request(Request::new_with_init(&format!("https://queue{path}"), &init)?).await
}

fn text(body: &str, status: u16, content_type: &str) -> Result<Response> {
    let r = Response::ok(body)?.with_status(status);
    r.headers().set("Content-Type", content_type)?;
    Ok(r)
}

fn plain(body: &str, status: u16) -> Result<Response> {
    text(body, status, "text/plain; charset=utf-8")
}

fn json_answer(v: &Value, status: u16) -> Result<Response> {
    Ok(Response::from_json(v)?.with_status(status))
}

pub async fn handle(req: Request, env: Env) -> Result<Response> {
    let path = req.path();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method();
    match segments.as_slice() {
        ["healthz"] => match method {
            Method::Get | Method::Head => plain("ok", 200),
            _ => plain("method not allowed", 405),
        },
        ["continuum", user] => match method {
            Method::Get | Method::Post => {
                let user = urlencoding::decode(user).map(|u| u.into_owned()).unwrap_or_default();
                continuum_callback(req, &env, &user).await
            }
            _ => plain("method not allowed", 405),
        },
        ["admin", rest @ ..] => admin(req, &env, rest).await,
        _ => plain("not found", 404),
    }
}

async fn continuum_callback(mut req: Request, env: &Env, user: &str) -> Result<Response> {
    let settings = Settings::load(env);
    if !settings.missing.is_empty() {
        log::line("error", "config.missing", None, None, &format!("callback refused, missing settings: {}", settings.missing.join(", ")));
        return plain("bridge not configured", 503);
    }
    if user != settings.continuum.integrator_user {
        return plain("not found", 404);
    }
    let auth = req.headers().get("Authorization")?;
    if !basic_auth_ok(auth.as_deref(), &settings.continuum.integrator_user, &settings.integrator_password) {
        let r = plain("unauthorized", 401)?;
        r.headers().set("WWW-Authenticate", "Basic realm=\"continuum\"")?;
        return Ok(r);
    }
    let wants_xml = |ct: Option<&str>| ct.is_some_and(|c| c.to_ascii_lowercase().contains("xml"));
    let (format, entries) = if req.method() == Method::Get {
        let query = req.url()?.query().unwrap_or("").to_string();
        let accept = req.headers().get("Accept")?;
        let format = if wants_xml(accept.as_deref()) { BodyFormat::Xml } else { BodyFormat::Json };
        match notify_from_query(&query) {
            Some(id) => (format, vec![TicketEntry::Notify { ticket_id: id }]),
            None => {
                let (body, ct) = reply::refused(format, "TicketID missing");
                return text(&body, 400, ct);
            }
        }
    } else {
        let declared = req.headers().get("Content-Length")?.and_then(|l| l.trim().parse::<usize>().ok());
        if declared.is_some_and(|l| l > MAX_BODY_BYTES) {
            return plain("body larger than 256 KiB", 413);
        }
        let content_type = req.headers().get("Content-Type")?;
        let body = req.bytes().await?;
        match parse_delivery(content_type.as_deref(), &body) {
            Ok(d) => (d.format, d.entries),
            Err(e) => {
                let status = e.http_status();
                log::line("warn", "callback.refused", None, None, &e.to_string());
                let format = if wants_xml(content_type.as_deref()) { BodyFormat::Xml } else { BodyFormat::Json };
                let (body, ct) = reply::refused(format, &e.to_string());
                return text(&body, status, ct);
            }
        }
    };
    if entries.is_empty() {
        let (body, ct) = reply::refused(format, "no ticket in the request");
        return text(&body, 400, ct);
    }
    let answer = match queue_call(env, "POST", "/ingest", Some(json!({ "entries": entries }))).await {
        Ok(mut r) if r.status_code() == 200 => r.json::<Value>().await,
        Ok(r) => Err(Error::RustError(format!("queue answered {}", r.status_code()))),
        Err(e) => Err(e),
    };
    let outcomes = match answer.and_then(|v| {
        serde_json::from_value::<Vec<crate::store::EntryOutcome>>(v["outcomes"].clone()).map_err(|e| Error::RustError(e.to_string()))
    }) {
        Ok(o) => o,
        Err(e) => {
            log::line("error", "callback.storage", None, None, &format!("not stored: {e}"));
            return plain("storage unavailable, retry later", 503);
        }
    };
    for o in &outcomes {
        use crate::store::EntryOutcome::*;
        match o {
            Invalid { ticket_id, reason, .. } => log::line("warn", "ticket.rejected", ticket_id.as_deref(), None, reason),
            Stored { ticket_id } => log::line("info", "ticket.stored", Some(ticket_id), None, "snapshot stored"),
            Unchanged { ticket_id, why } => log::line("info", "ticket.unchanged", Some(ticket_id), None, why),
            PullQueued { ticket_id } => log::line("info", "ticket.notify", Some(ticket_id), None, "pull queued"),
        }
    }
    let (status, body, ct) = reply::accepted(format, &outcomes);
    text(&body, status, ct)
}

async fn admin(req: Request, env: &Env, rest: &[&str]) -> Result<Response> {
    let settings = Settings::load(env);
    if settings.admin_token.is_empty() {
        return plain("ADMIN_TOKEN is not set", 503);
    }
    if !bearer_ok(req.headers().get("Authorization")?.as_deref(), &settings.admin_token) {
        let r = plain("unauthorized", 401)?;
        r.headers().set("WWW-Authenticate", "Bearer realm=\"admin\"")?;
        return Ok(r);
    }
    // The one table of admin routes and their methods.
    let want = match rest {
        [] | [""] | ["status"] | ["tickets", _] | ["suggest-mappings"] => Method::Get,
        ["reconcile"] | ["import-priorities"] | ["dead-letters", "replay"] => Method::Post,
        _ => return plain("not found", 404),
    };
    if req.method() != want {
        return plain("method not allowed", 405);
    }
    match rest {
        ["status"] => json_answer(&status_json(env, &settings).await?, 200),
        ["tickets", id] => queue_call(env, "GET", &format!("/ticket/{id}"), None).await,
        ["reconcile"] => queue_call(env, "POST", "/reconcile", None).await,
        ["suggest-mappings"] => queue_call(env, "GET", "/suggest-mappings", None).await,
        ["import-priorities"] => queue_call(env, "POST", "/import-priorities", None).await,
        ["dead-letters", "replay"] => {
            let id = req.url()?.query_pairs().find(|(k, _)| k == "id").map(|(_, v)| v.to_string());
            let path = match id {
                Some(id) => format!("/replay?id={}", urlencoding::encode(&id)),
                None => "/replay".to_string(),
            };
            queue_call(env, "POST", &path, None).await
        }
        _ => {
            let status = status_json(env, &settings).await?;
            text(&crate::admin_page::render(&status), 200, "text/html; charset=utf-8")
        }
    }
}

/// `GET /admin/status`: the queue's counts plus what the operator must fix.
async fn status_json(env: &Env, settings: &Settings) -> Result<Value> {
    let mut mappings = load_mappings(env).await;
    let queue = match queue_call(env, "GET", "/status", None).await {
        Ok(mut r) if r.status_code() == 200 => r.json::<Value>().await.unwrap_or(Value::Null),
        _ => json!({"error": "queue unavailable"}),
    };
    if let Ok(catalog) = serde_json::from_value::<crate::mappings::AcceloCatalog>(queue["catalog"].clone()) {
        mappings.check_ids(&catalog);
    }
    let mut config_errors: Vec<Value> = settings
        .missing
        .iter()
        .map(|name| json!({"key": name, "reason": "missing var or secret"}))
        .collect();
    config_errors.extend(mappings.errors().into_iter().map(|e| json!({"key": e.key, "reason": e.reason})));
    let counts = &queue["counts"];
    Ok(json!({
        "pending": counts["pending"],
        "dead_letters": counts["dead_letters"],
        "skipped": counts["skipped"],
        "synced": counts["synced"],
        "config_errors": config_errors,
        "last_reconcile": queue["last_reconcile"],
        "waiting": counts["waiting"],
        "retrying": counts["retrying"],
        "tickets": counts["tickets"],
        "comments_synced": counts["comments_synced"],
        "rejected": counts["rejected"],
        "attention": queue["attention"],
        "last_run": queue["last_run"],
        "accelo_rate_limit": queue["accelo_rate_limit"],
        "accelo_paused_until": queue["accelo_paused_until"],
        "next_due_at": queue["next_due_at"],
    }))
}
