//! Rules in the browser: a number rule made and tested, a capacity rule from the weekly grid
//! and then from its JSON statement, a region affinity rule, rules assigned to a queue; each
//! checked through the JSON API; and a supervisor refused what the API refuses them.

use crate::browser::Browser;
use crate::common;
use crate::{PASSWORD, users};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_are_edited_through_the_forms_and_assigned_to_queues() {
    let (_dir, e) = common::start_demo(|spec| spec.admin.users = users()).await;
    let url = format!("http://{}", e.http_addr);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (root, _) = crate::http_session(&http, &url, "root").await;
    let get = |path: String| {
        let (http, url, root) = (http.clone(), url.clone(), root.clone());
        async move { crate::api_get(&http, &url, &root, &path).await }
    };
    let rule = |kind: &str, name: &str| get(format!("/admin/rules/{kind}/{name}"));
    let b = Browser::start(&url).await;
    b.login("root", PASSWORD).await;
    b.wait_text("Log out").await;

    // Number rule: France only, premium numbers blocked; then tested.
    b.go("/ui/rules/number/new").await;
    b.fill("name", "FranceOnly").await;
    b.fill("countries", "fr").await;
    b.fill("patterns", "^338").await;
    b.click("save").await;
    b.wait_text("Rule saved.").await;
    let r = rule("number", "FranceOnly").await;
    assert_eq!(r["countries"], json!(["FR"]));
    b.go("/ui/rules?rule=FranceOnly&number=%2B442071838750")
        .await;
    assert!(b.text("verdict").await.unwrap().starts_with("Refused"));

    // Capacity from the grid: Monday 09:00 → 5.
    b.go("/ui/rules/capacity/new").await;
    b.fill("name", "Peak").await;
    b.fill("c_mon_09:00", "5").await;
    b.click("save-grid").await;
    b.wait_text("Rule saved.").await;
    let r = rule("capacity", "Peak").await;
    assert_eq!(r["capacity"]["days"]["mon"]["09:00"], 5);
    // Then from the JSON statement, on the edit form (the grid shows the saved cell).
    b.go("/ui/rules/capacity/Peak").await;
    let cell =
        b.c.find(fantoccini::Locator::Id("c_mon_09:00"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap();
    assert_eq!(cell.as_deref(), Some("5"));
    b.fill(
        "statement",
        r#"{"days": {"tue": {"10:00": 7}}, "duration": 60}"#,
    )
    .await;
    b.click("save-json").await;
    b.wait_text("Rule saved.").await;
    let r = rule("capacity", "Peak").await;
    assert_eq!(r["capacity"]["days"]["tue"]["10:00"], 7);
    assert_eq!(r["capacity"]["days"]["mon"], Value::Null);
    // A statement the book refuses: its message, the rule unchanged.
    b.go("/ui/rules/capacity/Peak").await;
    b.fill("statement", r#"{"days": {}, "duration": 45}"#).await;
    b.click("save-json").await;
    let msg = b.wait_error().await;
    assert!(msg.starts_with("Not saved:") && msg.contains("45"), "{msg}");
    assert_eq!(rule("capacity", "Peak").await["capacity"]["duration"], 60);

    // Region affinity.
    b.go("/ui/rules/affinity/new").await;
    b.fill("name", "EuFirst").await;
    b.fill("preferred", "eu-west\neu-central").await;
    b.fill("fallback", "us-east").await;
    b.click("save").await;
    b.wait_text("Rule saved.").await;
    let r = rule("affinity", "EuFirst").await;
    assert_eq!(r["preferred"], json!(["eu-west", "eu-central"]));

    // Assignment to Sales_VQ_CB.
    b.go("/ui/rules").await;
    b.select("number_rule-Sales_VQ_CB", "FranceOnly").await;
    b.select("capacity_rule-Sales_VQ_CB", "Peak").await;
    b.click("assign-save-Sales_VQ_CB").await;
    b.wait_text("Queue rules saved.").await;
    let a = get("/admin/rules/queues/Sales_VQ_CB".into()).await;
    assert_eq!(a["numberRule"], "FranceOnly");
    assert_eq!(a["capacityRule"], "Peak");
    b.close().await;

    // A supervisor may edit number rules but not capacity rules: no form, and a forged post is
    // refused as the API refuses it, the rule unchanged.
    let sb = Browser::start(&url).await;
    sb.login("sup", PASSWORD).await;
    sb.wait_text("Log out").await;
    sb.go("/ui/rules/capacity/Peak").await;
    assert!(sb.text("error").await.unwrap().starts_with("Not allowed"));
    sb.close().await;
    let (sup, csrf) = crate::http_session(&http, &url, "sup").await;
    let r = crate::http_post(
        &http,
        &url,
        &sup,
        "/ui/rules/capacity",
        &format!("csrf={csrf}&original=Peak&name=Peak&mode=grid&duration=60&c_sun_01%3A00=9"),
    )
    .await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("Not allowed"));
    assert_eq!(
        rule("capacity", "Peak").await["capacity"]["days"]["sun"],
        Value::Null
    );
    let r = crate::http_post(
        &http,
        &url,
        &sup,
        "/ui/rules/queues/Sales_VQ_CB",
        &format!("csrf={csrf}&capacity_rule="),
    )
    .await;
    assert_eq!(r.status(), 403);
    let a = get("/admin/rules/queues/Sales_VQ_CB".into()).await;
    assert_eq!(a["capacityRule"], "Peak");
}
