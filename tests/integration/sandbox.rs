//! The sandbox with the fake worker: a hostile worker's writes outside its worktree are each
//! refused by the kernel, its normal work (edits, git add/commit/stash, `task set`, TMPDIR)
//! succeeds, `--sandbox off` lets everything through again, `landlock` refuses to run where it
//! cannot be enforced, and `doctor`, `status`, the log header and the failure hint say so.
//! Every test here skips, saying why, on a kernel without Landlock.

use orchestrate::exit_codes;
use std::path::{Path, PathBuf};

use orchestrate::worker::sandbox::Support;

use crate::start::{Fake, state_db};
use crate::support::TestEnv;

/// The Landlock ABI, or `None` after printing why the test is skipped.
#[expect(clippy::print_stderr, reason = "a skipped test says why")]
pub fn landlock() -> Option<u32> {
    let support = Support::probe();
    if support.abi().is_none() {
        eprintln!(
            "skipped: the sandbox needs Landlock and {}",
            support.describe()
        );
    }
    support.abi()
}

/// A project with stream A (two tasks) and a sibling worktree `.claude/worktrees/sibling` on
/// branch `sibling`, as another stream's would be.
fn project() -> Fake {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 2, "pending");
    env.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "sibling",
        ".claude/worktrees/sibling",
    ]);
    Fake::new(env)
}

/// What a hostile worker tries to write, each a separate probe.
fn hostile_targets(fake: &Fake) -> Vec<PathBuf> {
    let root = &fake.env.root;
    vec![
        root.join("README.md"),
        root.join("new-in-the-main-checkout.txt"),
        root.join(".claude/worktrees/sibling/README.md"),
        root.join(".claude/worktrees/sibling/new.txt"),
        root.join(".git/config"),
        root.join(".git/hooks/pre-commit"),
        root.join(".git/worktrees/sibling/HEAD"),
        state_db(root),
        fake.env.home.join(".bashrc"),
        // Under /tmp, outside the worker's temp dir: the test's own temp dir, and /tmp itself.
        fake.env.tmp.path().join("outside.txt"),
        tmp_probe(),
    ]
}

/// A path directly in /tmp, unique to this test process.
fn tmp_probe() -> PathBuf {
    PathBuf::from(format!(
        "/tmp/orchestrate-sandbox-probe-{}",
        std::process::id()
    ))
}

fn write_probes(fake: &Fake, targets: &[PathBuf]) -> PathBuf {
    let list = fake.env.tmp.path().join("probes.txt");
    let text: Vec<String> = targets.iter().map(|p| p.display().to_string()).collect();
    std::fs::write(&list, text.join("\n") + "\n").unwrap();
    list
}

fn snapshot(paths: &[PathBuf]) -> Vec<Option<Vec<u8>>> {
    paths.iter().map(|p| std::fs::read(p).ok()).collect()
}

fn log_of(fake: &Fake, stream: &str) -> String {
    std::fs::read_to_string(
        fake.env
            .root
            .join(format!(".claude/orchestrator/logs/{stream}.log")),
    )
    .unwrap_or_default()
}

