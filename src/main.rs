use std::process::ExitCode;

use keygate::app::Application;
use keygate::settings::Settings;

const HELP: &str = "keygate: Keycloak login in front of an application and its UI

Usage:
  keygate            migrate the database, then serve
  keygate migrate    apply database migrations and exit
  keygate --help     show this help

Configuration comes from environment variables (see README.md), among them:
  KEYGATE_BIND, KEYGATE_PUBLIC_URL, KEYGATE_DATABASE_URL, KEYGATE_SESSION_SECRET,
  KEYGATE_ISSUER_URL, KEYGATE_CLIENT_ID, KEYGATE_CLIENT_SECRET, KEYGATE_ADMIN_ROLE, KEYGATE_UI_URL
Logging: RUST_LOG (default info).";

#[actix_web::main]
async fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().map(String::as_str);
    if matches!(command, Some("--help" | "-h" | "help")) {
        println!("{HELP}");
        return ExitCode::SUCCESS;
    }
    if !matches!(command, None | Some("migrate")) || args.len() > 1 {
        eprintln!("keygate: unknown arguments {args:?}; see keygate --help");
        return ExitCode::from(2);
    }
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("keygate: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match command {
        Some("migrate") => keygate::store::connect(&settings.database_url)
            .and_then(|pool| keygate::store::migrate(&pool)),
        _ => serve(settings).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keygate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    Application::build(settings)
        .await?
        .run_until_stopped()
        .await?;
    Ok(())
}
