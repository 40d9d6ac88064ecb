//! The user list, the user detail page and the actions on a user.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse, ResponseError};
use askama::Template;
use diesel::Connection;
use serde::Deserialize;

use super::{db_failed, fmt_opt, fmt_time, html, not_found, Admin, EventView, PAGE_SIZE};
use crate::db::{self, DbError};
use crate::errors::{error_page, unexpected_page};
use crate::models::audit::{self, Audit, AuditContext, AuditKind};
use crate::models::session_row;
use crate::models::social_account::{self, SocialAccount, KEYCLOAK};
use crate::models::user::{User, UserQuery, UserSort};
use crate::session::TypedSession;
use crate::startup::AppState;

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
    html(&UsersPage {
        rows,
        total,
        prev_href: (page > 1).then(|| users_href(&q, sort_name, dir, page - 1)),
        next_href: (page < pages).then(|| users_href(&q, sort_name, dir, page + 1)),
        q,
        sort: sort_name,
        dir,
        page,
        pages,
    })
}

pub struct AccountView {
    pub id: i64,
    pub provider: String,
    pub uid: String,
    pub created: String,
    pub last_login: String,
    /// The stored claims, pretty-printed.
    pub claims: String,
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
    html(&UserPage {
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
        events: events
            .into_iter()
            .map(|e| EventView::of(e, Some(user.username.clone())))
            .collect(),
        sessions,
        user,
        notice,
    })
}

fn pretty_json(raw: &str) -> String {
    serde_json::from_str::<serde_json::Value>(raw)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| raw.to_string())
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
    html(&ConfirmPage {
        user: &user,
        action: action.name(),
        question: action.question(),
        account_id: query.account,
        csrf_token: &csrf,
    })
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
