//! `orchestrate merge`: dependency order, `--no-ff` merge commits, skipping merged streams,
//! refusing a dirty root or the wrong branch, and stopping at a conflict with the work tree and
//! index exactly as they were.

use orchestrate::exit_codes;
use std::collections::BTreeMap;
use std::path::Path;

use crate::support::TestEnv;

/// The diamond, complete, with a branch per stream holding one file each (Z on B + C).
/// `clash` makes B and C write different contents to the same file.
pub fn diamond_branches(clash: bool) -> TestEnv {
    let mut env = TestEnv::new();
    env.diamond();
    for s in ["Stream-A", "Stream-B", "Stream-C", "Stream-Z"] {
        env.set_stream_status_all(s);
    }
    let commit = |env: &TestEnv, file: &str, content: &str| {
        std::fs::write(env.root.join(file), content).unwrap();
        env.git(&["add", file]);
        env.git(&["commit", "-q", "-m", &format!("add {file}")]);
    };
    env.git(&["switch", "-q", "-c", "stream/Stream-A"]);
    commit(&env, "a.txt", "A\n");
    env.git(&["switch", "-q", "-c", "stream/Stream-B"]);
    commit(&env, "b.txt", "B\n");
    if clash {
        commit(&env, "shared.txt", "B's version\n");
    }
    env.git(&["switch", "-q", "-c", "stream/Stream-C", "stream/Stream-A"]);
    commit(&env, "c.txt", "C\n");
    if clash {
        commit(&env, "shared.txt", "C's version\n");
    }
    if !clash {
        env.git(&["switch", "-q", "-c", "stream/Stream-Z", "stream/Stream-B"]);
        env.git(&["merge", "-q", "--no-edit", "stream/Stream-C"]);
        commit(&env, "z.txt", "Z\n");
    }
    env.git(&["switch", "-q", "main"]);
    env
}

trait CompleteStreams {
    fn set_stream_status_all(&self, stream: &str);
}

impl CompleteStreams for TestEnv {
    fn set_stream_status_all(&self, stream: &str) {
        self.set_stream_status(stream, "completed");
    }
}

