//! Request dispatch: admin calls to `admin.rs`, everything else is a provider request that
//! is recorded, programmed (`program.rs`) and answered in its protocol (`openai.rs`,
//! `anthropic.rs`, `gemini.rs`).

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::mpsc;

use crate::anthropic::{self, MessageReply};
use crate::gemini::{self, Action, Framing, GenerateReply};
use crate::openai::{self, ChatReply};
use crate::program::{self, Behavior, ErrorFormat, Truncation, UsageMode};
use crate::record::{RecordedRequest, RequestLog};
use crate::reply::Output;
use crate::{admin, program::RuleBook};

/// Largest request body accepted.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// The body of every response: a full buffer, or a channel fed by a streaming task.
pub type ResponseBody = BoxBody<Bytes, io::Error>;

/// Shared by all connections of one mock provider.
#[derive(Debug)]
pub struct State {
    pub name: String,
    name_header: HeaderValue,
    completions: AtomicU64,
    messages: AtomicU64,
    generations: AtomicU64,
    pub requests: RequestLog,
    pub rules: RuleBook,
}

impl State {
    pub fn new(name: &str) -> Result<Self, String> {
        let name_header = HeaderValue::from_str(name)
            .map_err(|_| format!("--name {name:?} cannot be sent as a header value"))?;
        Ok(Self {
            name: name.to_owned(),
            name_header,
            completions: AtomicU64::new(0),
            messages: AtomicU64::new(0),
            generations: AtomicU64::new(0),
            requests: RequestLog::default(),
            rules: RuleBook::default(),
        })
    }

    fn next_completion_id(&self) -> String {
        let n = self.completions.fetch_add(1, Ordering::Relaxed) + 1;
        format!("chatcmpl-{}-{n}", self.name)
    }

    fn next_message_id(&self) -> String {
        let n = self.messages.fetch_add(1, Ordering::Relaxed) + 1;
        format!("msg_mock_{n}")
    }

    fn next_response_id(&self) -> String {
        let n = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        format!("mock-{n}")
    }
}

const MOCK_NAME: HeaderName = HeaderName::from_static("x-mock-name");

/// Answer one request. Never fails: every problem becomes an HTTP error response.
pub async fn handle(
    state: &State,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let mut response = if admin::is_admin_path(req.uri().path()) {
        admin::handle(state, req).await
    } else {
        provider(state, req).await
    };
    response
        .headers_mut()
        .insert(MOCK_NAME, state.name_header.clone());
    Ok(response)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint<'a> {
    /// OpenAI chat completions; `deployment` is set on an Azure OpenAI deployment path.
    Chat {
        deployment: Option<&'a str>,
    },
    Embeddings {
        deployment: Option<&'a str>,
    },
    /// Anthropic Messages.
    Messages,
    /// Anthropic token counting.
    CountTokens,
    /// Gemini `generateContent` or `streamGenerateContent`, for the model in the path.
    Gemini {
        model: &'a str,
        action: Action,
    },
    /// `GET .../models`: a model list (what gateways use as a cheap key check).
    Models,
    Unknown,
}

/// Whose error envelope a provider endpoint answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    OpenAi,
    Anthropic,
    Gemini,
}

impl Protocol {
    /// The JSON error body for `status`, in this protocol's shape.
    fn error_json(self, status: u16, message: &str) -> Bytes {
        match self {
            Self::OpenAi => openai::error_json(message, openai::error_type(status)),
            Self::Anthropic => anthropic::error_json(message, anthropic::error_type(status)),
            Self::Gemini => gemini::error_json(status, message),
        }
    }

    /// A JSON error response in this protocol's shape.
    fn error(self, status: StatusCode, message: &str) -> Response<ResponseBody> {
        let body = self.error_json(status.as_u16(), message);
        full(status, "application/json", body)
    }
}

