//! Country and number validation (the guide's "Permitted & Blocked Numbers"): callbacks go only
//! to allowed countries, and never to numbers matching a blocked pattern. Checked when a callback
//! is created and again before every dial, as a toll-fraud guard.

use std::collections::BTreeSet;

use phonenumber::{Mode, country};
use regex::RegexSet;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Longest blocked pattern accepted, in characters (bounds regex compile cost).
pub const MAX_PATTERN_LEN: usize = 256;
/// Most blocked patterns in one rule (bounds the compiled set).
pub const MAX_PATTERNS: usize = 2000;

/// Why a number cannot be called back.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NumberRejection {
    /// Not a phone number at all.
    #[error("`{0}` is not a valid phone number in E.164 form (+ country code and number)")]
    Invalid(String),
    /// The number's country is not in the rule (checked first, as in the guide).
    #[error("callbacks to {country} are not allowed by rule `{rule}`")]
    CountryNotAllowed {
        /// ISO 3166 code of the number's country.
        country: String,
        /// The rule that refused it.
        rule: String,
    },
    /// The number matches a blocked pattern.
    #[error("the number matches blocked pattern `{pattern}` of rule `{rule}`")]
    Blocked {
        /// The pattern that matched.
        pattern: String,
        /// The rule that refused it.
        rule: String,
    },
}

/// Why a rule definition is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RuleError {
    /// A rule needs a name.
    #[error("the rule needs a name")]
    NoName,
    /// A rule must allow at least one country.
    #[error("a rule must allow at least one country")]
    NoCountry,
    /// Not an ISO 3166 alpha-2 code known to the numbering plan.
    #[error("`{0}` is not an ISO 3166 country code")]
    UnknownCountry(String),
    /// More patterns than [`MAX_PATTERNS`].
    #[error("a rule holds at most {MAX_PATTERNS} blocked patterns, got {0}")]
    TooManyPatterns(usize),
    /// A pattern that is not a valid regular expression.
    #[error("pattern `{pattern}` is not a valid regular expression: {reason}")]
    BadPattern {
        /// The pattern.
        pattern: String,
        /// The regex error.
        reason: String,
    },
}

/// A number validation rule as stored and exchanged through the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NumberRuleSpec {
    /// Unique name.
    pub name: String,
    /// ISO 3166 alpha-2 codes of countries callbacks may go to.
    pub countries: BTreeSet<String>,
    /// Regular expressions over the E.164 digits (without `+`) that are never called.
    #[serde(default)]
    pub blocked_patterns: Vec<String>,
}

/// A compiled rule, ready to test numbers. The patterns form one set, matched in a single pass
/// over the number however many there are (it runs before every dial).
#[derive(Debug, Clone)]
pub struct NumberRule {
    spec: NumberRuleSpec,
    patterns: RegexSet,
}

impl NumberRule {
    /// Validates and compiles a rule.
    pub fn new(spec: NumberRuleSpec) -> Result<Self, RuleError> {
        if spec.name.trim().is_empty() {
            return Err(RuleError::NoName);
        }
        if spec.countries.is_empty() {
            return Err(RuleError::NoCountry);
        }
        for c in &spec.countries {
            if c.len() != 2 || c.parse::<country::Id>().is_err() {
                return Err(RuleError::UnknownCountry(c.clone()));
            }
        }
        if spec.blocked_patterns.len() > MAX_PATTERNS {
            return Err(RuleError::TooManyPatterns(spec.blocked_patterns.len()));
        }
        // Each pattern alone first, so that an error names the pattern at fault.
        for p in &spec.blocked_patterns {
            if p.chars().count() > MAX_PATTERN_LEN {
                return Err(RuleError::BadPattern {
                    pattern: p.clone(),
                    reason: format!("longer than {MAX_PATTERN_LEN} characters"),
                });
            }
            regex::RegexBuilder::new(p)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| RuleError::BadPattern {
                    pattern: p.clone(),
                    reason: e.to_string(),
                })?;
        }
        let patterns = regex::RegexSetBuilder::new(&spec.blocked_patterns)
            .size_limit(spec.blocked_patterns.len().max(1) << 20)
            .build()
            .map_err(|e| RuleError::BadPattern {
                pattern: "(the set of all patterns)".into(),
                reason: e.to_string(),
            })?;
        Ok(NumberRule { spec, patterns })
    }

    /// The rule as written.
    pub fn spec(&self) -> &NumberRuleSpec {
        &self.spec
    }

    /// Tests a number: country first; only a number from an allowed country is matched
    /// against the blocked patterns. Returns the E.164 form when it passes.
    pub fn check(&self, number: &str) -> Result<String, NumberRejection> {
        let parsed = parse_e164(number)?;
        let allowed = parsed
            .country
            .as_ref()
            .is_some_and(|c| self.spec.countries.contains(c));
        if !allowed {
            return Err(NumberRejection::CountryNotAllowed {
                country: parsed.country.unwrap_or_else(|| "unknown".into()),
                rule: self.spec.name.clone(),
            });
        }
        let digits = parsed.e164.trim_start_matches('+');
        // Most numbers match nothing: the set's single pass decides; which pattern matched is
        // worked out only for the message of a refusal.
        if self.patterns.is_match(digits)
            && let Some(i) = self.patterns.matches(digits).iter().next()
        {
            return Err(NumberRejection::Blocked {
                pattern: self.spec.blocked_patterns[i].clone(),
                rule: self.spec.name.clone(),
            });
        }
        Ok(parsed.e164)
    }
}