/// Every file under `dir` (but `.git/objects`, `.git/logs`) with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let path = e.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            // `.git/orchestrate`: `merge`'s own lock and log.
            if rel.starts_with(".git/objects")
                || rel.starts_with(".git/logs")
                || rel.starts_with(".git/orchestrate")
            {
                continue;
            }
            if e.file_type().unwrap().is_dir() {
                walk(root, &path, out);
            } else {
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn merges_complete_streams_in_dependency_order() {
    let env = diamond_branches(false);
    let objects = env.git(&["count-objects"]);
    let preview = env.run(&["merge", "--dry-run"]).success().stdout();
    assert_eq!(
        env.git(&["count-objects"]),
        objects,
        "the preview is made in memory"
    );
    assert!(preview.contains("Merge-back into main"), "{preview}");
    assert!(
        preview.contains("1. Stream-A (stream/Stream-A) 1 commit ahead of main: merges cleanly")
    );
    assert_eq!(
        env.git(&["rev-parse", "HEAD"]),
        env.git(&["rev-parse", "main"])
    );
    let before = env.git(&["rev-parse", "main"]);
    assert_eq!(
        env.git(&["log", "-1", "--format=%H"]).trim(),
        before.trim(),
        "dry run moved nothing"
    );

    let run = env.run(&["merge"]).success();
    let out = run.stdout();
    assert!(out.contains("merged Stream-A"), "{out}");
    let subjects = env.git(&["log", "--first-parent", "--format=%s", "main"]);
    let subjects: Vec<&str> = subjects.lines().collect();
    assert_eq!(
        subjects,
        [
            "Merge stream Stream-Z: Stream-Z work",
            "Merge stream Stream-C: Stream-C work",
            "Merge stream Stream-B: Stream-B work",
            "Merge stream Stream-A: Stream-A work",
            "initial",
        ]
    );
    // --no-ff: every merge commit has two parents.
    let parents = env.git(&["log", "--first-parent", "--format=%P", "-4", "main"]);
    assert!(
        parents.lines().all(|l| l.split(' ').count() == 2),
        "{parents}"
    );
    for f in ["a.txt", "b.txt", "c.txt", "z.txt"] {
        assert!(env.root.join(f).exists(), "{f}");
    }
    assert_eq!(env.git(&["status", "--porcelain"]), "");

    let again = env.run(&["merge"]).success().stdout();
    assert!(
        again.contains("skipped Stream-A (stream/Stream-A): already merged"),
        "{again}"
    );
    assert!(again.contains("nothing to merge into main"), "{again}");
}

#[test]
fn stops_at_a_conflict_with_the_tree_and_index_unchanged() {
    let env = diamond_branches(true);
    let preview = env.run(&["merge", "--dry-run"]).success().stdout();
    assert!(
        preview.contains("Stream-C (stream/Stream-C) 3 commits ahead of main: conflicts in 1 file"),
        "{preview}"
    );
    assert!(preview.contains("conflict: shared.txt"), "{preview}");

    env.run(&["merge", "Stream-A", "Stream-B"]).success();
    std::fs::write(env.root.join("untracked-note.txt"), "mine\n").unwrap();
    let before = snapshot(&env.root);
    let head = env.git(&["rev-parse", "HEAD"]);

    let run = env.run(&["merge"]).expect_code(exit_codes::REFUSED);
    let err = run.stderr();
    assert!(
        err.contains("Stream-C") && err.contains("shared.txt"),
        "{err}"
    );
    assert_eq!(env.git(&["rev-parse", "HEAD"]), head);
    assert_eq!(
        snapshot(&env.root),
        before,
        "work tree, index and refs unchanged"
    );
}

/// A dirty checkout and a target not checked out are in `safety::queue`; what still refuses:
/// a merge of the user's own in progress (finishing it after the target moved would commit its
/// old files over the merges), and an unknown stream.
#[test]
fn refuses_a_merge_in_progress_and_an_unknown_stream() {
    let env = diamond_branches(false);

    // A merge of the user's own in progress.
    env.git(&["switch", "-q", "-c", "side", "main"]);
    std::fs::write(env.root.join("README.md"), "side\n").unwrap();
    env.git(&["commit", "-q", "-am", "side"]);
    env.git(&["switch", "-q", "main"]);
    std::fs::write(env.root.join("README.md"), "main\n").unwrap();
    env.git(&["commit", "-q", "-am", "main"]);
    let mut cmd = std::process::Command::new("git");
    env.apply_env(&mut cmd);
    let conflicted = cmd
        .current_dir(&env.root)
        .args(["merge", "-q", "side"])
        .output()
        .unwrap();
    assert!(!conflicted.status.success());
    let err = env
        .run(&["merge"])
        .expect_code(exit_codes::FAILURE)
        .stderr();
    assert!(err.contains("in the middle of a merge"), "{err}");
    env.git(&["merge", "--abort"]);

    let err = env
        .run(&["merge", "Stream-Nope"])
        .expect_code(exit_codes::NO_STREAMS)
        .stderr();
    assert!(err.contains("Stream-Nope"), "{err}");
}

#[test]
fn incomplete_streams_are_not_merged() {
    let env = diamond_branches(false);
    env.set_stream_status("Stream-Z", "in_progress");
    let out = env.run(&["merge"]).success().stdout();
    assert!(
        out.contains("skipped Stream-Z (stream/Stream-Z): not complete"),
        "{out}"
    );
    assert!(!env.root.join("z.txt").exists());
}

#[test]
fn a_merge_after_a_preview_on_the_same_handle_is_written_to_disk() {
    let env = diamond_branches(false);
    let g = crate::worktrees::graph(&env);
    let repo = orchestrate::git::repo::Repo::open(&env.root).unwrap();
    let streams: Vec<_> = g.streams().iter().collect();
    let complete = |s: &orchestrate::graph::Stream| s.record.counts.is_complete();
    let plan = orchestrate::git::preview::plan(&repo, "main", &streams, complete).unwrap();
    assert_eq!(plan.to_merge().count(), 4);
    let opts = orchestrate::merge_queue::Options {
        target: "main",
        verify: None,
        step: false,
    };
    let report = orchestrate::merge_queue::run(&repo, &streams, complete, &opts).unwrap();
    assert_eq!(report.steps.len(), 4);
    assert_eq!(report.landed, 4);
    env.git(&["fsck", "--no-progress", "--connectivity-only"]);
    assert_eq!(env.git(&["status", "--porcelain"]), "");
}
