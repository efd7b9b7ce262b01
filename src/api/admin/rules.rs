//! `/admin/rules/…`: the Tools tab's number validation ("Permitted & Blocked Numbers"),
//! capacity and region affinity rules, and their assignment to queues. Every change is written
//! to the store before it answers and is in force at once; errors name the field at fault.
//!
//! Reads need `ReadRules` (every role); writes need the kind's permission: number rules
//! `WriteNumberRules` (Administrator, Developer, Supervisor, as the guide says), capacity and
//! region affinity `WriteCapacityRules` / `WriteRegionRules` (Administrator).

use std::marker::PhantomData;

use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::crud::{self, Named, record};
use super::{Admin, AdminUser, Permission};
use crate::api::{ApiError, ApiState, Body, Reply, ok};
use crate::rules::affinity::RegionAffinityRule;
use crate::rules::book::{BookError, BookRule, CapacityRule, Listed, QueueRules, RuleKind};
use crate::rules::{NumberRejection, NumberRuleSpec};
use crate::store::Document;

/// The rule routes, relative to `/admin`.
pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .merge(number_routes())
        .routes(routes!(test_number))
        .merge(capacity_routes())
        .routes(routes!(set_capacity_duration))
        .merge(affinity_routes())
        .routes(routes!(list_assignments))
        .routes(routes!(get_assignment, assign_rules))
}

/// The HTTP form of a book error: 404 for unknown names, 409 for conflicts, 400 for bad input,
/// 500 when the store failed (nothing changed then).
pub(crate) fn book_error(e: BookError) -> ApiError {
    let message = crud::with_field(e.field(), &e);
    match e {
        BookError::UnknownRule { .. } | BookError::UnknownQueue(_) => ApiError::not_found(message),
        BookError::Exists { .. } | BookError::InUse { .. } => ApiError::conflict(message),
        BookError::Name(_)
        | BookError::Rename { .. }
        | BookError::Number(_)
        | BookError::Capacity(_)
        | BookError::Affinity(_) => ApiError::bad_request(message),
        BookError::Store(_) | BookError::Corrupt { .. } => {
            ApiError::internal(format!("{message}; nothing was changed"))
        }
        BookError::NotRecorded(_) => ApiError::internal(message),
    }
}

/// Keeps only the queues the user may read in a rule's list of queues.
fn visible<T>(user: &AdminUser, mut listed: Listed<T>) -> Listed<T> {
    listed.queues.retain(|q| user.can_read_queue(q));
    listed
}

/// The HTTP side of one kind of rule: its routes are [`crud`]'s over the rule book.
pub struct Rules<R>(PhantomData<R>);

type Number = Rules<NumberRuleSpec>;
type Capacity = Rules<CapacityRule>;
type Affinity = Rules<RegionAffinityRule>;

impl<R: BookRule> Named for Rules<R> {
    type Body = R;
    type Out = Listed<R>;
    type Saved = R;
    const ACTION: &'static str = R::KIND.doc_kind();
    const BODY_KEY: &'static str = "rule";
    const WRITE: Permission = match R::KIND {
        RuleKind::Number => Permission::WriteNumberRules,
        RuleKind::Capacity => Permission::WriteCapacityRules,
        RuleKind::Affinity => Permission::WriteRegionRules,
    };

    fn list(s: &ApiState, user: &AdminUser) -> Result<Vec<Listed<R>>, ApiError> {
        let rules = s.rules.rules::<R>();
        Ok(rules.into_iter().map(|r| visible(user, r)).collect())
    }

    fn get(s: &ApiState, user: &AdminUser, name: &str) -> Result<Listed<R>, ApiError> {
        let rule = s.rules.rule::<R>(name).map_err(book_error)?;
        Ok(visible(user, rule))
    }

    async fn create(s: &ApiState, rule: R, also: Vec<Document>) -> Result<R, ApiError> {
        s.rules.create(rule, also).await.map_err(book_error)
    }

    async fn update(s: &ApiState, name: &str, rule: R, also: Vec<Document>) -> Result<R, ApiError> {
        s.rules.update(name, rule, also).await.map_err(book_error)
    }

    async fn delete(s: &ApiState, name: &str, also: Vec<Document>) -> Result<(), ApiError> {
        let book = &s.rules;
        book.delete(R::KIND, name, also).await.map_err(book_error)
    }
}

// ---- number validation rules ----