#[test]
fn a_hostile_worker_is_refused_everywhere_but_its_work_succeeds() {
    let Some(abi) = landlock() else { return };
    let mut fake = project();
    let targets = hostile_targets(&fake);
    let probes = write_probes(&fake, &targets);
    let before = snapshot(&targets);
    fake.set("PROBES", None, probes.to_str().unwrap())
        .set("WORK", None, "1");
    let run = fake
        .run(&["start", "--worktrees", "--stagger", "0", "--retries", "0"])
        .success();
    assert!(
        run.stdout().contains("every stream is complete"),
        "{}",
        run.stdout()
    );

    let results = fake.lines("Stream-A", "probes");
    let escaped = tmp_probe().exists();
    let _ = std::fs::remove_file(tmp_probe());
    assert!(!escaped, "the worker wrote directly in /tmp");
    assert_eq!(results.len(), targets.len(), "{results:#?}");
    for (target, result) in targets.iter().zip(&results) {
        assert!(
            result.starts_with(&format!("refused {}: ", target.display()))
                && result.ends_with("Permission denied"),
            "{result}"
        );
    }
    for ((target, before), after) in targets.iter().zip(&before).zip(snapshot(&targets)) {
        if *target == state_db(&fake.env.root) {
            // The orchestrator itself writes it meanwhile: the probe's line must not be there.
            let text = String::from_utf8_lossy(after.as_deref().unwrap_or_default()).into_owned();
            assert!(!text.contains("hostile"), "the state database was written");
        } else {
            assert!(
                *before == after,
                "a refused probe changed {}",
                target.display()
            );
        }
    }

    let work = fake.lines("Stream-A", "work");
    let steps = [
        "edit", "create", "add", "commit", "stash", "tmpdir", "stderr",
    ];
    assert_eq!(work, steps.map(|s| format!("ok {s}")), "{work:#?}");
    // `task set` from inside completed the stream; the commits are on its branch.
    let log = fake.env.git(&["log", "--format=%s", "stream/Stream-A"]);
    assert!(
        log.contains("work of Stream-A") && log.contains("after the stash"),
        "{log}"
    );

    // The log header says how it was confined and lists the writable roots.
    let text = log_of(&fake, "Stream-A");
    let worktree = fake.env.root.join(".claude/worktrees/Stream-A");
    let git = fake.env.root.join(".git");
    for needle in [
        format!("==== sandbox: Landlock ABI {abi}"),
        format!("{} (the worktree)", worktree.display()),
        format!("{} (its git dir", git.join("worktrees/Stream-A").display()),
        format!(
            "{}, {}, {} (git objects, refs and reflogs)",
            git.join("objects").display(),
            git.join("refs").display(),
            git.join("logs").display()
        ),
        "reopened stderr".to_string(),
    ] {
        assert!(text.contains(&needle), "log lacks {needle:?}:\n{text}");
    }
    // `status` shows it, in words and in JSON.
    let status = fake.env.run(&["status"]).success().stdout();
    assert!(
        status.contains(&format!("sandboxed (Landlock ABI {abi})")),
        "{status}"
    );
    let doc = fake.env.run(&["status", "--json"]).success().json();
    assert_eq!(
        doc["streams"][0]["worker"]["sandbox"],
        serde_json::json!({"kind": "landlock", "abi": abi})
    );
}

#[test]
fn sandbox_off_lets_the_same_writes_through() {
    if landlock().is_none() {
        return;
    }
    let mut fake = project();
    // Only probes that do no harm when they succeed.
    let targets = vec![
        fake.env.root.join("new-in-the-main-checkout.txt"),
        fake.env.root.join(".claude/worktrees/sibling/new.txt"),
        fake.env.home.join(".bashrc"),
        fake.env.tmp.path().join("outside.txt"),
    ];
    let probes = write_probes(&fake, &targets);
    fake.set("PROBES", None, probes.to_str().unwrap());
    fake.run(&["start", "--worktrees", "--stagger", "0", "--sandbox", "off"])
        .success();
    let results = fake.lines("Stream-A", "probes");
    let expected: Vec<String> = targets
        .iter()
        .map(|t| format!("written {}", t.display()))
        .collect();
    assert_eq!(results, expected);
    assert!(log_of(&fake, "Stream-A").contains("==== sandbox: none: sandbox = \"off\""));
    let status = fake.env.run(&["status"]).success().stdout();
    assert!(status.contains("unsandboxed (sandbox off)"), "{status}");
}

