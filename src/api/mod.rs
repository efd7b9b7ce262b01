//! The REST API in the spirit of GES v3 (`/engagement/v3/…`): callbacks, availability, open-for,
//! queue status and call-in requests, authenticated by `x-api-key`, with a correlation id on
//! every answer and JSON errors that say which field is wrong and why.

pub mod admin;
pub(crate) mod availability;
pub(crate) mod callin;
pub(crate) mod captcha;
pub(crate) mod error;
pub(crate) mod push;
pub(crate) mod queues;
pub mod ratelimit;
pub(crate) mod server;
pub(crate) mod statistic_ex;
pub(crate) mod stats;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, TimeDelta, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::callback::service::{CallbackService, CreateRequest, ServiceError};
use crate::callback::{CallbackRecord, CallbackState, NewCallback, Origin};
use crate::callin::CallIn;
use crate::clock::SharedClock;
use crate::config::{Config, QueueSpec};
use crate::routing::Router as RoutingCore;
pub use error::{ApiError, ErrorLog, ErrorLogEntry};
pub(crate) use queues::ewt_seconds;

/// Everything the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// Configuration in force.
    pub config: Arc<Config>,
    /// Time.
    pub clock: SharedClock,
    /// Callbacks.
    pub callbacks: Arc<CallbackService>,
    /// Click-to-Call-In.
    pub callin: Arc<CallIn>,
    /// The router, for EWT, positions and agent counts.
    pub router: Arc<RoutingCore>,
    /// Recent errors.
    pub errors: Arc<ErrorLog>,
    /// Name and SHA-256 of every accepted API key.
    pub key_hashes: Arc<Vec<(String, [u8; 32])>>,
    /// Where accepted call-in requests are made durable before they are returned.
    pub store: Option<Arc<dyn crate::store::Store>>,
    /// Administration users and sessions.
    pub admin: Arc<admin::AdminAuth>,
    /// Rules and their queues (`/admin/rules`); absent when the API runs without a store.
    pub rules: Option<Arc<crate::rules::RuleBook>>,
    /// Click-to-Call-In group administration (`/admin/callin`); absent without a store.
    pub groups: Option<Arc<crate::callin::GroupBook>>,
    /// Per-key, per-user and per-address request budgets.
    pub limits: Arc<ratelimit::RateLimiter>,
    /// The router with assignment delivery: agent changes made here re-dispatch waiting work.
    pub dispatch: Option<Arc<crate::routing::Dispatch>>,
    /// Agent definitions with the changes made through the API.
    pub agent_book: Arc<crate::agents::AgentBook>,
    /// The engine's reloadable configuration (`POST /admin/reload`, SIGHUP), once it runs.
    pub live: Arc<std::sync::OnceLock<std::sync::Weak<crate::ops::reload::Live>>>,
}

/// Name and SHA-256 of every API key of `config` (plain keys are hashed here and never kept).
pub fn key_hashes(config: &Config) -> Vec<(String, [u8; 32])> {
    config
        .spec
        .api
        .keys
        .iter()
        .filter_map(|k| {
            let hash: Option<[u8; 32]> = match (&k.key, &k.key_sha256) {
                (Some(plain), _) => Some(Sha256::digest(plain.as_bytes()).into()),
                (None, Some(hex_hash)) => {
                    hex::decode(hex_hash).ok().and_then(|v| v.try_into().ok())
                }
                _ => None,
            };
            hash.map(|h| (k.name.clone(), h))
        })
        .collect()
}

impl ApiState {
    /// State for `config`'s API keys (plain keys are hashed here and never kept).
    pub fn new(
        config: Arc<Config>,
        clock: SharedClock,
        callbacks: Arc<CallbackService>,
        callin: Arc<CallIn>,
        router: Arc<RoutingCore>,
    ) -> Self {
        let key_hashes = key_hashes(&config);
        let admin = Arc::new(admin::AdminAuth::new(&config.spec.admin, clock.clone()));
        ApiState {
            agent_book: Arc::new(crate::agents::AgentBook::new(&config.spec)),
            dispatch: None,
            limits: Arc::new(ratelimit::RateLimiter::default()),
            admin,
            config,
            clock,
            callbacks,
            callin,
            router,
            errors: Arc::new(ErrorLog::default()),
            key_hashes: Arc::new(key_hashes),
            store: None,
            rules: None,
            groups: None,
            live: Arc::default(),
        }
    }

