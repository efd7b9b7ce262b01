//! Agent definitions: the file's agents with the changes made through the administration API
//! (created, changed, deleted), kept in the store as `admin_agent` documents and applied over
//! the file at the next start. Skill changes apply at once; the router's agent table is sized
//! at start, so a new agent (or a deleted one's removal, or a new display name) takes effect at
//! the next start.

use parking_lot::RwLock;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::{AgentSpec, ConfigSpec, valid_skill_name};
use crate::store::Document;

/// Document kind of agent definitions (and deletions) in the store.
pub const DOC_KIND: &str = "admin_agent";

/// An agent definition as stored: the spec, or its deletion.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StoredAgent {
    /// The definition (skills, name…).
    pub spec: AgentSpec,
    /// Deleted: the agent is left out at the next start.
    #[serde(default)]
    pub deleted: bool,
}

/// Applies stored definitions over the file's agents (called at start, before the router is
/// built): changed ones replace, new ones are added, deleted ones are left out.
pub fn apply_stored(spec: &mut ConfigSpec, docs: Vec<Document>) -> usize {
    let mut n = 0;
    for d in docs {
        let Ok(s) = serde_json::from_value::<StoredAgent>(d.body) else {
            tracing::warn!(id = %d.id, "stored agent unreadable; skipped");
            continue;
        };
        spec.agents.retain(|a| a.id != s.spec.id);
        if !s.deleted {
            spec.agents.push(s.spec);
        }
        n += 1;
    }
    n
}

/// The agent definitions in force, with the changes made since start.
#[derive(Debug, Default)]
pub struct AgentBook {
    defs: RwLock<BTreeMap<String, StoredAgent>>,
}

impl AgentBook {
    /// The agents of a configuration.
    pub fn new(spec: &ConfigSpec) -> Self {
        let defs = spec
            .agents
            .iter()
            .map(|a| {
                (
                    a.id.clone(),
                    StoredAgent {
                        spec: a.clone(),
                        deleted: false,
                    },
                )
            })
            .collect();
        AgentBook {
            defs: RwLock::new(defs),
        }
    }

    /// A definition by agent id (deleted ones included).
    pub fn get(&self, id: &str) -> Option<StoredAgent> {
        self.defs.read().get(id).cloned()
    }

    /// Adds or replaces a definition.
    pub fn put(&self, a: StoredAgent) {
        self.defs.write().insert(a.spec.id.clone(), a);
    }

    /// Takes a definition re-read from the file.
    pub fn replace_spec(&self, spec: AgentSpec) {
        self.put(StoredAgent {
            spec,
            deleted: false,
        });
    }

    /// Every definition, by agent id.
    pub fn all(&self) -> Vec<StoredAgent> {
        self.defs.read().values().cloned().collect()
    }
}

impl StoredAgent {
    /// The SIP user the agent's phone registers as (its id unless set).
    pub fn sip_user(&self) -> String {
        self.spec
            .sip_user
            .clone()
            .unwrap_or_else(|| self.spec.id.clone())
    }

    /// The stored form of this definition.
    pub fn document(&self) -> Document {
        Document {
            kind: DOC_KIND.into(),
            id: self.spec.id.clone(),
            body: serde_json::to_value(self).unwrap_or_default(),
        }
    }
}

/// Why an agent definition is refused (the API answers 400 with the message).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AgentError {
    /// The id is empty or longer than 64 bytes.
    #[error("id: 1 to 64 characters")]
    BadId,
    /// A skill name that is not one.
    #[error("skills: `{0}` is not a skill name (letters, digits, _)")]
    BadSkillName(String),
    /// A skill level outside 0 to 10.
    #[error("skills.{0}: {1} is out of range 0 to 10")]
    BadSkillLevel(String, i64),
}

/// `Ok` for an id of 1 to 64 bytes, not blank.
pub fn check_id(id: &str) -> Result<(), AgentError> {
    if id.trim().is_empty() || id.len() > 64 {
        return Err(AgentError::BadId);
    }
    Ok(())
}

/// `Ok` when every skill has a valid name and a level from 0 to 10.
pub fn check_skills(skills: &BTreeMap<String, i64>) -> Result<(), AgentError> {
    for (name, level) in skills {
        if !valid_skill_name(name) {
            return Err(AgentError::BadSkillName(name.clone()));
        }
        if !(0..=10).contains(level) {
            return Err(AgentError::BadSkillLevel(name.clone(), *level));
        }
    }
    Ok(())
}
