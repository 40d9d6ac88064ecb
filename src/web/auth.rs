//! The one authentication extractor for every route: `Authorization: Bearer` first, then the
//! TOKEN cookie (while its session lives), then the server-side session. API routes (under
//! `/api/`) answer a failure with the 401 `auth_redirect` JSON; pages redirect to
//! `/login?next=<path>`. The admin pages sit behind
//! [`admin_gate`](super::admin_gate), which adds the role check.

use std::sync::Arc;

use actix_web::http::{header, StatusCode};
use actix_web::{
    dev::Payload, web, FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError,
};
use futures_util::future::LocalBoxFuture;
use serde_json::Value;

use super::response::{
    error_page, is_api, login_path, see_other, unavailable_page, unexpected_page, ApiError,
};
use super::roles::Role;
use super::AppState;
use crate::domain::next_url::NextUrl;
use crate::domain::provisioning::provision;
use crate::domain::user_cache::UserSnapshot;
use crate::idp::{AccessClaims, TokenError, Unavailable};
use crate::store::social_accounts::KEYCLOAK;
use crate::store::{self, DbError, SocialAccount, User};
use crate::util::metrics;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuthSource {
    Bearer,
    Cookie,
    Session,
}

/// An authenticated, active local user.
#[derive(Clone)]
pub(crate) struct Authenticated {
    pub user: Arc<User>,
    /// The user's linked accounts, when they came along from the user cache.
    pub accounts: Option<Arc<UserSnapshot>>,
    pub source: AuthSource,
    /// The access token's claims (roles live here), when one is at hand.
    pub claims: Option<Arc<Value>>,
    /// Set when the session's access token has expired and Keycloak could not be asked for a
    /// new one: the user is known, but no role is, so role-gated routes answer 503.
    pub roles_unavailable: Option<Unavailable>,
}

impl Authenticated {
    /// True when the access token names `role`. Without a token at hand, no role is known.
    pub(crate) fn has(&self, role: &Role) -> bool {
        self.claims.as_deref().is_some_and(|c| role.granted_by(c))
    }

    /// True when the token names `role` as a realm role or a client role of `client_id`.
    pub(crate) fn has_role(&self, role: &str, client_id: &str) -> bool {
        self.has(&Role::realm(role)) || self.has(&Role::client(client_id, role))
    }
}

#[derive(Debug)]
pub(super) enum Failure {
    Missing,
    /// Keycloak refused to refresh the session (signed out, disabled, session over there).
    Ended(String),
    /// A valid token of a session or subject that was logged out since.
    Revoked,
    Invalid(TokenError),
    Inactive,
    Unavailable(Unavailable),
    Internal(anyhow::Error),
}

/// Why a request is not authenticated, and how it is answered: pages redirect to the login (and
/// come back afterwards), paths under `/api/` get the 401 `auth_redirect` JSON with the login
/// URL, a deactivated account gets 403, Keycloak out of reach 503.
#[derive(Debug)]
pub struct AuthError {
    failure: Failure,
    api: bool,
    next: NextUrl,
    login_url: String,
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not authenticated: {:?}", self.failure)
    }
}

impl AuthError {
    /// The answer to `req` for `failure`: where its login would come back to, and whether it
    /// is an API request.
    pub(super) fn for_request(req: &HttpRequest, state: &AppState, failure: Failure) -> Self {
        let api = is_api(req);
        let next = if api {
            let referer = req
                .headers()
                .get(header::REFERER)
                .and_then(|v| v.to_str().ok());
            NextUrl::from_referer(&state.public_url, referer)
        } else {
            NextUrl::parse(req.uri().path_and_query().map(|p| p.as_str()))
        };
        AuthError {
            failure,
            api,
            login_url: state.login_url(&next),
            next,
        }
    }

    /// An unexpected failure while authenticating `req`: the 500 page or JSON.
    pub(super) fn internal(req: &HttpRequest, state: &AppState, e: anyhow::Error) -> Self {
        Self::for_request(req, state, Failure::Internal(e))
    }

