//! The audit log: one row per thing that happened to a user, written in the same transaction as
//! the change it records where there is one.

use std::future::{ready, Ready};

use actix_web::{dev::Payload, http::header, FromRequest, HttpRequest};
use diesel::prelude::*;

use crate::db::DbConn;
use crate::schema::{audit_events, users};

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditKind {
    Login,
    LoginFailed,
    TokenRefresh,
    RefreshFailed,
    Logout,
    BackchannelLogout,
    Registration,
    AdminDeactivate,
    AdminReactivate,
    AdminUnlink,
    AdminSignOut,
}

impl AuditKind {
    pub const ALL: [AuditKind; 11] = [
        AuditKind::Login,
        AuditKind::LoginFailed,
        AuditKind::TokenRefresh,
        AuditKind::RefreshFailed,
        AuditKind::Logout,
        AuditKind::BackchannelLogout,
        AuditKind::Registration,
        AuditKind::AdminDeactivate,
        AuditKind::AdminReactivate,
        AuditKind::AdminUnlink,
        AuditKind::AdminSignOut,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::Login => "login",
            AuditKind::LoginFailed => "login_failed",
            AuditKind::TokenRefresh => "token_refresh",
            AuditKind::RefreshFailed => "refresh_failed",
            AuditKind::Logout => "logout",
            AuditKind::BackchannelLogout => "backchannel_logout",
            AuditKind::Registration => "registration",
            AuditKind::AdminDeactivate => "admin_deactivate",
            AuditKind::AdminReactivate => "admin_reactivate",
            AuditKind::AdminUnlink => "admin_unlink",
            AuditKind::AdminSignOut => "admin_sign_out",
        }
    }

    pub fn parse(s: &str) -> Option<AuditKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Who sent the request: client IP and user agent, bounded in length.
#[derive(Clone, Debug, Default)]
pub struct AuditContext {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl AuditContext {
    /// The client as the request shows it: the peer address, or, when keygate sits behind a
    /// reverse proxy it trusts (`KEYGATE_TRUST_FORWARDED`), the address the proxy reports.
    pub fn of(req: &HttpRequest) -> Self {
        let trust_forwarded = req
            .app_data::<actix_web::web::Data<crate::startup::AppState>>()
            .is_some_and(|s| s.settings.trust_forwarded);
        let ip = if trust_forwarded {
            req.connection_info()
                .realip_remote_addr()
                .map(|a| a.chars().take(64).collect())
        } else {
            req.peer_addr().map(|a| a.ip().to_string())
        };
        AuditContext {
            ip,
            user_agent: req
                .headers()
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(300).collect()),
        }
    }
}

impl FromRequest for AuditContext {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(AuditContext::of(req)))
    }
}

#[derive(Insertable)]
#[diesel(table_name = audit_events)]
struct NewAuditEvent<'a> {
    user_id: Option<i64>,
    actor_id: Option<i64>,
    kind: &'a str,
    created_at: i64,
    ip: Option<&'a str>,
    user_agent: Option<&'a str>,
    detail: &'a str,
}

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = audit_events)]
pub struct AuditEvent {
    pub id: i64,
    pub user_id: Option<i64>,
    pub actor_id: Option<i64>,
    pub kind: String,
    pub created_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub detail: String,
}

/// One event to write.
pub struct Audit<'a> {
    pub kind: AuditKind,
    pub user_id: Option<i64>,
    pub actor_id: Option<i64>,
    pub detail: &'a str,
}

pub fn record(conn: &mut DbConn, ctx: &AuditContext, event: &Audit<'_>) -> QueryResult<()> {
    let detail: String = event.detail.chars().take(500).collect();
    diesel::insert_into(audit_events::table)
        .values(&NewAuditEvent {
            user_id: event.user_id,
            actor_id: event.actor_id,
            kind: event.kind.as_str(),
            created_at: crate::db::now(),
            ip: ctx.ip.as_deref(),
            user_agent: ctx.user_agent.as_deref(),
            detail: &detail,
        })
        .execute(conn)?;
    Ok(())
}

pub fn recent_for_user(
    conn: &mut DbConn,
    user_id: i64,
    limit: i64,
) -> QueryResult<Vec<AuditEvent>> {
    audit_events::table
        .filter(audit_events::user_id.eq(user_id))
        .order((audit_events::created_at.desc(), audit_events::id.desc()))
        .limit(limit)
        .select(AuditEvent::as_select())
        .load(conn)
}

/// A page of events, newest first, optionally of one kind and one user; with the total count.
pub fn page(
    conn: &mut DbConn,
    kind: Option<AuditKind>,
    user_id: Option<i64>,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<(AuditEvent, Option<String>)>, i64)> {
    let filtered = || {
        let mut q = audit_events::table.into_boxed();
        if let Some(k) = kind {
            q = q.filter(audit_events::kind.eq(k.as_str()));
        }
        if let Some(u) = user_id {
            q = q.filter(audit_events::user_id.eq(u));
        }
        q
    };
    let total = filtered().count().get_result(conn)?;
    let rows: Vec<AuditEvent> = filtered()
        .order((audit_events::created_at.desc(), audit_events::id.desc()))
        .offset(offset)
        .limit(limit)
        .select(AuditEvent::as_select())
        .load(conn)?;
    let ids: Vec<i64> = rows.iter().filter_map(|r| r.user_id).collect();
    let names: Vec<(i64, String)> = users::table
        .filter(users::id.eq_any(ids))
        .select((users::id, users::username))
        .load(conn)?;
    let with_names = rows
        .into_iter()
        .map(|r| {
            let name = r.user_id.and_then(|u| {
                names
                    .iter()
                    .find(|(id, _)| *id == u)
                    .map(|(_, n)| n.clone())
            });
            (r, name)
        })
        .collect();
    Ok((with_names, total))
}

pub fn count_since(conn: &mut DbConn, kind: AuditKind, since: i64) -> QueryResult<i64> {
    audit_events::table
        .filter(audit_events::kind.eq(kind.as_str()))
        .filter(audit_events::created_at.ge(since))
        .count()
        .get_result(conn)
}

#[derive(QueryableByName)]
struct DayCount {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    day: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Logins per UTC day since `since` (Unix seconds): `(day number, count)`, grouped in the
/// database so the dashboard never loads the events themselves.
pub fn logins_per_day(conn: &mut DbConn, since: i64) -> QueryResult<Vec<(i64, i64)>> {
    // `since` is an integer we computed, never input, so it is safe to format into the query.
    let sql = format!(
        "SELECT created_at / 86400 AS day, COUNT(*) AS n FROM audit_events \
         WHERE kind = 'login' AND created_at >= {since} GROUP BY created_at / 86400"
    );
    Ok(diesel::sql_query(sql)
        .load::<DayCount>(conn)?
        .into_iter()
        .map(|d| (d.day, d.n))
        .collect())
}

/// Deletes events older than `before`.
pub fn prune(conn: &mut DbConn, before: i64) -> QueryResult<usize> {
    diesel::delete(audit_events::table.filter(audit_events::created_at.lt(before))).execute(conn)
}
