# Shared by the long-run scripts: `. "$(dirname "$0")/lib.sh"` from the script.

# long_run TEST TRIALS: runs the `#[ignore]`d integration test TEST with RELIABILITY_TRIALS and
# prints the report it wrote (also when it failed); exits with the test's status.
long_run() {
    report=$(mktemp)
    trap 'rm -f "$report"' EXIT
    status=0
    RELIABILITY_TRIALS=$2 RELIABILITY_REPORT=$report \
        cargo test --test integration "$1" -- --ignored --exact || status=$?
    cat "$report"
    exit $status
}
