//! The binary's command line: help, migrate, and start-up refusals that name the variable.

use std::process::Command;

fn keygate() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_keygate"));
    c.env_clear().env("RUST_LOG", "warn");
    c
}

fn required(c: &mut Command) -> &mut Command {
    c.env("KEYGATE_ISSUER_URL", "http://127.0.0.1:8180/realms/keygate")
        .env("KEYGATE_CLIENT_ID", "keygate")
        .env("KEYGATE_CLIENT_SECRET", "secret")
}

#[test]
fn help_documents_serve_and_migrate() {
    let out = keygate().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("keygate migrate") && text.contains("KEYGATE_ISSUER_URL"));
    let bad = keygate().arg("serve-please").output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn a_missing_or_malformed_setting_stops_start_up_with_its_name() {
    let out = keygate().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("KEYGATE_ISSUER_URL"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one clear line: {err}");

    let out = required(&mut keygate())
        .env("KEYGATE_SESSION_SECRET", "short")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("KEYGATE_SESSION_SECRET"));
}

#[test]
fn a_public_url_off_loopback_needs_a_session_secret() {
    let dir = tempfile::tempdir().unwrap();
    let out = required(&mut keygate())
        .env("KEYGATE_BIND", "127.0.0.1:0")
        .env("KEYGATE_PUBLIC_URL", "https://keygate.example.com")
        .env("KEYGATE_DATABASE_URL", dir.path().join("k.db"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("KEYGATE_SESSION_SECRET"));
}

#[test]
fn migrate_creates_the_schema_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("migrated.db");
    let out = required(&mut keygate())
        .arg("migrate")
        .env("KEYGATE_DATABASE_URL", &db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pool = keygate::testing::connect(&db.to_string_lossy()).unwrap();
    let mut conn = pool.get().unwrap();
    for table in ["users", "social_accounts", "sessions", "audit_events"] {
        assert_eq!(crate::helpers::count(&mut conn, table), 0, "{table} exists");
    }
}
