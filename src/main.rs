//! The `docknap` command: `serve` (default), `--version`, `healthcheck`,
//! `reset-password USER [--stdin]`, `reset-2fa USER`, `backup FILE`, `audit-verify`.

use std::io::{Read, Write};
use std::process::ExitCode;

use docknap::config::Config;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Exit code for bad configuration, per the contract.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        [] | ["serve"] => serve(),
        ["--version" | "-V" | "version"] => {
            println!("docknap {}", docknap::VERSION);
            ExitCode::SUCCESS
        }
        ["healthcheck"] => healthcheck(),
        ["reset-password", user] => reset_password(user, false),
        ["reset-password", user, "--stdin"] | ["reset-password", "--stdin", user] => reset_password(user, true),
        ["reset-2fa", user] => reset_2fa(user),
        ["backup", file] => backup(file),
        ["audit-verify"] => audit_verify(),
        _ => {
            eprintln!(
                "usage: docknap [serve] | --version | healthcheck | reset-password USER [--stdin] | reset-2fa USER | backup FILE | audit-verify"
            );
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

fn config_or_exit() -> Result<Config, ExitCode> {
    Config::from_env().map_err(|e| {
        eprintln!("docknap: configuration error: {e}");
        ExitCode::from(EXIT_CONFIG)
    })
}

fn serve() -> ExitCode {
    let config = match config_or_exit() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let log = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    tracing_subscriber::registry().with(log).with(config.log.clone()).init();
    two_malloc_arenas();
    // Two workers are plenty: the work is I/O and a little SQLite.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(docknap::app::serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("docknap: {e}");
            tracing::error!("{e}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

/// glibc gives each thread that allocates an arena of its own (up to eight
/// per core) and keeps what each one freed, so bursts of large reads on the
/// blocking threads left RSS at twice its need (10,000 schedules listed six
/// times: 72 MiB; 42 MiB with two arenas). Not one: with every thread in the
/// main arena a quiet pass over 1,000 windows took 5-6 ms instead of 3.4.
/// An operator's own `MALLOC_ARENA_MAX` or `GLIBC_TUNABLES` wins.
fn two_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() && std::env::var_os("GLIBC_TUNABLES").is_none() {
        // SAFETY: a plain setting, made before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

/// For the image's HEALTHCHECK (no curl in a scratch image): GET /healthz on
/// our own port, exit 0 on 200.
fn healthcheck() -> ExitCode {
    let config = match config_or_exit() {
        Ok(c) => c,
        Err(code) => return code,
    };
    // An unspecified address listens on loopback of its own family (`[::]`
    // may be IPv6-only); a specific one is asked directly.
    let addr = match config.listen.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => (std::net::Ipv4Addr::LOCALHOST, config.listen.port()).into(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => (std::net::Ipv6Addr::LOCALHOST, config.listen.port()).into(),
        _ => config.listen,
    };
    let check = || -> std::io::Result<bool> {
        let mut s = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(3))?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(3)))?;
        s.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
        let mut buf = [0u8; 16];
        let n = s.read(&mut buf)?;
        Ok(buf[..n].starts_with(b"HTTP/1.0 200") || buf[..n].starts_with(b"HTTP/1.1 200"))
    };
    match check() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("docknap healthcheck: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A consistent copy of the database while the server runs.
fn backup(file: &str) -> ExitCode {
    let config = match config_or_exit() {
        Ok(c) => c,
        Err(code) => return code,
    };
    match docknap::store::backup(&config.data_dir, std::path::Path::new(file)) {
        Ok(bytes) => {
            eprintln!("backed up {} to {file} ({bytes} bytes, integrity check ok)", config.data_dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("docknap backup: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Exit 0 when the audit log's hash chain is intact, 1 naming the first bad entry.
fn audit_verify() -> ExitCode {
    let config = match config_or_exit() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let db = config.data_dir.join(docknap::store::DB_FILE);
    if !db.is_file() {
        eprintln!("docknap audit-verify: no DockNap database at {} (check DOCKNAP_DATA_DIR)", db.display());
        return ExitCode::from(EXIT_CONFIG);
    }
    match docknap::store::Store::open(&config.data_dir).and_then(|s| s.verify_audit()) {
        Ok(v) if v.ok => {
            println!(
                "audit log intact: {} entries checked, head {}",
                v.checked,
                v.head.as_deref().unwrap_or("(empty)")
            );
            ExitCode::SUCCESS
        }
        Ok(v) => {
            let id = v.first_bad_id.map_or("?".to_string(), |i| i.to_string());
            println!(
                "audit log NOT intact: entry {id} (or one just before it) was altered or removed; {} entries before it check out",
                v.checked
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("docknap audit-verify: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

/// The store of an existing data dir, and the user named `username`.
fn open_user(config: &Config, username: &str) -> anyhow::Result<(docknap::store::Store, docknap::model::User)> {
    // A wrong data dir (a mistyped volume) must not get a new, empty database.
    let db = config.data_dir.join(docknap::store::DB_FILE);
    anyhow::ensure!(db.is_file(), "no DockNap database at {} (check DOCKNAP_DATA_DIR)", db.display());
    let store = docknap::store::Store::open(&config.data_dir)?;
    let (user, _) = store.user_credentials(username)?.ok_or_else(|| anyhow::anyhow!("no user named '{username}'"))?;
    Ok((store, user))
}

/// Removes a user's two-factor sign-in (the last admin's phone is lost).
fn reset_2fa(username: &str) -> ExitCode {
    let config = match config_or_exit() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let run = || -> anyhow::Result<bool> {
        let (store, user) = open_user(&config, username)?;
        let change = docknap::store::UserChange { reset_totp: true, ..Default::default() };
        let done = store.update_user(user.id, &change, chrono::Utc::now())?;
        if done.totp_reset {
            let entry = docknap::model::NewAuditEntry::new(
                "cli",
                docknap::model::AuditAction::UserUpdate,
                true,
                format!(
                    "user '{}': two-factor sign-in reset from the command line; signed out everywhere",
                    user.username
                ),
            )
            .target("user", &user.username);
            store.append_audit(&entry, chrono::Utc::now())?;
        }
        Ok(done.totp_reset)
    };
    match run() {
        Ok(true) => {
            eprintln!("two-factor sign-in removed for '{username}'");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            eprintln!("'{username}' had no two-factor sign-in; nothing changed");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("docknap reset-2fa: {e}");
            ExitCode::FAILURE
        }
    }
}

fn reset_password(username: &str, from_stdin: bool) -> ExitCode {
    let config = match config_or_exit() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let run = || -> anyhow::Result<Option<String>> {
        let password = if from_stdin {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            s.trim_end_matches(['\r', '\n']).to_string()
        } else {
            docknap::auth::random_password()
        };
        config.password_policy.check(&password)?;
        let (store, user) = open_user(&config, username)?;
        let hash = docknap::auth::hash_password(&password)?;
        let change = docknap::store::UserChange { password_hash: Some(&hash), ..Default::default() };
        store.update_user(user.id, &change, chrono::Utc::now())?;
        let entry = docknap::model::NewAuditEntry::new(
            "cli",
            docknap::model::AuditAction::PasswordReset,
            true,
            "password reset from the command line; sessions revoked",
        )
        .target("user", &user.username);
        store.append_audit(&entry, chrono::Utc::now())?;
        Ok((!from_stdin).then_some(password))
    };
    match run() {
        Ok(Some(p)) => {
            println!("{p}");
            ExitCode::SUCCESS
        }
        Ok(None) => {
            eprintln!("password changed for '{username}'");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("docknap reset-password: {e}");
            ExitCode::FAILURE
        }
    }
}
