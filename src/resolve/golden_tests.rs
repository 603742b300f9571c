//! resolution.md "Golden table" (R01–R34) and "Golden error cases" (X01–X16), one table row per
//! ID. The harness plays the settings layer: it applies the GitOps registry default, the
//! `--registry` / `KSAIL_REGISTRY` / ksail.yaml chain and the cluster-name chain, then calls
//! [`resolve`] exactly as the commands do.

use std::path::Path;

use super::registry::validate_tag;
use super::*;
use crate::error::Failure;

const A70: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const A63: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const SECRET: &str = "s3cr3t";

#[derive(Clone, Copy, PartialEq)]
enum Engine {
    Flux,
    ArgoCD,
    None,
}

/// The inputs of one row; `DEFAULTS` are the table's stated defaults.
#[derive(Clone, Copy)]
struct Case {
    engine: Engine,
    distribution: &'static str,
    metadata_name: Option<&'static str>,
    /// Content of `kind.yaml` next to ksail.yaml.
    kind_yaml: Option<&'static str>,
    /// `spec.cluster.localRegistry.registry` as written in ksail.yaml (before expansion).
    registry: Option<&'static str>,
    registry_flag: Option<&'static str>,
    registry_env: Option<&'static str>,
    tag: Option<&'static str>,
    source_directory: Option<&'static str>,
    path_flag: Option<&'static str>,
    oci_ref: Option<&'static str>,
    /// Name of the directory holding ksail.yaml (which is also the current directory).
    project_dir: &'static str,
}

const DEFAULTS: Case = Case {
    engine: Engine::Flux,
    distribution: "Vanilla",
    metadata_name: None,
    kind_yaml: None,
    registry: None,
    registry_flag: None,
    registry_env: None,
    tag: None,
    source_directory: None,
    path_flag: None,
    oci_ref: None,
    project_dir: "project",
};

struct Expect {
    push_host: &'static str,
    push_repository: &'static str,
    push_tag: &'static str,
    push_url: &'static str,
    /// `None` is the table's "—" (no sync side).
    sync_url: Option<&'static str>,
    sync_tag: Option<&'static str>,
    warning: bool,
}

struct Row {
    id: &'static str,
    case: Case,
    expect: Expect,
}

/// What config loading does to a ksail.yaml registry value: `${GHCR_TOKEN}` with
/// `GHCR_TOKEN=s3cr3t` (R18).
fn expand_like_config(text: &str) -> String {
    text.replace("${GHCR_TOKEN}", SECRET)
}

fn parse(id: &str, text: Option<&str>) -> Option<RegistrySpec> {
    text.and_then(|text| parse_registry(text).unwrap_or_else(|e| panic!("{id}: {e}")))
}

fn inputs_for(id: &str, case: &Case, root: &Path) -> ResolveInputs {
    let project = root.join(case.project_dir);
    std::fs::create_dir_all(&project).expect("project dir");
    let kind_yaml = project.join("kind.yaml");
    if let Some(content) = case.kind_yaml {
        std::fs::write(&kind_yaml, content).expect("kind.yaml");
    }
    let engine_enabled = case.engine != Engine::None;
    let cfg_text = case
        .registry
        .map(expand_like_config)
        .or_else(|| engine_enabled.then(|| "localhost:5050".to_string()));
    let cfg_registry = parse(id, cfg_text.as_deref());
    let push_registry =
        parse(id, case.registry_flag.or(case.registry_env)).or(cfg_registry.clone());
    let cluster = cluster_name(
        None,
        None,
        case.metadata_name,
        case.distribution,
        Some(&kind_yaml),
    )
    .unwrap_or_else(|e| panic!("{id}: {e}"));
    let sync_source = case.source_directory.unwrap_or("k8s");
    // A flag path is relative to the current directory, which is the project directory here.
    let push_source = case.path_flag.unwrap_or(sync_source);
    ResolveInputs {
        oci_ref: case
            .oci_ref
            .map(|text| parse_oci_ref(text).unwrap_or_else(|e| panic!("{id}: {e}"))),
        push_registry,
        cfg_registry,
        workload_tag: case.tag.map(str::to_string),
        push_source: push_source.to_string(),
        push_source_base: project.clone(),
        sync_source: sync_source.to_string(),
        sync_source_base: project,
        cluster,
        gitops_engine_enabled: engine_enabled,
        insecure_flag: false,
        cfg_insecure: false,
    }
}

