//! The live views on a real terminal: tmux runs `orchestrate` in a pseudo-terminal 80 columns
//! wide, `capture-pane` reads the screen, `pipe-pane` records every byte written to it.
//!
//! Needs tmux (Debian's `tmux`; `.ci/run` installs it). Without it these tests say so and pass,
//! except under CI, where a missing tmux is a failure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::start::{Fake, LONG};

/// Says something in the test's output (shown with `--nocapture`): a skip, or what was measured.
#[expect(
    clippy::print_stderr,
    reason = "a test reports what it measured or skipped"
)]
fn say(text: &str) {
    eprintln!("{text}");
}
use crate::support::{TestEnv, wait_for};

const COLUMNS: usize = 80;

/// A private tmux server (its own socket folder), killed when dropped.
struct Tmux {
    dir: PathBuf,
}

static SERVERS: AtomicU64 = AtomicU64::new(0);

impl Tmux {
    /// A server in `dir`, or `None` (said on stderr) when tmux is not installed.
    fn new(dir: &Path) -> Option<Self> {
        let installed = Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        if !installed {
            assert!(
                std::env::var_os("CI").is_none(),
                "tmux is not installed: .ci/run installs it for the terminal tests"
            );
            say("skipped: tmux is not installed (apt-get install tmux), so no real terminal");
            return None;
        }
        let dir = dir.join(format!("tmux-{}", SERVERS.fetch_add(1, Ordering::Relaxed)));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("tmux.conf"), "set -g remain-on-exit on\n").unwrap();
        Some(Self { dir })
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("TMUX_TMPDIR", &self.dir)
            .env("TERM", "xterm-256color")
            .args(["-L", "test", "-f"])
            .arg(self.dir.join("tmux.conf"))
            .args(args)
            .output()
            .expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Opens window `name` (`COLUMNS` × 40) running `args` with `cmd`'s environment (less
    /// `TERM`: tmux sets its own) plus `extra`. The program starts once [`Tmux::go`] is called,
    /// so that a recording can be set up first.
    fn open(&self, name: &str, cmd: &Command, extra: &[(&str, &str)], args: &[&str]) {
        let q = orchestrate::cmdline::quote;
        let mut script = String::from("#!/bin/sh\n");
        for (key, value) in cmd.get_envs() {
            let (Some(value), Some(key)) = (value, key.to_str()) else {
                continue;
            };
            if key != "TERM" {
                script.push_str(&format!("export {key}={}\n", q(&value.to_string_lossy())));
            }
        }
        for (key, value) in extra {
            script.push_str(&format!("export {key}={}\n", q(value)));
        }
        let dir = cmd.get_current_dir().expect("the project root");
        let go = self.dir.join(format!("{name}.go"));
        script.push_str(&format!(
            "cd {}\nwhile [ ! -e {} ]; do sleep 0.01; done\nexec {}",
            q(&dir.to_string_lossy()),
            q(&go.to_string_lossy()),
            q(&cmd.get_program().to_string_lossy())
        ));
        for arg in args {
            script.push_str(&format!(" {}", q(arg)));
        }
        script.push('\n');
        let path = self.dir.join(format!("{name}.sh"));
        std::fs::write(&path, script).unwrap();
        let columns = COLUMNS.to_string();
        self.tmux(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            &columns,
            "-y",
            "40",
            "sh",
            path.to_str().unwrap(),
        ]);
    }

    /// Records every byte the program in `name` writes, from now on; returns the file.
    fn record(&self, name: &str) -> PathBuf {
        let file = self.dir.join(format!("{name}.bytes"));
        std::fs::write(&file, "").unwrap();
        self.tmux(&[
            "pipe-pane",
            "-o",
            "-t",
            name,
            &format!("cat >> '{}'", file.display()),
        ]);
        file
    }

    /// Lets the program in `name` start.
    fn go(&self, name: &str) {
        std::fs::write(self.dir.join(format!("{name}.go")), "").unwrap();
    }

    /// The screen of `name`, wrapped lines joined (so a wrapped row shows as a long line).
    fn screen(&self, name: &str) -> String {
        self.tmux(&["capture-pane", "-p", "-J", "-t", name])
    }

    fn keys(&self, name: &str, keys: &str) {
        self.tmux(&["send-keys", "-t", name, keys]);
    }

    fn ended(&self, name: &str) -> bool {
        self.tmux(&["display-message", "-p", "-t", name, "#{pane_dead}"])
            .trim()
            == "1"
    }

    fn wait_screen(&self, name: &str, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let mut screen = String::new();
        let deadline = Instant::now() + LONG;
        while !cond(&screen) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what} in {name}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(10));
            screen = self.screen(name);
        }
        screen
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .env("TMUX_TMPDIR", &self.dir)
            .args(["-L", "test", "kill-server"])
            .output();
    }
}

