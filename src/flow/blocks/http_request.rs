//! HTTP Request (Designer's External Services): GETs or POSTs JSON to a service the
//! configuration allows (`flows.http.allow`), with a timeout and retries, and maps the JSON
//! answer into variables. Any failure takes `on_error` with the reason in `http.error`. The
//! request runs on the call's own task through a shared, bounded client, so it never holds
//! another call.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::BlockType;
use crate::flow::check::{BlockCheck, valid_variable, value_pos};
use crate::flow::expr::Value;
use crate::flow::http::{FetchRequest, allowed, lookup, valid_path};
use crate::flow::interpreter::{Cx, Step};
use crate::flow::model::{AppKind, ExprText, num};
use crate::yaml;

fn http_var() -> String {
    "http".into()
}

/// The HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// GET (no body).
    #[default]
    Get,
    /// POST with `body` as a JSON object.
    Post,
}

/// Calls an allowed HTTP service and maps its JSON answer into variables.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpRequest {
    /// `get` (default) or `post`.
    #[serde(default)]
    pub method: Method,
    /// The URL, checked against `flows.http.allow` at load.
    pub url: Option<String>,
    /// Or an expression giving it (checked when the block runs).
    pub url_from: Option<ExprText>,
    /// Query parameters: name → expression, appended URL-encoded.
    #[serde(default)]
    pub query: BTreeMap<String, ExprText>,
    /// Request headers: name → expression.
    #[serde(default)]
    pub headers: BTreeMap<String, ExprText>,
    /// POST only: the JSON object sent, key → expression (numbers and booleans stay so).
    #[serde(default)]
    pub body: BTreeMap<String, ExprText>,
    /// Milliseconds per attempt (100 to 30000, default 2000).
    #[serde(default = "num::<2000>")]
    #[schemars(range(min = 100, max = 30000))]
    pub timeout_ms: u32,
    /// Further attempts after a timeout, a refused connection or a 5xx (0 to 3, default 0).
    #[serde(default)]
    #[schemars(range(min = 0, max = 3))]
    pub retries: u32,
    /// Variable → where its value is in the JSON answer: a JSON pointer (`/customer/tier`)
    /// or a dotted path (`customer.tier`, `items.0.id`).
    #[serde(default)]
    pub response: BTreeMap<String, String>,
    /// Prefix of the result variables (`http.status`, `http.error`, `http.ok`).
    #[serde(default = "http_var")]
    pub result: String,
    /// Block when the request failed (default: continue).
    pub on_error: Option<String>,
}

impl BlockType for HttpRequest {
    const NEXT: Option<&'static str> = Some("Block to run after a success.");

    branches!(on_error);

    fn falls_through(&self, _kind: AppKind) -> bool {
        true
    }

    fn check(&self, c: &mut BlockCheck<'_>) {
        match (&self.url, &self.url_from) {
            (Some(u), None) => {
                let allow = &c.ctx.config.spec.flows.http.allow;
                if reqwest::Url::parse(u).is_err() {
                    c.at("url", format!("`{u}` is not a URL"));
                } else if !allowed(u, allow) {
                    c.at(
                        "url",
                        format!(
                            "`{u}` is not under `flows.http.allow` in the configuration{}",
                            if allow.is_empty() {
                                " (empty: no request is allowed)".to_string()
                            } else {
                                format!(" ({})", allow.join(", "))
                            }
                        ),
                    );
                }
            }
            (None, Some(e)) => c.expr("url_from", e),
            _ => c.block_err("give exactly one of `url` and `url_from`"),
        }
        for (key, map) in [
            ("query", &self.query),
            ("headers", &self.headers),
            ("body", &self.body),
        ] {
            let node = c.node.get(key);
            let path = yaml::join(c.path, key);
            for (name, e) in map {
                let kpos = c.key_pos(node, name);
                let token =
                    !name.is_empty() && name.bytes().all(crate::flow::call_data::is_token_byte);
                if key == "headers" && !token {
                    c.err(kpos, format!("{path}.{name}"), "not a header name");
                }
                c.expr_at(
                    node.and_then(|m| m.get(name)),
                    kpos,
                    &format!("{path}.{name}"),
                    e,
                );
            }
        }
        if self.method == Method::Get && !self.body.is_empty() {
            c.at_key("body", "`body` needs `method: post`");
        }
        c.range("timeout_ms", self.timeout_ms, 100, 30_000);
        c.range("retries", self.retries, 0, 3);
        let node = c.node.get("response");
        for (var, p) in &self.response {
            let path = format!("{}.{var}", yaml::join(c.path, "response"));
            let kpos = c.key_pos(node, var);
            if !valid_variable(var) {
                c.var_name_at(kpos, &path, var);
            }
            if !valid_path(p) {
                let vpos = node.map(|m| value_pos(m, var)).unwrap_or(c.node.pos);
                c.err(
                    vpos,
                    path,
                    format!(
                        "`{p}` is neither a JSON pointer (`/a/0/b`) nor a dotted path (`a.0.b`)"
                    ),
                );
            }
        }
        c.var_name("result", &self.result);
    }