fn run(id: &str, case: &Case) -> (ResolveInputs, Resolution) {
    let root = tempfile::tempdir().expect("temp dir");
    let inputs = inputs_for(id, case, root.path());
    let resolution = resolve(&inputs);
    (inputs, resolution)
}

#[rustfmt::skip]
fn golden_rows() -> Vec<Row> {
    fn e(push_host: &'static str, push_repository: &'static str, push_tag: &'static str, push_url: &'static str, sync_url: Option<&'static str>, sync_tag: Option<&'static str>, warning: bool) -> Expect {
        Expect { push_host, push_repository, push_tag, push_url, sync_url, sync_tag, warning }
    }
    const W: bool = true;
    const NO_W: bool = false;
    let kind_k8s = Some("oci://kind-local-registry:5000/k8s");
    let dev = Some("dev");
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    vec![
        Row { id: "R01", case: DEFAULTS,
            expect: e("localhost:5050", "k8s", "dev", "oci://localhost:5050/k8s:dev", kind_k8s, dev, NO_W) },
        Row { id: "R02", case: Case { registry: Some("localhost:5050"), ..DEFAULTS },
            expect: e("localhost:5050", "k8s", "dev", "oci://localhost:5050/k8s:dev", kind_k8s, dev, NO_W) },
        Row { id: "R03", case: Case { registry: Some("localhost"), ..DEFAULTS },
            expect: e("localhost:5050", "k8s", "dev", "oci://localhost:5050/k8s:dev", kind_k8s, dev, NO_W) },
        Row { id: "R04", case: Case { registry: Some("127.0.0.1"), ..DEFAULTS },
            expect: e("127.0.0.1:5050", "k8s", "dev", "oci://127.0.0.1:5050/k8s:dev", kind_k8s, dev, NO_W) },
        Row { id: "R05", case: Case { registry: Some("[::1]"), ..DEFAULTS },
            expect: e("[::1]:5050", "k8s", "dev", "oci://[::1]:5050/k8s:dev", kind_k8s, dev, NO_W) },
        Row { id: "R06", case: Case { registry: Some("registry.localhost"), ..DEFAULTS },
            expect: e("registry.localhost:5050", "k8s", "dev", "oci://registry.localhost:5050/k8s:dev", kind_k8s, dev, NO_W) },
        Row { id: "R07", case: Case { registry: Some("localhost:6000/team/app"), ..DEFAULTS },
            expect: e("localhost:6000", "team/app", "dev", "oci://localhost:6000/team/app:dev", Some("oci://kind-local-registry:5000/team/app"), dev, NO_W) },
        Row { id: "R08", case: Case { registry: Some("localhost:5050/k8s:v2"), ..DEFAULTS },
            expect: e("localhost:5050", "k8s", "v2", "oci://localhost:5050/k8s:v2", kind_k8s, Some("v2"), NO_W) },
        Row { id: "R09", case: Case { tag: Some("v1.2.3"), ..DEFAULTS },
            expect: e("localhost:5050", "k8s", "v1.2.3", "oci://localhost:5050/k8s:v1.2.3", kind_k8s, Some("v1.2.3"), NO_W) },
        Row { id: "R10", case: Case { registry: Some("localhost:5050/app:v2"), tag: Some("v3"), ..DEFAULTS },
            expect: e("localhost:5050", "app", "v3", "oci://localhost:5050/app:v3", Some("oci://kind-local-registry:5000/app"), Some("v3"), NO_W) },
        Row { id: "R11", case: Case { oci_ref: Some("oci://localhost:5050/k8s:pr-7"), tag: Some("v1"), ..DEFAULTS },
            expect: e("localhost:5050", "k8s", "pr-7", "oci://localhost:5050/k8s:pr-7", kind_k8s, Some("v1"), W) },
        Row { id: "R12", case: Case { oci_ref: Some("oci://localhost:5050/k8s"), ..DEFAULTS },
            expect: e("localhost:5050", "k8s", "dev", "oci://localhost:5050/k8s:dev", kind_k8s, dev, NO_W) },
        Row { id: "R13", case: Case { oci_ref: Some("oci://localhost:5050/k8s"), tag: Some("v1"), ..DEFAULTS },
            expect: e("localhost:5050", "k8s", "v1", "oci://localhost:5050/k8s:v1", kind_k8s, Some("v1"), NO_W) },
        Row { id: "R14", case: Case { oci_ref: Some("oci://localhost/k8s:x"), ..DEFAULTS },
            expect: e("localhost:5050", "k8s", "x", "oci://localhost:5050/k8s:x", kind_k8s, dev, W) },
        Row { id: "R15", case: Case { engine: Engine::None, oci_ref: Some("oci://ghcr.io/acme/app:v1"), ..DEFAULTS },
            expect: e("ghcr.io", "acme/app", "v1", "oci://ghcr.io/acme/app:v1", None, None, NO_W) },
        Row { id: "R16", case: Case { registry: Some("ghcr.io/acme/manifests"), ..DEFAULTS },
            expect: e("ghcr.io", "acme/manifests", "dev", "oci://ghcr.io/acme/manifests:dev", Some("oci://ghcr.io/acme/manifests"), dev, NO_W) },
        Row { id: "R17", case: Case { registry: Some("ghcr.io/acme/manifests:stable"), ..DEFAULTS },
            expect: e("ghcr.io", "acme/manifests", "stable", "oci://ghcr.io/acme/manifests:stable", Some("oci://ghcr.io/acme/manifests"), Some("stable"), NO_W) },
        Row { id: "R18", case: Case { registry: Some("ci:${GHCR_TOKEN}@ghcr.io/acme/manifests"), ..DEFAULTS },
            expect: e("ghcr.io", "acme/manifests", "dev", "oci://ghcr.io/acme/manifests:dev", Some("oci://ghcr.io/acme/manifests"), dev, NO_W) },
        Row { id: "R19", case: Case { registry: Some("registry.example.com:8443/gitops/app"), ..DEFAULTS },
            expect: e("registry.example.com:8443", "gitops/app", "dev", "oci://registry.example.com:8443/gitops/app:dev", Some("oci://registry.example.com:8443/gitops/app"), dev, NO_W) },
        Row { id: "R20", case: Case { source_directory: Some("deploy/Prod Manifests"), ..DEFAULTS },
            expect: e("localhost:5050", "prod-manifests", "dev", "oci://localhost:5050/prod-manifests:dev", Some("oci://kind-local-registry:5000/prod-manifests"), dev, NO_W) },
        Row { id: "R21", case: Case { path_flag: Some("./clusters/dev/"), ..DEFAULTS },
            expect: e("localhost:5050", "dev", "dev", "oci://localhost:5050/dev:dev", kind_k8s, dev, W) },
        Row { id: "R22", case: Case { source_directory: Some("/srv/gitops/My_Workloads"), ..DEFAULTS },
            expect: e("localhost:5050", "my-workloads", "dev", "oci://localhost:5050/my-workloads:dev", Some("oci://kind-local-registry:5000/my-workloads"), dev, NO_W) },
        Row { id: "R23", case: Case { source_directory: Some("."), project_dir: "demo-app", ..DEFAULTS },
            expect: e("localhost:5050", "demo-app", "dev", "oci://localhost:5050/demo-app:dev", Some("oci://kind-local-registry:5000/demo-app"), dev, NO_W) },
        Row { id: "R24", case: Case { source_directory: Some("___"), ..DEFAULTS },
            expect: e("localhost:5050", "ksail-workloads-bda25155", "dev", "oci://localhost:5050/ksail-workloads-bda25155:dev", Some("oci://kind-local-registry:5000/ksail-workloads-bda25155"), dev, NO_W) },
        Row { id: "R25", case: Case { source_directory: Some(A70), ..DEFAULTS },
            expect: e("localhost:5050", A63, "dev", leak(format!("oci://localhost:5050/{A63}:dev")), Some(leak(format!("oci://kind-local-registry:5000/{A63}"))), dev, NO_W) },
        Row { id: "R26", case: Case { metadata_name: Some("dev"), distribution: "K3s", ..DEFAULTS },
            expect: e("localhost:5050", "k8s", "dev", "oci://localhost:5050/k8s:dev", Some("oci://dev-local-registry:5000/k8s"), dev, NO_W) },
        Row { id: "R27", case: Case { distribution: "K3s", ..DEFAULTS },
            expect: e("localhost:5050", "k8s", "dev", "oci://localhost:5050/k8s:dev", Some("oci://k3d-default-local-registry:5000/k8s"), dev, NO_W) },
        Row { id: "R28", case: Case { registry: Some("localhost:5050"), registry_flag: Some("localhost:5051/x"), ..DEFAULTS },
            expect: e("localhost:5051", "x", "dev", "oci://localhost:5051/x:dev", kind_k8s, dev, W) },
        Row { id: "R29", case: Case { registry_env: Some("127.0.0.1:5000"), ..DEFAULTS },
            expect: e("127.0.0.1:5000", "k8s", "dev", "oci://127.0.0.1:5000/k8s:dev", kind_k8s, dev, W) },
        Row { id: "R30", case: Case { registry: Some("localhost:5050/k8s:v2"), oci_ref: Some("oci://localhost:5050/k8s"), ..DEFAULTS },
            expect: e("localhost:5050", "k8s", "v2", "oci://localhost:5050/k8s:v2", kind_k8s, Some("v2"), NO_W) },
        Row { id: "R31", case: Case { kind_yaml: Some("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nname: playground\n"), ..DEFAULTS },
            expect: e("localhost:5050", "k8s", "dev", "oci://localhost:5050/k8s:dev", Some("oci://playground-local-registry:5000/k8s"), dev, NO_W) },
        Row { id: "R32", case: Case { registry: Some("localhost:5050/app"), registry_flag: Some("ghcr.io/acme/x:v9"), ..DEFAULTS },
            expect: e("ghcr.io", "acme/x", "v9", "oci://ghcr.io/acme/x:v9", Some("oci://kind-local-registry:5000/app"), dev, W) },
        Row { id: "R33", case: Case { registry_flag: Some("ghcr.io/acme/x:v9"), tag: Some("v1"), ..DEFAULTS },
            expect: e("ghcr.io", "acme/x", "v1", "oci://ghcr.io/acme/x:v1", kind_k8s, Some("v1"), W) },
        Row { id: "R34", case: Case { engine: Engine::ArgoCD, ..DEFAULTS },
            expect: e("localhost:5050", "k8s", "dev", "oci://localhost:5050/k8s:dev", kind_k8s, dev, NO_W) },
    ]
}

