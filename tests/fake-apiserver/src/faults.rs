//! Fault injection rules, matched per route and verb.

/// Which requests a fault applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Any,
    /// The path starts with this (`/apis/kustomize.toolkit.fluxcd.io`).
    PathPrefix(String),
    /// The path contains this.
    PathContains(String),
    /// A resource by plural (`kustomizations`) or kind (`Kustomization`), case-insensitive.
    Resource(String),
    /// One object: resource (plural or kind), namespace (None for cluster-scoped or any), name.
    Object {
        resource: String,
        namespace: Option<String>,
        name: String,
    },
}

impl Route {
    pub fn resource(r: &str) -> Self {
        Route::Resource(r.to_string())
    }
    pub fn prefix(p: &str) -> Self {
        Route::PathPrefix(p.to_string())
    }
    pub fn object(resource: &str, namespace: Option<&str>, name: &str) -> Self {
        Route::Object {
            resource: resource.to_string(),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        }
    }
}

/// What a request does. `Patch` matches every PATCH (apply included); `Write` matches every
/// mutating verb.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Any,
    Discovery,
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Apply,
    Delete,
    Write,
}

impl Verb {
    pub(crate) fn matches(self, actual: Verb) -> bool {
        match self {
            Verb::Any => true,
            Verb::Patch => matches!(actual, Verb::Patch | Verb::Apply),
            Verb::Write => matches!(
                actual,
                Verb::Create | Verb::Update | Verb::Patch | Verb::Apply | Verb::Delete
            ),
            v => v == actual,
        }
    }
}

/// What happens to a matching request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// Answer with this HTTP status and a `kind: Status` body (optionally `Retry-After` seconds).
    Status { code: u16, retry_after: Option<u32> },
    /// Wait this long before handling the request normally. Delays add up with other faults.
    Delay { ms: u64 },
    /// Close the connection without answering.
    Drop,
    /// For watches: keep the stream open, send nothing, until `timeoutSeconds`.
    HoldWatch,
    /// For watches: answer `200` with one `ERROR` event `410 Expired` (what the real server does
    /// for a too-old resourceVersion), then end the stream.
    ExpireWatch,
}

#[derive(Clone, Debug)]
pub struct FaultRule {
    pub route: Route,
    pub verb: Verb,
    pub action: FaultAction,
    /// How many more requests it applies to; `None` is forever.
    pub remaining: Option<usize>,
}

/// What the router knows about a request when it checks faults.
pub(crate) struct RequestInfo<'a> {
    pub path: &'a str,
    pub verb: Verb,
    pub plural: Option<&'a str>,
    pub kind: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
}

impl Route {
    pub(crate) fn matches(&self, req: &RequestInfo<'_>) -> bool {
        let is_resource = |r: &str| {
            req.plural.is_some_and(|p| p.eq_ignore_ascii_case(r))
                || req.kind.is_some_and(|k| k.eq_ignore_ascii_case(r))
        };
        match self {
            Route::Any => true,
            Route::PathPrefix(p) => req.path.starts_with(p.as_str()),
            Route::PathContains(p) => req.path.contains(p.as_str()),
            Route::Resource(r) => is_resource(r),
            Route::Object {
                resource,
                namespace,
                name,
            } => {
                is_resource(resource)
                    && req.name == Some(name.as_str())
                    && (namespace.is_none() || req.namespace == namespace.as_deref())
            }
        }
    }
}

/// The faults to apply to one request: the summed delay, and the first other matching action.
/// Counted rules are used up here.
pub(crate) fn take(
    rules: &mut Vec<FaultRule>,
    req: &RequestInfo<'_>,
) -> (u64, Option<FaultAction>) {
    let mut delay = 0;
    let mut action = None;
    for rule in rules.iter_mut() {
        if rule.remaining == Some(0) || !rule.verb.matches(req.verb) || !rule.route.matches(req) {
            continue;
        }
        match rule.action {
            FaultAction::Delay { ms } => delay += ms,
            // Watch-only actions never consume a non-watch request.
            FaultAction::HoldWatch | FaultAction::ExpireWatch if req.verb != Verb::Watch => {
                continue;
            }
            _ if action.is_some() => continue,
            ref a => action = Some(a.clone()),
        }
        if let Some(n) = rule.remaining.as_mut() {
            *n -= 1;
        }
    }
    rules.retain(|r| r.remaining != Some(0));
    (delay, action)
}
