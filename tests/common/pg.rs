//! A throwaway PostgreSQL server for tests, shared by the library's unit tests (included
//! as `ledger::postgres::server`) and the outside-in tests (`common::pg`), so there is one
//! copy of it.
//!
//! [`fresh_database`] gives each test its own new database on one server per test binary:
//! the server `MISSIVE_PG_URL` names (a `postgres://user@host:port/db` URL whose user may
//! create databases), or else one started here with `initdb` + `pg_ctl` in a temporary
//! directory on a free port. When the uid is 0 (initdb refuses root) the server runs as the
//! `postgres` user if it exists, else `nobody`. A watchdog process stops the server and
//! removes its directory when the test binary exits, however it exits, so no server is left
//! running after `cargo test`. [`TestServer::start`] gives a test a server of its own that
//! it may stop and start again.
//!
//! When no server can start (no `initdb`), [`fresh_database`] prints a visible
//! `skipped: …` line and returns `None`, and the test passes without checking anything;
//! with `MISSIVE_REQUIRE_VALIDATORS` set (CI) it panics instead.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// A PostgreSQL server started for tests, in its own directory.
#[derive(Debug)]
pub struct TestServer {
    /// The directory holding the data directory, socket and log.
    pub dir: PathBuf,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
    bin: PathBuf,
    run_as: Option<String>,
}

/// A database made for one test: its URL (`postgres://missive@127.0.0.1:PORT/NAME`).
#[derive(Debug, Clone)]
pub struct TestDb {
    /// The ledger URL.
    pub url: String,
    /// The database name.
    pub name: String,
}

/// Where the PostgreSQL programs are: on PATH, or Debian's `/usr/lib/postgresql/NN/bin`.
pub fn bin_dir() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
                return Some(dir);
            }
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    found.sort();
    found.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn user_exists(name: &str) -> bool {
    Command::new("id")
        .arg(name)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn free_port() -> Option<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").ok()?;
    Some(listener.local_addr().ok()?.port())
}

impl TestServer {
    /// Starts a new server (initdb, then pg_ctl start on a free port), or says why not.
    pub fn start() -> Result<TestServer, String> {
        let bin = bin_dir().ok_or("no `initdb` on PATH or in /usr/lib/postgresql/*/bin")?;
        let dir = tempfile::Builder::new()
            .prefix("missive-pg-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?
            .keep();
        let run_as = if is_root() {
            let user = if user_exists("postgres") {
                "postgres"
            } else {
                "nobody"
            };
            let chown = Command::new("chown")
                .arg("-R")
                .arg(user)
                .arg(&dir)
                .status()
                .map_err(|e| format!("chown: {e}"))?;
            if !chown.success() {
                return Err(format!("could not give {} to {user}", dir.display()));
            }
            Some(user.to_owned())
        } else {
            None
        };
        let mut server = TestServer {
            dir,
            port: 0,
            bin,
            run_as,
        };
        let data = server.dir.join("data");
        server.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "missive".as_ref(),
                "--auth=trust".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--no-sync".as_ref(),
            ],
        )?;
        server.watch();
        // A free port may be taken by another test binary before the server binds it.
        let mut last = String::new();
        for _ in 0..5 {
            server.port = free_port().ok_or("no free port")?;
            match server.pg_ctl_start() {
                Ok(()) => return Ok(server),
                Err(why) => last = why,
            }
        }
        Err(last)
    }

    /// Runs one of the server's programs (as the server's user when running as root).
    fn run(&self, program: &str, args: &[&std::ffi::OsStr]) -> Result<(), String> {
        let exe = self.bin.join(program);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut cmd = Command::new("runuser");
                cmd.arg("-u").arg(user).arg("--").arg(&exe);
                cmd
            }
            None => Command::new(&exe),
        };
        let out = cmd
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{program}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{program} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    }

    /// Starts the server (again) on its port and waits until it accepts connections.
    pub fn pg_ctl_start(&self) -> Result<(), String> {
        let data = self.dir.join("data");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log");
        self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
                "-l".as_ref(),
                log.as_os_str(),
                "-w".as_ref(),
                "start".as_ref(),
            ],
        )
    }

    /// Stops the server (`pg_ctl stop -m MODE`: `fast`, `immediate`).
    pub fn pg_ctl_stop(&self, mode: &str) -> Result<(), String> {
        let data = self.dir.join("data");
        self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                mode.as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ],
        )
    }

    /// A URL to database `db` on this server.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://missive@127.0.0.1:{}/{db}", self.port)
    }

    /// A watchdog that stops the server and removes its directory once this process ends
    /// (even killed): it polls the process id, which the OS reports gone when it exits.
    fn watch(&self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let data = self.dir.join("data");
        let stop = match &self.run_as {
            Some(user) => format!("runuser -u {user} -- '{}'", pg_ctl.display()),
            None => format!("'{}'", pg_ctl.display()),
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             {stop} -D '{data}' -m immediate stop >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            data = data.display(),
            dir = self.dir.display(),
        );
        // The watchdog outlives this process on purpose; it is not waited for.
        let _ = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }
}

