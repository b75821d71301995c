//! Credential checks, in constant time: Continuum's Basic auth on the callback, the operator's
//! bearer token on admin routes.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Compares two secrets without leaking where they differ, nor (by hashing first) their lengths.
pub fn secrets_equal(given: &str, expected: &str) -> bool {
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    bool::from(a.ct_eq(&b)) & !expected.is_empty()
}

/// `Authorization: Basic base64(user:password)` against the configured pair.
pub fn basic_auth_ok(header: Option<&str>, user: &str, password: &str) -> bool {
    let Some(h) = header.map(str::trim) else { return false };
    let Some((scheme, encoded)) = h.split_once(' ') else { return false };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else { return false };
    let Ok(decoded) = String::from_utf8(decoded) else { return false };
    let Some((u, p)) = decoded.split_once(':') else { return false };
    // Both compared, always, so the timing does not tell which one was wrong.
    secrets_equal(u, user) & secrets_equal(p, password)
}

/// `Authorization: Bearer <token>`.
pub fn bearer_ok(header: Option<&str>, token: &str) -> bool {
    let Some((scheme, given)) = header.map(str::trim).and_then(|h| h.split_once(' ')) else { return false };
    scheme.eq_ignore_ascii_case("bearer") && secrets_equal(given.trim(), token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(s: &str) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(s))
    }

    #[test]
    fn basic_auth() {
        assert!(basic_auth_ok(Some(&basic("acme:pw:with:colons")), "acme", "pw:with:colons"));
        assert!(basic_auth_ok(Some(&basic("acme:s3cret").replace("Basic", "basic")), "acme", "s3cret"));
        assert!(!basic_auth_ok(Some(&basic("acme:wrong")), "acme", "s3cret"));
        assert!(!basic_auth_ok(Some(&basic("other:s3cret")), "acme", "s3cret"));
        assert!(!basic_auth_ok(None, "acme", "s3cret"));
        assert!(!basic_auth_ok(Some("Basic !!!"), "acme", "s3cret"));
        assert!(!basic_auth_ok(Some("Bearer abc"), "acme", "s3cret"));
        assert!(!basic_auth_ok(Some(&basic("acme:")), "acme", ""), "an empty configured password never matches");
    }

    #[test]
    fn bearer() {
        assert!(bearer_ok(Some("Bearer tok"), "tok"));
        assert!(!bearer_ok(Some("Bearer tok2"), "tok"));
        assert!(!bearer_ok(Some("tok"), "tok"));
        assert!(!bearer_ok(None, "tok"));
    }
}
