//! The one S3 request qft needs that object_store 0.14 does not make: a
//! `CompleteMultipartUpload` naming its parts by *number*. object_store's numbers the parts it is
//! given 1, 2, 3… by position, so an upload could only ever be completed from parts numbered
//! without gaps; qft numbers each attempt's parts apart (see `writer::part_number`), so that a
//! part an older attempt still has on its way never lands under a number the newer attempt
//! completes with (SeaweedFS completes with whatever part holds a number, whatever its ETag).
//!
//! Signed by object_store's own SigV4 ([`AwsAuthorizer`]) with the store's own credentials, so it
//! authenticates exactly as every other request; sent with reqwest (object_store's HTTP client).

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AwsAuthorizer, AwsCredentialProvider};
use object_store::client::{HttpRequest, HttpRequestBody};
use object_store::path::Path;

use crate::paths::percent_encode_path;

/// Attempts of a completion that failed on the way (connection, 5xx): completing again an
/// upload that was completed answers with the object, as S3 makes it idempotent.
const ATTEMPTS: u32 = 3;

/// Signed requests to one bucket.
#[derive(Debug)]
pub(super) struct Raw {
    http: reqwest::Client,
    credentials: AwsCredentialProvider,
    region: String,
    /// The bucket's URL, without a slash at the end: a key's URL is this, `/`, the key.
    bucket_url: String,
}

/// Why a request failed, and whether to try again.
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
    /// Requests to the bucket at `bucket_url` (path-style or virtual-hosted, as the store uses).
    pub fn new(
        credentials: AwsCredentialProvider,
        region: String,
        bucket_url: String,
    ) -> Result<Arc<Self>, object_store::Error> {
        let http = reqwest::Client::builder().build().map_err(generic)?;
        Ok(Arc::new(Raw {
            http,
            credentials,
            region,
            bucket_url: bucket_url.trim_end_matches('/').to_owned(),
        }))
    }

    /// Completes the multipart upload `upload_id` of `key` with `parts` (part number, ETag), in
    /// ascending order: the object appears, whole, with exactly those parts. Returns its ETag.
    pub async fn complete_multipart(
        &self,
        key: &Path,
        upload_id: &str,
        parts: &[(usize, String)],
    ) -> object_store::Result<Option<String>> {
        let url = format!(
            "{}/{}?uploadId={}",
            self.bucket_url,
            percent_encode_path(key.as_ref()),
            percent_encode_path(upload_id)
        );
        let mut body = String::from("<CompleteMultipartUpload>");
        for (number, etag) in parts {
            let etag = etag
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            body.push_str(&format!(
                "<Part><PartNumber>{number}</PartNumber><ETag>{etag}</ETag></Part>"
            ));
        }
        body.push_str("</CompleteMultipartUpload>");
        let mut attempt = 0;
        loop {
            match self.complete_once(&url, key, &body).await {
                Ok(etag) => return Ok(etag),
                Err(Failure::Retry(e)) if attempt + 1 < ATTEMPTS => {
                    tracing::debug!("completing {key} failed, again: {e}");
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
                Err(Failure::Retry(e) | Failure::Final(e)) => return Err(e),
            }
        }
    }

    async fn complete_once(
        &self,
        url: &str,
        key: &Path,
        body: &str,
    ) -> Result<Option<String>, Failure> {
        let credential = self
            .credentials
            .get_credential()
            .await
            .map_err(Failure::Final)?;
        let mut request = HttpRequest::new(HttpRequestBody::from(body.to_owned()));
        *request.method_mut() = reqwest::Method::POST;
        *request.uri_mut() = url.parse().map_err(|e| Failure::Final(generic(e)))?;
        AwsAuthorizer::new(&credential, "s3", &self.region)
            .try_authorize(&mut request, None)
            .map_err(Failure::Final)?;
        let response = self
            .http
            .post(url)
            .headers(request.headers().clone())
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| Failure::Retry(generic(e)))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| Failure::Retry(generic(e)))?;
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(Failure::Final(object_store::Error::NotFound {
                path: key.to_string(),
                source: text.into(),
            }));
        }
        // S3 may answer 200 and report its failure in the body.
        if status.is_server_error() || (status.is_success() && text.contains("<Error>")) {
            return Err(Failure::Retry(generic(format!(
                "complete: {status}: {text}"
            ))));
        }
        if !status.is_success() {
            return Err(Failure::Final(generic(format!(
                "complete: {status}: {text}"
            ))));
        }
        let etag = text
            .split_once("<ETag>")
            .and_then(|(_, rest)| rest.split_once("</ETag>"))
            .map(|(etag, _)| etag.replace("&quot;", "\"").replace("&#34;", "\""));
        Ok(etag)
    }
}
