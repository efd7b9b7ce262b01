//! Administration of Click-to-Call-In groups: create, update, delete and CSV import of a DNIS
//! pool, each written to the store before it is in force in the registry.
//!
//! Every change takes `also`: documents stored in the same write (its audit entry).
//!
//! Two sources of groups: `callin_groups` in the configuration file, and groups created through
//! the admin API (kept in the store). The file owns its groups: they are listed with source
//! `config` and cannot be changed or deleted here (edit the file). A stored group whose name the
//! file also defines is ignored at start with a warning, so the file always wins and a name is
//! never in two places.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Serialize;
use thiserror::Error;

use super::group::{CallInGroup, CsvRowError, GroupError, import_pool_csv};
use super::{CallIn, CallInError};
use crate::store::{Document, Store, StoreError};

/// Store document kind of admin-created groups (id = group name).
pub const GROUP_KIND: &str = "callin_group";

/// Where a group is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupSource {
    /// `callin_groups` in the configuration file: read-only here.
    Config,
    /// Created through the admin API, kept in the store.
    Admin,
}

/// A group with its source, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupView {
    /// The group.
    #[serde(flatten)]
    pub group: CallInGroup,
    /// Where it is defined.
    pub source: GroupSource,
}

/// Why a group change was refused.
#[derive(Debug, Error)]
pub enum GroupBookError {
    /// No such group.
    #[error("no Click-to-Call-In group named `{0}`")]
    Unknown(String),
    /// The name is taken.
    #[error("a Click-to-Call-In group named `{0}` already exists")]
    Exists(String),
    /// Names are immutable.
    #[error("the name of a group cannot be changed (`{saved}` was sent as `{sent}`)")]
    Rename {
        /// Saved name.
        saved: String,
        /// Name sent.
        sent: String,
    },
    /// The group is defined in the configuration file.
    #[error("group `{0}` is defined in the configuration file; change it there")]
    ReadOnly(String),
    /// The definition breaks a limit.
    #[error(transparent)]
    Invalid(#[from] GroupError),
    /// A CSV import with bad rows; nothing was imported.
    #[error("the file has {} bad row(s); nothing was imported: {}", .0.len(), first_rows(.0))]
    Csv(Vec<CsvRowError>),
    /// The change could not be made durable, so it was not applied.
    #[error("not saved: {0}")]
    Store(#[from] StoreError),
    /// A deletion was made but the documents meant to record it (its audit entry) were not.
    #[error("the deletion was made, but its record was not stored: {0}")]
    NotRecorded(StoreError),
}

/// Bad rows named in one error message; the rest are counted.
pub const CSV_ROWS_IN_MESSAGE: usize = 100;

fn first_rows(rows: &[CsvRowError]) -> String {
    let mut s: Vec<String> = rows
        .iter()
        .take(CSV_ROWS_IN_MESSAGE)
        .map(ToString::to_string)
        .collect();
    if rows.len() > CSV_ROWS_IN_MESSAGE {
        s.push(format!("and {} more", rows.len() - CSV_ROWS_IN_MESSAGE));
    }
    s.join("; ")
}

impl GroupBookError {
    /// The request field the error is about, for API messages.
    pub fn field(&self) -> &'static str {
        match self {
            GroupBookError::Unknown(_)
            | GroupBookError::Exists(_)
            | GroupBookError::Rename { .. }
            | GroupBookError::ReadOnly(_) => "name",
            GroupBookError::Invalid(e) => match e {
                GroupError::Name => "name",
                GroupError::PoolSize(_) | GroupError::Dnis { .. } | GroupError::Duplicate(_) => {
                    "dnis"
                }
                GroupError::CodeLength(_) => "accessCodeLength",
                GroupError::Expiry(_) => "expirySeconds",
            },
            GroupBookError::Csv(_) => "file",
            GroupBookError::Store(_) | GroupBookError::NotRecorded(_) => "",
        }
    }
}

impl From<CallInError> for GroupBookError {
    fn from(e: CallInError) -> Self {
        match e {
            CallInError::UnknownGroup(n) => GroupBookError::Unknown(n),
            CallInError::GroupExists(n) => GroupBookError::Exists(n),
            CallInError::Group(g) => GroupBookError::Invalid(g),
            // Request errors are not raised by group changes; keep the message if one appears.
            other @ CallInError::NoFreeDnis(_) => {
                GroupBookError::Store(StoreError::NotStored(other.to_string()))
            }
        }
    }
}

/// Group administration over the registry and the store.
pub struct GroupBook {
    store: Arc<dyn Store>,
    callin: Arc<CallIn>,
    from_config: BTreeSet<String>,
    writer: tokio::sync::Mutex<()>,
}

fn document(g: &CallInGroup) -> Result<Document, GroupBookError> {
    Ok(Document::of(GROUP_KIND, &g.name, g)?)
}

impl GroupBook {
    /// Adds the file's groups, then the stored ones (the file wins a name both define; a stored
    /// group that no longer validates is skipped with a warning, as a bad file group is).
    pub async fn load(
        config_groups: &[CallInGroup],
        store: Arc<dyn Store>,
        callin: Arc<CallIn>,
    ) -> Result<GroupBook, GroupBookError> {
        let mut from_config = BTreeSet::new();
        for g in config_groups {
            match callin.add_group(g.clone()) {
                Ok(()) => {
                    from_config.insert(g.name.clone());
                }
                Err(e) => tracing::warn!(group = %g.name, error = %e, "call-in group refused"),
            }
        }
        for d in store.documents(GROUP_KIND).await? {
            if from_config.contains(&d.id) {
                tracing::warn!(group = %d.id, "stored call-in group ignored: the configuration file defines this name");
                continue;
            }
            let added = serde_json::from_value::<CallInGroup>(d.body)
                .map_err(|e| e.to_string())
                .and_then(|g| callin.add_group(g).map_err(|e| e.to_string()));
            if let Err(error) = added {
                tracing::warn!(group = %d.id, %error, "stored call-in group refused");
            }
        }
        Ok(GroupBook {
            store,
            callin,
            from_config,
            writer: tokio::sync::Mutex::new(()),
        })
    }

