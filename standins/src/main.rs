//! `standins`: run the Accelo and Continuum stand-ins on loopback until killed.

use standins::{start, AcceloConfig, ContinuumConfig, Seed};
use std::net::{IpAddr, SocketAddr};

const USAGE: &str = "usage: standins [--accelo-port 8788] [--continuum-port 8789] [--seed fixtures/standins-seed.json]
                [--host 127.0.0.1] [--client-id local-client] [--client-secret local-secret]
                [--deployment local] [--rate-limit 5000]
                [--continuum-token local-continuum-token] [--integrator-user acme]";

#[tokio::main]
async fn main() {
    let mut accelo = AcceloConfig::default();
    let mut continuum = ContinuumConfig::default();
    let (mut ap, mut cp, mut seed, mut host) = (
        8788u16,
        8789u16,
        "fixtures/standins-seed.json".to_string(),
        "127.0.0.1".to_string(),
    );
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            return;
        }
        let Some(v) = args.next() else {
            die(&format!("{flag} needs a value"))
        };
        let port = |v: &str| {
            v.parse::<u16>()
                .unwrap_or_else(|_| die(&format!("bad port {v}")))
        };
        match flag.as_str() {
            "--accelo-port" => ap = port(&v),
            "--continuum-port" => cp = port(&v),
            "--seed" => seed = v,
            "--host" => host = v,
            "--client-id" => accelo.client_id = v,
            "--client-secret" => accelo.client_secret = v,
            "--deployment" => accelo.deployment = v,
            "--rate-limit" => {
                accelo.rate_limit_per_hour = v.parse().unwrap_or_else(|_| die("bad --rate-limit"))
            }
            "--continuum-token" => continuum.api_token = v,
            "--integrator-user" => continuum.integrator_user = v,
            _ => die(&format!("unknown flag {flag}")),
        }
    }
    let ip: IpAddr = host
        .parse()
        .unwrap_or_else(|_| die(&format!("bad --host {host}")));
    let seed = Seed::load(&seed).unwrap_or_else(|e| die(&e));
    let s = start(
        SocketAddr::new(ip, ap),
        SocketAddr::new(ip, cp),
        accelo,
        continuum,
        seed,
    )
    .await
    .unwrap_or_else(|e| die(&format!("cannot bind: {e}")));
    println!(
        "standins: accelo={} continuum={}",
        s.accelo_url, s.continuum_url
    );
    std::future::pending::<()>().await;
}

fn die(msg: &str) -> ! {
    eprintln!("standins: {msg}\n{USAGE}");
    std::process::exit(2)
}
