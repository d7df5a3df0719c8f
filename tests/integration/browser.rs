//! A real headless Chromium for the page's tests, driven over the DevTools protocol.
//!
//! The protocol runs over `--remote-debugging-pipe` (JSON messages ended by NUL on the
//! browser's fds 3 and 4), so there is no debugging port to find or race for and no WebSocket
//! or CDP crate to build: a shell maps our pipes onto those fds. Chromium is Debian's package;
//! [`chromium`] installs it (apt-get, as root) when it is missing. A test that cannot start it
//! fails and says why. Browsers run one at a time: on two cores, several at once made every
//! page slow enough to blur what a test measures.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin};
use tokio::sync::oneshot;

const CHROMIUM: &str = "/usr/bin/chromium";

/// The path of Chromium, installing Debian's package first if it is missing (once per run).
pub fn chromium() -> PathBuf {
    static INSTALLED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = INSTALLED.get_or_init(|| {
        if Path::new(CHROMIUM).exists() {
            return Ok(CHROMIUM.into());
        }
        let apt = |args: &[&str]| {
            std::process::Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .output()
                .map_err(|e| format!("cannot run apt-get: {e}"))
                .and_then(|out| match out.status.success() {
                    true => Ok(()),
                    false => Err(format!(
                        "apt-get {} failed: {}",
                        args.join(" "),
                        String::from_utf8_lossy(&out.stderr).trim()
                    )),
                })
        };
        apt(&["update", "-q"])?;
        apt(&["install", "-y", "-q", "chromium"])?;
        match Path::new(CHROMIUM).exists() {
            true => Ok(CHROMIUM.into()),
            false => Err(format!(
                "apt-get installed chromium, but {CHROMIUM} is missing"
            )),
        }
    });
    match found {
        Ok(path) => path.clone(),
        Err(why) => panic!("cannot start Chromium for the browser tests: {why}"),
    }
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// One headless Chromium with one page.
pub struct Browser {
    child: Child,
    stdin: tokio::sync::Mutex<ChildStdin>,
    pending: Pending,
    /// Console messages and uncaught exceptions of the page, for failure reports.
    console: Arc<Mutex<Vec<String>>>,
    next: AtomicU64,
    session: String,
    /// Where the page's downloads land.
    pub downloads: TempDir,
    profile: TempDir,
    _one_at_a_time: tokio::sync::OwnedMutexGuard<()>,
}

impl Browser {
    /// Starts Chromium (waiting for any other test's to close) with a blank page.
    pub async fn start() -> Browser {
        static TURN: OnceLock<Arc<tokio::sync::Mutex<()>>> = OnceLock::new();
        let turn = TURN.get_or_init(Arc::default).clone().lock_owned().await;
        let chromium = chromium();
        let profile = tempfile::tempdir().unwrap();
        let downloads = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(profile.path().join("chromium.log")).unwrap();
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            // Our stdin and stdout become the browser's fds 3 and 4, the protocol's pipe.
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 </dev/null >/dev/null"#)
            .arg(&chromium)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--remote-debugging-pipe",
                "--window-size=1000,700",
            ])
            .arg(format!(
                "--user-data-dir={}",
                profile.path().join("profile").display()
            ))
            .arg("about:blank")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start Chromium ({}): {e}", chromium.display()));
        let stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let pending: Pending = Arc::default();
        let console: Arc<Mutex<Vec<String>>> = Arc::default();
        let (p, c) = (pending.clone(), console.clone());
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                let n = match stdout.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                buf.extend_from_slice(&chunk[..n]);
                while let Some(end) = buf.iter().position(|&b| b == 0) {
                    let message: Vec<u8> = buf.drain(..=end).collect();
                    let Ok(value) = serde_json::from_slice::<Value>(&message[..end]) else {
                        continue;
                    };
                    dispatch(value, &p, &c);
                }
            }
        });
        let mut browser = Browser {
            child,
            stdin: tokio::sync::Mutex::new(stdin),
            pending,
            console,
            next: AtomicU64::new(1),
            session: String::new(),
            downloads,
            profile,
            _one_at_a_time: turn,
        };
        let target = browser
            .browser_call("Target.createTarget", json!({ "url": "about:blank" }))
            .await;
        let target = target["targetId"].as_str().unwrap().to_string();
        let attached = browser
            .browser_call(
                "Target.attachToTarget",
                json!({ "targetId": target, "flatten": true }),
            )
            .await;
        browser.session = attached["sessionId"].as_str().unwrap().to_string();
        browser.call("Page.enable", json!({})).await;
        browser.call("Runtime.enable", json!({})).await;
        let path = browser.downloads.path().to_str().unwrap().to_string();
        browser
            .browser_call(
                "Browser.setDownloadBehavior",
                json!({ "behavior": "allow", "downloadPath": path }),
            )
            .await;
        browser
    }

    /// A command to the browser itself.
    async fn browser_call(&self, method: &str, params: Value) -> Value {
        self.send(method, params, None).await
    }

    /// A command to the page.
    pub async fn call(&self, method: &str, params: Value) -> Value {
        self.send(method, params, Some(self.session.clone())).await
    }

    async fn send(&self, method: &str, params: Value, session: Option<String>) -> Value {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = Value::String(session);
        }
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        {
            let mut stdin = self.stdin.lock().await;
            if let Err(e) = stdin.write_all(&bytes).await {
                panic!("Chromium is gone ({e}); its log:\n{}", self.log());
            }
            stdin.flush().await.unwrap();
        }
        let answer = match tokio::time::timeout(Duration::from_secs(60), rx).await {
            Ok(Ok(answer)) => answer,
            _ => panic!("Chromium did not answer {method}; its log:\n{}", self.log()),
        };
        if let Some(error) = answer.get("error") {
            panic!("Chromium refused {method}: {error}");
        }
        answer["result"].clone()
    }

    /// Opens `url` and waits for it to load.
    pub async fn open(&self, url: &str) {
        self.call("Page.navigate", json!({ "url": url })).await;
        self.wait_for(
            "document.readyState === 'complete'",
            Duration::from_secs(30),
        )
        .await;
    }

    /// Evaluates `expression` in the page (awaiting a promise), returning its value.
    pub async fn eval(&self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
            )
            .await;
        if let Some(e) = result.get("exceptionDetails") {
            panic!("the page threw on `{expression}`: {e}");
        }
        result["result"]["value"].clone()
    }

    /// Waits until `condition` (a JavaScript expression) is true.
    pub async fn wait_for(&self, condition: &str, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self.eval(condition).await != Value::Bool(true) {
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "the page never got to `{condition}`; status: {:?}; console: {:?}",
                    self.status().await,
                    self.console()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The page's status line: its state (`busy`, `ok`, `error`) and text.
    pub async fn status(&self) -> (String, String) {
        let value = self
            .eval("[document.getElementById('status').dataset.state, document.getElementById('status').textContent]")
            .await;
        let text = |i: usize| value[i].as_str().unwrap_or_default().to_string();
        (text(0), text(1))
    }

    /// Waits for the status line to show `state` with `text` in it, and returns its text.
    pub async fn wait_status(&self, state: &str, text: &str, within: Duration) -> String {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let (now, shown) = self.status().await;
            if now == state && shown.contains(text) {
                return shown;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "the page never showed {state} '{text}'; it shows {now} '{shown}'; console: {:?}",
                    self.console()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the element `selector` matches.
    pub async fn click(&self, selector: &str) {
        let clicked = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({}); if (!e) return false; e.click(); return true; }})()",
                serde_json::to_string(selector).unwrap()
            ))
            .await;
        assert_eq!(
            clicked,
            Value::Bool(true),
            "nothing on the page matches {selector}"
        );
    }

    /// Chooses `file` in the file input `selector`, as a person picking it would.
    pub async fn choose_file(&self, selector: &str, file: &Path) {
        let document = self.call("DOM.getDocument", json!({ "depth": 0 })).await;
        let root = document["root"]["nodeId"].clone();
        let found = self
            .call(
                "DOM.querySelector",
                json!({ "nodeId": root, "selector": selector }),
            )
            .await;
        self.call(
            "DOM.setFileInputFiles",
            json!({ "nodeId": found["nodeId"], "files": [file.to_str().unwrap()] }),
        )
        .await;
    }

    /// A screenshot of the page, kept under the target directory as a test artifact: its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let shot = self
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-artifacts");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        println!("screenshot of the page: {}", path.display());
        path
    }

    /// Waits for a finished download named `name` and returns its bytes.
    pub async fn downloaded(&self, name: &str, within: Duration) -> Vec<u8> {
        let path = self.downloads.path().join(name);
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let partial = crate::support::list_dir(self.downloads.path())
                .iter()
                .any(|p| p.extension().is_some_and(|e| e == "crdownload"));
            if path.exists() && !partial {
                return std::fs::read(&path).unwrap();
            }
            if tokio::time::Instant::now() > deadline {
                panic!("no download of {name}; status: {:?}", self.status().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What the page logged.
    pub fn console(&self) -> Vec<String> {
        self.console.lock().unwrap().clone()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.profile.path().join("chromium.log")).unwrap_or_default()
    }

    /// Closes the browser and waits for it to go.
    pub async fn close(mut self) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut bytes =
            serde_json::to_vec(&json!({ "id": id, "method": "Browser.close" })).unwrap();
        bytes.push(0);
        let _ = self.stdin.lock().await.write_all(&bytes).await;
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

fn dispatch(value: Value, pending: &Pending, console: &Mutex<Vec<String>>) {
    if let Some(id) = value.get("id").and_then(Value::as_u64) {
        if let Some(tx) = pending.lock().unwrap().remove(&id) {
            let _ = tx.send(value);
        }
        return;
    }
    let line = match value["method"].as_str() {
        Some("Runtime.consoleAPICalled") => value["params"]["args"].as_array().map(|args| {
            args.iter()
                .map(|a| a["value"].to_string())
                .collect::<Vec<_>>()
                .join(" ")
        }),
        Some("Runtime.exceptionThrown") => {
            Some(value["params"]["exceptionDetails"]["exception"]["description"].to_string())
        }
        _ => None,
    };
    if let Some(line) = line {
        console.lock().unwrap().push(line);
    }
}
