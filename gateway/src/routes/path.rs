//! The rules a stage resource's path obeys, so that matching on segment boundaries is
//! unambiguous and a path can never escape into another URL space.

/// Longest resource path accepted.
pub const MAX_RESOURCE_PATH_LEN: usize = 256;

/// Why a resource path was refused (the message completes "resource path …").
pub fn resource_path_error(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') {
        return Some("must start with '/'");
    }
    if path.len() > MAX_RESOURCE_PATH_LEN {
        return Some("must be at most 256 characters");
    }
    if path == "/" {
        return Some("must have at least one segment");
    }
    if path.ends_with('/') {
        return Some("must not end with '/'");
    }
    for segment in path[1..].split('/') {
        if segment.is_empty() {
            return Some("must not contain empty segments ('//')");
        }
        if segment == "." || segment == ".." {
            return Some("must not contain '.' or '..' segments");
        }
        if !segment.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')) {
            return Some("may only contain letters, digits, '-', '_', '.', '~' and '/'");
        }
    }
    None
}

/// An id used as one URL segment (endpoint or stage id): non-empty, no '/' and no
/// characters that would need escaping.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// A caller's V2 path after the resource path: safe to forward as is when its segments
/// are non-empty and none is `.` or `..` (the pod must not see a path that resolves
/// outside `/v2/`).
pub fn is_forwardable_v2(rest: &str) -> bool {
    rest.starts_with("/v2/") && rest[1..].split('/').all(|s| !s.is_empty() && s != "." && s != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_paths() {
        assert_eq!(resource_path_error("/inference"), None);
        assert_eq!(resource_path_error("/a/b-c/d_e.f~g"), None);
    }

    #[test]
    fn refuses_bad_paths() {
        for bad in ["", "inference", "/", "/a/", "//a", "/a//b", "/a/../b", "/./a", "/a b", "/a?x", "/a#x", "/é"] {
            assert!(resource_path_error(bad).is_some(), "{bad:?} accepted");
        }
        assert!(resource_path_error(&format!("/{}", "a".repeat(256))).is_some());
    }

    #[test]
    fn ids_are_single_safe_segments() {
        assert!(is_valid_id("ep-123_x"));
        for bad in ["", "a/b", "a.b", "a%2f", &"a".repeat(129)] {
            assert!(!is_valid_id(bad), "{bad:?} accepted");
        }
    }

    #[test]
    fn v2_paths_must_stay_under_v2() {
        assert!(is_forwardable_v2("/v2/models/m/infer"));
        assert!(is_forwardable_v2("/v2/health/ready"));
        for bad in ["/v2", "/v2/", "/v2/../admin", "/v2//x", "/v1/models/m:predict", "/v2/./x"] {
            assert!(!is_forwardable_v2(bad), "{bad:?} accepted");
        }
    }
}
