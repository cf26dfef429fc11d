//! Promise 8: all streams of a run share one recorded base (the target branch and commit when
//! the run began); the user moving HEAD in the main checkout during a run changes no stream's
//! base. And the smaller facts a worktree's preparation must say rather than hide: submodules
//! left empty, a stream branch with unrelated history, a repository with no commit.

use orchestrate::config::Config;
use orchestrate::exit_codes;
use orchestrate::project::Project;
use orchestrate::workspace::{PrepareFailure, Workspaces};

use crate::start::Fake;
use crate::support::TestEnv;
use crate::worktrees::{graph, prepare, stream, workspaces};

fn rev(env: &TestEnv, what: &str) -> String {
    env.git(&["rev-parse", what]).trim().to_string()
}

#[test]
fn switching_the_main_checkout_mid_run_changes_no_base_nor_the_target() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    env.add_stream("Stream-C", &[], 1, "pending");
    let main_tip = rev(&env, "main");
    let g = graph(&env);
    let mut ws = workspaces(&env, Config::default());
    let a = prepare(&mut ws, &g, "Stream-A");
    assert_eq!(a.base.as_deref(), Some(main_tip.as_str()));

    // The user goes to work on another branch in the main checkout.
    env.git(&["switch", "-q", "-c", "experiment"]);
    std::fs::write(env.root.join("exp.txt"), "exp\n").unwrap();
    env.git(&["add", "exp.txt"]);
    env.git(&["commit", "-q", "-m", "experiment"]);

    // A later `start` of the same run (a new process) prepares C.
    let mut later = workspaces(&env, Config::default());
    let c = prepare(&mut later, &g, "Stream-C");
    assert_eq!(c.base.as_deref(), Some(main_tip.as_str()), "{:?}", c.notes);
    assert!(!c.dir.join("exp.txt").exists());
    let project = Project {
        root: env.root.clone(),
    };
    let plan = orchestrate::git::hints(&project, &g, None).unwrap();
    assert_eq!(plan.target, "main");
}

/// Once every stream of the run is complete, the next `start` begins a new run on the
/// current HEAD (which now holds the merged work).
#[test]
fn a_new_run_begins_once_every_stream_of_the_last_is_complete() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    let g = graph(&env);
    let mut ws = workspaces(&env, Config::default());
    prepare(&mut ws, &g, "Stream-A");
    env.set_stream_status("Stream-A", "completed");
    std::fs::write(env.root.join("merged.txt"), "merged\n").unwrap();
    env.git(&["add", "merged.txt"]);
    env.git(&["commit", "-q", "-m", "merged work"]);
    env.add_stream("Stream-N", &[], 1, "pending");
    let g = graph(&env);
    let mut next = workspaces(&env, Config::default());
    let n = prepare(&mut next, &g, "Stream-N");
    assert_eq!(n.base.as_deref(), Some(rev(&env, "main").as_str()));
    assert!(n.dir.join("merged.txt").exists());
}

#[test]
fn submodules_left_empty_are_named_in_the_notes() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    let head = rev(&env, "HEAD");
    std::fs::write(
        env.root.join(".gitmodules"),
        "[submodule \"vendor/lib\"]\n\tpath = vendor/lib\n\turl = https://example.invalid/lib.git\n",
    )
    .unwrap();
    env.git(&["add", ".gitmodules"]);
    env.git(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{head},vendor/lib"),
    ]);
    env.git(&["commit", "-q", "-m", "a submodule"]);
    let g = graph(&env);
    let mut ws = workspaces(&env, Config::default());
    let a = prepare(&mut ws, &g, "Stream-A");
    assert!(
        a.notes
            .iter()
            .any(|n| n.contains("submodule") && n.contains("vendor/lib")),
        "{:?}",
        a.notes
    );
}

#[test]
fn a_stream_branch_with_unrelated_history_is_refused_with_the_facts() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    env.git(&["switch", "-q", "--orphan", "stream/Stream-A"]);
    std::fs::write(env.root.join("other.txt"), "another project\n").unwrap();
    env.git(&["add", "other.txt"]);
    env.git(&["commit", "-q", "-m", "another project's history"]);
    env.git(&["switch", "-q", "main"]);
    let g = graph(&env);
    let mut ws = workspaces(&env, Config::default());
    let err = ws.prepare(stream(&g, "Stream-A"), &g).unwrap_err();
    let text = format!("{err:?}");
    assert!(
        matches!(&err, PrepareFailure::Blocked(_)) && text.contains("UnrelatedBranch"),
        "expected an unrelated-branch block, got {text}"
    );
    assert!(text.contains("stream/Stream-A"), "{text}");
    assert!(!env.root.join(".claude/worktrees/Stream-A").exists());
}

#[test]
fn a_repository_without_a_commit_gets_a_clear_error_and_hint() {
    let mut env = TestEnv::new();
    std::fs::remove_dir_all(env.root.join(".git")).unwrap();
    env.git(&["init", "-q", "-b", "main"]);
    env.add_stream("Stream-A", &[], 1, "pending");
    let fake = Fake::new(env);
    let run = fake.run(&["start", "--worktrees", "--stagger", "0"]);
    let all = format!("{}\n{}", run.stdout(), run.stderr());
    assert_ne!(run.code(), exit_codes::OK, "{all}");
    assert!(!all.contains("UnbornBranch"), "{all}");
    assert!(all.contains("no commit"), "{all}");
    assert!(all.contains("git commit"), "{all}");
}