fn check_row(row: &Row) -> Result<(), String> {
    let (_, resolution) = run(row.id, &row.case);
    let expect = &row.expect;
    let push = resolution.push().map_err(|e| e.to_string())?;
    let actual = (
        push.host.as_str(),
        push.repository.as_str(),
        push.tag.as_str(),
        push.url.as_str(),
        resolution
            .sync
            .as_ref()
            .and_then(|sync| sync.url.as_deref()),
        resolution.sync.as_ref().map(|sync| sync.tag.as_str()),
        resolution.mismatch_warning.is_some(),
    );
    let wanted = (
        expect.push_host,
        expect.push_repository,
        expect.push_tag,
        expect.push_url,
        expect.sync_url,
        expect.sync_tag,
        expect.warning,
    );
    if actual != wanted {
        return Err(format!("\n  got  {actual:?}\n  want {wanted:?}"));
    }
    if let (Some(warning), Some(sync)) = (&resolution.mismatch_warning, &resolution.sync) {
        let text = format!(
            "pushing {}, but the cluster follows {}; the GitOps engine will not pick up this push",
            push.url, sync.host_ref
        );
        if *warning != text {
            return Err(format!("warning text {warning:?}"));
        }
    }
    Ok(())
}

#[test]
fn golden_table_r01_to_r34() {
    let rows = golden_rows();
    let ids: Vec<_> = rows.iter().map(|row| row.id).collect();
    let expected_ids: Vec<_> = (1..=34).map(|n| format!("R{n:02}")).collect();
    assert_eq!(ids, expected_ids, "one row per golden ID, in order");
    let failures: Vec<String> = rows
        .iter()
        .filter_map(|row| check_row(row).err().map(|why| format!("{}: {why}", row.id)))
        .collect();
    assert!(
        failures.is_empty(),
        "golden rows failed:\n{}",
        failures.join("\n")
    );
}

