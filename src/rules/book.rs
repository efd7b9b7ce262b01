//! The rule book: named number validation, capacity and region affinity rules, and which rule of
//! each kind every queue uses (one per kind per queue). Each change is written to the store
//! before it is in force, then applied at once to the callback service; at start the book is
//! read back and applied, so the rules in force survive a restart.
//!
//! Every change takes `also`: documents stored in the same write as the change (its audit
//! entry), so a change is never in force without its record.
//!
//! Writers are serialised by an async mutex held across the store write (administrative changes
//! are rare and must not interleave: deleting a rule while another request assigns it); readers
//! take a short synchronous lock and never wait for the store.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::callback::service::CallbackService;
use crate::config::Config;
use crate::rules::affinity::RegionAffinityRule;
use crate::rules::capacity::CapacityGrid;
use crate::rules::number::{NumberRejection, NumberRule, NumberRuleSpec};
use crate::store::{Document, Store};

mod kind;
mod model;
pub use kind::BookRule;
pub use model::{ASSIGNMENT_KIND, BookError, CapacityRule, Listed, QueueRules, RuleKind};

/// The rules in force, by kind, and the queues' assignments.
#[derive(Default)]
pub struct State {
    number: BTreeMap<String, NumberRule>,
    capacity: BTreeMap<String, (CapacityRule, CapacityGrid)>,
    affinity: BTreeMap<String, RegionAffinityRule>,
    assignments: BTreeMap<String, QueueRules>,
}

impl State {
    fn has(&self, kind: RuleKind, name: &str) -> bool {
        match kind {
            RuleKind::Number => self.number.contains_key(name),
            RuleKind::Capacity => self.capacity.contains_key(name),
            RuleKind::Affinity => self.affinity.contains_key(name),
        }
    }

    fn queues_using(&self, kind: RuleKind, name: &str) -> Vec<String> {
        self.assignments
            .iter()
            .filter(|(_, r)| r.get(kind) == Some(name))
            .map(|(q, _)| q.clone())
            .collect()
    }
}

/// Named rules and their assignment to queues, durable and in force.
pub struct RuleBook {
    store: Arc<dyn Store>,
    callbacks: Arc<CallbackService>,
    queues: BTreeSet<String>,
    state: RwLock<State>,
    writer: tokio::sync::Mutex<()>,
}

fn decode<T: serde::de::DeserializeOwned>(kind: &'static str, d: Document) -> Result<T, BookError> {
    serde_json::from_value(d.body).map_err(|e| BookError::Corrupt {
        kind,
        id: d.id,
        reason: e.to_string(),
    })
}

/// Reads the stored rules of one kind into `state`; one that no longer validates is corrupt.
async fn load_kind<R: BookRule>(state: &mut State, store: &dyn Store) -> Result<(), BookError> {
    let doc_kind = R::KIND.doc_kind();
    for d in store.documents(doc_kind).await? {
        let id = d.id.clone();
        let rule: R = decode(doc_kind, d)?;
        let kept = rule.compile().map_err(|e| BookError::Corrupt {
            kind: doc_kind,
            id: id.clone(),
            reason: e.to_string(),
        })?;
        R::kept_mut(state).insert(id, kept);
    }
    Ok(())
}

/// Reads every stored rule and the assignments of the configured `queues`; a stored rule that
/// no longer validates, or an assignment naming a rule not stored, is corrupt.
async fn read_state(store: &dyn Store, queues: &BTreeSet<String>) -> Result<State, BookError> {
    let mut state = State::default();
    load_kind::<NumberRuleSpec>(&mut state, store).await?;
    load_kind::<CapacityRule>(&mut state, store).await?;
    load_kind::<RegionAffinityRule>(&mut state, store).await?;
    for d in store.documents(ASSIGNMENT_KIND).await? {
        let queue = d.id.clone();
        let rules: QueueRules = decode(ASSIGNMENT_KIND, d)?;
        if !queues.contains(&queue) {
            tracing::warn!(%queue, "rules assigned to a queue that is no longer configured are ignored");
            continue;
        }
        if rules.is_empty() {
            continue;
        }
        for kind in [RuleKind::Number, RuleKind::Capacity, RuleKind::Affinity] {
            if let Some(name) = rules.get(kind)
                && !state.has(kind, name)
            {
                return Err(BookError::Corrupt {
                    kind: ASSIGNMENT_KIND,
                    id: queue,
                    reason: format!("it names {kind} rule `{name}`, which is not stored"),
                });
            }
        }
        state.assignments.insert(queue, rules);
    }
    Ok(state)
}