crud::handlers! {
    Number, body = NumberRuleSpec, tag = "rules", path = "/rules/number",
    item = "/rules/number/{name}", name = "rule name", routes = number_routes;
    /// Every number validation rule with the queues it is assigned to.
    list list_number_rules((status = 200, description = "`data`: rules with their `queues`"), (status = 401), (status = 403));
    /// Creates a number validation rule: countries allowed (ISO 3166 codes, at least one) and
    /// optional blocked patterns (regular expressions over the digits, without `+`).
    create create_number_rule((status = 201, description = "the rule as saved"),
        (status = 400, description = "a field is invalid; the message names it"),
        (status = 409, description = "the name is taken"));
    /// One number validation rule.
    get get_number_rule((status = 200), (status = 404));
    /// Replaces a number validation rule (the name cannot change); queues using it apply the new
    /// version to their next creation and their next dial.
    update update_number_rule((status = 200), (status = 400), (status = 404));
    /// Deletes a number validation rule; refused (409) while a queue uses it.
    delete delete_number_rule((status = 200), (status = 404), (status = 409, description = "assigned to a queue"));
}

/// `POST /rules/number/{name}/test` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TestNumberBody {
    /// The number to test, in international form (`+33 6 12 34 56 78`).
    pub phone_number: String,
}

/// Tests a number against a saved rule in the guide's order: the country first (a number from
/// a country the rule does not allow is reported as such, whatever the patterns say), then the
/// blocked patterns. The answer is a verdict, not an error.
#[utoipa::path(post, path = "/rules/number/{name}/test", tag = "rules", request_body = TestNumberBody,
    params(("name" = String, Path, description = "rule name")),
    responses((status = 200, description = "`data.valid`, and `data.failedCheck` (`format`, `country` or `pattern`) with `data.reason` when refused"),
              (status = 404)))]
pub async fn test_number(
    Admin { s, user }: Admin,
    Path(name): Path<String>,
    Body(b): Body<TestNumberBody>,
) -> Reply {
    user.require(Permission::ReadRules)?;
    let verdict = s
        .rules
        .test_number(&name, &b.phone_number)
        .map_err(book_error)?;
    let data = match verdict {
        Ok(e164) => json!({ "valid": true, "phoneNumber": e164 }),
        Err(e) => {
            let check = match e {
                NumberRejection::Invalid(_) => "format",
                NumberRejection::CountryNotAllowed { .. } => "country",
                NumberRejection::Blocked { .. } => "pattern",
            };
            json!({ "valid": false, "failedCheck": check, "reason": e.to_string() })
        }
    };
    Ok(ok(data))
}

// ---- capacity rules ----

crud::handlers! {
    Capacity, body = CapacityRule, tag = "rules", path = "/rules/capacity",
    item = "/rules/capacity/{name}", name = "rule name", routes = capacity_routes;
    /// Every capacity rule with the queues it is assigned to.
    list list_capacity_rules((status = 200, description = "`data`: rules (`name`, `capacity` statement, `queues`)"));
    /// Creates a capacity rule from a JSON capacity statement in the guide's format,
    /// `{"days":{"mon":{"09:00":5}},"duration":60}`; absent cells mean no capacity.
    create create_capacity_rule((status = 201), (status = 400), (status = 409));
    /// One capacity rule.
    get get_capacity_rule((status = 200), (status = 404));
    /// Replaces a capacity rule's statement wholly: cells it leaves out become 0, as when a
    /// statement is pasted over a rule in the guide.
    update update_capacity_rule((status = 200), (status = 400), (status = 404));
    /// Deletes a capacity rule; refused (409) while a queue uses it.
    delete delete_capacity_rule((status = 200), (status = 404), (status = 409, description = "assigned to a queue"));
}

/// `PUT /rules/capacity/{name}/duration` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DurationBody {
    /// Cell length: 60 (hours) or 30 (half hours).
    pub duration: u32,
}

/// Switches a capacity rule's timeslot length with the guide's conversion: to hours the :30
/// values are dropped; to half hours each hour's value is repeated at :30.
#[utoipa::path(put, path = "/rules/capacity/{name}/duration", tag = "rules", request_body = DurationBody,
    params(("name" = String, Path, description = "rule name")),
    responses((status = 200, description = "the converted rule"), (status = 400), (status = 404)))]
pub async fn set_capacity_duration(
    Admin { s, user }: Admin,
    Path(name): Path<String>,
    Body(b): Body<DurationBody>,
) -> Reply {
    user.require(Permission::WriteCapacityRules)?;
    let also = record(
        &s,
        &user,
        "capacity_rule.duration",
        json!({ "name": &name, "duration": b.duration }),
    );
    let saved = s
        .rules
        .set_capacity_duration(&name, b.duration, also)
        .await
        .map_err(book_error)?;
    Ok(ok(saved))
}

// ---- region affinity rules ----

