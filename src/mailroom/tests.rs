use super::*;

fn mail() -> MailConfig {
    crate::config::Config::parse(crate::config::BUILT_IN)
        .expect("built-in config")
        .mail
}

#[test]
fn piece_codes_make_a_valid_imb_and_article_number() {
    let mail = mail();
    let codes = piece_codes(&mail, MailClass::Certified, "06103", 42, Some(7)).expect("codes");
    assert_eq!(codes.tracking_code, "00300123456000000042");
    assert_eq!(codes.imb.len(), 65);
    assert!(codes.imb.chars().all(|c| "FADT".contains(c)));
    let article = codes.article_number.expect("certified");
    assert_eq!(article.len(), 20);
    assert!(article::is_valid(&article));
    assert!(article.starts_with(&mail.certified_prefix));
    // A 5-digit ZIP and a ZIP+4 both encode.
    let other = piece_codes(&mail, MailClass::Certified, "061031234", 42, None).expect("codes");
    assert_ne!(other.imb, codes.imb);
    assert_eq!(other.article_number, None);
}
