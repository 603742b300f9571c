//! Status text shared by the Flux and Argo CD rules: controller messages may span lines, but a
//! status is shown on one progress line, a spinner, or inside the one-line timeout error.

/// Collapse every whitespace run to one space and trim.
pub fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Cut to at most `max` characters, ending in `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let kept: String = text.chars().take(max.saturating_sub(1)).collect();
    format!("{}…", kept.trim_end())
}

/// `Reason: message`, the way Flux conditions are quoted in progress lines
/// (`DependencyNotReady: dependency 'infra/cert-manager' is not ready`).
pub fn reason_and_message(reason: &str, message: &str) -> String {
    let message = collapse_whitespace(message);
    match (reason.is_empty(), message.is_empty()) {
        (false, false) => format!("{reason}: {message}"),
        (false, true) => reason.to_string(),
        (true, false) => message,
        (true, true) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapses_and_truncates() {
        assert_eq!(collapse_whitespace("  a\n  b\tc  "), "a b c");
        assert_eq!(truncate("abcdef", 6), "abcdef");
        assert_eq!(truncate("abcdefg", 6), "abcde…");
        assert_eq!(truncate("ab    cdefg", 6), "ab…");
    }
}
