//! Loopback HTTP stand-ins for the Accelo API v0 and the Continuum API, for end-to-end tests
//! (in-process, through [`start`]) and local runs (the `standins` binary).
//!
//! Behaviour follows `shared/spec/accelo-api.md` and `shared/spec/continuum-protocol.md` §2.
//! Both servers also answer control routes under `/__control/` (state, request log, faults,
//! reset, data upserts); the same operations are methods on [`Standins`].

mod accelo;
mod common;
mod continuum;
mod filters;

pub use accelo::{AcceloSnapshot, RateInfo, COLLECTIONS as ACCELO_COLLECTIONS};
pub use common::{Fault, RequestRecord};
pub use continuum::{ContinuumSnapshot, LISTS as CONTINUUM_LISTS};

use common::StandIn;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Initial data for both stand-ins; records are plain JSON objects (numbers become strings on
/// the Accelo side, as Accelo returns them).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Seed {
    #[serde(default)]
    pub companies: Vec<Value>,
    #[serde(default)]
    pub staff: Vec<Value>,
    #[serde(default)]
    pub issue_statuses: Vec<Value>,
    #[serde(default)]
    pub issue_types: Vec<Value>,
    #[serde(default)]
    pub issue_priorities: Vec<Value>,
    #[serde(default)]
    pub issue_classes: Vec<Value>,
    #[serde(default)]
    pub issue_resolutions: Vec<Value>,
    #[serde(default)]
    pub affiliations: Vec<Value>,
    #[serde(default)]
    pub issues: Vec<Value>,
    #[serde(default)]
    pub activities: Vec<Value>,
    /// The staff member tokens act as (`tokeninfo`, `/staff/whoami`, `submitted_by`, activity
    /// owner). Default: the first staff member.
    #[serde(default)]
    pub token_staff_id: Option<String>,
    #[serde(default)]
    pub continuum: ContinuumSeed,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContinuumSeed {
    #[serde(default)]
    pub priorities: Vec<Value>,
    #[serde(default)]
    pub statuses: Vec<Value>,
    #[serde(default)]
    pub tickettypes: Vec<Value>,
    #[serde(default)]
    pub users: Vec<Value>,
    #[serde(default)]
    pub sites: Vec<Value>,
    /// Tickets served by `GET /tickets/{TicketID}` (keyed by their `TicketID`).
    #[serde(default)]
    pub tickets: Vec<Value>,
}

impl Seed {
    pub fn load(path: impl AsRef<Path>) -> Result<Seed, String> {
        let p = path.as_ref();
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
    }

    /// The demo data of `fixtures/standins-seed.json`, compiled in.
    pub fn demo() -> Seed {
        serde_json::from_str(include_str!("../../fixtures/standins-seed.json"))
            .expect("valid fixtures/standins-seed.json")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AcceloConfig {
    pub client_id: String,
    pub client_secret: String,
    pub deployment: String,
    /// Requests per clock hour before 429 (the real limit is 5000).
    pub rate_limit_per_hour: u32,
}

impl Default for AcceloConfig {
    fn default() -> Self {
        AcceloConfig {
            client_id: "local-client".into(),
            client_secret: "local-secret".into(),
            deployment: "local".into(),
            rate_limit_per_hour: 5000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContinuumConfig {
    pub api_token: String,
    pub integrator_user: String,
}

impl Default for ContinuumConfig {
    fn default() -> Self {
        ContinuumConfig {
            api_token: "local-continuum-token".into(),
            integrator_user: "acme".into(),
        }
    }
}

/// Both running servers. Dropping it stops them.
pub struct Standins {
    /// `http://127.0.0.1:PORT` — the bridge calls `{accelo_url}/oauth2/v0/token` and `{accelo_url}/api/v0/...`.
    pub accelo_url: String,
    /// `http://127.0.0.1:PORT` — the Continuum API base URL.
    pub continuum_url: String,
    pub accelo_addr: SocketAddr,
    pub continuum_addr: SocketAddr,
    accelo: accelo::Shared,
    continuum: continuum::Shared,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Binds both servers (port 0 = any free port) and serves them on the current tokio runtime.
pub async fn start(
    addr_accelo: SocketAddr,
    addr_continuum: SocketAddr,
    accelo: AcceloConfig,
    continuum: ContinuumConfig,
    seed: Seed,
) -> std::io::Result<Standins> {
    let la = tokio::net::TcpListener::bind(addr_accelo).await?;
    let lc = tokio::net::TcpListener::bind(addr_continuum).await?;
    let (aa, ca) = (la.local_addr()?, lc.local_addr()?);
    let accelo_url = format!("http://{aa}");
    let continuum_url = format!("http://{ca}");
    let a_state = Arc::new(Mutex::new(accelo::AcceloState::new(
        accelo,
        seed.clone(),
        accelo_url.clone(),
    )));
    let c_state = Arc::new(Mutex::new(continuum::ContinuumState::new(
        continuum,
        seed.continuum,
    )));
    let a_app = axum::Router::new()
        .fallback(common::handle::<accelo::AcceloState>)
        .with_state(a_state.clone());
    let c_app = axum::Router::new()
        .fallback(common::handle::<continuum::ContinuumState>)
        .with_state(c_state.clone());
    let tasks = vec![
        tokio::spawn(async move {
            let _ = axum::serve(la, a_app).await;
        }),
        tokio::spawn(async move {
            let _ = axum::serve(lc, c_app).await;
        }),
    ];
    Ok(Standins {
        accelo_url,
        continuum_url,
        accelo_addr: aa,
        continuum_addr: ca,
        accelo: a_state,
        continuum: c_state,
        tasks,
    })
}

/// `127.0.0.1:0` — any free loopback port.
pub fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

impl Standins {
    /// Both stand-ins on free loopback ports with default credentials and the demo seed.
    pub async fn start_demo() -> std::io::Result<Standins> {
        start(
            any_port(),
            any_port(),
            AcceloConfig::default(),
            ContinuumConfig::default(),
            Seed::demo(),
        )
        .await
    }

    fn a(&self) -> std::sync::MutexGuard<'_, accelo::AcceloState> {
        self.accelo.lock().expect("accelo state")
    }

    fn c(&self) -> std::sync::MutexGuard<'_, continuum::ContinuumState> {
        self.continuum.lock().expect("continuum state")
    }

    pub fn accelo_state(&self) -> AcceloSnapshot {
        self.a().snapshot()
    }

    pub fn continuum_state(&self) -> ContinuumSnapshot {
        self.c().snapshot()
    }

    pub fn accelo_requests(&self) -> Vec<RequestRecord> {
        self.a().journal().requests().to_vec()
    }

    pub fn continuum_requests(&self) -> Vec<RequestRecord> {
        self.c().journal().requests().to_vec()
    }

    pub fn clear_requests(&self) {
        self.a().journal().clear_requests();
        self.c().journal().clear_requests();
    }

    pub fn set_accelo_fault(&self, fault: Fault) {
        self.a().journal().add_fault(fault);
    }

    pub fn set_continuum_fault(&self, fault: Fault) {
        self.c().journal().add_fault(fault);
    }

    pub fn clear_faults(&self) {
        self.a().journal().clear_faults();
        self.c().journal().clear_faults();
    }

    /// Every Accelo token issued so far now answers 401 `invalid_client`.
    pub fn expire_accelo_tokens(&self) {
        self.a().expire_tokens();
    }

    /// Sets the Accelo hourly limit and what remains of the current window (`None` = all).
    pub fn set_accelo_rate_limit(&self, limit: u32, remaining: Option<u32>) {
        self.a().set_rate_limit(limit, remaining);
    }

    /// Both stand-ins back to the seed (Accelo tokens stay valid).
    pub fn reset(&self) {
        self.a().reset();
        self.c().reset();
    }

    /// Insert or merge (by `id`) a record into an Accelo collection (see [`ACCELO_COLLECTIONS`]).
    /// Issues/activities merged without `date_modified` get it set to now.
    pub fn upsert_accelo(&self, collection: &str, record: Value) -> Result<Value, String> {
        self.a().upsert(collection, record, true)
    }

    pub fn add_company(&self, company: Value) -> Value {
        self.upsert_accelo("companies", company)
            .expect("company must be a JSON object")
    }

    pub fn add_staff(&self, staff: Value) -> Value {
        self.upsert_accelo("staff", staff)
            .expect("staff must be a JSON object")
    }

    /// Stores a Continuum ticket that `GET /tickets/{id}` returns exactly.
    pub fn put_continuum_ticket(&self, id: &str, ticket: Value) {
        self.c().put_ticket(id, ticket);
    }

    pub fn continuum_ticket(&self, id: &str) -> Option<Value> {
        self.c().ticket(id).cloned()
    }

    /// Insert or replace a Continuum lookup item (`sites`, `users`, `statuses`, ...) by its key.
    pub fn upsert_continuum(&self, list: &str, item: Value) -> Result<Value, String> {
        self.c().upsert_list(list, item)
    }
}

impl Drop for Standins {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
