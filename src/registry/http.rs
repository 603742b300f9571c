//! The HTTP client settings of every request ksail sends outside the API server — registry
//! requests and the engine manifest download of `cluster create`: the user agent, the connect
//! timeout, at most [`MAX_REDIRECTS`] redirect hops, no HTTPS → HTTP downgrade, DNS failures as a
//! typed [`DnsError`], and the proxy variables (loopback never proxied). Failures are
//! [`RegistryError`]s, classified by type for the shared retry policy.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::error::{
    DnsError, MAX_REDIRECTS, RedirectLimitExceeded, RegistryError, RegistryErrorKind, status_kind,
};

pub const USER_AGENT: &str = concat!("ksail/", env!("CARGO_PKG_VERSION"));
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Always excluded from proxying, whatever `NO_PROXY` says.
pub const LOOPBACK_NO_PROXY: &str = "localhost,.localhost,127.0.0.0/8,::1";
/// The whole engine manifest download (a few MB from GitHub).
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// A client builder with ksail's settings; `plain_http` allows `http://` (never a fallback),
/// `env` reads the proxy variables. The error names the variable that is wrong.
pub fn client_builder(
    plain_http: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<reqwest::ClientBuilder, String> {
    let redirects = reqwest::redirect::Policy::custom(|attempt| {
        // `previous` starts with the original URL, so it holds hops + 1 entries.
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(RedirectLimitExceeded)
        } else {
            attempt.follow()
        }
    });
    let mut builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(redirects)
        .referer(false)
        // Also refuses a redirect from HTTPS to HTTP: no downgrade, ever.
        .https_only(!plain_http)
        .dns_resolver(Arc::new(TypedResolver))
        .no_proxy();
    for proxy in proxies_from_env(env)? {
        builder = builder.proxy(proxy);
    }
    Ok(builder)
}

/// `GET url` as text, with ksail's client settings (plain HTTP only for an `http://` URL, and no
/// redirect from HTTPS to it). A status other than 2xx is a
/// [`RegistryErrorKind::Status`] (so 404 is final and 5xx retryable), a transport failure is
/// classified by type (a TLS failure is final).
pub async fn get_text(
    url: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, RegistryError> {
    let request = format!("GET {url}");
    let client = client_builder(url.starts_with("http://"), env)
        .and_then(|builder| {
            builder
                .timeout(DOWNLOAD_TIMEOUT)
                .build()
                .map_err(|error| format!("cannot build the HTTP client: {error}"))
        })
        .map_err(|detail| RegistryError::new(RegistryErrorKind::Other { detail }, &request))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|error| RegistryError::from_transport(&request, error))?;
    let status = response.status();
    if !status.is_success() {
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                super::error::parse_retry_after(value, time::OffsetDateTime::now_utc())
            });
        return Err(RegistryError::new(
            status_kind(status.as_u16(), &[], retry_after, &[]),
            &request,
        ));
    }
    response
        .text()
        .await
        .map_err(|error| RegistryError::from_transport(&request, error))
}

/// Proxies from `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` (upper or lower case), each excluding
/// `NO_PROXY` plus loopback.
pub(super) fn proxies_from_env(
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<reqwest::Proxy>, String> {
    let first = |names: &[&str]| {
        names
            .iter()
            .find_map(|name| env(name).filter(|value| !value.trim().is_empty()))
    };
    let all = first(&["ALL_PROXY", "all_proxy"]);
    let http = first(&["HTTP_PROXY", "http_proxy"]).or_else(|| all.clone());
    let https = first(&["HTTPS_PROXY", "https_proxy"]).or(all);
    let no_proxy = no_proxy_list(first(&["NO_PROXY", "no_proxy"]).as_deref());
    let mut proxies = Vec::new();
    // The messages name the variable only: a proxy URL may carry a password.
    if let Some(url) = http {
        let proxy = reqwest::Proxy::http(url.trim())
            .map_err(|_| "HTTP_PROXY is not a valid proxy URL".to_string())?;
        proxies.push(proxy.no_proxy(reqwest::NoProxy::from_string(&no_proxy)));
    }
    if let Some(url) = https {
        let proxy = reqwest::Proxy::https(url.trim())
            .map_err(|_| "HTTPS_PROXY is not a valid proxy URL".to_string())?;
        proxies.push(proxy.no_proxy(reqwest::NoProxy::from_string(&no_proxy)));
    }
    Ok(proxies)
}

/// The user's `NO_PROXY` plus loopback, which is never proxied.
pub(super) fn no_proxy_list(user: Option<&str>) -> String {
    match user.map(str::trim).filter(|list| !list.is_empty()) {
        Some(list) => format!("{list},{LOOPBACK_NO_PROXY}"),
        None => LOOPBACK_NO_PROXY.to_string(),
    }
}

/// Unsized directly: `Box<DnsError>.into()` would box twice and hide the type from downcasts.
type DnsFailure = Box<dyn std::error::Error + Send + Sync>;

/// The system resolver, returning [`DnsError`] so that DNS failures are classified by type.
struct TypedResolver;

impl reqwest::dns::Resolve for TypedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let lookup = tokio::net::lookup_host((host.clone(), 0)).await;
            match lookup {
                Ok(addresses) => {
                    let addresses: Vec<SocketAddr> = addresses.collect();
                    if addresses.is_empty() {
                        let error: DnsFailure = Box::new(DnsError { host, source: None });
                        return Err(error);
                    }
                    Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
                }
                Err(error) => {
                    let error: DnsFailure = Box::new(DnsError {
                        host,
                        source: Some(error),
                    });
                    Err(error)
                }
            }
        })
    }
}
