//! A worktree whose admin folder `.git/worktrees/<name>` was deleted (by hand, by a tool): its
//! folder still holds the worker's uncommitted work, but git no longer knows it. The stream
//! needs attention (its dependents wait: they would start without that work), `clean
//! --dry-run` and `doctor` show it, and `clean` re-registers it without touching its files.

use orchestrate::config::Config;
use orchestrate::exit_codes;

use crate::start::Fake;
use crate::support::TestEnv;
use crate::worktrees::{graph, prepare, workspaces};

/// A (complete) with its worktree holding uncommitted `wip.txt`, its admin folder deleted;
/// Z depends on A.
fn orphaned() -> (TestEnv, std::path::PathBuf) {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "completed");
    env.add_stream("Stream-Z", &["Stream-A"], 1, "pending");
    let g = graph(&env);
    let mut ws = workspaces(&env, Config::default());
    let a = prepare(&mut ws, &g, "Stream-A");
    std::fs::write(a.dir.join("wip.txt"), "the worker's unsaved work\n").unwrap();
    std::fs::remove_dir_all(env.root.join(".git/worktrees/Stream-A")).unwrap();
    (env, a.dir)
}

fn state_of(env: &TestEnv, stream: &str) -> String {
    let doc = env.run(&["status", "--json"]).success().json();
    let s = doc["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == stream)
        .unwrap_or_else(|| panic!("no {stream} in {doc}"))
        .clone();
    s["state"].as_str().unwrap().to_string()
}

#[test]
fn an_orphaned_worktree_needs_attention_and_its_dependents_wait() {
    let (env, wt) = orphaned();
    assert_eq!(state_of(&env, "Stream-A"), "needs_attention");
    assert_eq!(state_of(&env, "Stream-Z"), "waiting");
    let fake = Fake::new(env);
    let run = fake.run(&["start", "--worktrees", "--stagger", "0"]);
    assert!(
        fake.lines("Stream-Z", "started").is_empty(),
        "Z started without A's work:\n{}\n{}",
        run.stdout(),
        run.stderr()
    );
    assert_ne!(run.code(), exit_codes::OK);
    assert_eq!(
        std::fs::read_to_string(wt.join("wip.txt")).unwrap(),
        "the worker's unsaved work\n"
    );
}

#[test]
fn clean_and_doctor_show_it_and_clean_re_registers_it_keeping_its_files() {
    let (env, wt) = orphaned();
    let dry = env.run(&["clean", "--dry-run"]).success().stdout();
    assert!(dry.contains(&wt.display().to_string()), "{dry}");
    assert!(dry.contains("would re-register"), "{dry}");
    assert!(
        !env.root.join(".git/worktrees/Stream-A").exists(),
        "dry run"
    );
    let doctor = env.run(&["doctor"]).stdout();
    assert!(
        doctor.contains(&wt.display().to_string()) && doctor.contains("orchestrate clean"),
        "{doctor}"
    );

    // --force too: an orphan is never removed, only re-registered.
    let out = env.run(&["clean", "--force"]).success().stdout();
    assert!(out.contains("re-registered"), "{out}");
    assert_eq!(
        std::fs::read_to_string(wt.join("wip.txt")).unwrap(),
        "the worker's unsaved work\n"
    );
    let list = env.git(&["worktree", "list", "--porcelain"]);
    assert!(list.contains(&wt.display().to_string()), "{list}");
    assert!(list.contains("branch refs/heads/stream/Stream-A"), "{list}");
    assert_eq!(env.git_in(&wt, &["status", "--porcelain"]), "?? wip.txt\n");
    // Its work is still not on its branch: it needs attention (now as uncommitted changes).
    assert_eq!(state_of(&env, "Stream-A"), "needs_attention");
    assert_eq!(state_of(&env, "Stream-Z"), "waiting");
}
