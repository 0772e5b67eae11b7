//! The payloads of the work queue: what the record step stores reads back as the planned
//! letter, and a payload that is not the planned letter is refused.

use super::*;
use crate::config::{BUILT_IN, Config};

/// Every sample letter with its account, planned on 2026-12-01.
fn sample_letters() -> Vec<(DueLetter, Account)> {
    let config = Config::parse(BUILT_IN).expect("built-in config");
    let (accounts, letters) = crate::dispatch::tests::planned(&config, "samples/accounts", |_| {});
    letters
        .into_iter()
        .map(|l| {
            let account = accounts[&l.account_id].clone();
            (l, account)
        })
        .collect()
}

/// A template version and fonts hash for payloads made here.
const V1: RenderedWith<'static> = RenderedWith {
    template_sha256: "v1",
    fonts_sha256: "f1",
};

fn claimed(payload: LetterPayload) -> ClaimedLetter {
    ClaimedLetter {
        key: payload.key,
        payload_sha256: crate::ledger::payload_sha256(&payload.payload),
        data_sha256: payload.data_sha256,
        payload: payload.payload,
    }
}

#[test]
fn every_sample_letter_reads_back_from_its_payload_as_planned() {
    let letters = sample_letters();
    assert!(letters.len() > 20, "the samples plan every kind");
    let marks = MailMarks {
        imb: "FADT".repeat(16) + "F",
        article: Some("9407 1000 0000 0000 0000 00".to_owned()),
    };
    for (letter, account) in &letters {
        let sha = plan_sha256(letter).expect("hash");
        let payload = payload_of(letter, account, Some((7, &marks)), V1).expect("payload");
        let back = read_payload(&claimed(payload), &sha).expect("reads back");
        assert_eq!(&back.letter, letter, "`{}`", letter.key);
        assert_eq!(&back.account, account);
        assert_eq!((back.piece, back.marks.as_ref()), (Some(7), Some(&marks)));
    }
}

#[test]
fn a_payload_that_is_not_the_planned_letter_is_refused() {
    let letters = sample_letters();
    let (letter, account) = &letters[0];
    let payload = payload_of(letter, account, None, V1).expect("payload");
    let err = read_payload(&claimed(payload.clone()), "0ther").expect_err("other hash");
    assert!(err.contains("not the one the ledger recorded"), "{err}");
    assert!(err.contains("0ther"), "{err}");

    let (other, _) = &letters[1];
    let swapped = ClaimedLetter {
        key: other.key.clone(),
        payload_sha256: crate::ledger::payload_sha256(&payload.payload),
        data_sha256: String::new(),
        payload: payload.payload,
    };
    let sha = plan_sha256(other).expect("hash");
    let err = read_payload(&swapped, &sha).expect_err("another letter's payload");
    assert!(err.contains(letter.key.as_str()), "{err}");

    let broken = ClaimedLetter {
        key: letter.key.clone(),
        payload: "{".to_owned(),
        payload_sha256: crate::ledger::payload_sha256("{"),
        data_sha256: String::new(),
    };
    let err = read_payload(&broken, "x").expect_err("not JSON");
    assert!(err.contains("cannot be read"), "{err}");
}

#[test]
fn a_payload_without_fonts_reads_back_with_none_so_the_worker_refuses_it() {
    // An older coordinator's payload has no fonts hash: it must read back (and then be
    // refused as other fonts), not fail the letter as unreadable.
    let letters = sample_letters();
    let (letter, account) = &letters[0];
    let payload = payload_of(letter, account, None, V1).expect("payload");
    let mut json: serde_json::Value = serde_json::from_str(&payload.payload).expect("JSON");
    assert_eq!(json["fonts_sha256"], "f1");
    json.as_object_mut().expect("object").remove("fonts_sha256");
    let older = LetterPayload {
        payload: json.to_string(),
        ..payload
    };
    let sha = plan_sha256(letter).expect("hash");
    let back = read_payload(&claimed(older), &sha).expect("reads back");
    assert_eq!(back.fonts_sha256, "");
}
