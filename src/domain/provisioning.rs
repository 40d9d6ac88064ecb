//! Provisioning: the local user of a Keycloak subject, found, or created on its first sign-in,
//! and the one way a local user linked to a Keycloak account is created (sign-in and
//! registration alike).
//!
//! Users are found by `(provider, uid = sub)` only. Matching by username or email would let
//! whoever controls that name or address in Keycloak take over a local account (seed 003); the
//! one exception is the opt-in [`LinkPolicy::VerifiedEmail`].

use diesel::Connection;
use serde_json::Value;

use crate::domain::audit::{Audit, AuditContext, AuditKind};
use crate::settings::LinkPolicy;
use crate::store::social_accounts::{NewSocialAccount, KEYCLOAK};
use crate::store::users::{NewUser, ProfileUpdate};
use crate::store::{DbConn, DbError, SocialAccount, User};
use crate::util::now;

/// The profile fields keygate keeps, read from OpenID Connect claims.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Profile {
    pub username: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub first_name: String,
    pub last_name: String,
}

const MAX_NAME: usize = 150;

fn claim<'a>(claims: &'a Value, name: &str) -> Option<&'a str> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn clip(s: &str) -> String {
    s.chars().take(MAX_NAME).collect()
}

impl Profile {
    pub(crate) fn from_claims(sub: &str, claims: &Value) -> Profile {
        let email = claim(claims, "email").map(clip);
        let username = claim(claims, "preferred_username")
            .map(clip)
            .or_else(|| email.clone())
            .unwrap_or_else(|| clip(sub));
        Profile {
            username,
            email,
            email_verified: claims.get("email_verified").and_then(Value::as_bool) == Some(true),
            first_name: claim(claims, "given_name").map(clip).unwrap_or_default(),
            last_name: claim(claims, "family_name").map(clip).unwrap_or_default(),
        }
    }
}

/// How a sign-in is recorded in the audit log (`None` for bearer-token provisioning, which is not
/// a sign-in).
pub struct SignInAudit<'a> {
    pub(crate) ctx: &'a AuditContext,
    pub(crate) method: &'a str,
}

/// Finds or creates the local user of Keycloak subject `sub`, records the sign-in on its
/// `social_accounts` row (claims in `extra_data`), and returns the user (active or not: the caller
/// decides what an inactive user may do).
///
/// Two first sign-ins of one subject may race (two tabs, two instances). The loser of the race
/// hits the UNIQUE constraint on `(provider, uid)` or `username`, its transaction rolls back whole,
/// and the retry finds the winner's row: one user, never two, never half of one.
pub fn provision(
    conn: &mut DbConn,
    sub: &str,
    claims: &Value,
    policy: LinkPolicy,
    audit: Option<&SignInAudit<'_>>,
) -> Result<User, DbError> {
    let profile = Profile::from_claims(sub, claims);
    let extra = claims.to_string();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result: Result<User, DbError> = conn.transaction(|c| {
            let user = provision_once(c, sub, &profile, &extra, policy, now())?;
            if let Some(a) = audit {
                record_sign_in(c, &user, a)?;
            }
            Ok(user)
        });
        match result {
            Err(e) if e.is_unique_violation() && attempt < 3 => continue,
            other => return other,
        }
    }
}

fn record_sign_in(conn: &mut DbConn, user: &User, a: &SignInAudit<'_>) -> Result<(), DbError> {
    let method = if a.method == "password" {
        "password"
    } else {
        "code"
    };
    crate::util::metrics::login(method, user.is_active);
    let (kind, detail) = if user.is_active {
        (AuditKind::Login, a.method.to_string())
    } else {
        (
            AuditKind::LoginFailed,
            format!("{}: account deactivated", a.method),
        )
    };
    Audit::new(kind, Some(user.id), detail).record(conn, a.ctx)
}

