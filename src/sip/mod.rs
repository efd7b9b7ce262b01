//! SIP signalling pieces that do no I/O: message parsing and validation, transactions, digest
//! authentication, the registrar and dialogs. Transport and UA layers drive these.

pub mod dialog;
pub mod digest;
pub mod message;
pub mod registrar;
pub mod transaction;
