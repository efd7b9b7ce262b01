//! Configuration changed on one node in force on every node: a change written through the
//! administration (rules, queue assignments, call-in groups) is announced with
//! `pg_notify('boomerang_config', kind)` by the statement that stores it
//! (`store::postgres::shared`); every node listens (`cluster::listen`) and re-reads that kind
//! into force — the rule book for any rule kind or assignment, the call-in groups for theirs —
//! and re-reads both after each reconnection and every 30 s, in case a hint was lost.

use std::sync::Arc;
use std::time::Duration;

use super::listen::{Hint, listen_loop};
use crate::callin::book::{GROUP_KIND, GroupBook};
use crate::rules::RuleBook;
use crate::store::postgres::shared::CONFIG_CHANNEL;

/// A full re-read at least this often, whatever the notifications.
const RESYNC_EVERY: Duration = Duration::from_secs(30);

/// Keeps `rules` and `groups` in step with the shared store, for ever.
pub async fn config_loop(url: String, rules: Arc<RuleBook>, groups: Arc<GroupBook>) {
    listen_loop(url, CONFIG_CHANNEL, RESYNC_EVERY, |hint| {
        let (rules, groups) = (rules.clone(), groups.clone());
        async move {
            let (book, callin) = match &hint {
                Hint::Resync => (true, true),
                Hint::Changed(kinds) => (
                    kinds.iter().any(|k| k != GROUP_KIND),
                    kinds.iter().any(|k| k == GROUP_KIND),
                ),
            };
            if book && let Err(e) = rules.reload().await {
                tracing::error!(error = %e, "rules changed by another node not put in force");
            }
            if callin && let Err(e) = groups.reload().await {
                tracing::error!(error = %e, "call-in groups changed by another node not put in force");
            }
        }
    })
    .await
}