    /// A queue's outcome counters (answered, abandoned, service level); zero without dispatch.
    pub fn outcomes(&self, queue: &str) -> crate::routing::stats::QueueOutcomes {
        self.dispatch
            .as_ref()
            .map(|d| d.stats().get(queue))
            .unwrap_or_default()
    }

    /// The name of the configured key `key` is, if any. Every key is compared in constant
    /// time and none is skipped, so timing reveals neither the key nor which one matched.
    pub fn key_name(&self, key: &[u8]) -> Option<&str> {
        let h: [u8; 32] = Sha256::digest(key).into();
        let mut found = None;
        for (name, k) in self.key_hashes.iter() {
            if bool::from(k.ct_eq(&h)) {
                found = Some(name.as_str());
            }
        }
        found
    }
}

/// The OpenAPI document's frame: title, security schemes; paths come from the routes.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "boomerang", description = "GES v3-style callback API and administration"),
    modifiers(&SecuritySchemes)
)]
struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))),
        );
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every route with its OpenAPI description: the public v3 API and the administration API.
/// Routes are only ever added through `routes!`, so the document cannot miss one.
pub fn api_routes() -> OpenApiRouter<ApiState> {
    let v3 = OpenApiRouter::new()
        .routes(routes!(create_callback))
        .routes(routes!(retrieve_callback))
        .routes(routes!(query_callbacks))
        .routes(routes!(cancel_callback))
        .routes(routes!(reschedule_callback))
        .routes(routes!(availability::availability_route))
        .routes(routes!(open_for_route))
        .routes(routes!(queues::queue_status))
        .routes(routes!(callin::create_call_in))
        .routes(routes!(queues::estimated_wait_time))
        .routes(routes!(stats::statistics))
        .routes(routes!(statistic_ex::get_statistic_ex))
        .routes(routes!(captcha::captcha_verify))
        .routes(routes!(push::publish));
    OpenApiRouter::with_openapi(<ApiDoc as utoipa::OpenApi>::openapi())
        .nest("/engagement/v3", v3)
        .nest("/admin", admin::router())
}

/// The OpenAPI document of [`api_routes`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes().into_openapi()
}

/// The API's routes with authentication, correlation ids, body limits and CORS.
pub fn router(state: ApiState) -> Router {
    let (routes, doc) = api_routes().split_for_parts();
    let doc = Arc::new(doc);
    let max_body = state.config.spec.api.max_body_bytes.max(1024) as usize;
    let origins: Vec<HeaderValue> = state
        .config
        .spec
        .api
        .cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderName::from_static("x-api-key"),
            axum::http::header::AUTHORIZATION,
        ])
        .expose_headers([axum::http::HeaderName::from_static("x-correlation-id")]);
    routes
        .route(
            OPENAPI_PATH,
            get(move || {
                let doc = doc.clone();
                async move { Json((*doc).clone()) }
            }),
        )
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        // Applied by the body extractors, so a route may set its own (the DNIS pool import).
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(middleware::from_fn_with_state(state.clone(), correlate))
        .layer(cors)
        .with_state(state)
}

/// Where the OpenAPI document is served (to holders of an API key or an admin token: it maps
/// the administration surface, which anonymous callers have no need to learn).
pub const OPENAPI_PATH: &str = "/openapi.json";

