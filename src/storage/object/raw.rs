//! The one S3 request qft needs that object_store 0.14 does not make: a server-side copy that
//! *replaces* the object's metadata (`x-amz-metadata-directive: REPLACE`). object_store's
//! `copy` keeps the source's metadata and takes none, so a file published by copy could not
//! carry the SHA-256 that was verified only once its last byte arrived; with this request it
//! does, and downloads, STAT and `sum` need not read it again ([`super::meta`]).
//!
//! Signed by object_store's own SigV4 ([`AwsAuthorizer`]) with the store's own credentials, so it
//! authenticates exactly as every other request; sent with reqwest (object_store's HTTP client).

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AwsAuthorizer, AwsCredentialProvider};
use object_store::client::{HttpRequest, HttpRequestBody};
use object_store::path::Path;
use object_store::{Attribute, Attributes};
use reqwest::header::{HeaderName, HeaderValue};

use crate::paths::percent_encode_path;

/// Attempts of a copy that failed on the way (connection, 5xx): a copy is idempotent.
const ATTEMPTS: u32 = 3;

/// Signed requests to one bucket.
#[derive(Debug)]
pub(super) struct Raw {
    http: reqwest::Client,
    credentials: AwsCredentialProvider,
    region: String,
    bucket: String,
    /// The bucket's URL, without a slash at the end: a key's URL is this, `/`, the key.
    bucket_url: String,
}

/// Why a copy failed, and whether to try again.
enum Failure {
    Retry(object_store::Error),
    Final(object_store::Error),
}

fn generic(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> object_store::Error {
    object_store::Error::Generic {
        store: "S3",
        source: e.into(),
    }
}

impl Raw {
    /// Requests to `bucket` at `bucket_url` (path-style or virtual-hosted, as the store uses).
    pub fn new(
        credentials: AwsCredentialProvider,
        region: String,
        bucket: String,
        bucket_url: String,
    ) -> Result<Arc<Self>, object_store::Error> {
        let http = reqwest::Client::builder().build().map_err(generic)?;
        Ok(Arc::new(Raw {
            http,
            credentials,
            region,
            bucket,
            bucket_url: bucket_url.trim_end_matches('/').to_owned(),
        }))
    }

    /// Copies `from` to `to` in the store (atomic: whole or not at all), giving the copy
    /// `attributes`' metadata instead of the source's.
    pub async fn copy_with_metadata(
        &self,
        from: &Path,
        to: &Path,
        attributes: &Attributes,
    ) -> object_store::Result<()> {
        let url = format!("{}/{}", self.bucket_url, percent_encode_path(to.as_ref()));
        let source = format!("{}/{}", self.bucket, percent_encode_path(from.as_ref()));
        let mut attempt = 0;
        loop {
            match self.copy_once(&url, &source, to, attributes).await {
                Ok(()) => return Ok(()),
                Err(Failure::Retry(e)) if attempt + 1 < ATTEMPTS => {
                    tracing::debug!("copy to {to} failed, again: {e}");
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
                Err(Failure::Retry(e) | Failure::Final(e)) => return Err(e),
            }
        }
    }

    async fn copy_once(
        &self,
        url: &str,
        source: &str,
        to: &Path,
        attributes: &Attributes,
    ) -> Result<(), Failure> {
        let credential = self
            .credentials
            .get_credential()
            .await
            .map_err(Failure::Final)?;
        let mut request = HttpRequest::new(HttpRequestBody::empty());
        *request.method_mut() = reqwest::Method::PUT;
        *request.uri_mut() = url.parse().map_err(|e| Failure::Final(generic(e)))?;
        let headers = request.headers_mut();
        let value = |v: &str| HeaderValue::from_str(v).map_err(|e| Failure::Final(generic(e)));
        headers.insert("x-amz-copy-source", value(source)?);
        headers.insert(
            "x-amz-metadata-directive",
            HeaderValue::from_static("REPLACE"),
        );
        for (attribute, v) in attributes {
            if let Attribute::Metadata(key) = attribute {
                let name = HeaderName::from_bytes(format!("x-amz-meta-{key}").as_bytes())
                    .map_err(|e| Failure::Final(generic(e)))?;
                headers.insert(name, value(v.as_ref())?);
            }
        }
        AwsAuthorizer::new(&credential, "s3", &self.region)
            .try_authorize(&mut request, None)
            .map_err(Failure::Final)?;
        let response = self
            .http
            .put(url)
            .headers(request.headers().clone())
            .send()
            .await
            .map_err(|e| Failure::Retry(generic(e)))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| Failure::Retry(generic(e)))?;
        if status == reqwest::StatusCode::PRECONDITION_FAILED {
            return Err(Failure::Final(object_store::Error::Precondition {
                path: to.to_string(),
                source: body.into(),
            }));
        }
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(Failure::Final(object_store::Error::NotFound {
                path: to.to_string(),
                source: body.into(),
            }));
        }
        // S3 may answer a copy 200 and report its failure in the body.
        if status.is_server_error() || (status.is_success() && body.contains("<Error>")) {
            return Err(Failure::Retry(generic(format!("copy: {status}: {body}"))));
        }
        if !status.is_success() {
            return Err(Failure::Final(generic(format!("copy: {status}: {body}"))));
        }
        Ok(())
    }
}
