//! Bad ledgers: a file that is not a missive ledger, or a path that cannot be written, stops
//! the run with exit 2, names the file and writes nothing (the file itself is left as it was).

use crate::common::Fixture;
use crate::common::files::{pdfs, utf8};
use crate::{AS_OF, SAMPLES, missive, run_cmd, samples_run};

#[test]
fn a_corrupt_ledger_stops_the_run_naming_the_file() {
    for (what, bytes) in [
        (
            "garbage",
            (0..4096u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect::<Vec<u8>>(),
        ),
        (
            "a broken SQLite header",
            b"SQLite format 3\0garbage garbage garbage".to_vec(),
        ),
    ] {
        let dir = Fixture::empty();
        let out = dir.join("out");
        let ledger_path = dir.write("out/missive.db", &bytes);
        let run = samples_run(&out, AS_OF);
        run.expect_code(2);
        assert!(
            run.stderr.contains(utf8(&ledger_path)) && run.stderr.contains("not a missive ledger"),
            "{what}: {}",
            run.stderr
        );
        assert!(pdfs(&out).is_empty(), "{what}: PDFs written");
        assert_eq!(
            std::fs::read(&ledger_path).expect("ledger"),
            bytes,
            "{what}: file changed"
        );

        let history = missive(&["history", "CT-0001001", "--ledger", utf8(&ledger_path)]);
        history.expect_code(2);
        assert!(
            history.stderr.contains(utf8(&ledger_path)),
            "{}",
            history.stderr
        );
    }
}

#[test]
fn an_unwritable_ledger_path_stops_the_run_with_a_clear_message() {
    let dir = Fixture::empty();
    let out = dir.join("out");
    let run = run_cmd(
        SAMPLES,
        &out,
        &["--as-of", AS_OF, "--ledger", "/proc/missive.db"],
    );
    run.expect_code(2);
    assert!(
        run.stderr.contains("/proc/missive.db") && run.stderr.contains("Failed to open the ledger"),
        "{}",
        run.stderr
    );
    assert!(pdfs(&out).is_empty(), "PDFs written without a ledger");

    // A ledger whose directory cannot be created.
    let run = run_cmd(
        SAMPLES,
        &out,
        &["--as-of", AS_OF, "--ledger", "/proc/self/none/missive.db"],
    );
    run.expect_code(2);
    assert!(run.stderr.contains("/proc/self/none"), "{}", run.stderr);
    assert!(pdfs(&out).is_empty());
}
