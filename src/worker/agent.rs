//! Reading an agent's `stream-json` output as it comes: typed facts about its session, its
//! spending, the API's limits and how it ended. See `CLAUDE-CLI.md` and `CLAUDE-CLI-LIMITS.md`
//! in the shared notes for the lines this reads, observed with Claude Code 2.1.197 and 2.1.332.
//!
//! [`Transcript`] takes bytes in any chunks (a pipe, a log file read as it grows) and keeps the
//! facts that decide what to do with a worker: its session id, the last `api_retry`, the last
//! `rate_limit_event` that rejected or warned, and the final `result`; [`Transcript::outcome`]
//! turns them into one [`Outcome`]. [`Transcript::line`] reads one line into a [`Fact`] for a
//! caller that reacts to each.
//!
//! Cheap by construction: the lines that make up nearly all the output (`assistant` and `user`
//! messages, tool results, partial-message events) are recognised by their first bytes and
//! skipped without parsing, even when they arrive in pieces, and never buffered. Only `system`,
//! `rate_limit_event` and `result` lines (a handful per session) are parsed, into a
//! `serde_json::Value`, so a field of an unexpected type costs that field, never the line.
//! Invariants: memory is bounded ([`MAX_LINE`]); any byte sequence is accepted; what a line
//! does not say stays `None`, it is never guessed.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::value::RawValue;

/// Lines longer than this that must be parsed are dropped (a hostile or broken agent must not
/// make us buffer without end). Real `result` and `init` lines are a few KiB.
pub const MAX_LINE: usize = 4 << 20;

/// One fact from one line of output.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    /// `system`/`init`: the session started (or resumed).
    Started(Start),
    /// `system`/`api_retry`: the agent is waiting to retry an API request.
    Retrying(Retry),
    /// `rate_limit_event`: the subscription's limits changed.
    RateLimit(RateLimit),
    /// `result`: the run ended.
    Finished(Finish),
}

/// What `init` says.
#[derive(Debug, Clone, PartialEq)]
pub struct Start {
    pub session_id: Option<String>,
    pub model: Option<String>,
    /// `claude_code_version`, e.g. `2.1.197`.
    pub version: Option<String>,
}

/// One `api_retry` line.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    /// Which retry this is (from 1).
    pub attempt: u32,
    pub max_retries: Option<u32>,
    /// How long the agent waits before it.
    pub delay: Option<Duration>,
    /// The HTTP status that caused it (429, 529, 500…), if any (none for a refused connection).
    pub error_status: Option<u16>,
    /// The CLI's name for the error: `rate_limit`, `overloaded`, `server_error`…
    pub error: Option<String>,
}

/// The state of the subscription's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitStatus {
    Allowed,
    /// Allowed, but past a threshold of the window (`utilization` says how far).
    AllowedWarning,
    /// Refused until the reset.
    Rejected,
    /// A status this version does not know.
    Other,
}

/// Which window a limit is about (`rateLimitType`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitType {
    FiveHour,
    SevenDay,
    SevenDayOpus,
    SevenDaySonnet,
    SevenDayOverageIncluded,
    Overage,
    Other(String),
}

impl LimitType {
    fn parse(s: &str) -> Self {
        match s {
            "five_hour" => Self::FiveHour,
            "seven_day" => Self::SevenDay,
            "seven_day_opus" => Self::SevenDayOpus,
            "seven_day_sonnet" => Self::SevenDaySonnet,
            "seven_day_overage_included" => Self::SevenDayOverageIncluded,
            "overage" => Self::Overage,
            other => Self::Other(other.to_string()),
        }
    }

    /// The name the CLI uses (`five_hour`…), for people and JSON.
    pub fn as_str(&self) -> &str {
        match self {
            Self::FiveHour => "five_hour",
            Self::SevenDay => "seven_day",
            Self::SevenDayOpus => "seven_day_opus",
            Self::SevenDaySonnet => "seven_day_sonnet",
            Self::SevenDayOverageIncluded => "seven_day_overage_included",
            Self::Overage => "overage",
            Self::Other(s) => s,
        }
    }
}

/// One `rate_limit_event` (subscriptions only; API-key runs print none).
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimit {
    pub status: LimitStatus,
    /// When the window resets (`resetsAt`, unix seconds in the line).
    pub resets_at: Option<SystemTime>,
    pub limit_type: Option<LimitType>,
    /// How much of the window is used (1.0 = all), when the API said.
    pub utilization: Option<f64>,
}

/// What one `result` line reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Finish {
    pub session_id: Option<String>,
    /// How the run ended, from this line alone (a usage limit has no reset time here: see
    /// [`Transcript::outcome`]).
    pub outcome: Outcome,
    pub usage: Usage,
}

