//! The engine file's sections as an operator writes them. Every field has a default and, where
//! it is a number, a valid range that `config::validate` enforces (see the README's reference).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::hours::BusinessHoursSpec;

mod amd;
pub use amd::{AmdSpec, MachineAction};

/// Where the engine listens.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Listeners {
    /// SIP over UDP (IPv4 and/or IPv6). Default `0.0.0.0:5060`.
    pub sip_udp: Vec<SocketAddr>,
    /// SIP over TCP. Default `0.0.0.0:5060`.
    pub sip_tcp: Vec<SocketAddr>,
    /// REST API. Default `0.0.0.0:8080`.
    pub http: SocketAddr,
}

impl Default for Listeners {
    fn default() -> Self {
        let sip: SocketAddr = ([0, 0, 0, 0], 5060).into();
        Listeners {
            sip_udp: vec![sip],
            sip_tcp: vec![sip],
            http: ([0, 0, 0, 0], 8080).into(),
        }
    }
}

/// SIP behaviour that is not per route point.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SipSettings {
    /// Host or address put in Contact and SDP; default: the address of the listener that received
    /// the request (127.0.0.1 when it is a wildcard).
    pub public_host: Option<String>,
    /// Digest realm. Default `boomerang`.
    pub realm: String,
    /// Challenge REGISTER with digest authentication: an agent's phone registers only with
    /// the agent's `password`. Default true (false opens the registrar to anyone).
    pub authenticate_register: bool,
    /// Challenge INVITEs that come from registered agents' phones. Default false.
    pub authenticate_invite: bool,
    /// Offer a SHA-256 digest challenge beside MD5 (RFC 8760). Default false: some phones
    /// (baresip 1.0) give up on a 401 with a challenge they cannot answer.
    pub digest_sha256: bool,
    /// Largest SIP message accepted, in bytes (1024–1048576). Default 65536.
    pub max_message_bytes: u32,
    /// Most header lines accepted in one message (16–1024). Default 256.
    pub max_headers: u32,
    /// Session-Expires offered and accepted, seconds (90–86400, RFC 4028). Default 1800.
    pub session_expires_seconds: u32,
    /// Longest registration granted, seconds (60–86400). Default 3600.
    pub max_register_expires_seconds: u32,
    /// Calls at once, both directions (1–100000); a new INVITE beyond gets 503. Default 2000.
    pub max_calls: u32,
    /// Inbound calls being set up (not yet answered) at once (1–max_calls); beyond, 503.
    /// Default 200.
    pub max_setup_calls: u32,
    /// SIP endpoint workers, the calls sharded over them by Call-ID (0–256; 0 = one per
    /// available core). Default 0.
    pub workers: u32,
    /// A new INVITE that waited longer than this many milliseconds in the engine's SIP queue
    /// (the engine is behind) gets 503 at once (0 = off, else 10–10000). Default 250.
    pub max_queue_delay_ms: u32,
    /// A TCP message's header section must arrive within this many seconds of its first
    /// byte, and an accepted connection's first header within this long of opening (1–300).
    /// Default 10.
    pub tcp_header_timeout_seconds: u32,
    /// A TCP message's body must arrive within this many seconds of its header (1–300).
    /// Default 10.
    pub tcp_body_timeout_seconds: u32,
    /// A TCP connection silent this long (CRLF keep-alives count) is closed (1–86400).
    /// Default 3600 (above registration and session-refresh intervals).
    pub tcp_idle_timeout_seconds: u32,
    /// Inbound TCP connections open at once (1–1000000); more are closed. Default 10000.
    pub tcp_max_connections: u32,
    /// Inbound TCP connections open at once from one IP address (1–tcp_max_connections).
    /// Default 200.
    pub tcp_max_connections_per_address: u32,
    /// Prefix of the SIP headers that carry a call's attached data (Call Data block) on the
    /// INVITE to the agent's phone: key `order` → `X-Boomerang-order`. Default `X-Boomerang-`.
    pub call_data_header_prefix: String,
    /// Also send the attached data as one RFC 7433 `User-to-User` header (hex of
    /// `key=value` pairs joined with `&`, URL-encoded). Default false.
    pub call_data_user_to_user: bool,
}

