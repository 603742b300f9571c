//! Revisions and digests as Flux and Argo CD report them, and their short forms.
//!
//! Flux writes an OCI artifact revision as `<tag>@sha256:<hex>` (or a bare `sha256:<hex>`), Git as
//! `<branch>@sha1:<hex>`; Argo CD writes the bare digest. Short forms keep 12 hex characters, the
//! same rule as every progress line (artifact.md "Digests in progress lines are shortened to 12
//! hex characters").

/// Hex characters kept by the short form.
const SHORT_HEX: usize = 12;

/// The `sha256:<hex>` digest inside a revision, lower-cased, or `None` when the revision does
/// not carry one (a Git revision, an empty string).
pub fn parse_revision_digest(revision: &str) -> Option<String> {
    let digest = revision.rsplit('@').next().unwrap_or(revision).trim();
    let (algorithm, hex) = digest.split_once(':')?;
    let valid = algorithm.eq_ignore_ascii_case("sha256")
        && !hex.is_empty()
        && hex.chars().all(|c| c.is_ascii_hexdigit());
    valid.then(|| format!("sha256:{}", hex.to_ascii_lowercase()))
}

/// Whether two revisions name the same digest. Either side may be a bare digest or a
/// `<tag>@sha256:<hex>` revision; text that carries no digest only matches itself exactly.
pub fn digests_equal(left: &str, right: &str) -> bool {
    match (parse_revision_digest(left), parse_revision_digest(right)) {
        (Some(left), Some(right)) => left == right,
        _ => left == right,
    }
}

/// `dev@sha256:1a2b3c4d5e6f` from a full revision; text without a long hex tail is unchanged.
pub fn short_revision(revision: &str) -> String {
    shorten(revision, "")
}

/// The short form with `…` where hex was cut, for error messages that quote a digest as
/// evidence (`serves dev@sha256:1a2b3c4d5e6f…`), so nobody mistakes it for the full value.
pub fn short_revision_marked(revision: &str) -> String {
    shorten(revision, "…")
}

fn shorten(revision: &str, marker: &str) -> String {
    let Some((head, hex)) = revision.rsplit_once(':') else {
        return revision.to_string();
    };
    if hex.len() <= SHORT_HEX || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return revision.to_string();
    }
    format!("{head}:{}{marker}", &hex[..SHORT_HEX])
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "1a2b3c4d5e6f00112233445566778899aabbccddeeff00112233445566778899";

    #[test]
    fn parses_the_digest_of_each_revision_form() {
        let expected = Some(format!("sha256:{HEX}"));
        assert_eq!(
            parse_revision_digest(&format!("dev@sha256:{HEX}")),
            expected
        );
        assert_eq!(parse_revision_digest(&format!("sha256:{HEX}")), expected);
        assert_eq!(
            parse_revision_digest(&format!("dev@sha256:{}", HEX.to_uppercase())),
            expected
        );
        assert_eq!(parse_revision_digest("main@sha1:0123456789ab"), None);
        assert_eq!(parse_revision_digest("dev"), None);
        assert_eq!(parse_revision_digest("sha256:"), None);
        assert_eq!(parse_revision_digest("sha256:xyz"), None);
    }

    #[test]
    fn compares_digests_across_forms() {
        assert!(digests_equal(
            &format!("dev@sha256:{HEX}"),
            &format!("sha256:{HEX}")
        ));
        assert!(!digests_equal(&format!("dev@sha256:{HEX}"), "sha256:00"));
        assert!(digests_equal("v1.0.0", "v1.0.0"));
        assert!(!digests_equal("v1.0.0", "v1.0.1"));
    }

    #[test]
    fn shortens_to_twelve_hex_characters() {
        assert_eq!(
            short_revision(&format!("dev@sha256:{HEX}")),
            "dev@sha256:1a2b3c4d5e6f"
        );
        assert_eq!(
            short_revision(&format!("sha256:{HEX}")),
            "sha256:1a2b3c4d5e6f"
        );
        assert_eq!(
            short_revision("main@sha1:0123456789abcdef0123456789abcdef01234567"),
            "main@sha1:0123456789ab"
        );
        assert_eq!(short_revision("sha256:1a2b"), "sha256:1a2b");
        assert_eq!(short_revision("v1.2.3"), "v1.2.3");
        assert_eq!(
            short_revision_marked(&format!("dev@sha256:{HEX}")),
            "dev@sha256:1a2b3c4d5e6f…"
        );
        assert_eq!(short_revision_marked("sha256:1a2b"), "sha256:1a2b");
    }
}
