//! Promise 6: files come in only from inside the repository and never leave it.
//! `.worktreeinclude` copies only files inside the root, reached through no symlink, written
//! into the worktree through no symlink, and ignored in the worktree too; a file it copied is
//! never committed (by auto-commit or by the agent's `git add -A`). And a sparse file stays
//! sparse.

use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use orchestrate::config::Config;
use orchestrate::workspace::Workspaces;

use crate::support::TestEnv;
use crate::worktrees::{commit_file, graph, prepare, workspaces};

/// A: no dependencies; B: depends on A. `.env` and `conf/.env` ignored (committed rule) and
/// listed in `.worktreeinclude`, both present in the root.
fn with_includes() -> TestEnv {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    env.add_stream("Stream-B", &["Stream-A"], 1, "pending");
    std::fs::write(env.root.join(".gitignore"), ".env\nconf/.env\n").unwrap();
    std::fs::write(env.root.join(".worktreeinclude"), ".env\nconf/.env\n").unwrap();
    std::fs::create_dir_all(env.root.join("conf")).unwrap();
    std::fs::write(env.root.join("conf/app.toml"), "tracked\n").unwrap();
    env.git(&["add", ".gitignore", ".worktreeinclude", "conf/app.toml"]);
    env.git(&["commit", "-q", "-m", "ignore rules"]);
    std::fs::write(env.root.join(".env"), "TOKEN=secret\n").unwrap();
    std::fs::write(env.root.join("conf/.env"), "CONF_TOKEN=secret\n").unwrap();
    env
}

/// Every file under `dir` with its bytes.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            out.extend(tree(&p));
        } else {
            out.push((
                p.display().to_string(),
                std::fs::read(&p).unwrap_or_default(),
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn an_include_is_never_written_through_a_symlink_a_dependency_committed() {
    let env = with_includes();
    let outside = env.tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("keep.txt"), "the user's\n").unwrap();
    let before = tree(&outside);
    let g = graph(&env);
    let mut ws = workspaces(&env, Config::default());
    let a = prepare(&mut ws, &g, "Stream-A");
    // The dependency replaces the folder `conf` by a link to a folder outside the repository.
    env.git_in(&a.dir, &["rm", "-rq", "conf"]);
    std::fs::remove_dir_all(a.dir.join("conf")).unwrap();
    std::os::unix::fs::symlink(&outside, a.dir.join("conf")).unwrap();
    env.git_in(&a.dir, &["add", "conf"]);
    env.git_in(&a.dir, &["commit", "-q", "-m", "conf is a link now"]);
    let b = prepare(&mut ws, &g, "Stream-B");
    assert_eq!(
        tree(&outside),
        before,
        "B's include wrote outside the repository"
    );
    assert!(
        b.notes
            .iter()
            .any(|n| n.contains("conf/.env") && n.contains("link")),
        "{:?}",
        b.notes
    );
    assert_eq!(
        std::fs::read_to_string(b.dir.join(".env")).unwrap(),
        "TOKEN=secret\n"
    );
}

#[test]
fn an_include_is_never_read_through_a_symlink_in_the_root() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    let outside = env.tmp.path().join("home-secrets");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("id_rsa"), "PRIVATE KEY\n").unwrap();
    std::fs::write(env.root.join(".gitignore"), "keys\nkeys/\n").unwrap();
    std::fs::write(env.root.join(".worktreeinclude"), "keys\nkeys/id_rsa\n").unwrap();
    env.git(&["add", ".gitignore", ".worktreeinclude"]);
    env.git(&["commit", "-q", "-m", "rules"]);
    std::os::unix::fs::symlink(&outside, env.root.join("keys")).unwrap();
    let g = graph(&env);
    let mut ws = workspaces(&env, Config::default());
    let a = prepare(&mut ws, &g, "Stream-A");
    assert!(!a.dir.join("keys/id_rsa").exists());
    assert!(
        std::fs::symlink_metadata(a.dir.join("keys")).is_err(),
        "a link to outside the repository was copied"
    );
}

