//! Helpers for the end-to-end run (`tests/workerd/`): start the worker in workerd through
//! `wrangler dev` against the in-process stand-ins, talk to it as Continuum and as an operator,
//! and look at what reached the Accelo stand-in.

use std::fs::File;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use standins::{RequestRecord, Standins};

pub const USER: &str = "acme";
pub const PASSWORD: &str = "local-integrator-password";
pub const ADMIN_TOKEN: &str = "local-admin-token";
pub const WEBHOOK_SECRET: &str = "local-webhook-secret";
/// How often and how long to poll for the bridge's asynchronous work.
pub const POLL: Duration = Duration::from_millis(200);
pub const PATIENCE: Duration = Duration::from_secs(30);
/// wrangler dev serves the already built worker: it starts in seconds.
const STARTUP_PATIENCE: Duration = Duration::from_secs(3 * 60);
/// How long a worker may take to shut down before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// Secrets for `wrangler dev`, written to a temp env file so that a developer's `.dev.vars`
/// (which may point at real APIs) never takes part in a test run.
pub const SECRETS: &[(&str, &str)] = &[
    ("CONTINUUM_INTEGRATOR_PASSWORD", PASSWORD),
    ("CONTINUUM_API_TOKEN", "local-continuum-token"),
    ("ACCELO_CLIENT_ID", "local-client"),
    ("ACCELO_CLIENT_SECRET", "local-secret"),
    ("ACCELO_WEBHOOK_SECRET", WEBHOOK_SECRET),
    ("ADMIN_TOKEN", ADMIN_TOKEN),
];

pub type Outcome = Result<(), String>;

/// `Err(format!(...))` out of the scenario unless the condition holds.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// `Err` naming `what`, the actual and the expected value unless they are equal.
#[macro_export]
macro_rules! check_eq {
    ($actual:expr, $expected:expr, $what:expr) => {{
        let (a, e) = (&$actual, &$expected);
        if a != e {
            return Err(format!("{}: got {:?}, expected {:?}", $what, a, e));
        }
    }};
}

pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e/ sits in the project root")
        .to_path_buf()
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// Signals a whole process group (npx → node wrangler → workerd, and the build while it runs).
fn signal_group(pgid: u32, signal: i32) {
    // SAFETY: kill(2) with a negative pid only sends a signal; no memory is involved.
    unsafe {
        libc::kill(-(pgid as i32), signal);
    }
}

/// The process groups of the `wrangler dev`s running now.
static LIVE_GROUPS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn live_groups() -> std::sync::MutexGuard<'static, Vec<u32>> {
    LIVE_GROUPS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Kills every running worker's process group: Ctrl-C reaches only our own group.
pub fn kill_all_workers() {
    for pgid in live_groups().iter() {
        signal_group(*pgid, libc::SIGKILL);
    }
}

/// `wrangler dev` in its own process group, with state in a fresh temp dir. Dropping it (also
/// while a panic unwinds) stops the whole group.
///
/// The worker is built once (wrangler.toml's `[build] command`) and run from a frozen copy of
/// the build, with a copy of wrangler.toml that has no `[build]`: otherwise wrangler rebuilds and
/// reloads the worker mid-run whenever someone changes a file under src/ (or rebuilds build/).
pub struct Worker {
    /// `None` once stopped.
    child: Option<Child>,
    pub base_url: String,
    pub dir: PathBuf,
    pub log_path: PathBuf,
    /// The frozen wrangler config; KV commands must use it too.
    pub config: PathBuf,
    port: u16,
    /// `--var` arguments, `NAME:value`.
    vars: Vec<String>,
    tmp: Option<tempfile::TempDir>,
}

/// What the e2e run takes from wrangler.toml.
struct ProjectConfig {
    text: String,
    /// `main`, relative to the project root.
    main: String,
    /// `[build] command`.
    build_command: String,
}