/// Gives every request a correlation id (the caller's `x-correlation-id` if sane), renders
/// errors as JSON with it, and logs them.
async fn correlate(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    let corr = req
        .headers()
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        .map(str::to_string)
        .unwrap_or_else(|| Uuid::new_v4().to_string());
    let method = req.method().to_string();
    let uri = req.uri().to_string();
    let ges = is_ges_path(req.uri().path());
    let mut resp = next.run(req).await;
    let success = resp.extensions_mut().remove::<error::SuccessData>();
    let pending = resp
        .extensions_mut()
        .remove::<error::PendingError>()
        .map(|p| p.0)
        .or_else(|| {
            // Errors produced by layers (body too large, …) arrive without a JSON body.
            let s = resp.status();
            (s.is_client_error() || s.is_server_error()).then(|| {
                ApiError::new(
                    s,
                    0,
                    s.canonical_reason()
                        .unwrap_or("request refused")
                        .to_lowercase(),
                )
            })
        });
    let retry_after = resp.headers().get(axum::http::header::RETRY_AFTER).cloned();
    if let Some(err) = pending {
        state.errors.push(ErrorLogEntry {
            correlation_id: corr.clone(),
            at: state.clock.now(),
            method,
            uri,
            status: err.status.as_u16(),
            code: err.code,
            message: err.message.clone(),
        });
        resp = error::render(&err, &corr, ges);
        if let Some(v) = retry_after {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, v);
        }
    } else if let (true, Some(data)) = (ges, success) {
        // Same status and headers, the body now with `corrId`.
        let (mut parts, _) = resp.into_parts();
        parts.headers.remove(axum::http::header::CONTENT_LENGTH);
        resp = Response::from_parts(parts, error::success_body(data.0, &corr));
    }
    if let Ok(v) = HeaderValue::from_str(&corr) {
        resp.headers_mut().insert("x-correlation-id", v);
    }
    resp
}

/// Whether `path` is on the GES v3 surface, whose answers wear the GES envelope (status with
/// `corrId`); the administration and the OpenAPI document keep their own format.
pub(crate) fn is_ges_path(path: &str) -> bool {
    path == "/engagement" || path.starts_with("/engagement/")
}

/// The one gate every request passes: `/admin/…` needs a live bearer session (resolved into an
/// [`admin::AdminUser`] for the handlers), everything else an API key; only CORS preflights
/// and `POST /admin/login` pass without either.
async fn authenticate(State(state): State<ApiState>, mut req: Request, next: Next) -> Response {
    if req.method() == Method::OPTIONS {
        return next.run(req).await;
    }
    let path = req.uri().path().to_string();
    let per_second = state.config.spec.api.rate_limit_per_second.max(1) as f64;
    // Who is calling, as the rate limiter counts them.
    let caller = if path == "/admin" || path.starts_with("/admin/") {
        if admin::PUBLIC_ROUTES.contains(&(req.method().as_str(), path.as_str())) {
            let ip = req
                .extensions()
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip().to_string())
                .unwrap_or_default();
            let limited = state.limits.check(
                &format!("login:{ip}"),
                ratelimit::LOGINS_PER_SECOND,
                ratelimit::LOGIN_BURST,
                state.clock.now(),
            );
            return match limited {
                Ok(()) => next.run(req).await,
                Err(l) => too_many(l),
            };
        }
        let user = match admin::auth::bearer(req.headers()) {
            None => Err(admin::auth::AuthError::NoToken),
            Some(token) => state.admin.resolve(token),
        };
        match user {
            Ok(u) => {
                let who = format!("user:{}", u.name);
                req.extensions_mut().insert(u);
                who
            }
            Err(e) => return ApiError::from(e).into_response(),
        }
    } else {
        let key = req
            .headers()
            .get("x-api-key")
            .and_then(|k| state.key_name(k.as_bytes()));
        match key {
            Some(name) => {
                let who = format!("key:{name}");
                req.extensions_mut().insert(KeyName(name.to_string()));
                who
            }
            // The OpenAPI document also opens to an administration token.
            None if path == OPENAPI_PATH => {
                match admin::auth::bearer(req.headers()).map(|t| state.admin.resolve(t)) {
                    Some(Ok(u)) => format!("user:{}", u.name),
                    _ => return ApiError::unauthorized().into_response(),
                }
            }
            None => return ApiError::unauthorized().into_response(),
        }
    };
    if let Err(l) = state
        .limits
        .check(&caller, per_second, per_second, state.clock.now())
    {
        return too_many(l);
    }
    next.run(req).await
}

