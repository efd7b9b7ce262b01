//! Region affinity: which engine nodes (by region) serve a queue, in order. Preferred regions
//! are tried first in the order listed, then fallback regions; ignored regions never. With one
//! node today this orders nothing, but the rule is stored and checked so that the multi-node
//! store can honour it without a migration.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A region affinity rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegionAffinityRule {
    /// Unique name.
    pub name: String,
    /// Regions tried first, in order (at least one).
    pub preferred: Vec<String>,
    /// Regions tried next, in order.
    #[serde(default)]
    pub fallback: Vec<String>,
    /// Regions never used.
    #[serde(default)]
    pub ignored: Vec<String>,
}

/// Why a rule is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AffinityError {
    /// The rule needs a name.
    #[error("the rule needs a name")]
    NoName,
    /// A rule needs a preferred region.
    #[error("a region affinity rule needs at least one preferred region")]
    NoPreferred,
    /// A blank region name.
    #[error("a region name cannot be blank")]
    EmptyRegion,
    /// A region listed in two columns or twice.
    #[error("region `{0}` is listed more than once")]
    Duplicate(String),
}

impl RegionAffinityRule {
    /// Checks the rule's shape.
    pub fn validate(&self) -> Result<(), AffinityError> {
        if self.name.trim().is_empty() {
            return Err(AffinityError::NoName);
        }
        if self.preferred.is_empty() {
            return Err(AffinityError::NoPreferred);
        }
        let mut seen = HashSet::new();
        for r in self
            .preferred
            .iter()
            .chain(&self.fallback)
            .chain(&self.ignored)
        {
            if r.trim().is_empty() {
                return Err(AffinityError::EmptyRegion);
            }
            if !seen.insert(r.as_str()) {
                return Err(AffinityError::Duplicate(r.clone()));
            }
        }
        Ok(())
    }

    /// The order in which to try regions whose nodes are healthy.
    pub fn order<'a>(&'a self, healthy: &dyn Fn(&str) -> bool) -> Vec<&'a str> {
        self.preferred
            .iter()
            .chain(&self.fallback)
            .map(String::as_str)
            .filter(|r| healthy(r))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> RegionAffinityRule {
        RegionAffinityRule {
            name: "sf".into(),
            preferred: vec!["n-california".into(), "s-california".into()],
            fallback: vec!["oregon".into()],
            ignored: vec!["virginia".into()],
        }
    }

    #[test]
    fn preferred_in_order_then_fallback_never_ignored() {
        let r = rule();
        assert_eq!(r.validate(), Ok(()));
        assert_eq!(
            r.order(&|_| true),
            vec!["n-california", "s-california", "oregon"]
        );
        assert_eq!(
            r.order(&|x| x != "n-california"),
            vec!["s-california", "oregon"]
        );
        assert_eq!(r.order(&|x| x == "virginia"), Vec::<&str>::new());
    }

    #[test]
    fn a_rule_needs_a_preferred_region_and_no_repeats() {
        let mut r = rule();
        r.preferred.clear();
        assert_eq!(r.validate(), Err(AffinityError::NoPreferred));
        let mut r = rule();
        r.fallback.push("n-california".into());
        assert_eq!(
            r.validate(),
            Err(AffinityError::Duplicate("n-california".into()))
        );
    }
}