#[test]
fn the_diamond_runs_sandboxed_by_default_in_a_shared_checkout() {
    let Some(abi) = landlock() else { return };
    let mut env = TestEnv::new();
    env.diamond();
    let mut fake = Fake::new(env);
    // The shared checkout is the project root: writable, but HOME is not.
    let probes = write_probes(&fake, &[fake.env.home.join(".bashrc")]);
    fake.set("PROBES", None, probes.to_str().unwrap());
    fake.run(&["start", "--stagger", "0"]).success();
    let doc = fake.env.run(&["status", "--json"]).success().json();
    for s in doc["streams"].as_array().unwrap() {
        assert_eq!(s["state"], "complete", "{s}");
        assert_eq!(s["worker"]["sandbox"]["abi"], abi, "{s}");
        let id = s["id"].as_str().unwrap();
        let probe = fake.lines(id, "probes");
        assert!(probe[0].starts_with("refused "), "{probe:?}");
    }
    let header = log_of(&fake, "Stream-Z");
    assert!(
        header.contains("(the project root (shared checkout: its .git and .claude too))"),
        "{header}"
    );
}

#[test]
fn landlock_mode_fails_the_stream_at_once_where_it_cannot_be_enforced() {
    if landlock().is_none() {
        return;
    }
    let fake = project();
    // ABI 0: as on a kernel without Landlock.
    let run = fake
        .cmd(&[
            "start",
            "--sandbox",
            "landlock",
            "--stagger",
            "0",
            "--retries",
            "3",
        ])
        .env("ORCHESTRATE_LANDLOCK_ABI", "0")
        .output()
        .unwrap();
    let run = crate::support::Run(run).expect_code(exit_codes::INCOMPLETE);
    assert!(
        fake.lines("Stream-A", "started").is_empty(),
        "no worker ran"
    );
    let out = run.stdout();
    assert!(
        out.contains("the sandbox is required (sandbox = \"landlock\") but cannot be enforced")
            && out.contains("--sandbox off"),
        "{out}"
    );
    assert!(!run.stderr().contains("retrying"), "{}", run.stderr());

    // `auto` runs it unsandboxed and says so everywhere.
    let run = fake
        .cmd(&["start", "--stagger", "0"])
        .env("ORCHESTRATE_LANDLOCK_ABI", "0")
        .output()
        .unwrap();
    crate::support::Run(run).success();
    assert!(
        log_of(&fake, "Stream-A").contains(
            "==== sandbox: none: Landlock is turned off by ORCHESTRATE_LANDLOCK_ABI=0 (sandbox = \"auto\")"
        )
    );
    let status = fake.env.run(&["status"]).success().stdout();
    assert!(
        status.contains("unsandboxed (Landlock unavailable)"),
        "{status}"
    );
}

#[test]
fn doctor_reports_the_abi_and_the_mode() {
    let Some(abi) = landlock() else { return };
    let env = TestEnv::new();
    let out = env.run(&["doctor"]).stdout();
    assert!(
        out.contains("✓ sandbox")
            && out.contains(&format!("Landlock ABI {abi} (sandbox = \"auto\")")),
        "{out}"
    );
    let off = env
        .cmd(&["doctor"])
        .env("ORCHESTRATE_SANDBOX", "off")
        .output()
        .unwrap();
    let off = String::from_utf8_lossy(&off.stdout).into_owned();
    assert!(off.contains("sandbox = \"off\""), "{off}");
    // Required where it cannot be enforced: a check that blocks a run.
    let required = env
        .cmd(&["doctor"])
        .env("ORCHESTRATE_SANDBOX", "landlock")
        .env("ORCHESTRATE_LANDLOCK_ABI", "0")
        .output()
        .unwrap();
    let required = crate::support::Run(required).expect_code(exit_codes::FAILURE);
    assert!(
        required
            .stdout()
            .contains("requires Landlock: no worker can start"),
        "{}",
        required.stdout()
    );
}

