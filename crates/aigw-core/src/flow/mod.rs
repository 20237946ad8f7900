//! The decisions each filter callback makes, as pure functions: the filter
//! gathers inputs from the host, calls one of these, and applies the result.

pub mod consumer;
pub mod provider;
pub mod router;