/// Spending and size of one run, as its `result` line reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// `total_cost_usd`: per process up to 2.1.197, cumulative over the resumes of a session
    /// from 2.1.331 on (see [`CostBasis`]).
    pub cost_usd: Option<f64>,
    pub turns: Option<u32>,
    pub duration: Option<Duration>,
    /// Tokens of this process's main-loop requests (`usage`; never cumulative).
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
}

/// How a worker's run of the agent ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `is_error: false`, with the agent's final text.
    Success { text: Option<String> },
    /// The API refused on a usage or rate limit (HTTP 429, `usage_limit_reached`): park, don't
    /// count a failure. `resets_at` and `limit_type` come from the last rejecting
    /// `rate_limit_event` (subscriptions); with an API key there are none: back off.
    UsageLimit {
        resets_at: Option<SystemTime>,
        limit_type: Option<LimitType>,
        message: String,
    },
    /// The API was overloaded or failed (HTTP 529, 500, other 5xx) after the agent's own
    /// retries: try again later.
    Transient { status: u16, message: String },
    /// `error_max_budget_usd`: the `--max-budget-usd` cap was reached. Not worth a retry.
    BudgetExceeded { message: String },
    /// `--resume` of a session this HOME and directory do not have (`No conversation found`):
    /// start a fresh session instead.
    SessionNotFound { message: String },
    /// Any other error result (`is_error: true`): the message to show.
    Failed {
        message: String,
        api_status: Option<u16>,
    },
    /// No `result` line: the agent was killed, crashed, refused its arguments (stderr only), or
    /// is not a stream-json agent at all. Judge by the exit status.
    NoResult,
}

impl Outcome {
    /// The agent's text or error message, if the outcome has one.
    pub fn message(&self) -> Option<&str> {
        match self {
            Self::Success { text } => text.as_deref(),
            Self::UsageLimit { message, .. }
            | Self::Transient { message, .. }
            | Self::BudgetExceeded { message }
            | Self::SessionNotFound { message }
            | Self::Failed { message, .. } => Some(message),
            Self::NoResult => None,
        }
    }

    /// True for every outcome but success (and no result, which only the exit status judges).
    pub fn is_error(&self) -> bool {
        !matches!(self, Self::Success { .. } | Self::NoResult)
    }
}

/// Whether an agent's `total_cost_usd` counts one process or the whole session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CostBasis {
    /// Each run reports its own spending: a session's cost is the sum of its runs.
    PerProcess,
    /// Each run reports the session's spending so far: keep the last figure of a session.
    Cumulative,
}

/// The first version seen reporting cost cumulatively over resumes. 2.1.197 did not; versions
/// between were not tried, and are counted per process: over-counting stops a budget early,
/// under-counting would overspend it.
const FIRST_CUMULATIVE: [u32; 3] = [2, 1, 331];

impl CostBasis {
    /// The basis of the Claude Code `version` (from `init`); per process when unknown.
    pub fn of_version(version: Option<&str>) -> Self {
        let parsed: Option<Vec<u32>> =
            version.and_then(|v| v.split('.').map(|p| p.trim().parse().ok()).collect());
        match parsed {
            Some(v) if v.as_slice() >= FIRST_CUMULATIVE.as_slice() => Self::Cumulative,
            _ => Self::PerProcess,
        }
    }
}

/// What one attempt spent, for [`total_cost`].
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptCost {
    pub session_id: Option<String>,
    pub cost_usd: f64,
    pub basis: CostBasis,
}

/// The spending of several attempts (in order): per session, the last figure of a cumulative
/// session and the sum of a per-process one; attempts with no session each count once.
pub fn total_cost(attempts: &[AttemptCost]) -> f64 {
    let mut total = 0.0;
    for (i, a) in attempts.iter().enumerate() {
        let superseded = a.basis == CostBasis::Cumulative
            && a.session_id.is_some()
            && attempts[i + 1..]
                .iter()
                .any(|later| later.session_id == a.session_id && later.basis == a.basis);
        if !superseded {
            total += a.cost_usd;
        }
    }
    total
}

/// The facts of one run of an agent, fed its output as it comes.
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    /// The unfinished last line, when it must be parsed.
    pending: Vec<u8>,
    /// The unfinished last line is one to skip: drop bytes up to the next newline.
    skipping: bool,
    start: Option<Start>,
    session_id: Option<String>,
    last_retry: Option<Retry>,
    rejection: Option<RateLimit>,
    warning: Option<RateLimit>,
    finish: Option<Finish>,
}

/// How the first bytes of a line classify it.
enum Head {
    /// Parse it (a type we read, or one whose type is not where we expect it).
    Parse,
    /// A type we don't read, or not JSON at all.
    Skip,
    /// Too short to tell yet.
    Unknown,
}