impl Default for SipSettings {
    fn default() -> Self {
        SipSettings {
            public_host: None,
            realm: "boomerang".into(),
            authenticate_register: true,
            authenticate_invite: false,
            digest_sha256: false,
            max_message_bytes: 65536,
            max_headers: 256,
            session_expires_seconds: 1800,
            max_register_expires_seconds: 3600,
            max_calls: 2000,
            max_setup_calls: 200,
            workers: 0,
            max_queue_delay_ms: 250,
            tcp_header_timeout_seconds: 10,
            tcp_body_timeout_seconds: 10,
            tcp_idle_timeout_seconds: 3600,
            tcp_max_connections: 10_000,
            tcp_max_connections_per_address: 200,
            call_data_header_prefix: "X-Boomerang-".into(),
            call_data_user_to_user: false,
        }
    }
}

/// RTP and prompts.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MediaSettings {
    /// First RTP port (even, 1024–65534). Default 20000.
    pub rtp_port_min: u16,
    /// Last RTP port (≥ rtp_port_min + 2). Default 30000.
    pub rtp_port_max: u16,
    /// Directory of WAV prompts, relative to the config file. Default `prompts`.
    pub prompts_dir: String,
    /// `SCHED_RR` priority (1–99) of the RTP pacing thread, used when the process may raise
    /// it (root or `CAP_SYS_NICE`); 0 keeps normal priority. Default 10.
    pub rtp_realtime_priority: u8,
    /// An answered call not on hold that receives no RTP for this long is ended with a BYE
    /// (0–3600 s, 0 = never). Default 60.
    pub rtp_timeout_seconds: u32,
    /// Most megabytes the Record block's files may take in `<data_dir>/recordings` (1–1000000);
    /// a recording that might not fit takes the block's `on_failure`. Default 1024.
    pub recordings_max_total_mb: u32,
}

impl Default for MediaSettings {
    fn default() -> Self {
        MediaSettings {
            rtp_port_min: 20000,
            rtp_port_max: 30000,
            prompts_dir: "prompts".into(),
            rtp_realtime_priority: 10,
            rtp_timeout_seconds: 60,
            recordings_max_total_mb: 1024,
        }
    }
}

/// Durable state.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// Which backend keeps the state: `sqlite` (embedded, one node) or `postgres` (shared by
    /// several nodes). Default `sqlite`.
    pub kind: StoreKind,
    /// Directory of the embedded store, relative to the config file. Default `data`.
    pub data_dir: String,
    /// PostgreSQL connection URL (`postgres://user:password@host:port/db`), for `kind: postgres`.
    pub url: String,
    /// Most PostgreSQL connections this node holds (1–1000). Default 16.
    pub pool_size: u32,
    /// Days a COMPLETED callback is kept after its desired time (GES: 14, fixed). Default 14.
    pub retention_days: i64,
    /// Minutes between two sweeps that remove records past their retention. Default 60.
    pub retention_sweep_minutes: i64,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            kind: StoreKind::Sqlite,
            data_dir: "data".into(),
            url: String::new(),
            pool_size: 16,
            retention_days: 14,
            retention_sweep_minutes: 60,
        }
    }
}

/// The store backends.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// SQLite in `data_dir`: the embedded default for one node.
    #[default]
    Sqlite,
    /// PostgreSQL at `url`: state shared by the nodes of a cluster.
    Postgres,
}

/// This node's place in a cluster (several nodes on one PostgreSQL store).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSettings {
    /// This node's name, unique in the cluster (letters, digits, `-`, `_`, `.`; 1–64). Default
    /// `node-1`.
    pub node_id: String,
    /// This node's region, matched by region affinity rules. Default empty (no region).
    pub region: String,
    /// Seconds a node's claim on work lasts without a heartbeat (3–3600); a survivor resolves
    /// a dead node's work after it. Default 15.
    pub lease_seconds: u32,
    /// Seconds a due callback waits for the nodes of a preferred region (region affinity)
    /// before nodes of a fallback region, or of one the rule does not name, claim it
    /// (0–86400). Default 30.
    pub fallback_delay_seconds: u32,
    /// Shared secret of the internal endpoints (`/internal/*`) through which nodes reserve each
    /// other's agents; empty (default) refuses them all and keeps each node's agents to itself.
    pub secret: String,
    /// Base URL at which the other nodes reach this node's HTTP listener (e.g.
    /// `http://10.0.0.2:8080`). Default empty: `http://` and the bound API address.
    pub internal_url: String,
    /// Whether a node LISTENs for callbacks becoming claimable (`NOTIFY boomerang_callbacks`)
    /// and claims at once; false leaves only the poll (e.g. behind a pooler that cannot
    /// LISTEN). Default true.
    pub callback_wakeups: bool,
    /// Milliseconds between two looks for due callbacks in the database whatever the
    /// notifications say, the safety net for lost ones (50–60000). Default 1000.
    pub claim_poll_milliseconds: u32,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            node_id: "node-1".into(),
            region: String::new(),
            lease_seconds: 15,
            fallback_delay_seconds: 30,
            secret: String::new(),
            internal_url: String::new(),
            callback_wakeups: true,
            claim_poll_milliseconds: 1000,
        }
    }
}

