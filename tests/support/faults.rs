//! Fault scripts: which requests the proxy answers itself, and how (testing.md "Fault injection").
//!
//! A script is a list of rules; each selects requests either by their number (1-based, over all
//! requests since the script was installed) or by the occurrence of a predicate match, and names an
//! [`Action`]. The first rule that selects a request wins; unselected requests are forwarded.
//! This module only decides; `proxy.rs` carries the decisions out on the wire.

use std::ops::{Bound, RangeBounds};
use std::sync::Arc;
use std::time::Duration;

/// Query parameter that marks the hops of a redirect loop, so every hop keeps looping.
pub const REDIRECT_HOP_PARAM: &str = "ksail-redirect-hop";

/// What the proxy does with one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Pass it to the upstream and relay the answer.
    Forward,
    /// Answer with this status and a registry-style JSON `errors` body; optionally with
    /// `Retry-After: <secs>`. A `401` also carries `WWW-Authenticate: Basic realm="ksail-test"`.
    Status(u16, Option<u64>),
    /// Answer with exactly this status, headers and body (e.g. a Kubernetes `Status` object).
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Close the socket with `SO_LINGER 0`: the client sees ECONNRESET, no response.
    Reset,
    /// `200` with `Content-Length: 1024` but only 16 body bytes, then close.
    UnexpectedEof,
    /// Hold the request without answering for this long, then close without a response.
    Stall(Duration),
    /// Hold the request this long, then forward it (a slow link: another client overtakes).
    Delay(Duration),
    /// `302` to the same path with a changing query, and so on for every hop, forever.
    RedirectLoop,
}

/// A request as the script sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestInfo {
    pub method: String,
    /// Path with query, as sent on the request line.
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl RequestInfo {
    pub fn header(&self, name: &str) -> Option<&str> {
        super::wire::header_value(&self.headers, name)
    }

    /// The path without its query string.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or_default()
    }

    pub fn is_redirect_hop(&self) -> bool {
        self.path.contains(&format!("{REDIRECT_HOP_PARAM}="))
    }
}

pub type Predicate = Arc<dyn Fn(&RequestInfo) -> bool + Send + Sync>;

/// An inclusive 1-based range; `last: None` means "and every one after".
#[derive(Clone, Copy, Debug)]
struct Occurrences {
    first: usize,
    last: Option<usize>,
}

impl Occurrences {
    fn from_bounds(range: impl RangeBounds<usize>) -> Occurrences {
        let first = match range.start_bound() {
            Bound::Included(&n) => n,
            Bound::Excluded(&n) => n + 1,
            Bound::Unbounded => 1,
        };
        let last = match range.end_bound() {
            Bound::Included(&n) => Some(n),
            Bound::Excluded(&n) => Some(n.saturating_sub(1)),
            Bound::Unbounded => None,
        };
        Occurrences { first, last }
    }

    fn contains(&self, n: usize) -> bool {
        n >= self.first && self.last.is_none_or(|last| n <= last)
    }
}

enum Selector {
    Numbers(Occurrences),
    Matches {
        predicate: Predicate,
        occurrences: Occurrences,
        seen: usize,
    },
}

struct Rule {
    selector: Selector,
    action: Action,
}

/// An ordered list of fault rules; see the module documentation.
#[derive(Default)]
pub struct FaultScript {
    rules: Vec<Rule>,
    requests_seen: usize,
}

impl FaultScript {
    pub fn new() -> FaultScript {
        FaultScript::default()
    }

    /// Request number `n` (1-based) gets `action`.
    pub fn on_request(self, n: usize, action: Action) -> FaultScript {
        self.on_requests(n..=n, action)
    }

    /// Requests whose number is in `range` (e.g. `1..=2`, `3..`) get `action`.
    pub fn on_requests(mut self, range: impl RangeBounds<usize>, action: Action) -> FaultScript {
        self.rules.push(Rule {
            selector: Selector::Numbers(Occurrences::from_bounds(range)),
            action,
        });
        self
    }

    /// The matches of `predicate` whose occurrence number is in `occurrences` get `action`:
    /// `1..` is every match, `2..=2` only the second, `3..` every match after the second.
    pub fn when(
        mut self,
        predicate: impl Fn(&RequestInfo) -> bool + Send + Sync + 'static,
        occurrences: impl RangeBounds<usize>,
        action: Action,
    ) -> FaultScript {
        self.rules.push(Rule {
            selector: Selector::Matches {
                predicate: Arc::new(predicate),
                occurrences: Occurrences::from_bounds(occurrences),
                seen: 0,
            },
            action,
        });
        self
    }

    /// Decides what to do with the next request. Every rule counts its matches, whether or not
    /// an earlier rule wins, so that occurrence numbers do not depend on rule order.
    /// Hops of a redirect loop keep looping and are not numbered.
    pub fn decide(&mut self, request: &RequestInfo) -> Action {
        if request.is_redirect_hop() {
            return Action::RedirectLoop;
        }
        self.requests_seen += 1;
        let number = self.requests_seen;
        let mut chosen = None;
        for rule in &mut self.rules {
            let selected = match &mut rule.selector {
                Selector::Numbers(occurrences) => occurrences.contains(number),
                Selector::Matches {
                    predicate,
                    occurrences,
                    seen,
                } => {
                    if predicate(request) {
                        *seen += 1;
                        occurrences.contains(*seen)
                    } else {
                        false
                    }
                }
            };
            if selected && chosen.is_none() {
                chosen = Some(rule.action.clone());
            }
        }
        chosen.unwrap_or(Action::Forward)
    }
}

/// Registry error code for an injected status, so that clients parse a realistic body.
pub fn registry_error_code(status: u16, path: &str) -> &'static str {
    match status {
        401 => "UNAUTHORIZED",
        403 => "DENIED",
        404 if path.contains("/manifests/") => "MANIFEST_UNKNOWN",
        404 if path.contains("/blobs/") => "BLOB_UNKNOWN",
        404 => "NAME_UNKNOWN",
        429 => "TOOMANYREQUESTS",
        500..=599 => "UNAVAILABLE",
        _ => "UNKNOWN",
    }
}

/// `{"errors":[{"code":…,"message":…,"detail":null}]}` as Distribution writes it.
pub fn registry_error_body(status: u16, path: &str) -> Vec<u8> {
    let code = registry_error_code(status, path);
    serde_json::json!({
        "errors": [{
            "code": code,
            "message": format!("injected fault: status {status}"),
            "detail": null,
        }]
    })
    .to_string()
    .into_bytes()
}

/// Where the next hop of a redirect loop points: same path, hop counter plus one.
pub fn next_redirect_target(path: &str) -> String {
    let (base, query) = path.split_once('?').unwrap_or((path, ""));
    let hop = query
        .split('&')
        .find_map(|pair| pair.strip_prefix(&format!("{REDIRECT_HOP_PARAM}=")))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    format!("{base}?{REDIRECT_HOP_PARAM}={}", hop + 1)
}
