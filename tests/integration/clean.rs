//! `orchestrate clean`: refuses dirty, unmerged and live-locked worktrees (with reasons and the
//! overriding command), removes merged clean ones, prunes stale metadata, and with
//! `--branches --force` leaves `git worktree list` and `git branch` as before the run.

use orchestrate::config::Config;
use orchestrate::workspace::Workspaces;

use crate::support::TestEnv;
use crate::worktrees::{commit_file, graph, prepare, workspaces};

/// A: merged and clean; B: a commit main lacks; C: an untracked file.
fn three_worktrees() -> TestEnv {
    let mut env = TestEnv::new();
    env.diamond();
    let g = graph(&env);
    let mut ws = workspaces(&env, Config::default());
    prepare(&mut ws, &g, "Stream-A");
    let b = prepare(&mut ws, &g, "Stream-B");
    commit_file(&env, &b.dir, "b.txt", "B\n");
    let c = prepare(&mut ws, &g, "Stream-C");
    std::fs::write(c.dir.join("scratch.txt"), "user work\n").unwrap();
    env
}

fn worktree_list(env: &TestEnv) -> String {
    env.git(&["worktree", "list", "--porcelain"])
}

/// The worktree paths and branches (HEADs move with merges).
fn worktrees(env: &TestEnv) -> Vec<String> {
    worktree_list(env)
        .lines()
        .filter(|l| !l.starts_with("HEAD "))
        .map(str::to_string)
        .collect()
}

#[test]
fn keeps_dirty_and_unmerged_worktrees_and_removes_merged_clean_ones() {
    let env = three_worktrees();
    let wts = env.root.join(".claude/worktrees");

    let dry = env.run(&["clean", "--dry-run"]).success().stdout();
    assert!(
        dry.contains("would remove worktree") && dry.contains("Stream-A"),
        "{dry}"
    );
    assert!(wts.join("Stream-A").exists(), "dry run removed nothing");

    let out = env.run(&["clean"]).success().stdout();
    assert!(
        out.contains(&format!(
            "removed worktree {}",
            wts.join("Stream-A").display()
        )),
        "{out}"
    );
    assert!(!wts.join("Stream-A").exists());
    assert!(
        out.contains("branch stream/Stream-B has 1 commit(s) not in main"),
        "{out}"
    );
    assert!(
        out.contains("1 uncommitted or untracked file(s): scratch.txt"),
        "{out}"
    );
    assert!(
        out.contains("to remove it anyway: orchestrate clean --force Stream-C"),
        "{out}"
    );
    assert!(out.contains("freed"), "{out}");
    assert!(wts.join("Stream-B/b.txt").exists());
    assert_eq!(
        std::fs::read_to_string(wts.join("Stream-C/scratch.txt")).unwrap(),
        "user work\n"
    );
    // Branches stay without --branches.
    assert!(
        env.git(&["branch", "--list", "stream/Stream-A"])
            .contains("Stream-A")
    );

    let out = env.run(&["clean", "--branches"]).success().stdout();
    assert!(out.contains("deleted branch stream/Stream-A"), "{out}");
    assert!(!out.contains("deleted branch stream/Stream-B"), "{out}");
}

#[test]
fn force_with_branches_restores_the_repository_as_before() {
    let env = three_worktrees();
    let out = env
        .run(&["clean", "--force", "--branches"])
        .success()
        .stdout();
    assert!(out.contains("deleted branch stream/Stream-B"), "{out}");
    assert_eq!(
        worktree_list(&env).matches("worktree ").count(),
        1,
        "{}",
        worktree_list(&env)
    );
    assert_eq!(env.git(&["branch", "--format=%(refname:short)"]), "main\n");
    assert_eq!(env.git(&["status", "--porcelain"]), "");
}

#[test]
fn stale_metadata_is_pruned_and_live_locks_are_respected() {
    let env = three_worktrees();
    let g = graph(&env);
    let mut ws = workspaces(&env, Config::default());
    let a = prepare(&mut ws, &g, "Stream-A");
    // Locked by a live worker: this test process.
    ws.worker_started("Stream-A", &a, std::process::id());
    let out = env.run(&["clean", "Stream-A"]).success().stdout();
    assert!(out.contains("locked by a live worker"), "{out}");
    assert!(out.contains("orchestrate stop Stream-A"), "{out}");
    assert!(a.dir.exists());
    ws.worker_finished("Stream-A", &a);

    std::fs::remove_dir_all(env.root.join(".claude/worktrees/Stream-C")).unwrap();
    assert!(worktree_list(&env).contains("prunable"));
    let out = env.run(&["clean", "Stream-C"]).success().stdout();
    assert!(
        out.contains("pruned stale worktree metadata Stream-C"),
        "{out}"
    );
    assert!(!worktree_list(&env).contains("prunable"));
    assert!(
        env.root.join(".claude/worktrees/Stream-B").exists(),
        "only the named stream"
    );
}

