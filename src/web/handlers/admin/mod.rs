//! Admin pages: dashboard, users, user detail with actions, audit log. The routes sit in one
//! scope behind `auth::admin_gate`: only users whose access token carries KEYGATE_ADMIN_ROLE as a
//! realm role or a client role of keygate's client get here.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;

use crate::store::audit_events::AuditEvent;
use crate::store::DbError;
use crate::web::response::{error_page_with_retry, page, unexpected_page};

mod audit_log;
mod dashboard;
mod users;

pub(crate) use audit_log::audit_log;
pub(crate) use dashboard::dashboard;
pub(crate) use users::{act, confirm, user_detail, users};

/// Unix seconds as `YYYY-MM-DD HH:MM` UTC.
pub(crate) fn fmt_time(ts: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(ts) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        ),
        Err(_) => "?".into(),
    }
}

fn fmt_opt(ts: Option<i64>) -> String {
    ts.map(fmt_time).unwrap_or_else(|| "never".into())
}

/// An admin page, 200.
fn html(template: &impl askama::Template) -> HttpResponse {
    page(StatusCode::OK, template)
}

fn db_failed(e: DbError) -> HttpResponse {
    unexpected_page(&anyhow::Error::new(e))
}

pub(crate) struct EventView {
    pub kind: String,
    pub time: String,
    pub ip: String,
    pub user_agent: String,
    pub detail: String,
    pub user: String,
    pub user_id: Option<i64>,
    /// The acting admin, on admin actions.
    pub actor: String,
    pub actor_id: Option<i64>,
}

impl EventView {
    fn of(e: AuditEvent, username: Option<String>, actor: Option<String>) -> Self {
        EventView {
            kind: e.kind,
            time: fmt_time(e.created_at),
            ip: e.ip.unwrap_or_default(),
            user_agent: e.user_agent.unwrap_or_default(),
            detail: e.detail,
            user: username.unwrap_or_default(),
            user_id: e.user_id,
            actor: actor.unwrap_or_default(),
            actor_id: e.actor_id,
        }
    }
}

pub(super) fn not_found() -> HttpResponse {
    error_page_with_retry(
        StatusCode::NOT_FOUND,
        "No such user",
        "There is no user with this id.",
        "/admin/users",
        "All users",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_minutes() {
        assert_eq!(fmt_time(0), "1970-01-01 00:00");
        assert_eq!(fmt_time(1_795_509_149), "2026-11-24 08:32");
    }
}
