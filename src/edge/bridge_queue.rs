//! The Durable Object that owns the bridge's state (SQLite) and its work queue. The worker
//! forwards stored-or-refused decisions here; the alarm runs the engine after the answer.

use std::cell::Cell;
use std::time::Duration;

use serde_json::{json, Value};
use worker::*;

use super::config::{load_mappings, Settings};
use super::http::WorkerHttp;
use super::log;
use super::sql::DoSql;
use crate::accelo::{AcceloClient, CachedToken};
use crate::mappings::{AcceloCatalog, Mappings};
use crate::continuum::inbound::TicketEntry;
use crate::continuum::outbound::ContinuumClient;
use crate::engine::Engine;
use crate::store::Store;

const META_TOKEN: &str = "accelo_token";
const META_PAUSED: &str = "accelo_paused_until";
const META_RATE: &str = "accelo_rate_limit";
const META_LAST_RECONCILE: &str = "last_reconcile";
const META_LAST_RUN: &str = "last_run";
const META_CATALOG: &str = "accelo_catalog";
const META_CATALOG_STALE: &str = "accelo_catalog_stale";
/// How long Accelo's lists (statuses, staff...) are trusted before they are listed again.
const CATALOG_TTL_MS: i64 = 3_600_000;
/// Jobs per alarm run; the alarm re-arms at once while more are due.
const JOBS_PER_RUN: i64 = 25;

#[durable_object]
pub struct BridgeQueue {
    state: State,
    env: Env,
    sql: DoSql,
    /// One engine run at a time: a second one could make the same Accelo call twice.
    running: Cell<bool>,
}

fn now_ms() -> i64 {
    Date::now().as_millis() as i64
}

impl BridgeQueue {
    fn store(&self) -> Store<'_, DoSql> {
        Store::new(&self.sql)
    }

    async fn wake_at(&self, at_ms: i64) -> Result<()> {
        let offset = (at_ms - now_ms()).max(0);
        self.state.storage().set_alarm(offset).await
    }

    async fn ingest(&self, mut req: Request) -> Result<Response> {
        let body: Value = req.json().await?;
        let entries: Vec<TicketEntry> = serde_json::from_value(body["entries"].clone()).map_err(|e| Error::RustError(e.to_string()))?;
        let outcomes = match self.store().ingest(&entries, now_ms()) {
            Ok(o) => o,
            Err(e) => {
                log::line("error", "ingest.storage", None, None, &e);
                return Response::error("storage unavailable", 503);
            }
        };
        if outcomes.iter().any(|o| o.accepted()) {
            self.wake_at(now_ms()).await?;
        }
        Response::from_json(&json!({ "outcomes": outcomes }))
    }

    fn status(&self) -> Result<Response> {
        let store = self.store();
        let (counts, attention) = match (store.counts(), store.attention(20)) {
            (Ok(c), Ok(a)) => (c, a),
            (Err(e), _) | (_, Err(e)) => return Response::error(format!("storage: {e}"), 503),
        };
        let meta = |k: &str| store.meta(k).ok().flatten();
        let parse = |k: &str| meta(k).and_then(|v| serde_json::from_str::<Value>(&v).ok()).unwrap_or(Value::Null);
        Response::from_json(&json!({
            "counts": counts,
            "attention": attention,
            "last_reconcile": meta(META_LAST_RECONCILE),
            "last_run": parse(META_LAST_RUN),
            "accelo_rate_limit": parse(META_RATE),
            "accelo_paused_until": meta(META_PAUSED).and_then(|v| v.parse::<i64>().ok()),
            "next_due_at": store.next_due_at().ok().flatten(),
            "catalog": parse(META_CATALOG),
        }))
    }

    async fn reconcile(&self) -> Result<Response> {
        let now = now_ms();
        let store = self.store();
        let requeued = store.requeue_for_reconcile(now).map_err(Error::RustError)?;
        let at = chrono::DateTime::from_timestamp_millis(now).map(|d| d.to_rfc3339()).unwrap_or_default();
        store.set_meta(META_LAST_RECONCILE, Some(&at)).map_err(Error::RustError)?;
        // Mappings may name new ids: list Accelo's again on this run.
        store.set_meta(META_CATALOG_STALE, Some("1")).map_err(Error::RustError)?;
        self.wake_at(now).await?;
        log::line("info", "reconcile", None, None, &format!("{requeued} skipped or waiting ticket(s) queued again"));
        Response::from_json(&json!({"requeued": requeued, "started_at": at}))
    }

    async fn run_engine(&self) -> Result<()> {
        let now = now_ms();
        let store = self.store();
        let paused = store.meta(META_PAUSED).ok().flatten().and_then(|v| v.parse::<i64>().ok());
        if let Some(until) = paused.filter(|u| *u > now) {
            return self.wake_at(until).await;
        }
        let run = self
            .with_clients(async |settings, accelo, continuum| {
                let mut mappings = load_mappings(&self.env).await;
                let catalog = self.catalog(accelo, &mappings, now).await;
                if let Some(c) = &catalog {
                    mappings.check_ids(c);
                }
                for e in mappings.errors() {
                    log::line("error", "mapping.invalid", None, None, &e.to_string());
                }
                let mut engine = Engine::new(self.store(), accelo, continuum, &mappings, settings.policy, now);
                engine.catalog = catalog.as_ref();
                let report = engine.run_due(JOBS_PER_RUN).await;
                log::engine(engine.take_logs());
                report
            })
            .await;
        let report = match run {
            Err(missing) => {
                log::line("error", "config.missing", None, None, &missing);
                return self.wake_at(now + crate::retry::RetryPolicy::default().operator_recheck_ms).await;
            }
            Ok(Err(e)) => {
                log::line("error", "engine.storage", None, None, &e);
                return self.wake_at(now + 5_000).await;
            }
            Ok(Ok(r)) => r,
        };
        let _ = store.set_meta(META_LAST_RUN, Some(&json!({"at": now, "report": report}).to_string()));
        let _ = store.set_meta(META_PAUSED, report.paused_until_ms.map(|p| p.to_string()).as_deref());
        let next = store.next_due_at().ok().flatten();
        match (next, report.paused_until_ms) {
            (Some(n), Some(p)) => self.wake_at(n.max(p)).await,
            (Some(n), None) => self.wake_at(n).await,
            (None, _) => Ok(()),
        }
    }
}

