//! The command line every keygate binary shares: serve (the default), `migrate`, `--help`.

use std::process::ExitCode;

use super::Keygate;

fn help(bin: &str) -> String {
    format!(
        "{bin}: Keycloak login, local users and the application in one service (keygate)

Usage:
  {bin}            migrate the database, then serve
  {bin} migrate    apply database migrations (keygate's, then the application's) and exit
  {bin} doctor     check the Keycloak client's and realm's settings; exit 0 when all pass
  {bin} --help     show this help

Configuration comes from environment variables (see keygate's README), among them:
  KEYGATE_BIND, KEYGATE_PUBLIC_URL, KEYGATE_DATABASE_URL, KEYGATE_SESSION_SECRET,
  KEYGATE_ISSUER_URL, KEYGATE_CLIENT_ID, KEYGATE_CLIENT_SECRET, KEYGATE_ADMIN_ROLE, KEYGATE_UI_URL
Logging: RUST_LOG (default info)."
    )
}

/// Runs a keygate binary: sets up logging (`RUST_LOG`, default `info`), reads the settings
/// from the environment, lets `assemble` add the application, then serves or, with the
/// `migrate` argument, migrates and exits. Exit status 2 for bad arguments or settings, 1 when
/// start-up or serving fails (the reason goes to stderr).
///
/// ```no_run
/// #[actix_web::main]
/// async fn main() -> std::process::ExitCode {
///     keygate::main(|keygate| keygate).await
/// }
/// ```
pub async fn main(assemble: impl FnOnce(Keygate) -> Keygate) -> ExitCode {
    init_logging();
    let mut args = std::env::args();
    let bin = args
        .next()
        .as_deref()
        .and_then(|p| {
            std::path::Path::new(p)
                .file_name()?
                .to_str()
                .map(String::from)
        })
        .unwrap_or_else(|| "keygate".into());
    let args: Vec<String> = args.collect();
    let command = args.first().map(String::as_str);
    if matches!(command, Some("--help" | "-h" | "help")) {
        println!("{}", help(&bin));
        return ExitCode::SUCCESS;
    }
    if !matches!(command, None | Some("migrate" | "doctor")) || args.len() > 1 {
        eprintln!("{bin}: unknown arguments {args:?}; see {bin} --help");
        return ExitCode::from(2);
    }
    let keygate = match Keygate::from_env() {
        Ok(k) => assemble(k),
        Err(e) => {
            eprintln!("keygate: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match command {
        Some("migrate") => keygate.migrate().await,
        Some("doctor") => match keygate.doctor().await {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => Err(e),
        },
        _ => serve(keygate).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keygate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// env_logger (`RUST_LOG`, default `info`), in the format `KEYGATE_LOG_FORMAT` names: `text`
/// (the default) or `json`, one object per line. Either way a line written while a request is
/// served carries its request id.
fn init_logging() {
    use std::io::Write;
    let json = match std::env::var("KEYGATE_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") | Err(_) => false,
        Ok(other) => {
            eprintln!("KEYGATE_LOG_FORMAT: expected text or json, got {other:?}; using text");
            false
        }
    };
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if json {
        builder.format(|buf, record| {
            let mut fields = Fields(serde_json::Map::new());
            let _ = record.key_values().visit(&mut fields);
            let line = serde_json::json!({
                "time": buf.timestamp_millis().to_string(),
                "level": record.level().as_str(),
                "target": record.target(),
                "message": record.args().to_string(),
                "request_id": crate::util::request_id::current().as_deref(),
                "fields": fields.0,
            });
            writeln!(buf, "{line}")
        });
    } else {
        builder.format(|buf, record| {
            let level = record.level();
            let style = buf.default_level_style(level);
            write!(
                buf,
                "[{} {style}{level:<5}{style:#} {}",
                buf.timestamp(),
                record.target()
            )?;
            if let Some(id) = crate::util::request_id::current() {
                write!(buf, " request_id={id}")?;
            }
            writeln!(buf, "] {}", record.args())
        });
    }
    builder.init();
}

/// A log line's key-value fields, as JSON strings.
struct Fields(serde_json::Map<String, serde_json::Value>);

impl<'kvs> log::kv::VisitSource<'kvs> for Fields {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        self.0.insert(
            key.to_string(),
            serde_json::Value::String(value.to_string()),
        );
        Ok(())
    }
}

async fn serve(keygate: Keygate) -> anyhow::Result<()> {
    keygate.start().await?.run().await?;
    Ok(())
}
