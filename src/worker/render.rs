//! Reading worker logs: Claude Code's `stream-json` lines rendered for people, the latest
//! activity of a worker, and why a worker failed.
//!
//! Pure functions over text; `logs`, the live view and the scheduler's failure summary use them.
//! What a log *means* (session, cost, how the agent ended) is read by [`super::agent`], once.

use serde_json::Value;

/// Lines `orchestrate` itself writes into a log (header, footer) start with this.
pub const MARK: &str = "====";

/// One log line as people read it: JSON events rendered, anything else unchanged. `None` for
/// events not worth a line (tool results, unknown system events).
pub fn render_line(line: &str) -> Option<String> {
    let Some(event) = parse_event(line) else {
        return Some(line.to_string());
    };
    render_event(&event)
}

fn parse_event(line: &str) -> Option<Value> {
    let trimmed = line.trim_start();
    if !trimmed.starts_with('{') {
        return None;
    }
    let v: Value = serde_json::from_str(trimmed).ok()?;
    v.get("type")?.as_str()?;
    Some(v)
}

fn render_event(v: &Value) -> Option<String> {
    let str_of = |key: &str| v.get(key).and_then(Value::as_str);
    match str_of("type")? {
        "system" => match str_of("subtype") {
            Some("init") => Some(format!(
                "[session {}] started (model {}, in {})",
                str_of("session_id").unwrap_or("?"),
                str_of("model").unwrap_or("?"),
                str_of("cwd").unwrap_or("?")
            )),
            Some("api_retry") => Some(format!(
                "waiting on the API (retry {}{})",
                v.get("attempt").map(Value::to_string).unwrap_or("?".into()),
                v.get("max_retries")
                    .map(|m| format!(" of {m}"))
                    .unwrap_or_default()
            )),
            _ => None,
        },
        "assistant" => {
            let parts: Vec<String> = content(v)
                .iter()
                .filter_map(|c| match c.get("type").and_then(Value::as_str)? {
                    "text" => c
                        .get("text")
                        .and_then(Value::as_str)
                        .map(|t| t.trim().to_string())
                        .filter(|t| !t.is_empty()),
                    "tool_use" => Some(format!(
                        "→ {}{}",
                        c.get("name").and_then(Value::as_str).unwrap_or("tool"),
                        main_argument(c.get("input"))
                            .map(|a| format!(": {a}"))
                            .unwrap_or_default()
                    )),
                    _ => None,
                })
                .collect();
            (!parts.is_empty()).then(|| parts.join("\n"))
        }
        "user" => None,
        "result" => Some(render_result(v)),
        _ => None,
    }
}

fn content(v: &Value) -> Vec<Value> {
    v.pointer("/message/content")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The argument that says what a tool call does: a command, a file, a pattern…
fn main_argument(input: Option<&Value>) -> Option<String> {
    let input = input?;
    [
        "command",
        "file_path",
        "path",
        "pattern",
        "url",
        "query",
        "description",
        "prompt",
    ]
    .iter()
    .find_map(|k| input.get(*k).and_then(Value::as_str))
    .map(|s| one_line(s, 120))
}

fn one_line(s: &str, max: usize) -> String {
    let flat = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        format!("{}…", flat.chars().take(max).collect::<String>())
    } else {
        flat
    }
}

fn render_result(v: &Value) -> String {
    let is_error = v.get("is_error").and_then(Value::as_bool).unwrap_or(false);
    let mut out = if is_error {
        "result: error".to_string()
    } else {
        "result: success".to_string()
    };
    if let Some(text) = super::agent::result_message(v) {
        out.push_str(&format!(": {}", one_line(&text, 300)));
    }
    let mut extra = Vec::new();
    if let Some(cost) = v.get("total_cost_usd").and_then(Value::as_f64) {
        extra.push(format!("cost ${cost:.4}"));
    }
    if let Some(turns) = v.get("num_turns").and_then(Value::as_u64) {
        extra.push(format!("{turns} turns"));
    }
    if !extra.is_empty() {
        out.push_str(&format!(" ({})", extra.join(", ")));
    }
    out
}

/// A one-line description of what a worker is doing, from one log line.
pub fn activity(line: &str) -> Option<String> {
    if line.starts_with(MARK) || line.trim().is_empty() {
        return None;
    }
    let rendered = render_line(line)?;
    let last = rendered.lines().last()?.to_string();
    Some(one_line(&last, 80))
}

/// The latest activity in a log's text.
pub fn latest_activity(text: &str) -> Option<String> {
    text.lines().rev().find_map(activity)
}