/// The name of the API key a request came with (for per-key CAPTCHA enforcement).
#[derive(Debug, Clone)]
pub struct KeyName(pub String);

/// 429 with `Retry-After`.
fn too_many(l: ratelimit::Limited) -> Response {
    let mut resp = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        2,
        format!("rate limit exceeded; retry in {} s", l.retry_after_seconds),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&l.retry_after_seconds.to_string()) {
        resp.headers_mut()
            .insert(axum::http::header::RETRY_AFTER, v);
    }
    resp
}

/// JSON body extractor whose rejections name the problem (unknown field, wrong type…).
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::bad_request(e.body_text())),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::bad_request(e.body_text())),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::bad_request(
                "Content-Type must be application/json",
            )),
            Err(JsonRejection::BytesRejection(e))
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    1,
                    "the request body is too large",
                ))
            }
            Err(JsonRejection::BytesRejection(_)) => Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                1,
                "the request body did not arrive in full within api.body_timeout_seconds",
            )),
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

/// A configured queue, or a 400 naming the request field that held the unknown name.
pub(crate) fn known_queue<'a>(
    s: &'a ApiState,
    name: &str,
    field: &str,
) -> Result<&'a QueueSpec, ApiError> {
    s.config
        .queue(name)
        .ok_or_else(|| ApiError::bad_request(format!("{field}: unknown virtual queue `{name}`")))
}

/// The GES success envelope around `data` (the correlation layer adds `corrId` on the GES
/// surface).
pub(crate) fn ok(data: impl Serialize) -> Response {
    let data = serde_json::to_value(data).unwrap_or(Value::Null);
    let mut resp =
        Json(json!({ "status": { "code": 0, "message": "Successful" }, "data": data.clone() }))
            .into_response();
    resp.extensions_mut().insert(error::SuccessData(data));
    resp
}

pub(crate) fn service_error(e: ServiceError) -> ApiError {
    match e {
        ServiceError::UnknownQueue(_) => ApiError::bad_request(format!("serviceName: {e}")),
        ServiceError::NotFound(_) => ApiError::not_found(e.to_string()),
        ServiceError::Number(_) => ApiError::bad_request(format!("phoneNumber: {e}")),
        ServiceError::UserData(_) => ApiError::bad_request(format!("userData: {e}")),
        ServiceError::InPast(_) | ServiceError::TooFarAhead { .. } => {
            ApiError::bad_request(format!("desiredTime: {e}"))
        }
        ServiceError::Disabled { .. } => ApiError::conflict(e.to_string()),
        ServiceError::SlotUnavailable(_) => ApiError::too_many(e.to_string()),
        ServiceError::Lifecycle(_) => ApiError::conflict(e.to_string()),
        // The database is away (restarting, unreachable): try again later.
        ServiceError::Store(e) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            2,
            format!("the callback could not be stored; nothing was changed ({e})"),
        ),
    }
}

