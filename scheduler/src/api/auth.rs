//! Admin API authentication: bearer tokens from the config, each scoped to one project
//! or to the whole cluster.

use std::collections::HashMap;

use tonic::{Request, Status};

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
    tokens: HashMap<String, Caller>,
}

impl Auth {
    pub fn new(tokens: impl IntoIterator<Item = (String, Caller)>) -> Self {
        Auth { tokens: tokens.into_iter().collect() }
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
        self.tokens.get(token.trim()).cloned().ok_or_else(|| Status::unauthenticated("unknown token"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        Auth::new([
            ("t-admin".to_string(), Caller { name: "admin".into(), scope: Scope::Cluster }),
            ("t-a".to_string(), Caller { name: "a".into(), scope: Scope::Project("a".into()) }),
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
}
