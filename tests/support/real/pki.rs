//! The real tier's certificates, as envtest makes them: one CA; a serving certificate for the API
//! server (127.0.0.1, localhost, the in-cluster names); an admin client certificate in
//! `system:masters`; the service-account signing key (P-256: flux-operator runs in FIPS mode,
//! which allows it); and a certificate for the public registry the cluster network stands in for.

use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData as _, SanType,
};

/// File paths of everything [`write`] made.
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca_cert: PathBuf,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    pub admin_cert: PathBuf,
    pub admin_key: PathBuf,
    pub service_account_key: PathBuf,
    pub service_account_pub: PathBuf,
    /// A serving certificate for [`PUBLIC_HOSTS`], which the cluster network presents when it
    /// stands in for them.
    pub public_cert: PathBuf,
    pub public_key: PathBuf,
    /// The same certificate and its PKCS#8 key as DER, for the TLS server.
    pub public_cert_der: Vec<u8>,
    pub public_key_der: Vec<u8>,
}

/// Public hosts the cluster network stands in for over TLS (the components trust the tier's CA).
pub const PUBLIC_HOSTS: &[&str] = &["ghcr.io"];

fn name(common_name: &str, organization: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    if let Some(organization) = organization {
        dn.push(DnType::OrganizationName, organization);
    }
    dn
}

fn generate(what: &str) -> io::Result<KeyPair> {
    KeyPair::generate().map_err(|e| io::Error::other(format!("generate the {what} key: {e}")))
}

fn cert_error(what: &str) -> impl Fn(rcgen::Error) -> io::Error + '_ {
    move |e| io::Error::other(format!("make the {what} certificate: {e}"))
}

/// Writes the PKI into `dir`.
pub fn write(dir: &Path) -> io::Result<Pki> {
    fs::create_dir_all(dir)?;
    let ca_key = generate("CA")?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(cert_error("CA"))?;
    ca.distinguished_name = name("ksail-real-tier-ca", None);
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).map_err(cert_error("CA"))?;
    let issuer = Issuer::new(ca, ca_key);

    let serving_key = generate("API server")?;
    let mut serving = CertificateParams::new(vec![
        "localhost".to_string(),
        "kubernetes".to_string(),
        "kubernetes.default".to_string(),
        "kubernetes.default.svc".to_string(),
        "kubernetes.default.svc.cluster.local".to_string(),
    ])
    .map_err(cert_error("API server"))?;
    serving.distinguished_name = name("kube-apiserver", None);
    serving
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    serving
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))));
    serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let serving_cert = serving
        .signed_by(&serving_key, &issuer)
        .map_err(cert_error("API server"))?;

    let admin_key = generate("admin")?;
    let mut admin = CertificateParams::new(Vec::<String>::new()).map_err(cert_error("admin"))?;
    admin.distinguished_name = name("ksail-real-tier-admin", Some("system:masters"));
    admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let admin_cert = admin
        .signed_by(&admin_key, &issuer)
        .map_err(cert_error("admin"))?;

    let service_account = generate("service-account")?;

    let public_key = generate("public hosts")?;
    let mut public = CertificateParams::new(
        PUBLIC_HOSTS
            .iter()
            .map(|h| h.to_string())
            .collect::<Vec<_>>(),
    )
    .map_err(cert_error("public hosts"))?;
    public.distinguished_name = name(PUBLIC_HOSTS[0], None);
    public.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let public_cert = public
        .signed_by(&public_key, &issuer)
        .map_err(cert_error("public hosts"))?;

    let pki = Pki {
        ca_cert: dir.join("ca.crt"),
        serving_cert: dir.join("apiserver.crt"),
        serving_key: dir.join("apiserver.key"),
        admin_cert: dir.join("admin.crt"),
        admin_key: dir.join("admin.key"),
        service_account_key: dir.join("sa.key"),
        service_account_pub: dir.join("sa.pub"),
        public_cert: dir.join("public.crt"),
        public_key: dir.join("public.key"),
        public_cert_der: public_cert.der().to_vec(),
        public_key_der: public_key.serialize_der(),
    };
    let files: [(&PathBuf, &str, &[u8]); 9] = [
        (&pki.ca_cert, "CERTIFICATE", ca_cert.der()),
        (&pki.serving_cert, "CERTIFICATE", serving_cert.der()),
        (
            &pki.serving_key,
            "PRIVATE KEY",
            &serving_key.serialize_der(),
        ),
        (&pki.admin_cert, "CERTIFICATE", admin_cert.der()),
        (&pki.admin_key, "PRIVATE KEY", &admin_key.serialize_der()),
        (
            &pki.service_account_key,
            "PRIVATE KEY",
            &service_account.serialize_der(),
        ),
        (&pki.public_cert, "CERTIFICATE", public_cert.der()),
        (&pki.public_key, "PRIVATE KEY", &public_key.serialize_der()),
        (
            &pki.service_account_pub,
            "PUBLIC KEY",
            &service_account.subject_public_key_info(),
        ),
    ];
    for (path, label, der) in files {
        fs::write(path, pem(label, der))?;
    }
    Ok(pki)
}

/// PEM armour (RFC 7468) around DER bytes.
fn pem(label: &str, der: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        text.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

/// A kubeconfig (JSON, which every YAML reader takes) with context `context` for the admin.
pub fn kubeconfig(pki: &Pki, server: &str, context: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {
            "server": server,
            "certificate-authority": pki.ca_cert,
        }}],
        "users": [{"name": context, "user": {
            "client-certificate": pki.admin_cert,
            "client-key": pki.admin_key,
        }}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
        "current-context": context,
    })
}