/// `.env` ignored only by an uncommitted line of the root's `.gitignore`: the worktree does not
/// ignore it, so it is not copied (and so cannot be committed), and the note says why.
#[test]
fn an_include_not_ignored_in_the_worktree_is_skipped_and_never_committed() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    std::fs::write(env.root.join(".gitignore"), "*.log\n").unwrap();
    std::fs::write(env.root.join(".worktreeinclude"), ".env\n").unwrap();
    env.git(&["add", ".gitignore", ".worktreeinclude"]);
    env.git(&["commit", "-q", "-m", "rules"]);
    std::fs::write(env.root.join(".gitignore"), "*.log\n.env\n").unwrap();
    std::fs::write(env.root.join(".env"), "TOKEN=secret\n").unwrap();
    let g = graph(&env);
    let mut ws = workspaces(&env, Config::default());
    let a = prepare(&mut ws, &g, "Stream-A");
    assert!(
        a.notes
            .iter()
            .any(|n| n.contains(".env") && n.contains("not ignored")),
        "{:?}",
        a.notes
    );
    ws.worker_started("Stream-A", &a, std::process::id());
    std::fs::write(a.dir.join("work.txt"), "work\n").unwrap();
    ws.worker_finished("Stream-A", &a);
    let files = env.git(&["ls-tree", "-r", "--name-only", "stream/Stream-A"]);
    assert!(!files.lines().any(|f| f == ".env"), "{files}");
    assert!(files.lines().any(|f| f == "work.txt"), "{files}");
}

/// The agent un-ignores the copied file and leaves it: auto-commit still never commits it.
#[test]
fn auto_commit_never_commits_a_copied_file() {
    let env = with_includes();
    let g = graph(&env);
    let mut ws = workspaces(&env, Config::default());
    let a = prepare(&mut ws, &g, "Stream-A");
    assert!(a.dir.join(".env").exists(), "{:?}", a.notes);
    ws.worker_started("Stream-A", &a, std::process::id());
    commit_file(&env, &a.dir, ".gitignore", "conf/.env\n");
    std::fs::write(a.dir.join("work.txt"), "work\n").unwrap();
    let done = ws.worker_finished("Stream-A", &a);
    let files = env.git(&["ls-tree", "-r", "--name-only", "stream/Stream-A"]);
    assert!(!files.lines().any(|f| f == ".env"), "{files}\n{done:?}");
    assert!(files.lines().any(|f| f == "work.txt"), "{files}");
}

#[test]
fn a_sparse_include_stays_sparse() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    std::fs::write(env.root.join(".gitignore"), "*.img\n").unwrap();
    std::fs::write(env.root.join(".worktreeinclude"), "*.img\n").unwrap();
    env.git(&["add", ".gitignore", ".worktreeinclude"]);
    env.git(&["commit", "-q", "-m", "rules"]);
    let img = env.root.join("disk.img");
    let file = std::fs::File::create(&img).unwrap();
    file.set_len(300 << 20).unwrap();
    // Some data at both ends and in the middle, holes between.
    for at in [0u64, 150 << 20, (300 << 20) - 4096] {
        file.write_all_at(b"data", at).unwrap();
    }
    drop(file);
    let g = graph(&env);
    let mut ws = workspaces(&env, Config::default());
    let a = prepare(&mut ws, &g, "Stream-A");
    let copy = a.dir.join("disk.img");
    let meta = std::fs::metadata(&copy).unwrap();
    assert_eq!(meta.len(), 300 << 20);
    let allocated = meta.blocks() * 512;
    assert!(
        allocated < 4 << 20,
        "the copy allocates {allocated} bytes for 12 bytes of data"
    );
    let copied = std::fs::File::open(&copy).unwrap();
    for at in [0u64, 150 << 20, (300 << 20) - 4096, 7 << 20] {
        let mut got = [0u8; 4];
        copied.read_exact_at(&mut got, at).unwrap();
        let want: &[u8; 4] = if at == 7 << 20 { &[0; 4] } else { b"data" };
        assert_eq!(&got, want, "at {at}");
    }
}
