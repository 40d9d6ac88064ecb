//! The audit log page.

use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{db_failed, html, EventView};
use crate::domain::audit::AuditKind;
use crate::store::{self, audit_events};
use crate::web::admin_gate::Admin;
use crate::web::response::{path_with_query, Pager, PAGE_SIZE};
use crate::web::AppState;

#[derive(Deserialize)]
pub(crate) struct AuditQuery {
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
    pager: Pager,
}

fn audit_href(kind: &str, user: &str, page: i64) -> String {
    let page = page.to_string();
    path_with_query(
        "/admin/audit",
        &[("kind", kind), ("user", user), ("page", &page)],
    )
}

pub(crate) async fn audit_log(
    _admin: Admin,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> HttpResponse {
    let kind = query.kind.as_deref().and_then(AuditKind::parse);
    let user = query.user;
    let page = Pager::requested(query.page);
    let result = store::run(&state.pool, move |conn| {
        let kind = kind.map(AuditKind::as_str);
        Ok(audit_events::page(
            conn,
            kind,
            user,
            Pager::offset(page),
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
    let pager = Pager::new(page, total, |p| audit_href(&kind_name, &user_text, p));
    html(&AuditPage {
        events: rows
            .into_iter()
            .map(|n| EventView::of(n.event, n.user, n.actor))
            .collect(),
        kinds: AuditKind::ALL.iter().map(|k| k.as_str()).collect(),
        kind: kind_name,
        user: user_text,
        total,
        pager,
    })
}
