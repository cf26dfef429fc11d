//! Seeing a run: `graph` in its three formats (hostile ids escaped for each), `start --json`
//! (every line parses, is versioned, and the diamond's sequence holds), the recorded timeline
//! behind `report` (text, `--json`, and `--html` parsed as XML against the recorded events),
//! shell completions (loaded in a real bash, stream names completed from the database), the
//! man page and the help.

use orchestrate::exit_codes;
use std::collections::HashMap;
use std::process::Command;

use serde_json::Value;

use crate::start::{Fake, state_db};
use crate::support::TestEnv;
use orchestrate::state::time::parse_unix_millis;

fn diamond() -> Fake {
    let mut env = TestEnv::new();
    env.diamond();
    Fake::new(env)
}

// ---------------------------------------------------------------- graph

#[test]
fn graph_text_draws_the_diamond_by_level_within_80_columns() {
    let mut env = TestEnv::new();
    env.diamond();
    env.set_stream_status("Stream-A", "completed");
    let out = env.run(&["graph"]).success().stdout();
    for line in out.lines() {
        assert!(line.chars().count() <= 80, "wider than 80: {line:?}\n{out}");
    }
    assert!(out.starts_with("4 streams in 3 levels: "), "{out}");
    let at = |needle: &str| {
        out.find(needle)
            .unwrap_or_else(|| panic!("no {needle:?} in\n{out}"))
    };
    assert!(at("level 0") < at("Stream-A") && at("Stream-A") < at("level 1"));
    assert!(at("level 1") < at("Stream-B") && at("Stream-C") < at("level 2"));
    assert!(out.contains("← Stream-B, Stream-C"), "{out}");
    let a = out.lines().find(|l| l.contains("Stream-A")).unwrap();
    assert!(a.contains("complete") && a.contains("2/2"), "{a}");
    let b = out.lines().find(|l| l.contains("● Stream-B")).unwrap();
    assert!(b.contains("ready") && b.contains("← Stream-A"), "{b}");
    assert!(!out.contains('\u{1b}'), "no colour when piped: {out:?}");
    let coloured = env.run(&["--color", "always", "graph"]).success().stdout();
    assert!(coloured.contains("\u{1b}["), "colour on request");
}

/// Ids and names that try to break each format.
fn hostile() -> TestEnv {
    let mut env = TestEnv::new();
    env.add_stream("A\"] --> x[\"pwned", &[], 1, "pending");
    let meta = serde_json::json!({
        "streamId": "B\\\"\n\u{1b}[2J;",
        "streamName": "<b>name</b> & \"quotes\"",
        "dependencies": ["A\"] --> x[\"pwned"],
    });
    env.add_task_meta("b", "pending", meta);
    env
}

#[test]
fn graph_mermaid_is_a_valid_flowchart_with_every_label_escaped() {
    let mut env = TestEnv::new();
    env.diamond();
    let out = env
        .run(&["graph", "--format", "mermaid"])
        .success()
        .stdout();
    let nodes = check_mermaid(&out);
    assert_eq!(nodes.len(), 4);
    assert!(
        out.contains("s0 --> s1") && out.contains("s2 --> s3"),
        "{out}"
    );
    assert!(
        out.contains(":::waiting") && out.contains("classDef ready"),
        "{out}"
    );

    let out = hostile()
        .run(&["graph", "--format", "mermaid"])
        .success()
        .stdout();
    let labels = check_mermaid(&out);
    assert_eq!(labels.len(), 2, "{out}");
    assert!(!out.contains("pwned\"") && !out.contains('\u{1b}'), "{out}");
    assert!(
        !out.contains("<b>") && out.contains("#60;b#62;name"),
        "{out}"
    );
}

