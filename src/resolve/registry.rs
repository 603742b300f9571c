//! The two registry grammars: registry strings (`[user[:pass]@]host[:port][/path][:tag]`, from
//! `--registry`, `KSAIL_REGISTRY` and `spec.cluster.localRegistry.registry`) and OCI references
//! (`oci://host[:port]/path[:tag]`, the push argument). See resolution.md "Registry string" and
//! "OCI references".
//!
//! Parsing is pure. Errors never carry the user-info part of the input, so no message built from
//! them can leak a password; the caller prefixes the string's source (flag, env var or
//! `ksail.yaml:line:col`).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::Failure;

/// Port a local registry gets when its string names none.
pub const LOCAL_REGISTRY_DEFAULT_PORT: u16 = 5050;

const OCI_SCHEME: &str = "oci://";
const MAX_TAG_LEN: usize = 128;
const REDACTED: &str = "<redacted>";

/// A parsed registry string. `password` is kept raw (unexpanded); credential resolution expands
/// it. `Display` and `Debug` redact it.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistrySpec {
    pub user: Option<String>,
    pub password: Option<String>,
    /// Lower-case host name, or an IPv6 literal in brackets in canonical compressed form.
    pub host: String,
    /// The explicit port, or 5050 for a local registry that names none.
    pub port: Option<u16>,
    /// Repository path, already checked against the OCI repository grammar.
    pub path: Option<String>,
    pub tag: Option<String>,
    /// The host is loopback (`localhost`, `*.localhost`, `127.0.0.0/8`, `[::1]`).
    pub local: bool,
}

impl RegistrySpec {
    /// `host[:port]`, the form used in URLs and for comparing registries.
    pub fn host_port(&self) -> String {
        join_host_port(&self.host, self.port)
    }
}

impl fmt::Display for RegistrySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(user) = &self.user {
            f.write_str(user)?;
            if self.password.is_some() {
                write!(f, ":{REDACTED}")?;
            }
            f.write_str("@")?;
        }
        f.write_str(&self.host_port())?;
        if let Some(path) = &self.path {
            write!(f, "/{path}")?;
        }
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        Ok(())
    }
}

// Hand-written so that `{:?}` in a log or a test failure cannot print the password.
impl fmt::Debug for RegistrySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistrySpec")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| REDACTED))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("path", &self.path)
            .field("tag", &self.tag)
            .field("local", &self.local)
            .finish()
    }
}

/// A parsed `oci://` reference. It never carries credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciRef {
    pub host: String,
    pub port: Option<u16>,
    pub path: String,
    pub tag: Option<String>,
    pub local: bool,
}

impl OciRef {
    pub fn host_port(&self) -> String {
        join_host_port(&self.host, self.port)
    }
}

impl fmt::Display for OciRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{OCI_SCHEME}{}/{}", self.host_port(), self.path)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        Ok(())
    }
}

/// Why a registry string, OCI reference or tag was rejected. No variant holds user info.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryParseError {
    #[error(
        "a registry string has no scheme; remove \"{scheme}://\" (or pass an OCI reference as the push argument)"
    )]
    HasScheme { scheme: String },
    #[error(
        "a digest reference (…@sha256:…) names content, not a place to push to; write the tag to push: oci://host[:port]/repository[:tag]"
    )]
    DigestReference,
    #[error("password without a user in the registry string; write it as user:password@host")]
    PasswordWithoutUser,
    #[error("missing registry host; write it as host[:port][/repository][:tag]")]
    MissingHost,
    #[error(
        "invalid host \"{host}\": a host has only letters, digits, '.', '-' and '_'; fix the host name"
    )]
    InvalidHost { host: String },
    #[error("invalid IPv6 address \"{literal}\"; write it in brackets, for example [::1]:5050")]
    InvalidIpv6 { literal: String },
    #[error(
        "IPv6 addresses must be in brackets; write it as [address]:port, for example [::1]:5050"
    )]
    UnbracketedIpv6,
    #[error(
        "invalid port \"{port}\": a port is a number from 1 to 65535; fix the port or leave it out"
    )]
    InvalidPort { port: String },
    #[error(
        "invalid repository \"{path}\": each path component is lower-case letters and digits, joined by '.', '_', '__' or '-'; rename the repository"
    )]
    InvalidRepository { path: String },
    #[error("empty tag after ':'; remove the ':' or write a tag")]
    EmptyTag,
    #[error(
        "invalid tag \"{tag}\": a tag starts with a letter, digit or '_' and has at most 128 letters, digits, '.', '_' or '-'; choose another tag"
    )]
    InvalidTag { tag: String },
    #[error("OCI reference must start with oci://; write it as oci://host[:port]/repository[:tag]")]
    NotOciReference,
    #[error("credentials are not accepted in an OCI reference; use --registry or docker login")]
    CredentialsInReference,
    #[error(
        "missing repository in the OCI reference; write it as oci://host[:port]/repository[:tag]"
    )]
    MissingRepository,
}

