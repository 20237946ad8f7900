//! Pure logic of the aigw gateway.
//!
//! Everything here takes bytes or typed values and returns data: a routing
//! decision, a request rewrite, a response chunk, a usage delta. Nothing here
//! calls the host, so it all builds and is tested natively and for wasm.

pub mod api;
pub mod apikey;
pub mod body;
pub mod config;
pub mod consumer;
pub mod convert;
pub mod error;
pub mod estimate;
pub mod flow;
pub mod glob;
pub mod handoff;
pub mod headers;
pub mod hostmeta;
pub mod keypool;
pub mod keys;
pub mod metrics;
pub mod provider;
pub mod quota;
pub mod rewrite;
pub mod routing;
pub mod schema;
pub mod split;
pub mod sse;
pub mod stream;
pub mod usage;
