//! Click-to-Call-In groups: a pool of numbers customers are told to dial (DNIS) and the access
//! code settings, with the limits the callback guide gives, and the CSV bulk import of a pool.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Most numbers in a group's pool.
pub const MAX_POOL: usize = 10_000;
/// Longest DNIS, `+` included.
pub const MAX_DNIS_LEN: usize = 16;
/// Longest DNIS description.
pub const MAX_DESCRIPTION_LEN: usize = 32;

/// One number of a pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DnisEntry {
    /// E.164 number, `+` optional.
    pub number: String,
    /// Optional label (≤ 32 characters).
    #[serde(default)]
    pub description: String,
}

/// A group as stored and exchanged through the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallInGroup {
    /// Name, immutable once saved (letters, digits and symbols, no spaces).
    pub name: String,
    /// The DNIS pool (1 to 10,000 numbers).
    pub dnis: Vec<DnisEntry>,
    /// Generate an access code with each request.
    #[serde(default)]
    pub generate_access_code: bool,
    /// Access code length, 4–12.
    #[serde(default = "d_len")]
    pub access_code_length: u8,
    /// Seconds a request stays valid, 10–1800.
    #[serde(default = "d_expiry")]
    pub expiry_seconds: u32,
    /// A number is not handed out again while another live request holds it.
    #[serde(default)]
    pub unique_dnis: bool,
}

/// Default access code length (also the admin API's).
pub(crate) fn d_len() -> u8 {
    6
}
/// Default seconds a request stays valid (also the admin API's).
pub(crate) fn d_expiry() -> u32 {
    30
}

/// What is wrong with a group definition.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GroupError {
    /// Bad name.
    #[error("group name must be 1 to 64 letters, digits or symbols without spaces")]
    Name,
    /// Pool size out of range.
    #[error("a DNIS pool holds 1 to {MAX_POOL} numbers, got {0}")]
    PoolSize(usize),
    /// A bad number in the pool.
    #[error("DNIS #{index} `{number}`: {reason}")]
    Dnis {
        /// 1-based position in the pool.
        index: usize,
        /// The number.
        number: String,
        /// Why.
        reason: String,
    },
    /// A number listed twice.
    #[error("DNIS `{0}` is listed twice")]
    Duplicate(String),
    /// Code length out of range.
    #[error("access code length must be 4 to 12, got {0}")]
    CodeLength(u8),
    /// Expiry out of range.
    #[error("request expiry must be 10 to 1800 seconds, got {0}")]
    Expiry(u32),
}

/// Checks one pool number and its description; returns the reason when bad.
pub fn check_dnis(number: &str, description: &str) -> Result<(), String> {
    let digits = number.strip_prefix('+').unwrap_or(number);
    if number.len() > MAX_DNIS_LEN {
        return Err(format!("longer than {MAX_DNIS_LEN} characters"));
    }
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) || digits.starts_with('0') {
        return Err("not an E.164 number (country code and digits, `+` optional)".into());
    }
    if description.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(format!(
            "description longer than {MAX_DESCRIPTION_LEN} characters"
        ));
    }
    Ok(())
}

/// The number as routed: always with `+`.
pub fn normalize_dnis(number: &str) -> String {
    let trimmed = number.trim();
    if trimmed.starts_with('+') {
        trimmed.to_string()
    } else {
        format!("+{trimmed}")
    }
}

impl CallInGroup {
    /// Validates every limit.
    pub fn validate(&self) -> Result<(), GroupError> {
        if self.name.is_empty()
            || self.name.len() > 64
            || self
                .name
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(GroupError::Name);
        }
        if self.dnis.is_empty() || self.dnis.len() > MAX_POOL {
            return Err(GroupError::PoolSize(self.dnis.len()));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, d) in self.dnis.iter().enumerate() {
            check_dnis(&d.number, &d.description).map_err(|reason| GroupError::Dnis {
                index: i + 1,
                number: d.number.clone(),
                reason,
            })?;
            if !seen.insert(normalize_dnis(&d.number)) {
                return Err(GroupError::Duplicate(d.number.clone()));
            }
        }
        if !(4..=12).contains(&self.access_code_length) {
            return Err(GroupError::CodeLength(self.access_code_length));
        }
        if !(10..=1800).contains(&self.expiry_seconds) {
            return Err(GroupError::Expiry(self.expiry_seconds));
        }
        Ok(())
    }
}

