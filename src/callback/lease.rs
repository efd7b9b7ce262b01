//! What the callback service needs from a cluster (several nodes on one PostgreSQL store): the
//! fenced write of a callback this node claimed, and whether the node may start a dial. With
//! one node there is none, and the service writes through the store as it always did.

use async_trait::async_trait;

use super::model::CallbackRecord;
use crate::push::OutboxEntry;
use crate::store::StoreError;

/// This node's leases on the callbacks it claimed (see ARCHITECTURE.md, "Several nodes").
#[async_trait]
pub trait Leases: Send + Sync {
    /// Writes `record`, which this node owns, with `fresh` unowned callbacks and the outbox
    /// `entries` of the change, in one transaction; gives the lease up when `release`. False
    /// when the node no longer owns it (a survivor took it over): nothing was written.
    async fn save_owned(
        &self,
        record: &CallbackRecord,
        fresh: &[CallbackRecord],
        entries: &[OutboxEntry],
        release: bool,
    ) -> Result<bool, StoreError>;

    /// False while the node is fenced (no successful heartbeat for half a lease): it must not
    /// start a dial, since a survivor may soon take its callbacks over.
    fn may_dial(&self) -> bool;
}
