//! The test side of Keycloak's admin REST API: [`RealmAdmin`], and the users and clients it makes
//! for one test.

use serde_json::Value;

use super::browser::location;
use super::env::{env_or, issuer, keycloak_base};

/// The tests' own client for Keycloak's admin REST API on the test realm, signed in as the master
/// realm's bootstrap admin: it makes users and clients, changes realm settings and reads events for
/// a test. Not to be confused with keygate's own Keycloak admin client inside the app under test.
pub struct RealmAdmin {
    http: reqwest::Client,
    token: String,
    pub realm_url: String,
}

impl RealmAdmin {
    pub async fn connect() -> Self {
        let base = keycloak_base();
        let http = reqwest::Client::new();
        let token: Value = http
            .post(format!(
                "{base}/realms/master/protocol/openid-connect/token"
            ))
            .form(&[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", &env_or("KEYCLOAK_ADMIN_USER", "admin")),
                ("password", &env_or("KEYCLOAK_ADMIN_PASSWORD", "admin")),
            ])
            .send()
            .await
            .expect("master token")
            .json()
            .await
            .expect("master token json");
        let realm = issuer().rsplit('/').next().unwrap_or("keygate").to_string();
        RealmAdmin {
            http,
            token: token["access_token"]
                .as_str()
                .expect("admin access token")
                .to_string(),
            realm_url: format!("{base}/admin/realms/{realm}"),
        }
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.realm_url, path))
            .bearer_auth(&self.token)
    }

    /// `GET` an admin API path and its JSON answer.
    pub async fn get_json(&self, path: &str) -> Value {
        self.request(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: not JSON: {e}"))
    }

    pub async fn user_id(&self, username: &str) -> String {
        let users: Value = self
            .request(reqwest::Method::GET, "/users")
            .query(&[("username", username), ("exact", "true")])
            .send()
            .await
            .expect("find user")
            .json()
            .await
            .expect("users json");
        users[0]["id"].as_str().expect("user id").to_string()
    }

    pub async fn create_user(&self, prefix: &str) -> TestUser {
        self.create_user_with(prefix, None, true).await
    }

    /// A user with a chosen email (default `<username>@example.com`) and verification state.
    pub async fn create_user_with(
        &self,
        prefix: &str,
        email: Option<&str>,
        email_verified: bool,
    ) -> TestUser {
        let username = format!(
            "{prefix}-{}",
            keygate::testing::random_token(6)
                .to_lowercase()
                .replace(['-', '_'], "x")
        );
        let password = "test-password-1".to_string();
        let email = email
            .map(String::from)
            .unwrap_or_else(|| format!("{username}@example.com"));
        let r = self
            .request(reqwest::Method::POST, "/users")
            .json(&serde_json::json!({
                "username": username, "enabled": true,
                "email": email, "emailVerified": email_verified,
                "firstName": "Test", "lastName": prefix,
                "credentials": [{"type": "password", "value": password, "temporary": false}],
            }))
            .send()
            .await
            .expect("create user");
        let id = created_id(r, "user").await;
        TestUser {
            username,
            password,
            id,
        }
    }

    pub async fn logout_user(&self, id: &str) {
        let r = self
            .request(reqwest::Method::POST, &format!("/users/{id}/logout"))
            .send()
            .await
            .expect("logout user");
        assert!(r.status().is_success(), "logout user: {}", r.status());
    }

    /// Gives user `id` the realm role `role`, or takes it away.
    pub async fn set_realm_role(&self, id: &str, role: &str, granted: bool) {
        let rep = self.get_json(&format!("/roles/{role}")).await;
        self.map_role(&format!("/users/{id}/role-mappings/realm"), rep, granted)
            .await;
    }

    /// Gives user `id` the role `role` of the client `client_id`, or takes it away.
    pub async fn set_client_role(&self, id: &str, client_id: &str, role: &str, granted: bool) {
        let list = self
            .get_json(&format!("/clients?clientId={client_id}"))
            .await;
        let uuid = list[0]["id"].as_str().expect("client uuid").to_string();
        let rep = self
            .get_json(&format!("/clients/{uuid}/roles/{role}"))
            .await;
        let mapping = format!("/users/{id}/role-mappings/clients/{uuid}");
        self.map_role(&mapping, rep, granted).await;
    }

    /// Adds (`granted`) or removes the role `rep` at a user's role-mapping endpoint.
    async fn map_role(&self, mapping: &str, rep: Value, granted: bool) {
        let method = if granted {
            reqwest::Method::POST
        } else {
            reqwest::Method::DELETE
        };
        let r = self
            .request(method, mapping)
            .json(&serde_json::json!([rep]))
            .send()
            .await
            .expect("role mapping");
        assert!(
            r.status().is_success(),
            "role mapping {mapping}: {}",
            r.status()
        );
    }

    /// Enables or disables user `id` in Keycloak (which sends no back-channel logout for it).
    pub async fn set_enabled(&self, id: &str, enabled: bool) {
        let r = self
            .request(reqwest::Method::PUT, &format!("/users/{id}"))
            .json(&serde_json::json!({"enabled": enabled}))
            .send()
            .await
            .expect("update user");
        assert!(r.status().is_success(), "update user: {}", r.status());
    }

    /// Refresh-token rotation (a refresh token works once) and stored refresh events.
    pub async fn enable_rotation_and_events(&self) {
        self.update_realm(serde_json::json!({
            "revokeRefreshToken": true, "refreshTokenMaxReuse": 0, "eventsEnabled": true,
            "enabledEventTypes": ["LOGIN", "LOGIN_ERROR", "CODE_TO_TOKEN", "REFRESH_TOKEN",
                                  "REFRESH_TOKEN_ERROR", "LOGOUT"],
        }))
        .await;
    }

    /// Changes realm settings (a partial representation: only the given fields change).
    pub async fn update_realm(&self, patch: Value) {
        let r = self
            .request(reqwest::Method::PUT, "")
            .json(&patch)
            .send()
            .await
            .expect("update realm");
        assert!(r.status().is_success(), "update realm: {}", r.status());
    }

    /// Merges `attributes` into a client's attributes.
    pub async fn set_client_attributes(&self, uuid: &str, attributes: Value) {
        let mut rep = self.get_json(&format!("/clients/{uuid}")).await;
        for (k, v) in attributes.as_object().expect("attributes object") {
            rep["attributes"][k] = v.clone();
        }
        let r = self
            .request(reqwest::Method::PUT, &format!("/clients/{uuid}"))
            .json(&rep)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "update client: {}", r.status());
    }

    pub async fn find_users(&self, username: &str) -> Vec<Value> {
        let v: Value = self
            .request(reqwest::Method::GET, "/users")
            .query(&[("username", username), ("exact", "true")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v.as_array().cloned().unwrap_or_default()
    }

    /// Clones the `keygate` client under a new id with access tokens living `lifespan` seconds.
    pub async fn short_lived_client(&self, lifespan: u32) -> TestClient {
        self.short_lived_client_with(lifespan, false).await
    }

    /// The same, with a service account that may view and manage users, as keygate's own
    /// client has (registration, sign-out everywhere, asking for a user's sessions).
    pub async fn short_lived_admin_client(&self, lifespan: u32) -> TestClient {
        let client = self.short_lived_client_with(lifespan, true).await;
        self.grant_service_roles(&client, &["view-users", "manage-users", "query-users"])
            .await;
        client
    }

    /// Gives `client`'s service account these roles of realm-management.
    pub async fn grant_service_roles(&self, client: &TestClient, names: &[&str]) {
        let account = self
            .get_json(&format!("/clients/{}/service-account-user", client.uuid))
            .await;
        let list = self.get_json("/clients?clientId=realm-management").await;
        let rm = list[0]["id"]
            .as_str()
            .expect("realm-management")
            .to_string();
        let mut roles = vec![];
        for name in names {
            roles.push(self.get_json(&format!("/clients/{rm}/roles/{name}")).await);
        }
        let sa = account["id"].as_str().expect("service account user");
        let r = self
            .request(
                reqwest::Method::POST,
                &format!("/users/{sa}/role-mappings/clients/{rm}"),
            )
            .json(&roles)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "service account roles: {}",
            r.status()
        );
    }

    /// Changes fields of `client`'s representation.
    pub async fn update_client(&self, client: &TestClient, patch: Value) {
        let mut rep = self.get_json(&format!("/clients/{}", client.uuid)).await;
        if let (Some(rep), Some(patch)) = (rep.as_object_mut(), patch.as_object()) {
            for (k, v) in patch {
                rep.insert(k.clone(), v.clone());
            }
        }
        let r = self
            .request(reqwest::Method::PUT, &format!("/clients/{}", client.uuid))
            .json(&rep)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "update client: {}", r.status());
    }

    async fn short_lived_client_with(&self, lifespan: u32, service_account: bool) -> TestClient {
        let list = self.get_json("/clients?clientId=keygate").await;
        let mut rep = list[0].clone();
        let client_id = format!(
            "keygate-t-{}",
            keygate::testing::random_token(6)
                .to_lowercase()
                .replace(['-', '_'], "x")
        );
        let secret = format!("secret-{client_id}");
        let obj = rep.as_object_mut().expect("client representation");
        obj.remove("id");
        obj.insert("clientId".into(), client_id.clone().into());
        obj.insert("secret".into(), secret.clone().into());
        obj.insert("serviceAccountsEnabled".into(), service_account.into());
        let attrs = obj
            .entry("attributes")
            .or_insert_with(|| serde_json::json!({}));
        attrs["access.token.lifespan"] = lifespan.to_string().into();
        if let Some(a) = attrs.as_object_mut() {
            a.remove("backchannel.logout.url");
        }
        if let Some(Value::Array(mappers)) = obj.get_mut("protocolMappers") {
            for m in mappers.iter_mut() {
                if let Some(m) = m.as_object_mut() {
                    m.remove("id");
                }
            }
        }
        let r = self
            .request(reqwest::Method::POST, "/clients")
            .json(&rep)
            .send()
            .await
            .expect("create client");
        let uuid = created_id(r, "client").await;
        TestClient {
            client_id,
            secret,
            uuid,
        }
    }

    /// Keycloak's stored events of `kind` for a client.
    pub async fn events(&self, kind: &str, client: &str) -> Vec<Value> {
        let v: Value = self
            .request(reqwest::Method::GET, "/events")
            .query(&[("type", kind), ("client", client), ("max", "1000")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v.as_array().cloned().unwrap_or_default()
    }
}

/// A Keycloak user made for one test, so tests that sign users out of Keycloak or change them do
/// not disturb each other.
pub struct TestUser {
    pub username: String,
    pub password: String,
    pub id: String,
}

impl TestUser {
    pub fn creds(&self) -> (&str, &str) {
        (&self.username, &self.password)
    }
}

/// A copy of the `keygate` client with its own id and a short access-token lifespan.
pub struct TestClient {
    pub client_id: String,
    pub secret: String,
    pub uuid: String,
}

/// A unique lowercase name for things a test creates.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        keygate::testing::random_token(6)
            .to_lowercase()
            .replace(['-', '_'], "x")
    )
}

/// The id at the end of a 201's Location header (Keycloak's admin API).
pub async fn created_id(r: reqwest::Response, what: &str) -> String {
    if r.status() != 201 {
        panic!(
            "create {what}: {} {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
    }
    location(&r).rsplit('/').next().expect("id").to_string()
}
