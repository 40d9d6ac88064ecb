//! Roles from the access token, and [`RequireRole`], the middleware that gates a scope by one.
//! The admin pages' gate is the same check with the configured admin role.

use std::future::{ready, Ready};
use std::rc::Rc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use futures_util::future::LocalBoxFuture;
use serde_json::Value;

use super::auth::{authenticate, AuthError, Authenticated};
use super::response::{error_page_with_retry, is_api, unavailable_page, ApiError};
use crate::idp::Unavailable;

/// A role Keycloak puts in the access token: a realm role (`realm_access.roles`) or a role of
/// one client (`resource_access.<client>.roles`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// A realm role, e.g. `Role::realm("reporter")`.
    Realm(String),
    /// A client role, e.g. `Role::client("keygate", "reporter")`.
    Client {
        /// The client's `clientId` (not its internal id).
        client: String,
        /// The role's name within that client.
        role: String,
    },
}

impl Role {
    /// The realm role `name`.
    pub fn realm(name: impl Into<String>) -> Self {
        Role::Realm(name.into())
    }

    /// The role `name` of the client `client` (its `clientId`).
    pub fn client(client: impl Into<String>, name: impl Into<String>) -> Self {
        Role::Client {
            client: client.into(),
            role: name.into(),
        }
    }

    /// True when the access token's claims name this role. Anything but a list of strings in
    /// the right place counts as no role.
    pub(crate) fn granted_by(&self, claims: &Value) -> bool {
        let roles = match self {
            Role::Realm(_) => claims.get("realm_access"),
            Role::Client { client, .. } => claims
                .get("resource_access")
                .and_then(|r| r.get(client.as_str())),
        };
        let wanted = match self {
            Role::Realm(name) => name,
            Role::Client { role, .. } => role,
        };
        roles
            .and_then(|r| r.get("roles"))
            .and_then(Value::as_array)
            .is_some_and(|list| list.iter().any(|r| r.as_str() == Some(wanted.as_str())))
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Role::Realm(name) => write!(f, "realm role {name}"),
            Role::Client { client, role } => write!(f, "role {role} of client {client}"),
        }
    }
}

/// Why a role check refused a request. Pages get the login redirect, a 403 page or the 503 page;
/// paths under `/api/` get the JSON 401, 403 or 503.
#[derive(Debug)]
pub struct RoleRejection(Rejection);

#[derive(Debug)]
enum Rejection {
    /// Not signed in (or the credentials are no good): the login redirect or the 401 JSON.
    Auth(AuthError),
    /// The session's token expired and Keycloak cannot be reached, so no role can be trusted.
    RolesUnavailable { why: Unavailable, api: bool },
    /// Signed in without any of the roles.
    Missing { wanted: String, api: bool },
}

impl RoleRejection {
    /// The answer as the JSON API gives it, whatever the path (forward-auth answers a proxy).
    pub(crate) fn as_api(&self) -> ApiError {
        match &self.0 {
            Rejection::Auth(e) => e.as_api(),
            Rejection::RolesUnavailable { why, .. } => ApiError::Unavailable(why.clone()),
            Rejection::Missing { wanted, .. } => {
                ApiError::Forbidden(format!("this requires the {wanted}"))
            }
        }
    }

    /// The request is not authenticated.
    pub(crate) fn auth(e: AuthError) -> Self {
        RoleRejection(Rejection::Auth(e))
    }

    /// True for a signed-in page visitor without the role (whom the admin gate answers with a
    /// page of its own).
    pub(crate) fn is_missing_role_on_page(&self) -> bool {
        matches!(self.0, Rejection::Missing { api: false, .. })
    }
}

impl std::fmt::Display for RoleRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Rejection::Auth(e) => write!(f, "{e}"),
            Rejection::RolesUnavailable { why, .. } => write!(f, "{why}"),
            Rejection::Missing { wanted, .. } => write!(f, "requires the {wanted}"),
        }
    }
}