const TYPE_PREFIX: &[u8] = br#"{"type":""#;
/// The types read. Everything else with the usual prefix is skipped.
const READ_TYPES: [&[u8]; 3] = [b"system", b"rate_limit_event", b"result"];

fn head(line: &[u8]) -> Head {
    let line = line.trim_ascii_start();
    match line.first() {
        None => return Head::Unknown,
        Some(b'{') => {}
        Some(_) => return Head::Skip,
    }
    let n = line.len().min(TYPE_PREFIX.len());
    if line[..n] != TYPE_PREFIX[..n] {
        // JSON, but not in the CLI's usual key order (2.1.332 starts its `result` lines with
        // `duration_api_ms`): read it the slow way.
        return Head::Parse;
    }
    if n < TYPE_PREFIX.len() {
        return Head::Unknown;
    }
    let rest = &line[TYPE_PREFIX.len()..];
    let end = memchr::memchr(b'"', rest);
    let name = &rest[..end.unwrap_or(rest.len())];
    if name.contains(&b'\\') {
        // An escaped type name: only a full parse can tell what it says.
        return Head::Parse;
    }
    match end {
        Some(_) if READ_TYPES.contains(&name) => Head::Parse,
        Some(_) => Head::Skip,
        // The name goes on in the next piece: wait while it may still become one we read.
        None if READ_TYPES.iter().any(|t| t.starts_with(name)) => Head::Unknown,
        None => Head::Skip,
    }
}

impl Transcript {
    /// Reads `bytes`, the next part of the output; a line may span calls.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let newline = memchr::memchr(b'\n', bytes);
            let (part, rest, complete) = match newline {
                Some(i) => (&bytes[..i], &bytes[i + 1..], true),
                None => (bytes, &[][..], false),
            };
            bytes = rest;
            if self.skipping {
                self.skipping = !complete;
                continue;
            }
            if self.pending.is_empty() {
                if complete {
                    self.line(part);
                    continue;
                }
                if let Head::Skip = head(part) {
                    self.skipping = true;
                    continue;
                }
            }
            if self.pending.len() + part.len() > MAX_LINE {
                self.pending.clear();
                self.skipping = !complete;
                continue;
            }
            self.pending.extend_from_slice(part);
            match (complete, head(&self.pending)) {
                (true, _) => {
                    let line = std::mem::take(&mut self.pending);
                    self.line(&line);
                    // Keep the allocation for the next long line.
                    self.pending = line;
                    self.pending.clear();
                }
                (false, Head::Skip) => {
                    self.pending.clear();
                    self.skipping = true;
                }
                (false, _) => {}
            }
        }
    }

    /// Reads what is left of an unterminated last line (call when the output ended).
    pub fn finish(&mut self) {
        if !self.skipping && !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.line(&line);
        }
        self.pending.clear();
        self.skipping = false;
    }

    /// Reads one complete line (without its newline), records what it says, and returns it.
    pub fn line(&mut self, line: &[u8]) -> Option<Fact> {
        let fact = parse_line(line)?;
        match &fact {
            Fact::Started(s) => {
                if s.session_id.is_some() {
                    self.session_id.clone_from(&s.session_id);
                }
                self.start = Some(s.clone());
            }
            Fact::Retrying(r) => self.last_retry = Some(r.clone()),
            Fact::RateLimit(r) => match r.status {
                LimitStatus::Rejected => self.rejection = Some(r.clone()),
                LimitStatus::AllowedWarning => self.warning = Some(r.clone()),
                // A later `allowed` means the window reset: the warning no longer holds.
                LimitStatus::Allowed => self.warning = None,
                LimitStatus::Other => {}
            },
            Fact::Finished(f) => {
                if f.session_id.is_some() {
                    self.session_id.clone_from(&f.session_id);
                }
                self.finish = Some(f.clone());
            }
        }
        Some(fact)
    }

    /// The session id, from `init` or `result` (the later wins; they agree in every run seen).
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// What `init` said.
    pub fn start(&self) -> Option<&Start> {
        self.start.as_ref()
    }

    /// The last `api_retry`: what the agent is waiting on now, if it has not finished.
    pub fn last_retry(&self) -> Option<&Retry> {
        self.last_retry.as_ref()
    }

    /// The last `rate_limit_event` that rejected.
    pub fn rejection(&self) -> Option<&RateLimit> {
        self.rejection.as_ref()
    }

    /// The last `allowed_warning`, unless a later event said `allowed`.
    pub fn warning(&self) -> Option<&RateLimit> {
        self.warning.as_ref()
    }

    /// The last `result`.
    pub fn finished(&self) -> Option<&Finish> {
        self.finish.as_ref()
    }

    /// The spending of this run, if it reported any, with the basis its version implies.
    pub fn cost(&self) -> Option<AttemptCost> {
        let cost_usd = self.finish.as_ref()?.usage.cost_usd?;
        Some(AttemptCost {
            session_id: self.session_id.clone(),
            cost_usd,
            basis: CostBasis::of_version(self.start.as_ref().and_then(|s| s.version.as_deref())),
        })
    }

    /// How the run ended: the last `result`, with a usage limit's reset time taken from the
    /// last rejecting `rate_limit_event`; without a result, a rejection seen is still a usage
    /// limit (the agent was stopped while it waited).
    pub fn outcome(&self) -> Outcome {
        let from_event = |message: String| {
            let r = self.rejection.as_ref();
            Outcome::UsageLimit {
                resets_at: r.and_then(|r| r.resets_at),
                limit_type: r.and_then(|r| r.limit_type.clone()),
                message,
            }
        };
        match (&self.finish, &self.rejection) {
            (
                Some(Finish {
                    outcome: Outcome::UsageLimit { message, .. },
                    ..
                }),
                _,
            ) => from_event(message.clone()),
            (Some(f), _) => f.outcome.clone(),
            (None, Some(_)) => from_event("the usage limit was reached".into()),
            (None, None) => Outcome::NoResult,
        }
    }
}