impl RegistryParseError {
    /// A usage failure (exit 2) that names where the bad string came from, for example
    /// `--registry`, `KSAIL_REGISTRY` or `ksail.yaml:12:15`.
    pub fn into_failure(self, source: &str) -> Failure {
        Failure::usage(format!("{source}: {self}"))
    }
}

/// Parse a registry string (resolution.md "Registry string", steps 1–8). `Ok(None)` means the
/// string is empty after trimming, which counts as unset.
pub fn parse_registry(input: &str) -> Result<Option<RegistrySpec>, RegistryParseError> {
    let text = input.trim_matches(|c: char| c.is_ascii_whitespace());
    if text.is_empty() {
        return Ok(None);
    }
    if let Some(index) = text.find("://") {
        return Err(RegistryParseError::HasScheme {
            scheme: scheme_for_message(&text[..index]),
        });
    }
    let (user, password, rest) = match text.rsplit_once('@') {
        None => (None, None, text),
        Some((userinfo, rest)) => {
            // `repo@sha256:…` splits into a userinfo with a `/` (or a bare `sha256:` rest).
            if userinfo.contains('/') || rest.starts_with("sha256:") {
                return Err(RegistryParseError::DigestReference);
            }
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            if user.is_empty() && !password.is_empty() {
                return Err(RegistryParseError::PasswordWithoutUser);
            }
            (non_empty(user), non_empty(password), rest)
        }
    };
    let location = parse_location(rest)?;
    Ok(Some(RegistrySpec {
        user,
        password,
        host: location.host,
        port: location.port,
        path: location.path,
        tag: location.tag,
        local: location.local,
    }))
}

/// Parse the push argument `oci://host[:port]/path[:tag]`.
pub fn parse_oci_ref(input: &str) -> Result<OciRef, RegistryParseError> {
    let text = input.trim_matches(|c: char| c.is_ascii_whitespace());
    let rest = text
        .strip_prefix(OCI_SCHEME)
        .ok_or(RegistryParseError::NotOciReference)?;
    if let Some((before, after)) = rest.rsplit_once('@') {
        // `host/repo@sha256:…` is a digest reference, `user:pass@host/repo` carries credentials.
        return Err(if before.contains('/') || after.starts_with("sha256:") {
            RegistryParseError::DigestReference
        } else {
            RegistryParseError::CredentialsInReference
        });
    }
    let location = parse_location(rest)?;
    let path = location.path.ok_or(RegistryParseError::MissingRepository)?;
    Ok(OciRef {
        host: location.host,
        port: location.port,
        path,
        tag: location.tag,
        local: location.local,
    })
}

/// Check a tag against `^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`.
pub fn validate_tag(tag: &str) -> Result<(), RegistryParseError> {
    let mut bytes = tag.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if first_ok && rest_ok && tag.len() <= MAX_TAG_LEN {
        Ok(())
    } else {
        Err(RegistryParseError::InvalidTag {
            tag: tag.to_string(),
        })
    }
}

