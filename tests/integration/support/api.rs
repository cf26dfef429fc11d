//! A scripted stand-in for the Anthropic Messages API, good enough for the real Claude Code CLI
//! (`ANTHROPIC_BASE_URL=<Api::url>`): tokio on 127.0.0.1, port 0, HTTP/1.1 with keep-alive.
//!
//! What the CLI calls (observed with 2.1.197 and 2.1.332, telemetry off through
//! `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`, see [`claude_env`]): `HEAD /` once as a
//! connectivity probe, then `POST /v1/messages?beta=true` with `"stream": true` for every turn
//! of the main loop (its `tools` include `Bash`), each carrying the whole conversation so far
//! and the `X-Claude-Code-Session-Id` header. Side requests (no `Bash` tool: title generation
//! and the like, not seen in `-p` runs so far) and `count_tokens` are answered too, and
//! recorded, so a CLI that starts making them still works and a test can see it.
//!
//! Main-loop requests are answered, in order, by the replies queued with [`Api::push`], then by
//! the responder given to [`Api::start`] (usually [`worker_turns`]: one Bash tool call, then a
//! final text). Every request is recorded ([`Api::requests`]) with the reply it got.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What kind of request the stand-in saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `POST /v1/messages` offering the `Bash` tool: a turn of the agent's main loop.
    Main,
    /// `POST /v1/messages` without it (title generation, summaries…).
    Side,
    /// `POST /v1/messages/count_tokens`.
    CountTokens,
    /// `HEAD /` or `GET /`: the CLI's connectivity probe.
    Probe,
    /// Anything else (answered 404).
    Other,
}

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent (`/v1/messages?beta=true`).
    pub path: String,
    /// Header names in lower case, in the order sent.
    pub headers: Vec<(String, String)>,
    /// The JSON body (`Null` when empty or not JSON).
    pub body: Value,
    pub kind: Kind,
    /// The reply it got, described ([`Reply::describe`]).
    pub reply: String,
}

impl Request {
    /// A header's value (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `X-Claude-Code-Session-Id` header: the CLI's session id.
    pub fn session_id(&self) -> Option<&str> {
        self.header("x-claude-code-session-id")
    }

    /// The conversation sent (`messages`).
    pub fn messages(&self) -> &[Value] {
        self.body
            .get("messages")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// True if the last message carries a `tool_result`: the agent reports a tool's output.
    pub fn answers_a_tool_call(&self) -> bool {
        self.messages()
            .last()
            .and_then(|m| m.get("content"))
            .and_then(Value::as_array)
            .is_some_and(|blocks| blocks.iter().any(|b| b["type"] == "tool_result"))
    }

    /// Every text in the conversation (text blocks, tool inputs and tool results), one per
    /// line, to check what history a request carried.
    pub fn transcript(&self) -> String {
        let mut out = String::new();
        for m in self.messages() {
            collect_text(&m["content"], &mut out);
        }
        out
    }
}

fn collect_text(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Value::Array(items) => items.iter().for_each(|i| collect_text(i, out)),
        Value::Object(o) => {
            for key in ["text", "content", "input"] {
                if let Some(inner) = o.get(key) {
                    collect_text(inner, out);
                }
            }
            if let Some(cmd) = o.get("command") {
                collect_text(cmd, out);
            }
        }
        _ => {}
    }
}

/// How the stand-in answers one request.
#[derive(Debug, Clone)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
}

#[derive(Debug, Clone)]
enum Body {
    /// An assistant turn: text, then an optional Bash tool call.
    Turn { text: String, bash: Option<String> },
    /// An API error (`{"type":"error","error":{…}}`).
    Error { kind: String, message: String },
}

impl Reply {
    /// A turn that says a sentence and asks for one Bash tool call running `command`.
    pub fn bash(command: impl Into<String>) -> Self {
        Self::turn("Running the command.", Some(command.into()))
    }

    /// A final text turn (`stop_reason: end_turn`).
    pub fn text(text: impl Into<String>) -> Self {
        Self::turn(&text.into(), None)
    }

    fn turn(text: &str, bash: Option<String>) -> Self {
        Self {
            status: 200,
            headers: Vec::new(),
            body: Body::Turn {
                text: text.to_string(),
                bash,
            },
        }
    }

