//! Registration: validate the form, create the user in Keycloak through the admin API, then the
//! local user and its social account in one transaction. If the local write fails, the Keycloak
//! user is deleted again, so nothing is ever half-registered.

use serde::Deserialize;
use serde_json::json;

use crate::domain::audit::{Audit, AuditContext, AuditKind};
use crate::domain::provisioning::create_linked_user;
use crate::idp::{AdminError, KeycloakAdmin, NewKeycloakUser, Unavailable};
use crate::store::users::NewUser;
use crate::store::{self, DbConn, DbError, Pool, User};
use crate::util::now;

/// The registration form as submitted.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct RegistrationForm {
    #[serde(default)]
    pub csrf_token: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub password2: String,
}

/// A form that passed validation; usernames and emails lowercased as Keycloak stores them.
#[derive(Clone, Debug)]
pub(crate) struct ValidRegistration {
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub password: String,
}

/// Problems with the form, one message per field.
pub(crate) type FieldErrors = Vec<(&'static str, String)>;

impl RegistrationForm {
    pub(crate) fn validate(&self) -> Result<ValidRegistration, FieldErrors> {
        let mut errors: FieldErrors = vec![];
        let username = self.username.trim().to_lowercase();
        let email = self.email.trim().to_lowercase();
        let first_name = self.first_name.trim().to_string();
        let last_name = self.last_name.trim().to_string();

        if username.is_empty() {
            errors.push(("username", "Choose a username.".into()));
        } else if username.chars().count() < 3 || username.chars().count() > 64 {
            errors.push(("username", "Use 3 to 64 characters.".into()));
        } else if !username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
        {
            errors.push(("username", "Use letters, digits, and . _ - @ only.".into()));
        }
        if !is_email(&email) {
            errors.push(("email", "Enter a valid email address.".into()));
        }
        for (field, value, label) in [
            ("first_name", &first_name, "first name"),
            ("last_name", &last_name, "last name"),
        ] {
            if value.is_empty() {
                errors.push((field, format!("Enter your {label}.")));
            } else if value.chars().count() > 100 || value.chars().any(char::is_control) {
                errors.push((field, format!("Your {label} is too long or malformed.")));
            }
        }
        let pw_len = self.password.chars().count();
        if pw_len < 8 {
            errors.push(("password", "Use at least 8 characters.".into()));
        } else if pw_len > 256 {
            errors.push(("password", "Use at most 256 characters.".into()));
        }
        if self.password != self.password2 {
            errors.push(("password2", "The passwords do not match.".into()));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ValidRegistration {
            username,
            email,
            first_name,
            last_name,
            password: self.password.clone(),
        })
    }
}

/// A deliberately plain shape check: one @, something on both sides, a dot in the domain. Keycloak
/// and the eventual verification email are the real test.
fn is_email(s: &str) -> bool {
    if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        }
        None => false,
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum RegisterError {
    #[error("username or email already taken")]
    Taken,
    #[error("Keycloak refused the user: {0}")]
    Rejected(String),
    #[error(transparent)]
    Unavailable(Unavailable),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Creates the user in Keycloak and locally; returns the local user.
pub(crate) async fn register(
    admin: &KeycloakAdmin,
    pool: &Pool,
    form: &ValidRegistration,
    ctx: &AuditContext,
) -> Result<User, RegisterError> {
    let keycloak_id = admin
        .create_user(&NewKeycloakUser {
            username: &form.username,
            email: &form.email,
            first_name: &form.first_name,
            last_name: &form.last_name,
            password: &form.password,
        })
        .await
        .map_err(|e| match e {
            AdminError::Conflict(_) => RegisterError::Taken,
            AdminError::Rejected(message) => RegisterError::Rejected(message),
            AdminError::Unavailable(u) => RegisterError::Unavailable(u),
            AdminError::Failed(why) => RegisterError::Unexpected(anyhow::anyhow!(why)),
        })?;

    let local = store::transaction(pool, {
        let (form, uid, ctx) = (form.clone(), keycloak_id.clone(), ctx.clone());
        move |conn| create_local(conn, &uid, &form, &ctx)
    })
    .await;
    match local {
        Ok(user) => {
            log::info!("registered user {} (Keycloak id {keycloak_id})", user.id);
            Ok(user)
        }
        Err(e) => {
            let taken = e.is_unique_violation();
            log::error!("local write of a new registration failed, undoing it in Keycloak: {e}");
            compensate(admin, &keycloak_id).await;
            if taken {
                Err(RegisterError::Taken)
            } else {
                Err(RegisterError::Unexpected(anyhow::Error::new(e)))
            }
        }
    }
}

/// The local user of a new Keycloak account, and its audit row.
fn create_local(
    conn: &mut DbConn,
    keycloak_id: &str,
    form: &ValidRegistration,
    ctx: &AuditContext,
) -> Result<User, DbError> {
    let new = NewUser {
        username: &form.username,
        email: Some(&form.email),
        // Keycloak has not verified it: registration creates the user with an unverified address.
        email_verified: false,
        first_name: &form.first_name,
        last_name: &form.last_name,
        is_active: true,
        created_at: now(),
        last_login_at: None,
    };
    let extra = json!({"sub": keycloak_id, "preferred_username": form.username,
                       "email": form.email, "given_name": form.first_name,
                       "family_name": form.last_name, "registered": true})
    .to_string();
    let user = create_linked_user(conn, &new, keycloak_id, &extra)?;
    let detail = format!(
        "registered as {} (Keycloak id {keycloak_id})",
        form.username
    );
    Audit::new(AuditKind::Registration, Some(user.id), detail).record(conn, ctx)?;
    Ok(user)
}

/// Deletes the Keycloak user of a registration that failed locally. If even that fails, the log
/// names the user to remove by hand.
async fn compensate(admin: &KeycloakAdmin, keycloak_id: &str) {
    match admin.delete_user(keycloak_id).await {
        Ok(()) => log::info!("deleted Keycloak user {keycloak_id} of the failed registration"),
        Err(e) => log::error!(
            "could not delete Keycloak user {keycloak_id} after a failed registration ({e}): \
             remove it by hand in the Keycloak admin console (Users → {keycloak_id} → Delete)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> RegistrationForm {
        RegistrationForm {
            csrf_token: String::new(),
            username: " Dave ".into(),
            email: "Dave@Example.com".into(),
            first_name: "Dave".into(),
            last_name: "Doe".into(),
            password: "long-enough".into(),
            password2: "long-enough".into(),
        }
    }

    #[test]
    fn a_good_form_passes_and_is_normalised() {
        let v = form().validate().unwrap();
        assert_eq!(v.username, "dave");
        assert_eq!(v.email, "dave@example.com");
    }

    #[test]
    fn every_bad_field_is_named() {
        let bad = RegistrationForm {
            username: "a b".into(),
            email: "not-an-email".into(),
            first_name: "".into(),
            password: "short".into(),
            password2: "other".into(),
            ..form()
        };
        let fields: Vec<&str> = bad.validate().unwrap_err().iter().map(|e| e.0).collect();
        assert_eq!(
            fields,
            ["username", "email", "first_name", "password", "password2"]
        );
    }

    #[test]
    fn email_shapes() {
        for ok in ["a@b.co", "first.last+tag@sub.example.org"] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in [
            "", "a@", "@b.co", "a@b", "a b@c.de", "a@@b.co", "a@.b.co", "a@b.co.",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }
}
