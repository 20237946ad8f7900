//! Placeholder until the converter lands: every call answers 501.

use super::{ProviderError, RequestContext, ResponseContext, StreamConverter};
use crate::error::ApiError;
use crate::usage::Usage;

fn not_yet() -> ApiError {
    ApiError::new(
        501,
        "server_error",
        "not_implemented",
        "this translation is not available yet",
    )
}

pub fn request(_body: &[u8], _ctx: &RequestContext<'_>) -> Result<Vec<u8>, ApiError> {
    Err(not_yet())
}

pub fn response(_body: &[u8], _ctx: &ResponseContext<'_>) -> Result<Vec<u8>, ApiError> {
    Err(not_yet())
}

pub fn error(status: u16, _body: &[u8]) -> ProviderError {
    ProviderError {
        status,
        kind: None,
        message: None,
        code: None,
        param: None,
    }
}

pub struct Stream;

impl Stream {
    pub fn new(_ctx: &ResponseContext<'_>) -> Self {
        Stream
    }
}

impl StreamConverter for Stream {
    fn push(&mut self, _bytes: &[u8]) -> Vec<u8> {
        Vec::new()
    }
    fn finish(&mut self) -> Vec<u8> {
        Vec::new()
    }
    fn usage(&self) -> Option<&Usage> {
        None
    }
}
