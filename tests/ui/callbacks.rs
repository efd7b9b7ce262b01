//! Callback tab tests.