/// `POST /callbacks/create` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateCallbackBody {
    /// Callback virtual queue.
    pub service_name: String,
    /// Number to call, E.164.
    pub phone_number: String,
    /// ISO 8601 with offset; absent means immediate.
    #[serde(default)]
    pub desired_time: Option<DateTime<chrono::FixedOffset>>,
    /// Routing priority.
    #[serde(default)]
    pub priority: Option<i64>,
    /// Attached data (string values).
    #[serde(default)]
    pub user_data: BTreeMap<String, Value>,
    /// Reject a scheduled callback whose slot is full instead of accepting it.
    #[serde(default)]
    pub always_check_capacity: bool,
    /// `ASAP`, `SCHEDULED` or `COMBINED_SCHEDULED_AND_ASAP` (reporting); default from
    /// `desiredTime`.
    #[serde(default)]
    pub cb_offer_type: Option<crate::callback::ges::OfferType>,
    /// Prompt language tag, default `en-US`.
    #[serde(default)]
    pub language: Option<String>,
    /// The queue the customer would have waited in; its EWT now is kept as the EWT at offer.
    #[serde(default, rename = "inboundVQ")]
    pub inbound_vq: Option<String>,
    /// EWT threshold (s) that triggered the offer (reporting).
    #[serde(default)]
    pub offer_threshold: Option<i64>,
    /// Origination channel, e.g. `WEB`.
    #[serde(default)]
    pub channel: Option<String>,
    /// `ON-HOURS` or `OFF-HOURS`.
    #[serde(default)]
    pub offer_timing: Option<crate::callback::ges::OfferTiming>,
    /// The inbound interaction where the offer was accepted.
    #[serde(default)]
    pub cb_origination_ixn_id: Option<String>,
    /// Survey route point after the callback.
    #[serde(default, rename = "surveyRP")]
    pub survey_rp: Option<String>,
    /// Route point (caller id) of the outbound call, instead of the queue's.
    #[serde(default)]
    pub route_point: Option<String>,
    /// The CAPTCHA widget's response, required when the key or queue enforces CAPTCHA.
    #[serde(default)]
    pub captcha_token: Option<String>,
    /// Where the callback's push events go: `{channel:"FCM", target:<token>}` or
    /// `{channel:"WEBHOOK", target:<URL>}` (at most 10).
    #[serde(default)]
    pub push_targets: Vec<crate::push::PushTarget>,
}

impl CreateCallbackBody {
    /// The GES fields kept with the record.
    fn attributes(&self) -> crate::callback::ges::GesAttributes {
        crate::callback::ges::GesAttributes {
            cb_offer_type: self.cb_offer_type,
            language: self.language.clone(),
            inbound_vq: self.inbound_vq.clone(),
            offer_threshold: self.offer_threshold,
            channel: self.channel.clone(),
            offer_timing: self.offer_timing,
            cb_origination_ixn_id: self.cb_origination_ixn_id.clone(),
            survey_rp: self.survey_rp.clone(),
            route_point: self.route_point.clone(),
        }
    }
}

#[utoipa::path(post, path = "/callbacks/create", tag = "callbacks", request_body = CreateCallbackBody,
    responses((status = 200, description = "`data.id` of the new callback"), (status = 400), (status = 401), (status = 409), (status = 429)),
    security(("api_key" = [])))]
async fn create_callback(
    State(s): State<ApiState>,
    key: Option<axum::Extension<KeyName>>,
    Body(b): Body<CreateCallbackBody>,
) -> Result<Response, ApiError> {
    let key = key.map(|k| k.0.0);
    captcha::check_create(
        &s,
        key.as_deref(),
        &b.service_name,
        b.captcha_token.as_deref(),
    )
    .await?;
    let ges = b.attributes();
    let service = b.service_name.clone();
    ges.check()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    // The EWT the customer faced in the queue they would have waited in.
    let ewt_at_offer = match &ges.inbound_vq {
        Some(vq) => {
            known_queue(&s, vq, "inboundVQ")?;
            u32::try_from(ewt_seconds(&s, vq)).ok()
        }
        None => None,
    };
    // GES keeps only user data keys that are JavaScript identifiers and drops the others
    // silently.
    let user_data = b
        .user_data
        .into_iter()
        .filter(|(k, _)| crate::callback::ges::is_js_identifier(k))
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, text)
        })
        .collect();
    if b.push_targets.len() > crate::push::MAX_TARGETS {
        return Err(ApiError::bad_request(format!(
            "pushTargets: at most {} targets",
            crate::push::MAX_TARGETS
        )));
    }
    for (i, t) in b.push_targets.iter().enumerate() {
        t.check()
            .map_err(|e| ApiError::bad_request(format!("pushTargets[{i}]: {e}")))?;
    }
    let result = s
        .callbacks
        .create_with(
            CreateRequest {
                callback: NewCallback {
                    queue: b.service_name.clone(),
                    phone: b.phone_number,
                    desired_time: b.desired_time.map(|t| t.with_timezone(&Utc)),
                    origin: Origin::Api,
                    direction: Default::default(),
                    priority: b.priority.unwrap_or(0),
                    queue_time: None,
                    user_data,
                    created_by: "api".into(),
                },
                check_slot: b.always_check_capacity,
                ewt_at_offer_seconds: ewt_at_offer,
                position_at_offer: None,
            },
            ges,
            b.push_targets,
        )
        .await;
    let rec = match result {
        Ok(rec) => rec,
        Err(ServiceError::SlotUnavailable(at)) => {
            let e = ApiError::too_many(ServiceError::SlotUnavailable(at).to_string());
            return Err(e.with_data(json!({ "slots": proposed_slots(&s, &service, at) })));
        }
        Err(e) => return Err(service_error(e)),
    };
    Ok((StatusCode::OK, ok(json!({ "id": rec.id }))).into_response())
}

