//! An in-process fake Kubernetes API server for ksail's integration tests.
//!
//! It speaks enough of the real REST protocol (discovery, CRUD, patches, server-side apply,
//! watches, status subresources, `kind: Status` errors) for the real `kube` client and the real
//! `ksail` binary to work against it through a kubeconfig. Controller behaviour (Flux, Argo CD,
//! workloads) comes from opt-in [`simulators`]. Faults are injected per route and verb.
//!
//! The server runs on its own tokio runtime in a background thread, so both sync and async tests
//! can use it; every method here is synchronous and cheap.

mod cluster;
mod faults;
pub mod fixtures;
mod patch;
mod select;
mod server;
pub mod simulators;
mod store;
mod types;
mod util;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::Value;

pub use cluster::{Cluster, Simulator};
pub use faults::{FaultAction, FaultRule, Route, Verb};
pub use patch::{json_patch, merge_patch};
pub use store::{EventKind, WriteEvent};
pub use types::ResourceType;
pub use util::{now_rfc3339, rfc3339_offset};

/// Start-up options. `Default` serves the built-in core types only.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Also serve the Flux types (see [`FakeApiServer::register_flux`]).
    pub flux: bool,
    /// Serve them as Flux 2.5 does (see [`types::flux_2_5_types`]) instead of Flux 2.9.
    pub flux_2_5: bool,
    /// Also serve the Argo CD Application type.
    pub argocd: bool,
    /// Watch events retained for resuming watches; older resourceVersions get `410 Expired`.
    pub history_window: usize,
    /// How often a watch with `allowWatchBookmarks=true` gets a BOOKMARK.
    pub bookmark_interval_ms: u64,
    /// Watch length when the client sends no `timeoutSeconds`.
    pub default_watch_timeout_ms: u64,
    /// What `/version` reports.
    pub git_version: String,
    /// Answer `GET /apis` with an aggregated discovery document (apidiscovery.k8s.io/v2) when
    /// the client asks for one, as kube-apiserver does since 1.30; `false` plays an older server,
    /// which answers with the legacy `APIGroupList`.
    pub aggregated_discovery: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            flux: false,
            flux_2_5: false,
            argocd: false,
            history_window: 10_000,
            bookmark_interval_ms: 2_000,
            default_watch_timeout_ms: 1_800_000,
            git_version: "v1.33.1".to_string(),
            aggregated_discovery: true,
        }
    }
}

impl ServerOptions {
    pub fn flux() -> Self {
        Self {
            flux: true,
            ..Self::default()
        }
    }
    /// Flux as release 2.5 serves its APIs: OCIRepository only at source v1beta2.
    pub fn flux_2_5() -> Self {
        Self {
            flux: true,
            flux_2_5: true,
            ..Self::default()
        }
    }
    pub fn argocd() -> Self {
        Self {
            argocd: true,
            ..Self::default()
        }
    }
}

/// One request as the server received it.
#[derive(Clone, Debug)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    /// The raw query string (still percent-encoded), empty when absent.
    pub query: String,
    pub content_type: Option<String>,
    pub body: String,
    pub at: Instant,
}

impl LoggedRequest {
    /// A decoded query parameter.
    pub fn query_param(&self, key: &str) -> Option<String> {
        self.query.split('&').find_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (server::percent_decode(k) == key).then(|| server::percent_decode(v))
        })
    }
    pub fn is_watch(&self) -> bool {
        self.method == "GET" && matches!(self.query_param("watch").as_deref(), Some("true" | "1"))
    }
    /// POST, PUT, PATCH or DELETE.
    pub fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
    }
    /// A GET of a collection that is not a watch (a LIST), judged from the path shape.
    pub fn is_list(&self) -> bool {
        self.method == "GET" && !self.is_watch() && self.query_param("watch").is_none() && {
            let segs: Vec<&str> = self.path.trim_matches('/').split('/').collect();
            let rest = match segs.first() {
                Some(&"api") => segs.get(2..),
                Some(&"apis") => segs.get(3..),
                _ => None,
            };
            match rest {
                Some(r) if r.first() == Some(&"namespaces") && r.len() == 3 => true,
                Some(r) => r.len() == 1,
                None => false,
            }
        }
    }
    pub fn body_json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }
}

