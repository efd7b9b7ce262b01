//! A headless Chromium session for one test: chromedriver on a free loopback port, a fresh
//! profile directory, and helpers to fill forms and read the page.

use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::error::{CmdError, ErrorStatus};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// A browser session; dropping it ends the session's chromedriver (and its Chromium).
pub struct Browser {
    /// The WebDriver session.
    pub c: Client,
    /// The base URL of the engine under test (`http://127.0.0.1:port`).
    pub base: String,
    _driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

/// Whether `e` says the page is not (yet) the one an action expects, so that the action may be
/// tried again on the page being loaded: the element is missing, stale, not interactable or
/// covered. None of these performed the action.
fn transient(e: &CmdError) -> bool {
    matches!(
        e,
        CmdError::Standard(w) if matches!(
            w.error,
            ErrorStatus::NoSuchElement
                | ErrorStatus::StaleElementReference
                | ErrorStatus::ElementNotInteractable
                | ErrorStatus::ElementClickIntercepted
        )
    )
}

/// How many times (100 ms apart) the waiting helpers look: 20 s, for a loaded 2-core machine
/// where a page may take seconds; a wait that succeeds returns at once.
const POLLS: u32 = 200;

/// The chromium binary Debian installs.
fn chromium() -> &'static str {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("chromium")
}

impl Browser {
    /// A headless Chromium 1280×900 pointed at nothing yet, for the engine at `base`.
    pub async fn start(base: &str) -> Browser {
        Self::start_sized(base, 1280, 900).await
    }

