//! Warm caches: a folder listed in `.worktreeinclude` (`target/`) comes into a new worktree
//! whole, cloned where the file system can and copied with its holes elsewhere, links kept as
//! links, and every containment rule of promise 6 holding for every file in it.

use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::Path;

use orchestrate::config::Config;
use orchestrate::git::beneath::CopyMode;
use orchestrate::workspace::Workspaces;

use crate::support::TestEnv;
use crate::worktrees::{commit_file, graph, prepare, workspaces};

/// Streams A and B (B after A); `target/` ignored and included, and in it: nested files, an
/// executable, a 64 MiB sparse file, a link inside (kept), links outside (relative and
/// absolute: never followed) and a folder `outside-dir` beside the project they point to.
fn with_target() -> TestEnv {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    env.add_stream("Stream-B", &["Stream-A"], 1, "pending");
    std::fs::write(env.root.join(".gitignore"), "target/\n").unwrap();
    std::fs::write(env.root.join(".worktreeinclude"), "target/\n").unwrap();
    env.git(&["add", ".gitignore", ".worktreeinclude"]);
    env.git(&["commit", "-q", "-m", "rules"]);
    let t = env.root.join("target");
    for i in 0..50 {
        let dir = t.join(format!("debug/deps/d{}", i % 5));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("lib{i}.rlib")), vec![i as u8; 1000 + i]).unwrap();
    }
    std::fs::write(t.join("debug/app"), b"\x7fELF pretend").unwrap();
    std::fs::set_permissions(t.join("debug/app"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let sparse = std::fs::File::create(t.join("debug/incremental.bin")).unwrap();
    sparse.set_len(64 << 20).unwrap();
    sparse.write_all_at(b"head", 0).unwrap();
    sparse.write_all_at(b"tail", (64 << 20) - 4).unwrap();
    std::os::unix::fs::symlink("debug", t.join("latest")).unwrap();
    let outside = env.tmp.path().join("outside-dir");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), "the user's\n").unwrap();
    std::os::unix::fs::symlink("../../outside-dir", t.join("climb")).unwrap();
    std::os::unix::fs::symlink(&outside, t.join("debug/abs")).unwrap();
    env
}

#[test]
fn a_folder_include_comes_whole_with_holes_and_inside_links() {
    let env = with_target();
    let g = graph(&env);
    let mut ws = workspaces(&env, Config::default());
    let a = prepare(&mut ws, &g, "Stream-A");
    let (src, dst) = (env.root.join("target"), a.dir.join("target"));
    for i in 0..50 {
        let rel = format!("debug/deps/d{}/lib{i}.rlib", i % 5);
        assert_eq!(
            std::fs::read(dst.join(&rel)).unwrap(),
            std::fs::read(src.join(&rel)).unwrap()
        );
    }
    let mode = std::fs::metadata(dst.join("debug/app"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755, "the exec bit is kept");
    let (s, d) = (
        std::fs::metadata(src.join("debug/incremental.bin")).unwrap(),
        std::fs::metadata(dst.join("debug/incremental.bin")).unwrap(),
    );
    assert_eq!(d.len(), 64 << 20);
    assert!(
        d.blocks() <= s.blocks() + 16,
        "sparse: {} blocks in the copy, {} in the source",
        d.blocks(),
        s.blocks()
    );
    let copy = std::fs::File::open(dst.join("debug/incremental.bin")).unwrap();
    let mut tail = [0u8; 4];
    copy.read_exact_at(&mut tail, (64 << 20) - 4).unwrap();
    assert_eq!(&tail, b"tail");
    assert_eq!(
        std::fs::read_link(dst.join("latest")).unwrap(),
        Path::new("debug"),
        "a link inside stays a link"
    );
    for outside in ["climb", "debug/abs"] {
        assert!(
            std::fs::symlink_metadata(dst.join(outside)).is_err(),
            "{outside}: a link leading outside is neither copied nor followed"
        );
        assert!(
            a.notes
                .iter()
                .any(|n| n.contains(&format!("target/{outside}")) && n.contains("outside")),
            "{:?}",
            a.notes
        );
    }
    assert!(
        a.notes.iter().any(|n| n.contains("target/ (53 files")),
        "{:?}",
        a.notes
    );
    assert_eq!(env.git_in(&a.dir, &["status", "--porcelain"]), "");
}

#[test]
fn a_folder_include_is_never_written_through_a_link_a_dependency_committed() {
    let env = with_target();
    let outside = env.tmp.path().join("outside-dir");
    let before = std::fs::read_dir(&outside).unwrap().count();
    let g = graph(&env);
    let mut ws = workspaces(&env, Config::default());
    let a = prepare(&mut ws, &g, "Stream-A");
    // The dependency commits `target/debug` as a link to a folder outside the repository.
    std::fs::remove_dir_all(a.dir.join("target")).unwrap();
    std::fs::create_dir_all(a.dir.join("target")).unwrap();
    std::os::unix::fs::symlink(&outside, a.dir.join("target/debug")).unwrap();
    env.git_in(&a.dir, &["add", "-f", "target/debug"]);
    env.git_in(
        &a.dir,
        &["commit", "-q", "-m", "target/debug is a link now"],
    );
    commit_file(&env, &a.dir, "work.txt", "A's work\n");
    let b = prepare(&mut ws, &g, "Stream-B");
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        before,
        "B's include wrote outside the repository"
    );
    assert!(
        b.notes
            .iter()
            .any(|n| n.contains("target/debug") && n.contains("symbolic link")),
        "{:?}",
        b.notes
    );
}

/// Whether `dir`'s file system makes copy-on-write clones (`cp --reflink=always` says).
fn clones_in(dir: &Path) -> bool {
    let (a, b) = (dir.join(".probe-a"), dir.join(".probe-b"));
    std::fs::write(&a, "probe").unwrap();
    let ok = std::process::Command::new("cp")
        .arg("--reflink=always")
        .arg(&a)
        .arg(&b)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let _ = std::fs::remove_file(&a);
    let _ = std::fs::remove_file(&b);
    ok
}

#[test]
fn reflink_mode_refuses_where_no_clone_can_be_made_and_auto_copies() {
    let env = with_target();
    let g = graph(&env);
    let clones = clones_in(&env.root);
    let reflink = Config {
        include_copy: CopyMode::Reflink,
        ..Config::default()
    };
    let mut ws = workspaces(&env, reflink);
    let got = ws.prepare(crate::worktrees::stream(&g, "Stream-A"), &g);
    if clones {
        let a = got.expect("clones are made here");
        assert!(
            a.notes.iter().any(|n| n.contains("copy-on-write clones")),
            "{:?}",
            a.notes
        );
        return;
    }
    let err = format!("{:?}", got.expect_err("this file system makes no clones"));
    assert!(
        err.contains("include_copy") && err.contains("does not make them"),
        "{err}"
    );
    assert!(err.contains("auto"), "the hint names the way out: {err}");
    // Auto falls back to a copy on the same file system.
    let mut auto = workspaces(&env, Config::default());
    let b = prepare(&mut auto, &g, "Stream-A");
    assert!(b.dir.join("target/debug/app").is_file());
    assert!(
        b.notes
            .iter()
            .any(|n| n.contains("target/") && !n.contains("clone")),
        "{:?}",
        b.notes
    );
}

#[test]
fn the_dry_run_says_what_a_new_worktree_gets() {
    let env = with_target();
    let out = env
        .run(&["start", "--dry-run", "--worktrees"])
        .success()
        .stdout();
    assert!(
        out.contains("each new worktree gets 55 files (64.0 MiB) from .worktreeinclude"),
        "{out}"
    );
}
