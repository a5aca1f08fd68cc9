//! Idempotency keys for create requests.
//!
//! One key per invocation, reused for every server [`crate::connect::Connector::call`]
//! tries: if the first replica applied the create but the answer was lost, the retry on
//! the next replica returns the first result instead of creating a duplicate.

/// A random UUID (version 4 layout): 122 random bits, so two invocations never collide.
pub fn new_request_id() -> String {
    let mut bits: u128 = rand::random();
    // Version 4 and the RFC 4122 variant, so the key reads as a UUID in logs.
    bits = (bits & !(0xF << 76)) | (0x4 << 76);
    bits = (bits & !(0x3 << 62)) | (0x2 << 62);
    let hex = format!("{bits:032x}");
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_like_a_v4_uuid_and_differs_each_time() {
        let id = new_request_id();
        assert_eq!(id.len(), 36);
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12]);
        assert!(parts[2].starts_with('4'));
        assert!(matches!(parts[3].chars().next(), Some('8' | '9' | 'a' | 'b')));
        assert_ne!(id, new_request_id());
    }
}