impl<'a> Endpoint<'a> {
    /// The model named by the path itself (an Azure deployment, a Gemini model).
    fn path_model(self) -> Option<&'a str> {
        match self {
            Self::Chat { deployment } | Self::Embeddings { deployment } => deployment,
            Self::Gemini { model, .. } => Some(model),
            Self::Messages | Self::CountTokens | Self::Models | Self::Unknown => None,
        }
    }

    /// Unknown paths answer in OpenAI's shape, for want of a better one.
    fn protocol(self) -> Protocol {
        match self {
            Self::Chat { .. } | Self::Embeddings { .. } | Self::Models | Self::Unknown => {
                Protocol::OpenAi
            }
            Self::Messages | Self::CountTokens => Protocol::Anthropic,
            Self::Gemini { .. } => Protocol::Gemini,
        }
    }

    fn of(path: &'a str, query: Option<&str>) -> Self {
        if path.ends_with("/chat/completions") {
            Self::Chat {
                deployment: openai::azure_deployment(path),
            }
        } else if path.ends_with("/embeddings") {
            Self::Embeddings {
                deployment: openai::azure_deployment(path),
            }
        } else if path.ends_with("/messages/count_tokens") {
            Self::CountTokens
        } else if path.ends_with("/messages") {
            Self::Messages
        } else if let Some((model, action)) = gemini::route(path, query) {
            Self::Gemini { model, action }
        } else if path.ends_with("/models") {
            Self::Models
        } else {
            Self::Unknown
        }
    }
}

enum Parsed {
    Chat(Result<openai::ChatRequest, String>),
    Embeddings(Result<openai::EmbeddingsRequest, String>),
    Messages(Result<anthropic::MessagesRequest, String>),
    CountTokens(Result<anthropic::CountTokensRequest, String>),
    Gemini(Result<gemini::GenerateRequest, String>, Action),
    None,
}

impl Parsed {
    fn model(&self) -> Option<&str> {
        match self {
            Self::Chat(Ok(r)) => Some(&r.model),
            Self::Embeddings(Ok(r)) => Some(&r.model),
            Self::Messages(Ok(r)) => Some(&r.model),
            Self::CountTokens(Ok(r)) => Some(&r.model),
            Self::Gemini(Ok(r), _) => Some(&r.model),
            _ => None,
        }
    }
}

async fn provider(state: &State, req: Request<Incoming>) -> Response<ResponseBody> {
    let (parts, body) = req.into_parts();
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let path = parts.uri.path();
    let endpoint = Endpoint::of(path, parts.uri.query());
    let parsed = match endpoint {
        _ if parts.method != Method::POST => Parsed::None,
        Endpoint::Chat { deployment } => {
            Parsed::Chat(openai::parse_chat_request(&body, deployment))
        }
        Endpoint::Embeddings { deployment } => {
            Parsed::Embeddings(openai::parse_embeddings_request(&body, deployment))
        }
        Endpoint::Messages => Parsed::Messages(anthropic::parse_messages_request(&body)),
        Endpoint::CountTokens => Parsed::CountTokens(anthropic::parse_count_tokens_request(&body)),
        Endpoint::Gemini { model, action } => {
            Parsed::Gemini(gemini::parse_request(&body, model), action)
        }
        Endpoint::Models | Endpoint::Unknown => Parsed::None,
    };
    state.requests.push(RecordedRequest::new(
        &parts.method,
        path,
        parts.uri.query(),
        &parts.headers,
        body,
        parsed.model().or(endpoint.path_model()),
    ));
    let behavior = match program::resolve(&state.rules, &parts.headers, path, parsed.model()) {
        Ok(behavior) => behavior,
        Err(message) => {
            return endpoint.protocol().error(
                StatusCode::BAD_REQUEST,
                &format!("mock-provider: {message}"),
            )
        }
    };
    if behavior.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(behavior.delay_ms)).await;
    }

    let mut response = answer(state, &behavior, endpoint, &parts.method, path, parsed);
    let headers = response.headers_mut();
    for (name, value) in &behavior.headers {
        headers.insert(name.clone(), value.clone());
    }
    response
}

