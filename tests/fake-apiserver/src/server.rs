//! The HTTP/1.1 front end: routing, discovery, verbs, watch streams, auth and faults.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};

use crate::LoggedRequest;
use crate::cluster::Cluster;
use crate::faults::{self, FaultAction, RequestInfo, Verb};
use crate::select::Selector;
use crate::store::{ApiError, PatchKind, State};
use crate::types::{ResourceType, compare_versions};
use crate::util::{reason_for, status_body};

pub(crate) type Body = BoxBody<Bytes, Infallible>;

/// Returned from the service to make hyper close the connection without an answer.
#[derive(Debug)]
pub(crate) struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for DropConnection {}

pub(crate) async fn serve(listener: TcpListener, cluster: Cluster) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let cluster = cluster.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(cluster.clone(), req));
            // Connection errors (including deliberate drops) only end that connection.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

enum Target {
    Version,
    Api,
    Apis,
    Group(String),
    GroupVersion(String, String),
    Resource {
        rt: ResourceType,
        namespace: Option<String>,
        name: Option<String>,
        status: bool,
    },
    Unknown,
}

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into()).boxed()
}

fn json_response(code: u16, body: &Value) -> Response<Body> {
    let mut resp = Response::new(full(body.to_string()));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn error_response(err: &ApiError) -> Response<Body> {
    json_response(err.code, &err.body())
}

fn status_response(code: u16, message: &str) -> Response<Body> {
    json_response(code, &status_body(code, reason_for(code), message))
}

pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

fn is_true(q: &HashMap<String, String>, key: &str) -> bool {
    q.get(key).is_some_and(|v| v == "true" || v == "1")
}

fn parse_target(st: &State, path: &str) -> Target {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest) = match segs.as_slice() {
        ["version"] => return Target::Version,
        ["api"] => return Target::Api,
        ["apis"] => return Target::Apis,
        ["api", v] => return Target::GroupVersion(String::new(), v.to_string()),
        ["apis", g] => return Target::Group(g.to_string()),
        ["apis", g, v] => return Target::GroupVersion(g.to_string(), v.to_string()),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Target::Unknown,
    };
    let namespace_sub = rest.len() == 3 && matches!(rest[2], "status" | "finalize");
    let (namespace, rest) =
        if rest.first() == Some(&"namespaces") && rest.len() >= 3 && !namespace_sub {
            (Some(rest[1].to_string()), &rest[2..])
        } else {
            (None, rest)
        };
    let (plural, name, sub) = match rest {
        [p] => (*p, None, None),
        [p, n] => (*p, Some(n.to_string()), None),
        [p, n, s] => (*p, Some(n.to_string()), Some(*s)),
        _ => return Target::Unknown,
    };
    let Some(rt) = st.find_type(group, version, plural) else {
        return Target::Unknown;
    };
    if (rt.namespaced && name.is_some() && namespace.is_none())
        || (!rt.namespaced && namespace.is_some())
        || sub.is_some_and(|s| s != "status")
    {
        return Target::Unknown;
    }
    Target::Resource {
        rt,
        namespace,
        name,
        status: sub.is_some(),
    }
}