/// A structural check of our Mermaid subset: the header, node lines with generated ids and one
/// quoted label holding no raw quote or angle bracket outside our own tags, edges between
/// declared nodes, class definitions. Returns the labels by node id.
fn check_mermaid(text: &str) -> HashMap<String, String> {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("flowchart TD"), "{text}");
    let mut nodes = HashMap::new();
    let is_id = |s: &str| s.starts_with('s') && s[1..].chars().all(|c| c.is_ascii_digit());
    for line in lines {
        let line = line.trim();
        if let Some((from, to)) = line.split_once(" --> ") {
            assert!(nodes.contains_key(from) && nodes.contains_key(to), "{line}");
        } else if let Some(def) = line.strip_prefix("classDef ") {
            let (name, style) = def.split_once(' ').expect("classDef NAME STYLE");
            assert!(
                name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{line}"
            );
            assert!(style.starts_with("fill:#"), "{line}");
        } else {
            let (id, rest) = line
                .split_once("[\"")
                .unwrap_or_else(|| panic!("not a node: {line}"));
            assert!(is_id(id), "{line}");
            let (label, class) = rest.rsplit_once("\"]:::").expect("a class");
            let bare = label
                .replace("<br/>", "")
                .replace("<i>", "")
                .replace("</i>", "");
            assert!(
                !bare.contains(['"', '<', '>', '[', ']', '`', '\n', '\u{1b}']),
                "unescaped label in {line}"
            );
            assert!(
                class.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{line}"
            );
            nodes.insert(id.to_string(), label.to_string());
        }
    }
    nodes
}

#[test]
fn graph_dot_quotes_ids_and_ranks_each_level() {
    let mut env = TestEnv::new();
    env.diamond();
    let out = env.run(&["graph", "--format", "dot"]).success().stdout();
    assert!(
        out.starts_with("digraph streams {\n") && out.ends_with("}\n"),
        "{out}"
    );
    for edge in [
        "\"Stream-A\" -> \"Stream-B\";",
        "\"Stream-A\" -> \"Stream-C\";",
        "\"Stream-B\" -> \"Stream-Z\";",
        "\"Stream-C\" -> \"Stream-Z\";",
    ] {
        assert!(out.contains(edge), "{edge} in\n{out}");
    }
    assert!(
        out.contains("{ rank=same; \"Stream-B\"; \"Stream-C\"; }"),
        "{out}"
    );

    let out = hostile()
        .run(&["graph", "--format", "dot"])
        .success()
        .stdout();
    // Every quoted string closes where it should: outside strings only DOT syntax remains.
    for line in out.lines().skip(3).filter(|l| !l.starts_with('}')) {
        let outside = strip_dot_strings(line);
        assert!(
            outside
                .chars()
                .all(|c| " ;[],=->{}".contains(c) || c.is_ascii_alphabetic()),
            "{line:?} leaves {outside:?}"
        );
    }
    assert!(!out.contains('\u{1b}') && !out.contains("\n;"), "{out}");
}

/// `line` with its DOT double-quoted strings removed (honouring `\"` and `\\`).
fn strip_dot_strings(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            out.push(c);
            continue;
        }
        loop {
            match chars.next() {
                Some('\\') => {
                    chars.next();
                }
                Some('"') => break,
                Some(_) => {}
                None => panic!("unterminated string in {line:?}"),
            }
        }
    }
    out
}

// ---------------------------------------------------------------- start --json and report

/// The diamond run with `--json`: its lines, parsed.
fn json_run(fake: &Fake) -> Vec<Value> {
    let run = fake.run(&["start", "--stagger", "0", "--json"]).success();
    let out = run.stdout();
    let lines: Vec<Value> = out
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}\n--- stdout\n{out}"))
        })
        .collect();
    assert!(
        run.stderr().contains("every stream is complete"),
        "the summary goes to stderr: {}",
        run.stderr()
    );
    assert!(
        run.stderr().contains("`orchestrate report`"),
        "{}",
        run.stderr()
    );
    lines
}

