//! `orchestrate logs`: stream-json rendered or raw, `-f` following until the worker ends, and
//! a stream that has no log told apart from a name that matches no stream.

use crate::start::{Fake, LONG, wait_exit};
use crate::support::{TestEnv, wait_for};
use orchestrate::exit_codes;

fn one_stream() -> Fake {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    let mut fake = Fake::new(env);
    fake.set("STREAM_JSON", None, "1");
    fake
}

#[test]
fn logs_render_stream_json_and_raw_prints_it_as_written() {
    let fake = one_stream();
    let run = fake.run(&["start"]).success();
    assert!(
        run.stderr().contains(
            "Stream-A: worker exited with code 0 (session fake-session, cost $0.0123, 3 turns)"
        ),
        "{}",
        run.stderr()
    );
    let doc = fake.run(&["status", "--json"]).success().json();
    let worker = &doc["streams"][0]["worker"];
    assert_eq!(worker["session_id"], "fake-session", "{doc}");
    assert_eq!(worker["cost_usd"], 0.0123);
    assert_eq!(worker["turns"], 3);
    let out = fake.run(&["logs", "Stream-A"]).success().stdout();
    assert!(out.contains("==== orchestrate worker: Stream-A"), "{out}");
    assert!(out.contains("==== dependencies: none"), "{out}");
    assert!(out.contains("→ Bash: make test"), "{out}");
    assert!(out.contains("waiting on the API (retry 2 of 10)"), "{out}");
    assert!(
        out.contains("result: success: All done. (cost $0.0123, 3 turns)"),
        "{out}"
    );
    assert!(!out.contains("\"type\""), "{out}");
    let raw = fake.run(&["logs", "--raw", "Stream-A"]).success().stdout();
    assert!(raw.contains(r#"{"type":"result""#), "{raw}");
}

#[test]
fn a_stream_without_a_log_and_an_unknown_name_are_told_apart() {
    use orchestrate::exit_codes::{FAILURE, NO_STREAMS};
    let fake = one_stream();
    let run = fake.run(&["logs", "Stream-A"]).expect_code(FAILURE);
    assert!(
        run.stderr().contains("stream `Stream-A` has no log yet")
            && run.stderr().contains("no worker has run for it"),
        "{}",
        run.stderr()
    );
    fake.run(&["start"]).success();
    let run = fake.run(&["logs", "Stream-Q"]).expect_code(NO_STREAMS);
    assert!(
        run.stderr()
            .contains("no stream named `Stream-Q` (did you mean `Stream-A`?)"),
        "{}",
        run.stderr()
    );
}

#[test]
fn follow_prints_until_the_worker_ends() {
    let mut fake = one_stream();
    let go = fake.markers.join("go");
    fake.set("WAIT_FOR", None, go.to_str().unwrap());
    let mut start = fake.spawn(&["start"], "start");
    wait_for("Stream-A to start", LONG, || {
        fake.marker("Stream-A", "started").exists()
    });
    let mut follow = fake.spawn(&["logs", "-f", "Stream-A"], "follow");
    wait_for("the header to be shown", LONG, || {
        fake.output_of("follow", "out")
            .contains("orchestrate worker: Stream-A")
    });
    std::fs::write(&go, "").unwrap();
    assert_eq!(wait_exit(&mut follow, LONG), exit_codes::OK);
    let out = fake.output_of("follow", "out");
    assert!(out.contains("result: success: All done."), "{out}");
    assert!(out.contains("worker exited with code 0"), "{out}");
    assert_eq!(wait_exit(&mut start, LONG), exit_codes::OK);
}