crud::handlers! {
    Affinity, body = RegionAffinityRule, tag = "rules", path = "/rules/affinity",
    item = "/rules/affinity/{name}", name = "rule name", routes = affinity_routes;
    /// Every region affinity rule with the queues it is assigned to.
    list list_affinity_rules((status = 200));
    /// Creates a region affinity rule: preferred regions (at least one) then fallback regions, each
    /// in the order tried; ignored regions are never used.
    create create_affinity_rule((status = 201), (status = 400), (status = 409));
    /// One region affinity rule.
    get get_affinity_rule((status = 200), (status = 404));
    /// Replaces a region affinity rule.
    update update_affinity_rule((status = 200), (status = 400), (status = 404));
    /// Deletes a region affinity rule; refused (409) while a queue uses it.
    delete delete_affinity_rule((status = 200), (status = 404), (status = 409));
}

// ---- assignments ----

/// The rules of every queue the user may read (the Queues page's rule columns).
#[utoipa::path(get, path = "/rules/queues", tag = "rules",
    responses((status = 200, description = "`data`: queue name → `numberRule`, `capacityRule`, `affinityRule`")))]
pub async fn list_assignments(Admin { s, user }: Admin) -> Reply {
    user.require(Permission::ReadRules)?;
    let mut all = s.rules.assignments();
    all.retain(|q, _| user.can_read_queue(q));
    Ok(ok(all))
}

/// The rules assigned to one queue.
#[utoipa::path(get, path = "/rules/queues/{queue}", tag = "rules",
    params(("queue" = String, Path, description = "virtual queue")),
    responses((status = 200), (status = 403), (status = 404)))]
pub async fn get_assignment(Admin { s, user }: Admin, Path(queue): Path<String>) -> Reply {
    user.require(Permission::ReadRules)?;
    user.require_queue(&queue)?;
    let rules = s.rules.queue_rules(&queue).map_err(book_error)?;
    Ok(ok(rules))
}

/// `PUT /rules/queues/{queue}` body: a rule name assigns, `null` clears, absent leaves it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AssignBody {
    /// Number validation rule.
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<String>)]
    pub number_rule: Option<Option<String>>,
    /// Capacity rule.
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<String>)]
    pub capacity_rule: Option<Option<String>>,
    /// Region affinity rule.
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<String>)]
    pub affinity_rule: Option<Option<String>>,
}

/// Assigns or clears a queue's rules (one of each kind per queue), all in one durable write,
/// in force at once. Each kind changed needs its write permission.
#[utoipa::path(put, path = "/rules/queues/{queue}", tag = "rules", request_body = AssignBody,
    params(("queue" = String, Path, description = "virtual queue")),
    responses((status = 200, description = "the queue's rules after the change"),
              (status = 400, description = "a named rule does not exist; the message names the field"),
              (status = 403), (status = 404, description = "no such queue")))]
pub async fn assign_rules(
    State(s): State<ApiState>,
    user: AdminUser,
    Path(queue): Path<String>,
    Body(b): Body<AssignBody>,
) -> Reply {
    let changes: Vec<(RuleKind, &'static str, Permission, Option<String>)> = [
        (
            RuleKind::Number,
            "numberRule",
            Permission::WriteNumberRules,
            b.number_rule,
        ),
        (
            RuleKind::Capacity,
            "capacityRule",
            Permission::WriteCapacityRules,
            b.capacity_rule,
        ),
        (
            RuleKind::Affinity,
            "affinityRule",
            Permission::WriteRegionRules,
            b.affinity_rule,
        ),
    ]
    .into_iter()
    .filter_map(|(kind, field, p, v)| v.map(|v| (kind, field, p, v)))
    .collect();
    if changes.is_empty() {
        return Err(ApiError::bad_request(
            "body: give at least one of numberRule, capacityRule, affinityRule (a name, or null to clear)",
        ));
    }
    for (_, _, p, _) in &changes {
        user.require(*p)?;
    }
    user.require_queue(&queue)?;
    let book = &s.rules;
    let pairs: Vec<(RuleKind, Option<String>)> =
        changes.iter().map(|(k, _, _, v)| (*k, v.clone())).collect();
    let detail: serde_json::Map<String, Value> = changes
        .iter()
        .map(|(_, field, _, v)| (field.to_string(), json!(v)))
        .collect();
    let also = record(
        &s,
        &user,
        "queue_rules.assign",
        json!({ "queue": &queue, "set": detail }),
    );
    let rules: QueueRules = book
        .assign_many(&queue, &pairs, also)
        .await
        .map_err(|e| match e {
            // A rule named in the body that does not exist is a bad field, not a missing page.
            BookError::UnknownRule { kind, .. } => {
                let field = changes
                    .iter()
                    .find(|(k, ..)| *k == kind)
                    .map(|(_, f, ..)| *f)
                    .unwrap_or("body");
                ApiError::bad_request(format!("{field}: {e}"))
            }
            other => book_error(other),
        })?;
    Ok(ok(rules))
}
