//! What keygate wrote locally, as tests read it: row counts, audit events, a browser's user id.

use keygate::DbConn;
use serde_json::Value;

use super::app::TestApp;

pub fn count(conn: &mut DbConn, table: &str) -> i64 {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
        .get_result::<N>(conn)
        .expect("count")
        .n
}

/// The local user id of the browser `client`, from `/api/me`.
pub async fn user_id_of(client: &reqwest::Client, app: &TestApp) -> i64 {
    let me: Value = client
        .get(app.url("/api/me"))
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("me json");
    me["id"].as_i64().expect("user id")
}

/// `(kind, user_id, actor_id)` of every audit event, oldest first.
pub fn audit_kinds(app: &TestApp) -> Vec<(String, Option<i64>, Option<i64>)> {
    use diesel::prelude::*;
    use keygate::testing::schema::audit_events::dsl::*;
    audit_events
        .order(id.asc())
        .select((kind, user_id, actor_id))
        .load(&mut app.conn())
        .expect("audit events")
}

pub fn assert_audited(app: &TestApp, wanted: &str) {
    assert!(
        audit_kinds(app).iter().any(|(k, _, _)| k == wanted),
        "the audit log has a {wanted} event"
    );
}
