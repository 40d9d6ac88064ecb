//! Two (or eight) first logins of one Keycloak subject at the same moment must leave one user.

use std::sync::{Arc, Barrier};

use keygate::settings::LinkPolicy;
use keygate::testing as store;
use keygate::Pool;
use serde_json::json;

use crate::helpers::*;

fn race_first_logins(pool: Pool) {
    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let claims = json!({"sub": "race-sub", "preferred_username": "racer",
                        "email": "racer@example.com", "email_verified": true});
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (pool, barrier, claims) = (pool.clone(), barrier.clone(), claims.clone());
            std::thread::spawn(move || {
                let mut conn = pool.get().expect("connection");
                barrier.wait();
                keygate::testing::provision(
                    &mut conn,
                    "race-sub",
                    &claims,
                    LinkPolicy::SubjectOnly,
                    None,
                )
                .map(|u| u.id)
            })
        })
        .collect();
    let ids: Vec<i64> = handles
        .into_iter()
        .map(|h| h.join().expect("thread").expect("every racer signs in"))
        .collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "all racers get one user: {ids:?}"
    );
    let mut conn = pool.get().unwrap();
    assert_eq!(count(&mut conn, "users"), 1);
    assert_eq!(count(&mut conn, "social_accounts"), 1);
}

#[test]
fn concurrent_first_logins_create_one_user_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let pool = store::connect(&dir.path().join("race.db").to_string_lossy()).unwrap();
    store::migrate(&pool).unwrap();
    race_first_logins(pool);
}

#[test]
fn concurrent_first_logins_create_one_user_on_postgres() {
    let pool = store::connect(&fresh_postgres_database()).unwrap();
    store::migrate(&pool).unwrap();
    race_first_logins(pool);
}

#[test]
fn a_local_user_with_the_same_username_is_never_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let pool = store::connect(&dir.path().join("t.db").to_string_lossy()).unwrap();
    store::migrate(&pool).unwrap();
    let mut conn = pool.get().unwrap();
    let first = keygate::testing::provision(
        &mut conn,
        "sub-1",
        &json!({"preferred_username": "carol"}),
        LinkPolicy::SubjectOnly,
        None,
    )
    .unwrap();
    // Another subject (say, from a re-created Keycloak user) with the same username and email.
    let second = keygate::testing::provision(
        &mut conn,
        "sub-2",
        &json!({"preferred_username": "carol", "email": "c@example.com", "email_verified": true}),
        LinkPolicy::SubjectOnly,
        None,
    )
    .unwrap();
    assert_ne!(first.id, second.id);
    assert_eq!(second.username, "carol-sub2");
}
