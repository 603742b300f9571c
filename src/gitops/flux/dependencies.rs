//! Which tracked Kustomizations a failure blocks (reconcile.md "Dependencies").
//!
//! The graph holds every listed Kustomization, tracked or not, so that blocking passes through
//! excluded and suspended intermediates. A failed sync source is a node too: each Kustomization
//! whose `sourceRef` is the sync source gets an implicit edge to it ([`dependency_edges`]), so
//! one walk covers both rules. Dependency cycles are not detected; the walk visits each node once,
//! so a cycle cannot make it loop, and members of a cycle without a failed ancestor stay waiting.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use super::objects::{FluxObject, ObjectKey};

/// One Kustomization and the objects it waits for.
pub type DependencyEdges = (ObjectKey, Vec<ObjectKey>);

/// The edges for [`blocked_by`] from every listed Kustomization: its `spec.dependsOn`, plus the
/// sync source when `sourceRef` names it.
pub fn dependency_edges(
    kustomizations: &[FluxObject],
    sync_source: Option<&ObjectKey>,
) -> Vec<DependencyEdges> {
    kustomizations
        .iter()
        .map(|kustomization| {
            let mut prerequisites = kustomization.depends_on.clone();
            let source = kustomization
                .source_ref
                .as_ref()
                .and_then(|source| source.key());
            if let (Some(source), Some(sync)) = (source, sync_source)
                && source == *sync
            {
                prerequisites.push(source);
            }
            (kustomization.key.clone(), prerequisites)
        })
        .collect()
}

