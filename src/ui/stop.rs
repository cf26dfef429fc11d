//! What `stop` did, in words.

use std::fmt::Write as _;

use super::printable as p;
use crate::worker::stop::StopReport;
use crate::worker::terminate::Ended;

pub fn render(report: &StopReport) -> String {
    let mut out = String::new();
    for (stream, pid, ended) in &report.stale {
        let pid = pid.map_or("no pid".to_string(), |p| format!("pid {p}"));
        let _ = writeln!(
            out,
            "{}: stale record ({pid} is gone or is another process now); cleaned, nothing signalled",
            p(stream)
        );
        if *ended > 0 {
            let _ = writeln!(
                out,
                "{}: ended {ended} leftover process{} of that worker (found by its marker)",
                p(stream),
                if *ended == 1 { "" } else { "es" }
            );
        }
    }
    for stream in &report.launching {
        let _ = writeln!(
            out,
            "{}: its worker is being launched right now; run `orchestrate stop {}` again",
            p(stream),
            super::shell_word(stream)
        );
    }
    for stream in &report.held {
        let _ = writeln!(
            out,
            "{}: no live worker; marked stopped, so `orchestrate start` will not launch it (`orchestrate start {}` does)",
            p(stream),
            super::shell_word(stream)
        );
    }
    for s in &report.stopped {
        let how = match s.result {
            Ended::Terminated => "",
            Ended::Killed => " with SIGKILL after the grace period",
            Ended::NotAlive => " (it had already ended)",
            Ended::Lingering => " but some of its processes are still alive",
        };
        let _ = writeln!(out, "stopped {} (pid {}){how}", p(&s.stream), s.pid);
    }
    if report.stopped.is_empty() && report.held.is_empty() {
        out.push_str("no live workers to stop");
    }
    out.trim_end().to_string()
}