impl ResponseError for RoleRejection {
    fn status_code(&self) -> StatusCode {
        match &self.0 {
            Rejection::Auth(e) => e.status_code(),
            Rejection::RolesUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::Missing { .. } => StatusCode::FORBIDDEN,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match &self.0 {
            Rejection::Auth(e) => e.error_response(),
            Rejection::RolesUnavailable { api: true, .. }
            | Rejection::Missing { api: true, .. } => self.as_api().error_response(),
            Rejection::RolesUnavailable { why, api: false } => unavailable_page(why),
            Rejection::Missing { wanted, api: false } => error_page_with_retry(
                StatusCode::FORBIDDEN,
                "Not allowed",
                &format!("Your account does not have the {wanted} that this page needs."),
                "/",
                "Home",
            ),
        }
    }
}

/// Authenticates the request and checks that the user holds one of `roles`.
pub(crate) async fn check_roles(
    req: &HttpRequest,
    roles: &[Role],
) -> Result<Authenticated, RoleRejection> {
    let auth = authenticate(req)
        .await
        .map_err(|e| RoleRejection(Rejection::Auth(e)))?;
    let api = is_api(req);
    if let Some(why) = &auth.roles_unavailable {
        return Err(RoleRejection(Rejection::RolesUnavailable {
            why: why.clone(),
            api,
        }));
    }
    if roles.iter().any(|r| auth.has(r)) {
        return Ok(auth);
    }
    let wanted = roles
        .iter()
        .map(Role::to_string)
        .collect::<Vec<_>>()
        .join(" or the ");
    log::info!("user {} lacks the {wanted}", auth.user.id);
    Err(RoleRejection(Rejection::Missing { wanted, api }))
}

/// Middleware that lets into a scope only users holding one of its roles:
///
/// ```no_run
/// use actix_web::{web, HttpResponse};
/// use keygate::{Keygate, RequireRole, Role};
///
/// # fn routes(keygate: Keygate) -> Keygate {
/// keygate.mount("/reports", |scope| {
///     scope
///         .wrap(RequireRole::any([Role::realm("reporter"), Role::client("keygate", "reporter")]))
///         .route("", web::get().to(|| async { HttpResponse::Ok().body("reports") }))
/// })
/// # }
/// ```
///
/// Anonymous visitors of pages are sent to the login (and come back); a signed-in user without
/// the role gets a 403 page; under `/api/` both get the JSON 401 or 403. When the session's token
/// has expired and Keycloak cannot be reached, the answer is 503: roles that cannot be confirmed
/// are not trusted.
#[derive(Clone, Debug)]
pub struct RequireRole {
    roles: Rc<[Role]>,
}

impl RequireRole {
    /// Requires `role`.
    pub fn new(role: Role) -> Self {
        Self::any([role])
    }

    /// Requires any one of `roles`.
    pub fn any(roles: impl IntoIterator<Item = Role>) -> Self {
        RequireRole {
            roles: roles.into_iter().collect(),
        }
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequireRole
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = RoleGate<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RoleGate {
            service: Rc::new(service),
            roles: self.roles.clone(),
        }))
    }
}

/// The service [`RequireRole`] wraps around a scope.
pub struct RoleGate<S> {
    service: Rc<S>,
    roles: Rc<[Role]>,
}

impl<S, B> Service<ServiceRequest> for RoleGate<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    actix_web::dev::forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = self.service.clone();
        let roles = self.roles.clone();
        Box::pin(async move {
            match check_roles(req.request(), &roles).await {
                Ok(_) => Ok(service.call(req).await?.map_into_left_body()),
                Err(rejection) => Ok(req
                    .into_response(rejection.error_response())
                    .map_into_right_body()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn realm_and_client_roles_are_read_from_their_own_claims_only() {
        let claims = json!({
            "realm_access": {"roles": ["reporter"]},
            "resource_access": {"keygate": {"roles": ["editor"]}, "other": {"roles": ["boss"]}},
        });
        assert!(Role::realm("reporter").granted_by(&claims));
        assert!(
            !Role::realm("editor").granted_by(&claims),
            "a client role is no realm role"
        );
        assert!(Role::client("keygate", "editor").granted_by(&claims));
        assert!(
            !Role::client("keygate", "boss").granted_by(&claims),
            "another client's role"
        );
        assert!(
            !Role::client("keygate", "reporter").granted_by(&claims),
            "a realm role"
        );
        let malformed = json!({"realm_access": {"roles": "reporter"}, "resource_access": []});
        assert!(!Role::realm("reporter").granted_by(&malformed));
        assert!(!Role::client("keygate", "editor").granted_by(&malformed));
    }
}