    /// True when the request simply has no credentials keygate accepts (none, bad, ended, or a
    /// deactivated account): an anonymous visitor, not a failure of keygate.
    pub(crate) fn is_anonymous(&self) -> bool {
        !matches!(self.failure, Failure::Unavailable(_) | Failure::Internal(_))
    }

    /// The answer as the JSON API gives it, whatever the path.
    pub(super) fn as_api(&self) -> ApiError {
        match &self.failure {
            Failure::Missing => ApiError::AuthRedirect {
                login_url: self.login_url.clone(),
                reason: "no credentials".into(),
            },
            Failure::Invalid(e) => ApiError::AuthRedirect {
                login_url: self.login_url.clone(),
                reason: e.to_string(),
            },
            Failure::Revoked => ApiError::AuthRedirect {
                login_url: self.login_url.clone(),
                reason: "the token's session was logged out".into(),
            },
            Failure::Ended(why) => ApiError::AuthRedirect {
                login_url: self.login_url.clone(),
                reason: format!("the session ended: {why}"),
            },
            Failure::Inactive => ApiError::Forbidden("This account is deactivated.".into()),
            Failure::Unavailable(why) => ApiError::Unavailable(why.clone()),
            Failure::Internal(e) => ApiError::Unexpected(anyhow::anyhow!("{e:#}")),
        }
    }
}

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        self.as_api().status_code()
    }

    fn error_response(&self) -> HttpResponse {
        if self.api {
            return self.as_api().error_response();
        }
        match &self.failure {
            Failure::Missing | Failure::Ended(_) | Failure::Revoked | Failure::Invalid(_) => {
                see_other(&login_path(&self.next))
            }
            Failure::Inactive => error_page(
                StatusCode::FORBIDDEN,
                "Account deactivated",
                "Your account has been deactivated by an administrator.",
            ),
            Failure::Unavailable(why) => unavailable_page(why),
            Failure::Internal(e) => unexpected_page(e),
        }
    }
}

impl FromRequest for Authenticated {
    type Error = AuthError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(&req).await })
    }
}

/// Authenticates the request once: later extractors of the same request (a handler taking both
/// `CurrentUser` and `Page`, a role gate and its handler) get the same answer without a second
/// look at the session or the token.
pub(super) async fn authenticate(req: &HttpRequest) -> Result<Authenticated, AuthError> {
    if let Some(known) = req.extensions().get::<Authenticated>() {
        return Ok(known.clone());
    }
    let found = authenticate_once(req).await?;
    req.extensions_mut().insert(found.clone());
    Ok(found)
}

async fn authenticate_once(req: &HttpRequest) -> Result<Authenticated, AuthError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .expect("AppState is registered by the app factory")
        .clone();
    let fail = |failure: Failure| AuthError::for_request(req, &state, failure);

    // 1. An Authorization header is an explicit claim: if it is bad, the request fails (no
    //    falling back to cookies, which would hide the client's bug).
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                fail(Failure::Invalid(TokenError::Malformed(
                    "Authorization header is not `Bearer <token>`".into(),
                )))
            })?;
        let claims = validate(&state, token).await.map_err(|f| {
            metrics::bearer(match &f {
                Failure::Invalid(e) => e.label(),
                Failure::Unavailable(_) => "keys_unavailable",
                _ => "error",
            });
            fail(f)
        })?;
        if state.revocations.token_revoked(&claims.claims) {
            log::info!("refused a bearer token of a session that was logged out");
            metrics::bearer("revoked");
            return Err(fail(Failure::Revoked));
        }
        metrics::bearer("ok");
        let snapshot = user_for_claims(&state, &claims.sub, claims.claims.clone())
            .await
            .map_err(&fail)?;
        return finish(
            Arc::clone(&snapshot.user),
            AuthSource::Bearer,
            Some(Arc::clone(&claims.claims)),
        )
        .map(|mut a| {
            a.accounts = Some(snapshot);
            a
        })
        .map_err(&fail);
    }

    // 2. and 3. Browser credentials: the session and the TOKEN cookie set with it.
    super::browser::authenticate(&state, req)
        .await
        .map_err(&fail)
}