/// The server this test binary shares: `MISSIVE_PG_URL`'s, or one started here.
fn shared() -> &'static Result<String, String> {
    static SHARED: OnceLock<Result<String, String>> = OnceLock::new();
    SHARED.get_or_init(|| {
        if let Ok(url) = std::env::var("MISSIVE_PG_URL") {
            return Ok(url);
        }
        // The server lives as long as the process; its watchdog stops it.
        let server = Box::leak(Box::new(TestServer::start()?));
        Ok(server.url("postgres"))
    })
}

/// Creates a new database on the server at `admin_url` (a database it can connect to).
pub fn create_database(admin_url: &str, name: &str) -> Result<String, String> {
    let (base, _) = admin_url
        .rsplit_once('/')
        .ok_or_else(|| format!("`{admin_url}` names no database"))?;
    let config: postgres::Config = admin_url
        .parse()
        .map_err(|e| format!("`{admin_url}`: {e}"))?;
    let mut client = config
        .connect(postgres::NoTls)
        .map_err(|e| format!("connect to `{admin_url}`: {e}"))?;
    client
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .map_err(|e| format!("create database {name}: {e}"))?;
    Ok(format!("{base}/{name}"))
}

/// A new, empty database for one test on this binary's server, or `None` after printing
/// `skipped: …` when no server can start (panics instead when `MISSIVE_REQUIRE_VALIDATORS`
/// is set).
pub fn fresh_database(test: &str) -> Option<TestDb> {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let admin = match shared() {
        Ok(url) => url,
        Err(why) => return skip(test, why),
    };
    let name = format!(
        "t{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        test.chars()
            .filter(char::is_ascii_alphanumeric)
            .take(20)
            .collect::<String>()
            .to_lowercase()
    );
    match create_database(admin, &name) {
        Ok(url) => Some(TestDb { url, name }),
        Err(why) => panic!("the test PostgreSQL server is up but {why}"),
    }
}

/// Whether this binary has a server for `test`; prints `skipped: …` when not (panics
/// instead when `MISSIVE_REQUIRE_VALIDATORS` is set).
pub fn available(test: &str) -> bool {
    match shared() {
        Ok(_) => true,
        Err(why) => skip::<()>(test, why).is_some(),
    }
}

/// A test server of the test's own (to stop and start), or `None` after `skipped: …`.
pub fn own_server(test: &str) -> Option<TestServer> {
    match TestServer::start() {
        Ok(server) => Some(server),
        Err(why) => skip(test, &why),
    }
}

fn skip<T>(test: &str, why: &str) -> Option<T> {
    if std::env::var_os("MISSIVE_REQUIRE_VALIDATORS").is_some() {
        panic!("{test}: PostgreSQL is required (MISSIVE_REQUIRE_VALIDATORS) but {why}");
    }
    eprintln!(
        "skipped: {test}: no PostgreSQL server ({why}); set MISSIVE_PG_URL or install postgresql"
    );
    None
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // The watchdog removes the directory when the process ends.
        let _ = self.pg_ctl_stop("immediate");
    }
}

/// The data directory, for a test that reads the server's log.
pub fn log_of(server: &TestServer) -> PathBuf {
    Path::new(&server.dir).join("log")
}
