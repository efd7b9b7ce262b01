//! Firebase Cloud Messaging HTTP v1. The service account's RSA key signs a JWT assertion
//! (RS256) that the token endpoint exchanges for a bearer token (RFC 7523), cached until a
//! minute before it expires (on the injected clock); each event is then sent as a data
//! message to `POST {base}/v1/projects/{project}/messages:send`.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use parking_lot::Mutex;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use serde::Deserialize;
use thiserror::Error;

use super::channels::DeliveryError;
use super::settings::FcmSettings;
use crate::clock::SharedClock;

/// The OAuth2 scope FCM sends need.
pub const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";

/// The grant type of a JWT bearer assertion (RFC 7523).
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Why a service account cannot be used.
#[derive(Debug, Error)]
pub enum ServiceAccountError {
    /// The file cannot be read.
    #[error("cannot read the service-account file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Not the JSON the Firebase console gives.
    #[error(
        "the service-account file is not valid JSON with project_id, client_email and private_key: {0}"
    )]
    Json(#[from] serde_json::Error),
    /// The private key is not a PKCS#8 PEM RSA key.
    #[error("the service account's private_key is not a PKCS#8 PEM RSA key: {0}")]
    Key(String),
}

/// The fields of a service-account file the engine uses.
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceAccountFile {
    /// Firebase project.
    pub project_id: String,
    /// The account's e-mail: the JWT's issuer.
    pub client_email: String,
    /// PKCS#8 PEM RSA key.
    pub private_key: String,
    /// Key id, put in the JWT header.
    #[serde(default)]
    pub private_key_id: Option<String>,
    /// Token endpoint.
    #[serde(default)]
    pub token_uri: Option<String>,
}

/// A service account ready to sign.
#[derive(Clone)]
pub struct ServiceAccount {
    /// The file's fields.
    pub file: ServiceAccountFile,
    key: SigningKey<sha2::Sha256>,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.file.client_email)
            .field("project_id", &self.file.project_id)
            .finish_non_exhaustive()
    }
}

impl ServiceAccount {
    /// Reads and checks a service-account file.
    pub fn load(path: &Path) -> Result<Self, ServiceAccountError> {
        let text = std::fs::read_to_string(path).map_err(|source| ServiceAccountError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Checks a service account given as JSON text.
    pub fn parse(text: &str) -> Result<Self, ServiceAccountError> {
        let file: ServiceAccountFile = serde_json::from_str(text)?;
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(&file.private_key)
            .map_err(|e| ServiceAccountError::Key(e.to_string()))?;
        Ok(ServiceAccount {
            file,
            key: SigningKey::new(key),
        })
    }

    /// The signed JWT assertion for `aud` (the token URL), valid an hour from `now`.
    pub fn assertion(&self, aud: &str, now: DateTime<Utc>) -> String {
        let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.file.private_key_id {
            header["kid"] = kid.clone().into();
        }
        let iat = now.timestamp();
        let claims = serde_json::json!({
            "iss": self.file.client_email,
            "scope": SCOPE,
            "aud": aud,
            "iat": iat,
            "exp": iat + 3600,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self.key.sign(signing_input.as_bytes()).to_bytes();
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }
}

/// An access token and when to stop using it.
#[derive(Debug, Clone)]
struct Token {
    bearer: String,
    renew_at: DateTime<Utc>,
}

/// The FCM channel: account, endpoints and the cached token.
pub struct Fcm {
    account: ServiceAccount,
    token_url: String,
    send_url: String,
    http: reqwest::Client,
    clock: SharedClock,
    token: Mutex<Option<Token>>,
}

impl std::fmt::Debug for Fcm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fcm")
            .field("send_url", &self.send_url)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<i64>,
}

impl Fcm {
    /// The channel for `settings`, the service-account file resolved against `base_dir`.
    pub fn new(
        settings: &FcmSettings,
        base_dir: &Path,
        http: reqwest::Client,
        clock: SharedClock,
    ) -> Result<Self, ServiceAccountError> {
        let account = ServiceAccount::load(&base_dir.join(&settings.service_account_file))?;
        let token_url = settings
            .token_url
            .clone()
            .or_else(|| account.file.token_uri.clone())
            .unwrap_or_else(|| "https://oauth2.googleapis.com/token".into());
        let project = settings
            .project_id
            .clone()
            .unwrap_or_else(|| account.file.project_id.clone());
        let send_url = format!(
            "{}/v1/projects/{project}/messages:send",
            settings.base_url.trim_end_matches('/')
        );
        Ok(Fcm {
            account,
            token_url,
            send_url,
            http,
            clock,
            token: Mutex::new(None),
        })
    }

    /// A bearer token: the cached one while it is good, else a new one from the token URL.
    async fn bearer(&self) -> Result<String, DeliveryError> {
        let now = self.clock.now();
        if let Some(t) = self.token.lock().as_ref()
            && now < t.renew_at
        {
            return Ok(t.bearer.clone());
        }
        let assertion = self.account.assertion(&self.token_url, now);
        let body = format!(
            "grant_type={}&assertion={assertion}",
            GRANT_TYPE.replace(':', "%3A")
        );
        let resp = self
            .http
            .post(&self.token_url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body);
        let resp = sent(resp, "FCM token", &self.token_url).await?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let text = resp.text().await.unwrap_or_default();
            // A refused assertion (bad key, revoked account) will not get better by itself,
            // but the operator may fix it: retried with backoff like an outage.
            return Err(DeliveryError::retry(format!(
                "FCM token {} answered {status}: {}",
                self.token_url,
                truncate(&text)
            )));
        }
        let answer: TokenAnswer = resp
            .json()
            .await
            .map_err(|e| DeliveryError::retry(format!("FCM token answer is not valid: {e}")))?;
        let life = answer.expires_in.unwrap_or(3600).max(0);
        let token = Token {
            bearer: answer.access_token,
            renew_at: now + TimeDelta::seconds(life) - TimeDelta::seconds(60),
        };
        let bearer = token.bearer.clone();
        *self.token.lock() = Some(token);
        Ok(bearer)
    }

    /// Sends `message` (the `message` object of the v1 API) and returns FCM's message name.
    /// With `validate_only`, FCM checks it without delivering.
    pub async fn send(
        &self,
        message: serde_json::Value,
        validate_only: bool,
    ) -> Result<String, DeliveryError> {
        let bearer = self.bearer().await?;
        let mut body = serde_json::json!({ "message": message });
        if validate_only {
            body["validate_only"] = true.into();
        }
        let resp = self
            .http
            .post(&self.send_url)
            .bearer_auth(&bearer)
            .json(&body);
        let resp = sent(resp, "FCM", &self.send_url).await?;
        let status = resp.status().as_u16();
        if status == 401 {
            // The token was revoked or expired early: the next attempt asks for a new one.
            *self.token.lock() = None;
        }
        let text = resp.text().await.unwrap_or_default();
        DeliveryError::from_status(status, || {
            format!("FCM {} ({})", self.send_url, truncate(&text))
        })?;
        let answer: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        Ok(answer["name"].as_str().unwrap_or_default().to_string())
    }
}

/// Sends `request` to `url`; a request that gets no answer is retried later, named `what`.
async fn sent(
    request: reqwest::RequestBuilder,
    what: &str,
    url: &str,
) -> Result<reqwest::Response, DeliveryError> {
    request.send().await.map_err(|e| {
        DeliveryError::retry(format!("{what} {url}: {}", super::webhook::describe(&e)))
    })
}

fn truncate(s: &str) -> String {
    s.chars().take(200).collect()
}
