//! Wire shapes of the client APIs, as much of them as the gateway reads.

pub mod gemini;
pub mod json_object;
pub mod openai;
