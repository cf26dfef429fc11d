//! `orchestrate init`: set-up from nothing, repair of each kind of damage, edited files kept,
//! tracked files untouched, and projects that are not git repositories.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support::TestEnv;

const INSTALLED: [&str; 6] = [
    ".claude/commands/orchestrate.md",
    ".claude/orchestrator/worker-prompt.md",
    ".claude/orchestrator/worker-resume.md",
    ".claude/orchestrator/config.toml",
    ".claude/orchestrator/ORCHESTRATION_GUIDE.md",
    ".claude/orchestrator/watch-status",
];

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o111 == 0o111
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn init_sets_up_everything_from_nothing() {
    let env = TestEnv::without_db();
    let run = env.run(&["init"]).success();
    let out = run.stdout();
    for path in INSTALLED {
        assert!(env.root.join(path).is_file(), "{path} missing\n{out}");
        assert!(out.contains(&format!("installed {path}")), "{out}");
    }
    for dir in ["logs", "state"] {
        assert!(env.root.join(".claude/orchestrator").join(dir).is_dir());
    }
    assert!(is_executable(
        &env.root.join(".claude/orchestrator/watch-status")
    ));
    let link = env.root.join("watch-status");
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        Path::new(".claude/orchestrator/watch-status")
    );
    assert!(
        env.root
            .join(".claude/orchestrator/state/installed.json")
            .is_file()
    );

    // The runtime folders are excluded; the installed files stay visible to commit if wanted.
    let exclude = std::fs::read_to_string(env.root.join(".git/info/exclude")).unwrap();
    for line in [
        "/.claude/orchestrator/logs/",
        "/.claude/orchestrator/state/",
        "/.claude/worktrees/",
    ] {
        assert_eq!(exclude.matches(line).count(), 1, "{exclude}");
    }
    std::fs::write(env.root.join(".claude/orchestrator/logs/x.log"), "log").unwrap();
    let untracked = env.git(&["status", "--porcelain", "--untracked-files=all"]);
    assert!(!untracked.contains("logs/"), "{untracked}");
    assert!(!untracked.contains("state/"), "{untracked}");
    assert!(untracked.contains("watch-status"), "{untracked}");

    // A second run changes nothing and says so; the exclude file gains nothing.
    let again = env.run(&["init"]).success().stdout();
    assert!(again.contains("nothing to repair"), "{again}");
    let exclude2 = std::fs::read_to_string(env.root.join(".git/info/exclude")).unwrap();
    assert_eq!(exclude, exclude2);
}

#[test]
fn rerun_repairs_each_kind_of_damage_and_reports_it() {
    let env = TestEnv::without_db();
    env.run(&["init"]).success();
    let script = env.root.join(".claude/orchestrator/watch-status");
    let guide = env.root.join(".claude/orchestrator/ORCHESTRATION_GUIDE.md");
    std::fs::remove_file(&guide).unwrap();
    std::fs::remove_file(env.root.join(".claude/commands/orchestrate.md")).unwrap();
    set_mode(&script, 0o644);
    std::fs::remove_file(env.root.join("watch-status")).unwrap();
    std::os::unix::fs::symlink("gone/watch-status", env.root.join("watch-status")).unwrap();

    let out = env.run(&["init"]).success().stdout();
    assert!(out.starts_with("Repaired the set-up"), "{out}");
    assert!(
        out.contains("restored .claude/orchestrator/ORCHESTRATION_GUIDE.md (it was missing)"),
        "{out}"
    );
    assert!(
        out.contains("restored .claude/commands/orchestrate.md"),
        "{out}"
    );
    assert!(
        out.contains("made .claude/orchestrator/watch-status executable again"),
        "{out}"
    );
    assert!(
        out.contains("pointed to gone/watch-status, which does not exist"),
        "{out}"
    );
    assert!(guide.is_file());
    assert!(is_executable(&script));
    assert!(
        env.root.join("watch-status").exists(),
        "link still dangling"
    );

    // A link to the wrong (existing) file is fixed too; a missing one is created.
    std::fs::remove_file(env.root.join("watch-status")).unwrap();
    std::os::unix::fs::symlink("README.md", env.root.join("watch-status")).unwrap();
    let out = env.run(&["init"]).success().stdout();
    assert!(out.contains("it pointed to README.md;"), "{out}");
    std::fs::remove_file(env.root.join("watch-status")).unwrap();
    let out = env.run(&["init"]).success().stdout();
    assert!(out.contains("linked watch-status"), "{out}");

    let out = env.run(&["init"]).success().stdout();
    assert!(out.contains("nothing to repair"), "{out}");
}

