//! Progress bars from the outside: one per step on a terminal, none with `--quiet`, none
//! when standard error is a pipe (the messages other than bars are what they were).

mod common;

use std::path::Path;
use std::process::Command;

use common::{missive_in, root};

/// Characters of a drawn bar: its cells, carriage returns and terminal escapes.
const BAR_MARKS: [char; 4] = ['█', '░', '\r', '\u{1b}'];

fn has_bar(text: &str) -> bool {
    text.contains(BAR_MARKS)
}

/// `missive <args>` on a pseudo-terminal (through `script`), so that standard error is a
/// terminal; returns what the terminal showed, or `None` when `script` is missing.
fn on_a_terminal(args: &[String]) -> Option<String> {
    let binary = env!("CARGO_BIN_EXE_missive");
    let quoted: Vec<String> = std::iter::once(binary.to_owned())
        .chain(args.iter().cloned())
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect();
    let out = Command::new("script")
        .args(["-qec", &quoted.join(" "), "/dev/null"])
        .current_dir(root())
        .output()
        .ok()?;
    // A terminal ends lines with CR LF; a bar's CR is one without LF.
    Some(String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n"))
}

fn run_args(dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--config",
        common::gate_off_config("progress-tests")
            .to_str()
            .expect("path"),
        "run",
        "--accounts",
        "samples/accounts",
        "--as-of",
        "2026-12-01",
        "--allow-past-mail-date",
        "--out",
    ]
    .map(String::from)
    .to_vec();
    args.push(dir.join("out").display().to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn render_args(dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "render",
        "--accounts",
        "samples/accounts",
        "--as-of",
        "2026-12-01",
        "--out",
    ]
    .map(String::from)
    .to_vec();
    args.push(dir.join("out").display().to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[test]
fn piped_output_has_no_progress_bars() {
    for make in [run_args, render_args] {
        for extra in [&[][..], &["--quiet"][..]] {
            let dir = tempfile::tempdir().expect("temp");
            let args = make(dir.path(), extra);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let r = missive_in(root(), &args);
            assert!(r.code == 0 || r.code == 1, "{args:?}: {}", r.stderr);
            assert!(
                !has_bar(&r.stderr),
                "{args:?}: a bar on a pipe:\n{}",
                r.stderr
            );
            assert!(
                !has_bar(&r.stdout),
                "{args:?}: a bar on stdout:\n{}",
                r.stdout
            );
        }
    }
}

#[test]
fn a_terminal_shows_bars_per_step_and_quiet_shows_none() {
    let dir = tempfile::tempdir().expect("temp");
    let Some(shown) = on_a_terminal(&run_args(dir.path(), &[])) else {
        return;
    };
    assert!(has_bar(&shown), "no bar on a terminal:\n{shown}");
    assert!(shown.contains("rendering"), "{shown}");
    let dir = tempfile::tempdir().expect("temp");
    let quiet = on_a_terminal(&run_args(dir.path(), &["--quiet"])).expect("script");
    assert!(!has_bar(&quiet), "a bar with --quiet:\n{quiet}");
    assert!(!quiet.contains("rendering "), "{quiet}");
    // The report itself is still there.
    let first_line = shown.lines().find(|l| !has_bar(l)).unwrap_or_default();
    assert!(
        quiet.contains(first_line.trim()),
        "{first_line:?} missing:\n{quiet}"
    );
    let dir = tempfile::tempdir().expect("temp");
    let render = on_a_terminal(&render_args(dir.path(), &["--quiet"])).expect("script");
    assert!(!has_bar(&render), "a bar with render --quiet:\n{render}");
}
