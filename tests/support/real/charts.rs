//! Helm charts as OCI artifacts, the way `helm push` stores them (Helm's OCI media types), pushed
//! with the support code's own HTTP client.

use std::io::Write as _;

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::support::http;

pub const CHART_CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.helm.config.v1+json";
pub const CHART_LAYER_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

/// The `.tgz` of chart `name` at `version` with `templates` (`(file name, text)`).
pub fn package(name: &str, version: &str, templates: &[(&str, &str)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let chart_yaml =
        format!("apiVersion: v2\nname: {name}\nversion: {version}\ntype: application\n");
    let mut files = vec![(format!("{name}/Chart.yaml"), chart_yaml)];
    for (file, text) in templates {
        files.push((format!("{name}/templates/{file}"), text.to_string()));
    }
    for (path, text) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, &path, text.as_bytes())
            .expect("append to an in-memory tar");
    }
    let tar = tar.into_inner().expect("finish an in-memory tar");
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&tar).expect("gzip in memory");
    gz.finish().expect("gzip in memory")
}

/// Pushes chart `name:version` to `host/repo:version`; returns the manifest digest.
pub fn push(
    host: &str,
    repo: &str,
    name: &str,
    version: &str,
    templates: &[(&str, &str)],
) -> String {
    let config = serde_json::json!({"apiVersion": "v2", "name": name, "version": version, "type": "application"})
        .to_string();
    let chart = package(name, version, templates);
    let config_digest = http::upload_blob(host, repo, config.as_bytes(), None);
    let layer_digest = http::upload_blob(host, repo, &chart, None);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": CHART_CONFIG_MEDIA_TYPE, "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": CHART_LAYER_MEDIA_TYPE, "digest": layer_digest, "size": chart.len()}],
    });
    let bytes = serde_json::to_vec(&manifest).expect("manifest serialises");
    http::put_manifest(host, repo, version, &bytes, None)
}