    async fn run(&self, cx: &mut Cx<'_>) -> Step {
        run(self, cx).await
    }
}

/// A variable's value as JSON: numbers and booleans keep their type.
fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Str(s) => serde_json::Value::String(s.clone()),
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Num(n) => serde_json::Number::from_f64(*n)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
    }
}

/// A JSON value as a variable: text, numbers and booleans as themselves, null as empty text,
/// arrays and objects as their JSON text.
fn from_json(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::String(s) => Value::Str(s.clone()),
        serde_json::Value::Number(n) => Value::Num(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Null => Value::Str(String::new()),
        other => Value::Str(other.to_string()),
    }
}

/// The request's URL with its query, or why there is none.
fn url(b: &HttpRequest, cx: &Cx<'_>) -> Option<String> {
    let base = match (&b.url, &b.url_from) {
        (Some(u), _) => u.clone(),
        (None, Some(e)) => cx.eval(e).to_string(),
        (None, None) => return None,
    };
    let mut u = reqwest::Url::parse(&base).ok()?;
    if !b.query.is_empty() {
        let mut q = u.query_pairs_mut();
        for (k, e) in &b.query {
            q.append_pair(k, &cx.eval(e).to_string());
        }
    }
    Some(u.into())
}

async fn run(b: &HttpRequest, cx: &mut Cx<'_>) -> Step {
    let r = &b.result;
    let Some(url) = url(b, cx) else {
        cx.set(&format!("{r}.ok"), false);
        cx.set(&format!("{r}.status"), 0);
        cx.set(&format!("{r}.error"), "bad_url");
        cx.outcome("failed: bad_url");
        return Step::Branch(b.on_error.clone());
    };
    let req = FetchRequest {
        post: b.method == Method::Post,
        url,
        headers: b
            .headers
            .iter()
            .map(|(k, e)| (k.clone(), cx.eval(e).to_string()))
            .collect(),
        body: (b.method == Method::Post).then(|| {
            serde_json::Value::Object(
                b.body
                    .iter()
                    .map(|(k, e)| (k.clone(), to_json(&cx.eval(e))))
                    .collect(),
            )
        }),
        timeout: Duration::from_millis(b.timeout_ms.into()),
        retries: b.retries,
        want_json: !b.response.is_empty(),
    };
    // The allow-list in force: a reload may have narrowed it.
    let allow = cx.services.callbacks.config().spec.flows.http.allow.clone();
    match cx.services.http.fetch(&req, &allow).await {
        Ok(resp) => {
            cx.set(&format!("{r}.ok"), true);
            cx.set(&format!("{r}.status"), i64::from(resp.status));
            cx.set(&format!("{r}.error"), "");
            let mut mapped = Vec::new();
            for (var, path) in &b.response {
                let v = lookup(&resp.json, path).map_or(Value::Str(String::new()), from_json);
                mapped.push(format!("{var}={v}"));
                cx.set(var, v);
            }
            cx.outcome(format!(
                "{} {}{}",
                resp.status,
                if mapped.is_empty() {
                    "ok".to_string()
                } else {
                    mapped.join(", ")
                },
                if resp.attempts > 1 {
                    format!(" (attempt {})", resp.attempts)
                } else {
                    String::new()
                }
            ));
            Step::Next
        }
        Err((e, attempts)) => {
            let status = match e {
                crate::flow::http::FetchError::Status(s) => i64::from(s),
                _ => 0,
            };
            cx.set(&format!("{r}.ok"), false);
            cx.set(&format!("{r}.status"), status);
            cx.set(&format!("{r}.error"), e.to_string());
            cx.outcome(format!(
                "failed: {e}{}{}",
                if status > 0 {
                    format!(" {status}")
                } else {
                    String::new()
                },
                if attempts > 1 {
                    format!(" after {attempts} attempts")
                } else {
                    String::new()
                }
            ));
            Step::Branch(b.on_error.clone())
        }
    }
}