#[test]
fn a_refused_write_is_explained_in_the_failure_reason_and_by_logs() {
    if landlock().is_none() {
        return;
    }
    let mut fake = project();
    let bashrc = fake.env.home.join(".bashrc");
    let probes = write_probes(&fake, std::slice::from_ref(&bashrc));
    fake.set("PROBES", None, probes.to_str().unwrap())
        .set("COMPLETE", None, "0")
        .set("EXIT", None, "1");
    let run = fake
        .run(&["start", "--worktrees", "--stagger", "0", "--retries", "0"])
        .expect_code(exit_codes::INCOMPLETE);
    // The failure's next step names the path and the way out.
    let refused = format!("\"Permission denied\" on {}", bashrc.display());
    let step = format!("{refused}: if the sandbox refused it, add a folder to `sandbox_writable`");
    assert!(run.stdout().contains(&step), "{}", run.stdout());
    // `logs` sees from the log header that it was sandboxed.
    let logs = fake.env.run(&["logs", "Stream-A"]).success();
    let hint = format!("hint: {refused} is most likely the sandbox");
    assert!(logs.stderr().contains(&hint), "{}", logs.stderr());
    assert!(!Path::new(&bashrc).exists());
}

#[test]
fn post_create_is_confined_like_the_worker() {
    if landlock().is_none() {
        return;
    }
    let fake = project();
    let bashrc = fake.env.home.join(".bashrc");
    std::fs::create_dir_all(fake.env.root.join(".claude/orchestrator")).unwrap();
    std::fs::write(
        fake.env.root.join(".claude/orchestrator/config.toml"),
        format!(
            "post_create = \"sh -c 'touch .post-created && echo $TMPDIR && touch {}'\"\n",
            bashrc.display()
        ),
    )
    .unwrap();
    let run = fake
        .run(&["start", "--worktrees", "--stagger", "0"])
        .expect_code(exit_codes::INCOMPLETE);
    let worktree = fake.env.root.join(".claude/worktrees/Stream-A");
    assert!(worktree.join(".post-created").exists(), "{}", run.stdout());
    assert!(!bashrc.exists());
    let log = log_of(&fake, "Stream-A");
    assert!(
        log.contains(&format!(
            "touch: cannot touch '{}': Permission denied",
            bashrc.display()
        )),
        "{log}"
    );
    // Its TMPDIR, private to the stream, outside the project.
    let tmpdir = format!("/orchestrate-{}/", nix::unistd::getuid());
    assert!(
        log.contains(&tmpdir) && log.contains("/Stream-A\n"),
        "{log}"
    );
    assert!(
        fake.lines("Stream-A", "started").is_empty(),
        "the worker must not start"
    );
}