/// Graceful shutdown on SIGTERM / SIGINT.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownSettings {
    /// Seconds live calls may go on after the signal before they get our BYE (0–86400).
    /// Default 30.
    pub drain_seconds: u32,
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        ShutdownSettings { drain_seconds: 30 }
    }
}

/// How log lines are written (to standard output).
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event, span fields before the message. Default.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields`, `target`, `span`, `spans`), for
    /// log shippers: a call's lines are those whose `spans` carry its `call_id`.
    Json,
}

/// Log output.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingSettings {
    /// `text` or `json`. Default `text`.
    pub format: LogFormat,
}

/// The Prometheus endpoint and the counters behind it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// Serve `/metrics` and update its counters on the SIP and HTTP paths. Default true.
    pub enabled: bool,
    /// A separate listener for `/metrics` (and the probes), besides the API port. Default none.
    pub listen: Option<std::net::SocketAddr>,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            enabled: true,
            listen: None,
        }
    }
}

/// A dialled number that starts a flow.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RoutePointSpec {
    /// The request-URI user part that selects this route point, e.g. `8000` or `+33123456789`.
    #[serde(deserialize_with = "crate::yaml::string_or_number")]
    pub number: String,
    /// Flow file, relative to `flows_dir`.
    pub flow: String,
    /// Free text for operators.
    #[serde(default)]
    pub description: String,
}

/// SIP transport for a trunk.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// UDP (default).
    #[default]
    Udp,
    /// TCP.
    Tcp,
}

/// A SIP trunk through which customers are called.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TrunkSpec {
    /// Name queues refer to.
    pub name: String,
    /// Host name or address of the trunk's SIP server.
    pub host: String,
    /// Port (default 5060).
    #[serde(default = "default_sip_port")]
    pub port: u16,
    /// `udp` (default) or `tcp`.
    #[serde(default)]
    pub transport: TransportKind,
    /// Digest user for 401/407 challenges.
    pub username: Option<String>,
    /// Digest password.
    pub password: Option<String>,
    /// Calling number presented to customers (default: the queue's routing point).
    pub caller_id: Option<String>,
    /// Send INVITEs without SDP (late offer) for trunks that want to make the offer.
    #[serde(default)]
    pub late_offer: bool,
}

fn default_sip_port() -> u16 {
    5060
}

/// An agent who can log in and take calls.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    /// Unique id.
    #[serde(deserialize_with = "crate::yaml::string_or_number")]
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// SIP user the agent's phone registers as (default: the id).
    #[serde(default, deserialize_with = "opt_string_or_number")]
    pub sip_user: Option<String>,
    /// Digest password for the phone, when SIP authentication is on.
    pub password: Option<String>,
    /// Skill name → level 0–10.
    #[serde(default)]
    pub skills: BTreeMap<String, i64>,
}

/// An optional string or number; `null` is absent (the stored form of an agent made through
/// the API writes `sip_user: null`, and must read back).
fn opt_string_or_number<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    struct Text(String);
    impl<'de> Deserialize<'de> for Text {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            crate::yaml::string_or_number(d).map(Text)
        }
    }
    Option::<Text>::deserialize(d).map(|t| t.map(|t| t.0))
}

/// Who places the call when a callback's turn comes.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum CallDirection {
    /// The engine dials the customer (GES `USERTERMINATED`). Default.
    #[default]
    #[serde(alias = "USERTERMINATED")]
    BusinessToCustomer,
    /// The customer is told to call in (Click-to-Call-In delayed, GES `USERORIGINATED`).
    #[serde(alias = "USERORIGINATED")]
    CustomerDialsIn,
}

/// How a queue estimates wait time.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum EwtMethod {
    /// (position + 1) × average handle time ÷ eligible agents, adjusted for ready agents. Default.
    #[default]
    QueueLength,
    /// Moving average of the waits observed for the last interactions (as Asterisk does).
    MovingAverage,
}

/// Which ready agent a queue picks.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum SelectionPolicy {
    /// The agent ready for the longest time. Default.
    #[default]
    LongestIdle,
    /// Take turns among eligible agents.
    RoundRobin,
}

/// A virtual queue and its CALLBACK_SETTINGS row.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct QueueSpec {
    /// Service name, e.g. `Sales_VQ_CB` (letters, digits, `_`, `-`, `.`).
    pub name: String,
    /// Inbound report queue (default for `X_VQ_CB`: `X_VQ`).
    pub inbound_queue: Option<String>,
    /// Outbound report queue (default for `X_VQ_CB`: `X_VQ_CB_OUT`).
    pub outbound_queue: Option<String>,
    /// Callback-type flow run when a callback's customer answers (relative to `flows_dir`).
    pub callback_application: Option<String>,
    /// Name of a `business_hours` entry (default: always open, UTC).
    pub business_hours: Option<String>,
    /// Accepts immediate callbacks. Default true.
    #[serde(default = "yes")]
    pub immediate_enabled: bool,
    /// Accepts scheduled callbacks. Default true.
    #[serde(default = "yes")]
    pub scheduled_enabled: bool,
    /// Scheduled callbacks per slot (0–10000). Default 10.
    #[serde(default = "d_slot_capacity")]
    pub slot_capacity: i64,
    /// Slot length in minutes (5–1440; should divide 60 when capacity rules apply). Default 15.
    #[serde(default = "d_slot_duration")]
    pub slot_duration_minutes: i64,
    /// Minutes after which a waiting callback is purged (1–10080). Default 480.
    #[serde(default = "d_purge")]
    pub callback_purge_time_minutes: i64,
    /// Minutes before closing when immediate callbacks stop being offered (0–720). Default 0.
    #[serde(default)]
    pub immediate_blackout_minutes: i64,
    /// Name of a `business_hours` entry limiting when immediate callback is offered.
    pub immediate_offer_hours: Option<String>,
    /// Outbound attempts before REDIAL_LIMIT_REACHED (1–20). Default 3.
    #[serde(default = "d_attempts")]
    pub max_dial_attempts: i64,
    /// Seconds between a failed attempt and the next (10–86400). Default 300.
    #[serde(default = "d_retry")]
    pub retry_interval_seconds: i64,
    /// Seconds an outbound call rings before we cancel it (5–300). Default 30.
    #[serde(default = "d_ring")]
    pub ring_timeout_seconds: i64,
    /// Seconds of after-call work an agent gets after each call of this queue before being
    /// Ready again (0–3600). Default 0.
    #[serde(default)]
    pub wrap_up_seconds: i64,
    /// Minutes a customer-dials-in callback lives after its first push (1–10080). Default 60.
    #[serde(default = "d_pushed_expiry")]
    pub pushed_callback_expiry_minutes: i64,
    /// EWT in minutes under which CALLBACK_UPCOMING is pushed (0–1440). Default 5.
    #[serde(default = "d_push_threshold")]
    pub push_notification_threshold_minutes: i64,
    /// Who dials: `business_to_customer` (default) or `customer_dials_in`.
    #[serde(default)]
    pub call_direction: CallDirection,
    /// Route point number used as caller id / origin of outbound callback calls.
    #[serde(default, deserialize_with = "opt_string_or_number")]
    pub routing_point: Option<String>,
    /// Trunk for outbound calls (default: the first trunk).
    pub trunk: Option<String>,
    /// Which agents may serve the queue (empty: every agent).
    #[serde(default)]
    pub skill_expression: String,
    /// Routing priority of the queue's interactions (0–1000000, higher first). Default 0.
    #[serde(default)]
    pub priority: i64,
    /// Priority growth of the queue's waiting interactions (callbacks included): `increment`
    /// every `every_seconds` up to `limit`, counted from their queue time. Default: none.
    #[serde(default)]
    pub priority_growth: Option<crate::routing::growth::PriorityGrowth>,
    /// Customers are dialled only inside this window of their local time (the zone from the
    /// number's country). Default: no window (the queue's business hours only).
    #[serde(default)]
    pub calling_hours: Option<crate::callback::calling_hours::CallingHours>,
    /// Offer a callback only when EWT exceeds this many seconds (0–86400). Default 0.
    #[serde(default)]
    pub ewt_offer_threshold_seconds: i64,
    /// `queue_length` (default) or `moving_average`.
    #[serde(default)]
    pub ewt_method: EwtMethod,
    /// `longest_idle` (default) or `round_robin`.
    #[serde(default)]
    pub selection: SelectionPolicy,
    /// How many days ahead scheduled callbacks may be booked (1–90). Default 14.
    #[serde(default = "d_days_ahead")]
    pub max_days_ahead: i64,
    /// Service-level target: an interaction answered after waiting at most this many seconds
    /// counts as within service level (1–3600). Default 20.
    #[serde(default = "d_service_level")]
    pub service_level_seconds: i64,
    /// Every push event of this queue's callbacks is also POSTed here (a signed webhook).
    #[serde(default)]
    pub push_webhook_url: Option<String>,
    /// Signing secret of the queue's `push_webhook_url` (default: `push.webhook_secret`).
    #[serde(default)]
    pub push_webhook_secret: Option<String>,
    /// Click-to-Call-In group whose number and access code the CALLBACK_READY push of a
    /// customer-dials-in callback carries (none: the app asks the Call-In API itself).
    #[serde(default)]
    pub call_in_group: Option<String>,
    /// Answering-machine detection on the customer leg of this queue's outbound callbacks
    /// (none: every answer is connected).
    #[serde(default)]
    pub amd: Option<AmdSpec>,
    /// Route point of the post-call survey (a flow with a `survey` block) run on the customer
    /// after the agent hangs up; a callback's `surveyRP` overrides it. None: no survey.
    #[serde(default, deserialize_with = "opt_string_or_number")]
    pub survey_route_point: Option<String>,
}

fn d_service_level() -> i64 {
    20
}

fn yes() -> bool {
    true
}
fn d_slot_capacity() -> i64 {
    10
}
fn d_slot_duration() -> i64 {
    15
}
fn d_purge() -> i64 {
    480
}
fn d_attempts() -> i64 {
    3
}
fn d_retry() -> i64 {
    300
}
fn d_ring() -> i64 {
    30
}
fn d_pushed_expiry() -> i64 {
    60
}
fn d_push_threshold() -> i64 {
    5
}
fn d_days_ahead() -> i64 {
    14
}

/// An API key as stored in the file: its SHA-256, never the key itself (a plain `key` is
/// accepted for demos and hashed on load).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySpec {
    /// Label for logs and the error log.
    pub name: String,
    /// Hex SHA-256 of the key.
    pub key_sha256: Option<String>,
    /// The key in clear (demo configurations only).
    pub key: Option<String>,
}

/// reCAPTCHA verification of `captchaToken` (create, `/captcha/verify`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CaptchaSettings {
    /// `v2` (success is enough) or `v3` (success and a score of at least `min_score`).
    #[serde(default)]
    pub version: CaptchaVersion,
    /// The secret key sent to the verify URL.
    pub secret: String,
    /// The site key `/captcha/verify` must name (any when absent).
    #[serde(default)]
    pub site_key: Option<String>,
    /// The siteverify endpoint, e.g. https://www.google.com/recaptcha/api/siteverify.
    pub verify_url: String,
    /// v3: lowest accepted score (0.0–1.0). Default 0.5.
    #[serde(default = "default_min_score")]
    pub min_score: f64,
    /// v3: the action the token must carry (any when absent).
    #[serde(default)]
    pub action: Option<String>,
    /// Milliseconds to wait for the verify URL (100–30000). Default 5000.
    #[serde(default = "default_captcha_timeout")]
    pub timeout_ms: i64,
    /// API key names whose creates must carry a valid `captchaToken`.
    #[serde(default)]
    pub enforce_keys: Vec<String>,
    /// Queues whose creates must carry a valid `captchaToken`.
    #[serde(default)]
    pub enforce_queues: Vec<String>,
}

fn default_min_score() -> f64 {
    0.5
}

fn default_captcha_timeout() -> i64 {
    5000
}

/// reCAPTCHA version.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum CaptchaVersion {
    /// Checkbox / invisible: `success` decides.
    #[default]
    V2,
    /// Score based: `success` and `score ≥ min_score`.
    V3,
}

/// The REST API's security settings.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSettings {
    /// Keys accepted in `x-api-key`.
    pub keys: Vec<ApiKeySpec>,
    /// Origins allowed by CORS (exact match); empty allows none.
    pub cors_origins: Vec<String>,
    /// Requests per second allowed per key (1–100000). Default 200.
    pub rate_limit_per_second: i64,
    /// Largest request body in bytes (1024–10485760). Default 65536.
    pub max_body_bytes: i64,
    /// Seconds for a request's headers to arrive, from connection open or the previous answer
    /// (so also how long an idle keep-alive connection stays) (1–3600). Default 10.
    pub header_timeout_seconds: i64,
    /// Seconds for a request's body to arrive once its headers have, and for the client to
    /// take an answer being written (1–3600). Default 30.
    pub body_timeout_seconds: i64,
    /// HTTP connections open at once (1–1000000). Default 4096.
    pub max_connections: i64,
    /// HTTP connections open at once from one client address (1–1000000). Default 256.
    pub max_connections_per_address: i64,
    /// reCAPTCHA verification; absent: no CAPTCHA is checked.
    pub captcha: Option<CaptchaSettings>,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            keys: Vec::new(),
            cors_origins: Vec::new(),
            rate_limit_per_second: 200,
            max_body_bytes: 65536,
            header_timeout_seconds: 10,
            body_timeout_seconds: 30,
            max_connections: 4096,
            max_connections_per_address: 256,
            captcha: None,
        }
    }
}

/// An administration user written in the file (more can be added through `/admin/users`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AdminUserSpec {
    /// Login name (letters, digits, `_ - . @`).
    pub name: String,
    /// Argon2id PHC string, as `boomerang hash-password` prints it.
    pub password_hash: String,
    /// `Administrator`, `Supervisor`, `Monitor`, `Developer` (at least one).
    pub roles: Vec<crate::api::admin::auth::Role>,
    /// Queues the user may read (line-of-business segmentation); absent = every queue.
    pub queues: Option<Vec<String>>,
}

/// The administration API's users and sessions.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSettings {
    /// Users known at start.
    pub users: Vec<AdminUserSpec>,
    /// Minutes without a request after which an access token stops working (1–1440). Default 20.
    pub session_idle_minutes: i64,
    /// Password checks (19 MiB of Argon2 each) run at once, engine-wide (0–256); 0 = one per
    /// CPU core. Default 0.
    pub login_concurrency: i64,
    /// Milliseconds a login waits for a password-check slot before a 503 (0–30000). Default 2000.
    pub login_wait_ms: i64,
    /// Wrong passwords in a row that lock an account, from any address (1–1000). Default 5.
    pub lockout_failures: i64,
    /// First lockout in seconds; each further wrong password doubles it (1–86400). Default 30.
    pub lockout_seconds: i64,
    /// Longest lockout in seconds (1–604800, at least `lockout_seconds`). Default 900.
    pub lockout_max_seconds: i64,
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            users: Vec::new(),
            session_idle_minutes: 20,
            login_concurrency: 0,
            login_wait_ms: 2000,
            lockout_failures: 5,
            lockout_seconds: 30,
            lockout_max_seconds: 900,
        }
    }
}

/// The whole engine file as written.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
// Every section is optional: a missing one takes its type's default.
#[serde(default, deny_unknown_fields)]
pub struct ConfigSpec {
    /// Listener addresses.
    pub listeners: Listeners,
    /// SIP behaviour.
    pub sip: SipSettings,
    /// RTP and prompts.
    pub media: MediaSettings,
    /// Durable state.
    pub store: StoreSettings,
    /// This node in a cluster of nodes sharing a PostgreSQL store.
    pub cluster: ClusterSettings,
    /// Directory of flow files, relative to the config file. Default `ivr-flows`.
    #[serde(default = "d_flows_dir")]
    pub flows_dir: String,
    /// What flows may reach beyond the call (`flows.http`: HTTP Request blocks).
    pub flows: crate::flow::http::FlowsSettings,
    /// Named business hours, referred to by queues.
    pub business_hours: BTreeMap<String, BusinessHoursSpec>,
    /// Dialled numbers and their flows.
    pub route_points: Vec<RoutePointSpec>,
    /// Outbound trunks.
    pub trunks: Vec<TrunkSpec>,
    /// Agents.
    pub agents: Vec<AgentSpec>,
    /// Virtual queues with their callback settings.
    pub queues: Vec<QueueSpec>,
    /// REST API security.
    pub api: ApiSettings,
    /// Administration users and sessions.
    pub admin: AdminSettings,
    /// Click-to-Call-In groups defined with the configuration (more can be added at run time).
    pub callin_groups: Vec<crate::callin::CallInGroup>,
    /// Graceful shutdown.
    pub shutdown: ShutdownSettings,
    /// Log output.
    pub logging: LoggingSettings,
    /// Prometheus metrics.
    pub metrics: MetricsSettings,
    /// Push delivery: outbox retries, webhook secret, FCM.
    pub push: crate::push::PushSettings,
}

fn d_flows_dir() -> String {
    "ivr-flows".into()
}
