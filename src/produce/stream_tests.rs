//! `render`'s streamed summary: the file is what `Producer::produce` writes, in the plan's
//! order, whether chunks arrive in order or not, and the spill leaves nothing behind.

use super::*;
use crate::produce::ProduceSummary;

fn written(key: &str, template: &str) -> (WrittenLetter, [u8; 32]) {
    let digest = [key.len() as u8; 32];
    let key = LetterKey::from_text(key);
    let letter = WrittenLetter {
        file: format!("{}.pdf", key.file_stem()),
        key,
        pages: 2,
        sha256: hex(&digest),
        template: template.to_owned(),
        template_sha256: format!("sha-of-{template}"),
    };
    (letter, digest)
}

fn failed(key: &str, message: &str) -> FailedLetter {
    FailedLetter {
        key: LetterKey::from_text(key),
        message: message.to_owned(),
    }
}

fn kind_of(key: &LetterKey) -> Option<LetterKind> {
    let kind = key.as_str().split('/').nth(1)?;
    [
        LetterKind::IntentToOffset,
        LetterKind::OffsetNotice,
        LetterKind::Refund,
        LetterKind::ReviewOutcome,
    ]
    .into_iter()
    .find(|k| k.as_str() == kind)
}

/// Notes one chunk: `written` letters with their digests, then `failed`, the first
/// `compose_failed` of which could not be composed.
fn note(
    stream: &mut SummaryStream,
    written: &[(WrittenLetter, [u8; 32])],
    failed: Vec<FailedLetter>,
    compose_failed: usize,
) {
    let (written, digests) = written.iter().cloned().unzip();
    let outcome = ChunkOutcome {
        written,
        digests,
        failed,
        compose_failed,
    };
    stream.note(outcome, kind_of).expect("noted");
}

/// The failures both summary tests end with, in the summary's order.
fn failures_in_summary_order() -> Vec<FailedLetter> {
    vec![
        failed("A/intent_to_offset/L1", "no such template"),
        failed("A/refund/F1", "typst said no"),
        failed("B/review_outcome/R1", "no case number"),
    ]
}

/// Asserts that `path` holds `want` as `produce` writes it, and that `summary` counts
/// its letters and lists its failures.
fn assert_written_as(path: &Path, summary: &StreamedSummary, want: &ProduceSummary) {
    let mut json = serde_json::to_vec_pretty(want).expect("json");
    json.push(b'\n');
    assert_eq!(
        String::from_utf8_lossy(&std::fs::read(path).expect("read")),
        String::from_utf8_lossy(&json)
    );
    assert_eq!(summary.letters, want.letters.len());
    assert_eq!(summary.failed, want.failed);
}

/// Accounts arrive out of order, failures of both stages mixed: the file is what
/// `produce` writes for the letters in plan order, in chunks of 2.
#[test]
fn the_streamed_summary_is_the_planned_order_summary_byte_for_byte() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut stream = SummaryStream::create(dir.path()).expect("stream");
    let b1 = written("B/intent_to_offset/L1", "intent");
    let b2 = written("B/refund/F1", "refund");
    note(
        &mut stream,
        &[b1.clone(), b2.clone()],
        vec![failed("B/review_outcome/R1", "no case number")],
        1,
    );
    let a1 = written("A/offset_notice/O1", "offset");
    note(
        &mut stream,
        std::slice::from_ref(&a1),
        vec![
            failed("A/intent_to_offset/L1", "no such template"),
            failed("A/refund/F1", "typst said no"),
        ],
        1,
    );
    let path = dir.path().join("render.json");
    let summary = stream.write(&path, 2).expect("written");
    // Plan order: A/intent(composing), A/offset, | A/refund(render), B/intent, |
    // B/refund, B/review(composing); failures by chunk, composing first.
    let want = ProduceSummary {
        letters: vec![a1.0, b1.0, b2.0],
        failed: failures_in_summary_order(),
    };
    assert_written_as(&path, &summary, &want);
}

/// Chunks in the plan's order are written straight from the spill: the same bytes as
/// `produce` writes, failures placed by their position across chunks, and nothing
/// left in the output directory but the summary.
#[test]
fn chunks_in_plan_order_are_written_from_the_spill_byte_for_byte() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut stream = SummaryStream::create(dir.path()).expect("stream");
    let a1 = written("A/offset_notice/O1", "offset");
    let b1 = written("B/intent_to_offset/L1", "intent");
    note(
        &mut stream,
        std::slice::from_ref(&a1),
        vec![
            failed("A/refund/F1", "typst said no"),
            failed("A/intent_to_offset/L1", "no such template"),
        ],
        0,
    );
    note(
        &mut stream,
        std::slice::from_ref(&b1),
        vec![failed("B/review_outcome/R1", "no case number")],
        1,
    );
    assert!(stream.in_order);
    let path = dir.path().join("render.json");
    let summary = stream.write(&path, 2).expect("written");
    // Plan order: A/intent(render), A/offset, | A/refund(render), B/intent, |
    // B/review(composing).
    let want = ProduceSummary {
        letters: vec![a1.0, b1.0],
        failed: failures_in_summary_order(),
    };
    assert_written_as(&path, &summary, &want);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("listed")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["render.json"]);
}

/// Within a chunk the letters that could not be composed come first, as in `produce`.
#[test]
fn a_chunks_composing_failures_come_before_its_rendering_failures() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut stream = SummaryStream::create(dir.path()).expect("stream");
    stream
        .note(
            ChunkOutcome {
                failed: vec![
                    failed("A/refund/F1", "composing"),
                    failed("A/intent_to_offset/L1", "rendering"),
                ],
                compose_failed: 1,
                ..ChunkOutcome::default()
            },
            kind_of,
        )
        .expect("noted");
    let summary = stream
        .write(&dir.path().join("s.json"), 64)
        .expect("written");
    let keys: Vec<&str> = summary.failed.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(keys, ["A/refund/F1", "A/intent_to_offset/L1"]);
    let empty = SummaryStream::create(dir.path()).expect("stream");
    let path = dir.path().join("empty.json");
    empty.write(&path, 64).expect("written");
    let mut json = serde_json::to_vec_pretty(&ProduceSummary::default()).expect("json");
    json.push(b'\n');
    assert_eq!(std::fs::read(&path).expect("read"), json);
}