async fn handle(
    cluster: Cluster,
    req: Request<Incoming>,
) -> Result<Response<Body>, DropConnection> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let raw_query = req.uri().query().unwrap_or("").to_string();
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header(CONTENT_TYPE);
    let accept = header(ACCEPT).unwrap_or_default();
    let authorization = header(AUTHORIZATION);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let query = parse_query(&raw_query);
    let watch = is_true(&query, "watch");

    let (target, verb, delay, action, auth_ok) = {
        let mut st = cluster.lock();
        st.log.push(LoggedRequest {
            method: method.to_string(),
            path: path.clone(),
            query: raw_query.clone(),
            content_type: content_type.clone(),
            body: String::from_utf8_lossy(&body).into_owned(),
            at: Instant::now(),
        });
        let target = parse_target(&st, &path);
        let verb = match (&target, &method) {
            (Target::Resource { name: None, .. }, &Method::GET) if watch => Verb::Watch,
            (Target::Resource { name: None, .. }, &Method::GET) => Verb::List,
            (Target::Resource { .. }, &Method::GET) => Verb::Get,
            (Target::Resource { .. }, &Method::POST) => Verb::Create,
            (Target::Resource { .. }, &Method::PUT) => Verb::Update,
            (Target::Resource { .. }, &Method::PATCH)
                if content_type
                    .as_deref()
                    .and_then(PatchKind::from_content_type)
                    == Some(PatchKind::Apply) =>
            {
                Verb::Apply
            }
            (Target::Resource { .. }, &Method::PATCH) => Verb::Patch,
            (Target::Resource { .. }, &Method::DELETE) => Verb::Delete,
            (Target::Resource { .. }, _) => Verb::Any,
            _ => Verb::Discovery,
        };
        let (plural, kind, namespace, name) = match &target {
            Target::Resource {
                rt,
                namespace,
                name,
                ..
            } => (
                Some(rt.plural.clone()),
                Some(rt.kind.clone()),
                namespace.clone(),
                name.clone(),
            ),
            _ => (None, None, None, None),
        };
        let info = RequestInfo {
            path: &path,
            verb,
            plural: plural.as_deref(),
            kind: kind.as_deref(),
            namespace: namespace.as_deref(),
            name: name.as_deref(),
        };
        let (delay, action) = faults::take(&mut st.faults, &info);
        let auth_ok = !st.unauthorized
            && st
                .token
                .as_ref()
                .is_none_or(|t| authorization.as_deref() == Some(&format!("Bearer {t}")));
        (target, verb, delay, action, auth_ok)
    };

    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if !auth_ok {
        return Ok(status_response(401, "Unauthorized"));
    }
    match &action {
        Some(FaultAction::Drop) => return Err(DropConnection),
        Some(FaultAction::Status { code, retry_after }) => {
            let mut resp = status_response(*code, "injected fault");
            if let Some(secs) = retry_after
                && let Ok(v) = HeaderValue::from_str(&secs.to_string())
            {
                resp.headers_mut().insert(RETRY_AFTER, v);
            }
            return Ok(resp);
        }
        _ => {}
    }

    let resp = match target {
        Target::Unknown => status_response(404, "the server could not find the requested resource"),
        _ if verb == Verb::Discovery && method != Method::GET => status_response(
            405,
            "the server does not allow this method on the requested resource",
        ),
        // kube-apiserver (1.30+) serves the aggregated form to a client that asks for it; an
        // older server picks the plain `application/json` alternative of the Accept list.
        Target::Apis
            if accept.contains("g=apidiscovery.k8s.io;v=v2")
                && cluster.shared.options.aggregated_discovery =>
        {
            let mut response = json_response(200, &aggregated_discovery(&cluster.lock().types));
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
                ),
            );
            response
        }
        Target::Version => json_response(200, &version_doc(&cluster)),
        Target::Api => json_response(
            200,
            &json!({
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": cluster.shared.addr.to_string()}],
            }),
        ),
        Target::Apis => json_response(200, &api_group_list(&cluster.lock().types)),
        Target::Group(g) => match api_group(&cluster.lock().types, &g) {
            Some(doc) => json_response(200, &doc),
            None => status_response(404, "the server could not find the requested resource"),
        },
        Target::GroupVersion(g, v) => match resource_list(&cluster.lock().types, &g, &v) {
            Some(doc) => json_response(200, &doc),
            None => status_response(404, "the server could not find the requested resource"),
        },
        Target::Resource {
            rt,
            namespace,
            name,
            status,
        } => {
            resource(
                &cluster,
                &method,
                verb,
                rt,
                namespace,
                name,
                status,
                &query,
                content_type,
                &body,
                action,
            )
            .await
        }
    };
    Ok(resp)
}