    /// Re-reads the stored groups into force (another node of a cluster changed them): new
    /// and changed ones are put in force (live requests keep their numbers), deleted ones
    /// removed; the file's groups are left alone. Returns how many stored groups are in force.
    pub async fn reload(&self) -> Result<usize, GroupBookError> {
        let _w = self.writer.lock().await;
        let mut stored = BTreeSet::new();
        for d in self.store.documents(GROUP_KIND).await? {
            if self.from_config.contains(&d.id) {
                continue;
            }
            let put = serde_json::from_value::<CallInGroup>(d.body)
                .map_err(|e| e.to_string())
                .and_then(|g| {
                    let r = if self.callin.group(&g.name).is_some() {
                        self.callin.update_group(g)
                    } else {
                        self.callin.add_group(g)
                    };
                    r.map_err(|e| e.to_string())
                });
            match put {
                Ok(()) => drop(stored.insert(d.id)),
                Err(error) => tracing::warn!(group = %d.id, %error, "stored call-in group refused"),
            }
        }
        for g in self.callin.groups() {
            if !self.from_config.contains(&g.name) && !stored.contains(&g.name) {
                self.callin.remove_group(&g.name);
            }
        }
        Ok(stored.len())
    }

    fn view(&self, group: CallInGroup) -> GroupView {
        let source = if self.from_config.contains(&group.name) {
            GroupSource::Config
        } else {
            GroupSource::Admin
        };
        GroupView { group, source }
    }

    /// Every group, by name.
    pub fn list(&self) -> Vec<GroupView> {
        self.callin
            .groups()
            .into_iter()
            .map(|g| self.view(g))
            .collect()
    }

    /// One group.
    pub fn get(&self, name: &str) -> Result<GroupView, GroupBookError> {
        self.callin
            .group(name)
            .map(|g| self.view(g))
            .ok_or_else(|| GroupBookError::Unknown(name.to_string()))
    }