/// The fields read from a line, each kept as its raw JSON text and decoded on its own, so a
/// field of an unexpected type costs that field, never the line; every other field (the tool
/// lists of `init`, `modelUsage`…) is skipped without being built.
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<&'a RawValue>,
    #[serde(borrow, default)]
    subtype: Option<&'a RawValue>,
    #[serde(borrow, default)]
    session_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    model: Option<&'a RawValue>,
    #[serde(borrow, default)]
    claude_code_version: Option<&'a RawValue>,
    #[serde(borrow, default)]
    attempt: Option<&'a RawValue>,
    #[serde(borrow, default)]
    max_retries: Option<&'a RawValue>,
    #[serde(borrow, default)]
    retry_delay_ms: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error_status: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
    #[serde(borrow, default)]
    rate_limit_info: Option<&'a RawValue>,
    #[serde(borrow, default)]
    is_error: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    errors: Option<&'a RawValue>,
    #[serde(borrow, default)]
    api_error_status: Option<&'a RawValue>,
    #[serde(borrow, default)]
    api_error: Option<&'a RawValue>,
    #[serde(borrow, default)]
    api_error_type: Option<&'a RawValue>,
    #[serde(borrow, default)]
    total_cost_usd: Option<&'a RawValue>,
    #[serde(borrow, default)]
    num_turns: Option<&'a RawValue>,
    #[serde(borrow, default)]
    duration_ms: Option<&'a RawValue>,
    #[serde(borrow, default)]
    usage: Option<&'a RawValue>,
}

/// `rate_limit_info`, read the same way.
#[derive(Deserialize)]
struct LimitFields<'a> {
    #[serde(borrow, default)]
    status: Option<&'a RawValue>,
    #[serde(rename = "resetsAt", borrow, default)]
    resets_at: Option<&'a RawValue>,
    #[serde(rename = "rateLimitType", borrow, default)]
    limit_type: Option<&'a RawValue>,
    #[serde(borrow, default)]
    utilization: Option<&'a RawValue>,
}

/// `usage` of a result, read the same way.
#[derive(Deserialize)]
struct TokenFields<'a> {
    #[serde(borrow, default)]
    input_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    output_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    cache_creation_input_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    cache_read_input_tokens: Option<&'a RawValue>,
}

/// One field's value, if it is of type `T`.
fn get<'a, T: Deserialize<'a>>(raw: Option<&'a RawValue>) -> Option<T> {
    serde_json::from_str(raw?.get()).ok()
}

/// A string field, borrowed from the line unless it holds escapes.
fn text<'a>(raw: Option<&'a RawValue>) -> Option<Cow<'a, str>> {
    get::<&str>(raw)
        .map(Cow::Borrowed)
        .or_else(|| get::<String>(raw).map(Cow::Owned))
}

/// A duration in milliseconds: 2.1.197 writes fractions (`"retry_delay_ms":532.79…`).
fn millis(raw: Option<&RawValue>) -> Option<Duration> {
    Duration::try_from_secs_f64(get::<f64>(raw)? / 1000.0).ok()
}

