//! A real browser for the tests: headless Chromium (Debian's `chromium`, which scripts/test installs),
//! driven over its DevTools protocol — open a page, run script in it, wait for what it shows, take a
//! screenshot. The console's tests use it to sign in, watch and press buttons as an operator would.

use awc::ws::{Frame, Message};
use base64::Engine as _;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

type Socket = actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec>;

pub struct Browser {
    child: Child,
    page: Socket,
    next_id: u64,
    _profile: std::path::PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    /// Starts headless Chromium (`$CHROMIUM`, else `chromium`) and attaches to its page.
    pub async fn start() -> Browser {
        let bin = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
        let profile = crate::common::scratch_dir("chromium-profile");
        let mut child = Command::new(&bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--autoplay-policy=no-user-gesture-required",
                "--no-first-run",
                "--hide-scrollbars",
            ])
            .args(["--remote-debugging-port=0", "--window-size=1400,900"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{bin} runs (scripts/test installs Debian's chromium): {e}"));
        let stderr = child.stderr.take().expect("stderr");
        let endpoint = tokio::task::spawn_blocking(move || {
            BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
                .find_map(|l| l.split("DevTools listening on ").nth(1).map(str::to_string))
        })
        .await
        .expect("reads chromium")
        .expect("chromium says where its DevTools listen");
        let port = endpoint
            .split(':')
            .nth(2)
            .and_then(|p| p.split('/').next())
            .expect("port");
        let mut list = awc::Client::default()
            .get(format!("http://127.0.0.1:{port}/json/list"))
            .send()
            .await
            .expect("DevTools answers");
        let targets: Value = list.json().await.expect("targets");
        let page_url = targets
            .as_array()
            .and_then(|t| t.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("a page")
            .to_string();
        let (_, page) = awc::Client::default()
            .ws(page_url)
            .max_frame_size(64 << 20)
            .connect()
            .await
            .expect("attaches to the page");
        Browser {
            child,
            page,
            next_id: 0,
            _profile: profile,
        }
    }

    /// Runs a DevTools command and returns its result.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.page.send(Message::Text(msg.into())).await.expect("sends");
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(20), self.page.next())
                .await
                .expect("chromium answers")
                .expect("open")
                .expect("a frame");
            if let Frame::Text(text) = frame {
                let v: Value = serde_json::from_slice(&text).expect("JSON");
                if v["id"] == id {
                    return v["result"].clone();
                }
            }
        }
    }

    pub async fn open(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url})).await;
    }

    /// The value of `expression` in the page (promises awaited).
    pub async fn eval(&mut self, expression: &str) -> Value {
        let params = json!({"expression": expression, "returnByValue": true, "awaitPromise": true});
        self.call("Runtime.evaluate", params).await["result"]["value"].clone()
    }

    /// Whether `expression` becomes true within `limit`.
    pub async fn until(&mut self, limit: Duration, expression: &str) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            if self.eval(expression).await == Value::Bool(true) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// A PNG of the page into `target/console-<name>.png`; its path.
    pub async fn screenshot(&mut self, name: &str) -> std::path::PathBuf {
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"})).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap_or_default())
            .expect("PNG");
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join(format!("console-{name}.png"));
        std::fs::write(&path, &png).expect("writes the screenshot");
        path
    }
}
