//! Benchmark: a warm cache through `.worktreeinclude`. A `target/`-like folder of 20,000 files
//! and 1 GiB (19,950 files of 16 KiB and 50 of about 14 MiB, random bytes) is copied into a new
//! worktree by `include::copy_included` (`include_copy = "auto"`), against `cp -R` and
//! `cp -R --reflink=always` of the same folder, alternating which goes first, 3 rounds, with
//! `sync` between runs (outside the timing).
//!
//! On the disk here (the temporary folder), on an XFS file system with reflink made in a loop
//! file (`mkfs.xfs -m reflink=1`, mounted as root), and on ext4 in a loop file in RAM
//! (`/dev/shm`: the same copy without the virtual disk's run-to-run swings); the benchmark
//! says so and skips a loop case when it cannot make or mount one. Targets: ≤ 1.2× `cp -R` where no clone can be
//! made; ≤ 2 s on the reflink file system. (coreutils ≥ 9 `cp -R` clones by itself where it
//! can, so on XFS `cp -R` is a clone too.)
//!
//! Run: `cargo bench --bench includes`.

#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::support::TestEnv;
use common::{Stats, TABLE_HEADER};
use orchestrate::git::beneath::CopyMode;
use orchestrate::git::include;
use orchestrate::git::repo::Repo;

const SMALL: usize = 19_950;
const SMALL_BYTES: usize = 16 << 10;
const LARGE: usize = 50;
const ROUNDS: usize = 3;

fn main() {
    println!("load before: {}", common::load());
    let disk = std::env::temp_dir();
    let mut summary = vec![run(&format!("disk ({})", fs_type(&disk)), &disk)];
    match LoopFs::make("xfs", &["mkfs.xfs", "-q", "-m", "reflink=1"], &disk) {
        Ok(xfs) => summary.push(run("XFS with reflink (loop file)", &xfs.mount)),
        Err(why) => println!("\nXFS with reflink skipped: {why}"),
    }
    // The disk here is a shared virtual one whose speed varies run to run by several times:
    // ext4 on a loop file in RAM compares the copies without the device.
    // The source and three rounds of copies come to about 5 GiB of RAM: not on a small machine.
    let shm = Path::new("/dev/shm");
    let free = nix::sys::statvfs::statvfs(shm)
        .map(|v| v.blocks_available() * v.fragment_size())
        .unwrap_or(0);
    if free < 8 << 30 {
        println!(
            "\next4 in RAM skipped: {} has {:.1} GiB free, 8 GiB wanted",
            shm.display(),
            free as f64 / f64::from(1u32 << 30)
        );
    } else {
        match LoopFs::make("ext4", &["mkfs.ext4", "-q", "-F"], shm) {
            Ok(ext4) => summary.push(run("ext4 (loop file in RAM)", &ext4.mount)),
            Err(why) => println!("\next4 in RAM skipped: {why}"),
        }
    }
    println!(
        "\n## summary\n\n| file system | orchestrate / `cp -R` (medians) | orchestrate / `cp --reflink=always` (medians) | orchestrate median s |\n|---|---|---|---|"
    );
    for row in summary {
        println!("{row}");
    }
    println!("\nload after: {}", common::load());
}

/// 1 GiB in 20,000 files under `<root>/target`.
fn fill_target(root: &Path) -> u64 {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut bytes = |n: usize| -> Vec<u8> {
        let mut v = Vec::with_capacity(n);
        while v.len() < n {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            v.extend_from_slice(&seed.to_le_bytes());
        }
        v.truncate(n);
        v
    };
    let large = ((1u64 << 30) - (SMALL * SMALL_BYTES) as u64) / LARGE as u64;
    let mut total = 0;
    for i in 0..SMALL + LARGE {
        let dir = root.join(format!("target/debug/deps/d{:03}", i % 200));
        std::fs::create_dir_all(&dir).unwrap();
        let n = if i < SMALL {
            SMALL_BYTES
        } else {
            large as usize
        };
        std::fs::write(dir.join(format!("f{i}.o")), bytes(n)).unwrap();
        total += n as u64;
    }
    total
}