/// Whether `host` (as stored in a parsed spec: lower-case, IPv6 in brackets) is loopback.
pub fn is_local_host(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host == "[::1]"
        || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// Replace the password of a registry string that may not parse, for logs and messages that
/// must quote the raw input. Errs on the side of hiding: everything between the first `:` of
/// the user info and the last `@` goes.
pub fn redact_registry_string(input: &str) -> String {
    replace_registry_password(input, REDACTED).unwrap_or_else(|| input.to_string())
}

/// The password of a registry string as written ([`redact_registry_string`]'s rule), or `None`
/// when it has none.
pub fn registry_password(input: &str) -> Option<&str> {
    split_password(input).map(|(_, password, _)| password)
}

/// `input` with its password (as [`registry_password`] finds it) replaced by `password`, and
/// everything else exactly as written; `None` when it has none.
pub fn replace_registry_password(input: &str, password: &str) -> Option<String> {
    split_password(input).map(|(before, _, after)| format!("{before}{password}{after}"))
}

/// `(up to the user's ':', password, from the last '@')`: the same split [`parse_registry`]
/// makes, past a `scheme://` that a string which does not parse may have.
fn split_password(input: &str) -> Option<(&str, &str, &str)> {
    let start = input.find("://").map_or(0, |index| index + 3);
    let at = input.rfind('@').filter(|at| *at >= start)?;
    let colon = start + input[start..at].find(':')?;
    let password = &input[colon + 1..at];
    (!password.is_empty()).then(|| (&input[..=colon], password, &input[at..]))
}

/// `host[:port][/path][:tag]` after credentials (steps 4–8).
struct Location {
    host: String,
    port: Option<u16>,
    path: Option<String>,
    tag: Option<String>,
    local: bool,
}

fn parse_location(rest: &str) -> Result<Location, RegistryParseError> {
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (hostport, pathtag) = match rest.split_once('/') {
        Some((hostport, pathtag)) => (hostport, Some(pathtag)),
        None => (rest, None),
    };
    if hostport.is_empty() {
        return Err(RegistryParseError::MissingHost);
    }
    let (host, port_text) = split_host_port(hostport)?;
    let port = port_text.map(parse_port).transpose()?;
    let (path, tag) = match pathtag {
        Some(pathtag) => {
            let (path, tag) = split_path_tag(pathtag)?;
            (Some(path), tag)
        }
        None => (None, None),
    };
    let local = is_local_host(&host);
    let port = port.or(local.then_some(LOCAL_REGISTRY_DEFAULT_PORT));
    Ok(Location {
        host,
        port,
        path,
        tag,
        local,
    })
}

/// Split `host[:port]` or `[v6][:port]` (step 5) into a normalised host and the raw port text.
fn split_host_port(hostport: &str) -> Result<(String, Option<&str>), RegistryParseError> {
    if let Some(bracketed) = hostport.strip_prefix('[') {
        let invalid = || RegistryParseError::InvalidIpv6 {
            literal: hostport.to_string(),
        };
        let (literal, after) = bracketed.split_once(']').ok_or_else(invalid)?;
        let address: Ipv6Addr = literal.parse().map_err(|_| invalid())?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or_else(invalid)?),
        };
        return Ok((format!("[{address}]"), port));
    }
    if hostport.matches(':').count() > 1 {
        return Err(RegistryParseError::UnbracketedIpv6);
    }
    let (host, port) = match hostport.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (hostport, None),
    };
    if host.is_empty() {
        return Err(RegistryParseError::MissingHost);
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        return Err(RegistryParseError::InvalidHost {
            host: host.to_string(),
        });
    }
    Ok((host.to_ascii_lowercase(), port))
}

fn parse_port(text: &str) -> Result<u16, RegistryParseError> {
    let invalid = || RegistryParseError::InvalidPort {
        port: text.to_string(),
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    match text.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(invalid()),
    }
}