#[test]
fn a_file_the_user_edited_is_kept_and_a_deleted_one_comes_back() {
    let env = TestEnv::without_db();
    env.run(&["init"]).success();
    let config = env.root.join(".claude/orchestrator/config.toml");
    let prompt = env.root.join(".claude/orchestrator/worker-prompt.md");
    std::fs::write(&config, "max_parallel = 2\n").unwrap();
    std::fs::write(&prompt, "my own prompt for {stream_id}\n").unwrap();

    let out = env.run(&["init"]).success().stdout();
    assert!(
        out.contains("kept .claude/orchestrator/config.toml"),
        "{out}"
    );
    assert!(
        out.contains("kept .claude/orchestrator/worker-prompt.md"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        "max_parallel = 2\n"
    );
    assert_eq!(
        std::fs::read_to_string(&prompt).unwrap(),
        "my own prompt for {stream_id}\n"
    );

    // Deleting an edited file is how a user asks for the default back.
    std::fs::remove_file(&config).unwrap();
    env.run(&["init"]).success();
    assert!(
        std::fs::read_to_string(&config)
            .unwrap()
            .contains("# max_parallel = 4")
    );
}

#[test]
fn a_file_present_before_set_up_is_the_users() {
    let env = TestEnv::without_db();
    let config = env.root.join(".claude/orchestrator/config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, "retries = 3\n").unwrap();
    let out = env.run(&["init"]).success().stdout();
    assert!(
        out.contains("kept .claude/orchestrator/config.toml"),
        "{out}"
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "retries = 3\n");
}

#[test]
fn tracked_files_are_never_edited() {
    let env = TestEnv::without_db();
    env.run(&["init"]).success();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "commit the set-up"]);
    let script = env.root.join(".claude/orchestrator/watch-status");
    set_mode(&script, 0o644);
    std::fs::remove_file(env.root.join(".claude/commands/orchestrate.md")).unwrap();

    let out = env.run(&["init"]).success().stdout();
    assert!(
        out.contains("left .claude/orchestrator/watch-status alone: it is tracked by git"),
        "{out}"
    );
    assert!(
        out.contains(
            "left .claude/commands/orchestrate.md alone: it is tracked by git and missing"
        ),
        "{out}"
    );
    assert!(!is_executable(&script));
    assert!(!env.root.join(".claude/commands/orchestrate.md").exists());
}

#[test]
fn the_slash_command_has_front_matter() {
    let env = TestEnv::without_db();
    env.run(&["init"]).success();
    let text = std::fs::read_to_string(env.root.join(".claude/commands/orchestrate.md")).unwrap();
    let rest = text
        .strip_prefix("---\n")
        .expect("front matter opens the file");
    let (front, body) = rest.split_once("\n---\n").expect("front matter is closed");
    let field = |key: &str| {
        front
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}:")))
            .map(str::trim)
            .unwrap_or_else(|| panic!("front matter lacks `{key}`:\n{front}"))
    };
    assert_eq!(field("name"), "orchestrate");
    assert!(!field("description").is_empty());
    assert!(field("allowed-tools").contains("Bash(orchestrate"));
    assert!(body.contains("orchestrate $ARGUMENTS"), "{body}");
    for sub in ["start", "status", "stop", "logs", "clean", "merge"] {
        assert!(body.contains(&format!("`{sub}")), "body lacks {sub}");
    }
}

#[test]
fn watch_status_runs_status_watch_with_the_given_interval() {
    let env = TestEnv::without_db();
    env.run(&["init"]).success();
    // A stand-in `orchestrate` that records its arguments proves what the wrapper runs.
    let bin = env.tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("orchestrate");
    std::fs::write(&fake, "#!/bin/sh\necho \"args: $*\"\n").unwrap();
    set_mode(&fake, 0o755);
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let mut cmd = std::process::Command::new(env.root.join("watch-status"));
    env.apply_env(&mut cmd);
    let out = cmd
        .env("PATH", &path)
        .arg("5")
        .current_dir(&env.root)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "args: status --watch 5\n"
    );
    let mut cmd = std::process::Command::new(env.root.join("watch-status"));
    env.apply_env(&mut cmd);
    let out = cmd
        .env("PATH", &path)
        .current_dir(&env.root)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "args: status --watch 2\n"
    );
}

#[test]
fn works_in_a_folder_that_is_not_a_git_repository() {
    let env = TestEnv::without_db();
    let plain = env.tmp.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let run = env
        .run(&["--project", plain.to_str().unwrap(), "init"])
        .success();
    assert!(
        run.stderr().contains("not a git repository"),
        "{}",
        run.stderr()
    );
    assert!(run.stderr().contains("worktrees"), "{}", run.stderr());
    for path in INSTALLED {
        assert!(plain.join(path).is_file(), "{path} missing");
    }
    assert!(!plain.join(".git").exists());

    // With no `.git` or `.claude` anywhere above, init sets up the current folder.
    let bare = env.tmp.path().join("bare");
    std::fs::create_dir_all(&bare).unwrap();
    let mut cmd = env.cmd(&["init"]);
    cmd.current_dir(&bare);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(bare.join(".claude/orchestrator/config.toml").is_file());
}

#[test]
fn concurrent_set_ups_take_turns_and_all_succeed() {
    let env = TestEnv::without_db();
    let children: Vec<_> = (0..6)
        .map(|_| {
            let mut cmd = env.cmd(&["init"]);
            cmd.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    let mut fresh = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        fresh += usize::from(stdout.starts_with("Set up orchestrate"));
    }
    assert_eq!(fresh, 1, "exactly one process installs");
    let exclude = std::fs::read_to_string(env.root.join(".git/info/exclude")).unwrap();
    assert_eq!(
        exclude.matches("/.claude/worktrees/").count(),
        1,
        "{exclude}"
    );
    let out = env.run(&["init"]).success().stdout();
    assert!(out.contains("nothing to repair"), "{out}");
}
