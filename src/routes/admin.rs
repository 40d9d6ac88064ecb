//! Admin pages: dashboard, users, user detail with actions, audit log. Only for users whose access
//! token carries KEYGATE_ADMIN_ROLE as a realm role or a client role of keygate's client.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::{header, StatusCode};
use actix_web::{dev::Payload, web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use askama::Template;
use diesel::Connection;
use serde::Deserialize;

use crate::auth::{AuthError, Authenticated};
use crate::db::{self, now, DbError};
use crate::errors::{error_page, error_page_with_retry, unexpected_page};
use crate::models::audit::{self, Audit, AuditContext, AuditEvent, AuditKind};
use crate::models::session_row;
use crate::models::social_account::{self, SocialAccount, KEYCLOAK};
use crate::models::user::{User, UserQuery, UserSort};
use crate::session::TypedSession;
use crate::startup::AppState;

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

fn html(result: askama::Result<String>) -> HttpResponse {
    match result {
        Ok(body) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header(("Cache-Control", "no-store"))
            .body(body),
        Err(e) => unexpected_page(&anyhow::Error::new(e)),
    }
}

fn db_failed(e: DbError) -> HttpResponse {
    unexpected_page(&anyhow::Error::new(e))
}

// ---------------------------------------------------------------------------------------------
// Dashboard

/// One bar of the logins-per-day chart, in SVG user units.
pub struct Bar {
    pub x: i64,
    pub y: i64,
    pub width: i64,
    pub height: i64,
    pub count: i64,
    pub label: String,
    pub show_label: bool,
}

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct DashboardPage {
    users: i64,
    active: i64,
    logins_day: i64,
    logins_week: i64,
    bars: Vec<Bar>,
    max: i64,
    chart_width: i64,
    chart_height: i64,
}

const DAYS: i64 = 30;
const CHART_HEIGHT: i64 = 120;
const BAR_STEP: i64 = 20;

/// Bars for the last [`DAYS`] UTC days, today last, from `(day number, count)` pairs.
pub fn chart(counts: &[(i64, i64)], today: i64) -> (Vec<Bar>, i64) {
    let per_day: Vec<i64> = (0..DAYS)
        .map(|i| {
            let day = today - (DAYS - 1) + i;
            counts
                .iter()
                .find(|(d, _)| *d == day)
                .map_or(0, |(_, n)| *n)
        })
        .collect();
    let max = per_day.iter().copied().max().unwrap_or(0).max(1);
    let bars = per_day
        .into_iter()
        .enumerate()
        .map(|(i, count)| {
            let i = i as i64;
            let day = today - (DAYS - 1) + i;
            let height = count * (CHART_HEIGHT - 20) / max;
            Bar {
                x: i * BAR_STEP,
                y: CHART_HEIGHT - 16 - height,
                width: BAR_STEP - 4,
                height,
                count,
                label: fmt_time(day * 86400)[5..10].to_string(),
                show_label: i % 5 == 4,
            }
        })
        .collect();
    (bars, max)
}

pub async fn dashboard(_admin: Admin, state: web::Data<AppState>) -> HttpResponse {
    let t = now();
    let today = t / 86400;
    let stats = db::run(&state.pool, move |conn| {
        let (users, active) = User::count_all(conn)?;
        let day = audit::count_since(conn, AuditKind::Login, t - 86400)?;
        let week = audit::count_since(conn, AuditKind::Login, t - 7 * 86400)?;
        let per_day = audit::logins_per_day(conn, (today - (DAYS - 1)) * 86400)?;
        Ok((users, active, day, week, per_day))
    })
    .await;
    let (users, active, logins_day, logins_week, per_day) = match stats {
        Ok(s) => s,
        Err(e) => return db_failed(e),
    };
    let (bars, max) = chart(&per_day, today);
    html(
        DashboardPage {
            users,
            active,
            logins_day,
            logins_week,
            bars,
            max,
            // Room for the last day's label.
            chart_width: DAYS * BAR_STEP + 24,
            chart_height: CHART_HEIGHT,
        }
        .render(),
    )
}

// ---------------------------------------------------------------------------------------------
// Users

#[derive(Deserialize)]
pub struct UsersQuery {
    q: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
    page: Option<i64>,
}

pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub name: String,
    pub accounts: i64,
    pub active: bool,
    pub created: String,
    pub last_login: String,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    rows: Vec<UserRow>,
    total: i64,
    q: String,
    sort: &'static str,
    dir: &'static str,
    page: i64,
    pages: i64,
    prev_href: Option<String>,
    next_href: Option<String>,
}