/// Every tracked object that depends, directly or transitively, on one of the `failed` objects,
/// mapped to its nearest failed ancestor (fewest edges; ties go to the smallest key, so the
/// result does not depend on input order). Failed objects themselves are never blocked, and only
/// `tracked` objects appear in the result; the caller skips those already complete.
pub fn blocked_by(
    failed: &[ObjectKey],
    kustomizations: &[DependencyEdges],
    tracked: &HashSet<ObjectKey>,
) -> BTreeMap<ObjectKey, ObjectKey> {
    let mut dependents: HashMap<&ObjectKey, Vec<&ObjectKey>> = HashMap::new();
    for (kustomization, prerequisites) in kustomizations {
        for prerequisite in prerequisites {
            dependents
                .entry(prerequisite)
                .or_default()
                .push(kustomization);
        }
    }
    for list in dependents.values_mut() {
        list.sort();
        list.dedup();
    }
    let mut roots: Vec<&ObjectKey> = failed.iter().collect();
    roots.sort();
    roots.dedup();

    // Breadth-first from all failures at once: the first failure to reach a node is nearest.
    let mut blocker: HashMap<&ObjectKey, &ObjectKey> =
        roots.iter().map(|root| (*root, *root)).collect();
    let mut queue: VecDeque<&ObjectKey> = roots.iter().copied().collect();
    while let Some(node) = queue.pop_front() {
        let root = blocker[node];
        for dependent in dependents.get(node).into_iter().flatten() {
            if !blocker.contains_key(dependent) {
                blocker.insert(dependent, root);
                queue.push_back(dependent);
            }
        }
    }
    blocker
        .into_iter()
        .filter(|(node, root)| node != root && tracked.contains(*node))
        .map(|(node, root)| (node.clone(), root.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitops::flux::objects::FluxKind;
    use serde_json::json;

    fn k(key: &str) -> ObjectKey {
        let (namespace, name) = key.split_once('/').expect("ns/name");
        ObjectKey::kustomization(namespace, name)
    }

    fn edges(list: &[(&str, &[&str])]) -> Vec<DependencyEdges> {
        list.iter()
            .map(|(node, deps)| (k(node), deps.iter().map(|dep| k(dep)).collect()))
            .collect()
    }

    fn tracked(keys: &[&str]) -> HashSet<ObjectKey> {
        keys.iter().map(|key| k(key)).collect()
    }

    fn result(pairs: &[(&str, &str)]) -> BTreeMap<ObjectKey, ObjectKey> {
        pairs
            .iter()
            .map(|(node, root)| (k(node), k(root)))
            .collect()
    }

    #[test]
    fn blocks_direct_and_transitive_dependents() {
        let graph = edges(&[
            ("infra/cert-manager", &[]),
            ("apps/podinfo", &["infra/cert-manager"]),
            ("apps/frontend", &["apps/podinfo"]),
            ("apps/unrelated", &[]),
        ]);
        let all = tracked(&[
            "infra/cert-manager",
            "apps/podinfo",
            "apps/frontend",
            "apps/unrelated",
        ]);
        assert_eq!(
            blocked_by(&[k("infra/cert-manager")], &graph, &all),
            result(&[
                ("apps/podinfo", "infra/cert-manager"),
                ("apps/frontend", "infra/cert-manager")
            ])
        );
    }

    #[test]
    fn blocks_through_excluded_or_untracked_intermediates_but_reports_only_tracked() {
        let graph = edges(&[
            ("infra/cert-manager", &[]),
            ("infra/excluded", &["infra/cert-manager"]),
            ("apps/podinfo", &["infra/excluded"]),
        ]);
        let only = tracked(&["infra/cert-manager", "apps/podinfo"]);
        assert_eq!(
            blocked_by(&[k("infra/cert-manager")], &graph, &only),
            result(&[("apps/podinfo", "infra/cert-manager")])
        );
    }

    #[test]
    fn nearest_failed_ancestor_wins_and_failed_objects_are_not_blocked() {
        let graph = edges(&[
            ("infra/a", &[]),
            ("infra/b", &["infra/a"]),
            ("apps/c", &["infra/b"]),
            ("apps/d", &["infra/a", "apps/c"]),
        ]);
        let all = tracked(&["infra/a", "infra/b", "apps/c", "apps/d"]);
        assert_eq!(
            blocked_by(&[k("infra/a"), k("infra/b")], &graph, &all),
            result(&[("apps/c", "infra/b"), ("apps/d", "infra/a")])
        );
    }

    #[test]
    fn ties_are_broken_by_key_not_input_order() {
        let graph = edges(&[("apps/x", &["infra/b", "infra/a"])]);
        let all = tracked(&["apps/x"]);
        let expected = result(&[("apps/x", "infra/a")]);
        assert_eq!(
            blocked_by(&[k("infra/b"), k("infra/a")], &graph, &all),
            expected
        );
        assert_eq!(
            blocked_by(&[k("infra/a"), k("infra/b")], &graph, &all),
            expected
        );
    }

    #[test]
    fn cycles_terminate() {
        let graph = edges(&[
            ("apps/a", &["apps/b"]),
            ("apps/b", &["apps/a"]),
            ("apps/c", &["apps/c"]),
        ]);
        let all = tracked(&["apps/a", "apps/b", "apps/c", "infra/x"]);
        assert_eq!(blocked_by(&[k("infra/x")], &graph, &all), BTreeMap::new());
        let with_failed = edges(&[("apps/a", &["apps/b", "infra/x"]), ("apps/b", &["apps/a"])]);
        assert_eq!(
            blocked_by(&[k("infra/x")], &with_failed, &all),
            result(&[("apps/a", "infra/x"), ("apps/b", "infra/x")])
        );
    }

    #[test]
    fn a_failed_sync_source_blocks_what_it_feeds_and_their_dependents() {
        let sync = ObjectKey::new(FluxKind::OciRepository, "flux-system", "flux-system");
        let kustomization = |namespace: &str, name: &str, source: &str, deps: serde_json::Value| {
            FluxObject::parse(&json!({
                "kind": "Kustomization",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"sourceRef": {"kind": "OCIRepository", "name": source, "namespace": "flux-system"},
                    "dependsOn": deps}
            }))
            .expect("valid")
        };
        let objects = vec![
            kustomization("flux-system", "flux-system", "flux-system", json!([])),
            kustomization(
                "apps",
                "podinfo",
                "other",
                json!([{"name": "flux-system", "namespace": "flux-system"}]),
            ),
            kustomization("apps", "standalone", "other", json!([])),
        ];
        let graph = dependency_edges(&objects, Some(&sync));
        assert_eq!(graph[0].1, vec![sync.clone()]);
        assert_eq!(graph[2].1, Vec::<ObjectKey>::new());
        let all = tracked(&["flux-system/flux-system", "apps/podinfo", "apps/standalone"]);
        let blocked = blocked_by(std::slice::from_ref(&sync), &graph, &all);
        let expected: BTreeMap<ObjectKey, ObjectKey> = [
            (k("flux-system/flux-system"), sync.clone()),
            (k("apps/podinfo"), sync.clone()),
        ]
        .into_iter()
        .collect();
        assert_eq!(blocked, expected);
        assert_eq!(
            format!("blocked by {}", blocked[&k("apps/podinfo")].blocker_label()),
            "blocked by ocirepository flux-system/flux-system"
        );
        // Without a sync source no implicit edge is added.
        assert_eq!(
            dependency_edges(&objects, None)[0].1,
            Vec::<ObjectKey>::new()
        );
    }
}
