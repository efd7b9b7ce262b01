//! The rule book's vocabulary: document kinds, rule kinds, a queue's assigned rules, listings
//! and the errors a change can meet.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::rules::affinity::AffinityError;
use crate::rules::capacity::{CapacityError, CapacityStatement};
use crate::rules::number::RuleError;
use crate::store::StoreError;

/// Store document kind of number validation rules (id = rule name).
pub const NUMBER_KIND: &str = "number_rule";
/// Store document kind of capacity rules (id = rule name).
pub const CAPACITY_KIND: &str = "capacity_rule";
/// Store document kind of region affinity rules (id = rule name).
pub const AFFINITY_KIND: &str = "affinity_rule";
/// Store document kind of a queue's assignments (id = queue name).
pub const ASSIGNMENT_KIND: &str = "queue_rules";

/// The three kinds of rule a queue can be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// Country and number validation ("Permitted & Blocked Numbers").
    Number,
    /// Scheduled capacity per weekly cell.
    Capacity,
    /// Region affinity.
    Affinity,
}

impl RuleKind {
    /// The kind as written in URLs and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Number => "number validation",
            RuleKind::Capacity => "capacity",
            RuleKind::Affinity => "region affinity",
        }
    }

    /// The store document kind its rules are saved under (also the audit action's prefix).
    pub const fn doc_kind(self) -> &'static str {
        match self {
            RuleKind::Number => NUMBER_KIND,
            RuleKind::Capacity => CAPACITY_KIND,
            RuleKind::Affinity => AFFINITY_KIND,
        }
    }
}

impl fmt::Display for RuleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A capacity rule as stored and exchanged: a name and the guide's JSON capacity statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CapacityRule {
    /// Unique name, immutable once saved.
    pub name: String,
    /// `{"days":{"mon":{"09:00":5}},"duration":60}`; absent cells mean no capacity.
    pub capacity: CapacityStatement,
}

/// The rules a queue uses, by name; `None` means none of that kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct QueueRules {
    /// Number validation rule.
    #[serde(default)]
    pub number_rule: Option<String>,
    /// Capacity rule (overrides the queue's slot capacity).
    #[serde(default)]
    pub capacity_rule: Option<String>,
    /// Region affinity rule.
    #[serde(default)]
    pub affinity_rule: Option<String>,
}

impl QueueRules {
    pub(super) fn slot(&mut self, kind: RuleKind) -> &mut Option<String> {
        match kind {
            RuleKind::Number => &mut self.number_rule,
            RuleKind::Capacity => &mut self.capacity_rule,
            RuleKind::Affinity => &mut self.affinity_rule,
        }
    }

    pub(super) fn get(&self, kind: RuleKind) -> Option<&str> {
        match kind {
            RuleKind::Number => self.number_rule.as_deref(),
            RuleKind::Capacity => self.capacity_rule.as_deref(),
            RuleKind::Affinity => self.affinity_rule.as_deref(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.number_rule.is_none() && self.capacity_rule.is_none() && self.affinity_rule.is_none()
    }
}

/// A rule with the queues it is assigned to (the guide shows this before an edit or delete).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed<T> {
    /// The rule.
    #[serde(flatten)]
    pub rule: T,
    /// Queues using it, by name.
    pub queues: Vec<String>,
}

/// Why the book refused a change; `field()` names the part of the request at fault.
#[derive(Debug, Error)]
pub enum BookError {
    /// A rule name must be 1 to 64 characters without control characters.
    #[error("a rule name must be 1 to 64 characters without control characters, got `{0}`")]
    Name(String),
    /// No rule of this kind and name.
    #[error("no {kind} rule named `{name}`")]
    UnknownRule {
        /// Kind.
        kind: RuleKind,
        /// Name asked for.
        name: String,
    },
    /// The name is taken (names are immutable, so create never overwrites).
    #[error("a {kind} rule named `{name}` already exists")]
    Exists {
        /// Kind.
        kind: RuleKind,
        /// Name.
        name: String,
    },
    /// A rule's name cannot change.
    #[error("the name of a rule cannot be changed (`{saved}` was sent as `{sent}`)")]
    Rename {
        /// Saved name.
        saved: String,
        /// Name in the request.
        sent: String,
    },
    /// Not a configured queue.
    #[error("no queue named `{0}`")]
    UnknownQueue(String),
    /// The rule is assigned and may not be deleted.
    #[error("{kind} rule `{name}` is assigned to {}; unassign it first", queues.join(", "))]
    InUse {
        /// Kind.
        kind: RuleKind,
        /// Name.
        name: String,
        /// Queues using it.
        queues: Vec<String>,
    },
    /// A number validation rule is invalid.
    #[error(transparent)]
    Number(#[from] RuleError),
    /// A capacity statement is invalid.
    #[error(transparent)]
    Capacity(#[from] CapacityError),
    /// A region affinity rule is invalid.
    #[error(transparent)]
    Affinity(#[from] AffinityError),
    /// The change could not be made durable, so it was not applied.
    #[error("not saved: {0}")]
    Store(#[from] StoreError),
    /// A deletion was made but the documents meant to record it (its audit entry) were not.
    #[error("the deletion was made, but its record was not stored: {0}")]
    NotRecorded(StoreError),
    /// A stored document does not decode or no longer validates (found at start).
    #[error("stored {kind} `{id}` is not valid: {reason}")]
    Corrupt {
        /// Document kind.
        kind: &'static str,
        /// Document id.
        id: String,
        /// Why.
        reason: String,
    },
}

impl BookError {
    /// The request field the error is about, for API messages (`countries`, `capacity.days.mon`).
    pub fn field(&self) -> String {
        match self {
            BookError::Name(_)
            | BookError::UnknownRule { .. }
            | BookError::Exists { .. }
            | BookError::Rename { .. } => "name".into(),
            BookError::UnknownQueue(_) => "queue".into(),
            BookError::InUse { .. } => "name".into(),
            BookError::Number(e) => match e {
                RuleError::NoName => "name".into(),
                RuleError::NoCountry | RuleError::UnknownCountry(_) => "countries".into(),
                RuleError::BadPattern { .. } | RuleError::TooManyPatterns(_) => {
                    "blockedPatterns".into()
                }
            },
            BookError::Capacity(e) => match e {
                CapacityError::Duration(_) => "capacity.duration".into(),
                CapacityError::Day(d) => format!("capacity.days.{d}"),
                CapacityError::Cell { day, time, .. } | CapacityError::Value { day, time, .. } => {
                    format!("capacity.days.{day}.{time}")
                }
            },
            BookError::Affinity(e) => match e {
                AffinityError::NoName => "name".into(),
                AffinityError::NoPreferred => "preferred".into(),
                AffinityError::Duplicate(_) | AffinityError::EmptyRegion => "regions".into(),
            },
            BookError::Store(_) | BookError::NotRecorded(_) | BookError::Corrupt { .. } => {
                String::new()
            }
        }
    }
}
