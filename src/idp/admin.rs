//! Keycloak's admin REST API, called as keygate's own confidential client: a token from the
//! client-credentials grant (the client's service account holds `manage-users`), cached until
//! shortly before it expires. Never a hard-coded admin token (seed 001).

use crate::idp::http::SendObserved;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Value};

use super::discovery::Discovery;
use super::http::read_json;
use super::Unavailable;
use crate::settings::Secret;
use crate::util::error_chain;

#[derive(Debug, thiserror::Error)]
pub(crate) enum AdminError {
    /// Username or email already exists (409).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Keycloak refused the data (password policy, user profile): its message, for the user.
    #[error("rejected: {0}")]
    Rejected(String),
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    #[error("Keycloak admin API failed: {0}")]
    Failed(String),
}

/// An admin API read.
pub(crate) enum Read {
    Found(Value),
    /// 403: the service account may not read this.
    Forbidden,
    Missing,
}

/// A user to create in Keycloak.
pub(crate) struct NewKeycloakUser<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub password: &'a str,
}

pub(crate) struct KeycloakAdmin {
    discovery: Arc<Discovery>,
    /// `{base}/admin/realms/{realm}`
    admin_url: String,
    token: Mutex<Option<(Secret<String>, Instant)>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<u64>,
}

impl KeycloakAdmin {
    pub(crate) fn new(issuer: &str, discovery: Arc<Discovery>) -> Self {
        // Keycloak's issuer is `{base}/realms/{realm}`; the admin API is `{base}/admin/realms/{realm}`.
        let admin_url = match issuer.rsplit_once("/realms/") {
            Some((base, realm)) => format!("{base}/admin/realms/{realm}"),
            None => format!("{issuer}/admin"),
        };
        KeycloakAdmin {
            discovery,
            admin_url,
            token: Mutex::new(None),
        }
    }

    async fn token(&self) -> Result<String, AdminError> {
        if let Ok(guard) = self.token.lock() {
            if let Some((token, valid_until)) = guard.as_ref() {
                if Instant::now() < *valid_until {
                    return Ok(token.expose().clone());
                }
            }
        }
        let body = self.grant(None).await?;
        // Renew a little early so a token never expires in flight.
        let lifetime = body.expires_in.unwrap_or(60).saturating_sub(15).max(1);
        let valid_until = Instant::now() + Duration::from_secs(lifetime);
        if let Ok(mut guard) = self.token.lock() {
            *guard = Some((Secret::new(body.access_token.clone()), valid_until));
        }
        Ok(body.access_token)
    }

    /// A fresh client-credentials token with `scope=openid`, as a sign-in's token has it.
    pub(crate) async fn openid_token(&self) -> Result<String, AdminError> {
        Ok(self.grant(Some("openid")).await?.access_token)
    }

    async fn grant(&self, scope: Option<&str>) -> Result<TokenResponse, AdminError> {
        let provider = self.discovery.provider().await?;
        let endpoint = provider
            .token_endpoint()
            .ok_or_else(|| AdminError::Failed("no token endpoint".into()))?;
        let response = self
            .discovery
            .http()
            .post(endpoint)
            .form(&{
                let mut form = vec![
                    ("grant_type", "client_credentials"),
                    ("client_id", self.discovery.client_id()),
                    ("client_secret", self.discovery.client_secret()),
                ];
                form.extend(scope.map(|s| ("scope", s)));
                form
            })
            .send_observed()
            .await
            .map_err(|e| Unavailable(error_chain(&e)))?;
        if !response.status().is_success() {
            return Err(AdminError::Failed(format!(
                "client-credentials grant answered {}: enable the client's service account and \
                 give it realm-management's manage-users, view-users and query-users roles",
                response.status()
            )));
        }
        response
            .json()
            .await
            .map_err(|e| AdminError::Failed(format!("unreadable token response: {e}")))
    }

