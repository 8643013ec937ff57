//! Key fetches for `claimgate eval --jwks URL`, with a maintained HTTP client (ureq with
//! rustls and the Mozilla root certificates): https:// for a real identity provider,
//! http:// for loopback test servers. Redirects are not followed, as the filter does not
//! follow them; the body is read up to the provider's size limit plus one byte, so an
//! oversized answer is refused by the same validation as the filter's.

use std::io::Read;
use std::time::Duration;

use crate::CliError;

/// What one GET returned.
pub struct Fetched {
    pub status: u16,
    pub cache_control: Option<String>,
    pub body: Vec<u8>,
}

pub fn get(url: &str, limit: usize) -> Result<Fetched, CliError> {
    let unavailable =
        |err: &dyn std::fmt::Display| CliError::Unavailable(format!("--jwks {url}: {err}"));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!("claimgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut response = agent
        .get(url)
        .header("accept", "application/json")
        .call()
        .map_err(|err| unavailable(&err))?;
    let status = response.status().as_u16();
    let cache_control = response
        .headers()
        .get("cache-control")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    response
        .body_mut()
        .as_reader()
        .take(u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut body)
        .map_err(|err| unavailable(&err))?;
    Ok(Fetched {
        status,
        cache_control,
        body,
    })
}