impl RuleBook {
    /// Reads every rule and assignment from the store and applies them to `callbacks`. A stored
    /// rule that no longer validates stops the start (a queue silently losing its number rule
    /// would dial anywhere); an assignment to a queue no longer configured is skipped.
    pub async fn load(
        config: &Config,
        store: Arc<dyn Store>,
        callbacks: Arc<CallbackService>,
    ) -> Result<RuleBook, BookError> {
        let queues: BTreeSet<String> = config.spec.queues.iter().map(|q| q.name.clone()).collect();
        let state = read_state(&*store, &queues).await?;
        let book = RuleBook {
            store,
            callbacks,
            queues,
            state: RwLock::new(state),
            writer: tokio::sync::Mutex::new(()),
        };
        {
            let state = book.read();
            for queue in state.assignments.keys() {
                book.apply(&state, queue);
            }
        }
        Ok(book)
    }

    /// Re-reads every rule and assignment from the store and puts them in force (another node
    /// of a cluster changed them). A stored rule that no longer validates leaves the rules in
    /// force as they were, and is reported.
    pub async fn reload(&self) -> Result<(), BookError> {
        let _w = self.writer.lock().await;
        let fresh = read_state(&*self.store, &self.queues).await?;
        let mut state = self.write();
        *state = fresh;
        for queue in &self.queues {
            self.apply(&state, queue);
        }
        Ok(())
    }

    /// Stores a document together with `also` (the change's audit entry) in one durable write.
    /// Stores a document together with `also` (the change's audit entry) in one durable write.
    async fn save(&self, doc: Document, also: Vec<Document>) -> Result<(), BookError> {
        Ok(crate::store::save_with(&*self.store, doc, also).await?)
    }