fn run(label: &str, base: &Path) -> String {
    let env = TestEnv::new_in(base);
    std::fs::write(env.root.join(".gitignore"), "target/\n").unwrap();
    std::fs::write(env.root.join(".worktreeinclude"), "target/\n").unwrap();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "rules"]);
    let total = fill_target(&env.root);
    let repo = Repo::open(&env.root).unwrap();
    let reflink_works = cp(&env, "probe", true).is_some();
    let (mut ours, mut plain, mut reflink) = (Vec::new(), Vec::new(), Vec::new());
    let mut cloned = 0;
    for round in 0..ROUNDS {
        let mut cases: Vec<u8> = vec![0, 1, 2];
        cases.rotate_left(round % 3);
        for case in cases {
            sync();
            match case {
                0 => {
                    let dest = env.root.join(format!(".claude/bench/wt{round}"));
                    env.git(&["worktree", "add", "-q", "--detach", dest.to_str().unwrap()]);
                    sync();
                    let started = Instant::now();
                    let copied =
                        include::copy_included(&repo, &dest, CopyMode::Auto, &|_| {}).unwrap();
                    ours.push(started.elapsed());
                    assert_eq!(copied.copied.len(), SMALL + LARGE);
                    cloned = copied.cloned;
                }
                1 => plain.extend(cp(&env, &format!("plain{round}"), false)),
                _ if reflink_works => reflink.extend(cp(&env, &format!("reflink{round}"), true)),
                _ => {}
            }
        }
    }
    let _ = std::fs::remove_dir_all(env.root.join(".claude/bench"));
    let _ = std::fs::remove_dir_all(env.root.join(".claude/cp"));
    env.git(&["worktree", "prune"]);
    // Ratios of medians: one slow round of the shared disk (several times the others) must
    // not decide a ratio of three rounds.
    let median = |v: &[Duration]| Stats::of(v).median;
    println!(
        "\n## include of a target/ ({} files, {:.2} GiB) on {label}\n",
        SMALL + LARGE,
        total as f64 / f64::from(1u32 << 30)
    );
    println!("{TABLE_HEADER}");
    println!(
        "{}",
        Stats::of(&ours).row(&format!(
            "orchestrate: copy_included (auto; {cloned} of {} cloned)",
            SMALL + LARGE
        ))
    );
    println!("{}", Stats::of(&plain).row("`cp -R`"));
    let vs_reflink = if reflink.is_empty() {
        println!("| `cp -R --reflink=always` | – | fails: no clones on this file system | | | |");
        "n/a".to_string()
    } else {
        println!("{}", Stats::of(&reflink).row("`cp -R --reflink=always`"));
        format!("**{:.2}**", median(&ours) / median(&reflink))
    };
    format!(
        "| {label} | **{:.2}** | {vs_reflink} | {:.2} |",
        median(&ours) / median(&plain),
        Stats::of(&ours).median / 1000.0
    )
}

/// `cp -R [--reflink=always] target <root>/.claude/cp/<name>`, timed; `None` if it failed.
fn cp(env: &TestEnv, name: &str, reflink: bool) -> Option<Duration> {
    let dest = env.root.join(".claude/cp").join(name);
    std::fs::create_dir_all(&dest).unwrap();
    let mut cmd = Command::new("cp");
    cmd.arg("-R");
    if reflink {
        cmd.arg("--reflink=always");
    }
    let src = if name == "probe" {
        let p = env.root.join(".claude/probe");
        std::fs::write(&p, "probe").unwrap();
        p
    } else {
        env.root.join("target")
    };
    let started = Instant::now();
    let ok = cmd
        .arg(&src)
        .arg(&dest)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let took = started.elapsed();
    let _ = std::fs::remove_dir_all(&dest);
    ok.then_some(took)
}

fn sync() {
    let _ = Command::new("sync").status();
}

/// The type of the file system holding `dir` (`findmnt`; `stat -f` says ext2/ext3 for ext4).
fn fs_type(dir: &Path) -> String {
    Command::new("findmnt")
        .args(["-n", "-o", "FSTYPE", "-T"])
        .arg(dir)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// A 6 GiB file system in a sparse loop file under `base`, unmounted and deleted on drop.
struct LoopFs {
    image: PathBuf,
    mount: PathBuf,
}

impl LoopFs {
    /// Made with `mkfs` (the command and its options; the image is the last argument).
    fn make(name: &str, mkfs: &[&str], base: &Path) -> Result<Self, String> {
        let dir = base.join(format!("orchestrate-{name}-{}", std::process::id()));
        let image = dir.with_extension("img");
        let run = |cmd: &mut Command| -> Result<(), String> {
            let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "{cmd:?}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        };
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(6 << 30))
            .map_err(|e| format!("cannot make {}: {e}", image.display()))?;
        let made = run(Command::new(mkfs[0]).args(&mkfs[1..]).arg(&image))
            .and_then(|()| std::fs::create_dir_all(&dir).map_err(|e| e.to_string()))
            .and_then(|()| {
                run(Command::new("mount")
                    .args(["-o", "loop"])
                    .arg(&image)
                    .arg(&dir))
            });
        match made {
            Ok(()) => Ok(Self { image, mount: dir }),
            Err(e) => {
                let _ = std::fs::remove_file(&image);
                let _ = std::fs::remove_dir(&dir);
                Err(format!("{e} (needs {} and root to mount)", mkfs[0]))
            }
        }
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount).status();
        let _ = std::fs::remove_dir(&self.mount);
        let _ = std::fs::remove_file(&self.image);
    }
}
