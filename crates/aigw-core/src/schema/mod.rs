//! Wire shapes of the client APIs, as much of them as the gateway reads.

pub mod anthropic;
pub mod json_object;
pub mod openai;