    fn error(status: u16, kind: &str, message: &str) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Body::Error {
                kind: kind.into(),
                message: message.into(),
            },
        }
    }

    /// HTTP 429 with the unified rate-limit headers of a subscription's usage limit:
    /// `rejected`, resetting at `reset` (unix seconds), for `claim` (`five_hour`, `seven_day`…).
    pub fn usage_limit(reset: u64, claim: &str) -> Self {
        Self::error(429, "rate_limit_error", "Usage limit reached (stand-in)")
            .unified("rejected", reset, claim)
            .header("anthropic-ratelimit-unified-overage-status", "rejected")
            .header(
                "anthropic-ratelimit-unified-overage-disabled-reason",
                "org_level_disabled",
            )
    }

    /// HTTP 429 without unified headers (an API key's rate limit).
    pub fn rate_limited() -> Self {
        Self::error(429, "rate_limit_error", "Rate limited (stand-in)")
    }

    /// HTTP 529 `overloaded_error`.
    pub fn overloaded() -> Self {
        Self::error(529, "overloaded_error", "Overloaded (stand-in)")
    }

    /// HTTP 500 `api_error`.
    pub fn server_error() -> Self {
        Self::error(500, "api_error", "Internal server error (stand-in)")
    }

    /// Adds a response header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// Adds the three unified rate-limit headers every limit reply carries.
    pub fn unified(self, status: &str, reset: u64, claim: &str) -> Self {
        self.header("anthropic-ratelimit-unified-status", status)
            .header("anthropic-ratelimit-unified-reset", reset.to_string())
            .header("anthropic-ratelimit-unified-representative-claim", claim)
    }

    /// A short description, recorded with the request.
    pub fn describe(&self) -> String {
        match &self.body {
            Body::Turn { bash: Some(c), .. } => format!("{} bash: {c}", self.status),
            Body::Turn { text, .. } => format!("{} text: {text}", self.status),
            Body::Error { kind, .. } => format!("{} {kind}", self.status),
        }
    }
}

/// Decides the reply to a main-loop request that no queued reply answers.
pub type Responder = Box<dyn FnMut(&Request) -> Reply + Send>;

/// The usual agent: a request that reports a tool's result gets the final text `Done.`; any
/// other (the first turn, or a resumed session's new prompt) gets one Bash call of `command`.
pub fn worker_turns(command: impl Into<String>) -> impl FnMut(&Request) -> Reply + Send + 'static {
    let command = command.into();
    move |req: &Request| {
        if req.answers_a_tool_call() {
            Reply::text("Done.")
        } else {
            Reply::bash(command.clone())
        }
    }
}

/// Unix seconds `secs` from now.
pub fn unix_in(secs: u64) -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
        + secs
}

struct State {
    requests: Vec<Request>,
    queue: VecDeque<Reply>,
    responder: Responder,
    next_id: u64,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

/// The running stand-in. Dropping it stops the server.
pub struct Api {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _runtime: tokio::runtime::Runtime,
}

impl Api {
    /// Starts the stand-in on 127.0.0.1, a free port, answering main-loop requests with
    /// `responder` (after any replies queued with [`Api::push`]).
    pub fn start(responder: impl FnMut(&Request) -> Reply + Send + 'static) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime for the API stand-in");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind the API stand-in to 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                requests: Vec::new(),
                queue: VecDeque::new(),
                responder: Box::new(responder),
                next_id: 0,
            }),
            changed: Condvar::new(),
        });
        let serving = shared.clone();
        runtime.spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, serving.clone()));
            }
        });
        Self {
            addr,
            shared,
            _runtime: runtime,
        }
    }

    /// `http://127.0.0.1:<port>`, for `ANTHROPIC_BASE_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues a reply for the next main-loop request, ahead of the responder.
    pub fn push(&self, reply: Reply) -> &Self {
        self.shared.state.lock().unwrap().queue.push_back(reply);
        self
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.state.lock().unwrap().requests.clone()
    }

    /// The main-loop requests so far.
    pub fn main_requests(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.kind == Kind::Main)
            .collect()
    }

    /// How many requests of `kind` arrived.
    pub fn count(&self, kind: Kind) -> usize {
        self.shared
            .state
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|r| r.kind == kind)
            .count()
    }

    /// Waits (without polling) until the recorded requests satisfy `cond`, or panics after
    /// `timeout` with `what` and the requests seen.
    pub fn wait_for(&self, what: &str, timeout: Duration, cond: impl Fn(&[Request]) -> bool) {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.state.lock().unwrap();
        while !cond(&state.requests) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out after {timeout:?} waiting for {what}; requests: {:#?}",
                state
                    .requests
                    .iter()
                    .map(|r| (&r.method, &r.path, &r.reply))
                    .collect::<Vec<_>>()
            );
            state = self.shared.changed.wait_timeout(state, left).unwrap().0;
        }
    }
}

