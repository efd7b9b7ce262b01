//! What sets one kind of rule apart in the book: how it is checked and compiled, and where the
//! compiled form is kept. Listing, reading, creating, replacing and loading are written once in
//! the book for every kind.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{BookError, CapacityRule, RuleKind, State};
use crate::rules::affinity::RegionAffinityRule;
use crate::rules::capacity::CapacityGrid;
use crate::rules::number::{NumberRule, NumberRuleSpec};

/// A kind of rule as exchanged (its spec), with the form the book keeps in force.
pub trait BookRule: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// Which kind this is.
    const KIND: RuleKind;
    /// The checked, compiled form kept in force.
    type Kept: Send + Sync;
    /// The rule's name (its id in the store and in URLs).
    fn name(&self) -> &str;
    /// Checks the rule and compiles it, with its spec in canonical form.
    fn compile(self) -> Result<Self::Kept, BookError>;
    /// The canonical spec of a kept rule.
    fn spec(kept: &Self::Kept) -> &Self;
    /// The kept rules of this kind, by name.
    #[doc(hidden)]
    fn kept(state: &State) -> &BTreeMap<String, Self::Kept>;
    /// The same, to change.
    #[doc(hidden)]
    fn kept_mut(state: &mut State) -> &mut BTreeMap<String, Self::Kept>;
}

impl BookRule for NumberRuleSpec {
    const KIND: RuleKind = RuleKind::Number;
    type Kept = NumberRule;
    fn name(&self) -> &str {
        &self.name
    }
    fn compile(mut self) -> Result<NumberRule, BookError> {
        // Country codes as the rule stores them: trimmed and upper case (`fr` → `FR`).
        self.countries = self
            .countries
            .iter()
            .map(|c| c.trim().to_ascii_uppercase())
            .collect();
        Ok(NumberRule::new(self)?)
    }
    fn spec(kept: &NumberRule) -> &Self {
        kept.spec()
    }
    fn kept(state: &State) -> &BTreeMap<String, NumberRule> {
        &state.number
    }
    fn kept_mut(state: &mut State) -> &mut BTreeMap<String, NumberRule> {
        &mut state.number
    }
}

impl BookRule for CapacityRule {
    const KIND: RuleKind = RuleKind::Capacity;
    type Kept = (CapacityRule, CapacityGrid);
    fn name(&self) -> &str {
        &self.name
    }
    fn compile(self) -> Result<Self::Kept, BookError> {
        let grid = CapacityGrid::from_statement(&self.capacity)?;
        let rule = CapacityRule {
            name: self.name,
            capacity: grid.to_statement(),
        };
        Ok((rule, grid))
    }
    fn spec(kept: &Self::Kept) -> &Self {
        &kept.0
    }
    fn kept(state: &State) -> &BTreeMap<String, Self::Kept> {
        &state.capacity
    }
    fn kept_mut(state: &mut State) -> &mut BTreeMap<String, Self::Kept> {
        &mut state.capacity
    }
}

impl BookRule for RegionAffinityRule {
    const KIND: RuleKind = RuleKind::Affinity;
    type Kept = RegionAffinityRule;
    fn name(&self) -> &str {
        &self.name
    }
    fn compile(self) -> Result<Self, BookError> {
        self.validate()?;
        Ok(self)
    }
    fn spec(kept: &Self) -> &Self {
        kept
    }
    fn kept(state: &State) -> &BTreeMap<String, Self> {
        &state.affinity
    }
    fn kept_mut(state: &mut State) -> &mut BTreeMap<String, Self> {
        &mut state.affinity
    }
}
