//! Bearer tokens (the Docker Hub flow): scopes and their union, the token request to the
//! realm (`GET realm?service=…&scope=…` with Basic credentials, or the OAuth
//! `POST grant_type=refresh_token` for identity tokens), and a cache that refreshes a
//! token before it expires and re-asks for the union of scopes when a 401 names one more.
//!
//! Never: decides when to authenticate (client.rs does).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::creds::Credentials;
use crate::client::{read_bounded, BodyError};
use crate::error::RegistryError;
use crate::stall::{Stall, TransferLimits};

/// `repository:NAME:pull,push` and friends, as a set of actions per resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    resources: BTreeMap<(String, String), BTreeSet<String>>,
}

impl Scope {
    /// The scope of one repository.
    pub fn repository(name: &str, actions: &[&str]) -> Self {
        let mut s = Self::default();
        s.add("repository", name, actions.iter().copied());
        s
    }

    fn add<'a>(&mut self, kind: &str, name: &str, actions: impl IntoIterator<Item = &'a str>) {
        self.resources
            .entry((kind.to_owned(), name.to_owned()))
            .or_default()
            .extend(actions.into_iter().map(str::to_owned));
    }

    /// Parse a challenge's `scope` (space-separated `type:name:actions` items; names may
    /// hold `:` for a port, so split type off the front and actions off the back).
    pub fn parse(s: &str) -> Self {
        let mut out = Self::default();
        for item in s.split_whitespace() {
            let Some((kind, rest)) = item.split_once(':') else {
                continue;
            };
            let Some((name, actions)) = rest.rsplit_once(':') else {
                continue;
            };
            out.add(kind, name, actions.split(',').filter(|a| !a.is_empty()));
        }
        out
    }

    /// Add every action of `other`.
    pub fn union(&mut self, other: &Scope) {
        for ((k, n), a) in &other.resources {
            self.add(k, n, a.iter().map(String::as_str));
        }
    }

    /// True when `self` grants everything `other` asks for.
    pub fn covers(&self, other: &Scope) -> bool {
        other.resources.iter().all(|(key, acts)| {
            self.resources
                .get(key)
                .is_some_and(|have| acts.is_subset(have))
        })
    }

    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }

    /// One `type:name:actions` string per resource, those with `push` first (ggcr's
    /// order; some registries only read the first scope).
    pub fn items(&self) -> Vec<String> {
        let mut v: Vec<(bool, String)> = self
            .resources
            .iter()
            .map(|((k, n), a)| {
                // "*" (catalog) and push+pull: keep pull before push like docker does.
                let mut acts: Vec<&str> = a.iter().map(String::as_str).collect();
                acts.sort_by_key(|a| match *a {
                    "pull" => 0,
                    "push" => 1,
                    _ => 2,
                });
                (!a.contains("push"), format!("{k}:{n}:{}", acts.join(",")))
            })
            .collect();
        v.sort();
        v.into_iter().map(|(_, s)| s).collect()
    }
}

/// A token and when to stop using it.
#[derive(Debug, Clone)]
pub struct Token {
    pub value: String,
    pub scope: Scope,
    pub refresh_at: Instant,
}

/// The tokens of one registry, keyed by nothing but the union of scopes asked so far.
#[derive(Debug, Default)]
pub struct TokenCache {
    pub token: Option<Token>,
    /// Everything asked for so far; the next token request asks for all of it.
    pub wanted: Scope,
}

impl TokenCache {
    /// A usable token covering `need`, if one is cached.
    pub fn valid_for(&self, need: &Scope) -> Option<&Token> {
        self.token
            .as_ref()
            .filter(|t| Instant::now() < t.refresh_at && t.scope.covers(need))
    }
}