/// The environment that points the real CLI at `api` and keeps it off the network: telemetry,
/// error reporting and update checks off (`CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`; without
/// it the CLI makes DNS look-ups for other hosts), `IS_SANDBOX=1` so that
/// `--dangerously-skip-permissions` is accepted as root. Authentication is the caller's: a fake
/// `ANTHROPIC_API_KEY`, or a fake `CLAUDE_CODE_OAUTH_TOKEN` for a subscription.
pub fn claude_env(api: &Api) -> Vec<(&'static str, String)> {
    vec![
        ("ANTHROPIC_BASE_URL", api.url()),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".into()),
        ("IS_SANDBOX", "1".into()),
    ]
}

/// The real CLI named by `ORCHESTRATE_TEST_CLAUDE`, or `None` after printing why the calling
/// test is skipped (`.ci/run` installs the CLI with npm where it can). Printed straight to
/// stderr, past the test harness's capture, so the reason shows in every run.
pub fn real_claude(test: &str) -> Option<std::path::PathBuf> {
    use std::io::Write;
    if let Some(path) = std::env::var_os("ORCHESTRATE_TEST_CLAUDE").filter(|v| !v.is_empty()) {
        return Some(path.into());
    }
    let _ = writeln!(
        std::io::stderr(),
        "skipped {test}: ORCHESTRATE_TEST_CLAUDE is not set (the path of a `claude` CLI; \
         .ci/run installs one with npm)"
    );
    None
}

async fn serve(socket: TcpStream, shared: Arc<Shared>) {
    let mut reader = BufReader::new(socket);
    // One request after another on the connection (the CLI keeps it alive).
    while let Some(request) = read_request(&mut reader).await {
        let (response, keep) = respond(request, &shared);
        let socket = reader.get_mut();
        if socket.write_all(&response).await.is_err() || !keep {
            return;
        }
    }
}

