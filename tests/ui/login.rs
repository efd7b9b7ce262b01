//! Login and logout, what each role sees, session expiry on the engine's clock, CSRF, the
//! cookie's flags and the Content-Security-Policy.

use boomerang::clock::ManualClock;
use chrono::TimeDelta;

use crate::browser::Browser;
use crate::common;
use crate::{PASSWORD, users};

/// The demo engine without SIP on `clock`, with the test users; its base URL.
async fn engine(
    dir: &std::path::Path,
    clock: boomerang::clock::SharedClock,
) -> (boomerang::engine::Engine, String) {
    let mut spec = common::demo_spec();
    spec.listeners.sip_udp.clear();
    spec.listeners.sip_tcp.clear();
    spec.admin.users = users();
    common::start_engine_from_file(dir, common::spec_text(&spec), clock).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_sees_its_tabs_and_buttons() {
    let dir = tempfile::tempdir().unwrap();
    let (_e, url) = engine(dir.path(), boomerang::clock::SystemClock::shared()).await;
    let b = Browser::start(&url).await;
    let expect: [(&str, &[&str], bool); 4] = [
        (
            "root",
            &[
                "Callback",
                "Call-In",
                "Queues",
                "Rules",
                "Agents",
                "Developer",
                "Users",
                "Audit",
            ],
            true,
        ),
        (
            "sup",
            &["Callback", "Call-In", "Queues", "Rules", "Agents"],
            true,
        ),
        ("mon", &["Callback", "Call-In", "Rules"], false),
        (
            "dev",
            &[
                "Callback",
                "Call-In",
                "Queues",
                "Rules",
                "Agents",
                "Developer",
            ],
            false,
        ),
    ];
    for (user, tabs, writes) in expect {
        b.login(user, PASSWORD).await;
        b.wait_text("Log out").await;
        assert_eq!(
            b.path().await,
            "/ui/callbacks",
            "{user} lands on the Callback tab"
        );
        assert_eq!(b.tabs().await, tabs, "{user}'s tabs");
        assert_eq!(
            b.has("create").await,
            writes,
            "{user}'s Create Callback button"
        );
        assert_eq!(b.has("bulk").await, writes, "{user}'s Bulk cancel button");
        assert!(b.text("who").await.unwrap().contains(user));
        b.click("logout").await;
        b.wait_text("You are logged out.").await;
        // Logged out means logged out: the tab sends back to the login form.
        b.go("/ui/callbacks").await;
        assert!(
            b.path().await.starts_with("/ui/login"),
            "{user} after logout"
        );
    }
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_forbidden_action_and_expired_session_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(common::monday_9am_utc());
    let (_e, url) = engine(dir.path(), clock.shared()).await;
    let b = Browser::start(&url).await;
    b.login("mon", "not the password").await;
    b.wait_text("Wrong user name").await;
    assert_eq!(
        b.text("error").await.as_deref(),
        Some("Wrong user name or password.")
    );
    assert!(b.path().await.starts_with("/ui/login"));

    b.login("mon", PASSWORD).await;
    b.wait_text("Log out").await;
    // A monitor has no Create button; typing the address gets a clear refusal.
    b.go("/ui/callbacks/new").await;
    let msg = b.text("error").await.unwrap();
    assert!(msg.starts_with("Not allowed:"), "{msg}");
    assert!(msg.contains("WriteCallbacks"), "{msg}");
    // And the tool pages are closed to a monitor as well.
    b.go("/ui/queues").await;
    assert!(b.text("error").await.unwrap().starts_with("Not allowed:"));

    // 21 minutes without a request: the session idles out (admin.session_idle_minutes 20).
    clock.advance(TimeDelta::minutes(21));
    b.go("/ui/callbacks").await;
    assert!(b.path().await.starts_with("/ui/login"));
    assert_eq!(
        b.text("notice").await.as_deref(),
        Some("Your session has expired; please log in again.")
    );
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cookie_is_httponly_and_strict_forms_need_the_csrf_token_and_pages_carry_a_csp() {
    let dir = tempfile::tempdir().unwrap();
    let (e, url) = engine(dir.path(), boomerang::clock::SystemClock::shared()).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (pre, token) = crate::login_form(&http, &url).await;
    let resp = http
        .post(format!("{url}/ui/login"))
        .header("cookie", &pre)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "username=sup&password={}&csrf={token}",
            PASSWORD.replace(' ', "+")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("boomerang_ui="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let pair = cookie.split(';').next().unwrap().to_string();
    // Behind a TLS proxy the cookie is Secure.
    let tls = http
        .post(format!("{url}/ui/login"))
        .header("x-forwarded-proto", "https")
        .header("cookie", &pre)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "username=sup&password={}&csrf={token}",
            PASSWORD.replace(' ', "+")
        ))
        .send()
        .await
        .unwrap();
    assert!(
        tls.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("; Secure")
    );

    let page = http
        .get(format!("{url}/ui/callbacks"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(!html.contains("<script>"), "no inline script");

    // A state change without the form's token is refused and changes nothing.
    let rec = common::book_callback(&e, "Sales_VQ_CB", "+33612345678").await;
    let forged = http
        .post(format!("{url}/ui/callbacks/{}/cancel", rec.id))
        .header("cookie", &pair)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("csrf=0000")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(
        forged
            .text()
            .await
            .unwrap()
            .contains("did not come from your session")
    );
    assert!(!e.callbacks.get(rec.id).await.unwrap().state.is_completed());
    // With the token, it is cancelled.
    let token = boomerang::ui::csrf_token(pair.trim_start_matches("boomerang_ui="));
    let ok = http
        .post(format!("{url}/ui/callbacks/{}/cancel", rec.id))
        .header("cookie", &pair)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    assert!(e.callbacks.get(rec.id).await.unwrap().state.is_completed());

    // In the browser, scripts cannot read the session cookie.
    let b = Browser::start(&url).await;
    b.login("sup", PASSWORD).await;
    b.wait_text("Log out").await;
    let seen =
        b.c.execute("return document.cookie;", vec![])
            .await
            .unwrap();
    assert_eq!(seen, serde_json::json!(""));
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_posted_without_the_forms_pre_session_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_e, url) = engine(dir.path(), boomerang::clock::SystemClock::shared()).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let body = format!("username=sup&password={}", PASSWORD.replace(' ', "+"));
    // Another site's form: right password, but neither the cookie nor the token.
    let forged = http
        .post(format!("{url}/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(
        !forged.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("boomerang_ui="),
        "no session is opened"
    );
    assert!(
        forged
            .text()
            .await
            .unwrap()
            .contains("did not come from this site")
    );
    // The cookie of one form with the token of another is refused too.
    let (pre, _) = crate::login_form(&http, &url).await;
    let (_, other) = crate::login_form(&http, &url).await;
    let mixed = http
        .post(format!("{url}/ui/login"))
        .header("cookie", &pre)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("{body}&csrf={other}"))
        .send()
        .await
        .unwrap();
    assert_eq!(mixed.status(), 403);
    // The browser's own form logs in.
    let (cookie, _) = crate::http_session(&http, &url, "sup").await;
    assert!(cookie.starts_with("boomerang_ui="));
}