/// The totals of one frame, as read off the screen.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Frame {
    rows: usize,
    running: usize,
    complete: usize,
}

const STATES: [&str; 15] = [
    "running",
    "verifying",
    "preparing",
    "cancelled",
    "needs attention",
    "complete",
    "failed",
    "stopped",
    "paused",
    "parked",
    "skipped",
    "waiting",
    "blocked",
    "budget reached",
    "ready",
];

/// Checks the last frame on a screen: none of its lines is wider than the terminal (`screen`
/// has wrapped lines joined), and its overall line agrees with its rows. `None` when no frame
/// is on the screen. (Event lines above a frame are plain text, free to wrap.)
fn check_screen(screen: &str) -> Result<Option<Frame>, String> {
    let lines: Vec<&str> = screen.lines().collect();
    let Some(at) = lines.iter().rposition(|l| l.starts_with("overall: ")) else {
        return Ok(None);
    };
    // The frame: its source line, the overall line and what follows.
    for line in &lines[at.saturating_sub(1)..] {
        if console::measure_text_width(line) > COLUMNS {
            return Err(format!("a line of the frame wrapped: {line:?}"));
        }
    }
    let number = |text: &str| {
        text.trim()
            .parse::<usize>()
            .map_err(|e| format!("{text:?}: {e}"))
    };
    let overall = lines[at];
    let parts: Vec<&str> = overall
        .trim_start_matches("overall: ")
        .split(" · ")
        .collect();
    let (done, total) = parts[0]
        .split_once(" tasks done")
        .and_then(|(t, _)| t.split_once('/'))
        .ok_or(format!("overall line {overall:?}"))?;
    let (complete, streams) = parts
        .get(1)
        .and_then(|p| p.strip_suffix(" streams complete"))
        .and_then(|p| p.split_once('/'))
        .ok_or(format!("overall line {overall:?}"))?;
    let running = parts
        .iter()
        .find_map(|p| p.strip_suffix(" running"))
        .map_or(Ok(0), number)?;
    let mut frame = Frame::default();
    let (mut sum_done, mut sum_total) = (0, 0);
    for line in &lines[at + 1..] {
        let Some(row) = line.strip_prefix("  ") else {
            continue;
        };
        if row.starts_with("STREAM") || row.starts_with(' ') || row.is_empty() {
            continue;
        }
        let Some((_, rest)) = row.split_once("  ") else {
            continue;
        };
        let rest = rest.trim_start();
        let state = STATES
            .iter()
            .find(|s| rest.starts_with(*s))
            .ok_or(format!("no state in row {line:?}"))?;
        let tasks = rest[state.len()..]
            .split_whitespace()
            .nth(1)
            .ok_or(format!("no tasks in row {line:?}"))?;
        let (d, t) = tasks.split_once('/').ok_or(format!("row {line:?}"))?;
        sum_done += number(d)?;
        sum_total += number(t)?;
        frame.rows += 1;
        match *state {
            "running" | "preparing" => frame.running += 1,
            "complete" => frame.complete += 1,
            _ => {}
        }
    }
    let agree = frame.rows == number(streams)?
        && frame.complete == number(complete)?
        && frame.running == running
        && sum_done == number(done)?
        && sum_total == number(total)?;
    if !agree {
        return Err(format!(
            "the overall line disagrees with the rows ({frame:?}, tasks {sum_done}/{sum_total}):\n{}",
            lines[at..].join("\n")
        ));
    }
    Ok(Some(frame))
}