/// Reads one request: head, then a `Content-Length` or chunked body. `None` at end of stream
/// or on a request that cannot be read.
async fn read_request(reader: &mut BufReader<TcpStream>) -> Option<RawRequest> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let text = line.trim_end();
        if text.is_empty() {
            break;
        }
        let (name, value) = text.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let body = if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        read_chunked(reader).await?
    } else {
        let len: usize = find("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        reader.read_exact(&mut body).await.ok()?;
        body
    };
    let close = find("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
    Some(RawRequest {
        method,
        path,
        headers,
        body,
        close,
    })
}

async fn read_chunked(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line).await.ok()?;
        let size = usize::from_str_radix(line.trim().split(';').next()?, 16).ok()?;
        if size == 0 {
            // Trailers, then the blank line.
            loop {
                line.clear();
                if reader.read_line(&mut line).await.ok()? == 0 || line.trim().is_empty() {
                    return Some(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..]).await.ok()?;
        line.clear();
        reader.read_line(&mut line).await.ok()?;
    }
}

struct RawRequest {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    close: bool,
}

/// Records the request, decides the reply, and encodes it; also says whether to keep the
/// connection open.
fn respond(raw: RawRequest, shared: &Shared) -> (Vec<u8>, bool) {
    let body: Value = serde_json::from_slice(&raw.body).unwrap_or(Value::Null);
    let route = raw.path.split('?').next().unwrap_or_default().to_string();
    let kind = match (raw.method.as_str(), route.as_str()) {
        ("HEAD" | "GET", "/") => Kind::Probe,
        ("POST", "/v1/messages/count_tokens") => Kind::CountTokens,
        ("POST", "/v1/messages") => {
            let offers_bash = body["tools"]
                .as_array()
                .is_some_and(|tools| tools.iter().any(|t| t["name"] == "Bash"));
            if offers_bash { Kind::Main } else { Kind::Side }
        }
        _ => Kind::Other,
    };
    let mut request = Request {
        method: raw.method,
        path: raw.path,
        headers: raw.headers,
        body,
        kind,
        reply: String::new(),
    };
    let mut state = shared.state.lock().unwrap();
    state.next_id += 1;
    let id = state.next_id;
    let (bytes, described) = match kind {
        Kind::Probe => (http(200, "text/plain", &[], b""), "200 probe".to_string()),
        Kind::CountTokens => (
            http(200, "application/json", &[], br#"{"input_tokens":100}"#),
            "200 count_tokens".to_string(),
        ),
        Kind::Other => (
            http(
                404,
                "application/json",
                &[],
                br#"{"type":"error","error":{"type":"not_found_error","message":"not in the stand-in"}}"#,
            ),
            "404".to_string(),
        ),
        Kind::Main | Kind::Side => {
            let reply = match kind {
                Kind::Main => match state.queue.pop_front() {
                    Some(r) => r,
                    None => (state.responder)(&request),
                },
                _ => Reply::text("Stand-in title"),
            };
            (encode(&reply, &request.body, id), reply.describe())
        }
    };
    request.reply = described;
    state.requests.push(request);
    shared.changed.notify_all();
    (bytes, !raw.close)
}

fn encode(reply: &Reply, req: &Value, id: u64) -> Vec<u8> {
    let headers: Vec<(&str, &str)> = reply
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    match &reply.body {
        Body::Error { kind, message } => {
            let body = json!({"type": "error", "error": {"type": kind, "message": message}});
            http(
                reply.status,
                "application/json",
                &headers,
                body.to_string().as_bytes(),
            )
        }
        Body::Turn { text, bash } => {
            // Echo the model asked for, so the CLI prices the turn as it would a real one.
            let model = req["model"].as_str().unwrap_or("claude-sonnet-4-5");
            let mut blocks = vec![json!({"type": "text", "text": text})];
            if let Some(command) = bash {
                blocks.push(json!({
                    "type": "tool_use",
                    "id": format!("toolu_standin_{id}"),
                    "name": "Bash",
                    "input": {"command": command, "description": "Run the test's command"},
                }));
            }
            let stop = if bash.is_some() {
                "tool_use"
            } else {
                "end_turn"
            };
            if req["stream"] == true {
                let sse = sse_turn(id, model, &blocks, stop);
                http(reply.status, "text/event-stream", &headers, sse.as_bytes())
            } else {
                let body = json!({
                    "id": format!("msg_standin_{id}"), "type": "message", "role": "assistant",
                    "model": model, "content": blocks, "stop_reason": stop,
                    "stop_sequence": null, "usage": {"input_tokens": 100, "output_tokens": 20},
                });
                http(
                    reply.status,
                    "application/json",
                    &headers,
                    body.to_string().as_bytes(),
                )
            }
        }
    }
}

/// The server-sent events of one streamed assistant message.
fn sse_turn(id: u64, model: &str, blocks: &[Value], stop: &str) -> String {
    let mut events = vec![json!({
        "type": "message_start",
        "message": {
            "id": format!("msg_standin_{id}"), "type": "message", "role": "assistant",
            "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 100, "output_tokens": 1,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
        },
    })];
    for (index, block) in blocks.iter().enumerate() {
        let (start, delta) = if block["type"] == "tool_use" {
            let mut start = block.clone();
            start["input"] = json!({});
            let partial = block["input"].to_string();
            (
                start,
                json!({"type": "input_json_delta", "partial_json": partial}),
            )
        } else {
            (
                json!({"type": "text", "text": ""}),
                json!({"type": "text_delta", "text": block["text"]}),
            )
        };
        events.push(json!({"type": "content_block_start", "index": index, "content_block": start}));
        events.push(json!({"type": "content_block_delta", "index": index, "delta": delta}));
        events.push(json!({"type": "content_block_stop", "index": index}));
    }
    events.push(json!({
        "type": "message_delta",
        "delta": {"stop_reason": stop, "stop_sequence": null},
        "usage": {"output_tokens": 20},
    }));
    events.push(json!({"type": "message_stop"}));
    events
        .iter()
        .map(|e| format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap_or("")))
        .collect()
}

fn http(status: u16, content_type: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        529 => "Overloaded",
        _ => "Status",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
         request-id: req_standin\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}
