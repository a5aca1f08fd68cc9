//! Who may call a stage: `Authorization: Bearer <token>`, where the token is one of the
//! endpoint's API keys or its project's token. Only SHA-256 hashes are known to the
//! gateway; tokens themselves are never stored or logged.

use sha2::{Digest, Sha256};

use crate::routes::{RouteTable, Stage};

/// The outcome of checking a caller's credentials against a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthDecision {
    Allowed,
    /// No token, a malformed header, or a token nobody knows: 401.
    Unauthenticated,
    /// A known token of another endpoint or another project: 403.
    Forbidden,
}

/// SHA-256 of a token, lowercase hex (the form the route table carries).
pub fn sha256_hex(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The token of an `Authorization` header value, if it is `Bearer <token>`.
pub fn bearer_token(header: Option<&[u8]>) -> Option<&str> {
    let value = std::str::from_utf8(header?).ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Decides whether the bearer of `authorization` may call `stage`.
pub fn authorize(table: &RouteTable, stage: &Stage, authorization: Option<&[u8]>) -> AuthDecision {
    let Some(token) = bearer_token(authorization) else {
        return AuthDecision::Unauthenticated;
    };
    let hash = sha256_hex(token);
    if let Some(owner) = table.keys.get(&hash) {
        return if owner.endpoint_id == stage.endpoint_id { AuthDecision::Allowed } else { AuthDecision::Forbidden };
    }
    if let Some(project) = table.project_tokens.get(&hash) {
        return if *project == stage.project { AuthDecision::Allowed } else { AuthDecision::Forbidden };
    }
    AuthDecision::Unauthenticated
}

#[cfg(test)]
mod tests {
    use gantry_proto::v1;

    use super::*;

    fn table() -> RouteTable {
        let stage = |project: &str, ep: &str, st: &str| v1::StageRoutes {
            project: project.into(),
            endpoint_id: ep.into(),
            stage_id: st.into(),
            is_default: true,
            ..Default::default()
        };
        let mut w = v1::RouteTable {
            version: 1,
            stages: vec![stage("p1", "ep1", "st1"), stage("p1", "ep2", "st2"), stage("p2", "ep3", "st3")],
            ..Default::default()
        };
        w.keys.push(v1::EndpointKeys {
            endpoint_id: "ep1".into(),
            project: "p1".into(),
            key_sha256: vec![sha256_hex("k1")],
        });
        w.keys.push(v1::EndpointKeys {
            endpoint_id: "ep3".into(),
            project: "p2".into(),
            key_sha256: vec![sha256_hex("k3")],
        });
        w.project_token_sha256.insert("p1".into(), sha256_hex("t1"));
        w.project_token_sha256.insert("p2".into(), sha256_hex("t2"));
        RouteTable::compile(&w, None).0
    }

    fn check(stage: &str, header: Option<&str>) -> AuthDecision {
        let t = table();
        let s = t.stage(stage).unwrap().clone();
        authorize(&t, &s, header.map(str::as_bytes))
    }

    #[test]
    fn sha256_matches_the_known_vector() {
        assert_eq!(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn an_endpoint_key_calls_its_endpoint_only() {
        assert_eq!(check("st1", Some("Bearer k1")), AuthDecision::Allowed);
        assert_eq!(check("st2", Some("Bearer k1")), AuthDecision::Forbidden);
        assert_eq!(check("st3", Some("Bearer k1")), AuthDecision::Forbidden);
    }

    #[test]
    fn a_project_token_calls_its_projects_endpoints_only() {
        assert_eq!(check("st1", Some("Bearer t1")), AuthDecision::Allowed);
        assert_eq!(check("st2", Some("bearer  t1 ")), AuthDecision::Allowed);
        assert_eq!(check("st3", Some("Bearer t1")), AuthDecision::Forbidden);
        assert_eq!(check("st3", Some("Bearer t2")), AuthDecision::Allowed);
    }

    #[test]
    fn missing_malformed_or_unknown_tokens_are_unauthenticated() {
        for header in
            [None, Some(""), Some("Bearer"), Some("Bearer "), Some("Basic k1"), Some("k1"), Some("Bearer nope")]
        {
            assert_eq!(check("st1", header), AuthDecision::Unauthenticated, "{header:?}");
        }
        let t = table();
        let s = t.stage("st1").unwrap().clone();
        assert_eq!(authorize(&t, &s, Some(&[0xff, 0xfe])), AuthDecision::Unauthenticated);
    }
}