    /// As [`Browser::start`], with a window of `w`×`h` pixels.
    pub async fn start_sized(base: &str, w: u32, h: u32) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        // A port reserved for this process (tests/common/ports.rs): one from `bind(:0)`, released
        // before chromedriver binds it, could meanwhile go to another test's engine, and the
        // session would then be asked of that engine.
        let port = crate::common::free_port();
        let driver = tokio::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run chromedriver (apt-get install -y chromium chromium-driver): {e}")
            });
        let url = format!("http://127.0.0.1:{port}");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium(),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage",
                    format!("--window-size={w},{h}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        // Chromedriver (and then Chromium) may be slow to start on a loaded machine: 30 s.
        let mut last = None;
        for _ in 0..300 {
            let conn = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(conn)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => {
                    return Browser {
                        c,
                        base: base.to_string(),
                        _driver: driver,
                        _profile: profile,
                    };
                }
                Err(e) => {
                    last = Some(e.to_string());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        panic!("no WebDriver session: {last:?}");
    }

    /// Opens `path` of the engine.
    pub async fn go(&self, path: &str) {
        self.c.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    /// Types `text` into the field `#id` (cleared first). Waits (up to 20 s) for the field: the
    /// page a click is loading may not be there yet, or may replace the field while it is typed.
    pub async fn fill(&self, id: &str, text: &str) {
        self.retry(id, |e| {
            let text = text.to_string();
            async move {
                e.clear().await?;
                e.send_keys(&text).await
            }
        })
        .await;
    }

    /// Sets the value of `#id` by script (date and time inputs, whose typing is locale-bound),
    /// waiting (up to 20 s) for the field as [`Browser::fill`] does.
    pub async fn set_value(&self, id: &str, value: &str) {
        for _ in 0..POLLS {
            let set = self
                .c
                .execute(
                    "const e = document.getElementById(arguments[0]);
                     if (!e) { return false; }
                     e.value = arguments[1];
                     return true;",
                    vec![json!(id), json!(value)],
                )
                .await;
            // An error is a page being replaced under the script: try again.
            if let Ok(serde_json::Value::Bool(true)) = set {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("#{id} never appeared to set it to {value:?}");
    }

    /// Chooses the option with visible text `text` of the select `#id`, waiting (up to 20 s) for
    /// it as [`Browser::fill`] does.
    pub async fn select(&self, id: &str, text: &str) {
        self.retry(&format!("{id} {text}"), |e| {
            let text = text.to_string();
            async move { e.select_by_label(&text).await }
        })
        .await;
    }

    /// Clicks `#id`, waiting (up to 20 s) for it as [`Browser::fill`] does. A click that failed
    /// because the element was missing, stale or covered did not happen, so it is tried again.
    pub async fn click(&self, id: &str) {
        self.retry(id, |e| async move { e.click().await.map(|_| ()) })
            .await;
    }

    /// Runs `act` on `#what` (its id: the first word of `what`), finding the element again while
    /// `act` or the find fails with an error that says the page is not (yet) the one expected:
    /// no such element, a stale one (the page was replaced), one not interactable or covered.
    async fn retry<F, Fut>(&self, what: &str, act: F)
    where
        F: Fn(Element) -> Fut,
        Fut: std::future::Future<Output = Result<(), CmdError>>,
    {
        let id = what.split(' ').next().unwrap_or(what);
        let mut last = None;
        for _ in 0..POLLS {
            let r = match self.c.find(Locator::Id(id)).await {
                Ok(e) => act(e).await,
                Err(e) => Err(e),
            };
            match r {
                Ok(()) => return,
                Err(e) if transient(&e) => last = Some(e),
                Err(e) => panic!("#{what}: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("#{what}: {last:?}");
    }

    /// Waits (up to 20 s) until an element `#id` exists: the page a click is loading is there.
    pub async fn wait_id(&self, id: &str) {
        for _ in 0..POLLS {
            if self.has(id).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "#{id} never appeared; the page shows:\n{}",
            self.body().await
        );
    }

    /// The text of the first element `at` finds, or `None` when there is none. An element found
    /// on a page that a click is just replacing goes stale before it is read: `None` as well,
    /// and the waiting helpers look again.
    async fn read(&self, at: Locator<'_>) -> Option<String> {
        match self.c.find(at).await {
            Ok(e) => e.text().await.ok(),
            Err(_) => None,
        }
    }

    /// Waits (up to 20 s) until the first element `at` finds (`what`, for the failure) shows
    /// text containing `needle`, and returns that text: after a click the old page (or none)
    /// may still be there for a moment.
    async fn wait_read(&self, at: Locator<'_>, what: &str, needle: &str) -> String {
        let mut last = None;
        for _ in 0..POLLS {
            last = self.read(at).await;
            if let Some(t) = &last
                && t.contains(needle)
            {
                return t.clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{what} never showed {needle:?}; it shows {last:?}");
    }

    /// Waits (up to 20 s) until the first element matching `css` shows text containing
    /// `needle`; that text.
    pub async fn wait_css_text(&self, css: &str, needle: &str) -> String {
        self.wait_read(Locator::Css(css), css, needle).await
    }

    /// The text of `#id`, or `None` when there is no such element (or it went stale).
    pub async fn text(&self, id: &str) -> Option<String> {
        self.read(Locator::Id(id)).await
    }

    /// Waits (up to 20 s) until `#id` shows text containing `needle`, and returns that text.
    pub async fn wait_id_text(&self, id: &str, needle: &str) -> String {
        self.wait_read(Locator::Id(id), &format!("#{id}"), needle)
            .await
    }

    /// Waits (up to 20 s) for the page's `#error` message, after a form was posted: the
    /// click returns before the answer's page has loaded.
    pub async fn wait_error(&self) -> String {
        for _ in 0..POLLS {
            if let Some(t) = self.text("error").await {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the page never showed an #error message:\n{}",
            self.body().await
        );
    }

    /// The text of the whole page.
    pub async fn body(&self) -> String {
        // Between two pages there may be no body yet: empty, and the caller waits.
        match self.c.find(Locator::Css("body")).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Waits (up to 20 s) until the page's text contains `needle`; the text.
    pub async fn wait_text(&self, needle: &str) -> String {
        let mut body = String::new();
        for _ in 0..POLLS {
            body = self.body().await;
            if body.contains(needle) {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the page never showed {needle:?}; it shows:\n{body}");
    }

    /// The current path (and query) of the page.
    pub async fn path(&self) -> String {
        let u = self.c.current_url().await.unwrap();
        match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        }
    }

    /// Waits (up to 20 s) until the page's path and query satisfy `ok`; the path.
    pub async fn wait_path(&self, ok: impl Fn(&str) -> bool) -> String {
        let mut path = String::new();
        for _ in 0..POLLS {
            path = self.path().await;
            if ok(&path) {
                return path;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the address never became as expected: {path}");
    }

    /// Logs in through the form as `user` with `password`.
    pub async fn login(&self, user: &str, password: &str) {
        self.go("/ui/login").await;
        self.fill("username", user).await;
        self.fill("password", password).await;
        self.click("login").await;
    }

    /// The labels of the navigation tabs.
    pub async fn tabs(&self) -> Vec<String> {
        let mut out = Vec::new();
        for e in self.c.find_all(Locator::Css("nav .tabs a")).await.unwrap() {
            out.push(e.text().await.unwrap());
        }
        out
    }

    /// Whether an element `#id` exists.
    pub async fn has(&self, id: &str) -> bool {
        self.c.find(Locator::Id(id)).await.is_ok()
    }

    /// Saves a PNG screenshot of the page to `path`.
    pub async fn screenshot(&self, path: &std::path::Path) {
        let png = self.c.screenshot().await.unwrap();
        std::fs::write(path, png).unwrap();
    }

    /// Ends the session.
    pub async fn close(self) {
        let _ = self.c.close().await;
    }
}