#[test]
fn r11_warning_text_is_exact() {
    let case = Case {
        oci_ref: Some("oci://localhost:5050/k8s:pr-7"),
        tag: Some("v1"),
        ..DEFAULTS
    };
    let (_, resolution) = run("R11", &case);
    assert_eq!(
        resolution.mismatch_warning.as_deref(),
        Some(
            "pushing oci://localhost:5050/k8s:pr-7, but the cluster follows oci://localhost:5050/k8s:v1; the GitOps engine will not pick up this push"
        )
    );
}

#[test]
fn r18_password_appears_in_no_output() {
    let row = golden_rows()
        .into_iter()
        .find(|row| row.id == "R18")
        .expect("R18 row");
    let (inputs, resolution) = run(row.id, &row.case);
    let cfg = inputs.cfg_registry.as_ref().expect("cfg registry");
    // The credential really is there, so the checks below are meaningful.
    assert_eq!(cfg.password.as_deref(), Some(SECRET));
    assert_eq!(cfg.user.as_deref(), Some("ci"));
    let push = resolution.push().expect("push target");
    let sync = resolution.sync.as_ref().expect("sync target");
    let outputs = [
        format!("{resolution:?}"),
        format!("{inputs:?}"),
        cfg.to_string(),
        format!("{cfg:?}"),
        push.url.clone(),
        push.host.clone(),
        sync.host_ref.clone(),
        sync.require_url().expect("url").to_string(),
        resolution.mismatch_warning.clone().unwrap_or_default(),
        redact_registry_string(&expand_like_config(row.case.registry.expect("registry"))),
    ];
    for output in outputs {
        assert!(
            !output.contains(SECRET),
            "R18 leaked the password: {output}"
        );
    }
    assert_eq!(cfg.to_string(), "ci:<redacted>@ghcr.io/acme/manifests");
    let urls = [&push.url, &push.host, &sync.host, &sync.host_ref];
    for url in urls.into_iter().chain(sync.url.as_ref()) {
        assert!(!url.contains('@'), "R18 shows credentials in a URL: {url}");
    }
}

