//! What `qft serve s3://BUCKET[/PREFIX]` is given: the URL parsed into an [`ObjectConfig`], the
//! reasons a store cannot be served ([`OpenError`]), and the one check on an endpoint's
//! address (plain `http://` only to this machine unless the user says otherwise).

use object_store::path::Path;

/// Where to serve from: an `s3://BUCKET[/PREFIX]` URL and how to reach it. Credentials and
/// region come from the standard AWS environment variables, never from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectConfig {
    /// The bucket.
    pub bucket: String,
    /// The key prefix served, without slashes at either end (`""`: the whole bucket).
    pub prefix: String,
    /// The S3 endpoint URL; `None`: `AWS_ENDPOINT_URL` or AWS itself.
    pub endpoint: Option<String>,
    /// Allow a plain `http://` endpoint that is not on loopback.
    pub allow_http: bool,
}

/// Why an object store could not be served.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Not an `s3://BUCKET[/PREFIX]` URL.
    #[error("'{0}' is not an s3://BUCKET[/PREFIX] URL")]
    BadUrl(String),
    /// Plain HTTP to a host that is not this machine.
    #[error(
        "the S3 endpoint {0} is plain http:// and not on loopback; use https://, or \
         --s3-allow-http if the network is trusted"
    )]
    PlainHttp(String),
    /// The client could not be configured (a bad endpoint URL, region...).
    #[error("cannot configure S3: {0}")]
    Config(#[source] object_store::Error),
    /// The bucket did not answer a listing.
    #[error("cannot reach s3://{bucket}: {reason}")]
    Unreachable {
        /// The bucket.
        bucket: String,
        /// Why, in one sentence: the innermost cause (object_store's errors repeat their
        /// sources in their own messages).
        reason: String,
    },
}

impl ObjectConfig {
    /// Parses `s3://BUCKET[/PREFIX]`; `None` if `url` is not an `s3://` URL at all (a directory).
    pub fn parse(url: &str) -> Option<Result<Self, OpenError>> {
        let rest = url.strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_matches('/');
        let valid_bucket = !bucket.is_empty()
            && bucket
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
        let valid_prefix = prefix.is_empty() || Path::parse(prefix).is_ok();
        if !valid_bucket || !valid_prefix {
            return Some(Err(OpenError::BadUrl(url.to_owned())));
        }
        Some(Ok(ObjectConfig {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            endpoint: None,
            allow_http: false,
        }))
    }
}

/// Whether an `http://` URL's host is this machine.
pub(super) fn is_loopback_url(url: &str) -> bool {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// How the served bucket and prefix are shown (the log, "Serving ...").
pub(super) fn format_url(config: &ObjectConfig) -> String {
    if config.prefix.is_empty() {
        format!("s3://{}", config.bucket)
    } else {
        format!("s3://{}/{}", config.bucket, config.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_name_a_bucket_and_a_prefix() {
        let c = ObjectConfig::parse("s3://team-files/shared/")
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.bucket.as_str(), c.prefix.as_str()),
            ("team-files", "shared")
        );
        let c = ObjectConfig::parse("s3://b").unwrap().unwrap();
        assert_eq!((c.bucket.as_str(), c.prefix.as_str()), ("b", ""));
        assert!(ObjectConfig::parse("./dir").is_none());
        assert!(ObjectConfig::parse("s3://").unwrap().is_err());
        assert!(ObjectConfig::parse("s3://b/a/../c").unwrap().is_err());
    }

    #[test]
    fn plain_http_is_for_loopback_only() {
        for ok in [
            "http://127.0.0.1:8333",
            "http://localhost",
            "http://[::1]:9000/",
            "http://127.0.0.2",
        ] {
            assert!(is_loopback_url(ok), "{ok}");
        }
        for bad in [
            "http://10.0.0.1:8333",
            "http://s3.example.com",
            "http://127.0.0.1.evil.com/",
            "http://localhost.evil.com",
        ] {
            assert!(!is_loopback_url(bad), "{bad}");
        }
    }
}
