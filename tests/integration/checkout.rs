//! The fast checkout of a new worktree against git's own: the same commit checked out by
//! `git worktree add` and by `prepare` must give the same files, byte for byte, with the same
//! modes and link targets, the same index, and an index whose stat data matches the files (so
//! that `git status` reads none of them).

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use orchestrate::config::Config;

use crate::support::TestEnv;
use crate::worktrees::{graph, prepare, workspaces};

/// What a path in a work tree is: file bytes and mode, a link target, or a folder.
#[derive(Debug, PartialEq, Eq)]
enum Item {
    File { bytes: Vec<u8>, mode: u32 },
    Link(std::path::PathBuf),
    Folder,
}

fn snapshot(dir: &Path) -> BTreeMap<String, Item> {
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Item>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let path = e.path();
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if rel == ".git" {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let item = if meta.file_type().is_symlink() {
            Item::Link(std::fs::read_link(&path).unwrap())
        } else if meta.is_dir() {
            walk(root, &path, out);
            Item::Folder
        } else {
            Item::File {
                bytes: std::fs::read(&path).unwrap(),
                mode: meta.permissions().mode() & 0o7777,
            }
        };
        out.insert(rel, item);
    }
}

/// A repository with every kind of entry: many plain files (enough for several threads),
/// executables, links (inside, outside, dangling), an empty file, binary bytes, a submodule,
/// and attributes that convert (eol=crlf, ident) or explicitly do not (-text).
fn every_kind() -> TestEnv {
    let mut env = TestEnv::new();
    let root = env.root.clone();
    let write = |rel: &str, bytes: &[u8]| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    };
    for i in 0..700 {
        write(
            &format!("src/m{}/d{}/f{i}.rs", i % 7, i % 3),
            format!("fn f{i}() {{}}\n").repeat(i % 40 + 1).as_bytes(),
        );
    }
    write("bin/run.sh", b"#!/bin/sh\necho run\n");
    std::fs::set_permissions(
        root.join("bin/run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    write("empty", b"");
    write(
        "data/blob.bin",
        &(0..=255u8).cycle().take(70_000).collect::<Vec<_>>(),
    );
    write("data/dos.bin", b"one\r\ntwo\r\n");
    write(".gitattributes", b"*.crlf text eol=crlf\n*.bin -text\n");
    write("conv/notes.crlf", b"line one\nline two\n");
    write("conv/.gitattributes", b"*.id ident\n");
    write("conv/version.id", b"version $Id$ here\n");
    std::os::unix::fs::symlink("../src/m0/d0/f0.rs", root.join("bin/link")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", root.join("abs-link")).unwrap();
    std::os::unix::fs::symlink("nowhere/at/all", root.join("dangling")).unwrap();
    env.git(&["add", "-A"]);
    // A submodule: a gitlink and its .gitmodules (git leaves an empty folder).
    write(
        ".gitmodules",
        b"[submodule \"vendor/lib\"]\n\tpath = vendor/lib\n\turl = ../lib\n",
    );
    env.git(&["add", ".gitmodules"]);
    let head = env.git(&["rev-parse", "HEAD"]);
    env.git(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{},vendor/lib", head.trim()),
    ]);
    env.git(&["commit", "-q", "-m", "every kind of entry"]);
    env.add_stream("Stream-A", &[], 1, "pending");
    env
}

#[test]
fn a_new_worktree_is_what_git_checks_out() {
    let env = every_kind();
    let theirs = env.root.join("../git-made");
    env.git(&[
        "worktree",
        "add",
        "-q",
        "--detach",
        theirs.to_str().unwrap(),
        "HEAD",
    ]);
    let g = graph(&env);
    let mut ws = workspaces(&env, Config::default());
    let ours = prepare(&mut ws, &g, "Stream-A").dir;

    let (a, b) = (snapshot(&ours), snapshot(&theirs));
    assert_eq!(
        a.len(),
        b.len(),
        "{:?}",
        a.keys().zip(b.keys()).find(|(x, y)| x != y)
    );
    for (path, item) in &b {
        assert_eq!(
            a.get(path),
            Some(item),
            "{path} differs from git's checkout"
        );
    }
    assert!(
        matches!(a["vendor/lib"], Item::Folder),
        "a submodule is an empty folder"
    );
    assert!(
        matches!(&a["conv/notes.crlf"], Item::File { bytes, .. } if bytes == b"line one\r\nline two\r\n"),
        "eol=crlf applied"
    );
    assert!(
        matches!(&a["conv/version.id"], Item::File { bytes, .. } if bytes.starts_with(b"version $Id: ")),
        "ident applied"
    );
    assert_eq!(
        env.git_in(&ours, &["ls-files", "-s"]),
        env.git_in(&theirs, &["ls-files", "-s"]),
        "the same index"
    );
    stat_data_matches(&ours);
    assert_eq!(env.git_in(&ours, &["diff-files", "--name-only"]), "");
    assert_eq!(env.git_in(&ours, &["status", "--porcelain"]), "");
    env.git_in(&ours, &["diff-index", "--quiet", "HEAD"]);
}

/// Every index entry's size, modification time and inode are the file's: git trusts them and
/// reads no file back.
fn stat_data_matches(dir: &Path) {
    let repo = git2::Repository::open(dir).unwrap();
    let index = repo.index().unwrap();
    let mut checked = 0;
    for e in index.iter().filter(|e| e.mode != 0o160000) {
        let path = dir.join(String::from_utf8_lossy(&e.path).as_ref());
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let rel = path.display();
        assert_eq!(e.file_size as u64, meta.size(), "{rel}: size");
        assert_eq!(e.mtime.seconds() as i64, meta.mtime(), "{rel}: mtime");
        assert_eq!(
            e.mtime.nanoseconds() as i64,
            meta.mtime_nsec(),
            "{rel}: mtime ns"
        );
        assert_eq!(e.ino, meta.ino() as u32, "{rel}: inode");
        checked += 1;
    }
    assert!(checked > 700, "{checked} entries");
}