    /// Creates a group; its name is fixed from now on.
    pub async fn create(
        &self,
        group: CallInGroup,
        also: Vec<Document>,
    ) -> Result<GroupView, GroupBookError> {
        let _w = self.writer.lock().await;
        group.validate()?;
        if self.callin.group(&group.name).is_some() {
            return Err(GroupBookError::Exists(group.name));
        }
        self.put(group, also, CallIn::add_group).await
    }

    /// Replaces a group's pool and settings (the name cannot change); live requests keep their
    /// numbers and codes.
    pub async fn update(
        &self,
        name: &str,
        group: CallInGroup,
        also: Vec<Document>,
    ) -> Result<GroupView, GroupBookError> {
        let _w = self.writer.lock().await;
        self.writable(name)?;
        if group.name != name {
            return Err(GroupBookError::Rename {
                saved: name.to_string(),
                sent: group.name,
            });
        }
        group.validate()?;
        self.put(group, also, CallIn::update_group).await
    }

    /// Replaces a group's DNIS pool with the numbers of a CSV file (`number,description` per
    /// line). Every bad row is reported with its line number, and then nothing is imported.
    pub async fn import_csv(
        &self,
        name: &str,
        text: &str,
        also: Vec<Document>,
    ) -> Result<GroupView, GroupBookError> {
        let _w = self.writer.lock().await;
        let mut group = self.writable(name)?;
        group.dnis = import_pool_csv(text).map_err(GroupBookError::Csv)?;
        group.validate()?;
        self.put(group, also, CallIn::update_group).await
    }

    /// Stores a valid group with `also`, then puts it in force in the registry with `apply`
    /// (add or replace).
    async fn put(
        &self,
        group: CallInGroup,
        also: Vec<Document>,
        apply: fn(&CallIn, CallInGroup) -> Result<(), CallInError>,
    ) -> Result<GroupView, GroupBookError> {
        self.save(document(&group)?, also).await?;
        apply(&self.callin, group.clone())?;
        Ok(self.view(group))
    }

    /// Deletes a group: no new requests for it; requests already handed out still match until
    /// they expire.
    pub async fn delete(&self, name: &str, also: Vec<Document>) -> Result<(), GroupBookError> {
        let _w = self.writer.lock().await;
        self.writable(name)?;
        self.store.delete_document(GROUP_KIND, name).await?;
        self.callin.remove_group(name);
        crate::store::record_after(&*self.store, also)
            .await
            .map_err(GroupBookError::NotRecorded)
    }

    /// Stores a group together with `also` (the change's audit entry) in one durable write.
    async fn save(&self, doc: Document, also: Vec<Document>) -> Result<(), GroupBookError> {
        Ok(crate::store::save_with(&*self.store, doc, also).await?)
    }

    /// The group if it exists and is not owned by the file.
    fn writable(&self, name: &str) -> Result<CallInGroup, GroupBookError> {
        let group = self
            .callin
            .group(name)
            .ok_or_else(|| GroupBookError::Unknown(name.to_string()))?;
        if self.from_config.contains(name) {
            return Err(GroupBookError::ReadOnly(name.to_string()));
        }
        Ok(group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callin::group::DnisEntry;
    use crate::callin::{CallInState, NewCallIn};
    use crate::store::SqliteStore;
    use chrono::{TimeZone, Utc};
    use std::path::Path;

    fn group(name: &str, numbers: &[&str]) -> CallInGroup {
        CallInGroup {
            name: name.into(),
            dnis: numbers
                .iter()
                .map(|n| DnisEntry {
                    number: n.to_string(),
                    description: String::new(),
                })
                .collect(),
            generate_access_code: true,
            access_code_length: 8,
            expiry_seconds: 60,
            unique_dnis: true,
        }
    }

    async fn open(dir: &Path) -> (Arc<CallIn>, GroupBook) {
        let callin = Arc::new(CallIn::new());
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir).unwrap());
        let book = GroupBook::load(&[group("FileApp", &["+8001"])], store, callin.clone())
            .await
            .unwrap();
        (callin, book)
    }

