//! Where a ledger is: a SQLite file, or a database on a PostgreSQL server.
//!
//! `--ledger` and `[ledger] url` take either a path or a `postgres://user@host:port/db`
//! (`postgresql://…`) URL. A password is never part of a location: it comes from the
//! environment variable `[ledger] password_env` names, and a URL that carries one is refused,
//! so no password ends up in a shell history, a configuration file or an error message.
//! A server is always named as `host:port/db` ([`PgServer`]'s Display).

use std::fmt;
use std::path::PathBuf;

/// A ledger's location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file.
    File(PathBuf),
    /// A PostgreSQL database.
    Postgres(PgLocation),
}

/// The PostgreSQL server and database of a ledger, as errors name it (`host:port/db`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgServer {
    /// The role to connect as.
    pub user: String,
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Database name.
    pub dbname: String,
}

impl fmt::Display for PgServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.host, self.port, self.dbname)
    }
}

/// A PostgreSQL ledger: its server and, if the server needs one, the password (kept out of
/// `Debug` and every message).
#[derive(Clone, PartialEq, Eq)]
pub struct PgLocation {
    /// The server and database.
    pub server: PgServer,
    /// The password, from the environment.
    pub password: Option<String>,
}

impl fmt::Debug for PgLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgLocation")
            .field("server", &self.server)
            .field("password", &self.password.as_ref().map(|_| "…"))
            .finish()
    }
}

impl PgLocation {
    /// The driver's connection settings.
    pub fn config(&self) -> postgres::Config {
        let mut config = postgres::Config::new();
        config
            .user(&self.server.user)
            .host(&self.server.host)
            .port(self.server.port)
            .dbname(&self.server.dbname)
            .application_name("missive")
            .connect_timeout(std::time::Duration::from_secs(10));
        if let Some(password) = &self.password {
            config.password(password);
        }
        config
    }
}

/// Why a ledger location is refused.
#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    /// The URL is not `postgres://user@host[:port]/db`.
    #[error(
        "`{url}` is not a PostgreSQL ledger URL: {reason} (expected `postgres://user@host:port/db`)"
    )]
    BadUrl {
        /// The URL, without any password.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The URL carries a password.
    #[error(
        "the ledger URL for `{server}` contains a password: remove it and put the password in the environment variable named by `[ledger] password_env`"
    )]
    PasswordInUrl {
        /// The server, named without the password.
        server: PgServer,
    },
    /// `[ledger] password_env` names a variable that is not set.
    #[error(
        "the ledger on `{server}` needs the password in the environment variable `{var}` (`[ledger] password_env`), which is not set"
    )]
    NoPassword {
        /// The server.
        server: PgServer,
        /// The variable.
        var: String,
    },
}

impl Location {
    /// The location `text` names: a `postgres://` or `postgresql://` URL, else a file path.
    /// `password_env` names the environment variable holding the server's password (none:
    /// connect without one).
    pub fn parse(text: &str, password_env: Option<&str>) -> Result<Location, LocationError> {
        let Some(rest) = text
            .strip_prefix("postgres://")
            .or_else(|| text.strip_prefix("postgresql://"))
        else {
            return Ok(Location::File(PathBuf::from(text)));
        };
        let bad = |reason: &str| LocationError::BadUrl {
            url: redacted(text),
            reason: reason.to_owned(),
        };
        let (authority, dbname) = rest
            .split_once('/')
            .ok_or_else(|| bad("it names no database"))?;
        if dbname.is_empty() || dbname.contains(['/', '?', '#']) {
            return Err(bad(
                "the database name must follow the host, with no options",
            ));
        }
        let (userinfo, hostport) = authority
            .rsplit_once('@')
            .ok_or_else(|| bad("it names no user"))?;
        let (user, password) = match userinfo.split_once(':') {
            Some((user, password)) => (user, Some(password)),
            None => (userinfo, None),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse::<u16>()
                    .map_err(|_| bad("the port is not a number from 1 to 65535"))?,
            ),
            None => (hostport, 5432),
        };
        if user.is_empty() || host.is_empty() || port == 0 {
            return Err(bad("the user, host and port may not be empty"));
        }
        let server = PgServer {
            user: user.to_owned(),
            host: host.to_owned(),
            port,
            dbname: dbname.to_owned(),
        };
        if password.is_some() {
            return Err(LocationError::PasswordInUrl { server });
        }
        let password = match password_env.filter(|var| !var.is_empty()) {
            None => None,
            Some(var) => Some(std::env::var(var).map_err(|_| LocationError::NoPassword {
                server: server.clone(),
                var: var.to_owned(),
            })?),
        };
        Ok(Location::Postgres(PgLocation { server, password }))
    }

    /// How the ledger is named in messages: its path, or `host:port/db`.
    pub fn name(&self) -> String {
        match self {
            Location::File(path) => path.display().to_string(),
            Location::Postgres(pg) => pg.server.to_string(),
        }
    }
}

/// `text` with anything between `://` and `@` after a `:` replaced, so a refused URL is
/// never echoed with its password.
fn redacted(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:…@{host}")
        }
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_a_file_and_a_url_names_its_server() {
        assert_eq!(
            Location::parse("out/missive.db", None).expect("path"),
            Location::File(PathBuf::from("out/missive.db"))
        );
        for url in [
            "postgres://missive@db.example:5433/ledger",
            "postgresql://missive@db.example:5433/ledger",
        ] {
            let Location::Postgres(pg) = Location::parse(url, None).expect("url") else {
                panic!("{url} is a server");
            };
            assert_eq!(pg.server.to_string(), "db.example:5433/ledger");
            assert_eq!(pg.server.user, "missive");
            assert_eq!(pg.password, None);
        }
        let Location::Postgres(pg) =
            Location::parse("postgres://m@h/db", None).expect("default port")
        else {
            panic!("a server");
        };
        assert_eq!(pg.server.port, 5432);
    }

    #[test]
    fn a_password_in_the_url_is_refused_without_echoing_it() {
        let err = Location::parse("postgres://m:hunter2@h:5432/db", None).expect_err("refused");
        let text = err.to_string();
        assert!(text.contains("contains a password"), "{text}");
        assert!(text.contains("h:5432/db"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        let err = Location::parse("postgres://m:hunter2@h:port/db", None).expect_err("bad");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn malformed_urls_and_missing_passwords_are_refused() {
        for url in [
            "postgres://h:5432/db",
            "postgres://m@h:5432",
            "postgres://m@h:5432/",
            "postgres://m@h:x/db",
            "postgres://m@h:5432/db?sslmode=disable",
        ] {
            let err = Location::parse(url, None).expect_err(url);
            assert!(
                err.to_string().contains("is not a PostgreSQL ledger URL"),
                "{err}"
            );
        }
        let err = Location::parse("postgres://m@h/db", Some("MISSIVE_TEST_NO_SUCH_VARIABLE"))
            .expect_err("unset");
        assert!(
            err.to_string().contains("`MISSIVE_TEST_NO_SUCH_VARIABLE`"),
            "{err}"
        );
        let debug = format!(
            "{:?}",
            PgLocation {
                server: PgServer {
                    user: "m".into(),
                    host: "h".into(),
                    port: 1,
                    dbname: "d".into()
                },
                password: Some("hunter2".into()),
            }
        );
        assert!(!debug.contains("hunter2"), "{debug}");
    }
}
