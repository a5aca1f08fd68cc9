//! Admin API authentication: bearer tokens from the config, each scoped to one project
//! or to the whole cluster.
//!
//! A presented token is compared with every configured one in constant time, and the
//! loop never stops early: how long authentication takes says nothing about which
//! token, or which prefix of one, was close. Tokens are held as [`Secret`], so `Debug`
//! of the table prints `[redacted]`.

use subtle::{ConditionallySelectable as _, ConstantTimeEq as _};
use tonic::{Request, Status};

use crate::secret::Secret;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every project, catalogs and nodes.
    Cluster,
    Project(String),
}

#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub scope: Scope,
}

impl Caller {
    /// Project resources: the caller's own project, or any with a cluster token. A
    /// project token asking for another project is denied without saying whether that
    /// project has anything.
    pub fn authorize_project(&self, project: &str) -> Result<(), Status> {
        gantry_domain::validate::name("project", project).map_err(|e| Status::invalid_argument(e.to_string()))?;
        match &self.scope {
            Scope::Cluster => Ok(()),
            Scope::Project(p) if p == project => Ok(()),
            Scope::Project(p) => Err(Status::permission_denied(format!(
                "token '{}' is scoped to project '{p}', not '{project}'",
                self.name
            ))),
        }
    }

    /// Whether resources of `project` may be shown to this caller (used where a view
    /// mixes projects, such as the workloads on a node).
    pub fn sees_project(&self, project: &str) -> bool {
        match &self.scope {
            Scope::Cluster => true,
            Scope::Project(p) => p == project,
        }
    }

    pub fn authorize_cluster(&self) -> Result<(), Status> {
        match &self.scope {
            Scope::Cluster => Ok(()),
            Scope::Project(p) => Err(Status::permission_denied(format!(
                "token '{}' is scoped to project '{p}'; this needs a cluster-wide token",
                self.name
            ))),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Auth {
    tokens: Vec<(Secret, Caller)>,
}

impl Auth {
    pub fn new(tokens: impl IntoIterator<Item = (Secret, Caller)>) -> Self {
        Auth { tokens: tokens.into_iter().collect() }
    }

    /// The caller whose token is `presented`. Every configured token is compared, in
    /// constant time, and the match is chosen with a constant-time select rather than a
    /// branch. (Two entries with the same token: the last one wins.)
    fn find(&self, presented: &[u8]) -> Option<&Caller> {
        // usize has no ConditionallySelectable; a token table is far below u64::MAX.
        const NONE: u64 = u64::MAX;
        let mut found = NONE;
        for (i, (secret, _)) in self.tokens.iter().enumerate() {
            found = u64::conditional_select(&found, &(i as u64), secret.ct_eq(presented));
        }
        if bool::from(found.ct_eq(&NONE)) {
            return None;
        }
        let i = usize::try_from(found).ok()?;
        self.tokens.get(i).map(|(_, caller)| caller)
    }

    /// SHA-256 (hex) of each project-scoped token, by project (the gateways let a
    /// project's token call that project's endpoints). With several tokens for one
    /// project the last one wins.
    pub fn project_token_sha256(&self) -> std::collections::BTreeMap<String, String> {
        self.tokens
            .iter()
            .filter_map(|(secret, caller)| match &caller.scope {
                Scope::Project(p) => Some((p.clone(), gantry_gateway::auth::sha256_hex(secret.expose()))),
                Scope::Cluster => None,
            })
            .collect()
    }

    /// Reads `authorization: Bearer <token>`; missing or unknown → Unauthenticated.
    pub fn authenticate<T>(&self, req: &Request<T>) -> Result<Caller, Status> {
        let header = req
            .metadata()
            .get("authorization")
            .ok_or_else(|| Status::unauthenticated("missing authorization: Bearer <token>"))?;
        let value = header.to_str().map_err(|_| Status::unauthenticated("malformed authorization header"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| Status::unauthenticated("authorization must be 'Bearer <token>'"))?;
        self.find(token.trim().as_bytes()).cloned().ok_or_else(|| Status::unauthenticated("unknown token"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        Auth::new([
            ("t-admin".into(), Caller { name: "admin".into(), scope: Scope::Cluster }),
            ("t-a".into(), Caller { name: "a".into(), scope: Scope::Project("a".into()) }),
            ("t-b".into(), Caller { name: "b".into(), scope: Scope::Project("b".into()) }),
        ])
    }

    fn req(token: Option<&str>) -> Request<()> {
        let mut r = Request::new(());
        if let Some(t) = token {
            r.metadata_mut().insert("authorization", t.parse().unwrap());
        }
        r
    }

    #[test]
    fn tokens_and_scopes() {
        let a = auth();
        assert_eq!(a.authenticate(&req(None)).unwrap_err().code(), tonic::Code::Unauthenticated);
        assert_eq!(a.authenticate(&req(Some("Bearer nope"))).unwrap_err().code(), tonic::Code::Unauthenticated);
        assert_eq!(a.authenticate(&req(Some("t-a"))).unwrap_err().code(), tonic::Code::Unauthenticated);
        let caller = a.authenticate(&req(Some("Bearer t-a"))).unwrap();
        assert!(caller.authorize_project("a").is_ok());
        assert_eq!(caller.authorize_project("b").unwrap_err().code(), tonic::Code::PermissionDenied);
        assert_eq!(caller.authorize_cluster().unwrap_err().code(), tonic::Code::PermissionDenied);
        let admin = a.authenticate(&req(Some("Bearer t-admin"))).unwrap();
        assert!(admin.authorize_project("b").is_ok() && admin.authorize_cluster().is_ok());
    }

    #[test]
    fn a_wrong_token_of_the_same_length_fails() {
        let a = auth();
        for wrong in ["T-a", "t-A", "t_a", "t-c"] {
            let err = a.authenticate(&req(Some(&format!("Bearer {wrong}")))).unwrap_err();
            assert_eq!(err.code(), tonic::Code::Unauthenticated, "{wrong}");
        }
        // Every token of the table is found, not only the first or the last.
        for (token, name) in [("t-admin", "admin"), ("t-a", "a"), ("t-b", "b")] {
            assert_eq!(a.authenticate(&req(Some(&format!("Bearer {token}")))).unwrap().name, name);
        }
        assert!(Auth::default().authenticate(&req(Some("Bearer t-a"))).is_err());
    }

    #[test]
    fn debug_does_not_show_tokens() {
        let shown = format!("{:?}", auth());
        assert!(shown.contains("[redacted]"), "{shown}");
        assert!(!shown.contains("t-admin") && !shown.contains("t-a\""), "{shown}");
    }
}
