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

fn entry(key: &str, account: &str, class: MailClass, zip: &str, plus4: &str) -> PrintEntry {
    PrintEntry {
        key: LetterKey::from_text(key),
        account_id: account.to_owned(),
        class,
        zip: zip.to_owned(),
        plus4: plus4.to_owned(),
    }
}

#[test]
fn print_order_is_certified_first_then_zip_zip4_account_key_and_the_rest_is_left_over() {
    let entries = [
        entry("k5", "A2", MailClass::FirstClass, "06001", ""),
        entry("k4", "A9", MailClass::Certified, "06103", "1234"),
        entry("k3", "A1", MailClass::Certified, "06103", ""),
        entry("k2", "A1", MailClass::Certified, "06103", "0001"),
        entry("k1", "A1", MailClass::Certified, "06103", "0001"),
    ];
    let open: Vec<(LetterKey, i64)> = ["k1", "k2", "k3", "k4", "k5", "other", "gone"]
        .iter()
        .zip([7, 7, 7, 7, 7, 3, 7])
        .map(|(key, run)| (LetterKey::from_text(key), run))
        .collect();
    let sorted = sort_for_print(&open, &entries);
    let keys: Vec<&str> = sorted.items.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["k3", "k1", "k2", "k4", "k5"]);
    assert_eq!(sorted.left_over, [(3, 1), (7, 1)]);
    let all: Vec<&str> = in_print_order(&entries)
        .iter()
        .map(|e| e.key.as_str())
        .collect();
    assert_eq!(all, keys, "every entry in the same order");
    assert_eq!(entries[1].routing_code(), "061031234");
    assert_eq!(entries[0].routing_code(), "06001");
}