fn users_href(q: &str, sort: &str, dir: &str, page: i64) -> String {
    let mut u = url::Url::parse("http://x/admin/users").expect("static URL");
    u.query_pairs_mut()
        .append_pair("q", q)
        .append_pair("sort", sort)
        .append_pair("dir", dir)
        .append_pair("page", &page.to_string());
    format!("/admin/users?{}", u.query().unwrap_or_default())
}

pub async fn users(
    _admin: Admin,
    state: web::Data<AppState>,
    query: web::Query<UsersQuery>,
) -> HttpResponse {
    let q: String = query
        .q
        .clone()
        .unwrap_or_default()
        .chars()
        .take(100)
        .collect();
    let (sort, sort_name) = match query.sort.as_deref() {
        Some("last_login") => (UserSort::LastLogin, "last_login"),
        _ => (UserSort::Created, "created"),
    };
    let (descending, dir) = match query.dir.as_deref() {
        Some("asc") => (false, "asc"),
        _ => (true, "desc"),
    };
    let page = query.page.unwrap_or(1).clamp(1, 1_000_000);
    let search = q.clone();
    let result = db::run(&state.pool, move |conn| {
        let (users, total) = User::page(
            conn,
            &UserQuery {
                search: Some(&search),
                sort,
                descending,
                offset: (page - 1) * PAGE_SIZE,
                limit: PAGE_SIZE,
            },
        )?;
        let ids: Vec<i64> = users.iter().map(|u| u.id).collect();
        let counts = social_account::counts_for(conn, &ids)?;
        Ok((users, counts, total))
    })
    .await;
    let (users, counts, total) = match result {
        Ok(r) => r,
        Err(e) => return db_failed(e),
    };
    let rows = users
        .into_iter()
        .map(|u| UserRow {
            accounts: counts
                .iter()
                .find(|(id, _)| *id == u.id)
                .map_or(0, |(_, n)| *n),
            id: u.id,
            name: format!("{} {}", u.first_name, u.last_name)
                .trim()
                .to_string(),
            email: u.email.unwrap_or_default(),
            active: u.is_active,
            created: fmt_time(u.created_at),
            last_login: fmt_opt(u.last_login_at),
            username: u.username,
        })
        .collect();
    let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    html(
        UsersPage {
            rows,
            total,
            prev_href: (page > 1).then(|| users_href(&q, sort_name, dir, page - 1)),
            next_href: (page < pages).then(|| users_href(&q, sort_name, dir, page + 1)),
            q,
            sort: sort_name,
            dir,
            page,
            pages,
        }
        .render(),
    )
}

// ---------------------------------------------------------------------------------------------
// User detail and actions

pub struct AccountView {
    pub id: i64,
    pub provider: String,
    pub uid: String,
    pub created: String,
    pub last_login: String,
    /// The stored claims, pretty-printed.
    pub claims: String,
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

#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserPage {
    user: User,
    created: String,
    last_login: String,
    accounts: Vec<AccountView>,
    events: Vec<EventView>,
    sessions: i64,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

pub async fn user_detail(
    _admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    query: web::Query<DoneQuery>,
) -> HttpResponse {
    let id = path.into_inner();
    let result = db::run(&state.pool, move |conn| {
        let Some(user) = User::find(conn, id)? else {
            return Ok(None);
        };
        let accounts = SocialAccount::for_user(conn, id)?;
        let events = audit::recent_for_user(conn, id, 50)?;
        let sessions = session_row::count_for_user(conn, id)?;
        Ok(Some((user, accounts, events, sessions)))
    })
    .await;
    let (user, accounts, events, sessions) = match result {
        Ok(Some(r)) => r,
        Ok(None) => return not_found(),
        Err(e) => return db_failed(e),
    };
    let notice = match query.done.as_deref() {
        Some("deactivate") => Some("The user was deactivated."),
        Some("reactivate") => Some("The user was reactivated."),
        Some("unlink") => Some("The account was unlinked."),
        Some("signout") => Some("The user was signed out everywhere."),
        _ => None,
    };
    html(
        UserPage {
            created: fmt_time(user.created_at),
            last_login: fmt_opt(user.last_login_at),
            accounts: accounts
                .into_iter()
                .map(|a| AccountView {
                    claims: pretty_json(&a.extra_data),
                    id: a.id,
                    provider: a.provider,
                    uid: a.uid,
                    created: fmt_time(a.created_at),
                    last_login: fmt_opt(a.last_login_at),
                })
                .collect(),
            events: events.into_iter().map(|e| EventView::of(e, None)).collect(),
            sessions,
            user,
            notice,
        }
        .render(),
    )
}

fn pretty_json(raw: &str) -> String {
    serde_json::from_str::<serde_json::Value>(raw)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| raw.to_string())
}