fn parse_line(line: &[u8]) -> Option<Fact> {
    if let Head::Skip = head(line) {
        return None;
    }
    // Duplicate keys fail the line; the CLI never writes them.
    let f: Fields = serde_json::from_slice(line).ok()?;
    match text(f.kind)?.as_ref() {
        "system" => match text(f.subtype)?.as_ref() {
            "init" => Some(Fact::Started(Start {
                session_id: get(f.session_id),
                model: get(f.model),
                version: get(f.claude_code_version),
            })),
            "api_retry" => Some(Fact::Retrying(Retry {
                attempt: get(f.attempt)?,
                max_retries: get(f.max_retries),
                delay: millis(f.retry_delay_ms),
                error_status: get(f.error_status),
                error: get(f.error),
            })),
            _ => None,
        },
        "rate_limit_event" => rate_limit(&get(f.rate_limit_info)?).map(Fact::RateLimit),
        "result" => Some(Fact::Finished(finish(&f))),
        _ => None,
    }
}

fn rate_limit(info: &LimitFields<'_>) -> Option<RateLimit> {
    let status = match text(info.status)?.as_ref() {
        "allowed" => LimitStatus::Allowed,
        "allowed_warning" => LimitStatus::AllowedWarning,
        "rejected" => LimitStatus::Rejected,
        _ => LimitStatus::Other,
    };
    Some(RateLimit {
        status,
        resets_at: get::<f64>(info.resets_at)
            .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
            .and_then(|d| UNIX_EPOCH.checked_add(d)),
        limit_type: text(info.limit_type).map(|t| LimitType::parse(&t)),
        utilization: get::<f64>(info.utilization).filter(|u| u.is_finite()),
    })
}

fn finish(f: &Fields<'_>) -> Finish {
    let tokens: Option<TokenFields> = get(f.usage);
    let count = |pick: for<'t> fn(&TokenFields<'t>) -> Option<&'t RawValue>| {
        tokens
            .as_ref()
            .and_then(|t| get::<u64>(pick(t)))
            .unwrap_or(0)
    };
    Finish {
        session_id: get(f.session_id),
        outcome: classify(f),
        usage: Usage {
            cost_usd: get::<f64>(f.total_cost_usd).filter(|c| c.is_finite() && *c >= 0.0),
            turns: get(f.num_turns),
            duration: millis(f.duration_ms),
            input_tokens: count(|t| t.input_tokens),
            output_tokens: count(|t| t.output_tokens),
            cache_creation_input_tokens: count(|t| t.cache_creation_input_tokens),
            cache_read_input_tokens: count(|t| t.cache_read_input_tokens),
        },
    }
}

/// How a `result` line ended the run. Judged by `is_error`, then by the specific fields: every
/// API error comes as `"subtype":"success","is_error":true`, so the subtype alone says little.
fn classify(f: &Fields<'_>) -> Outcome {
    let message = result_text(f.result, f.errors);
    if get::<bool>(f.is_error) != Some(true) {
        return Outcome::Success { text: message };
    }
    let message = message.unwrap_or_else(|| "the agent reported an error".into());
    let subtype = text(f.subtype);
    let status: Option<u16> = get(f.api_error_status);
    if subtype.as_deref() == Some("error_max_budget_usd") {
        return Outcome::BudgetExceeded { message };
    }
    if subtype.as_deref() == Some("error_during_execution")
        && message.contains("No conversation found")
    {
        return Outcome::SessionNotFound { message };
    }
    if status == Some(429)
        || text(f.api_error).as_deref() == Some("usage_limit_reached")
        || text(f.api_error_type).as_deref() == Some("rate_limit_error")
    {
        return Outcome::UsageLimit {
            resets_at: None,
            limit_type: None,
            message,
        };
    }
    match status {
        Some(status @ 500..=599) => Outcome::Transient { status, message },
        api_status => Outcome::Failed {
            message,
            api_status,
        },
    }
}

/// A result's message: `result`, else the joined `errors`.
fn result_text(result: Option<&RawValue>, errors: Option<&RawValue>) -> Option<String> {
    if let Some(text) = get::<String>(result).filter(|t| !t.is_empty()) {
        return Some(text);
    }
    let errors: Vec<String> = get::<Vec<&RawValue>>(errors)?
        .into_iter()
        .filter_map(|e| get::<String>(Some(e)))
        .collect();
    (!errors.is_empty()).then(|| errors.join("; "))
}

