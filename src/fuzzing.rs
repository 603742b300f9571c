//! Entry points for the fuzz targets in `fuzz/` and the property tests (testing.md
//! "Robustness"). Each runs one parser on arbitrary bytes and checks what must hold whatever the
//! input: the parser returns (no panic, no hang), stays within the budgets it documents, and what
//! it accepts is consistent. A broken rule panics, which is how a fuzzer reports a finding.
//!
//! Not an API: hidden from the docs, and nothing but `fuzz/` and the tests calls it. No function
//! here reads a file, runs a program or touches the network.

use std::path::Path;

use crate::config::{self, FlagOverrides};
use crate::registry::challenge::parse_challenges;
use crate::registry::docker_config;
use crate::resolve::{
    self, OciRef, RegistrySpec, ResolveInputs, parse_oci_ref, parse_registry,
    redact_registry_string, sanitise, source_basename,
};
use crate::yaml::{self, Limits, Node, StreamError, Value, YamlError};

/// The YAML validator under its real limits ([`Limits::DEFAULT`]): on text, and on bytes read
/// the way it reads files.
pub fn yaml(data: &[u8]) {
    let streamed = yaml_stream_within(data, Limits::DEFAULT);
    if let Ok(source) = std::str::from_utf8(data) {
        let parsed = yaml_within(source, Limits::DEFAULT);
        // For text both ways are one parser: the same documents, or the same error.
        let streamed = streamed.map_err(|error| match error {
            StreamError::Yaml(error) => Some(error),
            StreamError::InvalidUtf8(_) | StreamError::Read(..) => None,
        });
        assert_eq!(parsed.map_err(Some), streamed, "text and stream disagree");
    }
}

/// Parse `data` as the validator parses a file, decoded as it is read a few bytes at a time (so
/// characters straddle reads), under `limits`, with the checks of [`yaml_within`].
pub fn yaml_stream_within(data: &[u8], limits: Limits) -> Result<usize, StreamError> {
    let source = String::from_utf8_lossy(data);
    let reader = std::io::BufReader::with_capacity(7, data);
    let mut documents = 0;
    let parsed = yaml::parse_from_within(reader, limits, |document| {
        documents += 1;
        check_document(&document, &source, limits);
    });
    match &parsed {
        Err(StreamError::Yaml(error)) => check_position(error.pos, &source),
        Err(StreamError::InvalidUtf8(pos) | StreamError::Read(pos, _)) => {
            check_position(*pos, &source);
        }
        Ok(()) => {}
    }
    parsed.map(|()| documents)
}

/// Parse `source` under `limits` and check every document handed over, and the error, against
/// them. Returns the number of documents, or the error.
pub fn yaml_within(source: &str, limits: Limits) -> Result<usize, YamlError> {
    let mut documents = 0;
    let parsed = yaml::parse_within(source, limits, |document| {
        documents += 1;
        check_document(&document, source, limits);
    });
    if let Err(error) = &parsed {
        check_position(error.pos, source);
    }
    parsed.map(|()| documents)
}

/// What one document's tree may cost: the limits, and text no longer than the source plus what
/// aliases may copy.
fn check_document(document: &Node, source: &str, limits: Limits) {
    let size = TreeSize::of(document);
    assert!(
        size.nodes <= limits.document_nodes,
        "{} nodes built, the limit is {}",
        size.nodes,
        limits.document_nodes
    );
    assert!(
        size.depth <= limits.depth,
        "collections nested {} deep, the limit is {}",
        size.depth,
        limits.depth
    );
    assert!(
        size.text_bytes <= source.len() + limits.alias_bytes,
        "{} bytes of scalar text from {} bytes of source",
        size.text_bytes,
        source.len()
    );
    check_position(document.pos, source);
}

/// A position is 1-based and inside the text (or just past its last line).
fn check_position(pos: yaml::Pos, source: &str) {
    // YAML breaks lines at `\n`, `\r\n` and a lone `\r`.
    let lines = source.replace("\r\n", "\n").matches(['\n', '\r']).count() + 1;
    assert!(
        pos.line >= 1 && pos.column >= 1 && pos.line <= lines,
        "position {pos} outside a text of {lines} lines"
    );
}

/// Nodes (aliases expanded), nesting of collections and bytes of scalar text of a tree.
#[derive(Debug, Default, Clone, Copy)]
struct TreeSize {
    nodes: usize,
    depth: usize,
    text_bytes: usize,
}