fn answer(
    state: &State,
    behavior: &Behavior,
    endpoint: Endpoint<'_>,
    method: &Method,
    path: &str,
    parsed: Parsed,
) -> Response<ResponseBody> {
    let protocol = endpoint.protocol();
    if let Some(status) = behavior.status.filter(|s| *s >= 400) {
        let (content_type, body) = error_body(state, protocol, status, behavior.error_format);
        return full_or_truncated(
            status_code(status),
            content_type,
            body,
            behavior.truncation(),
        );
    }
    if endpoint == Endpoint::Models && *method == Method::GET {
        let body = serde_json::json!({"object": "list", "data": [
            {"id": "mock-model", "object": "model", "created": 0, "owned_by": state.name},
        ]});
        return full(
            StatusCode::OK,
            "application/json",
            Bytes::from(body.to_string()),
        );
    }
    if endpoint == Endpoint::Unknown {
        return json_error(
            StatusCode::NOT_FOUND,
            &format!("mock-provider {}: no route for {path}", state.name),
        );
    }
    if method != Method::POST {
        return protocol.error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!(
                "mock-provider {}: {path} accepts POST only, got {method}",
                state.name
            ),
        );
    }
    let status = status_code(behavior.status.unwrap_or(200));
    let omit_usage = behavior.usage == UsageMode::Omit;
    match parsed {
        Parsed::Chat(Ok(request)) => {
            let output = output(state, behavior, &request.model, request.max_tokens);
            let reply = ChatReply::new(
                state.next_completion_id(),
                unix_now(),
                &request,
                output,
                omit_usage,
            );
            if request.stream {
                let events = openai::stream_events(&reply, request.include_usage);
                stream(status, SSE, events, 1, behavior)
            } else {
                let body = openai::completion_json(&reply);
                full_or_truncated(status, "application/json", body, behavior.truncation())
            }
        }
        Parsed::Embeddings(Ok(request)) => {
            let body = openai::embeddings_json(&request, omit_usage);
            full_or_truncated(status, "application/json", body, behavior.truncation())
        }
        Parsed::Messages(Ok(request)) => {
            let output = output(state, behavior, &request.model, Some(request.max_tokens));
            let reply = MessageReply {
                id: state.next_message_id(),
                model: request.model,
                output,
                input_tokens: request.input_tokens,
                omit_usage,
            };
            if request.stream {
                stream(status, SSE, anthropic::stream_events(&reply), 1, behavior)
            } else {
                let body = anthropic::message_json(&reply);
                full_or_truncated(status, "application/json", body, behavior.truncation())
            }
        }
        Parsed::CountTokens(Ok(request)) => {
            let body = anthropic::count_tokens_json(request.input_tokens);
            full_or_truncated(status, "application/json", body, behavior.truncation())
        }
        Parsed::Gemini(Ok(request), action) => {
            let output = output(state, behavior, &request.model, request.max_output_tokens);
            let reply = GenerateReply {
                response_id: state.next_response_id(),
                model: request.model,
                output,
                prompt_tokens: request.prompt_tokens,
                omit_usage,
            };
            match action {
                Action::Generate => {
                    let body = gemini::response_json(&reply);
                    full_or_truncated(status, "application/json", body, behavior.truncation())
                }
                Action::Stream(framing) => {
                    // The terminal events: the last response (finish reason, usage), and in
                    // a JSON array the closing `]` after it.
                    let (content_type, terminal) = match framing {
                        Framing::Sse => (SSE, 1),
                        Framing::JsonArray => ("application/json", 2),
                    };
                    let events = gemini::stream_events(&reply, framing);
                    stream(status, content_type, events, terminal, behavior)
                }
            }
        }
        Parsed::Chat(Err(message))
        | Parsed::Embeddings(Err(message))
        | Parsed::Messages(Err(message))
        | Parsed::CountTokens(Err(message))
        | Parsed::Gemini(Err(message), _) => protocol.error(StatusCode::BAD_REQUEST, &message),
        Parsed::None => json_error(
            StatusCode::NOT_FOUND,
            &format!("mock-provider {}: no route for {path}", state.name),
        ),
    }
}

/// What the reply to a request for `model` says, as programmed.
fn output(state: &State, behavior: &Behavior, model: &str, max_tokens: Option<u64>) -> Output {
    Output::new(
        &state.name,
        model,
        behavior.chunks,
        behavior.tool_call.as_deref(),
        max_tokens,
    )
}

