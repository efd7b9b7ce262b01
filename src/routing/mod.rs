//! The contact-centre core: skills, agents, per-queue readiness, waiting interactions, EWT and
//! the router that matches them. Synchronous and free of I/O, so it is tested and benchmarked
//! on its own.

pub mod agents;
pub(crate) mod dispatch;
pub(crate) mod ewt;
pub mod growth;
pub mod queue;
pub mod readiness;
pub mod router;
pub mod skills;
pub(crate) mod stats;

pub use agents::{AgentIdx, AgentRegistry, StateKind};
pub use dispatch::Dispatch;
pub use ewt::EwtMode;
pub use growth::{PriorityGrowth, Relaxation};
pub use queue::Waiting;
pub use router::{Assignment, Router, RouterError, WaitRules};