fn provision_once(
    conn: &mut DbConn,
    sub: &str,
    profile: &Profile,
    extra: &str,
    policy: LinkPolicy,
    now: i64,
) -> Result<User, DbError> {
    // Write first: SQLite then takes its write lock at the start of the transaction and waits
    // for it (busy timeout) instead of failing to upgrade a read lock later.
    let update = ProfileUpdate {
        email: profile.email.as_deref(),
        email_verified: profile.email_verified,
        first_name: &profile.first_name,
        last_name: &profile.last_name,
        last_login_at: Some(now),
    };
    if SocialAccount::touch(conn, KEYCLOAK, sub, extra, now)? > 0 {
        let account = SocialAccount::find(conn, KEYCLOAK, sub)?
            .ok_or(DbError::Query(diesel::result::Error::NotFound))?;
        User::update_profile(conn, account.user_id, &update)?;
        return User::find(conn, account.user_id)?
            .ok_or(DbError::Query(diesel::result::Error::NotFound));
    }

    let user = match linkable_user(conn, profile, policy)? {
        Some(existing) => {
            log::info!(
                "linking Keycloak subject {sub} to existing user {} by verified email",
                existing.id
            );
            User::update_profile(conn, existing.id, &update)?;
            link_account(conn, existing.id, sub, extra, Some(now))?;
            existing
        }
        None => {
            let username = free_username(conn, &profile.username, sub)?;
            let new = NewUser {
                username: &username,
                email: profile.email.as_deref(),
                email_verified: profile.email_verified,
                first_name: &profile.first_name,
                last_name: &profile.last_name,
                is_active: true,
                created_at: now,
                last_login_at: Some(now),
            };
            create_linked_user(conn, &new, sub, extra)?
        }
    };
    Ok(User::find(conn, user.id)?.unwrap_or(user))
}

/// Inserts a local user and its Keycloak account `uid`; the caller's transaction makes the two one
/// write.
pub(crate) fn create_linked_user(
    conn: &mut DbConn,
    user: &NewUser<'_>,
    uid: &str,
    extra: &str,
) -> Result<User, DbError> {
    let created = User::insert(conn, user)?;
    link_account(conn, created.id, uid, extra, user.last_login_at)?;
    Ok(created)
}

fn link_account(
    conn: &mut DbConn,
    user_id: i64,
    uid: &str,
    extra: &str,
    last_login_at: Option<i64>,
) -> Result<(), DbError> {
    SocialAccount::insert(
        conn,
        &NewSocialAccount {
            user_id,
            provider: KEYCLOAK,
            uid,
            extra_data: extra,
            created_at: now(),
            last_login_at,
        },
    )?;
    Ok(())
}

/// Under [`LinkPolicy::VerifiedEmail`], the single existing user this sign-in may attach to: Keycloak
/// vouches for the address, the local user's own address is verified too, and the local user has
/// no Keycloak account yet. A user who has one (registered through keygate, or signed in before)
/// is that account's: linking to it would let whoever set that account's address, verified or
/// not, pre-empt the real owner's first sign-in.
fn linkable_user(
    conn: &mut DbConn,
    profile: &Profile,
    policy: LinkPolicy,
) -> Result<Option<User>, DbError> {
    if policy != LinkPolicy::VerifiedEmail || !profile.email_verified {
        return Ok(None);
    }
    let Some(email) = profile.email.as_deref() else {
        return Ok(None);
    };
    let mut candidates = vec![];
    for user in User::find_by_email(conn, email)? {
        let has_keycloak = SocialAccount::for_user(conn, user.id)?
            .iter()
            .any(|a| a.provider == KEYCLOAK);
        if user.email_verified && !has_keycloak {
            candidates.push(user);
        }
    }
    // Two local users with one address: nobody can say which one is meant, so link neither.
    Ok(if candidates.len() == 1 {
        candidates.pop()
    } else {
        None
    })
}

/// `wanted` if no local user has it, else a name derived from the subject. A local user who
/// happens to hold the same username is a different person until proven otherwise.
fn free_username(conn: &mut DbConn, wanted: &str, sub: &str) -> Result<String, DbError> {
    if !User::username_taken(conn, wanted)? {
        return Ok(wanted.to_string());
    }
    let short: String = sub
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(8)
        .collect();
    let mut candidate = format!("{wanted}-{short}");
    let mut n = 2;
    while User::username_taken(conn, &candidate)? {
        candidate = format!("{wanted}-{short}-{n}");
        n += 1;
    }
    Ok(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn profile_prefers_preferred_username_and_keeps_names() {
        let p = Profile::from_claims(
            "abc",
            &json!({"preferred_username": "alice", "email": "a@example.com",
                    "email_verified": true, "given_name": "Alice", "family_name": "Admin"}),
        );
        assert_eq!(p.username, "alice");
        assert_eq!(p.email.as_deref(), Some("a@example.com"));
        assert!(p.email_verified);
        assert_eq!(
            (p.first_name.as_str(), p.last_name.as_str()),
            ("Alice", "Admin")
        );
    }

    #[test]
    fn profile_falls_back_to_email_then_subject() {
        assert_eq!(
            Profile::from_claims("s", &json!({"email": "x@example.com"})).username,
            "x@example.com"
        );
        assert_eq!(Profile::from_claims("sub-1", &json!({})).username, "sub-1");
        // A non-boolean email_verified is not "verified".
        assert!(!Profile::from_claims("s", &json!({"email_verified": "true"})).email_verified);
    }
}