/// Worker rows recorded for `stream`.
fn attempts(fake: &Fake, stream: &str) -> Vec<(Option<i32>, Option<String>, Option<i32>)> {
    let conn = rusqlite::Connection::open(state_db(&fake.env.root)).unwrap();
    let mut stmt = conn
        .prepare("SELECT exit_code, error, worker_pid FROM workers WHERE stream = ?1 ORDER BY id")
        .unwrap();
    stmt.query_map([stream], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn a_program_that_cannot_be_executed_fails_at_once_sandboxed_or_not() {
    let Some(_) = landlock() else { return };
    for mode in ["landlock", "off"] {
        let fake = project();
        let program = fake.env.tmp.path().join("broken-agent");
        std::fs::write(&program, "#!/no/such/interpreter\n").unwrap();
        std::fs::set_permissions(
            &program,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let run = fake
            .cmd(&[
                "start",
                "--stagger",
                "0",
                "--retries",
                "2",
                "--sandbox",
                mode,
            ])
            .env("ORCHESTRATE_WORKER_CMD", program.to_str().unwrap())
            .output()
            .unwrap();
        let run = crate::support::Run(run).expect_code(exit_codes::INCOMPLETE);
        let rows = attempts(&fake, "Stream-A");
        assert_eq!(rows.len(), 1, "{mode}: not retried: {rows:?}");
        let (code, error, _) = &rows[0];
        assert_eq!(
            *code,
            Some(orchestrate::worker::supervise::CANNOT_EXEC),
            "{mode}"
        );
        let error = error.as_deref().unwrap_or_default();
        assert!(
            error.starts_with(&format!(
                "cannot run worker program `{}`",
                program.display()
            )),
            "{mode}: {error}"
        );
        assert!(run.stdout().contains(error), "{mode}: {}", run.stdout());
    }
}

#[test]
fn the_sandboxed_worker_keeps_the_pid_the_supervisor_spawned() {
    let Some(_) = landlock() else { return };
    let fake = project();
    fake.run(&["start", "--stagger", "0"]).success();
    let rows = attempts(&fake, "Stream-A");
    // `__sandbox` exec'd into the worker: the pid recorded at spawn is the worker's own `$$`.
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].2, Some(fake.pid("Stream-A")));
}

/// The supervisor confines its child between fork and exec: the worker is the supervisor's
/// direct child running the worker program itself (no `orchestrate __sandbox` in between), it
/// is confined (`no_new_privs`, which Landlock needs, is set in it), and the supervisor is not
/// (no `no_new_privs`; it records the exit in the state store, outside the worktree). The
/// supervisor has one thread when it forks (and still when the worker looks).
#[test]
fn the_worker_is_the_supervisors_own_child_and_only_the_worker_is_confined() {
    let Some(_) = landlock() else { return };
    let mut fake = project();
    let look = "w=$PPID; s=$(awk '/^PPid:/ {print $2}' /proc/$w/status); \
                m=\"$FAKE_MARKER/Stream-A\"; \
                tr '\\0' ' ' </proc/$w/cmdline >\"$m.worker-cmdline\"; \
                tr '\\0' ' ' </proc/$s/cmdline >\"$m.parent-cmdline\"; \
                echo $s >\"$m.parent\"; \
                grep -E '^(NoNewPrivs|Threads):' /proc/$w/status >\"$m.worker-status\"; \
                grep -E '^(NoNewPrivs|Threads):' /proc/$s/status >\"$m.parent-status\"";
    fake.set("RUN", None, look);
    fake.run(&[
        "start",
        "--worktrees",
        "--stagger",
        "0",
        "--sandbox",
        "landlock",
    ])
    .success();
    let one = |what: &str| fake.lines("Stream-A", what).join("\n");
    let worker = one("worker-cmdline");
    assert!(worker.contains("fake-worker.sh"), "{worker}");
    assert!(!worker.contains("__sandbox"), "{worker}");
    let parent = one("parent-cmdline");
    // It confines the worker itself, from the rule set on its own command line.
    assert!(parent.contains(" __supervise "), "{parent}");
    assert!(parent.contains(" --abi "), "{parent}");
    assert!(!parent.contains("__sandbox"), "{parent}");
    let conn = rusqlite::Connection::open(state_db(&fake.env.root)).unwrap();
    let (supervisor, worker_pid, code, sandbox): (i32, i32, i32, String) = conn
        .query_row(
            "SELECT pid, worker_pid, exit_code, sandbox FROM workers WHERE stream = 'Stream-A'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(one("parent"), supervisor.to_string());
    assert_eq!(worker_pid, fake.pid("Stream-A"));
    // The supervisor wrote the exit and the sandbox into the state store.
    assert_eq!((code, sandbox.starts_with("landlock ")), (0, true));
    assert!(one("worker-status").ends_with("NoNewPrivs:\t1"));
    assert_eq!(one("parent-status"), "Threads:\t1\nNoNewPrivs:\t0");
}

/// How the git parts of the rule set were found: with every one of them, staging, committing
/// and stashing in a linked worktree succeed; without any one, they fail.
#[test]
fn committing_in_a_worktree_needs_each_granted_git_part() {
    let Some(abi) = landlock() else { return };
    let work = "printf 'x\\n' >>README.md && git add README.md && git commit -qm w \
                && printf 'y\\n' >>README.md && git stash -q && git stash pop -q";
    let parts = ["worktrees/w", "objects", "refs", "logs"];
    let try_with = |skip: Option<&str>| {
        let env = TestEnv::new();
        env.git(&["worktree", "add", "-q", "-b", "w", ".claude/worktrees/w"]);
        let worktree = env.root.join(".claude/worktrees/w");
        let mut args = vec![
            "__sandbox".to_string(),
            "--abi".into(),
            abi.to_string(),
            "--write".into(),
            worktree.display().to_string(),
            // git opens it for reading and writing (found the same way).
            "--write".into(),
            "/dev/null".into(),
        ];
        for part in parts.iter().filter(|p| Some(**p) != skip) {
            args.push("--write".into());
            args.push(env.root.join(".git").join(part).display().to_string());
        }
        args.extend(["--", "sh", "-c", work].map(String::from));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = env.cmd(&args).current_dir(&worktree).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = try_with(None);
    assert!(ok, "{err}");
    // The known edge: dropping the stash deletes `refs/stash`, which takes a lock file directly
    // in the read-only git dir; git warns and carries on.
    assert!(
        err.contains("packed-refs.lock': Permission denied"),
        "{err}"
    );
    for part in parts {
        let (ok, err) = try_with(Some(part));
        assert!(!ok, "works without .git/{part}: {err}");
        assert!(err.to_lowercase().contains("permission"), "{part}: {err}");
    }
}

/// The real Claude Code CLI (`ORCHESTRATE_TEST_CLAUDE`, against the API stand-in) completes its
/// stream sandboxed in its own worktree: `task set`, `git add` and `git commit` from its Bash
/// tool. (Without `--worktrees`, `claude::real_claude_completes_a_stream_through_start` runs it
/// sandboxed in the project root.)
#[test]
fn real_claude_completes_a_stream_sandboxed_in_its_worktree() {
    let Some(abi) = landlock() else { return };
    let test = "real_claude_completes_a_stream_sandboxed_in_its_worktree";
    let Some(bin) = crate::support::api::real_claude(test) else {
        return;
    };
    let mut env = TestEnv::new();
    let task = env.add_task("Stream-A", "Write the thing", "pending", &[]);
    let api =
        crate::support::api::Api::start(crate::support::api::worker_turns(crate::claude::PROTOCOL));
    let worker = format!(
        "'{}' -p {{prompt}} --output-format stream-json --verbose --dangerously-skip-permissions",
        bin.display()
    );
    let run = env
        .cmd(&["start", "--worktrees", "--stagger", "0", "--retries", "0"])
        .env("ORCHESTRATE_WORKER_CMD", &worker)
        .envs(crate::support::api::claude_env(&api))
        .env("ANTHROPIC_API_KEY", crate::claude::API_KEY)
        .output()
        .unwrap();
    let run = crate::support::Run(run).success();
    assert!(
        run.stdout().contains("every stream is complete"),
        "{}",
        run.stdout()
    );
    assert_eq!(env.status_of(&task), "completed");
    let log = env.git(&["log", "--format=%s", "stream/Stream-A"]);
    assert!(log.contains("work of Stream-A"), "{log}");
    let doc = env.run(&["status", "--json"]).success().json();
    assert_eq!(doc["streams"][0]["worker"]["sandbox"]["abi"], abi, "{doc}");
}

#[test]
fn verify_runs_in_the_workers_sandbox() {
    let Some(abi) = landlock() else { return };
    let fake = project();
    let escape = fake.env.home.join("verify-was-here");
    let verify = format!("touch verified && touch '{}'", escape.display());
    let run = fake.run(&[
        "start",
        "--worktrees",
        "--stagger",
        "0",
        "--retries",
        "0",
        "--verify",
        &verify,
    ]);
    crate::support::Run(run.0).expect_code(exit_codes::INCOMPLETE);
    let worktree = fake.env.root.join(".claude/worktrees/Stream-A");
    assert!(
        worktree.join("verified").exists(),
        "it ran, in the worktree"
    );
    assert!(!escape.exists(), "it wrote outside its sandbox");
    let log = log_of(&fake, "Stream-A");
    let refused = format!(
        "touch: cannot touch '{}': Permission denied",
        escape.display()
    );
    assert!(log.contains(&refused), "{log}");
    let conn = rusqlite::Connection::open(state_db(&fake.env.root)).unwrap();
    let recorded: String = conn
        .query_row(
            "SELECT sandbox FROM workers WHERE kind = 'verify'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(recorded, format!("landlock {abi}"));
}