/// How many slots a 429 on create proposes.
const PROPOSED_SLOTS: usize = 5;

/// Free slots from the refused time on (that day and the next), as GES's 429 on create lists
/// them: `{"<utcTime>": <free capacity>, …}`.
fn proposed_slots(s: &ApiState, queue: &str, at: DateTime<Utc>) -> BTreeMap<String, u32> {
    let Some(q) = s.config.queue(queue) else {
        return BTreeMap::new();
    };
    let hours = s.config.queue_hours(q);
    let from = at.with_timezone(&hours.tz).date_naive();
    let slots = s
        .callbacks
        .availability(queue, from, from + TimeDelta::days(1))
        .unwrap_or_default();
    slots
        .iter()
        .filter(|sl| sl.start >= at && sl.available() > 0)
        .take(PROPOSED_SLOTS)
        .map(|sl| {
            (
                sl.start
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                sl.available(),
            )
        })
        .collect()
}

/// A body naming one callback.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdBody {
    /// Callback id.
    pub id: Uuid,
}

/// The GES view of a callback.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackView {
    id: Uuid,
    service_name: String,
    phone_number: String,
    desired_time: DateTime<Utc>,
    callback_state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    callback_reason: Option<crate::callback::CompletionReason>,
    callback_type: crate::callback::CallbackType,
    priority: i64,
    user_data: BTreeMap<String, String>,
    dial_attempts: u32,
    /// The GES create fields (language defaulted to `en-US`, offer type always present).
    #[serde(flatten)]
    ges: crate::callback::ges::GesAttributes,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    push_targets: Vec<crate::push::PushTarget>,
}

impl From<&CallbackRecord> for CallbackView {
    fn from(r: &CallbackRecord) -> Self {
        CallbackView {
            id: r.id,
            service_name: r.queue.clone(),
            phone_number: r.phone.clone(),
            desired_time: r.desired_time,
            callback_state: r.state.name(),
            callback_reason: match r.state {
                CallbackState::Completed(reason) => Some(reason),
                _ => None,
            },
            callback_type: r.kind,
            priority: r.priority,
            user_data: r.user_data.clone(),
            dial_attempts: r.attempts(),
            ges: crate::callback::ges::GesAttributes {
                language: Some(r.ges.language_or_default().to_string()),
                cb_offer_type: Some(
                    r.ges
                        .offer_type_or_default(r.kind == crate::callback::CallbackType::Scheduled),
                ),
                ..r.ges.clone()
            },
            push_targets: r.push.targets.clone(),
        }
    }
}

#[utoipa::path(post, path = "/callbacks/retrieve", tag = "callbacks", request_body = IdBody,
    responses((status = 200, description = "the callback, with position and EWT while queued"), (status = 404)),
    security(("api_key" = [])))]
async fn retrieve_callback(
    State(s): State<ApiState>,
    Body(b): Body<IdBody>,
) -> Result<Response, ApiError> {
    let rec = s.callbacks.get(b.id).await.map_err(service_error)?;
    let mut view = serde_json::to_value(CallbackView::from(&rec))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    if rec.state == CallbackState::Queued
        && let Ok(Some(pos)) = s.router.position(&rec.queue, rec.id)
    {
        view["positionInQueue"] = json!(pos + 1);
        let ewt = s
            .router
            .ewt(&rec.queue, pos)
            .ok()
            .flatten()
            .map(|d| d.num_seconds());
        view["estimatedWaitTime"] = json!(ewt.unwrap_or(-1));
    }
    Ok(ok(view))
}