    fn read(&self) -> parking_lot::RwLockReadGuard<'_, State> {
        self.state.read()
    }

    fn write(&self) -> parking_lot::RwLockWriteGuard<'_, State> {
        self.state.write()
    }

    /// Puts a queue's number and capacity rules in force in the callback service.
    fn apply(&self, state: &State, queue: &str) {
        let rules = state.assignments.get(queue);
        let number = rules
            .and_then(|r| r.number_rule.as_ref())
            .and_then(|n| state.number.get(n))
            .cloned();
        let grid = rules
            .and_then(|r| r.capacity_rule.as_ref())
            .and_then(|n| state.capacity.get(n))
            .map(|(_, g)| g.clone());
        self.callbacks.set_number_rule(queue, number);
        self.callbacks.set_capacity_rule(queue, grid);
    }

    fn apply_users(&self, kind: RuleKind, name: &str) {
        let state = self.read();
        for queue in state.queues_using(kind, name) {
            self.apply(&state, &queue);
        }
    }

    // ---- the three kinds alike ----

    /// Every rule of a kind with the queues using it.
    pub fn rules<R: BookRule>(&self) -> Vec<Listed<R>> {
        let state = self.read();
        R::kept(&state)
            .iter()
            .map(|(name, kept)| Listed {
                rule: R::spec(kept).clone(),
                queues: state.queues_using(R::KIND, name),
            })
            .collect()
    }

    /// One rule of a kind, with the queues using it.
    pub fn rule<R: BookRule>(&self, name: &str) -> Result<Listed<R>, BookError> {
        let state = self.read();
        let kept = R::kept(&state)
            .get(name)
            .ok_or_else(|| unknown(R::KIND, name))?;
        Ok(Listed {
            rule: R::spec(kept).clone(),
            queues: state.queues_using(R::KIND, name),
        })
    }

    /// Creates a rule (names are immutable, so this never overwrites); returns it as saved.
    pub async fn create<R: BookRule>(&self, rule: R, also: Vec<Document>) -> Result<R, BookError> {
        let _w = self.writer.lock().await;
        check_name(rule.name())?;
        let kept = rule.compile()?;
        let name = R::spec(&kept).name().to_string();
        if R::kept(&self.read()).contains_key(&name) {
            return Err(BookError::Exists {
                kind: R::KIND,
                name,
            });
        }
        self.save_kept::<R>(kept, also).await
    }

    /// Replaces a rule (its name cannot change); queues using it apply the new version at once.
    pub async fn update<R: BookRule>(
        &self,
        name: &str,
        rule: R,
        also: Vec<Document>,
    ) -> Result<R, BookError> {
        let _w = self.writer.lock().await;
        check_same_name(name, rule.name())?;
        if !R::kept(&self.read()).contains_key(name) {
            return Err(unknown(R::KIND, name));
        }
        self.save_kept::<R>(rule.compile()?, also).await
    }

    /// Stores a compiled rule with `also`, then puts it in force for the queues using it.
    async fn save_kept<R: BookRule>(
        &self,
        kept: R::Kept,
        also: Vec<Document>,
    ) -> Result<R, BookError> {
        let spec = R::spec(&kept).clone();
        let name = spec.name().to_string();
        self.save(Document::of(R::KIND.doc_kind(), &name, &spec)?, also)
            .await?;
        R::kept_mut(&mut self.write()).insert(name.clone(), kept);
        self.apply_users(R::KIND, &name);
        Ok(spec)
    }

    /// Tests a number against a saved rule, in the guide's order: country, then patterns.
    pub fn test_number(
        &self,
        name: &str,
        number: &str,
    ) -> Result<Result<String, NumberRejection>, BookError> {
        let state = self.read();
        let rule = state
            .number
            .get(name)
            .ok_or_else(|| unknown(RuleKind::Number, name))?;
        Ok(rule.check(number))
    }

    /// Switches a capacity rule between hourly (60) and half-hourly (30) cells with the guide's
    /// conversion: to hours the :30 values are dropped, to half hours each hour is duplicated.
    pub async fn set_capacity_duration(
        &self,
        name: &str,
        duration: u32,
        also: Vec<Document>,
    ) -> Result<CapacityRule, BookError> {
        let _w = self.writer.lock().await;
        let grid = {
            let state = self.read();
            let (_, grid) = state
                .capacity
                .get(name)
                .ok_or_else(|| unknown(RuleKind::Capacity, name))?;
            grid.with_duration(duration)?
        };
        let rule = CapacityRule {
            name: name.to_string(),
            capacity: grid.to_statement(),
        };
        self.save_kept::<CapacityRule>((rule, grid), also).await
    }

    /// The region affinity rule in force on a queue (consulted by a multi-node deployment).
    pub fn affinity_for(&self, queue: &str) -> Option<RegionAffinityRule> {
        let state = self.read();
        let name = state.assignments.get(queue)?.affinity_rule.as_ref()?;
        state.affinity.get(name).cloned()
    }

    // ---- deletion and assignment, shared by the three kinds ----

    /// Deletes a rule; refused while any queue uses it (unassign first).
    pub async fn delete(
        &self,
        kind: RuleKind,
        name: &str,
        also: Vec<Document>,
    ) -> Result<(), BookError> {
        let _w = self.writer.lock().await;
        {
            let state = self.read();
            if !state.has(kind, name) {
                return Err(unknown(kind, name));
            }
            let queues = state.queues_using(kind, name);
            if !queues.is_empty() {
                return Err(BookError::InUse {
                    kind,
                    name: name.to_string(),
                    queues,
                });
            }
        }
        self.store.delete_document(kind.doc_kind(), name).await?;
        {
            let mut state = self.write();
            match kind {
                RuleKind::Number => drop(state.number.remove(name)),
                RuleKind::Capacity => drop(state.capacity.remove(name)),
                RuleKind::Affinity => drop(state.affinity.remove(name)),
            }
        }
        crate::store::record_after(&*self.store, also)
            .await
            .map_err(BookError::NotRecorded)
    }

    /// Assigns a rule of `kind` to a queue (replacing the one it had) or clears it with `None`;
    /// in force at once. Returns the queue's assignments after the change.
    pub async fn assign(
        &self,
        queue: &str,
        kind: RuleKind,
        rule: Option<&str>,
    ) -> Result<QueueRules, BookError> {
        self.assign_many(queue, &[(kind, rule.map(str::to_string))], Vec::new())
            .await
    }

    /// Several assignments to one queue in one durable write: all are made or none.
    pub async fn assign_many(
        &self,
        queue: &str,
        changes: &[(RuleKind, Option<String>)],
        also: Vec<Document>,
    ) -> Result<QueueRules, BookError> {
        let _w = self.writer.lock().await;
        if !self.queues.contains(queue) {
            return Err(BookError::UnknownQueue(queue.to_string()));
        }
        let mut rules = {
            let state = self.read();
            for (kind, rule) in changes {
                if let Some(name) = rule
                    && !state.has(*kind, name)
                {
                    return Err(unknown(*kind, name));
                }
            }
            state.assignments.get(queue).cloned().unwrap_or_default()
        };
        for (kind, rule) in changes {
            *rules.slot(*kind) = rule.clone();
        }
        // Saved even when empty, so that the change and its audit entry are one write.
        self.save(Document::of(ASSIGNMENT_KIND, queue, &rules)?, also)
            .await?;
        let mut state = self.write();
        if rules.is_empty() {
            state.assignments.remove(queue);
        } else {
            state.assignments.insert(queue.to_string(), rules.clone());
        }
        self.apply(&state, queue);
        Ok(rules)
    }

    /// The rules assigned to a queue (all `None` when it has none).
    pub fn queue_rules(&self, queue: &str) -> Result<QueueRules, BookError> {
        if !self.queues.contains(queue) {
            return Err(BookError::UnknownQueue(queue.to_string()));
        }
        Ok(self
            .read()
            .assignments
            .get(queue)
            .cloned()
            .unwrap_or_default())
    }

    /// Every configured queue with its rules (the Queues page's rule columns).
    pub fn assignments(&self) -> BTreeMap<String, QueueRules> {
        let state = self.read();
        self.queues
            .iter()
            .map(|q| {
                (
                    q.clone(),
                    state.assignments.get(q).cloned().unwrap_or_default(),
                )
            })
            .collect()
    }
}

