//! The Callback UI in a real browser: Debian's `chromium` headless driven through
//! `chromium-driver` (WebDriver, via fantoccini), both installed by ./test.sh. One test binary
//! (`cargo test --test ui`) because it needs the browser; each test starts its own chromedriver
//! on a free port with a fresh profile.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

mod browser;
mod callbacks;
mod login;
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
