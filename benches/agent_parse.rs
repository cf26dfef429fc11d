//! Benchmark: what reading an agent's stream-json costs (`worker::agent::Transcript`), against
//! two yardsticks measured in the same process on the same bytes: parsing every line into a
//! `serde_json::Value` (what a naive reader does), and merely touching every byte once.
//! Target: ≤ 1 % of one core with 8 workers printing 1,000 lines a second each.
//!
//! The output is synthetic but shaped like a real session, built from the lines the real CLI
//! printed against the tests' API stand-in (`tests/fixtures/claude/2.1.332/`): per 100 lines,
//! 45 assistant messages (text or a tool call), 45 tool results (output of 50 B to 16 KiB,
//! log-uniform, with quotes and newlines to escape; the CLI prints each output twice), 5
//! `api_retry`, 2 `rate_limit_event`, 1 `init`, 1 `result`, 1 other system line. The parsed kinds
//! are over-represented (a real session has one `init` and one `result`), so the figure is
//! pessimistic. It is fed in 8 KiB pieces, as from a pipe.
//!
//! Run: `cargo bench --bench agent_parse` (about 20 s).

#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::hint::black_box;
use std::time::{Duration, Instant};

use orchestrate::worker::agent::Transcript;
use serde_json::{Value, json};

const WORKERS: f64 = 8.0;
const LINES_PER_SEC: f64 = 1000.0;
const ROUNDS: usize = 9;

const INIT: &str = include_str!("../tests/fixtures/claude/2.1.332/success.jsonl");
const LIMIT: &str = include_str!("../tests/fixtures/claude/2.1.332/sub-limit.jsonl");
const RETRY: &str = include_str!("../tests/fixtures/claude/2.1.332/key-429.jsonl");

/// A deterministic xorshift, so every run measures the same bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A length between 50 and 16 KiB, log-uniform.
    fn size(&mut self) -> usize {
        let f = (self.next() % 10_000) as f64 / 10_000.0;
        (50.0 * (16_384.0f64 / 50.0).powf(f)) as usize
    }
}

fn text_of(rng: &mut Rng, len: usize) -> String {
    const WORDS: [&str; 8] = [
        "fn ",
        "let x = \"y\";",
        "\n",
        "    ",
        "error[E0308]: ",
        "{ok}",
        "tests/a.rs:12 ",
        "\t\\n ",
    ];
    let mut s = String::with_capacity(len + 16);
    while s.len() < len {
        s.push_str(WORDS[(rng.next() % 8) as usize]);
    }
    s
}

fn line_of<'a>(text: &'a str, kind: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(kind))
        .unwrap_or_else(|| panic!("no {kind} line in the fixture"))
}

