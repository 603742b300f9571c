//! `${VAR}` expansion (config.md#variable-expansion): `${NAME}`, `${NAME:-default}` and
//! `${NAME:=default}`; `$NAME` stays literal; there is no escape syntax. Pure: the environment is a
//! closure, and unset variables are reported to the caller, which owns the warning text.
//!
//! Errors never quote the input: a registry string can hold a password.

/// The result of expanding one value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expansion {
    pub text: String,
    /// Every variable referenced, in order of first appearance (for "(after expanding ${A})").
    pub referenced: Vec<String>,
    /// Variables referenced by `${NAME}` that are unset, in order of first appearance.
    pub unset: Vec<String>,
}

/// A malformed reference. `char_index` is the 1-based character offset of its `$` in the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    #[error(
        "\"${{\" at character {char_index} has no closing \"}}\"; close the reference or remove it"
    )]
    Unclosed { char_index: usize },
    #[error(
        "invalid variable reference at character {char_index}; write ${{NAME}}, ${{NAME:-default}} or ${{NAME:=default}} with NAME matching [A-Za-z_][A-Za-z0-9_]*"
    )]
    InvalidReference { char_index: usize },
}

impl ExpandError {
    /// The message split into what is wrong and what to do, for callers that add context between.
    pub fn parts(&self) -> (String, String) {
        let message = self.to_string();
        match message.split_once("; ") {
            Some((problem, fix)) => (problem.to_string(), fix.to_string()),
            None => (message, String::new()),
        }
    }
}

/// Whether `name` is a valid variable name (`[A-Za-z_][A-Za-z0-9_]*`).
pub fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Expand every `${…}` reference in `text`. An empty value of a set variable counts as set for
/// `${NAME}` and as unset for the `:-`/`:=` forms (as in POSIX shells).
pub fn expand(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Expansion, ExpandError> {
    let mut result = Expansion::default();
    let mut rest = text;
    let mut consumed_chars = 0;
    while let Some(start) = rest.find("${") {
        result.text.push_str(&rest[..start]);
        let char_index = consumed_chars + rest[..start].chars().count() + 1;
        let body_and_after = &rest[start + 2..];
        let close = body_and_after
            .find('}')
            .ok_or(ExpandError::Unclosed { char_index })?;
        let body = &body_and_after[..close];
        let (name, default) = match body.find(':') {
            Some(colon) => {
                let operator_and_default = &body[colon + 1..];
                let default = operator_and_default
                    .strip_prefix('-')
                    .or_else(|| operator_and_default.strip_prefix('='))
                    .ok_or(ExpandError::InvalidReference { char_index })?;
                (&body[..colon], Some(default))
            }
            None => (body, None),
        };
        if !is_var_name(name) {
            return Err(ExpandError::InvalidReference { char_index });
        }
        if !result.referenced.iter().any(|seen| seen == name) {
            result.referenced.push(name.to_string());
        }
        let value = env(name);
        match (value, default) {
            (Some(value), None) => result.text.push_str(&value),
            (None, None) => {
                if !result.unset.iter().any(|seen| seen == name) {
                    result.unset.push(name.to_string());
                }
            }
            (Some(value), Some(_)) if !value.is_empty() => result.text.push_str(&value),
            // The default is used verbatim: it is not expanded again.
            (_, Some(default)) => result.text.push_str(default),
        }
        let reference_end = start + 2 + close + 1;
        consumed_chars += rest[..reference_end].chars().count();
        rest = &rest[reference_end..];
    }
    result.text.push_str(rest);
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "USER" => Some("ci".into()),
            "EMPTY" => Some(String::new()),
            "TAG" => Some("v1".into()),
            _ => None,
        }
    }

    fn run(text: &str) -> Expansion {
        expand(text, &env).expect("valid reference")
    }

    #[test]
    fn expansion_forms() {
        let cases = [
            ("${USER}", "ci"),
            ("${USER}:${TAG}@ghcr.io", "ci:v1@ghcr.io"),
            ("${MISSING:-fallback}", "fallback"),
            ("${MISSING:=fallback}", "fallback"),
            ("${EMPTY:-fallback}", "fallback"),
            ("${USER:-fallback}", "ci"),
            ("${EMPTY}", ""),
            ("${MISSING:-}", ""),
            ("plain text", "plain text"),
            ("µ${TAG}µ", "µv1µ"),
        ];
        for (input, expected) in cases {
            assert_eq!(run(input).text, expected, "{input}");
        }
    }

    #[test]
    fn dollar_name_without_braces_is_literal() {
        assert_eq!(run("$USER/$TAG").text, "$USER/$TAG");
        assert!(run("$USER").referenced.is_empty());
        assert_eq!(run("$${TAG}").text, "$v1");
    }

    #[test]
    fn default_runs_to_the_first_brace_and_is_not_expanded_again() {
        assert_eq!(run("${MISSING:-${TAG}}").text, "${TAG}");
        assert_eq!(run("${MISSING:-a:-b}").text, "a:-b");
    }

    #[test]
    fn unset_variables_are_reported_once_and_become_empty() {
        let result = run("${A}-${B}-${A}-${C:-x}");
        assert_eq!(result.text, "---x");
        assert_eq!(result.unset, ["A", "B"]);
        assert_eq!(result.referenced, ["A", "B", "C"]);
    }

    #[test]
    fn malformed_references_are_errors_with_their_position() {
        assert_eq!(
            expand("ab${TAG", &env),
            Err(ExpandError::Unclosed { char_index: 3 })
        );
        assert_eq!(
            expand("µ${1X}", &env),
            Err(ExpandError::InvalidReference { char_index: 2 })
        );
        for bad in ["${}", "${A-b}", "${A:?b}", "${A B}", "${A:+b}", "${:-x}"] {
            assert!(
                matches!(
                    expand(bad, &env),
                    Err(ExpandError::InvalidReference { char_index: 1 })
                ),
                "{bad}"
            );
        }
        assert_eq!(
            expand("${TAG}${X", &env),
            Err(ExpandError::Unclosed { char_index: 7 })
        );
    }

    #[test]
    fn errors_do_not_quote_the_value() {
        let message = expand("user:s3cret@${host", &env).unwrap_err().to_string();
        assert!(!message.contains("s3cret"));
        assert_eq!(
            message,
            "\"${\" at character 13 has no closing \"}\"; close the reference or remove it"
        );
    }
}
