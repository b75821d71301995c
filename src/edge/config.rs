//! Vars and secrets (operator-surface.md, "Deploy and configure"). A missing one is named, never
//! its value.

use worker::Env;

use crate::accelo::AcceloCredentials;
use crate::continuum::outbound::ContinuumApi;
use crate::retry::RetryPolicy;

pub struct Settings {
    pub accelo: AcceloCredentials,
    pub continuum: ContinuumApi,
    pub integrator_password: String,
    pub admin_token: String,
    pub policy: RetryPolicy,
    /// Required settings that are absent (names only).
    pub missing: Vec<&'static str>,
}

fn get(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn trim_slash(s: String) -> String {
    s.trim_end_matches('/').to_string()
}

impl Settings {
    pub fn load(env: &Env) -> Settings {
        let mut missing = Vec::new();
        let mut need = |name: &'static str| {
            get(env, name).unwrap_or_else(|| {
                missing.push(name);
                String::new()
            })
        };
        let integrator_user = need("CONTINUUM_INTEGRATOR_USER");
        let integrator_password = need("CONTINUUM_INTEGRATOR_PASSWORD");
        let continuum_url = trim_slash(need("CONTINUUM_API_URL"));
        let continuum_token = need("CONTINUUM_API_TOKEN");
        let client_id = need("ACCELO_CLIENT_ID");
        let client_secret = need("ACCELO_CLIENT_SECRET");
        let admin_token = need("ADMIN_TOKEN");
        let accelo_url = match get(env, "ACCELO_API_URL") {
            Some(u) => trim_slash(u),
            None => match get(env, "ACCELO_DEPLOYMENT") {
                Some(d) => format!("https://{d}.api.accelo.com"),
                None => {
                    missing.push("ACCELO_DEPLOYMENT");
                    String::new()
                }
            },
        };
        let mut policy = RetryPolicy::default();
        // Tunable so that tests (and impatient operators) need not wait 30 s for a retry.
        if let Some(ms) = get(env, "RETRY_BASE_SECONDS").and_then(|s| s.parse::<f64>().ok()) {
            policy.base_ms = (ms * 1000.0) as i64;
        }
        if let Some(ms) = get(env, "RECHECK_SECONDS").and_then(|s| s.parse::<f64>().ok()) {
            policy.operator_recheck_ms = (ms * 1000.0) as i64;
        }
        Settings {
            accelo: AcceloCredentials { base_url: accelo_url, client_id, client_secret },
            continuum: ContinuumApi { base_url: continuum_url, api_token: continuum_token, integrator_user },
            integrator_password,
            admin_token,
            policy,
            missing,
        }
    }
}

/// Reads every mapping document from the `MAPPINGS` namespace. A namespace that cannot be read
/// at all makes every document unusable, with that reason.
pub async fn load_mappings(env: &Env) -> crate::mappings::Mappings {
    use std::collections::HashMap;
    let mut docs: HashMap<&str, Result<Option<String>, String>> = HashMap::new();
    match env.kv("MAPPINGS") {
        Ok(kv) => {
            for key in crate::mappings::KEYS {
                docs.insert(key, kv.get(key).text().await.map_err(|e| e.to_string()));
            }
        }
        Err(e) => {
            for key in crate::mappings::KEYS {
                docs.insert(key, Err(format!("KV binding MAPPINGS unavailable: {e}")));
            }
        }
    }
    let unreadable: Vec<(String, String)> = docs
        .iter()
        .filter_map(|(k, v)| v.as_ref().err().map(|e| (k.to_string(), e.clone())))
        .collect();
    let mut m = crate::mappings::Mappings::parse(|k| docs.get(k).and_then(|v| v.clone().ok()).flatten());
    for (key, reason) in unreadable {
        m.mark_unreadable(&key, &reason);
    }
    m
}
