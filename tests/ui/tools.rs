//! Tools tests.