#[test]
fn start_json_prints_every_event_of_the_diamond_and_nothing_else() {
    let fake = diamond();
    let lines = json_run(&fake);
    for l in &lines {
        assert_eq!(l["version"], 1, "{l}");
        assert!(
            l["time"].as_str().and_then(parse_unix_millis).is_some(),
            "{l}"
        );
        assert!(l["event"].is_string(), "{l}");
    }
    let events: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(events[0], "run_started");
    assert_eq!(events[1], "streams");
    assert_eq!(*events.last().unwrap(), "run_end");
    assert_eq!(lines.last().unwrap()["exit_code"], 0);
    assert_eq!(lines.last().unwrap()["outcome"], "complete");
    let streams = lines[1]["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 4);
    assert_eq!(
        streams[3]["dependencies"],
        serde_json::json!(["Stream-B", "Stream-C"])
    );
    // Times never go backwards.
    let times: Vec<i64> = lines
        .iter()
        .map(|l| parse_unix_millis(l["time"].as_str().unwrap()).unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    // Per stream: ready, preparing, started, progress, exited, complete, in that order.
    let index = |stream: &str, pred: &dyn Fn(&Value) -> bool| {
        lines
            .iter()
            .position(|l| l["stream"] == stream && pred(l))
            .unwrap_or_else(|| panic!("no such event of {stream}"))
    };
    let state = |s: &'static str| move |l: &Value| l["event"] == "state" && l["state"] == s;
    let event = |e: &'static str| move |l: &Value| l["event"] == e;
    for s in ["Stream-A", "Stream-B", "Stream-C", "Stream-Z"] {
        let prep = index(s, &event("preparing"));
        let started = index(s, &event("started"));
        let exited = index(s, &event("exited"));
        let complete = index(s, &state("complete"));
        assert!(
            prep < started && started < exited && exited <= complete,
            "{s}"
        );
        assert!(index(s, &|l| l["event"] == "progress" && l["tasks_done"] == 2) < complete);
        assert!(index(s, &event("done")) <= complete + 1);
        if s != "Stream-A" {
            assert!(index(s, &state("ready")) < prep, "{s} ready first");
        }
        assert_eq!(lines[exited]["exit"]["how"], "code");
    }
    // In a shared checkout a stream is done for its dependents once its tasks are: they may
    // start while its worker is still exiting.
    let done = |s| index(s, &event("done"));
    let prep = |s| index(s, &event("preparing"));
    assert!(done("Stream-A") < prep("Stream-B") && done("Stream-A") < prep("Stream-C"));
    assert!(done("Stream-B") < prep("Stream-Z") && done("Stream-C") < prep("Stream-Z"));
}

/// The recorded events of the last run, straight from the state store: (time ms since the
/// run began, body).
fn recorded(fake: &Fake) -> Vec<(i64, Value)> {
    let conn = rusqlite::Connection::open_with_flags(
        state_db(&fake.env.root),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let (run, started): (i64, String) = conn
        .query_row(
            "SELECT id, started_at FROM runs ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let t0 = parse_unix_millis(&started).unwrap();
    let mut stmt = conn
        .prepare("SELECT at, body FROM run_events WHERE run = ?1 ORDER BY seq")
        .unwrap();
    stmt.query_map([run], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })
    .unwrap()
    .map(|row| {
        let (at, body) = row.unwrap();
        (
            parse_unix_millis(&at).unwrap() - t0,
            serde_json::from_str(&body).unwrap(),
        )
    })
    .collect()
}

#[test]
fn report_shows_the_recorded_run_as_text_json_and_html() {
    let fake = diamond();
    json_run(&fake);
    let events = recorded(&fake);
    let started: Vec<(String, i64)> = events
        .iter()
        .filter(|(_, b)| b["event"] == "started")
        .map(|(t, b)| (b["stream"].as_str().unwrap().to_string(), *t))
        .collect();
    assert_eq!(started.len(), 4);

    // Text: a row per stream, the critical path through A and Z, the totals.
    let text = fake.env.run(&["report"]).success().stdout();
    for line in text.lines() {
        assert!(line.chars().count() <= 80 + 8, "too wide: {line:?}");
    }
    assert!(text.starts_with("run 1 · "), "{text}");
    assert!(text.contains("every stream complete (exit 0)"), "{text}");
    assert!(text.contains("critical path: Stream-A → Stream-"), "{text}");
    assert!(text.contains("→ Stream-Z,"), "{text}");
    assert!(
        text.contains("total: 4 streams (4 complete) · 4 attempts, 0 retries"),
        "{text}"
    );
    for s in ["Stream-A", "Stream-B", "Stream-C", "Stream-Z"] {
        assert!(
            text.lines().any(|l| l.contains(s) && l.contains('█')),
            "{s}\n{text}"
        );
    }

    // JSON: the same attempts at the recorded times.
    let doc = fake.env.run(&["report", "--json"]).success().json();
    assert_eq!(doc["version"], 1);
    let attempts: HashMap<String, i64> = doc["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let a = &s["attempts"][0];
            (
                s["id"].as_str().unwrap().to_string(),
                a["from_ms"].as_i64().unwrap(),
            )
        })
        .collect();
    for (s, t) in &started {
        assert_eq!(attempts[s], *t, "{s}");
    }
    let path: Vec<&str> = doc["critical_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["stream"].as_str().unwrap())
        .collect();
    assert_eq!(path.first(), Some(&"Stream-A"));
    assert_eq!(path.last(), Some(&"Stream-Z"));
    assert_eq!(path.len(), 3, "{path:?}");

    // HTML: well-formed, self-contained, one bar per attempt at the recorded times.
    let file = fake.env.tmp.path().join("run.html");
    fake.env
        .run(&["report", "--html", file.to_str().unwrap()])
        .success();
    let html = std::fs::read_to_string(&file).unwrap();
    let done: HashMap<String, i64> = events
        .iter()
        .filter(|(_, b)| b["event"] == "done")
        .map(|(t, b)| (b["stream"].as_str().unwrap().to_string(), *t))
        .collect();
    check_html(&html, &started, &done, &path);
}

fn check_html(html: &str, started: &[(String, i64)], done: &HashMap<String, i64>, path: &[&str]) {
    let doc = roxmltree::Document::parse_with_options(
        html,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("not well-formed: {e}\n{html}"));
    for node in doc.descendants().filter(|n| n.is_element()) {
        for attr in ["src", "href"] {
            assert!(node.attribute(attr).is_none(), "external asset: {node:?}");
        }
        assert_ne!(node.tag_name().name(), "script");
    }
    let svg = doc
        .descendants()
        .find(|n| n.tag_name().name() == "svg")
        .expect("an SVG chart");
    assert_eq!(
        svg.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    let bars: Vec<roxmltree::Node> = svg
        .descendants()
        .filter(|n| n.attribute("data-kind") == Some("attempt"))
        .collect();
    assert_eq!(bars.len(), started.len(), "one bar per attempt");
    let x = |n: &roxmltree::Node| n.attribute("x").unwrap().parse::<f64>().unwrap();
    let bar_of = |s: &str| {
        bars.iter()
            .find(|b| b.attribute("data-stream") == Some(s))
            .unwrap_or_else(|| panic!("no bar for {s}"))
    };
    for (s, t) in started {
        let bar = bar_of(s);
        assert_eq!(
            bar.attribute("data-from-ms"),
            Some(t.to_string().as_str()),
            "{s}"
        );
        let on_path = path.contains(&s.as_str());
        assert_eq!(
            bar.attribute("class").unwrap().contains("crit"),
            on_path,
            "{s}"
        );
    }
    // In order on the time axis: each bar begins after its dependencies were done (in a
    // shared checkout, when their tasks were; their workers may still be exiting).
    let from = |s: &str| -> i64 {
        bar_of(s)
            .attribute("data-from-ms")
            .unwrap()
            .parse()
            .unwrap()
    };
    for (dep, s) in [
        ("Stream-A", "Stream-B"),
        ("Stream-A", "Stream-C"),
        ("Stream-B", "Stream-Z"),
        ("Stream-C", "Stream-Z"),
    ] {
        assert!(done[dep] <= from(s), "{s} began before {dep} was done");
        assert!(x(bar_of(dep)) < x(bar_of(s)), "{dep} drawn before {s}");
    }
    assert!(
        html.contains("Critical path") && html.contains("★"),
        "marked"
    );
}

#[test]
fn report_says_what_to_do_without_a_run_and_for_an_unknown_one() {
    let env = TestEnv::new();
    let out = env.run(&["report"]);
    assert_ne!(out.code(), exit_codes::OK);
    assert!(
        out.stderr().contains("no run is recorded"),
        "{}",
        out.stderr()
    );
    assert!(
        out.stderr().contains("orchestrate start"),
        "{}",
        out.stderr()
    );
    let fake = diamond();
    json_run(&fake);
    let out = fake
        .env
        .run(&["report", "--run", "9"])
        .expect_code(exit_codes::USAGE);
    assert!(
        out.stderr().contains("recorded runs: 1"),
        "{}",
        out.stderr()
    );
}

// ---------------------------------------------------------------- completions, man, help

fn bin_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_BIN_EXE_orchestrate"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn bash_completion_loads_and_completes_stream_names_from_the_database() {
    let mut env = TestEnv::new();
    env.diamond();
    let path = format!(
        "{}:{}",
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = r#"
        source <(orchestrate completions bash) || exit 9
        complete -p orchestrate || exit 8
        complete_words() {
            COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
            COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMP_TYPE=9
            _clap_complete_orchestrate orchestrate "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
            printf '%s\n' "${COMPREPLY[@]}"
        }
        echo "--- logs"; complete_words orchestrate logs Stream-
        echo "--- task"; complete_words orchestrate task list --stream Stream-
        echo "--- sub"; complete_words orchestrate gr
    "#;
    let mut cmd = Command::new("bash");
    env.apply_env(&mut cmd);
    let out = cmd
        .env("PATH", path)
        .current_dir(&env.root)
        .args(["-c", script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("-F _clap_complete_orchestrate orchestrate"),
        "{stdout}"
    );
    let section = |name: &str| -> Vec<String> {
        stdout
            .split(&format!("--- {name}\n"))
            .nth(1)
            .unwrap()
            .split("--- ")
            .next()
            .unwrap()
            .lines()
            .map(|l| l.trim().to_string())
            .collect()
    };
    let streams = ["Stream-A", "Stream-B", "Stream-C", "Stream-Z"];
    assert_eq!(section("logs"), streams, "{stdout}");
    assert_eq!(section("task"), streams, "{stdout}");
    assert_eq!(section("sub"), ["graph"], "{stdout}");
}

#[test]
fn every_shell_gets_a_script_and_the_man_page_renders() {
    let env = TestEnv::new();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = env.run(&["completions", shell]).success().stdout();
        assert!(out.contains("ORCHESTRATE_COMPLETE"), "{shell}: {out}");
    }
    let man = env.run(&["man"]).success().stdout();
    assert!(
        man.starts_with(".ie \\n(.g .ds Aq") || man.contains(".TH orchestrate"),
        "{man}"
    );
    assert!(man.contains("report"), "{man}");
    let dir = env.tmp.path().join("man1");
    env.run(&["man", "--out-dir", dir.to_str().unwrap()])
        .success();
    for page in [
        "orchestrate.1",
        "orchestrate-start.1",
        "orchestrate-task-set.1",
    ] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(text.contains(".TH"), "{page}");
    }
}

#[test]
fn help_works_for_itself_and_nested_commands() {
    let env = TestEnv::new();
    let out = env.run(&["help", "--help"]).success().stdout();
    assert!(out.contains("Examples:"), "{out}");
    let out = env.run(&["help", "task", "set"]).success().stdout();
    assert!(
        out.contains("orchestrate task set TASK-123 blocked"),
        "{out}"
    );
    let out = env.run(&["help"]).success().stdout();
    assert!(
        out.contains("--worktrees") && out.contains("Global options:"),
        "{out}"
    );
    env.run(&["help", "nope"]).expect_code(exit_codes::USAGE);
}

// ---------------------------------------------------------------- newcomer hints

/// Before `init` the guide is not in the project: the hint says how to get it, and where.
#[test]
fn the_no_streams_hint_says_where_the_guide_is() {
    let mut env = TestEnv::new();
    env.add_task_raw("plain task", "pending", Some("{}"));
    let before = env
        .run(&["status"])
        .expect_code(exit_codes::NO_STREAMS)
        .stderr();
    assert!(
        before.contains(
            "`orchestrate init` installs it as .claude/orchestrator/ORCHESTRATION_GUIDE.md"
        ),
        "{before}"
    );
    env.run(&["init"]).success();
    let after = env
        .run(&["status"])
        .expect_code(exit_codes::NO_STREAMS)
        .stderr();
    let guide = env.root.join(".claude/orchestrator/ORCHESTRATION_GUIDE.md");
    assert!(
        after.contains(&format!("see {}", guide.display())),
        "{after}"
    );
}

/// `init` says what to commit: the slash command and the config are meant to be shared.
#[test]
fn init_says_what_to_commit() {
    let env = TestEnv::new();
    let out = env.run(&["init"]).success().stdout();
    let add = [
        ".claude/commands/orchestrate.md",
        ".claude/orchestrator/",
        "watch-status",
    ];
    assert!(
        out.contains("git add .claude/commands/orchestrate.md .claude/orchestrator/ watch-status"),
        "{out}"
    );
    // What it says to add covers exactly what git sees as new (runtime folders are excluded).
    let status = env.git(&["status", "--porcelain", "--untracked-files=all"]);
    assert!(!status.is_empty());
    for line in status.lines() {
        let path = line[3..].trim();
        assert!(
            add.iter().any(|a| path.starts_with(a)),
            "git shows {path}, which init does not name:\n{out}"
        );
        assert!(
            !path.contains("/state/") && !path.contains("/logs/"),
            "{path}"
        );
    }
}

/// `start` SIGKILLed mid-run leaves a run with no end that `report` still reads; the next
/// `start` adopts the live worker, and its run shows the adopted attempt.
#[test]
fn a_killed_start_leaves_a_readable_run_and_the_next_one_adopts() {
    let mut fake = diamond();
    let gate = fake.env.tmp.path().join("gate");
    fake.set("WAIT_FOR", Some("Stream-A"), gate.to_str().unwrap());
    let mut first = fake.spawn(&["start", "--stagger", "0"], "first");
    crate::support::wait_for("Stream-A's worker", crate::start::LONG, || {
        fake.marker("Stream-A", "started").exists()
    });
    first.kill().unwrap();
    first.wait().unwrap();
    let text = fake.env.run(&["report"]).success().stdout();
    assert!(text.contains("not ended"), "{text}");
    let doc = fake.env.run(&["report", "--json"]).success().json();
    let a = &doc["streams"][0];
    assert_eq!(a["id"], "Stream-A");
    assert!(a["attempts"][0]["to_ms"].is_null(), "{a}");

    std::fs::write(&gate, "go").unwrap();
    fake.run(&["start", "--stagger", "0"]).success();
    let doc = fake.env.run(&["report", "--json"]).success().json();
    assert_eq!(doc["run"], 2);
    assert_eq!(doc["exit_code"], 0);
    let a = &doc["streams"][0];
    assert_eq!(a["attempts"][0]["adopted"], true, "{a}");
    assert!(a["attempts"][0]["to_ms"].is_i64(), "{a}");
    assert_eq!(doc["critical_path"][0]["stream"], "Stream-A", "{doc}");
    assert_eq!(
        doc["totals"]["outcomes"][0],
        serde_json::json!(["complete", 4])
    );
    // The first run is still there, unfinished.
    let first = fake
        .env
        .run(&["report", "--run", "1", "--json"])
        .success()
        .json();
    assert!(first["ended_at"].is_null(), "{first}");
}