fn diamond(sleep: &str) -> Fake {
    let mut env = TestEnv::new();
    env.diamond();
    let mut fake = Fake::new(env);
    fake.set("SLEEP", None, sleep);
    fake
}

const UTF8: (&str, &str) = ("LANG", "C.UTF-8");

#[test]
fn start_and_status_watch_fit_80_columns_and_every_frame_agrees_with_itself() {
    let fake = diamond("0.5");
    let Some(tmux) = Tmux::new(fake.env.tmp.path()) else {
        return;
    };
    tmux.open(
        "watch",
        &fake.cmd(&[]),
        &[UTF8],
        &["status", "--watch", "60"],
    );
    let watch_bytes = tmux.record("watch");
    tmux.go("watch");
    tmux.wait_screen("watch", "the first frame", |s| {
        s.contains("0/4 streams complete")
    });
    tmux.open(
        "start",
        &fake.cmd(&[]),
        &[UTF8],
        &["start", "--stagger", "0"],
    );
    tmux.go("start");
    let (mut frames, mut running_frames, mut captures) = (0, 0, 0);
    let deadline = Instant::now() + LONG;
    while !tmux.ended("start") {
        assert!(Instant::now() < deadline, "start did not end");
        for name in ["watch", "start"] {
            let screen = tmux.screen(name);
            captures += 1;
            match check_screen(&screen) {
                Ok(Some(frame)) => {
                    frames += 1;
                    running_frames += usize::from(frame.running > 0);
                }
                Ok(None) => {}
                Err(e) => panic!("{name}: {e}\n--- screen\n{screen}"),
            }
        }
    }
    assert!(
        running_frames >= 2,
        "too few frames caught during the run ({frames} of {captures} captures)"
    );
    say(&format!(
        "{captures} captures, {frames} frames, {running_frames} while running: all agree"
    ));
    // The watch ends on the finished run; start's area is gone, its summary stays.
    let end = tmux.wait_screen("watch", "the last frame", |s| {
        s.contains("4/4 streams complete")
    });
    check_screen(&end).unwrap();
    assert!(end.contains("████████████"), "Unicode bars: {end}");
    let start = tmux.screen("start");
    assert!(start.contains("every stream is complete"), "{start}");
    assert_eq!(
        check_screen(&start),
        Ok(None),
        "a frame was left behind:\n{start}"
    );
    tmux.keys("watch", "C-c");
    wait_for("the watch to end", LONG, || tmux.ended("watch"));
    let last = tmux.screen("watch");
    assert!(
        last.contains("4/4 streams complete"),
        "the last frame stays: {last}"
    );
    // …and ends with a line break: nothing printed after it lands on its last row. (The
    // recording lags the screen a little.)
    wait_for("the watch's output to end with a line break", LONG, || {
        std::fs::read(&watch_bytes).unwrap().ends_with(b"\n")
    });
}

