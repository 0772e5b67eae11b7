//! The SMTP mailer: lettre's SMTP client connection, driven one step at a time so that a
//! failure can be placed before or after the message was complete.
//!
//! Connections are pooled (at most `email.pool_size`, reused across messages, each used by
//! one thread at a time). TLS is `none`, `starttls` (refused when the server does not offer
//! it) or `tls` (implicit). The user comes from configuration and the password only from the
//! environment variable `email.password_env` names; a password is never sent over a
//! connection without TLS.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{SmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;

use super::DispatchError;
use super::mailer::{Mailer, SendFailure};
use crate::config::{EmailConfig, TlsMode};

/// Sends over SMTP with a pool of connections.
pub struct SmtpMailer {
    host: String,
    port: u16,
    tls: TlsMode,
    tls_parameters: Option<TlsParameters>,
    credentials: Option<Credentials>,
    timeout: Duration,
    hello: ClientId,
    pool: Mutex<Vec<SmtpConnection>>,
    pool_size: usize,
}

impl SmtpMailer {
    /// A mailer for `config`, with the password read from the environment variable
    /// `config.password_env` when `config.user` is set. `hello` is the name given in EHLO.
    pub fn from_env(config: &EmailConfig, hello: &str) -> Result<SmtpMailer, DispatchError> {
        let password =
            match &config.user {
                Some(_) => Some(std::env::var(&config.password_env).map_err(|_| {
                    DispatchError::Password {
                        var: config.password_env.clone(),
                    }
                })?),
                None => None,
            };
        SmtpMailer::new(config, hello, password)
    }

    /// A mailer for `config` with an explicit password (tests).
    pub fn new(
        config: &EmailConfig,
        hello: &str,
        password: Option<String>,
    ) -> Result<SmtpMailer, DispatchError> {
        let tls_parameters = match config.tls {
            TlsMode::None => None,
            TlsMode::Starttls | TlsMode::Tls => Some(
                TlsParameters::new(config.host.clone())
                    .map_err(|source| DispatchError::Tls { source })?,
            ),
        };
        let credentials = match (&config.user, password) {
            (Some(_), _) if config.tls == TlsMode::None => {
                return Err(DispatchError::PlainTextPassword);
            }
            (Some(user), Some(password)) => Some(Credentials::new(user.clone(), password)),
            _ => None,
        };
        Ok(SmtpMailer {
            host: config.host.clone(),
            port: config.port,
            tls: config.tls,
            tls_parameters,
            credentials,
            timeout: Duration::from_secs(config.timeout_seconds),
            hello: ClientId::Domain(hello.to_owned()),
            pool: Mutex::new(Vec::new()),
            pool_size: config.pool_size,
        })
    }

    /// A new connection: connect, EHLO, STARTTLS if asked, AUTH if configured.
    fn connect(&self) -> Result<SmtpConnection, lettre::transport::smtp::Error> {
        let implicit = match self.tls {
            TlsMode::Tls => self.tls_parameters.as_ref(),
            _ => None,
        };
        let mut conn = SmtpConnection::connect(
            (self.host.as_str(), self.port),
            Some(self.timeout),
            &self.hello,
            implicit,
            None,
        )?;
        if self.tls == TlsMode::Starttls
            && let Some(params) = &self.tls_parameters
        {
            conn.starttls(params, &self.hello)?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(DEFAULT_MECHANISMS, credentials)?;
        }
        Ok(conn)
    }

    fn take(&self) -> Option<SmtpConnection> {
        self.pool.lock().ok().and_then(|mut pool| pool.pop())
    }

    fn give_back(&self, mut conn: SmtpConnection) {
        if let Ok(mut pool) = self.pool.lock()
            && pool.len() < self.pool_size
            && !conn.has_broken()
        {
            pool.push(conn);
            return;
        }
        let _ = conn.quit();
    }