#[allow(clippy::too_many_arguments)]
async fn resource(
    cluster: &Cluster,
    method: &Method,
    verb: Verb,
    rt: ResourceType,
    namespace: Option<String>,
    name: Option<String>,
    status: bool,
    query: &HashMap<String, String>,
    content_type: Option<String>,
    body: &Bytes,
    action: Option<FaultAction>,
) -> Response<Body> {
    let ns = namespace.clone().unwrap_or_default();
    let dry_run = query.get("dryRun").is_some_and(|v| v == "All");
    let selector = match Selector::parse(
        query.get("labelSelector").map(String::as_str),
        query.get("fieldSelector").map(String::as_str),
    ) {
        Ok(s) => s,
        Err(e) => return status_response(400, &e),
    };
    let parse_body = || -> Result<Value, ApiError> {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::new(
                400,
                "BadRequest",
                format!("the body is not valid JSON: {e}"),
            )
        })
    };
    let result: Result<(u16, Value, Option<crate::store::WriteEvent>), ApiError> = match (
        verb, name,
    ) {
        (Verb::Watch, _) => return watch(cluster, rt, namespace, selector, query, action),
        (Verb::List, _) => Ok((
            200,
            cluster.lock().list(&rt, namespace.as_deref(), &selector),
            None,
        )),
        (Verb::Get, Some(name)) => match cluster.lock().get(&rt, &ns, &name) {
            Some(o) => Ok((200, o, None)),
            None => Err(ApiError::new(
                404,
                "NotFound",
                format!("{} \"{name}\" not found", qualified(&rt)),
            )),
        },
        (Verb::Create, None) => parse_body()
            .and_then(|b| cluster.lock().create(&rt, &ns, b, dry_run))
            .map(|(o, ev)| (201, o, ev)),
        (Verb::Update, Some(name)) => parse_body()
            .and_then(|b| cluster.lock().update(&rt, &ns, &name, b, status, dry_run))
            .map(|(o, ev)| (200, o, ev)),
        (Verb::Patch | Verb::Apply, Some(name)) => {
            let Some(kind) = content_type
                .as_deref()
                .and_then(PatchKind::from_content_type)
            else {
                return status_response(
                    415,
                    &format!(
                        "the body of the request was in an unknown format: {}",
                        content_type.unwrap_or_default()
                    ),
                );
            };
            let manager = query.get("fieldManager").map(String::as_str);
            let force = is_true(query, "force");
            let mut st = cluster.lock();
            let existed = st.get(&rt, &ns, &name).is_some();
            st.patch(&rt, &ns, &name, kind, body, status, manager, force, dry_run)
                .map(|(o, ev)| (if existed { 200 } else { 201 }, o, ev))
        }
        (Verb::Delete, Some(name)) => cluster
            .lock()
            .delete(&rt, &ns, &name, dry_run)
            .map(|(o, ev)| (200, o, ev)),
        (Verb::Delete, None) => {
            // deletecollection: every matching object, one event each.
            let mut events = Vec::new();
            let list = {
                let mut st = cluster.lock();
                let items = st.list_objects(&rt, namespace.as_deref(), &selector);
                for item in &items {
                    let item_ns = crate::util::namespace_of(item).to_string();
                    let item_name = crate::util::name_of(item).to_string();
                    if let Ok((_, Some(ev))) = st.delete(&rt, &item_ns, &item_name, dry_run) {
                        events.push(ev);
                    }
                }
                json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": {"resourceVersion": st.rv.to_string()}, "items": items})
            };
            for ev in &events {
                cluster.dispatch(ev);
            }
            Ok((200, list, None))
        }
        _ => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({method})"),
        )),
    };
    match result {
        Ok((code, obj, ev)) => {
            if let Some(ev) = ev {
                cluster.dispatch(&ev);
            }
            json_response(code, &obj)
        }
        Err(e) => error_response(&e),
    }
}

