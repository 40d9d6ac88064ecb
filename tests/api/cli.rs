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

/// `keygate doctor` with the demo realm's Keycloak settings and `client`/`secret`.
fn doctor(client: &str, secret: &str, extra: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut c = keygate();
    c.arg("doctor")
        .env("KEYGATE_ISSUER_URL", crate::helpers::issuer())
        .env("KEYGATE_CLIENT_ID", client)
        .env("KEYGATE_CLIENT_SECRET", secret)
        .env("KEYGATE_PUBLIC_URL", "http://127.0.0.1:8000");
    for (k, v) in extra {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[actix_web::test]
async fn doctor_passes_the_demo_client_and_names_the_fix_for_a_broken_one() {
    crate::helpers::require_keycloak().await;
    let (code, out) = doctor(
        "keygate",
        "keygate-dev-secret",
        &[("KEYGATE_PASSWORD_LOGIN", "true")],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("0 failed") && !out.contains("FAIL"), "{out}");
    assert!(out.lines().count() >= 12, "one line per check: {out}");

    // A client whose service account may not read clients: the role is named.
    let admin = crate::helpers::RealmAdmin::connect().await;
    let client = admin.short_lived_admin_client(300).await;
    let (code, out) = doctor(&client.client_id, &client.secret, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("FAIL") && out.contains("view-clients"),
        "{out}"
    );

    // Readable, but with the redirect URIs and direct grants wrong.
    admin
        .grant_service_roles(&client, &["view-clients", "view-realm"])
        .await;
    admin
        .update_client(
            &client,
            serde_json::json!({"redirectUris": ["https://elsewhere.example/*"], "directAccessGrantsEnabled": false}),
        )
        .await;
    let (code, out) = doctor(
        &client.client_id,
        &client.secret,
        &[("KEYGATE_PASSWORD_LOGIN", "true")],
    );
    assert_eq!(code, Some(1), "{out}");
    let redirect = out
        .lines()
        .find(|l| l.contains("redirect URI admits"))
        .unwrap_or("");
    assert!(
        redirect.starts_with("FAIL") && redirect.contains("(JSON: redirectUris)"),
        "{out}"
    );
    let direct = out
        .lines()
        .find(|l| l.contains("direct access grants"))
        .unwrap_or("");
    assert!(
        direct.starts_with("FAIL") && direct.contains("directAccessGrantsEnabled=true"),
        "{out}"
    );
    let backchannel = out
        .lines()
        .find(|l| l.contains("back-channel"))
        .unwrap_or("");
    assert!(
        backchannel.starts_with("FAIL"),
        "the clone has no back-channel URL: {out}"
    );
}
