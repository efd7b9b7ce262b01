//! The `push:` section of boomerang.yaml: the outbox's retry policy, the webhook signing
//! secret and the FCM service account. Queues add their own webhook (`push_webhook_url`).

use serde::{Deserialize, Serialize};

/// Push delivery settings.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct PushSettings {
    /// Secret for the `X-Boomerang-Signature` HMAC-SHA256 of webhook bodies (a queue's
    /// `push_webhook_secret` overrides it). Unset: webhooks are sent unsigned.
    pub webhook_secret: Option<String>,
    /// Delivery attempts before an event is marked failed (1–100). Default 10.
    pub max_attempts: u32,
    /// Wait after the first failed attempt, seconds; doubled after each (1–3600). Default 5.
    pub initial_backoff_seconds: u32,
    /// Longest wait between attempts, seconds (1–86400). Default 3600.
    pub max_backoff_seconds: u32,
    /// One HTTP request (webhook, token, FCM send) may take this long, seconds (1–120).
    /// Default 10.
    pub timeout_seconds: u32,
    /// Firebase Cloud Messaging HTTP v1; unset: FCM targets fail with a clear error.
    pub fcm: Option<FcmSettings>,
}

impl Default for PushSettings {
    fn default() -> Self {
        PushSettings {
            webhook_secret: None,
            max_attempts: 10,
            initial_backoff_seconds: 5,
            max_backoff_seconds: 3600,
            timeout_seconds: 10,
            fcm: None,
        }
    }
}

/// Where FCM is and who the engine is to it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FcmSettings {
    /// The Firebase service-account JSON file (relative to the config file), as the Firebase
    /// console gives it: `project_id`, `client_email`, `private_key`, `token_uri`.
    pub service_account_file: String,
    /// The OAuth2 token endpoint; default: the file's `token_uri`.
    #[serde(default)]
    pub token_url: Option<String>,
    /// FCM's base URL. Default `https://fcm.googleapis.com`.
    #[serde(default = "d_fcm_base")]
    pub base_url: String,
    /// Firebase project; default: the file's `project_id`.
    #[serde(default)]
    pub project_id: Option<String>,
}

fn d_fcm_base() -> String {
    "https://fcm.googleapis.com".into()
}

impl PushSettings {
    /// Wait before attempt `attempts + 1`, after `attempts` failed ones: the initial backoff
    /// doubled per failure, capped.
    pub fn backoff(&self, attempts: u32) -> chrono::TimeDelta {
        let base = u64::from(self.initial_backoff_seconds.max(1));
        let cap = u64::from(self.max_backoff_seconds.max(1));
        let shift = attempts.saturating_sub(1).min(32);
        let secs = base.saturating_mul(1u64 << shift).min(cap);
        chrono::TimeDelta::seconds(secs as i64)
    }

    /// Problems with the section, as `(field, message)` (check-config reports them).
    pub fn problems(&self, base_dir: &std::path::Path) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (field, v, lo, hi) in [
            ("max_attempts", self.max_attempts, 1, 100),
            (
                "initial_backoff_seconds",
                self.initial_backoff_seconds,
                1,
                3600,
            ),
            ("max_backoff_seconds", self.max_backoff_seconds, 1, 86_400),
            ("timeout_seconds", self.timeout_seconds, 1, 120),
        ] {
            if v < lo || v > hi {
                out.push((field.into(), format!("{v} is out of range {lo} to {hi}")));
            }
        }
        if let Some(f) = &self.fcm {
            if let Err(e) =
                super::fcm::ServiceAccount::load(&base_dir.join(&f.service_account_file))
            {
                out.push(("fcm.service_account_file".into(), e.to_string()));
            }
            for (field, url) in [
                ("fcm.base_url", Some(&f.base_url)),
                ("fcm.token_url", f.token_url.as_ref()),
            ] {
                if let Some(u) = url
                    && !super::webhook::is_http_url(u)
                {
                    out.push((
                        field.into(),
                        format!("`{u}` is not an http:// or https:// URL"),
                    ));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = PushSettings {
            initial_backoff_seconds: 5,
            max_backoff_seconds: 60,
            ..Default::default()
        };
        let secs: Vec<i64> = (1..=6).map(|n| s.backoff(n).num_seconds()).collect();
        assert_eq!(secs, vec![5, 10, 20, 40, 60, 60]);
        assert_eq!(s.backoff(1000).num_seconds(), 60);
    }
}