/// One synthetic session of `n` lines, newline-terminated.
fn corpus(n: usize) -> Vec<u8> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let session = "736dee9a-9cd0-427c-ac72-fdf9ec9a5994";
    let fixed = [
        line_of(INIT, r#""subtype":"init""#),
        line_of(RETRY, r#""subtype":"api_retry""#),
        line_of(LIMIT, r#""type":"rate_limit_event""#),
        line_of(INIT, r#""result":"Done.""#),
    ];
    let mut out = Vec::new();
    for i in 0..n {
        let line = match i % 100 {
            0 => fixed[0].to_string(),
            1..=5 => fixed[1].to_string(),
            6 | 7 => fixed[2].to_string(),
            8 => fixed[3].to_string(),
            9 => json!({"type": "system", "subtype": "status", "session_id": session}).to_string(),
            k if k % 2 == 0 => {
                let content = if k % 4 == 0 {
                    json!([{"type": "text", "text": text_of(&mut rng, 300)}])
                } else {
                    json!([{"type": "tool_use", "id": format!("toolu_{i}"), "name": "Bash",
                            "input": {"command": text_of(&mut rng, 80)}}])
                };
                // The CLI's own key order: "type" first.
                format!(
                    r#"{{"type":"assistant","message":{}, "parent_tool_use_id":null,"session_id":"{session}"}}"#,
                    json!({"id": format!("msg_{i}"), "type": "message", "role": "assistant",
                           "model": "claude-opus-5-5", "content": content,
                           "usage": {"input_tokens": 100, "output_tokens": 20}})
                )
            }
            _ => {
                let len = rng.size();
                let output = text_of(&mut rng, len);
                format!(
                    r#"{{"type":"user","message":{},"session_id":"{session}","tool_use_result":{}}}"#,
                    json!({"role": "user", "content": [{"tool_use_id": format!("toolu_{i}"),
                           "type": "tool_result", "content": output, "is_error": false}]}),
                    json!({"stdout": output, "stderr": "", "interrupted": false})
                )
            }
        };
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out
}

/// The median time of `f` over the rounds.
fn median(mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[ROUNDS / 2]
}

fn main() {
    // 2,000 lines stay in the cache, as a piece just read from a pipe or the log does; 20,000
    // (60 MiB) come from memory, which bounds every reader alike.
    for lines in [2_000, 20_000] {
        measure(lines);
    }
    per_kind(&corpus(100));
}

fn measure(lines: usize) {
    let bytes = corpus(lines);
    let per_line = |d: Duration| d.as_secs_f64() * 1e9 / lines as f64;
    let transcript = median(|| {
        let mut t = Transcript::default();
        for piece in bytes.chunks(8192) {
            t.feed(black_box(piece));
        }
        t.finish();
        black_box(t.outcome());
    });
    let value = median(|| {
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            black_box(serde_json::from_slice::<Value>(black_box(line)).ok());
        }
    });
    let line_ends = median(|| {
        black_box(memchr::memchr_iter(b'\n', black_box(&bytes[..])).count());
    });
    let touch = median(|| {
        let sum = black_box(&bytes[..])
            .iter()
            .fold(0u64, |a, &b| a.wrapping_add(u64::from(b)));
        black_box(sum);
    });

    println!(
        "\ncorpus: {lines} lines, {:.1} MiB, {:.0} bytes a line on average",
        bytes.len() as f64 / (1 << 20) as f64,
        bytes.len() as f64 / lines as f64
    );
    println!("| reader | ns a line | time vs Transcript |\n|---|---|---|");
    for (name, d) in [
        ("Transcript::feed (8 KiB pieces)", transcript),
        ("serde_json::from_slice::<Value> per line", value),
        ("finding the line ends (memchr)", line_ends),
        ("touching every byte once (a sum)", touch),
    ] {
        println!(
            "| {name} | {:.0} | {:.2}× |",
            per_line(d),
            d.as_secs_f64() / transcript.as_secs_f64()
        );
    }
    let core_share = per_line(transcript) * WORKERS * LINES_PER_SEC / 1e9 * 100.0;
    println!(
        "share of one core for {WORKERS} workers × {LINES_PER_SEC} lines/s: {core_share:.3} % \
         (target ≤ 1 %)"
    );
}

/// The cost of one line of each kind, read whole with `Transcript::line`.
fn per_kind(bytes: &[u8]) {
    println!(
        "\n| line kind | bytes | ns a line (Transcript) | ns a line (Value) |\n|---|---|---|---|"
    );
    let lines: Vec<&[u8]> = bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    for kind in [
        r#""subtype":"init""#,
        r#""subtype":"api_retry""#,
        r#""type":"rate_limit_event""#,
        r#""type":"result""#,
        r#""type":"assistant""#,
        r#""type":"user""#,
    ] {
        let Some(line) = lines
            .iter()
            .find(|l| l.windows(kind.len()).any(|w| w == kind.as_bytes()))
        else {
            continue;
        };
        let n = 2000;
        let ours = median(|| {
            let mut t = Transcript::default();
            for _ in 0..n {
                black_box(t.line(black_box(line)));
            }
        });
        let value = median(|| {
            for _ in 0..n {
                black_box(serde_json::from_slice::<Value>(black_box(line)).ok());
            }
        });
        let ns = |d: Duration| d.as_secs_f64() * 1e9 / n as f64;
        println!(
            "| {kind} | {} | {:.0} | {:.0} |",
            line.len(),
            ns(ours),
            ns(value)
        );
    }
}
