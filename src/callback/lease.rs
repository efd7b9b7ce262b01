//! What the callback service needs from a cluster (several nodes on one PostgreSQL store): the
//! fenced write of a callback this node claimed, and whether the node may start a dial. With
//! one node there is none, and the service writes through the store as it always did.

use async_trait::async_trait;

use super::model::CallbackRecord;
use crate::push::OutboxEntry;
use crate::store::StoreError;

/// One change of a callback this node owns, as one transaction.
pub struct OwnedWrite<'a> {
    /// The callback as changed.
    pub record: &'a CallbackRecord,
    /// Callbacks the change created (nobody owns them yet).
    pub fresh: &'a [CallbackRecord],
    /// The outbox entries the change raised.
    pub entries: &'a [OutboxEntry],
    /// Whether the node gives the lease up (completed, or back in the queue).
    pub release: bool,
}

/// This node's leases on the callbacks it claimed (see ARCHITECTURE.md, "Several nodes").
#[async_trait]
pub trait Leases: Send + Sync {
    /// Writes a change of a callback this node owns; false when the node no longer owns it
    /// (a survivor took it over): nothing was written.
    async fn save_owned(&self, write: OwnedWrite<'_>) -> Result<bool, StoreError>;

    /// Writes a change of a callback this node does not hold (an API cancel), fenced against
    /// a concurrent claim: false, nothing written, while another live node holds it.
    async fn save_unheld(&self, write: OwnedWrite<'_>) -> Result<bool, StoreError>;

    /// False while the node is fenced (no successful heartbeat for half a lease): it must not
    /// start a dial, since a survivor may soon take its callbacks over.
    fn may_dial(&self) -> bool;
}