/// Callbacks matching the filters (state, queue, phone number, desired-time range), newest
/// desired time first, in pages of 250: how an app finds a customer's callbacks without an id.
#[utoipa::path(get, path = "/callbacks", tag = "callbacks", params(admin::callbacks::ListQuery),
    responses((status = 200, description = "`data.callbacks`, `data.page`, `data.hasMore`"), (status = 400)),
    security(("api_key" = [])))]
async fn query_callbacks(
    State(s): State<ApiState>,
    q: Result<Query<admin::callbacks::ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    Ok(ok(admin::callbacks::query_page(&s, &q, None).await?))
}

#[utoipa::path(post, path = "/callbacks/cancel", tag = "callbacks", request_body = IdBody,
    responses((status = 200), (status = 404), (status = 409)),
    security(("api_key" = [])))]
async fn cancel_callback(
    State(s): State<ApiState>,
    Body(b): Body<IdBody>,
) -> Result<Response, ApiError> {
    let rec = s
        .callbacks
        .cancel(b.id, "api", false)
        .await
        .map_err(service_error)?;
    Ok(ok(json!({ "id": rec.id })))
}

/// `POST /callbacks/reschedule` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RescheduleBody {
    /// Callback id (SCHEDULED).
    pub id: Uuid,
    /// New time, ISO 8601 with offset.
    pub desired_time: DateTime<chrono::FixedOffset>,
}

#[utoipa::path(post, path = "/callbacks/reschedule", tag = "callbacks", request_body = RescheduleBody,
    responses((status = 200, description = "`data.id` of the replacing callback"), (status = 404), (status = 409)),
    security(("api_key" = [])))]
async fn reschedule_callback(
    State(s): State<ApiState>,
    Body(b): Body<RescheduleBody>,
) -> Result<Response, ApiError> {
    let rec = s
        .callbacks
        .reschedule(b.id, b.desired_time.with_timezone(&Utc), "api")
        .await
        .map_err(service_error)?;
    Ok(ok(json!({ "id": rec.id, "previousId": b.id })))
}

pub(crate) fn query<T: DeserializeOwned>(
    q: Result<Query<T>, QueryRejection>,
) -> Result<T, ApiError> {
    q.map(|Query(v)| v)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

/// Open-for query, as GES: `start` stands for now in every figure. The newer flags are
/// accepted; every figure is always returned.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OpenForQuery {
    /// The instant to answer for (ISO 8601 with offset), default now.
    #[serde(default)]
    pub start: Option<DateTime<chrono::FixedOffset>>,
    /// Accepted for GES clients; the figures are durations and do not depend on it.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Accepted; `immediateOfferHoursOpenFor` is always returned.
    #[serde(default)]
    pub query_immediate_offer_hours: Option<bool>,
    /// Accepted; `isWithinImmediateOfferTime` is always returned.
    #[serde(default)]
    pub return_within_immediate_offer_time: Option<bool>,
    /// Accepted; `isImmediateEnabled` is always returned.
    #[serde(default)]
    pub check_immediate_enabled: Option<bool>,
}

#[utoipa::path(get, path = "/callbacks/open-for/{service}", tag = "callbacks",
    params(("service" = String, Path, description = "callback virtual queue"), OpenForQuery),
    responses((status = 200, description = "open-for and immediate-offer figures"), (status = 400)),
    security(("api_key" = [])))]
async fn open_for_route(
    State(s): State<ApiState>,
    Path(service): Path<String>,
    q: Result<Query<OpenForQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let queue = known_queue(&s, &service, "serviceName")?;
    let hours = s.config.queue_hours(queue);
    let offer = s.config.immediate_offer_hours(queue);
    let at = q
        .start
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| s.clock.now());
    // The current EWT (a live figure, also with `start`); unknown (no eligible agent logged
    // in) counts as no wait.
    let ewt = TimeDelta::seconds(ewt_seconds(&s, &service).max(0));
    let o = crate::callback::availability::open_for(queue, &hours, offer.as_deref(), at, ewt);
    Ok(ok(o))
}