pub(super) fn finish(
    user: Arc<User>,
    source: AuthSource,
    claims: Option<Arc<Value>>,
) -> Result<Authenticated, Failure> {
    if !user.is_active {
        log::info!("refusing deactivated user {}", user.id);
        return Err(Failure::Inactive);
    }
    Ok(Authenticated {
        user,
        accounts: None,
        source,
        claims,
        roles_unavailable: None,
    })
}

pub(super) async fn validate(state: &AppState, token: &str) -> Result<Arc<AccessClaims>, Failure> {
    match state.access_tokens.validate(token).await {
        Ok(c) => Ok(c),
        Err(TokenError::KeysUnavailable(why)) => Err(Failure::Unavailable(why)),
        Err(e) => {
            if let TokenError::Audience { expected } = &e {
                log::warn!(
                    "rejected a token without audience `{expected}`: add an Audience mapper \
                     (oidc-audience-mapper, Included Client Audience = {expected}) to the \
                     client's dedicated scope in Keycloak, or set KEYGATE_ACCEPT_AZP=true"
                );
            } else {
                log::info!(
                    "rejected a token: {}",
                    crate::util::for_log(&e.to_string(), 300)
                );
            }
            Err(Failure::Invalid(e))
        }
    }
}

/// The local user of a token's subject (from the user cache when fresh); a subject seen for the
/// first time is provisioned from the token's claims, as at login.
pub(super) async fn user_for_claims(
    state: &AppState,
    sub: &str,
    claims: Arc<Value>,
) -> Result<Arc<UserSnapshot>, Failure> {
    if let Some(hit) = state.users.get(sub) {
        return Ok(hit);
    }
    let owned_sub = sub.to_string();
    let policy = state.settings.link_policy;
    let snapshot = store::run(&state.pool, move |conn| {
        let user = match SocialAccount::find(conn, KEYCLOAK, &owned_sub)? {
            Some(account) => User::find(conn, account.user_id)?,
            None => None,
        };
        let user = match user {
            Some(u) => u,
            None => provision(conn, &owned_sub, &claims, policy, None)?,
        };
        let accounts = SocialAccount::for_user(conn, user.id)?;
        Ok(UserSnapshot {
            user: Arc::new(user),
            accounts,
        })
    })
    .await
    .map_err(|e: DbError| Failure::Internal(e.into()))?;
    let snapshot = Arc::new(snapshot);
    state.users.put(sub, snapshot.clone());
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn with_claims(claims: Value) -> Authenticated {
        Authenticated {
            user: Arc::new(User {
                id: 1,
                username: "u".into(),
                email: None,
                first_name: String::new(),
                last_name: String::new(),
                is_active: true,
                created_at: 0,
                last_login_at: None,
                email_verified: false,
            }),
            accounts: None,
            source: AuthSource::Bearer,
            claims: Some(Arc::new(claims)),
            roles_unavailable: None,
        }
    }

    #[test]
    fn the_admin_role_counts_as_a_realm_role_or_a_role_of_our_client_only() {
        let realm = with_claims(json!({"realm_access": {"roles": ["keygate-admin"]}}));
        assert!(realm.has_role("keygate-admin", "keygate"));
        let client =
            with_claims(json!({"resource_access": {"keygate": {"roles": ["keygate-admin"]}}}));
        assert!(client.has_role("keygate-admin", "keygate"));
        let other_client =
            with_claims(json!({"resource_access": {"other": {"roles": ["keygate-admin"]}}}));
        assert!(!other_client.has_role("keygate-admin", "keygate"));
        let malformed = with_claims(json!({"realm_access": {"roles": "keygate-admin"}}));
        assert!(!malformed.has_role("keygate-admin", "keygate"));
        let mut none = with_claims(json!({}));
        none.claims = None;
        assert!(!none.has_role("keygate-admin", "keygate"));
    }
}
