//! Designer-like IVR applications written in YAML: the model, the loader that checks them
//! before any call, and the interpreter that runs them on a `CallLeg`.

pub(crate) mod blocks;
pub mod call_data;
pub(crate) mod check;
pub mod expr;
mod graph;
pub mod http;
pub mod interpreter;
pub mod last_agent;
pub mod load;
pub mod model;
pub mod modules;
pub(crate) mod services;
pub(crate) mod set;
pub mod survey;

pub use interpreter::{Ending, RunReport, Serving, TraceEvent, run, run_serving};
pub use load::{Flow, FlowErrors, LoadContext, load_dir, load_file, load_str};
pub use services::FlowServices;
pub use set::{FlowSet, LiveFlows, Reload};
