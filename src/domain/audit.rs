//! The audit log as keygate's rules see it: what kinds of events there are, who caused them, and
//! one way to record an event, in the caller's transaction or on its own.

use crate::store::audit_events::{self, NewAuditEvent};
use crate::store::{self, DbConn, DbError, Pool};
use crate::util::now;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuditKind {
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
    /// An event of the application keygate is embedded in, stored as `app.<name>`.
    App(&'static str),
}

impl AuditKind {
    pub(crate) const ALL: [AuditKind; 11] = [
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

    /// The kind as stored: keygate's own names, `app.<name>` for an application's.
    pub(crate) fn stored(self) -> std::borrow::Cow<'static, str> {
        match self {
            AuditKind::App(name) => format!("app.{name}").into(),
            own => own.as_str().into(),
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AuditKind::App(_) => "app",
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

    pub(crate) fn parse(s: &str) -> Option<AuditKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Who sent the request: client IP and user agent, bounded in length. The web layer reads it
/// from the request; here it is plain data.
#[derive(Clone, Debug, Default)]
pub(crate) struct AuditContext {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// One event to record.
#[derive(Clone, Debug)]
pub(crate) struct Audit {
    pub kind: AuditKind,
    pub user_id: Option<i64>,
    pub actor_id: Option<i64>,
    pub detail: String,
}

impl Audit {
    /// An event of `kind` about `user_id` (if known), caused by that user or by nobody.
    pub(crate) fn new(kind: AuditKind, user_id: Option<i64>, detail: impl Into<String>) -> Self {
        Audit {
            kind,
            user_id,
            actor_id: None,
            detail: detail.into(),
        }
    }

    /// The same event, caused by admin `actor_id`.
    pub(crate) fn by(mut self, actor_id: i64) -> Self {
        self.actor_id = Some(actor_id);
        self
    }

    /// Writes the event on `conn`, inside the caller's transaction when there is one.
    pub(crate) fn record(&self, conn: &mut DbConn, ctx: &AuditContext) -> Result<(), DbError> {
        let detail: String = self.detail.chars().take(500).collect();
        audit_events::insert(
            conn,
            &NewAuditEvent {
                user_id: self.user_id,
                actor_id: self.actor_id,
                kind: &self.kind.stored(),
                created_at: now(),
                ip: ctx.ip.as_deref(),
                user_agent: ctx.user_agent.as_deref(),
                detail: &detail,
            },
        )?;
        Ok(())
    }

    /// Writes the event on its own. The audit log must never fail the request it records, so
    /// a failure is logged, not returned.
    pub(crate) async fn write(self, pool: &Pool, ctx: &AuditContext) {
        let ctx = ctx.clone();
        if let Err(e) = store::run(pool, move |conn| self.record(conn, &ctx)).await {
            log::error!("could not write the audit log: {e}");
        }
    }
}
