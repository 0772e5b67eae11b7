//! Unit tests of the renderer's input handling; rendering itself is tested in
//! `tests/render.rs`.

use super::*;

#[test]
fn renderer_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Renderer>();
    assert_send_sync::<RenderError>();
}

#[test]
fn parses_languages_with_and_without_region() {
    let en = parse_locale("en").expect("en parses");
    assert_eq!(en.rfc_3066(), "en");
    let us = parse_locale("en-US").expect("en-US parses");
    assert_eq!(us.rfc_3066(), "en-US");
    let es = parse_locale("es_mx").expect("es_mx parses");
    assert_eq!(es.rfc_3066(), "es-MX");
}

#[test]
fn rejects_bad_languages() {
    for bad in ["", "e", "english", "en-USA", "1a", "en-"] {
        let err = parse_locale(bad).expect_err(bad);
        assert!(
            matches!(err, RenderError::InvalidLang { .. }),
            "{bad}: {err}"
        );
    }
}

#[test]
fn rejects_empty_title() {
    let job = LetterSource {
        main: String::new(),
        date: chrono::NaiveDate::from_ymd_opt(2025, 3, 14).expect("valid date"),
        title: "  ".into(),
        author: String::new(),
        lang: "en".into(),
    };
    assert!(matches!(Prepared::new(&job), Err(RenderError::EmptyTitle)));
}