/// A phone number in E.164 form with its country.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct E164 {
    /// `+` and digits.
    pub e164: String,
    /// ISO 3166 alpha-2 country, when the numbering plan assigns one.
    pub country: Option<String>,
}

/// Parses a number written in international form (`+33 1 23 45 67 89`, `0033…` is refused).
pub fn parse_e164(number: &str) -> Result<E164, NumberRejection> {
    let trimmed = number.trim();
    if !trimmed.starts_with('+') || trimmed.len() > 32 {
        return Err(NumberRejection::Invalid(number.to_string()));
    }
    let parsed = phonenumber::parse(None, trimmed)
        .map_err(|_| NumberRejection::Invalid(number.to_string()))?;
    if !parsed.is_valid() {
        return Err(NumberRejection::Invalid(number.to_string()));
    }
    Ok(E164 {
        e164: parsed.format().mode(Mode::E164).to_string(),
        country: parsed.country().id().map(|id| id.as_ref().to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(countries: &[&str], patterns: &[&str]) -> NumberRule {
        NumberRule::new(NumberRuleSpec {
            name: "eu".into(),
            countries: countries.iter().map(|s| s.to_string()).collect(),
            blocked_patterns: patterns.iter().map(|s| s.to_string()).collect(),
        })
        .unwrap()
    }

    #[test]
    fn e164_and_country_of_a_number() {
        let n = parse_e164("+33 1 23 45 67 89").unwrap();
        assert_eq!(n.e164, "+33123456789");
        assert_eq!(n.country.as_deref(), Some("FR"));
        assert_eq!(
            parse_e164("+1 212 555 0100").unwrap().country.as_deref(),
            Some("US")
        );
        assert!(parse_e164("0123456789").is_err());
        assert!(parse_e164("+33 12").is_err());
        assert!(parse_e164("+abc").is_err());
    }

    #[test]
    fn country_is_checked_before_patterns() {
        let r = rule(&["FR", "BE"], &["^33899", "^3312345678[0-9]$"]);
        assert_eq!(r.check("+33612345678").unwrap(), "+33612345678");
        // A GB number is refused for its country even though no pattern would match.
        assert!(
            matches!(r.check("+442079460000"), Err(NumberRejection::CountryNotAllowed { country, .. }) if country == "GB")
        );
        assert!(
            matches!(r.check("+33899123456"), Err(NumberRejection::Blocked { pattern, .. }) if pattern == "^33899")
        );
        assert!(matches!(
            r.check("+33123456789"),
            Err(NumberRejection::Blocked { .. })
        ));
        assert!(matches!(r.check("hello"), Err(NumberRejection::Invalid(_))));
        // Several patterns match: the first listed is reported.
        let r = rule(&["FR"], &["^336", "^33", "^3361"]);
        assert!(
            matches!(r.check("+33612345678"), Err(NumberRejection::Blocked { pattern, .. }) if pattern == "^336")
        );
    }

    #[test]
    fn bad_rules_are_refused() {
        let mk = |name: &str, c: &[&str], p: &[&str]| {
            NumberRule::new(NumberRuleSpec {
                name: name.into(),
                countries: c.iter().map(|s| s.to_string()).collect(),
                blocked_patterns: p.iter().map(|s| s.to_string()).collect(),
            })
        };
        assert_eq!(mk("", &["FR"], &[]).unwrap_err(), RuleError::NoName);
        assert_eq!(mk("x", &[], &[]).unwrap_err(), RuleError::NoCountry);
        assert_eq!(
            mk("x", &["XX"], &[]).unwrap_err(),
            RuleError::UnknownCountry("XX".into())
        );
        assert!(matches!(
            mk("x", &["FR"], &["^33", "(unclosed"]).unwrap_err(),
            RuleError::BadPattern { pattern, .. } if pattern == "(unclosed"
        ));
        let many: Vec<String> = (0..=MAX_PATTERNS).map(|i| format!("^33{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(
            mk("x", &["FR"], &many).unwrap_err(),
            RuleError::TooManyPatterns(MAX_PATTERNS + 1)
        );
    }
}