/// The "done when", without the scheduler: the diamond on a repository with a few
/// hundred files, each stream committing on its own branch, Z based on A+B+C, clean hints,
/// `merge` bringing everything home, and `clean --branches` restoring worktrees and branches.
#[test]
fn full_round_trip_leaves_worktrees_and_branches_as_before() {
    let mut env = TestEnv::new();
    for i in 0..300 {
        let dir = env.root.join(format!("src/m{}", i % 10));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("f{i}.txt")), format!("file {i}\n")).unwrap();
    }
    env.git(&["add", "src"]);
    env.git(&["commit", "-q", "-m", "a few hundred files"]);
    env.diamond();
    let worktrees_before = worktrees(&env);
    let branches_before = env.git(&["branch", "--format=%(refname:short)"]);

    let mut ws = workspaces(&env, Config::default());
    for (id, file) in [
        ("Stream-A", "a.txt"),
        ("Stream-B", "b.txt"),
        ("Stream-C", "c.txt"),
        ("Stream-Z", "z.txt"),
    ] {
        let g = graph(&env);
        let p = prepare(&mut ws, &g, id);
        if id == "Stream-Z" {
            for f in ["a.txt", "b.txt", "c.txt"] {
                assert!(p.dir.join(f).exists(), "Z's base lacks {f}");
            }
        }
        ws.worker_started(id, &p, std::process::id());
        commit_file(&env, &p.dir, file, id);
        // A worker that forgot to commit its last change.
        std::fs::write(p.dir.join(format!("late-{file}")), "late\n").unwrap();
        let done = ws.worker_finished(id, &p);
        assert!(
            done.notes.iter().any(|n| n.starts_with("committed")),
            "{done:?}"
        );
        env.set_stream_status(id, "completed");
    }

    let g = graph(&env);
    let project = orchestrate::project::Project {
        root: env.root.clone(),
    };
    let plan = orchestrate::git::hints(&project, &g, None).unwrap();
    assert_eq!(plan.target, "main");
    assert!(
        plan.streams
            .iter()
            .all(|s| s.preview == orchestrate::git::MergePreview::Clean),
        "{plan:?}"
    );
    let text =
        orchestrate::ui::mergeback::render_plan(&plan, &orchestrate::ui::Palette::new(false));
    assert_eq!(text.matches("merges cleanly").count(), 4, "{text}");

    env.run(&["merge"]).success();
    for f in [
        "a.txt",
        "b.txt",
        "c.txt",
        "z.txt",
        "late-z.txt",
        "src/m3/f3.txt",
    ] {
        assert!(env.root.join(f).exists(), "{f} not merged");
    }
    let out = env.run(&["clean", "--branches"]).success().stdout();
    assert!(!out.contains("kept"), "{out}");
    assert_eq!(worktrees(&env), worktrees_before);
    assert_eq!(
        env.git(&["branch", "--format=%(refname:short)"]),
        branches_before
    );
    assert_eq!(env.git(&["status", "--porcelain"]), "");
}

#[test]
fn streams_are_selected_by_id_even_when_their_names_were_sanitised() {
    let mut env = TestEnv::new();
    env.add_stream("api/v2 auth", &[], 1, "completed");
    env.add_stream("other", &[], 1, "completed");
    let g = graph(&env);
    let mut ws = workspaces(&env, Config::default());
    let p = prepare(&mut ws, &g, "api/v2 auth");
    let other = prepare(&mut ws, &g, "other");
    let out = env
        .run(&["clean", "--branches", "api/v2 auth"])
        .success()
        .stdout();
    assert!(out.contains("(stream api/v2 auth"), "{out}");
    assert!(!p.dir.exists());
    assert!(other.dir.exists());
    assert_eq!(
        env.git(&["branch", "--format=%(refname:short)"]),
        "main\nstream/other\n"
    );
}