/// `status` was checked to be in 200..=999 when the behaviour was resolved.
fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The body of a programmed error, in the programmed format (JSON: the protocol's envelope).
fn error_body(
    state: &State,
    protocol: Protocol,
    status: u16,
    format: ErrorFormat,
) -> (&'static str, Bytes) {
    let message = format!("mock error {status}");
    match format {
        ErrorFormat::Json => ("application/json", protocol.error_json(status, &message)),
        ErrorFormat::Html => {
            let reason = status_code(status).canonical_reason().unwrap_or("Error");
            let name = html_escape(&state.name);
            let page = format!(
                "<!DOCTYPE html>\n<html><head><title>{status} {reason}</title></head>\
                 <body><h1>{status} {reason}</h1><p>{message}</p>\
                 <hr><p>mock-provider {name}</p></body></html>\n"
            );
            ("text/html; charset=utf-8", Bytes::from(page))
        }
        ErrorFormat::Text => (
            "text/plain; charset=utf-8",
            Bytes::from(format!("{message}\n")),
        ),
        ErrorFormat::Empty => ("text/plain", Bytes::new()),
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A JSON response with an OpenAI error envelope.
pub fn json_error(status: StatusCode, message: &str) -> Response<ResponseBody> {
    let body = openai::error_json(message, openai::error_type(status.as_u16()));
    full(status, "application/json", body)
}

/// A complete response.
pub fn full(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(body).map_err(|never| match never {}).boxed());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A complete response, or, truncated to its first `n` bytes (never all of it, so the client
/// always gets a partial body):
/// - [`Truncation::Cut`]: headers announcing the full length, those bytes, then an aborted
///   connection;
/// - [`Truncation::End`]: a complete response of those bytes (its `content-length` is what is
///   sent), so the HTTP framing is valid and only the content is short.
fn full_or_truncated(
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
    truncation: Option<Truncation>,
) -> Response<ResponseBody> {
    let n = match truncation {
        None => return full(status, content_type, body),
        Some(Truncation::End(n)) => {
            let sent = n.min(body.len().saturating_sub(1));
            return full(status, content_type, body.slice(..sent));
        }
        Some(Truncation::Cut(n)) => n,
    };
    let (tx, channel_body) = ChannelBody::new(2);
    let sent = n.min(body.len().saturating_sub(1));
    let total = body.len();
    if sent > 0 {
        // Capacity is 2 and nothing was sent yet: neither send can fail for lack of room.
        let _ = tx.try_send(Ok(body.slice(..sent)));
    }
    let _ = tx.try_send(Err(cut_error()));
    let mut response = Response::new(channel_body.boxed());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(total));
    response
}

fn cut_error() -> io::Error {
    io::Error::other("mock-provider: response cut on purpose (x-mock-cut-after)")
}

const SSE: &str = "text/event-stream";

/// A streamed response: a spawned task writes each event as its own body frame, waiting the
/// programmed interval between events. When a truncation is programmed it stops early and
/// aborts the connection (cut) or ends the body cleanly (end); the last `terminal` events
/// are the ones that say the reply is complete (`[DONE]`, `message_stop`, Gemini's last
/// response and `]`).
fn stream(
    status: StatusCode,
    content_type: &'static str,
    events: Vec<Bytes>,
    terminal: usize,
    behavior: &Behavior,
) -> Response<ResponseBody> {
    let interval = Duration::from_millis(behavior.chunk_interval_ms);
    // A cut always withholds the last event, whatever the count, so the client never sees a
    // clean end. An end withholds every terminal event, so the body ends cleanly but the
    // stream never says it is complete.
    let (count, truncated, cut) = match behavior.truncation() {
        Some(Truncation::Cut(n)) => (n.min(events.len().saturating_sub(1)), true, true),
        Some(Truncation::End(n)) => (n.min(events.len().saturating_sub(terminal)), true, false),
        None => (events.len(), false, false),
    };
    let (tx, body) = ChannelBody::new(16);
    tokio::spawn(async move {
        for (i, event) in events.into_iter().take(count).enumerate() {
            if i > 0 && !interval.is_zero() {
                tokio::time::sleep(interval).await;
            }
            if tx.send(Ok(event)).await.is_err() {
                return; // the client went away
            }
        }
        if truncated && count > 0 && !interval.is_zero() {
            tokio::time::sleep(interval).await;
        }
        if cut {
            let _ = tx.send(Err(cut_error())).await;
        }
        // Otherwise dropping the sender ends the body: the terminating chunk on HTTP/1.1,
        // END_STREAM on h2c.
    });
    let mut response = Response::new(body.boxed());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// A response body fed through a channel. An error item aborts the response (hyper closes
/// the HTTP/1 connection without the terminating chunk, or resets the HTTP/2 stream); it is
/// held back for one poll so the data frames before it are flushed to the socket first.
pub struct ChannelBody {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    held_error: Option<io::Error>,
}

impl ChannelBody {
    fn new(capacity: usize) -> (mpsc::Sender<io::Result<Bytes>>, Self) {
        let (tx, rx) = mpsc::channel(capacity);
        (
            tx,
            Self {
                rx,
                held_error: None,
            },
        )
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if let Some(error) = this.held_error.take() {
            return Poll::Ready(Some(Err(error)));
        }
        match this.rx.poll_recv(cx) {
            Poll::Ready(Some(Ok(data))) => Poll::Ready(Some(Ok(Frame::data(data)))),
            Poll::Ready(Some(Err(error))) => {
                this.held_error = Some(error);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The whole request body, chunked or not, up to [`MAX_BODY_BYTES`].
pub async fn read_body(body: Incoming) -> Result<Bytes, Response<ResponseBody>> {
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("mock-provider: request body larger than {MAX_BODY_BYTES} bytes"),
        )),
        Err(error) => Err(json_error(
            StatusCode::BAD_REQUEST,
            &format!("mock-provider: could not read the request body: {error}"),
        )),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn channel_body_holds_an_error_back_for_one_poll() {
        let (tx, mut body) = ChannelBody::new(4);
        tx.send(Ok(Bytes::from_static(b"a"))).await.unwrap();
        tx.send(Err(cut_error())).await.unwrap();
        drop(tx);
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "a");
        assert!(body.frame().await.unwrap().is_err());
    }

    #[test]
    fn endpoints_match_on_the_path_suffix() {
        let chat = Endpoint::Chat { deployment: None };
        assert_eq!(Endpoint::of("/v1/chat/completions", None), chat);
        assert_eq!(
            Endpoint::of("/compatible-mode/v1/chat/completions", None),
            chat
        );
        assert_eq!(Endpoint::of("/chat/completions", None), chat);
        assert_eq!(
            Endpoint::of("/api/v1/embeddings", None),
            Endpoint::Embeddings { deployment: None }
        );
        assert_eq!(
            Endpoint::of("/openai/deployments/d1/chat/completions", None),
            Endpoint::Chat {
                deployment: Some("d1")
            }
        );
        assert_eq!(
            Endpoint::of("/openai/deployments/e1/embeddings", None),
            Endpoint::Embeddings {
                deployment: Some("e1")
            }
        );
        assert_eq!(Endpoint::of("/v1/messages", None), Endpoint::Messages);
        assert_eq!(
            Endpoint::of("/anthropic/v1/messages", None),
            Endpoint::Messages
        );
        assert_eq!(
            Endpoint::of("/v1/messages/count_tokens", None),
            Endpoint::CountTokens
        );
        assert_eq!(
            Endpoint::of("/v1/messages/batches", None),
            Endpoint::Unknown
        );
        assert_eq!(
            Endpoint::of(
                "/v1beta/models/gemini-2.0-flash:streamGenerateContent",
                Some("alt=sse")
            ),
            Endpoint::Gemini {
                model: "gemini-2.0-flash",
                action: Action::Stream(Framing::Sse)
            }
        );
        assert_eq!(Endpoint::of("/v1/completions", None), Endpoint::Unknown);
        assert_eq!(
            Endpoint::of("/v1/chat/completions/x", None),
            Endpoint::Unknown
        );
    }
}
