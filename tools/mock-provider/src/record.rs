//! The bounded log of requests received on provider endpoints.
//!
//! Recording is cheap on the request path (the body is a reference-counted `Bytes`, nothing
//! is parsed); the JSON view is built only when `GET /__mock/requests` asks for it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use hyper::header::HeaderMap;
use hyper::Method;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::Value;

/// How many requests are kept by default; older ones are dropped first.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// One request as received.
#[derive(Debug)]
pub struct RecordedRequest {
    method: Method,
    path: String,
    query: Option<String>,
    /// Lowercased name and value, in arrival order, repeated names kept apart.
    headers: Vec<(String, String)>,
    body: Bytes,
    /// The model the mock took the request to be for, if any.
    model: Option<String>,
}

impl RecordedRequest {
    pub fn new(
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
        body: Bytes,
        model: Option<&str>,
    ) -> Self {
        Self {
            method: method.clone(),
            path: path.to_owned(),
            query: query.map(str::to_owned),
            headers: headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body,
            model: model.map(str::to_owned),
        }
    }
}

/// `{"method","path","query","headers":{name: value},"body","json","model"}`; repeated
/// headers are joined with ", ", the body is lossy UTF-8, `json` is the parsed body or null,
/// `model` the model the mock answered for (from the body or the path) or null.
impl Serialize for RecordedRequest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut headers = serde_json::Map::new();
        for (name, value) in &self.headers {
            match headers.get_mut(name) {
                Some(Value::String(joined)) => {
                    joined.push_str(", ");
                    joined.push_str(value);
                }
                _ => {
                    headers.insert(name.clone(), Value::String(value.clone()));
                }
            }
        }
        let json = serde_json::from_slice::<Value>(&self.body).unwrap_or(Value::Null);
        let mut map = serializer.serialize_map(Some(7))?;
        map.serialize_entry("method", self.method.as_str())?;
        map.serialize_entry("path", &self.path)?;
        map.serialize_entry("query", &self.query)?;
        map.serialize_entry("headers", &headers)?;
        map.serialize_entry("body", &String::from_utf8_lossy(&self.body))?;
        map.serialize_entry("json", &json)?;
        map.serialize_entry("model", &self.model)?;
        map.end()
    }
}

/// Newest `capacity` requests, oldest first.
#[derive(Debug)]
pub struct RequestLog {
    capacity: usize,
    entries: Mutex<VecDeque<Arc<RecordedRequest>>>,
}

impl Default for RequestLog {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl RequestLog {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(VecDeque::new()),
        }
    }

    pub fn push(&self, request: RecordedRequest) {
        if self.capacity == 0 {
            return;
        }
        let request = Arc::new(request);
        let mut entries = self.lock();
        while entries.len() >= self.capacity {
            entries.pop_front();
        }
        entries.push_back(request);
    }

    /// A copy of the log (cheap: reference counts), so serialization happens without the lock.
    pub fn snapshot(&self) -> Vec<Arc<RecordedRequest>> {
        self.lock().iter().cloned().collect()
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Arc<RecordedRequest>>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::{HeaderName, HeaderValue};
    use serde_json::json;

    fn request(path: &str, body: &'static [u8]) -> RecordedRequest {
        let mut headers = HeaderMap::new();
        let accept = HeaderName::from_static("accept");
        headers.append(accept.clone(), HeaderValue::from_static("a/b"));
        headers.append(accept, HeaderValue::from_static("c/d"));
        headers.append(
            HeaderName::from_static("authorization"),
            HeaderValue::from_static("Bearer k"),
        );
        RecordedRequest::new(
            &Method::POST,
            path,
            Some("x=1"),
            &headers,
            Bytes::from_static(body),
            Some("m"),
        )
    }

    #[test]
    fn serializes_headers_joined_and_body_parsed() {
        let value =
            serde_json::to_value(request("/v1/chat/completions", br#"{"model":"m"}"#)).unwrap();
        assert_eq!(
            value,
            json!({
                "method": "POST",
                "path": "/v1/chat/completions",
                "query": "x=1",
                "headers": {"accept": "a/b, c/d", "authorization": "Bearer k"},
                "body": "{\"model\":\"m\"}",
                "json": {"model": "m"},
                "model": "m"
            })
        );
        let value = serde_json::to_value(request("/x", b"not json \xff")).unwrap();
        assert_eq!(value["json"], Value::Null);
        assert_eq!(value["body"], "not json \u{fffd}");
    }

    #[test]
    fn keeps_only_the_newest_entries_oldest_first() {
        let log = RequestLog::with_capacity(2);
        for path in ["/1", "/2", "/3"] {
            log.push(request(path, b""));
        }
        let paths: Vec<_> = log.snapshot().iter().map(|r| r.path.clone()).collect();
        assert_eq!(paths, ["/2", "/3"]);
        log.clear();
        assert!(log.snapshot().is_empty());
    }
}
