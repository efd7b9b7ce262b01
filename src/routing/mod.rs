//! The contact-centre core: skills, agents, per-queue readiness, waiting interactions, EWT and
//! the router that matches them. Synchronous and free of I/O, so it is tested and benchmarked
//! on its own.

pub mod skills;