impl BridgeQueue {
    /// Accelo's lists, listed again when stale or after a reconcile; the last good copy otherwise.
    async fn catalog(&self, accelo: &AcceloClient<'_, WorkerHttp>, mappings: &Mappings, now: i64) -> Option<AcceloCatalog> {
        let store = self.store();
        let cached: Option<AcceloCatalog> = store.meta(META_CATALOG).ok().flatten().and_then(|c| serde_json::from_str(&c).ok());
        let stale = store.meta(META_CATALOG_STALE).ok().flatten().is_some();
        let site_ids: Vec<i64> = mappings.sites.as_ref().map(|s| s.iter().map(|(_, id)| *id).collect()).unwrap_or_default();
        let fresh = |c: &AcceloCatalog| {
            !stale && now - c.fetched_at_ms < CATALOG_TTL_MS && site_ids.iter().all(|id| c.companies_asked.contains(id))
        };
        if cached.as_ref().is_some_and(fresh) {
            return cached;
        }
        match accelo.catalog(&site_ids).await {
            Ok(c) => {
                let _ = store.set_meta(META_CATALOG, serde_json::to_string(&c).ok().as_deref());
                let _ = store.set_meta(META_CATALOG_STALE, None);
                Some(c)
            }
            Err(e) => {
                log::line("warn", "accelo.catalog", None, None, &format!("could not list Accelo ids: {e}"));
                cached
            }
        }
    }
}

impl BridgeQueue {
    /// Runs `work` with API clients sharing the queue's cached Accelo token; saves the token and
    /// the rate-limit headers afterwards. `Err` names the settings that are missing.
    async fn with_clients<T>(
        &self,
        work: impl AsyncFnOnce(&Settings, &AcceloClient<'_, WorkerHttp>, &ContinuumClient<'_, WorkerHttp>) -> T,
    ) -> std::result::Result<T, String> {
        let settings = Settings::load(&self.env);
        if !settings.missing.is_empty() {
            return Err(format!("missing settings: {}", settings.missing.join(", ")));
        }
        let store = self.store();
        let http = WorkerHttp { timeout: Duration::from_secs(30) };
        let cached: Option<CachedToken> = store.meta(META_TOKEN).ok().flatten().and_then(|t| serde_json::from_str(&t).ok());
        let accelo = AcceloClient::new(&http, settings.accelo.clone(), now_ms(), cached.clone());
        let continuum = ContinuumClient::new(&http, settings.continuum.clone());
        let out = work(&settings, &accelo, &continuum).await;
        if accelo.token() != cached {
            let _ = store.set_meta(META_TOKEN, accelo.token().and_then(|t| serde_json::to_string(&t).ok()).as_deref());
        }
        if accelo.api_calls() > 0 {
            let _ = store.set_meta(META_RATE, serde_json::to_string(&accelo.rate_limit()).ok().as_deref());
        }
        Ok(out)
    }