    #[tokio::test]
    async fn groups_are_durable_and_the_file_owns_its_groups() {
        let dir = tempfile::tempdir().unwrap();
        let (callin, book) = open(dir.path()).await;
        let created = book
            .create(group("auto_insurance", &["+18005555554"]), vec![])
            .await
            .unwrap();
        assert_eq!(created.source, GroupSource::Admin);
        assert!(matches!(
            book.create(group("auto_insurance", &["+18005555555"]), vec![])
                .await,
            Err(GroupBookError::Exists(_))
        ));
        assert!(matches!(
            book.update("FileApp", group("FileApp", &["+8002"]), vec![])
                .await,
            Err(GroupBookError::ReadOnly(_))
        ));
        assert!(matches!(
            book.delete("FileApp", vec![]).await,
            Err(GroupBookError::ReadOnly(_))
        ));
        assert!(matches!(
            book.update(
                "auto_insurance",
                group("renamed", &["+18005555554"]),
                vec![]
            )
            .await,
            Err(GroupBookError::Rename { .. })
        ));
        let mut changed = group("auto_insurance", &["+18005555556"]);
        changed.access_code_length = 4;
        book.update("auto_insurance", changed, vec![])
            .await
            .unwrap();
        // In force at once: the next request gets the new number and a 4-digit code.
        let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
        let req = callin
            .request(
                NewCallIn {
                    group: "auto_insurance".into(),
                    ..Default::default()
                },
                t0,
            )
            .unwrap();
        assert_eq!(req.dnis, "+18005555556");
        assert_eq!(req.access_code.as_deref().map(str::len), Some(4));
        drop((callin, book));

        let (callin, book) = open(dir.path()).await;
        let names: Vec<(String, GroupSource)> = book
            .list()
            .into_iter()
            .map(|v| (v.group.name, v.source))
            .collect();
        assert_eq!(
            names,
            vec![
                ("FileApp".to_string(), GroupSource::Config),
                ("auto_insurance".to_string(), GroupSource::Admin)
            ]
        );
        assert_eq!(
            callin.group("auto_insurance").unwrap().access_code_length,
            4
        );
        book.delete("auto_insurance", vec![]).await.unwrap();
        assert!(matches!(
            book.get("auto_insurance"),
            Err(GroupBookError::Unknown(_))
        ));
        drop((callin, book));
        let (_callin, book) = open(dir.path()).await;
        assert_eq!(book.list().len(), 1);
    }

    #[tokio::test]
    async fn a_csv_import_is_all_or_nothing_with_line_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let (callin, book) = open(dir.path()).await;
        book.create(group("claims", &["+18005555554"]), vec![])
            .await
            .unwrap();
        let bad = "+18005555554,claims\n+18005555555,Renewals\n1800-555,oops\n+18005555557,Referrals,extra\n";
        let err = book.import_csv("claims", bad, vec![]).await.unwrap_err();
        let GroupBookError::Csv(rows) = &err else {
            panic!("{err}")
        };
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![3, 4]);
        assert_eq!(err.field(), "file");
        assert!(err.to_string().contains("line 3"), "{err}");
        // Nothing imported.
        assert_eq!(callin.group("claims").unwrap().dnis.len(), 1);

        let good = "+18005555554,claims\n+18005555555,Renewals\n+18005555556,,\n";
        let view = book.import_csv("claims", good, vec![]).await.unwrap();
        assert_eq!(view.group.dnis.len(), 3);
        assert_eq!(view.group.dnis[1].description, "Renewals");
        assert!(matches!(
            book.import_csv("FileApp", good, vec![]).await,
            Err(GroupBookError::ReadOnly(_))
        ));
        drop((callin, book));
        let (callin, _book) = open(dir.path()).await;
        assert_eq!(callin.group("claims").unwrap().dnis.len(), 3);
        assert!(
            callin
                .records(Some(CallInState::Pending), None, None)
                .is_empty()
        );
    }
}
