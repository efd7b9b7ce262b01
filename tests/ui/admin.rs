//! Users (Administrators) and the Developer tab in the browser: a user created, changed and
//! deleted through the forms is what the administration then knows; API key validation, the
//! push configuration and outbox; and the refusals the JSON API makes, shown as such.

use crate::browser::Browser;
use crate::common;
use crate::{PASSWORD, users};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_creates_changes_and_deletes_a_user_and_others_may_not() {
    let (_dir, e) = common::start_demo(|spec| spec.admin.users = users()).await;
    let url = format!("http://{}", e.http_addr);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (root, _) = crate::http_session(&http, &url, "root").await;
    let user = |name: &'static str| {
        let (http, url, root) = (http.clone(), url.clone(), root.clone());
        async move {
            let all = crate::api_get(&http, &url, &root, "/admin/users").await;
            all.as_array()
                .unwrap()
                .iter()
                .find(|u| u["name"] == name)
                .cloned()
        }
    };
    let b = Browser::start(&url).await;
    b.login("root", PASSWORD).await;
    b.wait_text("Log out").await;
    b.go("/ui/users").await;
    b.fill("name", "carol").await;
    b.fill("password", "a long password").await;
    b.click("new-role-Monitor").await;
    b.fill("queues", "Sales_VQ_CB").await;
    b.click("create-user").await;
    b.wait_text("User created.").await;
    let carol = user("carol").await.unwrap();
    assert_eq!(carol["roles"], serde_json::json!(["Monitor"]));
    assert_eq!(carol["queues"], serde_json::json!(["Sales_VQ_CB"]));
    // A refusal of the API shows its message: a password too short.
    b.fill("name", "dave").await;
    b.fill("password", "short").await;
    b.click("new-role-Monitor").await;
    b.click("create-user").await;
    let msg = b.wait_error().await;
    assert!(
        msg.starts_with("Not saved:") && msg.contains("password"),
        "{msg}"
    );
    assert!(user("dave").await.is_none());
    // Carol becomes a Supervisor of every queue.
    b.click("role-carol-Monitor").await;
    b.click("role-carol-Supervisor").await;
    b.fill("queues-carol", "").await;
    b.click("save-carol").await;
    b.wait_text("User saved.").await;
    let carol = user("carol").await.unwrap();
    assert_eq!(carol["roles"], serde_json::json!(["Supervisor"]));
    assert!(carol["queues"].is_null());
    // The audit log has both changes.
    b.go("/ui/audit").await;
    b.wait_text("user.update").await;
    assert!(b.body().await.contains("user.create"));
    // Carol logs in, then is deleted: her session ends.
    let carol_b = Browser::start(&url).await;
    carol_b.login("carol", "a long password").await;
    carol_b.wait_text("Log out").await;
    b.go("/ui/users").await;
    b.click("delete-carol").await;
    b.wait_text("User deleted").await;
    assert!(user("carol").await.is_none());
    carol_b.go("/ui/callbacks").await;
    assert!(carol_b.path().await.starts_with("/ui/login"));
    carol_b.close().await;
    b.close().await;

    // A supervisor has no Users tab, and a forged form is refused as the API refuses it.
    let (sup, csrf) = crate::http_session(&http, &url, "sup").await;
    let r = crate::http_post(
        &http,
        &url,
        &sup,
        "/ui/users",
        &format!("csrf={csrf}&name=eve&password=a+long+password&role=Administrator"),
    )
    .await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("Not allowed"));
    assert!(user("eve").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_developer_tab_validates_api_keys_and_shows_push_settings_and_outbox() {
    let (_dir, e) = common::start_demo(|spec| {
        spec.admin.users = users();
        spec.api
            .keys
            .push(common::api_key("mobile-app", "s3cret-key-for-the-ui"));
    })
    .await;
    let url = format!("http://{}", e.http_addr);
    let b = Browser::start(&url).await;
    b.login("dev", PASSWORD).await;
    b.wait_text("Log out").await;
    b.go("/ui/developer").await;
    b.wait_text("Push configuration").await;
    assert!(b.text("push-config").await.unwrap().contains("Attempts"));
    assert!(b.has("outbox").await);
    b.fill("key", "certainly-not-a-key").await;
    b.click("validate-key").await;
    b.wait_text("Not valid").await;
    b.fill("key", "s3cret-key-for-the-ui").await;
    b.click("validate-key").await;
    b.wait_text("Valid: this is the API key “mobile-app”.")
        .await;
    b.go("/ui/developer?outbox=lost").await;
    assert!(
        b.text("outbox-error")
            .await
            .unwrap()
            .contains("is not one of pending, delivered, failed")
    );
    b.close().await;
    // A supervisor may not validate keys (DeveloperTools), even with a forged form.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (sup, csrf) = crate::http_session(&http, &url, "sup").await;
    let r = crate::http_post(
        &http,
        &url,
        &sup,
        "/ui/developer/key",
        &format!("csrf={csrf}&key=x"),
    )
    .await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("Not allowed"));
}