fn not_found() -> HttpResponse {
    error_page_with_retry(
        StatusCode::NOT_FOUND,
        "No such user",
        "There is no user with this id.",
        "/admin/users",
        "All users",
    )
}

/// The actions an admin can take on a user, each confirmed before it runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Deactivate,
    Reactivate,
    Unlink,
    SignOut,
}

impl Action {
    fn parse(s: &str) -> Option<Action> {
        match s {
            "deactivate" => Some(Action::Deactivate),
            "reactivate" => Some(Action::Reactivate),
            "unlink" => Some(Action::Unlink),
            "signout" => Some(Action::SignOut),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Action::Deactivate => "deactivate",
            Action::Reactivate => "reactivate",
            Action::Unlink => "unlink",
            Action::SignOut => "signout",
        }
    }

    fn question(self) -> &'static str {
        match self {
            Action::Deactivate => {
                "Deactivate this user? They are refused at login, on the token endpoint and with \
                 bearer tokens until reactivated."
            }
            Action::Reactivate => "Reactivate this user?",
            Action::Unlink => {
                "Unlink this account? The next login of its Keycloak subject creates a new user."
            }
            Action::SignOut => {
                "Sign this user out of Keycloak and end all of their keygate sessions?"
            }
        }
    }
}

#[derive(Template)]
#[template(path = "admin/confirm.html")]
struct ConfirmPage<'a> {
    user: &'a User,
    action: &'static str,
    question: &'static str,
    account_id: Option<i64>,
    csrf_token: &'a str,
}

#[derive(Deserialize)]
pub struct ConfirmQuery {
    account: Option<i64>,
}

pub async fn confirm(
    _admin: Admin,
    state: web::Data<AppState>,
    session: TypedSession,
    path: web::Path<(i64, String)>,
    query: web::Query<ConfirmQuery>,
) -> HttpResponse {
    let (id, action) = path.into_inner();
    let Some(action) = Action::parse(&action) else {
        return not_found();
    };
    let user = match db::run(&state.pool, move |conn| Ok(User::find(conn, id)?)).await {
        Ok(Some(u)) => u,
        Ok(None) => return not_found(),
        Err(e) => return db_failed(e),
    };
    let csrf = match session.csrf_token() {
        Ok(t) => t,
        Err(e) => return unexpected_page(&anyhow::Error::new(e)),
    };
    html(
        ConfirmPage {
            user: &user,
            action: action.name(),
            question: action.question(),
            account_id: query.account,
            csrf_token: &csrf,
        }
        .render(),
    )
}

#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf_token: String,
    account_id: Option<i64>,
}

/// POST /admin/users/{id}/{action}: runs a confirmed action and records it, with the acting
/// admin, in the same transaction.
pub async fn act(
    admin: Admin,
    ctx: AuditContext,
    state: web::Data<AppState>,
    session: TypedSession,
    path: web::Path<(i64, String)>,
    form: web::Form<ActionForm>,
) -> HttpResponse {
    if let Err(e) = session.check_csrf(&form.csrf_token) {
        return e.error_response();
    }
    let (id, action) = path.into_inner();
    let Some(action) = Action::parse(&action) else {
        return not_found();
    };
    let actor = admin.0.user.id;
    let accounts = match db::run(&state.pool, move |conn| {
        Ok(User::find(conn, id)?
            .map(|_| ())
            .and(Some(SocialAccount::for_user(conn, id)?)))
    })
    .await
    {
        Ok(Some(a)) => a,
        Ok(None) => return not_found(),
        Err(e) => return db_failed(e),
    };

    if action == Action::SignOut {
        // Keycloak first: it ends the SSO sessions and calls back-channel logout.
        for account in accounts.iter().filter(|a| a.provider == KEYCLOAK) {
            if let Err(e) = state.admin.logout_user(&state.oidc, &account.uid).await {
                log::warn!("admin sign-out: Keycloak refused for {}: {e}", account.uid);
                return error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Keycloak did not sign the user out",
                    "Keycloak could not be reached or refused; nothing was changed here. Try again.",
                );
            }
        }
    }

    let account_id = form.account_id;
    let result = db::run(&state.pool, move |conn| {
        conn.transaction(|conn| apply(conn, &ctx, action, id, actor, account_id))
    })
    .await;
    match result {
        Ok(true) => {}
        Ok(false) => return not_found(),
        Err(e) => return db_failed(e),
    }
    // Caches on this instance forget the user at once.
    state.users.forget_user(id);
    for account in &accounts {
        state.tokens.forget_subject(&account.uid);
    }
    HttpResponse::SeeOther()
        .insert_header((
            header::LOCATION,
            format!("/admin/users/{id}?done={}", action.name()),
        ))
        .finish()
}