enum Bad {
    Registry(&'static str),
    Tag(&'static str),
    Ref(&'static str),
}

struct ErrorRow {
    id: &'static str,
    input: Bad,
    phrase: &'static str,
    /// Text that must not appear (a credential in the input).
    hidden: Option<&'static str>,
}

#[rustfmt::skip]
fn error_rows() -> Vec<ErrorRow> {
    let row = |id, input, phrase| ErrorRow { id, input, phrase, hidden: None };
    vec![
        row("X01", Bad::Registry("localhost:0"), "invalid port \"0\""),
        row("X02", Bad::Registry("localhost:70000"), "invalid port \"70000\""),
        row("X03", Bad::Registry("localhost:abc"), "invalid port \"abc\""),
        row("X04", Bad::Registry("localhost:5050/Team/App"), "invalid repository \"Team/App\""),
        row("X05", Bad::Registry("localhost:5050//app"), "invalid repository"),
        row("X06", Bad::Registry("http://localhost:5050"), "a registry string has no scheme"),
        row("X07", Bad::Registry("ghcr.io/acme/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"), "a digest reference (…@sha256:…) names content, not a place to push to"),
        row("X08", Bad::Registry("::1:5050"), "IPv6 addresses must be in brackets"),
        ErrorRow { id: "X09", input: Bad::Registry(":tok@ghcr.io/x"), phrase: "password without a user", hidden: Some("tok") },
        row("X10", Bad::Tag("-bad"), "invalid tag \"-bad\""),
        row("X11", Bad::Ref("oci://localhost:5050"), "missing repository"),
        row("X12", Bad::Ref("docker://localhost:5050/k8s"), "must start with oci://"),
        row("X13", Bad::Ref("localhost:5050/k8s:dev"), "must start with oci://"),
        ErrorRow { id: "X14", input: Bad::Ref("oci://user:pw@ghcr.io/acme/app"), phrase: "credentials are not accepted in an OCI reference", hidden: Some("pw") },
        row("X15", Bad::Ref("oci://localhost:5050/k8s:"), "empty tag"),
    ]
}

#[test]
fn golden_error_cases_x01_to_x15() {
    let mut failures = Vec::new();
    for row in error_rows() {
        let error = match row.input {
            Bad::Registry(text) => parse_registry(text).err(),
            Bad::Tag(text) => validate_tag(text).err(),
            Bad::Ref(text) => parse_oci_ref(text).err(),
        };
        let Some(error) = error else {
            failures.push(format!("{}: accepted", row.id));
            continue;
        };
        let failure = error.into_failure("--registry");
        let message = failure.message;
        if failure.class != crate::error::FailureClass::Usage {
            failures.push(format!("{}: not a usage error", row.id));
        }
        if !message.contains(row.phrase) {
            failures.push(format!("{}: {message:?} lacks {:?}", row.id, row.phrase));
        }
        if let Some(hidden) = row.hidden
            && message.contains(hidden)
        {
            failures.push(format!("{}: {message:?} shows {hidden:?}", row.id));
        }
    }
    assert!(
        failures.is_empty(),
        "golden error cases failed:\n{}",
        failures.join("\n")
    );
}

#[test]
fn x16_push_without_any_registry_is_an_error() {
    let case = Case {
        engine: Engine::None,
        ..DEFAULTS
    };
    let (_, resolution) = run("X16", &case);
    assert!(resolution.sync.is_none());
    assert!(resolution.mismatch_warning.is_none());
    let error = resolution.push().expect_err("X16: push must fail");
    let failure: Failure = error.into();
    assert!(
        failure.message.contains("no registry configured"),
        "X16: {}",
        failure.message
    );
    assert_eq!(failure.class, crate::error::FailureClass::Usage);
}

#[test]
fn engine_none_never_warns() {
    let case = Case {
        engine: Engine::None,
        registry: Some("localhost:5050"),
        path_flag: Some("other"),
        ..DEFAULTS
    };
    let (_, resolution) = run("engine-none", &case);
    assert_ne!(
        resolution.push().expect("push").url,
        resolution.sync.as_ref().expect("sync").host_ref
    );
    assert!(resolution.mismatch_warning.is_none());
}

#[test]
fn passing_only_the_override_as_push_registry_is_equivalent() {
    for row in golden_rows() {
        let root = tempfile::tempdir().expect("temp dir");
        let mut inputs = inputs_for(row.id, &row.case, root.path());
        let full = resolve(&inputs);
        inputs.push_registry = parse(row.id, row.case.registry_flag.or(row.case.registry_env));
        // The same place to push to; only where the registry came from may differ.
        let place = |resolution: Resolution| Resolution {
            push: resolution.push.map(|push| PushTarget {
                configured: false,
                ..push
            }),
            ..resolution
        };
        assert_eq!(place(resolve(&inputs)), place(full), "{}", row.id);
    }
}

#[test]
fn local_sync_url_without_a_cluster_name_asks_for_metadata_name() {
    let case = Case {
        distribution: "KWOK",
        ..DEFAULTS
    };
    let (_, resolution) = run("no-cluster", &case);
    // Push does not need the in-cluster URL, so it still resolves.
    assert_eq!(
        resolution.push().expect("push").url,
        "oci://localhost:5050/k8s:dev"
    );
    let sync = resolution.sync.as_ref().expect("sync");
    assert_eq!(sync.url, None);
    assert_eq!(sync.host_ref, "oci://localhost:5050/k8s:dev");
    let error = sync.require_url().expect_err("needs a name");
    assert!(error.to_string().contains("set metadata.name"), "{error}");
}

#[test]
fn external_sync_url_needs_no_cluster_name() {
    let case = Case {
        distribution: "KWOK",
        registry: Some("ghcr.io/acme/app"),
        ..DEFAULTS
    };
    let (_, resolution) = run("external", &case);
    let sync = resolution.sync.as_ref().expect("sync");
    assert_eq!(sync.require_url().expect("url"), "oci://ghcr.io/acme/app");
    assert!(!sync.local);
}

/// artifact.md "Transport" rules 1–3.
#[test]
fn plain_http_only_for_loopback_or_explicit_opt_in() {
    let root = tempfile::tempdir().expect("temp dir");
    let external = Case {
        registry: Some("registry.example.com:5000/app"),
        ..DEFAULTS
    };
    let mut inputs = inputs_for("transport", &external, root.path());
    let push_plain = |inputs: &ResolveInputs| resolve(inputs).push().expect("push").plain_http;
    assert!(!push_plain(&inputs), "HTTPS by default");
    assert!(!resolve(&inputs).sync.expect("sync").plain_http);

    inputs.cfg_insecure = true;
    assert!(
        push_plain(&inputs),
        "rule 3: same host and port as cfg_registry"
    );
    assert!(resolve(&inputs).sync.expect("sync").plain_http);

    inputs.push_registry = parse("transport", Some("registry.example.com:5001/app"));
    assert!(
        !push_plain(&inputs),
        "rule 3 does not extend to another port"
    );
    inputs.insecure_flag = true;
    assert!(push_plain(&inputs), "rule 2: --insecure");

    let (_, local) = run("transport-local", &DEFAULTS);
    assert!(local.push().expect("push").plain_http, "rule 1: loopback");
    assert!(local.push().expect("push").local);
    assert!(local.sync.expect("sync").plain_http);

    let with_ref = Case {
        oci_ref: Some("oci://ghcr.io/acme/app:v1"),
        ..DEFAULTS
    };
    let (_, resolution) = run("transport-ref", &with_ref);
    assert!(!resolution.push().expect("push").plain_http);
}
