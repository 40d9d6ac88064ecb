//! Rows of the audit log, and the queries of the admin pages over them. What an event means
//! (its kinds, who writes it) is the domain's: see `domain::audit`.

use diesel::prelude::*;

use crate::store::schema::{audit_events, users};
use crate::store::DbConn;

#[derive(Insertable)]
#[diesel(table_name = audit_events)]
pub(crate) struct NewAuditEvent<'a> {
    pub user_id: Option<i64>,
    pub actor_id: Option<i64>,
    pub kind: &'a str,
    pub created_at: i64,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub detail: &'a str,
}

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = audit_events)]
pub(crate) struct AuditEvent {
    pub user_id: Option<i64>,
    /// The admin who acted, on admin actions.
    pub actor_id: Option<i64>,
    pub kind: String,
    pub created_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub detail: String,
}

pub(crate) fn insert(conn: &mut DbConn, event: &NewAuditEvent<'_>) -> QueryResult<()> {
    diesel::insert_into(audit_events::table)
        .values(event)
        .execute(conn)?;
    Ok(())
}

pub(crate) fn recent_for_user(
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
pub(crate) fn page(
    conn: &mut DbConn,
    kind: Option<&str>,
    user_id: Option<i64>,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<NamedEvent>, i64)> {
    let filtered = || {
        let mut q = audit_events::table.into_boxed();
        if let Some(k) = kind {
            q = q.filter(audit_events::kind.eq(k));
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
    let ids: Vec<i64> = rows
        .iter()
        .flat_map(|r| [r.user_id, r.actor_id])
        .flatten()
        .collect();
    let names: Vec<(i64, String)> = users::table
        .filter(users::id.eq_any(ids))
        .select((users::id, users::username))
        .load(conn)?;
    let name_of = |id: Option<i64>| {
        id.and_then(|u| names.iter().find(|(i, _)| *i == u).map(|(_, n)| n.clone()))
    };
    let with_names = rows
        .into_iter()
        .map(|event| NamedEvent {
            user: name_of(event.user_id),
            actor: name_of(event.actor_id),
            event,
        })
        .collect();
    Ok((with_names, total))
}

/// An event with the usernames of its user and its acting admin.
pub(crate) struct NamedEvent {
    pub event: AuditEvent,
    pub user: Option<String>,
    pub actor: Option<String>,
}

pub(crate) fn count_since(conn: &mut DbConn, kind: &str, since: i64) -> QueryResult<i64> {
    audit_events::table
        .filter(audit_events::kind.eq(kind))
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
pub(crate) fn logins_per_day(conn: &mut DbConn, since: i64) -> QueryResult<Vec<(i64, i64)>> {
    let sql = "SELECT created_at / 86400 AS day, COUNT(*) AS n FROM audit_events \
               WHERE kind = 'login' AND created_at >= $1 GROUP BY created_at / 86400";
    Ok(diesel::sql_query(sql)
        .bind::<diesel::sql_types::BigInt, _>(since)
        .load::<DayCount>(conn)?
        .into_iter()
        .map(|d| (d.day, d.n))
        .collect())
}

/// Deletes events older than `before`.
pub(crate) fn prune(conn: &mut DbConn, before: i64) -> QueryResult<usize> {
    diesel::delete(audit_events::table.filter(audit_events::created_at.lt(before))).execute(conn)
}