    /// MAIL, RCPT…, DATA: nothing is delivered if any of these fails.
    fn envelope(
        conn: &mut SmtpConnection,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<(), lettre::transport::smtp::Error> {
        let mut options = Vec::new();
        if !message.is_ascii() && conn.server_info().supports_feature(Extension::EightBitMime) {
            options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        conn.command(Mail::new(envelope.from().cloned(), options))?;
        for to in envelope.to() {
            conn.command(Rcpt::new(to.clone(), Vec::new()))?;
        }
        conn.command(Data)?;
        Ok(())
    }
}

/// A message as DATA carries it, written in one piece: dot-stuffed (RFC 5321 4.5.2) and
/// ended by CRLF.CRLF. lettre's `SmtpConnection::message` writes the body and the final
/// ".\r\n" in two writes, and lettre cannot set TCP_NODELAY: with Nagle's algorithm the
/// small second write waits for the server's delayed ACK, about 40 ms a message.
struct DataInOneWrite(String);

impl DataInOneWrite {
    fn new(message: &str) -> DataInOneWrite {
        let mut data = String::with_capacity(message.len() + message.len() / 64 + 8);
        let mut line_start = true;
        let mut after_cr = false;
        for c in message.chars() {
            if line_start && c == '.' {
                data.push('.');
            }
            data.push(c);
            line_start = after_cr && c == '\n';
            after_cr = c == '\r';
        }
        data.push_str("\r\n.\r\n");
        DataInOneWrite(data)
    }
}

impl fmt::Display for DataInOneWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A reply as one line: `250 2.0.0 Ok: queued as 1234`.
pub fn reply_text(response: &Response) -> String {
    let lines: Vec<&str> = response.message().collect();
    format!("{} {}", response.code(), lines.join(" / "))
}

impl Mailer for SmtpMailer {
    fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<String, SendFailure> {
        // A pooled connection may have been closed by the server while idle: a failure
        // before DATA on a reused connection is retried once on a fresh one.
        let mut reused = self.take();
        let mut conn = loop {
            let was_reused = reused.is_some();
            let mut conn = match reused.take() {
                Some(conn) => conn,
                None => self
                    .connect()
                    .map_err(|e| SendFailure::NotDelivered(format!("could not connect: {e}")))?,
            };
            match Self::envelope(&mut conn, envelope, message) {
                Ok(()) => break conn,
                Err(err) => {
                    conn.abort();
                    if err.is_permanent() {
                        return Err(SendFailure::Refused(err.to_string()));
                    }
                    if was_reused && !err.is_transient() {
                        continue;
                    }
                    return Err(SendFailure::NotDelivered(err.to_string()));
                }
            }
        };
        let sent = match std::str::from_utf8(message) {
            Ok(text) => conn.command(DataInOneWrite::new(text)),
            Err(_) => conn.message(message),
        };
        match sent {
            Ok(response) => {
                let reply = reply_text(&response);
                self.give_back(conn);
                Ok(reply)
            }
            Err(err) => {
                conn.abort();
                if err.is_permanent() {
                    Err(SendFailure::Refused(err.to_string()))
                } else if err.is_transient() {
                    Err(SendFailure::NotDelivered(err.to_string()))
                } else {
                    Err(SendFailure::Unknown(format!(
                        "the connection failed after the message was sent, before the server confirmed it: {err}"
                    )))
                }
            }
        }
    }
}

impl Drop for SmtpMailer {
    fn drop(&mut self) {
        if let Ok(pool) = self.pool.get_mut() {
            for mut conn in pool.drain(..) {
                let _ = conn.quit();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DataInOneWrite;

    #[test]
    fn data_is_dot_stuffed_like_lettre_and_ends_with_the_final_dot() {
        // lettre's own transparency test vector, as one message.
        let message = ".\r\ntest\r\ntest\r\n\r\n.\r\n\r\ntestte\r\n.\r\nsttesttest.test\n.test\n\
                       testtesttest\r\n.test\r\ntest.\r\n";
        assert_eq!(
            DataInOneWrite::new(message).to_string(),
            "..\r\ntest\r\ntest\r\n\r\n..\r\n\r\ntestte\r\n..\r\nsttesttest.test\n.test\n\
             testtesttest\r\n..test\r\ntest.\r\n\r\n.\r\n"
        );
        assert_eq!(
            DataInOneWrite::new("a\r\r\n.b").to_string(),
            "a\r\r\n..b\r\n.\r\n"
        );
    }
}