impl TreeSize {
    fn of(node: &Node) -> TreeSize {
        // An explicit stack: the tree is as deep as the depth limit allows.
        let mut size = TreeSize::default();
        let mut pending = vec![(node, 0)];
        while let Some((node, depth)) = pending.pop() {
            size.nodes += 1;
            match &node.value {
                Value::Null => {}
                Value::Scalar(scalar) => size.text_bytes += scalar.text.len(),
                Value::Sequence(items) => {
                    size.depth = size.depth.max(depth + 1);
                    pending.extend(items.iter().map(|item| (item, depth + 1)));
                }
                Value::Mapping(entries) => {
                    size.depth = size.depth.max(depth + 1);
                    for (key, value) in entries {
                        pending.push((key, depth + 1));
                        pending.push((value, depth + 1));
                    }
                }
            }
        }
        size
    }
}

/// The OCI reference and registry string parsers, and the resolver over what they accept: a
/// reference prints as itself, and every push target is a reference that parses.
pub fn oci_reference(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let reference = parse_oci_ref(text).ok();
    if let Some(reference) = &reference {
        let printed = reference.to_string();
        assert_eq!(
            parse_oci_ref(&printed).as_ref(),
            Ok(reference),
            "{printed} does not parse back"
        );
    }
    let registry = parse_registry(text).ok().flatten();
    if let Some(registry) = registry.as_ref().filter(|spec| spec.password.is_none()) {
        // Display redacts a password, so only a string without one prints as itself.
        let printed = registry.to_string();
        assert_eq!(
            parse_registry(&printed).ok().flatten().as_ref(),
            Some(registry),
            "{printed} does not parse back"
        );
    }
    let _ = redact_registry_string(text);
    check_repository_name(&sanitise(text));
    check_repository_name(&sanitise(&source_basename(
        text,
        Path::new("/nonexistent-ksail-fuzz/base"),
    )));
    check_resolution(text, reference, registry);
}

/// A sanitised name is one valid repository path component of at most 63 bytes.
fn check_repository_name(name: &str) {
    assert!(name.len() <= 63, "{name:?} is longer than 63 bytes");
    let reference = format!("oci://fuzz.example/{name}");
    assert!(
        parse_oci_ref(&reference).is_ok(),
        "{name:?} is not a repository name"
    );
}

fn check_resolution(text: &str, reference: Option<OciRef>, registry: Option<RegistrySpec>) {
    let tag = resolve::validate_tag(text)
        .is_ok()
        .then(|| text.to_string());
    let inputs = ResolveInputs {
        oci_ref: reference,
        push_registry: registry.clone(),
        cfg_registry: registry,
        workload_tag: tag,
        push_source: text.to_string(),
        push_source_base: "/nonexistent-ksail-fuzz/push".into(),
        sync_source: text.to_string(),
        sync_source_base: "/nonexistent-ksail-fuzz/sync".into(),
        cluster: Some("fuzz".to_string()),
        gitops_engine_enabled: true,
        ..ResolveInputs::default()
    };
    let resolution = resolve::resolve(&inputs);
    let urls = resolution
        .push
        .iter()
        .map(|push| &push.url)
        .chain(resolution.sync.iter().map(|sync| &sync.host_ref));
    for url in urls {
        assert!(parse_oci_ref(url).is_ok(), "resolved {url} does not parse");
    }
}

/// The `ksail.yaml` loader and the effective settings built from what it accepts, with a fixed
/// environment.
pub fn ksail_config(data: &[u8]) {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let env = |name: &str| match name {
        "HOME" => Some("/home/fuzz".to_string()),
        "TAG" => Some("v1".to_string()),
        "EMPTY" => Some(String::new()),
        _ => None,
    };
    let Ok(loaded) = config::parse_source(source, "ksail.yaml", &env) else {
        return;
    };
    let effective = config::effective(
        Some(&loaded),
        &env,
        &FlagOverrides::default(),
        Path::new("/nonexistent-ksail-fuzz"),
    );
    if let Ok(Some(registry)) = effective.map(|effective| effective.registry) {
        let _ = parse_registry(&registry.value);
    }
}

/// The docker `config.json` reader, for a Docker Hub host, another host and a local one. No
/// credential helper can be found, so none runs.
pub fn docker_config(data: &[u8]) {
    for host in ["docker.io", "ghcr.io", "localhost:5050"] {
        let _ = docker_config::lookup_in(data, Path::new("config.json"), host, "");
    }
}

/// The `WWW-Authenticate` parser: schemes and parameter names come out non-empty and lower-case.
pub fn www_authenticate(data: &[u8]) {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    for challenge in parse_challenges(header) {
        let lower = |name: &str| !name.is_empty() && name == name.to_ascii_lowercase();
        assert!(lower(&challenge.scheme), "scheme {:?}", challenge.scheme);
        for name in challenge.params.keys() {
            assert!(lower(name), "parameter name {name:?}");
        }
    }
}
