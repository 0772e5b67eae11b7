//! Building the MIME message of a queued email: headers from configuration and the letter
//! key, text + HTML alternatives, and the letter's PDF when attached.

use std::time::SystemTime;

use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart};
use sha2::{Digest, Sha256};

use super::{DispatchError, OutgoingEmail};
use crate::config::{Config, hex};
use crate::letter::LetterKey;

/// The Message-ID of a letter's email: `<first 32 hex of sha256(key, NUL, pdf sha256)@missive.HOST>`
/// with HOST the agency website's host. The same letter and file give the same id on every
/// retry and deliberate resend, so a receiving system can drop a duplicate; a reissue
/// (a new file under the same key) gets a new one.
pub fn message_id(key: &LetterKey, pdf_sha256: Option<&str>, config: &Config) -> String {
    let mut hasher = Sha256::new();
    hasher.update(key.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(pdf_sha256.unwrap_or_default().as_bytes());
    let digest = hex(&hasher.finalize());
    format!("<{}@missive.{}>", &digest[..32], agency_host(config))
}

/// The host of the agency's website (`portal.ct.gov/DRS` → `portal.ct.gov`).
pub fn agency_host(config: &Config) -> String {
    let site = config.agency.website.trim();
    let site = site.split_once("://").map_or(site, |(_, rest)| rest);
    let host = site.split(['/', ':', '?', '#']).next().unwrap_or_default();
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
        .collect::<String>()
        .to_ascii_lowercase();
    if host.is_empty() {
        "localhost".to_owned()
    } else {
        host
    }
}

/// The message for `outgoing`, dated `date`; `pdf` is the letter's file when attached.
pub fn build(
    outgoing: &OutgoingEmail,
    config: &Config,
    message_id: &str,
    date: SystemTime,
    pdf: Option<Vec<u8>>,
) -> Result<Message, DispatchError> {
    let email = &outgoing.email;
    let invalid = |what: &str, message: String| DispatchError::Message {
        key: email.key.clone(),
        message: format!("{what}: {message}"),
    };
    let from: Mailbox = config
        .email
        .from
        .parse()
        .map_err(|e| invalid("email.from", format!("{e}")))?;
    let reply_to: Mailbox = config
        .email
        .reply_to
        .parse()
        .map_err(|e| invalid("email.reply_to", format!("{e}")))?;
    let address = email
        .to_address
        .parse()
        .map_err(|e| invalid("recipient", format!("`{}`: {e}", email.to_address)))?;
    let to = Mailbox::new(Some(email.to_name.clone()), address);
    let alternatives = MultiPart::alternative_plain_html(email.text.clone(), email.html.clone());
    let body = match pdf {
        Some(bytes) => {
            let name = outgoing
                .pdf_file
                .clone()
                .unwrap_or_else(|| format!("{}.pdf", email.key.file_stem()));
            let pdf_type = ContentType::parse("application/pdf")
                .map_err(|e| invalid("attachment", e.to_string()))?;
            MultiPart::mixed()
                .multipart(alternatives)
                .singlepart(Attachment::new(name).body(bytes, pdf_type))
        }
        None => alternatives,
    };
    Message::builder()
        .message_id(Some(message_id.to_owned()))
        .date(date)
        .from(from)
        .reply_to(reply_to)
        .to(to)
        .subject(email.subject.clone())
        .multipart(body)
        .map_err(|e| invalid("message", e.to_string()))
}
