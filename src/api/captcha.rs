//! reCAPTCHA v2/v3 verification of a `captchaToken` against the siteverify protocol (POST
//! form `secret`, `response`; JSON `success`, `score`, `action`, `error-codes`), enforced on
//! create for the API keys and queues `api.captcha` names, and offered as `/captcha/verify`.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use thiserror::Error;

use super::{ApiError, ApiState, Body, Reply, ok};
use crate::config::{CaptchaSettings, CaptchaVersion};

/// Longest token sent on (Google's are about 2 kB).
pub const MAX_TOKEN: usize = 8192;

/// Why a token did not pass.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum CaptchaError {
    /// Enforced but absent.
    #[error("captchaToken: required for this API key or queue")]
    Missing,
    /// Empty or too long.
    #[error("captchaToken: must be 1 to {MAX_TOKEN} characters")]
    Malformed,
    /// The verifier said no (its error codes, or the v3 score/action).
    #[error("captchaToken: verification failed ({0})")]
    Rejected(String),
    /// The verifier could not be asked or answered nonsense.
    #[error("captcha verification is unavailable: {0}")]
    Unavailable(String),
}

impl From<CaptchaError> for ApiError {
    fn from(e: CaptchaError) -> Self {
        match e {
            CaptchaError::Missing | CaptchaError::Malformed => ApiError::bad_request(e.to_string()),
            CaptchaError::Rejected(_) => ApiError::new(StatusCode::BAD_REQUEST, 3, e.to_string()),
            CaptchaError::Unavailable(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, 2, e.to_string())
            }
        }
    }
}

/// The siteverify answer.
#[derive(Debug, Deserialize)]
struct SiteVerify {
    success: bool,
    #[serde(default)]
    score: Option<f64>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default, rename = "error-codes")]
    error_codes: Vec<String>,
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Asks the verify URL about `token`; `Ok` when it passes (v3: score and action too).
pub async fn verify(c: &CaptchaSettings, token: &str) -> Result<(), CaptchaError> {
    if token.is_empty() || token.len() > MAX_TOKEN {
        return Err(CaptchaError::Malformed);
    }
    let body = format!(
        "secret={}&response={}",
        form_encode(&c.secret),
        form_encode(token)
    );
    let timeout = Duration::from_millis(c.timeout_ms.clamp(100, 30_000) as u64);
    let resp = reqwest::Client::new()
        .post(&c.verify_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| CaptchaError::Unavailable(format!("{}: {e}", c.verify_url)))?;
    if !resp.status().is_success() {
        return Err(CaptchaError::Unavailable(format!(
            "{} answered {}",
            c.verify_url,
            resp.status()
        )));
    }
    let v: SiteVerify = resp
        .json()
        .await
        .map_err(|e| CaptchaError::Unavailable(format!("unreadable answer: {e}")))?;
    if !v.success {
        let codes = if v.error_codes.is_empty() {
            "no reason given".to_string()
        } else {
            v.error_codes.join(", ")
        };
        return Err(CaptchaError::Rejected(codes));
    }
    if c.version == CaptchaVersion::V3 {
        let score = v.score.unwrap_or(0.0);
        if score < c.min_score {
            return Err(CaptchaError::Rejected(format!(
                "score {score} is under {}",
                c.min_score
            )));
        }
        if let Some(want) = &c.action
            && v.action.as_deref() != Some(want.as_str())
        {
            return Err(CaptchaError::Rejected(format!(
                "action {:?} is not `{want}`",
                v.action.unwrap_or_default()
            )));
        }
    }
    Ok(())
}

/// Whether a create by API key `key` into `queue` must carry a valid token.
pub fn enforced(c: &CaptchaSettings, key: Option<&str>, queue: &str) -> bool {
    key.is_some_and(|k| c.enforce_keys.iter().any(|x| x == k))
        || c.enforce_queues.iter().any(|q| q == queue)
}

/// Checks a create's token when `api.captcha` enforces it for this key or queue.
pub async fn check_create(
    s: &ApiState,
    key: Option<&str>,
    queue: &str,
    token: Option<&str>,
) -> Result<(), ApiError> {
    let Some(c) = &s.config.spec.api.captcha else {
        return Ok(());
    };
    if !enforced(c, key, queue) {
        return Ok(());
    }
    let token = token.ok_or(CaptchaError::Missing)?;
    Ok(verify(c, token).await?)
}

/// `POST /captcha/verify` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VerifyBody {
    /// The site key of the widget that produced the token.
    pub site_key: String,
    /// The widget's response.
    pub captcha_token: String,
}

/// Verifies a CAPTCHA token as create would: `data.success`.
#[utoipa::path(post, path = "/captcha/verify", tag = "callbacks", request_body = VerifyBody,
    responses((status = 200, description = "`data.success`"), (status = 400), (status = 500)))]
pub(crate) async fn captcha_verify(State(s): State<ApiState>, Body(b): Body<VerifyBody>) -> Reply {
    let Some(c) = &s.config.spec.api.captcha else {
        return Err(ApiError::bad_request(
            "siteKey: no CAPTCHA is configured (api.captcha)",
        ));
    };
    if let Some(want) = &c.site_key
        && want != &b.site_key
    {
        return Err(ApiError::bad_request(format!(
            "siteKey: `{}` is not this site's key",
            b.site_key
        )));
    }
    match verify(c, &b.captcha_token).await {
        Ok(()) => Ok(ok(json!({ "success": true }))),
        Err(CaptchaError::Rejected(why)) => {
            tracing::info!(reason = %why, "captcha token rejected");
            Ok(ok(json!({ "success": false })))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_are_escaped() {
        assert_eq!(form_encode("a b&c=d+é"), "a%20b%26c%3Dd%2B%C3%A9");
    }
}
