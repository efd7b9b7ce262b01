//! The Call-In tab in the browser: a group created and edited through the form (DNIS list,
//! codes, expiry, unique DNIS), its DNIS list imported from a CSV file, a DNIS listed twice
//! refused with the API's message, request records listed and filtered; and a
//! supervisor's refusal.

use fantoccini::Locator;

use crate::browser::Browser;
use crate::common;
use crate::{PASSWORD, users};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_created_edited_and_imported_and_records_are_listed() {
    let (_dir, e) = common::start_demo(|spec| spec.admin.users = users()).await;
    let url = format!("http://{}", e.http_addr);
    let b = Browser::start(&url).await;
    b.login("root", PASSWORD).await;
    b.wait_text("Log out").await;
    b.go("/ui/callin").await;
    b.click("new-group").await;
    b.wait_path(|p| p == "/ui/callin/groups/new").await;
    b.fill("name", "Stores").await;
    b.fill("dnis", "+33140000001,Paris\n+33140000002").await;
    b.click("codes").await;
    b.fill("access_code_length", "8").await;
    b.fill("expiry_seconds", "120").await;
    b.click("unique").await;
    b.click("save").await;
    b.wait_text("Group saved.").await;
    let g = e.groups.get("Stores").unwrap().group;
    assert_eq!(g.dnis.len(), 2);
    assert_eq!(g.dnis[0].description, "Paris");
    assert!(g.generate_access_code && g.unique_dnis);
    assert_eq!((g.access_code_length, g.expiry_seconds), (8, 120));

    // A DNIS listed twice is refused with the API's message, and nothing is saved.
    b.go("/ui/callin/groups/new").await;
    b.fill("name", "Kiosks").await;
    b.fill("dnis", "+33140000002\n+33140000002,again").await;
    b.click("save").await;
    let msg = b.wait_error().await;
    assert!(
        msg.starts_with("Not saved:") && msg.contains("+33140000002"),
        "{msg}"
    );
    assert!(e.groups.get("Kiosks").is_err());

    // Edit: expiry 60 s; then import a CSV file as the new DNIS list.
    b.go("/ui/callin/groups/Stores").await;
    b.fill("expiry_seconds", "60").await;
    b.click("save").await;
    b.wait_text("Group saved.").await;
    assert_eq!(e.groups.get("Stores").unwrap().group.expiry_seconds, 60);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pool.csv");
    std::fs::write(
        &file,
        "+33150000001,Lyon\n+33150000002,Nice\n+33150000003,\n",
    )
    .unwrap();
    b.go("/ui/callin/groups/Stores").await;
    b.c.find(Locator::Id("file"))
        .await
        .unwrap()
        .send_keys(file.to_str().unwrap())
        .await
        .unwrap();
    b.click("import").await;
    b.wait_text("DNIS list imported.").await;
    let g = e.groups.get("Stores").unwrap().group;
    let numbers: Vec<_> = g.dnis.iter().map(|d| d.number.as_str()).collect();
    assert_eq!(
        numbers,
        vec!["+33150000001", "+33150000002", "+33150000003"]
    );
    // A bad row names its line, and nothing is imported.
    std::fs::write(&file, "+33150000009,ok\nnot a number,x\n").unwrap();
    b.go("/ui/callin/groups/Stores").await;
    b.c.find(Locator::Id("file"))
        .await
        .unwrap()
        .send_keys(file.to_str().unwrap())
        .await
        .unwrap();
    b.click("import").await;
    let msg = b.wait_error().await;
    assert!(msg.contains("line 2"), "{msg}");
    assert_eq!(e.groups.get("Stores").unwrap().group.dnis.len(), 3);

    // Records: the list and its filters (none yet; a bad filter says why).
    b.go("/ui/callin").await;
    b.wait_text("Call-in request records").await;
    assert!(b.text("records-count").await.unwrap().contains("0 records"));
    b.select("rstate", "PENDING").await;
    b.click("records-apply").await;
    // The page before the filter shows "0 records" as well: wait for the filter's address.
    b.wait_path(|p| p.contains("state=PENDING")).await;
    b.wait_text("0 records").await;
    assert!(b.path().await.contains("state=PENDING"));
    b.go("/ui/callin?state=LOST").await;
    assert!(b.text("records-error").await.is_some());
    b.close().await;

    // A supervisor sees the groups but may not change them, even with a forged form.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (sup, csrf) = crate::http_session(&http, &url, "sup").await;
    let r = crate::http_post(
        &http,
        &url,
        &sup,
        "/ui/callin/groups",
        &format!(
            "csrf={csrf}&name=Mine&dnis=%2B33160000001&access_code_length=6&expiry_seconds=30"
        ),
    )
    .await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("Not allowed"));
    assert!(e.groups.get("Mine").is_err());
}