/// Ask the realm for a token covering `scope`.
pub fn fetch_token(
    agent: &ureq::Agent,
    realm: &str,
    service: Option<&str>,
    scope: &Scope,
    creds: Option<&Credentials>,
    limits: &TransferLimits,
) -> Result<Token, RegistryError> {
    let terr = |reason: String| RegistryError::Token {
        realm: realm.to_owned(),
        reason,
    };
    let started = Instant::now();
    let resp = match creds {
        Some(c) if c.username == "<token>" => {
            let mut form = vec![
                ("grant_type", "refresh_token".to_owned()),
                ("refresh_token", c.password.clone()),
                ("client_id", "imago".to_owned()),
                ("scope", scope.items().join(" ")),
            ];
            if let Some(s) = service {
                form.push(("service", s.to_owned()));
            }
            let body: Vec<String> = form
                .iter()
                .map(|(k, v)| format!("{k}={}", percent_encode(v)))
                .collect();
            agent
                .post(realm)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .send(body.join("&").as_bytes())
        }
        _ => {
            let mut url = realm.to_owned();
            let mut q: Vec<String> = Vec::new();
            if let Some(s) = service {
                q.push(format!("service={}", percent_encode(s)));
            }
            for item in scope.items() {
                q.push(format!("scope={}", percent_encode(&item)));
            }
            if let Some(c) = creds {
                q.push(format!("account={}", percent_encode(&c.username)));
            }
            if !q.is_empty() {
                url.push(if url.contains('?') { '&' } else { '?' });
                url.push_str(&q.join("&"));
            }
            let mut req = agent.get(&url);
            if let Some(c) = creds {
                req = req.header("Authorization", c.basic_header());
            }
            req.call()
        }
    };
    let stalled = |stall| RegistryError::Stalled {
        host: crate::client::authority_of(realm)
            .unwrap_or(realm)
            .to_owned(),
        doing: "getting a token".into(),
        stall,
    };
    let mut resp = resp.map_err(|e| match Stall::from_ureq(&e, limits, false) {
        Some(s) => stalled(s),
        None => terr(e.to_string()),
    })?;
    let status = resp.status().as_u16();
    let body = read_bounded(&mut resp, 1 << 20, limits).map_err(|e| match e {
        BodyError::Stalled(s) => stalled(s),
        BodyError::TooLarge { limit } => terr(format!("the answer is larger than {limit} bytes")),
        BodyError::Io(e) => terr(e.to_string()),
    })?;
    if status == 401 || status == 403 {
        return Err(terr(format!(
            "{status}: the credentials were refused{}",
            crate::error::ApiErrors::from_body(&body)
        )));
    }
    if status != 200 {
        return Err(terr(format!(
            "answered {status}: {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(200)
                .collect::<String>()
        )));
    }
    parse_token_response(&body, scope, started)
        .ok_or_else(|| terr("the answer holds no token".into()))
}

/// Parse `{"token"|"access_token", "expires_in"}`; refresh 30 s (or a quarter of the
/// lifetime, if shorter) before the expiry; lifetimes under 60 s count as 60 s, over a
/// day as a day (a registry's `expires_in` could overflow the clock).
pub fn parse_token_response(body: &[u8], scope: &Scope, started: Instant) -> Option<Token> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let value = v
        .get("token")
        .or_else(|| v.get("access_token"))
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())?;
    let lifetime = v
        .get("expires_in")
        .and_then(|e| e.as_u64())
        .unwrap_or(60)
        .clamp(60, 24 * 3600);
    let margin = (lifetime / 4).min(30);
    Some(Token {
        value: value.to_owned(),
        scope: scope.clone(),
        refresh_at: started + Duration::from_secs(lifetime - margin),
    })
}

/// Percent-encode a query or form value (RFC 3986 unreserved characters kept).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_and_push_first_order() {
        let mut s = Scope::repository("src/a", &["pull"]);
        s.union(&Scope::repository("me/b", &["push", "pull"]));
        assert_eq!(
            s.items(),
            vec!["repository:me/b:pull,push", "repository:src/a:pull"]
        );
        assert!(s.covers(&Scope::repository("me/b", &["pull"])));
        assert!(!s.covers(&Scope::repository("src/a", &["push"])));
        let parsed = Scope::parse("repository:127.0.0.1:5000/x:pull,push repository:y:pull");
        assert!(parsed.covers(&Scope::repository("127.0.0.1:5000/x", &["push"])));
        assert_eq!(parsed.items().len(), 2);
    }

    #[test]
    fn token_lifetime_rules() {
        let now = Instant::now();
        let t = parse_token_response(
            br#"{"access_token":"abc","expires_in":10}"#,
            &Scope::default(),
            now,
        )
        .unwrap();
        assert_eq!(t.value, "abc");
        assert_eq!(t.refresh_at, now + Duration::from_secs(45));
        let t = parse_token_response(br#"{"token":"x","expires_in":300}"#, &Scope::default(), now)
            .unwrap();
        assert_eq!(t.refresh_at, now + Duration::from_secs(270));
        assert!(parse_token_response(br#"{"token":""}"#, &Scope::default(), now).is_none());
        // A lifetime past the clock's end counts as a day, never a panic.
        let huge = br#"{"token":"x","expires_in":15532559262904483838}"#;
        let t = parse_token_response(huge, &Scope::default(), now).unwrap();
        assert_eq!(t.refresh_at, now + Duration::from_secs(24 * 3600 - 30));
    }

    #[test]
    fn cache_refreshes_before_expiry_and_widens_scopes() {
        let mut c = TokenCache::default();
        let pull = Scope::repository("a", &["pull"]);
        let push = Scope::repository("a", &["pull", "push"]);
        assert!(c.valid_for(&pull).is_none());
        c.token = Some(Token {
            value: "t".into(),
            scope: pull.clone(),
            refresh_at: Instant::now() + Duration::from_secs(60),
        });
        assert!(c.valid_for(&pull).is_some());
        assert!(
            c.valid_for(&push).is_none(),
            "a wider scope needs a new token"
        );
        c.token = Some(Token {
            value: "t".into(),
            scope: push.clone(),
            refresh_at: Instant::now() - Duration::from_secs(1),
        });
        assert!(
            c.valid_for(&pull).is_none(),
            "past its refresh time the token is not used"
        );
    }

    #[test]
    fn percent_encoding() {
        assert_eq!(
            percent_encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
