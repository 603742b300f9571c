//! Which Kustomizations a run tracks (reconcile.md "Objects"): suspended ones and excluded ones
//! (by annotation or `--exclude`) are left alone; everything else is annotated and waited for.

use super::ReadinessError;
use super::objects::{FluxKind, FluxObject, ObjectKey};

/// Set to `true` (any case, surrounding whitespace ignored) to keep a Kustomization out of the run.
use super::resources::EXCLUDE_ANNOTATION;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classification {
    /// `spec.suspend: true`; reported as `suspended`.
    Suspended,
    /// By annotation or `--exclude`; reported as `excluded`.
    Excluded,
    /// Annotated with the token and waited for.
    Tracked,
}

/// Suspension wins over exclusion: a suspended object is not applied by Flux at all, which is the
/// more useful thing to report.
pub fn classify(kustomization: &FluxObject, excludes: &Excludes) -> Classification {
    if kustomization.suspend {
        return Classification::Suspended;
    }
    let annotated = kustomization
        .annotations
        .get(EXCLUDE_ANNOTATION)
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"));
    if annotated || excludes.matches(&kustomization.key) {
        Classification::Excluded
    } else {
        Classification::Tracked
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// `name`: that name in any namespace.
    Name(String),
    /// `namespace/name`: exactly that object.
    Exact { namespace: String, name: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// As the user wrote it (trimmed), for the unmatched-entry warning.
    text: String,
    pattern: Pattern,
}

impl Entry {
    fn matches(&self, key: &ObjectKey) -> bool {
        match &self.pattern {
            Pattern::Name(name) => key.name == *name,
            Pattern::Exact { namespace, name } => key.namespace == *namespace && key.name == *name,
        }
    }
}

/// The `--exclude` entries of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Excludes {
    entries: Vec<Entry>,
}

impl Excludes {
    /// Every occurrence of the repeatable flag; each may hold comma-separated entries. Entries
    /// are trimmed, empty ones dropped and duplicates kept once.
    pub fn parse(values: &[String]) -> Result<Excludes, ReadinessError> {
        let mut entries: Vec<Entry> = Vec::new();
        for text in values
            .iter()
            .flat_map(|value| value.split(','))
            .map(str::trim)
        {
            if text.is_empty() || entries.iter().any(|entry| entry.text == text) {
                continue;
            }
            entries.push(Entry {
                text: text.to_string(),
                pattern: parse_pattern(text)?,
            });
        }
        Ok(Excludes { entries })
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether any entry names this Kustomization.
    pub fn matches(&self, key: &ObjectKey) -> bool {
        key.kind == FluxKind::Kustomization && self.entries.iter().any(|entry| entry.matches(key))
    }

    /// The entries (as written) that match none of the Kustomizations `seen` in this attempt,
    /// in the order given. Keys of other kinds are ignored.
    pub fn unmatched<'a>(&self, seen: impl IntoIterator<Item = &'a ObjectKey>) -> Vec<String> {
        let seen: Vec<&ObjectKey> = seen
            .into_iter()
            .filter(|key| key.kind == FluxKind::Kustomization)
            .collect();
        self.entries
            .iter()
            .filter(|entry| !seen.iter().any(|key| entry.matches(key)))
            .map(|entry| entry.text.clone())
            .collect()
    }
}

/// The warning text (without the `warning: ` prefix the reporter adds).
pub fn unmatched_exclude_warning(entry: &str) -> String {
    format!("--exclude {entry} matched no Kustomization")
}

fn parse_pattern(text: &str) -> Result<Pattern, ReadinessError> {
    let invalid = || ReadinessError::InvalidExclude {
        entry: text.to_string(),
    };
    match text.split_once('/') {
        None => Ok(Pattern::Name(text.to_string())),
        Some((namespace, name)) => {
            let namespace = namespace.trim();
            let name = name.trim();
            if namespace.is_empty() || name.is_empty() || name.contains('/') {
                return Err(invalid());
            }
            Ok(Pattern::Exact {
                namespace: namespace.to_string(),
                name: name.to_string(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kustomization(
        namespace: &str,
        name: &str,
        annotation: Option<&str>,
        suspend: bool,
    ) -> FluxObject {
        let mut object = json!({
            "kind": "Kustomization",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"suspend": suspend}
        });
        if let Some(value) = annotation {
            object["metadata"]["annotations"] = json!({ EXCLUDE_ANNOTATION: value });
        }
        FluxObject::parse(&object).expect("valid")
    }

    fn excludes(values: &[&str]) -> Excludes {
        let values: Vec<String> = values.iter().map(|value| value.to_string()).collect();
        Excludes::parse(&values).expect("valid excludes")
    }

    #[test]
    fn classification_table() {
        use Classification::*;
        let none = excludes(&[]);
        let cases: Vec<(&str, FluxObject, Excludes, Classification)> = vec![
            (
                "plain",
                kustomization("apps", "web", None, false),
                none.clone(),
                Tracked,
            ),
            (
                "suspended",
                kustomization("apps", "web", None, true),
                none.clone(),
                Suspended,
            ),
            (
                "suspended and excluded",
                kustomization("apps", "web", Some("true"), true),
                none.clone(),
                Suspended,
            ),
            (
                "annotation true",
                kustomization("apps", "web", Some("true"), false),
                none.clone(),
                Excluded,
            ),
            (
                "annotation True",
                kustomization("apps", "web", Some("True"), false),
                none.clone(),
                Excluded,
            ),
            (
                "annotation ' TRUE '",
                kustomization("apps", "web", Some(" TRUE "), false),
                none.clone(),
                Excluded,
            ),
            (
                "annotation false",
                kustomization("apps", "web", Some("false"), false),
                none.clone(),
                Tracked,
            ),
            (
                "annotation yes",
                kustomization("apps", "web", Some("yes"), false),
                none.clone(),
                Tracked,
            ),
            (
                "annotation empty",
                kustomization("apps", "web", Some(""), false),
                none.clone(),
                Tracked,
            ),
            (
                "--exclude name",
                kustomization("apps", "web", None, false),
                excludes(&["web"]),
                Excluded,
            ),
            (
                "--exclude name in another namespace",
                kustomization("other", "web", None, false),
                excludes(&["web"]),
                Excluded,
            ),
            (
                "--exclude ns/name",
                kustomization("apps", "web", None, false),
                excludes(&["apps/web"]),
                Excluded,
            ),
            (
                "--exclude ns/name other namespace",
                kustomization("other", "web", None, false),
                excludes(&["apps/web"]),
                Tracked,
            ),
            (
                "--exclude 'a, b' first",
                kustomization("apps", "a", None, false),
                excludes(&["a, b"]),
                Excluded,
            ),
            (
                "--exclude 'a, b' second",
                kustomization("apps", "b", None, false),
                excludes(&["a, b"]),
                Excluded,
            ),
            (
                "--exclude repeated",
                kustomization("apps", "b", None, false),
                excludes(&["a", "b"]),
                Excluded,
            ),
            (
                "--exclude other name",
                kustomization("apps", "c", None, false),
                excludes(&["a", "b"]),
                Tracked,
            ),
        ];
        for (name, object, excludes, expected) in cases {
            assert_eq!(classify(&object, &excludes), expected, "{name}");
        }
    }

    #[test]
    fn parse_trims_splits_and_drops_empty_entries() {
        let parsed = excludes(&[" a , ,b,", "infra/cert-manager", "a", ""]);
        let seen: Vec<ObjectKey> = Vec::new();
        assert_eq!(
            parsed.unmatched(&seen),
            vec!["a", "b", "infra/cert-manager"]
        );
        assert!(excludes(&["", " , "]).is_empty());
    }

    #[test]
    fn parse_rejects_malformed_entries() {
        for bad in ["a/b/c", "/name", "ns/", "/"] {
            let values = vec![bad.to_string()];
            assert_eq!(
                Excludes::parse(&values),
                Err(ReadinessError::InvalidExclude {
                    entry: bad.to_string()
                }),
                "{bad}"
            );
        }
    }

    #[test]
    fn unmatched_entries_are_reported_in_order() {
        let parsed = excludes(&["apps-typo,web", "infra/cert-manager", "other/web"]);
        let seen = [
            ObjectKey::kustomization("apps", "web"),
            ObjectKey::kustomization("infra", "cert-manager"),
            // A source with a matching name does not count: entries name Kustomizations.
            ObjectKey::new(FluxKind::OciRepository, "apps-typo", "apps-typo"),
        ];
        assert_eq!(parsed.unmatched(&seen), vec!["apps-typo", "other/web"]);
        assert_eq!(
            unmatched_exclude_warning("apps-typo"),
            "--exclude apps-typo matched no Kustomization"
        );
    }

    #[test]
    fn sources_never_match() {
        let parsed = excludes(&["flux-system"]);
        assert!(!parsed.matches(&ObjectKey::new(
            FluxKind::OciRepository,
            "flux-system",
            "flux-system"
        )));
        assert!(parsed.matches(&ObjectKey::kustomization("flux-system", "flux-system")));
    }
}