/// A result's message from a parsed line (for the log renderer, which has one).
pub(super) fn result_message(v: &serde_json::Value) -> Option<String> {
    let raw = |key: &str| {
        v.get(key)
            .and_then(|x| serde_json::value::to_raw_value(x).ok())
    };
    result_text(raw("result").as_deref(), raw("errors").as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Output of the real CLI against the tests' API stand-in (regenerated by the ignored test
    /// `claude::capture_transcripts`), for both versions observed.
    macro_rules! fixture {
        ($name:literal) => {
            [
                (
                    "2.1.197",
                    include_str!(concat!(
                        "../../tests/fixtures/claude/2.1.197/",
                        $name,
                        ".jsonl"
                    )),
                ),
                (
                    "2.1.332",
                    include_str!(concat!(
                        "../../tests/fixtures/claude/2.1.332/",
                        $name,
                        ".jsonl"
                    )),
                ),
            ]
        };
    }

    fn read(text: &str) -> Transcript {
        let mut t = Transcript::default();
        t.feed(text.as_bytes());
        t.finish();
        t
    }

    #[test]
    fn a_successful_run_has_its_session_text_and_spending() {
        for (version, text) in fixture!("success") {
            let t = read(text);
            let start = t.start().expect(version);
            assert_eq!(start.version.as_deref(), Some(version));
            let session = start.session_id.clone().expect(version);
            assert_eq!(t.session_id(), Some(session.as_str()), "{version}");
            assert_eq!(
                t.outcome(),
                Outcome::Success {
                    text: Some("Done.".into())
                },
                "{version}"
            );
            let f = t.finished().unwrap();
            assert_eq!(f.session_id.as_deref(), Some(session.as_str()));
            assert_eq!(f.usage.turns, Some(2), "{version}");
            assert_eq!(f.usage.input_tokens, 200, "{version}");
            assert_eq!(f.usage.output_tokens, 40, "{version}");
            assert!(f.usage.cost_usd.is_some_and(|c| c > 0.0), "{version}");
            assert!(t.rejection().is_none() && t.warning().is_none() && t.last_retry().is_none());
        }
    }

    #[test]
    fn a_rejected_subscription_limit_parks_until_its_reset() {
        for (version, text) in fixture!("sub-limit") {
            let t = read(text);
            let r = t.rejection().expect(version);
            assert_eq!(r.status, LimitStatus::Rejected);
            assert_eq!(r.limit_type, Some(LimitType::FiveHour));
            let reset = r.resets_at.expect(version);
            match t.outcome() {
                Outcome::UsageLimit {
                    resets_at,
                    limit_type,
                    message,
                } => {
                    assert_eq!(resets_at, Some(reset), "{version}");
                    assert_eq!(limit_type, Some(LimitType::FiveHour));
                    assert!(message.starts_with("You've hit your"), "{message}");
                }
                other => panic!("{version}: {other:?}"),
            }
            // The result line alone knows the limit, not its reset.
            assert!(matches!(
                t.finished().unwrap().outcome,
                Outcome::UsageLimit {
                    resets_at: None,
                    ..
                }
            ));
        }
    }

    #[test]
    fn an_api_key_rate_limit_is_a_limit_without_a_reset() {
        for (version, text) in fixture!("key-429") {
            let t = read(text);
            let retry = t.last_retry().expect(version);
            assert_eq!(retry.attempt, 1);
            assert_eq!(retry.max_retries, Some(1));
            assert_eq!(retry.error_status, Some(429));
            assert_eq!(retry.error.as_deref(), Some("rate_limit"));
            assert!(retry.delay.is_some_and(|d| d > Duration::ZERO), "{version}");
            assert!(
                matches!(
                    t.outcome(),
                    Outcome::UsageLimit {
                        resets_at: None,
                        limit_type: None,
                        ..
                    }
                ),
                "{version}: {:?}",
                t.outcome()
            );
        }
    }

    #[test]
    fn overload_and_server_errors_are_transient() {
        for (name, status) in [("overloaded", 529), ("server-error", 500)] {
            let texts = match name {
                "overloaded" => fixture!("overloaded"),
                _ => fixture!("server-error"),
            };
            for (version, text) in texts {
                match read(text).outcome() {
                    Outcome::Transient { status: s, message } => {
                        assert_eq!(s, status, "{version} {name}");
                        assert!(message.starts_with("API Error"), "{message}");
                    }
                    other => panic!("{version} {name}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn budget_and_missing_session_have_their_own_outcomes() {
        for (version, text) in fixture!("budget") {
            match read(text).outcome() {
                Outcome::BudgetExceeded { message } => {
                    assert!(message.starts_with("Reached maximum budget"), "{message}");
                }
                other => panic!("{version}: {other:?}"),
            }
        }
        for (version, text) in fixture!("session-not-found") {
            let t = read(text);
            assert!(
                matches!(t.outcome(), Outcome::SessionNotFound { .. }),
                "{version}: {:?}",
                t.outcome()
            );
            assert_eq!(t.session_id(), Some("0b6f3c1e-4d2a-4c8e-9f00-000000000001"));
            assert!(t.start().is_none(), "no init before the refusal");
        }
    }

    #[test]
    fn an_allowed_warning_carries_its_utilization() {
        for (version, text) in fixture!("sub-warning") {
            let t = read(text);
            let w = t.warning().expect(version);
            assert_eq!(w.status, LimitStatus::AllowedWarning);
            assert_eq!(w.utilization, Some(0.92));
            assert_eq!(w.limit_type, Some(LimitType::FiveHour));
            assert!(w.resets_at.is_some());
            assert!(matches!(t.outcome(), Outcome::Success { .. }));
        }
        let mut t = read(fixture!("sub-warning")[0].1);
        t.line(br#"{"type":"rate_limit_event","rate_limit_info":{"status":"allowed"}}"#);
        assert_eq!(t.warning(), None, "a later `allowed` ends the warning");
    }

    #[test]
    fn resumed_sessions_cost_by_the_basis_of_their_version() {
        let [(_, s197), (_, s332)] = fixture!("success");
        let [(_, r197), (_, r332)] = fixture!("resumed");
        let [(_, a197), (_, a332)] = fixture!("resumed-again");
        let costs = |texts: [&str; 3]| -> Vec<AttemptCost> {
            texts.iter().map(|t| read(t).cost().unwrap()).collect()
        };
        let old = costs([s197, r197, a197]);
        assert!(old.iter().all(|c| c.basis == CostBasis::PerProcess));
        assert!(old.windows(2).all(|w| w[0].session_id == w[1].session_id));
        let sum: f64 = old.iter().map(|c| c.cost_usd).sum();
        assert!((total_cost(&old) - sum).abs() < 1e-12);

        let new = costs([s332, r332, a332]);
        assert!(new.iter().all(|c| c.basis == CostBasis::Cumulative));
        // 2.1.332 reports 1×, 2×, 3× the first figure: the last is the session's total.
        assert!(new[2].cost_usd > new[1].cost_usd && new[1].cost_usd > new[0].cost_usd);
        assert!((total_cost(&new) - new[2].cost_usd).abs() < 1e-12);
        // Two sessions add up; attempts without a session each count.
        let mut mixed = new.clone();
        mixed.push(AttemptCost {
            session_id: Some("other".into()),
            cost_usd: 1.0,
            basis: CostBasis::Cumulative,
        });
        mixed.push(AttemptCost {
            session_id: None,
            cost_usd: 2.0,
            basis: CostBasis::Cumulative,
        });
        assert!((total_cost(&mixed) - (new[2].cost_usd + 3.0)).abs() < 1e-12);
    }

    #[test]
    fn cost_basis_follows_the_version() {
        for (v, basis) in [
            (Some("2.1.197"), CostBasis::PerProcess),
            (Some("2.1.330"), CostBasis::PerProcess),
            (Some("2.1.331"), CostBasis::Cumulative),
            (Some("2.1.332"), CostBasis::Cumulative),
            (Some("2.2.0"), CostBasis::Cumulative),
            (Some("3.0"), CostBasis::Cumulative),
            (Some("2.1.331-beta"), CostBasis::PerProcess),
            (Some(""), CostBasis::PerProcess),
            (None, CostBasis::PerProcess),
        ] {
            assert_eq!(CostBasis::of_version(v), basis, "{v:?}");
        }
    }

    #[test]
    fn no_result_is_no_result_unless_a_limit_was_seen() {
        assert_eq!(read("").outcome(), Outcome::NoResult);
        let init = r#"{"type":"system","subtype":"init","session_id":"s"}"#;
        assert_eq!(read(init).outcome(), Outcome::NoResult);
        assert_eq!(read(init).session_id(), Some("s"));
        let killed_while_limited = format!(
            "{init}\n{}\n",
            r#"{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1800000000,"rateLimitType":"seven_day"}}"#
        );
        assert_eq!(
            read(&killed_while_limited).outcome(),
            Outcome::UsageLimit {
                resets_at: Some(UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
                limit_type: Some(LimitType::SevenDay),
                message: "the usage limit was reached".into()
            }
        );
    }

    #[test]
    fn other_errors_fail_with_their_message() {
        let max_turns = r#"{"type":"result","subtype":"error_max_turns","is_error":true,"errors":["Reached maximum number of turns (2)"]}"#;
        assert_eq!(
            read(max_turns).outcome(),
            Outcome::Failed {
                message: "Reached maximum number of turns (2)".into(),
                api_status: None
            }
        );
        let unauthorized = r#"{"type":"result","subtype":"success","is_error":true,"api_error_status":401,"result":"Invalid API key"}"#;
        assert_eq!(
            read(unauthorized).outcome(),
            Outcome::Failed {
                message: "Invalid API key".into(),
                api_status: Some(401)
            }
        );
        let bare = r#"{"type":"result","is_error":true}"#;
        assert_eq!(
            read(bare).outcome().message(),
            Some("the agent reported an error")
        );
    }

    /// Every fact of `text`, fed in pieces of `size` bytes.
    fn facts_in_pieces(text: &[u8], size: usize) -> Vec<Fact> {
        let mut t = Transcript::default();
        let mut facts = Vec::new();
        // Feed through a recorder: the same as `feed`, line by line, but keeping each fact.
        let mut rest = Vec::new();
        for piece in text.chunks(size.max(1)) {
            rest.extend_from_slice(piece);
            t.feed(piece);
            while let Some(i) = rest.iter().position(|&b| b == b'\n') {
                facts.extend(Transcript::default().line(&rest[..i]));
                rest.drain(..=i);
            }
        }
        t.finish();
        facts.extend(Transcript::default().line(&rest));
        let whole = read(std::str::from_utf8(text).unwrap());
        assert_eq!(t.outcome(), whole.outcome(), "pieces of {size}");
        assert_eq!(t.session_id(), whole.session_id(), "pieces of {size}");
        assert_eq!(t.rejection(), whole.rejection(), "pieces of {size}");
        assert_eq!(t.warning(), whole.warning(), "pieces of {size}");
        assert_eq!(t.last_retry(), whole.last_retry(), "pieces of {size}");
        facts
    }

    #[test]
    fn any_split_of_the_output_reads_the_same() {
        let all: String = [
            fixture!("success"),
            fixture!("sub-warning"),
            fixture!("key-429"),
            fixture!("sub-limit"),
        ]
        .iter()
        .flatten()
        .map(|(_, t)| *t)
        .collect();
        let reference = facts_in_pieces(all.as_bytes(), all.len());
        for size in [1, 2, 3, 7, 9, 10, 64, 4096] {
            assert_eq!(facts_in_pieces(all.as_bytes(), size), reference, "{size}");
        }
        // Without a final newline too.
        let trimmed = all.trim_end();
        let mut t = Transcript::default();
        for piece in trimmed.as_bytes().chunks(5) {
            t.feed(piece);
        }
        t.finish();
        assert_eq!(t.outcome(), read(&all).outcome());
    }

    #[test]
    fn garbage_and_endless_lines_are_survived() {
        let mut t = Transcript::default();
        t.feed(b"plain text\n\xff\xfe not utf-8 {\n{\"type\":\n{}\n[1,2]\n{\"type\":7}\n");
        t.feed(b"{\"type\":\"result\",\"is_error\":\"yes\",\"num_turns\":-1,\"total_cost_usd\":\"x\"}\n");
        assert_eq!(
            t.finished().unwrap().outcome,
            Outcome::Success { text: None },
            "an is_error that is not `true` is not an error"
        );
        assert_eq!(t.finished().unwrap().usage, Usage::default());
        // A line that never ends is dropped once past the cap, and memory stays bounded.
        let mut t = Transcript::default();
        let chunk = vec![b'x'; 1 << 20];
        t.feed(br#"{"type":"result","result":""#);
        for _ in 0..6 {
            t.feed(&chunk);
            assert!(t.pending.capacity() <= 2 * MAX_LINE);
        }
        t.feed(b"\"}\n{\"type\":\"result\",\"is_error\":false}\n");
        assert_eq!(t.outcome(), Outcome::Success { text: None });
        // A skipped type never buffers, however long.
        let mut t = Transcript::default();
        t.feed(br#"{"type":"user","message":""#);
        for _ in 0..8 {
            t.feed(&chunk);
        }
        assert_eq!(t.pending.capacity(), 0);
    }

    #[test]
    fn lines_in_another_key_order_are_still_read() {
        let line = br#"{"session_id":"s","is_error":true,"api_error_status":529,"result":"API Error: 529","type":"result"}"#;
        let mut t = Transcript::default();
        assert!(matches!(
            t.line(line),
            Some(Fact::Finished(Finish {
                outcome: Outcome::Transient { status: 529, .. },
                ..
            }))
        ));
        assert_eq!(
            t.line(br#"  {"type":"system","subtype":"api_retry","attempt":2}"#),
            Some(Fact::Retrying(Retry {
                attempt: 2,
                max_retries: None,
                delay: None,
                error_status: None,
                error: None
            }))
        );
        assert_eq!(t.line(br#"{"type":"assistant","message":{}}"#), None);
        // Escaped names are decoded, not mistaken for another type.
        assert!(matches!(
            t.line(br#"{"type":"sys\u0074em","subtype":"init","session_id":"s\"1"}"#),
            Some(Fact::Started(Start { session_id: Some(ref id), .. })) if id == "s\"1"
        ));
        assert_eq!(t.line(br#"{"type":"systemd","subtype":"init"}"#), None);
    }
}
