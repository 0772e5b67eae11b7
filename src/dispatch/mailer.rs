//! What sending needs of a transport: hand over one message and say, on failure, whether it
//! was certainly not delivered, refused for good, or of unknown fate.
//!
//! The distinction is what once-only delivery rests on, and lettre's [`Transport`] trait
//! cannot make it: its errors do not say whether the connection broke before or after the
//! message's final dot. [`super::smtp::SmtpMailer`] drives the SMTP transaction itself and
//! can; [`TransportMailer`] adapts any lettre transport (the stub in tests) and treats an
//! unexplained failure as unknown, the safe side.

use lettre::Transport;
use lettre::address::Envelope;

/// Why a message was not (known to be) accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// Certainly not delivered: no connection, a 4xx reply, or the connection lost before
    /// the message was complete. Safe to retry.
    NotDelivered(String),
    /// The server refused it for good (5xx). Retrying will not help.
    Refused(String),
    /// The message may or may not have been accepted (the connection was lost while the
    /// message or its reply was on the wire). Resending could deliver it twice.
    Unknown(String),
}

impl std::fmt::Display for SendFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendFailure::NotDelivered(m) | SendFailure::Refused(m) | SendFailure::Unknown(m) => {
                f.write_str(m)
            }
        }
    }
}

/// Hands messages to a mail server. `Sync`: the sender calls it from several threads at
/// once (one SMTP connection each, up to the pool size).
pub trait Mailer: Sync {
    /// Sends one formatted message; `Ok` carries the server's reply to it.
    fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<String, SendFailure>;
}

/// A borrowed mailer sends like the one it borrows.
impl<M: Mailer + ?Sized> Mailer for &M {
    fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<String, SendFailure> {
        (**self).send(envelope, message)
    }
}

/// Any lettre [`Transport`] as a [`Mailer`]. Lettre's errors do not tell where a
/// transaction broke, so a transient error (4xx) counts as not delivered, a permanent one
/// (5xx) as refused, and anything else as unknown.
pub struct TransportMailer<T>(pub T);

/// How a lettre transport's error is classified.
pub trait ClassifyError {
    /// A 4xx reply.
    fn is_transient(&self) -> bool;
    /// A 5xx reply.
    fn is_permanent(&self) -> bool;
}

impl ClassifyError for lettre::transport::smtp::Error {
    fn is_transient(&self) -> bool {
        lettre::transport::smtp::Error::is_transient(self)
    }
    fn is_permanent(&self) -> bool {
        lettre::transport::smtp::Error::is_permanent(self)
    }
}

impl ClassifyError for lettre::transport::stub::Error {
    fn is_transient(&self) -> bool {
        false
    }
    fn is_permanent(&self) -> bool {
        false
    }
}

impl<T> Mailer for TransportMailer<T>
where
    T: Transport + Sync,
    T::Ok: std::fmt::Debug,
    T::Error: ClassifyError + std::fmt::Display,
{
    fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<String, SendFailure> {
        match self.0.send_raw(envelope, message) {
            Ok(ok) => Ok(format!("{ok:?}")),
            Err(err) if err.is_permanent() => Err(SendFailure::Refused(err.to_string())),
            Err(err) if err.is_transient() => Err(SendFailure::NotDelivered(err.to_string())),
            Err(err) => Err(SendFailure::Unknown(err.to_string())),
        }
    }
}
