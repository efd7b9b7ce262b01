//! The GES v3 create fields that are not the callback itself (offer type, language, channel,
//! route points, reporting figures): validated here, kept with the record, returned by the
//! query operations and handed to the dialer and the callback flow.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// What was offered to and accepted by the customer (GES `cbOfferType`; reporting only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OfferType {
    /// An immediate callback.
    Asap,
    /// A callback at a chosen time.
    Scheduled,
    /// Both were offered.
    CombinedScheduledAndAsap,
}

/// Whether the offer was made inside or outside business hours (GES `offerTiming`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum OfferTiming {
    /// Inside business hours.
    #[serde(rename = "ON-HOURS")]
    OnHours,
    /// Outside business hours.
    #[serde(rename = "OFF-HOURS")]
    OffHours,
}

/// The GES fields kept with a callback beyond queue, number, time, priority and user data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GesAttributes {
    /// What was offered (`ASAP` without `desiredTime`, else `SCHEDULED`, when not given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cb_offer_type: Option<OfferType>,
    /// Prompt language, e.g. `en-US` (the default) or `fr-CA`; the callback flow reads it as
    /// `callback.language`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The queue the customer would have waited in (its EWT at booking is the EWT at offer).
    #[serde(rename = "inboundVQ")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inbound_vq: Option<String>,
    /// EWT threshold (s) that triggered the offer, for reporting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offer_threshold: Option<i64>,
    /// Origination channel, e.g. `WEB`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Offered inside or outside business hours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offer_timing: Option<OfferTiming>,
    /// Id of the inbound interaction where the offer was accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cb_origination_ixn_id: Option<String>,
    /// Survey route point after the callback (the flow reads it as `callback.survey_rp`).
    #[serde(rename = "surveyRP")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub survey_rp: Option<String>,
    /// Route point of the outbound call: its caller id, instead of the queue's `routing_point`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_point: Option<String>,
}

/// The language GES assumes when none is given.
pub const DEFAULT_LANGUAGE: &str = "en-US";

/// Longest accepted text field.
pub const MAX_TEXT: usize = 128;

/// Why a GES field was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GesFieldError {
    /// Not a language tag such as `en-US`.
    #[error("language: `{0}` is not a language tag such as en-US or fr-CA")]
    Language(String),
    /// Empty, too long or with control characters.
    #[error("{0}: must be 1 to {MAX_TEXT} printable characters")]
    Text(&'static str),
    /// A negative threshold.
    #[error("offerThreshold: must be 0 or more seconds, got {0}")]
    Threshold(i64),
}

impl GesAttributes {
    /// Checks every field (language tag form, printable bounded text, threshold ≥ 0).
    pub fn check(&self) -> Result<(), GesFieldError> {
        if let Some(l) = &self.language
            && !is_language_tag(l)
        {
            return Err(GesFieldError::Language(l.clone()));
        }
        for (name, v) in [
            ("inboundVQ", &self.inbound_vq),
            ("channel", &self.channel),
            ("cbOriginationIxnId", &self.cb_origination_ixn_id),
            ("surveyRP", &self.survey_rp),
            ("routePoint", &self.route_point),
        ] {
            if let Some(v) = v
                && (v.is_empty() || v.len() > MAX_TEXT || v.chars().any(char::is_control))
            {
                return Err(GesFieldError::Text(name));
            }
        }
        match self.offer_threshold {
            Some(t) if t < 0 => Err(GesFieldError::Threshold(t)),
            _ => Ok(()),
        }
    }

    /// The language to use: the one given, else [`DEFAULT_LANGUAGE`].
    pub fn language_or_default(&self) -> &str {
        self.language.as_deref().unwrap_or(DEFAULT_LANGUAGE)
    }

    /// The offer type, or the GES default for a callback with (`SCHEDULED`) or without
    /// (`ASAP`) a desired time.
    pub fn offer_type_or_default(&self, scheduled: bool) -> OfferType {
        self.cb_offer_type.unwrap_or(if scheduled {
            OfferType::Scheduled
        } else {
            OfferType::Asap
        })
    }
}

/// ISO 639 language (2–3 letters) with optional subtags of 2–8 letters or digits (`en-US`,
/// `es-419`, `zh-Hant-TW`).
fn is_language_tag(s: &str) -> bool {
    let mut parts = s.split('-');
    let lang_ok = parts
        .next()
        .is_some_and(|l| (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_alphabetic()));
    lang_ok
        && s.len() <= 35
        && parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// Whether `key` is a JavaScript identifier (GES keeps only such user data keys and silently
/// drops the others): a letter, `_` or `$`, then letters, digits, `_` or `$`.
pub fn is_js_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_tags_and_identifiers() {
        for ok in ["en-US", "fr-CA", "es-MX", "de", "es-419", "zh-Hant-TW"] {
            assert!(is_language_tag(ok), "{ok}");
        }
        for bad in ["", "e", "english-US", "en_US", "en-", "fr-CA-"] {
            assert!(!is_language_tag(bad), "{bad}");
        }
        for ok in ["order", "_urs_virtual_queue", "$x", "a1"] {
            assert!(is_js_identifier(ok), "{ok}");
        }
        for bad in ["", "1a", "order-id", "a b"] {
            assert!(!is_js_identifier(bad), "{bad}");
        }
    }

    #[test]
    fn checks_name_the_field() {
        let a = GesAttributes {
            route_point: Some(String::new()),
            ..Default::default()
        };
        assert_eq!(a.check(), Err(GesFieldError::Text("routePoint")));
        let a = GesAttributes {
            offer_threshold: Some(-1),
            ..Default::default()
        };
        assert!(
            a.check()
                .unwrap_err()
                .to_string()
                .starts_with("offerThreshold")
        );
        assert_eq!(GesAttributes::default().language_or_default(), "en-US");
        assert_eq!(
            GesAttributes::default().offer_type_or_default(true),
            OfferType::Scheduled
        );
    }
}