/// The message of the last `result` event with `is_error: true`, if the last result is one.
pub fn error_result(text: &str) -> Option<String> {
    let outcome = transcript(text).finished()?.outcome.clone();
    outcome
        .is_error()
        .then(|| outcome.message().unwrap_or_default().to_string())
}

/// What the agent's structured output says about its session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionInfo {
    pub session_id: Option<String>,
    pub cost_usd: Option<f64>,
    pub turns: Option<u64>,
}

/// The session id (from `init` or `result`), cost and turns (from the last `result`).
pub fn session_info(text: &str) -> SessionInfo {
    let t = transcript(text);
    let usage = t.finished().map(|f| f.usage).unwrap_or_default();
    SessionInfo {
        session_id: t.session_id().map(String::from),
        cost_usd: usage.cost_usd,
        turns: usage.turns.map(u64::from),
    }
}

fn transcript(text: &str) -> super::agent::Transcript {
    let mut t = super::agent::Transcript::default();
    t.feed(text.as_bytes());
    t.finish();
    t
}

/// The last `n` lines of a log worth showing: rendered (one event may render as several
/// lines, each its own), without `orchestrate`'s own lines.
pub fn last_lines(text: &str, n: usize) -> Vec<String> {
    let mut out: Vec<String> = text
        .lines()
        .rev()
        .filter(|l| !l.starts_with(MARK) && !l.trim().is_empty())
        .filter_map(render_line)
        .flat_map(|r| r.lines().rev().map(str::to_string).collect::<Vec<_>>())
        .take(n)
        .collect();
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_stream_json_events() {
        let init = r#"{"type":"system","subtype":"init","cwd":"/p","session_id":"s1","model":"m"}"#;
        assert_eq!(
            render_line(init).unwrap(),
            "[session s1] started (model m, in /p)"
        );
        let tool = r#"{"type":"assistant","message":{"content":[{"type":"text","text":"Let me look."},{"type":"tool_use","id":"t","name":"Bash","input":{"command":"cargo test"}}]}}"#;
        assert_eq!(
            render_line(tool).unwrap(),
            "Let me look.\n→ Bash: cargo test"
        );
        let retry = r#"{"type":"system","subtype":"api_retry","attempt":3,"max_retries":10}"#;
        assert_eq!(
            render_line(retry).unwrap(),
            "waiting on the API (retry 3 of 10)"
        );
        let result = r#"{"type":"result","subtype":"success","is_error":false,"result":"Done.","total_cost_usd":0.25,"num_turns":4}"#;
        assert_eq!(
            render_line(result).unwrap(),
            "result: success: Done. (cost $0.2500, 4 turns)"
        );
        assert_eq!(
            render_line(r#"{"type":"user","message":{"content":[]}}"#),
            None
        );
        assert_eq!(render_line("plain text").unwrap(), "plain text");
    }

    #[test]
    fn finds_an_error_result_and_the_last_lines() {
        let log = "==== header\nhello\n{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":true,\"result\":\"Invalid API key\"}\n==== footer\n";
        assert_eq!(error_result(log).as_deref(), Some("Invalid API key"));
        assert_eq!(
            last_lines(log, 5),
            vec!["hello", "result: error: Invalid API key"]
        );
        let max_turns = r#"{"type":"result","subtype":"error_max_turns","is_error":true,"errors":["Reached maximum number of turns (2)"]}"#;
        assert_eq!(
            error_result(max_turns).as_deref(),
            Some("Reached maximum number of turns (2)")
        );
        assert_eq!(error_result("no json here"), None);
    }

    #[test]
    fn session_info_comes_from_init_and_the_last_result() {
        let log = "{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"s-1\"}\n{\"type\":\"result\",\"is_error\":false,\"session_id\":\"s-1\",\"total_cost_usd\":0.5,\"num_turns\":7}\n";
        assert_eq!(
            session_info(log),
            SessionInfo {
                session_id: Some("s-1".into()),
                cost_usd: Some(0.5),
                turns: Some(7)
            }
        );
        assert_eq!(session_info("plain"), SessionInfo::default());
    }

    #[test]
    fn activity_is_the_last_meaningful_line() {
        let log = "==== header\n{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"tool_use\",\"name\":\"Edit\",\"input\":{\"file_path\":\"src/a.rs\"}}]}}\n{\"type\":\"user\",\"message\":{\"content\":[]}}\n";
        assert_eq!(latest_activity(log).as_deref(), Some("→ Edit: src/a.rs"));
    }
}