#[test]
fn nothing_is_written_while_nothing_changes_and_ctrl_c_leaves_no_stale_line() {
    let mut fake = diamond("0");
    let go = fake.markers.join("go");
    fake.set("WAIT_FOR", Some("Stream-A"), go.to_str().unwrap());
    let Some(tmux) = Tmux::new(fake.env.tmp.path()) else {
        return;
    };
    // A measuring window, not synchronisation: how many bytes a view writes in `secs`.
    let measure = |file: &Path, secs: u64| {
        let before = std::fs::metadata(file).unwrap().len();
        std::thread::sleep(Duration::from_secs(secs));
        std::fs::metadata(file).unwrap().len() - before
    };
    // Nothing runs: not a byte.
    tmux.open(
        "idle",
        &fake.cmd(&[]),
        &[UTF8],
        &["status", "--watch", "60"],
    );
    let idle = tmux.record("idle");
    tmux.go("idle");
    // The recording lags the screen: wait until the whole frame (up to its last row's end)
    // is in the file.
    wait_for("the first frame to be recorded", LONG, || {
        let bytes = String::from_utf8_lossy(&std::fs::read(&idle).unwrap()).into_owned();
        bytes
            .split_once("  Stream-Z ")
            .is_some_and(|(_, last)| last.contains("\u{1b}[K"))
    });
    let frame_bytes = std::fs::metadata(&idle).unwrap().len();
    let quiet = measure(&idle, 2);
    assert_eq!(
        quiet, 0,
        "status --watch wrote {quiet} bytes while nothing changed"
    );

    // A worker runs (its runtime moves each second): at most a frame a second.
    tmux.open(
        "start",
        &fake.cmd(&[]),
        &[UTF8],
        &["start", "--stagger", "0"],
    );
    tmux.go("start");
    tmux.wait_screen("idle", "Stream-A running", |s| s.contains("1 running"));
    tmux.wait_screen("start", "start's frame", |s| s.contains("pid "));
    // Not synchronisation: the measuring window starts a moment after the first frames that
    // showed the worker (they are a change, not the runtime ticking).
    std::thread::sleep(Duration::from_millis(300));
    let busy = measure(&idle, 3);
    say(&format!(
        "status --watch: a frame is {frame_bytes} bytes; 0 bytes in 2 s idle; {busy} bytes in 3 s with a worker's runtime moving"
    ));
    assert!(
        busy <= 4 * frame_bytes.max(1500),
        "{busy} bytes in 3 s: more than a frame a second"
    );

    // Ctrl-C on start: its area is cleared, no stale row, no stale overall line.
    tmux.keys("start", "C-c");
    let screen = tmux.wait_screen("start", "the interrupted summary", |s| {
        s.contains("keeps running")
    });
    assert!(
        !screen.contains("overall:") && !screen.contains("  Stream-A "),
        "a stale line was left:\n{screen}"
    );
    wait_for("start to end", LONG, || tmux.ended("start"));
    fake.run(&["stop"]).success();
}

#[test]
fn a_one_shot_status_on_a_terminal_is_written_once_and_fitted() {
    let mut env = TestEnv::new();
    env.add_stream(
        "Stream-With-A-Rather-Long-Name-For-The-Column",
        &[],
        3,
        "pending",
    );
    env.add_stream(
        "Stream-B",
        &["Stream-With-A-Rather-Long-Name-For-The-Column"],
        2,
        "pending",
    );
    let fake = Fake::new(env);
    let Some(tmux) = Tmux::new(fake.env.tmp.path()) else {
        return;
    };
    for (name, extra, bar) in [
        ("unicode", vec![UTF8], "░░░░░░░░░░░░"),
        ("ascii", vec![], "[----------]"),
    ] {
        tmux.open(name, &fake.cmd(&[]), &extra, &["status"]);
        let file = tmux.record(name);
        tmux.go(name);
        wait_for("status to end", LONG, || tmux.ended(name));
        let screen = tmux.screen(name);
        check_screen(&screen).unwrap_or_else(|e| panic!("{e}\n{screen}"));
        assert!(screen.contains(bar), "{name}: {screen}");
        assert!(screen.contains('…'), "the note is cut to fit: {screen}");
        let bytes = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
        assert_eq!(
            bytes.matches("overall:").count(),
            1,
            "drawn once: {bytes:?}"
        );
        assert!(
            !bytes.contains("\u{1b}[1A") && !bytes.contains("\u{1b}[2K"),
            "no redraws: {bytes:?}"
        );
    }
}

#[test]
fn logs_raw_on_a_terminal_is_escaped() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    let mut fake = Fake::new(env);
    fake.set("SAY", None, "evil \u{1b}]0;pwned\u{7}\u{1b}[2J done");
    fake.run(&["start"]).success();
    let Some(tmux) = Tmux::new(fake.env.tmp.path()) else {
        return;
    };
    tmux.open("raw", &fake.cmd(&[]), &[], &["logs", "--raw", "Stream-A"]);
    let file = tmux.record("raw");
    tmux.go("raw");
    wait_for("logs to end", LONG, || tmux.ended("raw"));
    let bytes = std::fs::read(&file).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("evil \\u{1b}]0;pwned\\u{7}"), "{text:?}");
    assert!(
        !bytes.iter().any(|&b| b == 0x1b || b == 0x07),
        "raw control bytes reached the terminal: {text:?}"
    );
}
