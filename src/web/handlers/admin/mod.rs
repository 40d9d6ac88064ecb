//! Admin pages: dashboard, users, user detail with actions, audit log. Only for users whose access
//! token carries KEYGATE_ADMIN_ROLE as a realm role or a client role of keygate's client.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::{dev::Payload, web, FromRequest, HttpRequest, HttpResponse, ResponseError};

use crate::auth::{AuthError, Authenticated};
use crate::db::DbError;
use crate::errors::{error_page_with_retry, unexpected_page};
use crate::models::audit::AuditEvent;
use crate::startup::AppState;

mod audit_log;
mod dashboard;
mod users;

pub use audit_log::audit_log;
pub use dashboard::dashboard;
pub use users::{act, confirm, user_detail, users};

const PAGE_SIZE: i64 = 25;

/// An authenticated user with the admin role.
pub struct Admin(pub Authenticated);

pub enum AdminRejection {
    Auth(AuthError),
    NotAdmin,
}

impl std::fmt::Debug for AdminRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminRejection::Auth(e) => write!(f, "{e}"),
            AdminRejection::NotAdmin => f.write_str("not an admin"),
        }
    }
}

impl std::fmt::Display for AdminRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl ResponseError for AdminRejection {
    fn status_code(&self) -> StatusCode {
        match self {
            AdminRejection::Auth(e) => e.status_code(),
            AdminRejection::NotAdmin => StatusCode::FORBIDDEN,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            AdminRejection::Auth(e) => e.error_response(),
            AdminRejection::NotAdmin => error_page_with_retry(
                StatusCode::FORBIDDEN,
                "Administrators only",
                "Your account does not have the administrator role needed for these pages.",
                "/",
                "Home",
            ),
        }
    }
}

impl FromRequest for Admin {
    type Error = AdminRejection;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let auth = Authenticated::from_request(req, payload);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let auth = auth.await.map_err(AdminRejection::Auth)?;
            let allowed =
                state.is_some_and(|s| auth.has_role(&s.settings.admin_role, &s.settings.client_id));
            if !allowed {
                log::warn!("user {} was refused the admin pages", auth.user.id);
                return Err(AdminRejection::NotAdmin);
            }
            Ok(Admin(auth))
        })
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM` UTC.
pub fn fmt_time(ts: i64) -> String {
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
    crate::errors::page(StatusCode::OK, template)
}

fn db_failed(e: DbError) -> HttpResponse {
    unexpected_page(&anyhow::Error::new(e))
}

pub struct EventView {
    pub kind: String,
    pub time: String,
    pub ip: String,
    pub user_agent: String,
    pub detail: String,
    pub user: String,
    pub user_id: Option<i64>,
}

impl EventView {
    fn of(e: AuditEvent, username: Option<String>) -> Self {
        EventView {
            kind: e.kind,
            time: fmt_time(e.created_at),
            ip: e.ip.unwrap_or_default(),
            user_agent: e.user_agent.unwrap_or_default(),
            detail: e.detail,
            user: username.unwrap_or_default(),
            user_id: e.user_id,
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