fn project_config() -> Result<ProjectConfig, String> {
    let text = std::fs::read_to_string(project_root().join("wrangler.toml"))
        .map_err(|e| format!("wrangler.toml: {e}"))?;
    let (mut main, mut build_command, mut table) = (None, None, String::new());
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            table = t.to_string();
        }
        let Some((k, v)) = t.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"').to_string();
        match (table.as_str(), k.trim()) {
            ("", "main") => main = Some(v),
            ("[build]", "command") => build_command = Some(v),
            (_, k) if k.starts_with("build.") || k == "build" => {
                return Err(format!(
                    "wrangler.toml sets `build` in a form the e2e run does not read: {t}"
                ));
            }
            _ => {}
        }
    }
    Ok(ProjectConfig {
        main: main.ok_or("wrangler.toml has no `main`")?,
        build_command: build_command.ok_or("wrangler.toml has no `[build] command`")?,
        text,
    })
}

/// Runs the `[build] command` from the project root, output to `log`.
async fn build_worker(cfg: &ProjectConfig, log: &Path) -> Outcome {
    let out = File::create(log).map_err(|e| format!("build log: {e}"))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let status = tokio::process::Command::new("sh")
        .args(["-c", &cfg.build_command])
        .current_dir(project_root())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .await
        .map_err(|e| format!("{}: {e}", cfg.build_command))?;
    if !status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        return Err(format!(
            "`{}` failed ({status}):\n{tail}",
            cfg.build_command
        ));
    }
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_name() == ".tmp" {
            continue; // worker-build's scratch space
        }
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// Copies the built worker (the folder of `main`, from the project root or from another frozen
/// copy) into `dir` and writes `dir/wrangler.toml`: the project's, minus its `[build]` table.
/// Relative paths stay valid: the copy keeps the layout.
fn frozen_config(cfg: &ProjectConfig, from: &Path, dir: &Path) -> Result<PathBuf, String> {
    let main_dir = Path::new(&cfg.main)
        .parent()
        .unwrap_or(Path::new(""))
        .to_path_buf();
    check!(
        !main_dir.as_os_str().is_empty(),
        "wrangler.toml `main` ({}) is not in a build folder",
        cfg.main
    );
    copy_dir(&from.join(&main_dir), &dir.join(&main_dir))
        .map_err(|e| format!("copying {}: {e}", main_dir.display()))?;
    let mut in_build = false;
    let mut config = String::new();
    for line in cfg.text.lines() {
        if line.trim().starts_with('[') {
            in_build = line.trim() == "[build]";
        }
        if !in_build {
            config.push_str(line);
            config.push('\n');
        }
    }
    let path = dir.join("wrangler.toml");
    std::fs::write(&path, config).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

fn temp_dir() -> Result<tempfile::TempDir, String> {
    tempfile::Builder::new()
        .prefix("bridge-e2e-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))
}

/// The last `n` lines of a log file.
fn tail(path: &Path, n: usize) -> String {
    let Ok(f) = File::open(path) else {
        return String::new();
    };
    let lines: Vec<String> = BufReader::new(f).lines().map_while(Result::ok).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Worker {
    /// Builds the worker and starts it from a frozen copy of the build, with every secret.
    pub async fn start(stand: &Standins) -> Result<Worker, String> {
        let tmp = temp_dir()?;
        let project = project_config()?;
        build_worker(&project, &tmp.path().join("build.log")).await?;
        let config = frozen_config(&project, &project_root(), tmp.path())?;
        Self::launch(tmp, config, stand, &[]).await
    }

    /// A second, separate worker from this one's frozen build (no rebuild): its own port, local
    /// state and log, and none of the vars or secrets named in `without`.
    pub async fn start_sibling(
        &self,
        stand: &Standins,
        without: &[&str],
    ) -> Result<Worker, String> {
        let tmp = temp_dir()?;
        let config = frozen_config(&project_config()?, &self.dir, tmp.path())?;
        Self::launch(tmp, config, stand, without).await
    }

    /// Writes the env file of secrets and starts `wrangler dev` on a free port.
    async fn launch(
        tmp: tempfile::TempDir,
        config: PathBuf,
        stand: &Standins,
        without: &[&str],
    ) -> Result<Worker, String> {
        let dir = tmp.path().to_path_buf();
        let secrets: String = SECRETS
            .iter()
            .filter(|(k, _)| !without.contains(k))
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect();
        std::fs::write(dir.join("secrets.env"), secrets).map_err(|e| format!("env file: {e}"))?;
        let port = free_port()?;
        let vars = [
            format!("ACCELO_API_URL:{}", stand.accelo_url),
            format!("CONTINUUM_API_URL:{}", stand.continuum_url),
            format!("CONTINUUM_INTEGRATOR_USER:{USER}"),
            format!("PUBLIC_URL:http://127.0.0.1:{port}"),
            // Short back-offs, so that retries happen within a scenario's patience.
            "RETRY_BASE_SECONDS:1".into(),
            "RECHECK_SECONDS:2".into(),
        ]
        .into_iter()
        .filter(|v| v.split_once(':').is_none_or(|(k, _)| !without.contains(&k)))
        .collect();
        let mut worker = Worker {
            child: None,
            base_url: format!("http://127.0.0.1:{port}"),
            log_path: dir.join("wrangler.log"),
            dir,
            config,
            port,
            vars,
            tmp: Some(tmp),
        };
        worker.start_again().await?;
        Ok(worker)
    }

    /// Starts `wrangler dev` (again, after [`Worker::stop`]): same port, config, secrets and
    /// local state; its output goes on in the same log.
    pub async fn start_again(&mut self) -> Outcome {
        check!(self.child.is_none(), "the worker is already running");
        // Until the old workerd is gone, the port is not free.
        let port = self.port;
        wait_for(&format!("port {port} to be free"), || async {
            TcpListener::bind(("127.0.0.1", port)).ok().map(drop)
        })
        .await?;
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(|e| format!("log file: {e}"))?;
        let err_log = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new("npx");
        cmd.current_dir(project_root())
            .args(["wrangler", "dev", "--config"])
            .arg(&self.config)
            .args(["--ip", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .arg("--inspector-port")
            .arg(free_port()?.to_string())
            .arg("--persist-to")
            .arg(self.dir.join("state"))
            .arg("--env-file")
            .arg(self.dir.join("secrets.env"))
            .arg("--show-interactive-dev-session=false");
        for v in &self.vars {
            cmd.arg("--var").arg(v);
        }
        let child = cmd
            .env("WRANGLER_SEND_METRICS", "false")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot run npx wrangler dev: {e}"))?;
        live_groups().push(child.id());
        self.child = Some(child);
        self.wait_healthy().await.map_err(|e| {
            format!(
                "{e}\n--- last 60 lines of the wrangler log ---\n{}",
                self.log_tail(60)
            )
        })
    }

    /// Polls `/healthz` until `200 ok`; fails at once if wrangler exits (build error, port taken).
    async fn wait_healthy(&mut self) -> Result<(), String> {
        let http = client();
        let url = format!("{}/healthz", self.base_url);
        let started = Instant::now();
        let mut next_note = Duration::from_secs(30);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                return Err(format!(
                    "wrangler dev exited ({status}) before /healthz answered"
                ));
            }
            if let Ok(r) = http.get(&url).send().await {
                if r.status() == 200 && r.text().await.unwrap_or_default().trim() == "ok" {
                    return Ok(());
                }
            }
            let waited = started.elapsed();
            if waited > STARTUP_PATIENCE {
                return Err(format!("/healthz not ok after {waited:?}"));
            }
            if waited > next_note {
                eprintln!(
                    "e2e: still waiting for wrangler dev after {}s",
                    waited.as_secs()
                );
                next_note += Duration::from_secs(30);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The last `n` lines of wrangler's output.
    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.log_path, n)
    }

    /// Keeps the temp dir (log, local state) after the run, for a post-mortem (the run does so
    /// after a failure, or always with `E2E_KEEP=1`).
    pub fn keep_dir(&mut self) -> PathBuf {
        if let Some(t) = self.tmp.take() {
            let _ = t.keep();
        }
        self.dir.clone()
    }

    /// Stops the whole process group: SIGTERM, then SIGKILL after `grace` (at once, as in a
    /// crash, when it is zero). The temp dir stays until the worker is dropped. Blocks the thread
    /// while it waits.
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pgid = child.id();
        if !grace.is_zero() {
            signal_group(pgid, libc::SIGTERM);
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        // Even when npx itself has exited, workerd may live on in the group.
        signal_group(pgid, libc::SIGKILL);
        let _ = child.wait();
        live_groups().retain(|g| *g != pgid);
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop(STOP_GRACE);
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

/// Polls `probe` every [`POLL`] until it yields a value, for at most [`PATIENCE`].
pub async fn wait_for<T, F, Fut>(what: &str, mut probe: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = probe().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "timed out after {}s waiting for {what}",
                PATIENCE.as_secs()
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// How a request to the worker authenticates.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    None,
    Basic(&'a str, &'a str),
    Bearer(&'a str),
}

/// A worker answer, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub www_authenticate: Option<String>,
    pub body: String,
    pub elapsed: Duration,
}

impl Reply {
    pub fn json(&self) -> Result<Value, String> {
        serde_json::from_str(&self.body)
            .map_err(|e| format!("answer is not JSON ({e}): {}", self.body))
    }

    /// `Err` with the whole answer unless the status is `want`.
    pub fn expect(&self, want: u16) -> Result<&Self, String> {
        check!(
            self.status == want,
            "expected HTTP {want}, got {} {:?}: {}",
            self.status,
            self.content_type,
            self.body
        );
        Ok(self)
    }

    /// `Err` unless the answer is `200 {"accepted": n}`.
    pub fn expect_accepted(&self, n: u64) -> Result<&Self, String> {
        check_eq!(
            self.expect(200)?.json()?["accepted"],
            json!(n),
            "accepted count"
        );
        Ok(self)
    }

    /// `Err` unless the answer is `200 <Result><Accepted>n</Accepted></Result>`, as XML.
    pub fn expect_accepted_xml(&self, n: u64) -> Result<&Self, String> {
        let want = format!("<Result><Accepted>{n}</Accepted></Result>");
        check_eq!(self.expect(200)?.body.trim(), want, "XML answer");
        check!(
            self.content_type.contains("xml"),
            "XML answer content type {:?}",
            self.content_type
        );
        Ok(self)
    }
}

/// Everything the scenarios share: the worker (and its URL), an HTTP client, the stand-ins.
pub struct Ctx {
    pub base_url: String,
    pub state_dir: PathBuf,
    pub config: PathBuf,
    pub log_path: PathBuf,
    pub http: reqwest::Client,
    pub stand: Arc<Standins>,
    /// Restarts keep the port, config, state and log: the fields above stay valid.
    worker: tokio::sync::Mutex<Worker>,
}

impl Ctx {
    pub fn new(worker: Worker, stand: Arc<Standins>) -> Ctx {
        Ctx {
            base_url: worker.base_url.clone(),
            state_dir: worker.dir.join("state"),
            log_path: worker.log_path.clone(),
            config: worker.config.clone(),
            http: client(),
            stand,
            worker: tokio::sync::Mutex::new(worker),
        }
    }

    /// A separate worker (see [`Worker::start_sibling`]) with its own context, on the same
    /// stand-ins; dropping the context stops it.
    pub async fn sibling(&self, without: &[&str]) -> Result<Ctx, String> {
        let worker = self.worker.lock().await;
        let other = worker.start_sibling(&self.stand, without).await?;
        Ok(Ctx::new(other, self.stand.clone()))
    }

    /// Stops the worker (see [`Worker::stop`]) without blocking the other tasks.
    pub async fn stop_worker(&self, grace: Duration) {
        let mut worker = self.worker.lock().await;
        tokio::task::block_in_place(|| worker.stop(grace));
    }

    /// Starts the stopped worker again (see [`Worker::start_again`]).
    pub async fn start_worker_again(&self) -> Outcome {
        self.worker.lock().await.start_again().await
    }

    /// Stops the worker; after a failure, keeps its temp dir and adds where, and the end of its
    /// log, to the error.
    pub async fn shut_down(&self, outcome: Outcome) -> Outcome {
        self.stop_worker(STOP_GRACE).await;
        if let Err(e) = outcome {
            return Err(format!(
                "{e}\n--- last 30 lines of its wrangler log (kept in {}) ---\n{}",
                self.keep_dir().await.display(),
                self.log_tail(30)
            ));
        }
        Ok(())
    }

    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.log_path, n)
    }

    /// See [`Worker::keep_dir`].
    pub async fn keep_dir(&self) -> PathBuf {
        self.worker.lock().await.keep_dir()
    }

    pub fn callback_path() -> String {
        format!("/continuum/{USER}")
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        auth: Auth<'_>,
        content_type: Option<&str>,
        body: impl Into<Vec<u8>>,
    ) -> Result<Reply, String> {
        let headers: Vec<(&str, &str)> = content_type
            .map(|ct| ("Content-Type", ct))
            .into_iter()
            .collect();
        self.send_with(method, path, auth, &headers, body).await
    }

    /// [`Ctx::send`] with any headers.
    pub async fn send_with(
        &self,
        method: &str,
        path: &str,
        auth: Auth<'_>,
        headers: &[(&str, &str)],
        body: impl Into<Vec<u8>>,
    ) -> Result<Reply, String> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let mut rb = self
            .http
            .request(method, format!("{}{path}", self.base_url));
        rb = match auth {
            Auth::None => rb,
            Auth::Basic(u, p) => rb.basic_auth(u, Some(p)),
            Auth::Bearer(t) => rb.bearer_auth(t),
        };
        for (name, value) in headers {
            rb = rb.header(*name, *value);
        }
        let body = body.into();
        if !body.is_empty() {
            rb = rb.body(body);
        }
        let started = Instant::now();
        let r = rb.send().await.map_err(|e| format!("{path}: {e}"))?;
        let header = |n: &str| {
            r.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (status, content_type, www_authenticate) = (
            r.status().as_u16(),
            header("content-type").unwrap_or_default(),
            header("www-authenticate"),
        );
        let body = r
            .text()
            .await
            .map_err(|e| format!("{path}: reading the answer: {e}"))?;
        Ok(Reply {
            status,
            content_type,
            www_authenticate,
            body,
            elapsed: started.elapsed(),
        })
    }

    /// A callback delivery sent with `Transfer-Encoding: chunked`, so without a Content-Length:
    /// the size limit must hold for the bytes, not for what the client declares. Returns the
    /// status code.
    pub async fn post_chunked(&self, content_type: &str, body: &[u8]) -> Result<u16, String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.base_url.trim_start_matches("http://");
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {}\r\nContent-Type: {content_type}\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            Self::callback_path(),
            base64(format!("{USER}:{PASSWORD}").as_bytes())
        );
        let mut wire = head.into_bytes();
        for chunk in body.chunks(16 * 1024) {
            wire.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            wire.extend_from_slice(chunk);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n\r\n");
        // The worker may answer (and close) before reading everything: a failed write is fine.
        let _ = s.write_all(&wire).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer);
        answer
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| format!("no HTTP status in the answer to a chunked request: {answer:?}"))
    }

    /// A callback delivery with the right credentials.
    pub async fn post_callback(
        &self,
        content_type: &str,
        body: impl Into<Vec<u8>>,
    ) -> Result<Reply, String> {
        self.send(
            "POST",
            &Self::callback_path(),
            Auth::Basic(USER, PASSWORD),
            Some(content_type),
            body,
        )
        .await
    }

    /// A notify by GET: the callback URL with `?TicketID=<id>` (or without a query).
    pub async fn get_notify(&self, ticket_id: Option<&str>) -> Result<Reply, String> {
        let query = ticket_id
            .map(|id| format!("?TicketID={id}"))
            .unwrap_or_default();
        let path = format!("{}{query}", Self::callback_path());
        self.send("GET", &path, Auth::Basic(USER, PASSWORD), None, "")
            .await
    }

    /// Delivers JSON tickets and insists on `200 {"accepted": n}`.
    pub async fn post_ticket(&self, body: &Value, accepted: u64) -> Result<Reply, String> {
        let r = self
            .post_callback("application/json", body.to_string())
            .await?;
        r.expect_accepted(accepted)?;
        Ok(r)
    }

    pub async fn admin(&self, method: &str, path: &str) -> Result<Reply, String> {
        self.send(method, path, Auth::Bearer(ADMIN_TOKEN), None, Vec::new())
            .await
    }

    pub async fn admin_get(&self, path: &str) -> Result<Value, String> {
        self.admin("GET", path).await?.expect(200)?.json()
    }

    pub async fn status(&self) -> Result<Value, String> {
        self.admin_get("/admin/status").await
    }

    /// The ticket's sync record, `None` while the bridge does not know the ticket (404).
    pub async fn ticket_record(&self, id: &str) -> Result<Option<Value>, String> {
        let r = self.admin("GET", &format!("/admin/tickets/{id}")).await?;
        match r.status {
            404 => Ok(None),
            _ => r.expect(200)?.json().map(Some),
        }
    }

    /// Waits until the bridge has finished with the ticket (no job of it left pending, state
    /// no longer pending or retrying), then a little longer so that any stray call would show.
    pub async fn settle(&self, id: &str) -> Result<Value, String> {
        let done = |rec: &Value| {
            let state = rec["state"].as_str().unwrap_or("");
            let queued = rec["queue"]
                .as_array()
                .is_some_and(|q| q.iter().any(|j| j["state"] == "pending"));
            !queued && !matches!(state, "" | "pending" | "retrying")
        };
        wait_for(&format!("ticket {id} to settle"), || async {
            self.ticket_record(id)
                .await
                .ok()
                .flatten()
                .filter(|r| done(r))
        })
        .await?;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        self.ticket_record(id)
            .await?
            .ok_or_else(|| format!("ticket {id} vanished"))
    }

    /// Issues whose description holds the line `Continuum ticket: <id>`.
    pub fn issues_for(&self, ticket_id: &str) -> Vec<Value> {
        let line = format!("Continuum ticket: {ticket_id}");
        self.stand
            .accelo_state()
            .issues
            .into_iter()
            .filter(|i| {
                i["description"]
                    .as_str()
                    .is_some_and(|d| d.lines().any(|l| l.trim() == line))
            })
            .collect()
    }

    /// Waits for the ticket's issue, until `ready` accepts it; insists that there is only one.
    pub async fn wait_issue(
        &self,
        ticket_id: &str,
        ready: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        let issue = wait_for(
            &format!("the Accelo issue of ticket {ticket_id}"),
            || async { self.issues_for(ticket_id).into_iter().find(|i| ready(i)) },
        )
        .await
        .map_err(|e| {
            format!(
                "{e}; its issues now: {}",
                brief(&self.issues_for(ticket_id))
            )
        })?;
        self.one_issue(ticket_id)?;
        Ok(issue)
    }

    /// The ticket's only issue (more than one is a duplicate).
    pub fn one_issue(&self, ticket_id: &str) -> Result<Value, String> {
        let issues = self.issues_for(ticket_id);
        check!(
            issues.len() == 1,
            "ticket {ticket_id}: expected exactly one Accelo issue, found {}: {}",
            issues.len(),
            brief(&issues)
        );
        Ok(issues[0].clone())
    }

    pub fn activities_on(&self, issue_id: &str) -> Vec<Value> {
        self.stand
            .accelo_state()
            .activities
            .into_iter()
            .filter(|a| a["against_type"] == "issue" && a["against_id"] == issue_id)
            .collect()
    }

    /// Requests the Accelo stand-in received, in order.
    pub fn accelo_requests(&self, method: &str, path: &str) -> Vec<RequestRecord> {
        self.stand
            .accelo_requests()
            .into_iter()
            .filter(|r| r.method == method && r.path == path)
            .collect()
    }

    /// Bodies of the `PUT /issues/{id}` calls made so far.
    pub fn issue_puts(&self, issue_id: &str) -> Vec<Value> {
        self.accelo_requests("PUT", &format!("/api/v0/issues/{issue_id}"))
            .into_iter()
            .map(|r| r.body)
            .collect()
    }

    /// `wrangler kv key put` into the worker's local MAPPINGS (works while wrangler dev runs);
    /// the value is raw text, so that broken documents can be put too.
    pub async fn kv_put(&self, key: &str, value: &str) -> Outcome {
        let put = ["wrangler", "kv", "key", "put", "--binding", "MAPPINGS"];
        self.run_local("npx", &put, &[key, value]).await
    }

    /// Every document of a mappings folder, through the project's own script.
    pub async fn load_mappings(&self, dir: &Path) -> Outcome {
        let dir = dir.to_string_lossy();
        self.run_local("bash", &["scripts/load-mappings.sh", "--dir", &dir], &[])
            .await
    }

    /// [`run_tool`] on the worker's local state: `args`, the frozen config and local state, `rest`.
    async fn run_local(&self, program: &str, args: &[&str], rest: &[&str]) -> Outcome {
        let (state, config) = (
            self.state_dir.to_string_lossy(),
            self.config.to_string_lossy(),
        );
        let local = ["--config", &config, "--local", "--persist-to", &state];
        run_tool(program, &[args, &local, rest].concat()).await
    }
}

/// Runs a project tool from the project root; `Err` with its output when it fails.
async fn run_tool(program: &str, args: &[&str]) -> Outcome {
    let out = tokio::process::Command::new(program)
        .args(args)
        .current_dir(project_root())
        .env("WRANGLER_SEND_METRICS", "false")
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("{program}: {e}"))?;
    check!(
        out.status.success(),
        "`{program} {}` failed ({}): {}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// A complete JSON ticket for site S100 (mapped to Accelo company 39); `fields` override or add
/// (a `null` removes the field).
pub fn ticket(id: &str, fields: Value) -> Value {
    let mut t = json!({
        "TicketID": id,
        "Subject": format!("e2e ticket {id}"),
        "Description": format!("Raised by the e2e suite for {id}."),
        "CreatedDate": "2026-12-04T09:15:00Z",
        "UpdatedDate": "2026-12-04T09:15:00Z",
        "Status": "New",
        "Priority": "Medium",
        "TicketType": "Incident",
        "AssignTo": "NOC Team",
        "SiteCode": "S100",
        "SiteName": "Acme Dental",
        "Device": format!("DEV-{id}"),
        "RegID": "70000001",
        "Event": "Created"
    });
    if let (Some(base), Value::Object(extra)) = (t.as_object_mut(), fields) {
        for (k, v) in extra {
            match v {
                Value::Null => base.remove(&k),
                v => base.insert(k, v),
            };
        }
    }
    t
}

/// Issues as a short text for failure messages (descriptions can be 256 KiB).
fn brief(issues: &[Value]) -> String {
    let fields = [
        "id",
        "title",
        "status",
        "issue_priority",
        "assignee",
        "against_id",
    ];
    let short: Vec<Value> = issues
        .iter()
        .map(|i| {
            fields
                .iter()
                .map(|f| (f.to_string(), i[*f].clone()))
                .collect()
        })
        .collect();
    Value::from(short).to_string()
}

fn base64(input: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                ABC[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// An Accelo value as text (the API returns ids and numbers as strings).
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