fn unknown(kind: RuleKind, name: &str) -> BookError {
    BookError::UnknownRule {
        kind,
        name: name.to_string(),
    }
}

/// Names are ids in the store and in URLs: 1–64 characters, no control characters, not blank.
fn check_name(name: &str) -> Result<(), BookError> {
    let n = name.chars().count();
    if name.trim().is_empty() || n > 64 || name.chars().any(char::is_control) {
        return Err(BookError::Name(name.to_string()));
    }
    Ok(())
}

fn check_same_name(saved: &str, sent: &str) -> Result<(), BookError> {
    if saved == sent {
        Ok(())
    } else {
        Err(BookError::Rename {
            saved: saved.to_string(),
            sent: sent.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::memory::{Answer, MemoryDialer};
    use crate::callback::dialer::AttemptOutcome;
    use crate::callback::service::api_callback;
    use crate::clock::ManualClock;
    use crate::push::MemoryNotifier;
    use crate::rules::capacity::CapacityStatement;
    use crate::store::SqliteStore;
    use chrono::{NaiveDate, TimeZone, Utc};
    use std::path::Path;

    const SEED_STATEMENT: &str = r#"{"days":{"sun":{"02:00":2},"mon":{"05:00":2},"tue":{"07:00":3,"06:00":4},"wed":{"08:00":5},"thu":{"11:00":6},"fri":{"10:00":6},"sat":{"19:00":6}},"duration":60}"#;

    fn config() -> Arc<Config> {
        Arc::new(
            Config::from_str_in(
                "queues:\n  - name: S_VQ_CB\n    slot_capacity: 7\n    slot_duration_minutes: 15\n  - name: T_VQ_CB\n",
                Path::new("/"),
            )
            .unwrap(),
        )
    }

    /// A callback service and a rule book over the store in `dir` (a second call on the same
    /// directory is a restart).
    async fn open(dir: &Path) -> (Arc<CallbackService>, RuleBook) {
        let config = config();
        // Monday 2 March 2026, 09:00 UTC.
        let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap());
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir).unwrap());
        let svc = Arc::new(CallbackService::new(
            config.clone(),
            clock.shared(),
            store.clone(),
            Arc::new(MemoryNotifier::new()),
        ));
        let book = RuleBook::load(&config, store, svc.clone()).await.unwrap();
        (svc, book)
    }

    fn fr_rule(patterns: &[&str]) -> NumberRuleSpec {
        NumberRuleSpec {
            name: "fr-only".into(),
            countries: ["fr".to_string()].into(),
            blocked_patterns: patterns.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[tokio::test]
    async fn a_number_rule_is_in_force_when_assigned_and_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (svc, book) = open(dir.path()).await;
        let saved = book.create(fr_rule(&["^33899"]), vec![]).await.unwrap();
        // Country codes are stored upper case.
        assert_eq!(saved.countries, ["FR".to_string()].into());
        // Not assigned yet: any valid number passes.
        assert!(svc.check_number("S_VQ_CB", "+442079460000").is_ok());
        let rules = book
            .assign("S_VQ_CB", RuleKind::Number, Some("fr-only"))
            .await
            .unwrap();
        assert_eq!(rules.number_rule.as_deref(), Some("fr-only"));
        assert!(matches!(
            svc.check_number("S_VQ_CB", "+442079460000"),
            Err(NumberRejection::CountryNotAllowed { .. })
        ));
        assert!(svc.check_number("T_VQ_CB", "+442079460000").is_ok());
        assert_eq!(
            book.rules::<NumberRuleSpec>()[0].queues,
            vec!["S_VQ_CB".to_string()]
        );
        drop((svc, book));

        let (svc, book) = open(dir.path()).await;
        assert!(matches!(
            svc.check_number("S_VQ_CB", "+33899123456"),
            Err(NumberRejection::Blocked { pattern, .. }) if pattern == "^33899"
        ));
        assert_eq!(
            svc.check_number("S_VQ_CB", "+33612345678").unwrap(),
            "+33612345678"
        );
        assert_eq!(
            book.queue_rules("S_VQ_CB").unwrap().number_rule.as_deref(),
            Some("fr-only")
        );
        book.assign("S_VQ_CB", RuleKind::Number, None)
            .await
            .unwrap();
        assert!(svc.check_number("S_VQ_CB", "+442079460000").is_ok());
        drop((svc, book));
        let (svc, _book) = open(dir.path()).await;
        assert!(svc.check_number("S_VQ_CB", "+442079460000").is_ok());
    }

    #[tokio::test]
    async fn test_a_number_reports_the_country_before_the_patterns() {
        let dir = tempfile::tempdir().unwrap();
        let (_svc, book) = open(dir.path()).await;
        book.create(fr_rule(&["^44"]), vec![]).await.unwrap();
        // A GB number matches the pattern too, but the country is what the test reports.
        assert!(matches!(
            book.test_number("fr-only", "+442079460000").unwrap(),
            Err(NumberRejection::CountryNotAllowed { country, .. }) if country == "GB"
        ));
        assert_eq!(
            book.test_number("fr-only", "+33 6 12 34 56 78").unwrap(),
            Ok("+33612345678".to_string())
        );
        assert!(matches!(
            book.test_number("nope", "+33612345678"),
            Err(BookError::UnknownRule { .. })
        ));
    }

    #[tokio::test]
    async fn an_edited_rule_is_checked_again_before_the_dial() {
        let dir = tempfile::tempdir().unwrap();
        let (svc, book) = open(dir.path()).await;
        book.create(fr_rule(&[]), vec![]).await.unwrap();
        book.assign("S_VQ_CB", RuleKind::Number, Some("fr-only"))
            .await
            .unwrap();
        let rec = svc
            .create(api_callback("S_VQ_CB", "+33612345678", None).into())
            .await
            .unwrap();
        // The number becomes fraudulent after the booking.
        book.update("fr-only", fr_rule(&["^3361234"]), vec![])
            .await
            .unwrap();
        let dialer = MemoryDialer::new(Answer::Pick(vec![]), None);
        let (outcome, leg) = svc.attempt(rec.id, "alice", &dialer, 1).await.unwrap();
        assert!(leg.is_none());
        assert!(
            matches!(&outcome, AttemptOutcome::NumberRefused(why) if why.contains("^3361234")),
            "{outcome:?}"
        );
        assert!(dialer.calls().is_empty(), "the number was dialled");
    }

    #[tokio::test]
    async fn capacity_rules_override_slot_capacity_and_cannot_be_deleted_while_assigned() {
        let dir = tempfile::tempdir().unwrap();
        let (svc, book) = open(dir.path()).await;
        let statement: CapacityStatement = serde_json::from_str(SEED_STATEMENT).unwrap();
        let saved = book
            .create(
                CapacityRule {
                    name: "March".into(),
                    capacity: statement.clone(),
                },
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(saved.capacity, statement);
        assert!(matches!(
            book.create(saved.clone(), vec![]).await,
            Err(BookError::Exists { .. })
        ));
        let tuesday = NaiveDate::from_ymd_opt(2026, 3, 3).unwrap();
        let capacity_at = |h: u32, m: u32| {
            svc.availability("S_VQ_CB", tuesday, tuesday)
                .unwrap()
                .iter()
                .find(|s| s.start == Utc.with_ymd_and_hms(2026, 3, 3, h, m, 0).unwrap())
                .map(|s| s.capacity)
        };
        assert_eq!(capacity_at(7, 15), Some(7), "the queue's own slot capacity");
        book.assign("S_VQ_CB", RuleKind::Capacity, Some("March"))
            .await
            .unwrap();
        assert_eq!(capacity_at(7, 15), Some(3));
        assert_eq!(capacity_at(6, 45), Some(4));
        assert_eq!(capacity_at(9, 0), Some(0), "an empty cell has no capacity");

        let err = book
            .delete(RuleKind::Capacity, "March", vec![])
            .await
            .unwrap_err();
        assert!(
            matches!(&err, BookError::InUse { queues, .. } if queues == &vec!["S_VQ_CB".to_string()])
        );
        assert!(err.to_string().contains("S_VQ_CB"), "{err}");

        // Half-hour cells: each hour duplicated at :30, in force at once.
        let half = book
            .set_capacity_duration("March", 30, vec![])
            .await
            .unwrap();
        assert_eq!(half.capacity.duration, 30);
        assert_eq!(half.capacity.days["tue"]["07:30"], 3);
        let mut edited = half.clone();
        edited
            .capacity
            .days
            .get_mut("tue")
            .unwrap()
            .insert("07:30".into(), 9);
        book.update("March", edited, vec![]).await.unwrap();
        assert_eq!(capacity_at(7, 15), Some(3));
        assert_eq!(capacity_at(7, 45), Some(9));
        // Back to hours: the :30 values are dropped, the hour's value is used.
        let hourly = book
            .set_capacity_duration("March", 60, vec![])
            .await
            .unwrap();
        assert_eq!(hourly.capacity, statement);
        assert_eq!(capacity_at(7, 45), Some(3));
        drop((svc, book));

        let (svc, book) = open(dir.path()).await;
        assert_eq!(
            svc.availability("S_VQ_CB", tuesday, tuesday)
                .unwrap()
                .iter()
                .find(|s| s.start == Utc.with_ymd_and_hms(2026, 3, 3, 7, 0, 0).unwrap())
                .map(|s| s.capacity),
            Some(3)
        );
        book.assign("S_VQ_CB", RuleKind::Capacity, None)
            .await
            .unwrap();
        book.delete(RuleKind::Capacity, "March", vec![])
            .await
            .unwrap();
        assert!(book.rules::<CapacityRule>().is_empty());
        drop((svc, book));
        let (_svc, book) = open(dir.path()).await;
        assert!(matches!(
            book.rule::<CapacityRule>("March"),
            Err(BookError::UnknownRule { .. })
        ));
    }

    #[tokio::test]
    async fn region_affinity_rules_keep_their_order() {
        let dir = tempfile::tempdir().unwrap();
        let (_svc, book) = open(dir.path()).await;
        let rule = RegionAffinityRule {
            name: "sanfrancisco".into(),
            preferred: vec!["n-california".into(), "s-california".into()],
            fallback: vec!["oregon".into()],
            ignored: vec!["virginia".into()],
        };
        let mut bad = rule.clone();
        bad.preferred.clear();
        let err = book.create(bad, vec![]).await.unwrap_err();
        assert_eq!(err.field(), "preferred");
        book.create(rule.clone(), vec![]).await.unwrap();
        book.assign("T_VQ_CB", RuleKind::Affinity, Some("sanfrancisco"))
            .await
            .unwrap();
        drop(book);
        let (_svc, book) = open(dir.path()).await;
        let kept = book.affinity_for("T_VQ_CB").unwrap();
        assert_eq!(kept, rule);
        assert_eq!(
            kept.order(&|_| true),
            vec!["n-california", "s-california", "oregon"]
        );
        assert!(book.affinity_for("S_VQ_CB").is_none());
    }

    #[tokio::test]
    async fn bad_changes_are_refused_and_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let (_svc, book) = open(dir.path()).await;
        let mut no_country = fr_rule(&[]);
        no_country.countries.clear();
        assert_eq!(
            book.create(no_country, vec![]).await.unwrap_err().field(),
            "countries"
        );
        let err = book
            .create(fr_rule(&["(unclosed"]), vec![])
            .await
            .unwrap_err();
        assert_eq!(err.field(), "blockedPatterns");
        let mut blank = fr_rule(&[]);
        blank.name = " ".into();
        assert!(matches!(
            book.create(blank, vec![]).await,
            Err(BookError::Name(_))
        ));
        book.create(fr_rule(&[]), vec![]).await.unwrap();
        let mut renamed = fr_rule(&[]);
        renamed.name = "other".into();
        assert!(matches!(
            book.update("fr-only", renamed, vec![]).await,
            Err(BookError::Rename { .. })
        ));
        assert!(matches!(
            book.assign("Nope_VQ", RuleKind::Number, Some("fr-only")).await,
            Err(BookError::UnknownQueue(q)) if q == "Nope_VQ"
        ));
        assert!(matches!(
            book.assign("S_VQ_CB", RuleKind::Capacity, Some("fr-only"))
                .await,
            Err(BookError::UnknownRule {
                kind: RuleKind::Capacity,
                ..
            })
        ));
        let bad_cell: CapacityStatement =
            serde_json::from_str(r#"{"days":{"mon":{"09:30":1}},"duration":60}"#).unwrap();
        let err = book
            .create(
                CapacityRule {
                    name: "x".into(),
                    capacity: bad_cell,
                },
                vec![],
            )
            .await
            .unwrap_err();
        assert_eq!(err.field(), "capacity.days.mon.09:30");
        // Nothing refused was stored.
        drop(book);
        let (_svc, book) = open(dir.path()).await;
        assert_eq!(book.rules::<NumberRuleSpec>().len(), 1);
        assert!(book.rules::<CapacityRule>().is_empty());
    }

    #[tokio::test]
    async fn a_stored_rule_that_no_longer_validates_stops_the_start() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SqliteStore::open(dir.path()).unwrap();
            store
                .save_documents(vec![Document {
                    kind: RuleKind::Number.doc_kind().into(),
                    id: "broken".into(),
                    body: serde_json::json!({"name":"broken","countries":["FR"],"blockedPatterns":["("]}),
                }])
                .await
                .unwrap();
        }
        let config = config();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let svc = Arc::new(CallbackService::new(
            config.clone(),
            crate::clock::SystemClock::shared(),
            store.clone(),
            Arc::new(MemoryNotifier::new()),
        ));
        let err = RuleBook::load(&config, store, svc).await.err().unwrap();
        assert!(
            matches!(&err, BookError::Corrupt { id, .. } if id == "broken"),
            "{err}"
        );
    }
}
