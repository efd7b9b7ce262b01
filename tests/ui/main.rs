//! The Callback UI in a real browser: Debian's `chromium` headless driven through
//! `chromium-driver` (WebDriver, via fantoccini), both installed by ./test.sh. One test binary
//! (`cargo test --test ui`) because it needs the browser; each test starts its own chromedriver
//! on a free port with a fresh profile.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

mod admin;
mod browser;
mod callbacks;
mod callin;
mod login;
mod rules;
mod tools;

use boomerang::api::admin::auth::{Role, hash_password};
use boomerang::config::AdminUserSpec;

/// Every test user's password.
pub const PASSWORD: &str = "correct horse";

/// One user per role, and `sales` (Supervisor, Sales_VQ_CB only): what the tests log in as.
pub fn users() -> Vec<AdminUserSpec> {
    let hash = hash_password(PASSWORD).unwrap();
    let user = |name: &str, roles: &[Role], queues: Option<&[&str]>| AdminUserSpec {
        name: name.into(),
        password_hash: hash.clone(),
        roles: roles.to_vec(),
        queues: queues.map(|q| q.iter().map(|s| s.to_string()).collect()),
    };
    vec![
        user("root", &[Role::Administrator], None),
        user("sup", &[Role::Supervisor], None),
        user("mon", &[Role::Monitor], None),
        user("dev", &[Role::Developer], None),
        user("sales", &[Role::Supervisor], Some(&["Sales_VQ_CB"])),
    ]
}

/// The login form's pre-session cookie (`name=value`) and the token its form carries, as a
/// browser gets them from `GET /ui/login`.
pub async fn login_form(http: &reqwest::Client, url: &str) -> (String, String) {
    let page = http.get(format!("{url}/ui/login")).send().await.unwrap();
    let cookie = page.headers()["set-cookie"].to_str().unwrap().to_string();
    let pair = cookie.split(';').next().unwrap().to_string();
    assert!(pair.starts_with("boomerang_login="), "{cookie}");
    let html = page.text().await.unwrap();
    let token = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    (pair, token)
}

/// Logs `user` in through the UI's form over plain HTTP (form first, as a browser does); the
/// session cookie (`name=value`) and its CSRF token.
pub async fn http_session(http: &reqwest::Client, url: &str, user: &str) -> (String, String) {
    let (pre, token) = login_form(http, url).await;
    let resp = http
        .post(format!("{url}/ui/login"))
        .header("cookie", pre)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "username={user}&password={}&csrf={token}",
            PASSWORD.replace(' ', "+")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "login of {user}");
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    let pair = cookie.split(';').next().unwrap().to_string();
    let csrf = boomerang::ui::csrf_token(pair.trim_start_matches("boomerang_ui="));
    (pair, csrf)
}

/// Posts the url-encoded `body` to `path` in session `cookie`; the answer (redirects not followed
/// when the client says so).
pub async fn http_post(
    http: &reqwest::Client,
    url: &str,
    cookie: &str,
    path: &str,
    body: &str,
) -> reqwest::Response {
    http.post(format!("{url}{path}"))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// The `data` of a JSON administration `GET path`, with the UI session's token as bearer (the
/// UI's session is the administration's): how the tests check what a form changed.
pub async fn api_get(
    http: &reqwest::Client,
    url: &str,
    cookie: &str,
    path: &str,
) -> serde_json::Value {
    let token = cookie.trim_start_matches("boomerang_ui=");
    let v: serde_json::Value = http
        .get(format!("{url}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["data"].clone()
}