fn qualified(rt: &ResourceType) -> String {
    if rt.group.is_empty() {
        rt.plural.clone()
    } else {
        format!("{}.{}", rt.plural, rt.group)
    }
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

fn bookmark(rt: &ResourceType, rv: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    event_line(
        "BOOKMARK",
        &json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": meta}),
    )
}

fn watch(
    cluster: &Cluster,
    rt: ResourceType,
    namespace: Option<String>,
    selector: Selector,
    query: &HashMap<String, String>,
    action: Option<FaultAction>,
) -> Response<Body> {
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_millis(
            cluster.shared.options.default_watch_timeout_ms,
        ));
    let deadline = tokio::time::Instant::now() + timeout;
    let bookmarks = is_true(query, "allowWatchBookmarks");
    let send_initial = is_true(query, "sendInitialEvents");
    let bookmark_every = Duration::from_millis(cluster.shared.options.bookmark_interval_ms.max(10));
    let (tx, rx) = mpsc::channel::<Bytes>(1024);

    let matches = {
        let rt = rt.clone();
        let namespace = namespace.clone();
        move |group: &str, plural: &str, obj: &Value| {
            group == rt.group
                && plural == rt.plural
                && namespace
                    .as_deref()
                    .is_none_or(|ns| crate::util::namespace_of(obj) == ns)
                && selector.matches(obj)
        }
    };

    enum Plan {
        Hold,
        Expired(String),
        Stream {
            initial: Vec<Bytes>,
            brx: broadcast::Receiver<std::sync::Arc<crate::store::HistEvent>>,
            start_rv: u64,
        },
    }
    let plan = match action {
        Some(FaultAction::HoldWatch) => Plan::Hold,
        Some(FaultAction::ExpireWatch) => {
            Plan::Expired("too old resource version (injected)".into())
        }
        _ => {
            let st = cluster.lock();
            let requested = query
                .get("resourceVersion")
                .filter(|r| !r.is_empty() && *r != "0");
            match requested.map(|r| r.parse::<u64>()) {
                Some(Err(_)) => {
                    return status_response(
                        400,
                        "resourceVersion: Invalid value: must be an integer",
                    );
                }
                Some(Ok(n)) if n < st.compacted_rv => Plan::Expired(format!(
                    "too old resource version: {n} ({})",
                    st.compacted_rv + 1
                )),
                Some(Ok(n)) => Plan::Stream {
                    initial: st
                        .history
                        .iter()
                        .filter(|e| e.rv > n && matches(&e.group, &e.plural, &e.object))
                        .map(|e| event_line(e.kind.as_str(), &State::present(&rt, &e.object)))
                        .collect(),
                    brx: st.tx.subscribe(),
                    start_rv: st.rv,
                },
                None => {
                    // No (or "0") resourceVersion: synthetic ADDED for the current state.
                    let mut initial: Vec<Bytes> = st
                        .list_objects(&rt, namespace.as_deref(), &Selector::default())
                        .iter()
                        .filter(|o| matches(&rt.group, &rt.plural, o))
                        .map(|o| event_line("ADDED", o))
                        .collect();
                    if send_initial {
                        initial.push(bookmark(&rt, st.rv, true));
                    }
                    Plan::Stream {
                        initial,
                        brx: st.tx.subscribe(),
                        start_rv: st.rv,
                    }
                }
            }
        }
    };

    let task_rt = rt.clone();
    let mut away = cluster.shared.away.subscribe();
    cluster.shared.handle.spawn(async move {
        if *away.borrow_and_update() {
            return;
        }
        match plan {
            Plan::Hold => {
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => {}
                    _ = tx.closed() => {}
                }
            }
            Plan::Expired(message) => {
                let _ = tx.send(event_line("ERROR", &status_body(410, "Expired", &message))).await;
            }
            Plan::Stream { initial, mut brx, start_rv } => {
                for line in initial {
                    if tx.send(line).await.is_err() {
                        return;
                    }
                }
                let mut last_rv = start_rv;
                if bookmarks && tx.send(bookmark(&task_rt, last_rv, false)).await.is_err() {
                    return;
                }
                let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + bookmark_every, bookmark_every);
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep_until(deadline) => break,
                        _ = tx.closed() => break,
                        changed = away.changed() => if changed.is_err() || *away.borrow() { break },
                        _ = tick.tick(), if bookmarks => {
                            if tx.send(bookmark(&task_rt, last_rv, false)).await.is_err() {
                                break;
                            }
                        }
                        ev = brx.recv() => match ev {
                            Ok(ev) => {
                                if ev.rv <= start_rv {
                                    continue;
                                }
                                last_rv = last_rv.max(ev.rv);
                                if matches(&ev.group, &ev.plural, &ev.object) {
                                    let line = event_line(ev.kind.as_str(), &State::present(&task_rt, &ev.object));
                                    if tx.send(line).await.is_err() {
                                        break;
                                    }
                                }
                            }
                            // A watcher too slow to keep up is ended; the client re-watches.
                            Err(_) => break,
                        },
                    }
                }
            }
        }
    });

    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    let mut resp = Response::new(StreamBody::new(stream).boxed());
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn version_doc(cluster: &Cluster) -> Value {
    let git = &cluster.shared.options.git_version;
    let trimmed = git.trim_start_matches('v');
    let mut parts = trimmed.split('.');
    let major = parts.next().unwrap_or("1");
    let minor = parts.next().unwrap_or("0");
    json!({
        "major": major,
        "minor": minor,
        "gitVersion": git,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn group_versions(types: &[ResourceType], group: &str) -> Vec<String> {
    let mut versions: Vec<String> = Vec::new();
    for t in types.iter().filter(|t| t.group == group) {
        if !versions.contains(&t.version) {
            versions.push(t.version.clone());
        }
    }
    versions.sort_by(|a, b| compare_versions(a, b));
    versions
}

fn api_group(types: &[ResourceType], group: &str) -> Option<Value> {
    let versions = group_versions(types, group);
    let preferred = versions.first()?;
    let gv = |v: &str| json!({"groupVersion": format!("{group}/{v}"), "version": v});
    Some(json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": versions.iter().map(|v| gv(v)).collect::<Vec<_>>(),
        "preferredVersion": gv(preferred),
    }))
}

/// `APIGroupDiscoveryList` (apidiscovery.k8s.io/v2): every group, its versions in order of
/// preference and each version's resources with their kinds.
fn aggregated_discovery(types: &[ResourceType]) -> Value {
    let items: Vec<Value> = named_groups(types)
        .iter()
        .map(|group| {
            let versions: Vec<Value> = group_versions(types, group)
                .iter()
                .map(|version| {
                    let resources: Vec<Value> = types
                        .iter()
                        .filter(|t| t.group == *group && t.version == *version)
                        .map(|t| {
                            json!({
                                "resource": t.plural,
                                "responseKind": {"group": group, "version": version, "kind": t.kind},
                                "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
                                "singularResource": t.singular(),
                                "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                            })
                        })
                        .collect();
                    json!({"version": version, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": group}, "versions": versions})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "items": items})
}

/// The named (non-core) groups of `types`, in registration order.
fn named_groups(types: &[ResourceType]) -> Vec<&str> {
    let mut groups: Vec<&str> = Vec::new();
    for t in types.iter().filter(|t| !t.group.is_empty()) {
        if !groups.contains(&t.group.as_str()) {
            groups.push(&t.group);
        }
    }
    groups
}

fn api_group_list(types: &[ResourceType]) -> Value {
    let docs: Vec<Value> = named_groups(types)
        .iter()
        .filter_map(|g| api_group(types, g))
        .map(|mut g| {
            if let Value::Object(m) = &mut g {
                m.remove("kind");
                m.remove("apiVersion");
            }
            g
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": docs})
}

fn resource_list(types: &[ResourceType], group: &str, version: &str) -> Option<Value> {
    let matching: Vec<&ResourceType> = types
        .iter()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    if matching.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let mut resources = Vec::new();
    for t in matching {
        resources.push(json!({
            "name": t.plural,
            "singularName": t.singular(),
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        }));
        if t.status_subresource {
            resources.push(json!({
                "name": format!("{}/status", t.plural),
                "singularName": "",
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = parse_query("labelSelector=app%3Dweb%2Ctier+in+(a)&watch=true&x");
        assert_eq!(q["labelSelector"], "app=web,tier in (a)");
        assert_eq!(q["watch"], "true");
        assert_eq!(q["x"], "");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
