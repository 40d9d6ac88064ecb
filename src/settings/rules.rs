//! Route rules (`KEYGATE_RULES`): which paths of the protected application need what. A TOML
//! file of `[[rules]]`, first match wins, `authenticated` when none matches. The format is a
//! contract with operators: fields may be added, never changed.
//!
//! ```toml
//! [[rules]]
//! prefix = "/public/"          # path prefix of the original request
//! access = "public"            # public | authenticated | role:<realm role> | client-role:<client>:<role>
//! [[rules]]
//! prefix = "/reports/"
//! methods = ["POST", "DELETE"] # optional; all methods when absent
//! access = "role:reporter"
//! ```

use serde::Deserialize;

use super::{bad, SettingsError};

/// What a matching request needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone; identity headers are still sent when the visitor is signed in.
    Public,
    /// Any signed-in, active user.
    Authenticated,
    /// A user with this realm role.
    RealmRole(String),
    /// A user with this role of this client.
    ClientRole {
        /// The client's `clientId`.
        client: String,
        /// The role.
        role: String,
    },
}

/// One rule: a path prefix, optionally some methods, and the access they need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The original request's path must start with this.
    pub prefix: String,
    /// Upper-case methods the rule is for; `None` for all.
    pub methods: Option<Vec<String>>,
    /// What a request it matches needs.
    pub access: Access,
}

/// The rules in order; see the module docs for the file format.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    /// First match wins.
    pub rules: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    prefix: String,
    methods: Option<Vec<String>>,
    access: String,
}

const ACCESS_FORMS: &str =
    "public | authenticated | role:<realm role> | client-role:<client>:<role>";

impl Rules {
    /// Parses a rules file; an error names the rule (its number and prefix) and what is wrong.
    pub fn parse(text: &str) -> Result<Self, SettingsError> {
        let file: File = toml::from_str(text)
            .map_err(|e| bad("KEYGATE_RULES", format!("not a valid rules file: {e}")))?;
        let mut rules = Vec::with_capacity(file.rules.len());
        for (i, raw) in file.rules.into_iter().enumerate() {
            let name = format!("rule {} (prefix {:?})", i + 1, raw.prefix);
            if !raw.prefix.starts_with('/') {
                return Err(bad(
                    "KEYGATE_RULES",
                    format!("{name}: a prefix starts with /"),
                ));
            }
            let methods = match raw.methods {
                None => None,
                Some(list) if list.is_empty() => {
                    return Err(bad(
                        "KEYGATE_RULES",
                        format!("{name}: `methods` is empty; leave it out for all methods"),
                    ))
                }
                Some(list) => Some(
                    list.iter()
                        .map(|m| {
                            method(m).ok_or_else(|| {
                                bad(
                                    "KEYGATE_RULES",
                                    format!("{name}: {m:?} is not an HTTP method"),
                                )
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                ),
            };
            let access = access(&raw.access).ok_or_else(|| {
                bad(
                    "KEYGATE_RULES",
                    format!(
                        "{name}: unknown access {:?}; expected {ACCESS_FORMS}",
                        raw.access
                    ),
                )
            })?;
            rules.push(Rule {
                prefix: raw.prefix,
                methods,
                access,
            });
        }
        Ok(Rules { rules })
    }

    /// What a `method` request for `path` needs: the first matching rule's access, else
    /// `authenticated`.
    pub fn access(&self, method: &str, path: &str) -> &Access {
        const DEFAULT: &Access = &Access::Authenticated;
        self.rules
            .iter()
            .find(|r| {
                path.starts_with(&r.prefix)
                    && r.methods
                        .as_ref()
                        .is_none_or(|m| m.iter().any(|m| m.eq_ignore_ascii_case(method)))
            })
            .map_or(DEFAULT, |r| &r.access)
    }
}

fn method(raw: &str) -> Option<String> {
    let up = raw.trim().to_ascii_uppercase();
    let token = !up.is_empty() && up.bytes().all(|b| b.is_ascii_uppercase());
    token.then_some(up)
}

fn access(raw: &str) -> Option<Access> {
    let raw = raw.trim();
    match raw {
        "public" => return Some(Access::Public),
        "authenticated" => return Some(Access::Authenticated),
        _ => {}
    }
    if let Some(role) = raw.strip_prefix("role:") {
        return (!role.is_empty()).then(|| Access::RealmRole(role.to_string()));
    }
    let (client, role) = raw.strip_prefix("client-role:")?.split_once(':')?;
    (!client.is_empty() && !role.is_empty()).then(|| Access::ClientRole {
        client: client.to_string(),
        role: role.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
        [[rules]]
        prefix = "/public/"
        access = "public"
        [[rules]]
        prefix = "/reports/"
        methods = ["POST", "delete"]
        access = "role:reporter"
        [[rules]]
        prefix = "/reports/"
        access = "client-role:keygate:viewer"
    "#;

    #[test]
    fn the_first_matching_rule_wins_and_the_default_is_authenticated() {
        let rules = Rules::parse(EXAMPLE).unwrap();
        assert_eq!(rules.access("GET", "/public/a.css"), &Access::Public);
        assert_eq!(
            rules.access("DELETE", "/reports/1"),
            &Access::RealmRole("reporter".into())
        );
        assert_eq!(
            rules.access("GET", "/reports/1"),
            &Access::ClientRole {
                client: "keygate".into(),
                role: "viewer".into()
            }
        );
        assert_eq!(rules.access("GET", "/elsewhere"), &Access::Authenticated);
        assert_eq!(Rules::default().access("GET", "/"), &Access::Authenticated);
    }

    #[test]
    fn a_bad_rule_is_refused_naming_it() {
        let cases = [
            (
                "[[rules]]\nprefix = \"/a/\"\naccess = \"rol:x\"",
                "rule 1 (prefix \"/a/\"): unknown access",
            ),
            (
                "[[rules]]\nprefix = \"a/\"\naccess = \"public\"",
                "a prefix starts with /",
            ),
            (
                "[[rules]]\nprefix = \"/a/\"\nmethods = []\naccess = \"public\"",
                "`methods` is empty",
            ),
            (
                "[[rules]]\nprefix = \"/a/\"\nmethods = [\"G T\"]\naccess = \"public\"",
                "not an HTTP method",
            ),
            (
                "[[rules]]\nprefix = \"/a/\"\naccess = \"client-role:keygate\"",
                "unknown access",
            ),
            (
                "[[rules]]\nprefix = \"/a/\"\naces = \"public\"",
                "not a valid rules file",
            ),
            ("[[rule]]\nprefix = \"/a/\"", "not a valid rules file"),
        ];
        for (text, wanted) in cases {
            let e = Rules::parse(text).unwrap_err().to_string();
            assert!(
                e.starts_with("KEYGATE_RULES") && e.contains(wanted),
                "{text}: {e}"
            );
        }
    }
}