fn apply(
    conn: &mut db::DbConn,
    ctx: &AuditContext,
    action: Action,
    id: i64,
    actor: i64,
    account_id: Option<i64>,
) -> Result<bool, DbError> {
    let (kind, detail) = match action {
        Action::Deactivate => {
            if User::set_active(conn, id, false)? == 0 {
                return Ok(false);
            }
            (AuditKind::AdminDeactivate, "deactivated".to_string())
        }
        Action::Reactivate => {
            if User::set_active(conn, id, true)? == 0 {
                return Ok(false);
            }
            (AuditKind::AdminReactivate, "reactivated".to_string())
        }
        Action::Unlink => {
            let Some(account_id) = account_id else {
                return Ok(false);
            };
            if SocialAccount::delete(conn, account_id, id)? == 0 {
                return Ok(false);
            }
            (
                AuditKind::AdminUnlink,
                format!("unlinked account {account_id}"),
            )
        }
        Action::SignOut => {
            let ended = session_row::delete_by_user(conn, id)?;
            (
                AuditKind::AdminSignOut,
                format!("signed out of Keycloak; {ended} keygate session(s) ended"),
            )
        }
    };
    audit::record(
        conn,
        ctx,
        &Audit {
            kind,
            user_id: Some(id),
            actor_id: Some(actor),
            detail: &detail,
        },
    )?;
    Ok(true)
}

// ---------------------------------------------------------------------------------------------
// Audit log

#[derive(Deserialize)]
pub struct AuditQuery {
    kind: Option<String>,
    user: Option<i64>,
    page: Option<i64>,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    events: Vec<EventView>,
    kinds: Vec<&'static str>,
    kind: String,
    user: String,
    total: i64,
    page: i64,
    pages: i64,
    prev_href: Option<String>,
    next_href: Option<String>,
}

fn audit_href(kind: &str, user: &str, page: i64) -> String {
    let mut u = url::Url::parse("http://x/admin/audit").expect("static URL");
    u.query_pairs_mut()
        .append_pair("kind", kind)
        .append_pair("user", user)
        .append_pair("page", &page.to_string());
    format!("/admin/audit?{}", u.query().unwrap_or_default())
}

pub async fn audit_log(
    _admin: Admin,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> HttpResponse {
    let kind = query.kind.as_deref().and_then(AuditKind::parse);
    let user = query.user;
    let page = query.page.unwrap_or(1).clamp(1, 1_000_000);
    let result = db::run(&state.pool, move |conn| {
        Ok(audit::page(
            conn,
            kind,
            user,
            (page - 1) * PAGE_SIZE,
            PAGE_SIZE,
        )?)
    })
    .await;
    let (rows, total) = match result {
        Ok(r) => r,
        Err(e) => return db_failed(e),
    };
    let kind_name = kind.map(AuditKind::as_str).unwrap_or("").to_string();
    let user_text = user.map(|u| u.to_string()).unwrap_or_default();
    let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    html(
        AuditPage {
            events: rows
                .into_iter()
                .map(|(e, name)| EventView::of(e, name))
                .collect(),
            kinds: AuditKind::ALL.iter().map(|k| k.as_str()).collect(),
            prev_href: (page > 1).then(|| audit_href(&kind_name, &user_text, page - 1)),
            next_href: (page < pages).then(|| audit_href(&kind_name, &user_text, page + 1)),
            kind: kind_name,
            user: user_text,
            total,
            page,
            pages,
        }
        .render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_has_thirty_days_scaled_to_the_busiest() {
        let today = 20_000;
        let (bars, max) = chart(&[(today, 10), (today - 29, 5), (today - 40, 99)], today);
        assert_eq!(bars.len(), 30);
        assert_eq!(max, 10);
        assert_eq!(bars[29].count, 10);
        assert_eq!(bars[0].count, 5);
        assert_eq!(bars[29].height, CHART_HEIGHT - 20);
        assert_eq!(bars[0].height, (CHART_HEIGHT - 20) / 2);
        assert!(bars[1..29].iter().all(|b| b.count == 0 && b.height == 0));
    }

    #[test]
    fn times_are_utc_minutes() {
        assert_eq!(fmt_time(0), "1970-01-01 00:00");
        assert_eq!(fmt_time(1_795_509_149), "2026-11-24 08:32");
    }
}