    async fn send(
        &self,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, AdminError> {
        let token = self.token().await?;
        Ok(build(self.discovery.http(), &self.admin_url)
            .bearer_auth(token)
            .send_observed()
            .await
            .map_err(|e| Unavailable(error_chain(&e)))?)
    }

    /// A token of keygate's service account (the client-credentials grant), for checks that
    /// look at what Keycloak puts into it.
    pub(crate) async fn service_token(&self) -> Result<String, AdminError> {
        self.token().await
    }

    /// `GET {admin}/{path}` as JSON. A refusal (403: the service account lacks a role) is
    /// [`Read::Forbidden`], not an error.
    pub(crate) async fn read(&self, path: &str) -> Result<Read, AdminError> {
        let response = self
            .send(|http, base| http.get(format!("{base}{path}")))
            .await?;
        match response.status().as_u16() {
            200 => read_json(response)
                .await
                .map(Read::Found)
                .map_err(AdminError::Failed),
            403 => Ok(Read::Forbidden),
            404 => Ok(Read::Missing),
            other => Err(AdminError::Failed(format!("GET {path} answered {other}"))),
        }
    }

    /// Whether the userinfo endpoint answers for `token` (its status).
    pub(crate) async fn userinfo_status(&self, token: &str) -> Result<u16, AdminError> {
        let provider = self.discovery.provider().await?;
        let Some(endpoint) = provider.metadata.userinfo_endpoint() else {
            return Err(AdminError::Failed(
                "discovery names no userinfo endpoint".into(),
            ));
        };
        let response = self
            .discovery
            .http()
            .get(endpoint.url().clone())
            .bearer_auth(token)
            .send_observed()
            .await
            .map_err(|e| Unavailable(error_chain(&e)))?;
        Ok(response.status().as_u16())
    }

    /// Creates an enabled user with a password; returns Keycloak's id of the new user.
    pub(crate) async fn create_user(
        &self,
        user: &NewKeycloakUser<'_>,
    ) -> Result<String, AdminError> {
        let body = json!({
            "username": user.username,
            "email": user.email,
            "firstName": user.first_name,
            "lastName": user.last_name,
            "enabled": true,
            "credentials": [{"type": "password", "value": user.password, "temporary": false}],
        });
        let response = self
            .send(|http, base| http.post(format!("{base}/users")).json(&body))
            .await?;
        let status = response.status();
        if status == reqwest::StatusCode::CREATED {
            return response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.rsplit('/').next())
                .filter(|id| !id.is_empty())
                .map(String::from)
                .ok_or_else(|| AdminError::Failed("201 without a Location header".into()));
        }
        let message = error_message(response).await;
        match status.as_u16() {
            409 => Err(AdminError::Conflict(message)),
            400 => Err(AdminError::Rejected(message)),
            401 | 403 => Err(Unavailable(format!(
                "the admin API answered {status}: give the client's service account the \
                 realm-management roles manage-users, view-users and query-users"
            ))
            .into()),
            s if s >= 500 => Err(Unavailable(format!("{status}: {message}")).into()),
            _ => Err(AdminError::Failed(format!("{status}: {message}"))),
        }
    }

    pub(crate) async fn delete_user(&self, id: &str) -> Result<(), AdminError> {
        let id = encode(id);
        let response = self
            .send(|http, base| http.delete(format!("{base}/users/{id}")))
            .await?;
        match response.status().as_u16() {
            204 | 200 | 404 => Ok(()),
            _ => Err(AdminError::Failed(format!(
                "delete answered {}",
                response.status()
            ))),
        }
    }

    /// Ends every Keycloak session of a user (Keycloak then calls back-channel logout).
    pub(crate) async fn logout_user(&self, id: &str) -> Result<(), AdminError> {
        let id = encode(id);
        let response = self
            .send(|http, base| http.post(format!("{base}/users/{id}/logout")))
            .await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(AdminError::Failed(format!(
                "logout answered {}",
                response.status()
            )))
        }
    }
}

impl KeycloakAdmin {
    /// The ids of a user's live Keycloak sessions (`GET users/{id}/sessions`).
    pub(crate) async fn user_sessions(&self, id: &str) -> Result<Vec<String>, AdminError> {
        let id = encode(id);
        let response = self
            .send(|http, base| http.get(format!("{base}/users/{id}/sessions")))
            .await?;
        if !response.status().is_success() {
            return Err(AdminError::Failed(format!(
                "sessions answered {}",
                response.status()
            )));
        }
        let body = read_json(response).await.map_err(AdminError::Failed)?;
        Ok(body
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|s| s.get("id").and_then(Value::as_str).map(String::from))
                    .collect()
            })
            .unwrap_or_default())
    }
}

fn encode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

/// Keycloak's error text (`errorMessage` or `error_description`), bounded.
async fn error_message(response: reqwest::Response) -> String {
    let body = read_json(response).await.unwrap_or(Value::Null);
    let text = body
        .get("errorMessage")
        .or_else(|| body.get("error_description"))
        .or_else(|| body.get("error"))
        .and_then(Value::as_str)
        .unwrap_or("no details");
    text.chars().take(300).collect()
}
