//! Wire shapes of the client and provider APIs, as much of them as the gateway reads.

pub mod anthropic;
pub mod gemini;
pub mod json_object;
pub mod openai;