/// A server-side apply the server received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplyRecord {
    pub group: String,
    pub resource: String,
    pub namespace: String,
    pub name: String,
    pub field_manager: String,
    pub force: bool,
    /// The object did not exist before.
    pub created: bool,
}

/// The running server. Dropping it stops the server.
pub struct FakeApiServer {
    cluster: Cluster,
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FakeApiServer {
    /// Binds `127.0.0.1:0` and starts serving on a background runtime.
    ///
    /// # Panics
    /// When the loopback socket or the runtime cannot be created (the test cannot run anyway).
    pub fn start(options: ServerOptions) -> Self {
        let std_listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("fake apiserver: bind 127.0.0.1:0");
        std_listener
            .set_nonblocking(true)
            .expect("fake apiserver: set_nonblocking");
        let addr = std_listener
            .local_addr()
            .expect("fake apiserver: local_addr");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fake-apiserver")
            .enable_all()
            .build()
            .expect("fake apiserver: tokio runtime");
        let (flux, flux_2_5, argocd) = (options.flux, options.flux_2_5, options.argocd);
        let shared = Arc::new(cluster::Shared {
            state: Mutex::new(store::State::new(Vec::new(), options.history_window)),
            sims: Mutex::new(Vec::new()),
            handle: runtime.handle().clone(),
            options,
            addr,
            away: tokio::sync::watch::Sender::new(false),
        });
        let cluster = Cluster { shared };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let serve_cluster = cluster.clone();
        // The runtime lives (and is dropped) on its own thread, so dropping the server inside an
        // async test never drops a runtime from within another runtime.
        std::thread::Builder::new()
            .name("fake-apiserver".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(std_listener)
                        .expect("fake apiserver: tokio listener");
                    tokio::select! {
                        _ = server::serve(listener, serve_cluster) => {}
                        _ = rx => {}
                    }
                });
                runtime.shutdown_background();
            })
            .expect("fake apiserver: thread");
        let server = Self {
            cluster,
            addr,
            shutdown: Some(tx),
        };
        for t in types::builtin_types() {
            server.register_type(t);
        }
        if flux_2_5 {
            server.register_types_as_crds(types::flux_2_5_types());
        } else if flux {
            server.register_flux();
        }
        if argocd {
            server.register_argocd();
        }
        server
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Direct storage access (what simulators use).
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Writes a kubeconfig with one cluster pointing here, one user and the named contexts (the
    /// first is current). With a token, the server then requires `Authorization: Bearer <token>`.
    pub fn write_kubeconfig(
        &self,
        path: &Path,
        contexts: &[&str],
        token: Option<&str>,
    ) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml(contexts, token))?;
        self.cluster.lock().token = token.map(str::to_string);
        Ok(())
    }

    /// The kubeconfig text [`write_kubeconfig`](Self::write_kubeconfig) writes (no side effects).
    pub fn kubeconfig_yaml(&self, contexts: &[&str], token: Option<&str>) -> String {
        let mut out = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\nusers:\n- name: fake-user\n  user:",
            self.url()
        );
        match token {
            Some(t) => out.push_str(&format!("\n    token: {}\n", serde_json::Value::from(t))),
            None => out.push_str(" {}\n"),
        }
        out.push_str("contexts:\n");
        for c in contexts {
            out.push_str(&format!(
                "- name: {c}\n  context:\n    cluster: fake\n    user: fake-user\n"
            ));
        }
        if let Some(first) = contexts.first() {
            out.push_str(&format!("current-context: {first}\n"));
        }
        out
    }

    /// Serves a type directly (no CRD object), for example a built-in type.
    pub fn register_type(&self, rt: ResourceType) {
        self.cluster.lock().register(rt);
    }

    /// Serves a custom resource type and stores its (already `Established`) CRD object. Calling
    /// it again for another version of the same resource adds that version.
    pub fn register_crd(
        &self,
        group: &str,
        version: &str,
        kind: &str,
        plural: &str,
        namespaced: bool,
        has_status_subresource: bool,
    ) {
        let rt = ResourceType::new(
            group,
            version,
            kind,
            plural,
            namespaced,
            has_status_subresource,
        );
        let mut crd = store::crd_object(&rt);
        let crd_name = format!("{plural}.{group}");
        let mut st = self.cluster.lock();
        let crd_type = st
            .type_by_plural("apiextensions.k8s.io", "customresourcedefinitions")
            .expect("the CRD type is built in");
        if let Some(existing) = st.get(&crd_type, "", &crd_name) {
            let mut versions: Vec<Value> = existing
                .pointer("/spec/versions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            versions.retain(|v| v.get("name").and_then(Value::as_str) != Some(version));
            if let Some(Value::Array(new)) = crd.pointer("/spec/versions") {
                versions.extend(new.iter().cloned());
            }
            crd["spec"]["versions"] = Value::Array(versions);
        }
        st.register(rt);
        st.commit(&crd_type, "", &crd_name, Some(crd), false, true);
    }

    /// Serves the Flux types: Kustomization (kustomize v1), OCIRepository and GitRepository
    /// (source v1), HelmRelease (helm v2), FluxInstance (fluxcd.controlplane.io v1).
    pub fn register_flux(&self) {
        self.register_types_as_crds(types::flux_types());
    }

    fn register_types_as_crds(&self, types: Vec<ResourceType>) {
        for t in types {
            self.register_crd(
                &t.group,
                &t.version,
                &t.kind,
                &t.plural,
                t.namespaced,
                t.status_subresource,
            );
        }
    }

    /// Serves the Argo CD Application type (argoproj.io v1alpha1).
    pub fn register_argocd(&self) {
        self.register_types_as_crds(types::argocd_types());
    }

    /// Stores an object as given (status included; `metadata.generation` kept when set). The
    /// write reaches watchers but not simulators: it seeds state, it is not a client action.
    ///
    /// # Panics
    /// When the object's type is not served or it has no name (a broken test).
    pub fn put_object(&self, obj: Value) -> Value {
        let mut st = self.cluster.lock();
        let api_version = util::str_at(&obj, "/apiVersion").unwrap_or("").to_string();
        let kind = util::str_at(&obj, "/kind").unwrap_or("").to_string();
        let rt = st
            .type_for(&api_version, &kind)
            .unwrap_or_else(|| panic!("put_object: {api_version} {kind} is not served"));
        let (ns, name) = (
            util::namespace_of(&obj).to_string(),
            util::name_of(&obj).to_string(),
        );
        assert!(!name.is_empty(), "put_object: metadata.name is required");
        st.commit(&rt, &ns, &name, Some(obj), true, true)
            .map(|ev| ev.object)
            .unwrap_or(Value::Null)
    }

    /// Like [`put_object`](Self::put_object), but simulators see the write (as if a client
    /// created it).
    pub fn apply_object(&self, obj: Value) -> Result<Value, String> {
        self.cluster.apply(obj)
    }

    /// An object by group (empty for core), plural, namespace (empty for cluster-scoped), name.
    pub fn get_object(
        &self,
        group: &str,
        plural: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        self.cluster.get(group, plural, namespace, name)
    }

    /// Every object of a group/resource, in all namespaces.
    pub fn list_objects(&self, group: &str, plural: &str) -> Vec<Value> {
        self.cluster.list(group, plural)
    }

    pub fn delete_object(&self, group: &str, plural: &str, namespace: &str, name: &str) -> bool {
        self.cluster.delete(group, plural, namespace, name)
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.cluster.lock().rv
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.cluster.lock().log.clone()
    }

    pub fn clear_requests(&self) {
        self.cluster.lock().log.clear();
    }

    /// Server-side applies received so far (field manager and force recorded).
    pub fn applies(&self) -> Vec<ApplyRecord> {
        self.cluster.lock().applies.clone()
    }

    /// Adds a fault rule.
    pub fn add_fault(&self, rule: FaultRule) {
        self.cluster.lock().faults.push(rule);
    }

    pub fn clear_faults(&self) {
        let mut st = self.cluster.lock();
        st.faults.clear();
        st.unauthorized = false;
    }

    /// The next `k` matching requests get `status` (with a `kind: Status` body).
    pub fn fail_next(&self, route: Route, verb: Verb, status: u16, k: usize) {
        self.add_fault(FaultRule {
            route,
            verb,
            action: FaultAction::Status {
                code: status,
                retry_after: None,
            },
            remaining: Some(k),
        });
    }

    /// Like [`fail_next`](Self::fail_next), with a `Retry-After` header.
    pub fn fail_next_retry_after(
        &self,
        route: Route,
        verb: Verb,
        status: u16,
        k: usize,
        seconds: u32,
    ) {
        self.add_fault(FaultRule {
            route,
            verb,
            action: FaultAction::Status {
                code: status,
                retry_after: Some(seconds),
            },
            remaining: Some(k),
        });
    }

    /// Every matching request waits `ms` before it is handled.
    pub fn delay(&self, route: Route, verb: Verb, ms: u64) {
        self.add_fault(FaultRule {
            route,
            verb,
            action: FaultAction::Delay { ms },
            remaining: None,
        });
    }

    /// The next `k` matching requests have their connection closed without an answer.
    pub fn drop_connection(&self, route: Route, verb: Verb, k: usize) {
        self.add_fault(FaultRule {
            route,
            verb,
            action: FaultAction::Drop,
            remaining: Some(k),
        });
    }

    /// Plays an API server that went away: every open watch ends and every request from now on
    /// is dropped without an answer, until [`FakeApiServer::come_back`].
    pub fn go_away(&self) {
        self.add_fault(FaultRule {
            route: Route::Any,
            verb: Verb::Any,
            action: FaultAction::Drop,
            remaining: None,
        });
        self.cluster.shared.away.send_replace(true);
    }

    /// Ends [`FakeApiServer::go_away`]: requests are answered again (all faults are cleared).
    pub fn come_back(&self) {
        self.clear_faults();
        self.cluster.shared.away.send_replace(false);
    }

    /// Every watch stays open without events until its timeout.
    pub fn hold_watches(&self) {
        self.add_fault(FaultRule {
            route: Route::Any,
            verb: Verb::Watch,
            action: FaultAction::HoldWatch,
            remaining: None,
        });
    }

    /// Watches of a resource (plural or kind) are refused with `405`; lists still work.
    pub fn refuse_watches_405(&self, kind: &str) {
        self.add_fault(FaultRule {
            route: Route::resource(kind),
            verb: Verb::Watch,
            action: FaultAction::Status {
                code: 405,
                retry_after: None,
            },
            remaining: None,
        });
    }

    /// The next `k` matching watches get an `ERROR` event `410 Expired`.
    pub fn expire_next_watches(&self, route: Route, k: usize) {
        self.add_fault(FaultRule {
            route,
            verb: Verb::Watch,
            action: FaultAction::ExpireWatch,
            remaining: Some(k),
        });
    }

    /// Every request gets `401`.
    pub fn unauthorized_all(&self) {
        self.cluster.lock().unauthorized = true;
    }

    /// Retains only the last `n` watch events: a watch from an older resourceVersion gets `410`.
    /// `0` makes every resumed watch from before the latest write expire.
    pub fn set_history_window(&self, n: usize) {
        self.cluster.lock().set_history_window(n);
    }

    /// Adds a simulator (see [`simulators`]); pass a clone of the `Arc` the simulator's `new`
    /// returned and keep the original to script it and read what it recorded.
    pub fn add_simulator(&self, sim: impl Simulator) {
        self.cluster.add_simulator(Arc::new(sim));
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