/// Step 7: the tag follows the last `:`; the path is checked, not rewritten.
fn split_path_tag(pathtag: &str) -> Result<(String, Option<String>), RegistryParseError> {
    let (path, tag) = match pathtag.rsplit_once(':') {
        Some((path, tag)) => (path, Some(tag)),
        None => (pathtag, None),
    };
    if !path.split('/').all(is_repository_component) {
        return Err(RegistryParseError::InvalidRepository {
            path: path.to_string(),
        });
    }
    let tag = match tag {
        Some("") => return Err(RegistryParseError::EmptyTag),
        Some(tag) => {
            validate_tag(tag)?;
            Some(tag.to_string())
        }
        None => None,
    };
    Ok((path.to_string(), tag))
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, the OCI distribution path-component grammar.
fn is_repository_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let is_alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    loop {
        let run_start = i;
        while i < bytes.len() && is_alnum(bytes[i]) {
            i += 1;
        }
        if i == run_start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if bytes.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// The scheme to quote in the "no scheme" message. Anything that does not look like a URL
/// scheme might be part of user info, so it is not echoed.
fn scheme_for_message(candidate: &str) -> String {
    let looks_like_scheme = candidate
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && candidate
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'));
    if looks_like_scheme {
        candidate.to_string()
    } else {
        "oci".to_string()
    }
}

fn join_host_port(host: &str, port: Option<u16>) -> String {
    match port {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(input: &str) -> RegistrySpec {
        parse_registry(input)
            .unwrap_or_else(|e| panic!("{input}: {e}"))
            .unwrap_or_else(|| panic!("{input}: unset"))
    }

    #[test]
    fn blank_strings_are_unset() {
        assert_eq!(parse_registry(""), Ok(None));
        assert_eq!(parse_registry(" \t\n"), Ok(None));
    }

    #[test]
    fn full_registry_string_splits_into_every_part() {
        let parsed = spec("  CI:${TOKEN}@GHCR.io:8443/acme/app:v1.2 ");
        assert_eq!(parsed.user.as_deref(), Some("CI"));
        assert_eq!(parsed.password.as_deref(), Some("${TOKEN}"));
        assert_eq!(parsed.host, "ghcr.io");
        assert_eq!(parsed.port, Some(8443));
        assert_eq!(parsed.path.as_deref(), Some("acme/app"));
        assert_eq!(parsed.tag.as_deref(), Some("v1.2"));
        assert!(!parsed.local);
        assert_eq!(parsed.host_port(), "ghcr.io:8443");
    }

    #[test]
    fn credentials_split_at_the_last_at_and_first_colon() {
        let parsed = spec("me:p@ss:word@ghcr.io");
        assert_eq!(parsed.user.as_deref(), Some("me"));
        assert_eq!(parsed.password.as_deref(), Some("p@ss:word"));
        let user_only = spec("me@ghcr.io");
        assert_eq!(user_only.user.as_deref(), Some("me"));
        assert_eq!(user_only.password, None);
    }

    #[test]
    fn display_and_debug_redact_the_password() {
        let parsed = spec("ci:s3cr3t@ghcr.io/acme/app:v1");
        assert_eq!(parsed.to_string(), "ci:<redacted>@ghcr.io/acme/app:v1");
        assert!(!format!("{parsed:?}").contains("s3cr3t"));
        assert_eq!(spec("ci@ghcr.io").to_string(), "ci@ghcr.io");
    }

    #[test]
    fn local_hosts_get_the_default_port() {
        for (input, host_port) in [
            ("localhost", "localhost:5050"),
            ("LOCALHOST", "localhost:5050"),
            ("registry.localhost", "registry.localhost:5050"),
            ("127.0.0.1", "127.0.0.1:5050"),
            ("127.9.8.7", "127.9.8.7:5050"),
            ("[::1]", "[::1]:5050"),
            ("[0:0:0:0:0:0:0:1]:6000", "[::1]:6000"),
            ("localhost:6000", "localhost:6000"),
        ] {
            let parsed = spec(input);
            assert!(parsed.local, "{input}");
            assert_eq!(parsed.host_port(), host_port, "{input}");
        }
        for (input, host_port) in [
            ("ghcr.io", "ghcr.io"),
            ("128.0.0.1", "128.0.0.1"),
            ("[2001:DB8:0:0:0:0:0:1]:443", "[2001:db8::1]:443"),
            ("notlocalhost", "notlocalhost"),
        ] {
            let parsed = spec(input);
            assert!(!parsed.local, "{input}");
            assert_eq!(parsed.host_port(), host_port, "{input}");
        }
    }

    #[test]
    fn one_trailing_slash_is_removed() {
        assert_eq!(spec("localhost:5050/").path, None);
        assert_eq!(spec("ghcr.io/acme/app/").path.as_deref(), Some("acme/app"));
        assert!(matches!(
            parse_registry("ghcr.io//"),
            Err(RegistryParseError::InvalidRepository { .. })
        ));
    }

    #[test]
    fn repository_grammar_allows_the_oci_separators() {
        for ok in ["a", "a.b", "a_b", "a__b", "a---b", "a1/b2/c3", "0-x.y_z"] {
            assert!(spec(&format!("ghcr.io/{ok}")).path.is_some(), "{ok}");
        }
        for bad in ["a___b", "a..b", "-a", "a-", "a.", "_a", "A", "a b"] {
            assert_eq!(
                parse_registry(&format!("ghcr.io/{bad}")),
                Err(RegistryParseError::InvalidRepository {
                    path: bad.to_string()
                }),
                "{bad}"
            );
        }
    }

    #[test]
    fn other_rejections() {
        let cases: &[(&str, RegistryParseError)] = &[
            ("/acme/app", RegistryParseError::MissingHost),
            (":5050", RegistryParseError::MissingHost),
            (
                "local host",
                RegistryParseError::InvalidHost {
                    host: "local host".into(),
                },
            ),
            (
                "[::1",
                RegistryParseError::InvalidIpv6 {
                    literal: "[::1".into(),
                },
            ),
            (
                "[::1]5050",
                RegistryParseError::InvalidIpv6 {
                    literal: "[::1]5050".into(),
                },
            ),
            (
                "localhost:",
                RegistryParseError::InvalidPort { port: "".into() },
            ),
            (
                "localhost:+80",
                RegistryParseError::InvalidPort { port: "+80".into() },
            ),
            ("ghcr.io/app:", RegistryParseError::EmptyTag),
            ("ghcr.io@sha256:abc", RegistryParseError::DigestReference),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_registry(input).as_ref(), Err(expected), "{input}");
        }
    }

    #[test]
    fn scheme_message_quotes_only_a_real_scheme() {
        let message = parse_registry("oci://localhost:5050")
            .unwrap_err()
            .to_string();
        assert!(message.contains("remove \"oci://\""), "{message}");
        let message = parse_registry("u:pw@x://y").unwrap_err().to_string();
        assert!(!message.contains("pw"), "{message}");
    }

    #[test]
    fn oci_refs_parse_with_and_without_tag() {
        let parsed = parse_oci_ref("oci://LocalHost/team/app").expect("valid");
        assert_eq!(parsed.host_port(), "localhost:5050");
        assert_eq!(parsed.path, "team/app");
        assert_eq!(parsed.tag, None);
        assert!(parsed.local);
        let parsed = parse_oci_ref("oci://ghcr.io:443/acme/app:v1").expect("valid");
        assert_eq!(parsed.to_string(), "oci://ghcr.io:443/acme/app:v1");
        assert!(!parsed.local);
        assert_eq!(
            parse_oci_ref("oci://localhost:5050/"),
            Err(RegistryParseError::MissingRepository)
        );
    }

    #[test]
    fn tag_validation_boundaries() {
        assert!(validate_tag("_").is_ok());
        assert!(validate_tag("v1.2.3-rc_1").is_ok());
        assert!(validate_tag(&"a".repeat(128)).is_ok());
        assert!(validate_tag(&"a".repeat(129)).is_err());
        assert!(validate_tag("").is_err());
        assert!(validate_tag(".v1").is_err());
        assert!(validate_tag("v1+build").is_err());
    }

    #[test]
    fn redaction_of_raw_strings() {
        assert_eq!(
            redact_registry_string("ci:s3cr3t@ghcr.io/acme/app"),
            "ci:<redacted>@ghcr.io/acme/app"
        );
        assert_eq!(
            redact_registry_string("http://ci:s3cr3t@ghcr.io"),
            "http://ci:<redacted>@ghcr.io"
        );
        assert_eq!(redact_registry_string("ghcr.io/acme"), "ghcr.io/acme");
        assert_eq!(redact_registry_string("ci@ghcr.io"), "ci@ghcr.io");
        assert_eq!(redact_registry_string("ci:@ghcr.io"), "ci:@ghcr.io");
        assert_eq!(redact_registry_string("a@b://c"), "a@b://c");
    }

    #[test]
    fn the_password_is_found_and_replaced_where_parsing_finds_it() {
        for (input, password, replaced) in [
            (
                "ci:s3cr3t@ghcr.io/acme",
                Some("s3cr3t"),
                Some("ci:X@ghcr.io/acme"),
            ),
            // The first ':' of the user info and the last '@' bound it, as for parse_registry.
            ("ci:a:b@c@ghcr.io", Some("a:b@c"), Some("ci:X@ghcr.io")),
            (
                "ci:${TOKEN}@localhost:5050/x:v1",
                Some("${TOKEN}"),
                Some("ci:X@localhost:5050/x:v1"),
            ),
            ("ci@ghcr.io", None, None),
            ("ci:@ghcr.io", None, None),
            ("localhost:5050", None, None),
        ] {
            assert_eq!(registry_password(input), password, "{input}");
            assert_eq!(
                replace_registry_password(input, "X").as_deref(),
                replaced,
                "{input}"
            );
            if let (Some(password), Ok(Some(spec))) = (password, parse_registry(input)) {
                assert_eq!(spec.password.as_deref(), Some(password), "{input}");
            }
        }
    }
}