/// One bad row of a CSV import.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}: {message}")]
pub struct CsvRowError {
    /// 1-based line in the file.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Parses a pool from CSV (`number,description`; description may be empty). Every bad row is
/// reported with its line, and nothing is returned unless every row is good.
pub fn import_pool_csv(text: &str) -> Result<Vec<DnisEntry>, Vec<CsvRowError>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, row) in reader.records().enumerate() {
        let line = row
            .as_ref()
            .ok()
            .and_then(|r| r.position())
            .map(|p| p.line() as usize)
            .unwrap_or(i + 1);
        let rec = match row {
            Ok(r) => r,
            Err(e) => {
                errors.push(CsvRowError {
                    line,
                    message: e.to_string(),
                });
                continue;
            }
        };
        if rec.len() == 1 && rec.get(0).is_some_and(str::is_empty) {
            continue;
        }
        // The guide's sample file ends rows with a comma (`+18005555554,claims,`): empty
        // fields after the description are accepted, anything in them is not.
        if rec.iter().skip(2).any(|f| !f.is_empty()) {
            errors.push(CsvRowError {
                line,
                message: format!("expected `number,description`, found {} fields", rec.len()),
            });
            continue;
        }
        let number = rec.get(0).unwrap_or_default();
        let description = rec.get(1).unwrap_or_default();
        if let Err(message) = check_dnis(number, description) {
            errors.push(CsvRowError {
                line,
                message: format!("`{number}`: {message}"),
            });
            continue;
        }
        if !seen.insert(normalize_dnis(number)) {
            errors.push(CsvRowError {
                line,
                message: format!("`{number}` is listed twice"),
            });
            continue;
        }
        entries.push(DnisEntry {
            number: number.to_string(),
            description: description.to_string(),
        });
    }
    if entries.len() > MAX_POOL {
        errors.push(CsvRowError {
            line: MAX_POOL + 1,
            message: format!("a pool holds at most {MAX_POOL} numbers"),
        });
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group() -> CallInGroup {
        CallInGroup {
            name: "app-callin".into(),
            dnis: vec![DnisEntry {
                number: "+33180000001".into(),
                description: "Paris 1".into(),
            }],
            generate_access_code: true,
            access_code_length: 6,
            expiry_seconds: 30,
            unique_dnis: false,
        }
    }

    #[test]
    fn limits_of_a_group() {
        assert_eq!(group().validate(), Ok(()));
        let mut g = group();
        g.name = "has space".into();
        assert_eq!(g.validate(), Err(GroupError::Name));
        let mut g = group();
        g.dnis.clear();
        assert_eq!(g.validate(), Err(GroupError::PoolSize(0)));
        let mut g = group();
        g.dnis = (0..10_001)
            .map(|i| DnisEntry {
                number: format!("+3318{i:07}"),
                description: String::new(),
            })
            .collect();
        assert_eq!(g.validate(), Err(GroupError::PoolSize(10_001)));
        for (len, ok) in [(3, false), (4, true), (12, true), (13, false)] {
            let mut g = group();
            g.access_code_length = len;
            assert_eq!(g.validate().is_ok(), ok, "length {len}");
        }
        for (s, ok) in [(9, false), (10, true), (1800, true), (1801, false)] {
            let mut g = group();
            g.expiry_seconds = s;
            assert_eq!(g.validate().is_ok(), ok, "expiry {s}");
        }
        let mut g = group();
        g.dnis.push(DnisEntry {
            number: "33180000001".into(),
            description: String::new(),
        });
        assert_eq!(
            g.validate(),
            Err(GroupError::Duplicate("33180000001".into()))
        );
    }

    #[test]
    fn dnis_rules() {
        assert!(check_dnis("+331800000011234", "").is_ok());
        assert!(
            check_dnis("+3318000000112345", "")
                .unwrap_err()
                .contains("16")
        );
        assert!(check_dnis("33180000001", "").is_ok());
        assert!(check_dnis("+33 1 80", "").is_err());
        assert!(check_dnis("+0331", "").is_err());
        assert!(
            check_dnis("+33180000001", &"x".repeat(33))
                .unwrap_err()
                .contains("32")
        );
        assert_eq!(normalize_dnis("33180000001"), "+33180000001");
    }

    #[test]
    fn csv_import_reports_every_bad_row_and_imports_nothing() {
        let good = "+33180000001,Paris,\n33180000002,,\n+33180000003\n";
        let entries = import_pool_csv(good).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(
            entries[1],
            DnisEntry {
                number: "33180000002".into(),
                description: String::new()
            }
        );
        let bad = "+33180000001,Paris\nnot-a-number,x\n+33180000001,again\n+33180000004,a,b\n+33180000005,this description is far too long for it\n";
        let errs = import_pool_csv(bad).unwrap_err();
        let lines: Vec<usize> = errs.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5]);
        assert!(errs[1].message.contains("twice"));
    }
}