    /// `GET /admin/suggest-mappings`: drafts from both sides' lists.
    async fn suggest(&self) -> Result<Response> {
        let lists = self
            .with_clients(async |_, a, c| {
                let e = |x: &dyn std::fmt::Display| x.to_string();
                Ok::<_, String>(crate::suggest::Lists {
                    continuum_statuses: c.list("/statuses").await.map_err(|x| e(&x))?,
                    continuum_users: c.list("/users").await.map_err(|x| e(&x))?,
                    continuum_sites: c.list("/sites").await.map_err(|x| e(&x))?,
                    accelo_statuses: a.list_all("/issues/statuses", "title,standing").await.map_err(|x| e(&x))?,
                    accelo_staff: a.list_all("/staff", "firstname,surname,email,username").await.map_err(|x| e(&x))?,
                    accelo_companies: a.list_all("/companies", "name").await.map_err(|x| e(&x))?,
                })
            })
            .await
            .and_then(|r| r);
        match lists {
            Ok(l) => Response::from_json(&crate::suggest::suggest_mappings(&l)),
            Err(e) => Response::error(format!("could not list both sides: {e}"), 502),
        }
    }

    /// `POST /admin/import-priorities`: links Continuum's priorities to Accelo's and writes the
    /// `priorities` document (entries the operator already has are kept).
    async fn import_priorities(&self) -> Result<Response> {
        let kv = self.env.kv("MAPPINGS")?;
        let existing: Option<Value> = kv.get(crate::mappings::PRIORITIES).text().await?.and_then(|t| serde_json::from_str(&t).ok());
        let lists = self
            .with_clients(async |_, a, c| {
                let cont = c.list("/priorities").await.map_err(|e| e.to_string())?;
                let acc = a.list_all("/issues/priorities", "title,factor").await.map_err(|e| e.to_string())?;
                Ok::<_, String>((cont, acc))
            })
            .await
            .and_then(|r| r);
        let (cont, acc) = match lists {
            Ok(l) => l,
            Err(e) => return Response::error(format!("could not list priorities: {e}"), 502),
        };
        let doc = crate::suggest::import_priorities(&cont, &acc, existing.as_ref().filter(|v| v.is_object()));
        kv.put(crate::mappings::PRIORITIES, doc.to_string())?.execute().await?;
        log::line("info", "priorities.imported", None, None, &format!("{} Continuum priorities linked", doc.as_object().map_or(0, |o| o.len())));
        Response::from_json(&json!({ "priorities": doc }))
    }
}

impl DurableObject for BridgeQueue {
    fn new(state: State, env: Env) -> Self {
        let sql = DoSql(state.storage().sql());
        if let Err(e) = Store::new(&sql).migrate() {
            log::line("error", "storage.migrate", None, None, &e);
        }
        Self { state, env, sql, running: Cell::new(false) }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let path = req.path();
        match (req.method(), path.as_str()) {
            (Method::Post, "/ingest") => self.ingest(req).await,
            (Method::Get, "/status") => self.status(),
            (Method::Post, "/reconcile") => self.reconcile().await,
            (Method::Get, "/suggest-mappings") => self.suggest().await,
            (Method::Post, "/import-priorities") => self.import_priorities().await,
            (Method::Post, "/replay") => {
                let id = req.url()?.query_pairs().find(|(k, _)| k == "id").map(|(_, v)| v.to_string());
                let n = self.store().replay_dead(id.as_deref(), now_ms()).map_err(Error::RustError)?;
                if n > 0 {
                    self.wake_at(now_ms()).await?;
                }
                Response::from_json(&json!({"replayed": n}))
            }
            (Method::Get, p) if p.starts_with("/ticket/") => {
                let id = urlencoding::decode(&p["/ticket/".len()..]).map(|s| s.into_owned()).unwrap_or_default();
                match self.store().ticket_record(&id).map_err(Error::RustError)? {
                    Some(rec) => Response::from_json(&rec),
                    None => Response::error("unknown ticket", 404),
                }
            }
            _ => Response::error("not found", 404),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        if self.running.replace(true) {
            self.wake_at(now_ms() + 1_000).await?;
            return Response::ok("busy");
        }
        let result = self.run_engine().await;
        self.running.set(false);
        if let Err(e) = &result {
            log::line("error", "alarm", None, None, &e.to_string());
            self.wake_at(now_ms() + 5_000).await?;
        }
        Response::ok("done")
    }
}
