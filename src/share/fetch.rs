//! `qft get LINK`: a qft client for a read link to one file. It opens the same WebTransport
//! session a browser would (`/s/TOKEN`), pins the server by the certificate hashes the link
//! carries, and runs a plain DOWNLOAD through the client's own receiving path
//! ([`crate::client::receive_file`], as `get` from a server that cannot resume): temp file beside
//! the target, SHA-256 against the trailer, fsync, rename; nothing is left behind if anything
//! fails.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use indicatif::ProgressBar;

use crate::client::{receive_file, ClientError};
use crate::paths::{sanitize, SafeName};
use crate::protocol::{read_frame, write_frame, Request, Response};

/// How long each step (connecting, each block, the trailer) may take.
const PATIENCE: Duration = Duration::from_secs(30);

/// What a share link says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The server's host, as in the link.
    pub host: String,
    /// The server's UDP port: `p=` in the fragment, else the page's port.
    pub port: u16,
    /// The capability.
    pub token: String,
    /// Certificate hashes to pin; none: the server's certificate is checked against the
    /// system's certificate authorities.
    pub hashes: Vec<Vec<u8>>,
    /// The shared name (for the file name to save as; the server decides what is sent).
    pub name: String,
    /// `file` or `dir`.
    pub kind: String,
    /// `read` or `upload`.
    pub access: String,
}

/// Why a link could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Not a qft share link.
    #[error("not a qft share link: {0}")]
    BadLink(&'static str),
    /// A link this client does not handle.
    #[error("{0}")]
    Unsupported(String),
    /// The server refused (the link's sentence: expired, used up, revoked...).
    #[error("{0}")]
    Refused(String),
    /// The connection failed.
    #[error("cannot reach the server: {0}")]
    Connect(String),
    /// The transfer broke or did not verify.
    #[error("{0}")]
    Transfer(String),
    /// The target exists, or the local disk failed.
    #[error("{0}")]
    Local(String),
}

impl Link {
    /// Parses `http[s]://HOST[:PORT]/...#t=TOKEN&m=...&k=...&n=...&h=...&p=...`.
    pub fn parse(text: &str) -> Result<Link, FetchError> {
        let (base, fragment) = text
            .trim()
            .split_once('#')
            .ok_or(FetchError::BadLink("it has no '#' part"))?;
        let (scheme, rest) = base
            .split_once("://")
            .ok_or(FetchError::BadLink("it is not a URL"))?;
        let authority = rest.split('/').next().unwrap_or_default();
        let (host, page_port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => (
                host,
                port.parse()
                    .map_err(|_| FetchError::BadLink("a bad port"))?,
            ),
            _ => (authority, if scheme == "https" { 443 } else { 80 }),
        };
        let mut link = Link {
            host: host.to_string(),
            port: page_port,
            token: String::new(),
            hashes: Vec::new(),
            name: String::new(),
            kind: String::new(),
            access: String::new(),
        };
        for pair in fragment.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "t" => link.token = value.to_string(),
                "m" => link.access = value.to_string(),
                "k" => link.kind = value.to_string(),
                "n" => link.name = unescape(value),
                "p" => {
                    link.port = value
                        .parse()
                        .map_err(|_| FetchError::BadLink("a bad port"))?
                }
                "h" => {
                    link.hashes = value
                        .split(',')
                        .filter(|h| !h.is_empty())
                        .map(|h| URL_SAFE_NO_PAD.decode(h))
                        .collect::<Result<_, _>>()
                        .map_err(|_| FetchError::BadLink("a bad certificate hash"))?
                }
                _ => {}
            }
        }
        let token_ok = !link.token.is_empty()
            && link
                .token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !token_ok || link.host.is_empty() {
            return Err(FetchError::BadLink("it has no token"));
        }
        Ok(link)
    }
}

/// Downloads the file `link` names to `output` (a directory, where it keeps its name, or a
/// file path), replacing an existing file only with `force`. Returns where it went, its size
/// and its verified SHA-256.
pub async fn fetch(
    link: &Link,
    output: &Path,
    force: bool,
    progress: &ProgressBar,
) -> Result<(PathBuf, u64, [u8; 32]), FetchError> {
    if link.access != "read" || link.kind != "file" {
        return Err(FetchError::Unsupported(
            "qft get takes links to one file; open links to directories and drop boxes in a browser"
                .into(),
        ));
    }
    let base = link.name.rsplit('/').next().unwrap_or_default();
    let base = SafeName::new(base)
        .map_err(|_| FetchError::BadLink("the file name in it is not a plain name"))?;
    let dest = match output.is_dir() {
        true => output.join(base.as_str()),
        false => output.to_path_buf(),
    };
    if dest.exists() && !force {
        return Err(FetchError::Local(format!(
            "{} already exists; use --force to replace it",
            dest.display()
        )));
    }
    let builder = web_transport_quinn::ClientBuilder::new();
    let client = match link.hashes.is_empty() {
        true => builder.with_system_roots(),
        false => builder.with_server_certificate_hashes(link.hashes.clone()),
    }
    .map_err(|e| FetchError::Connect(e.to_string()))?;
    let host = match link.host.contains(':') && !link.host.starts_with('[') {
        true => format!("[{}]", link.host),
        false => link.host.clone(),
    };
    let url = format!("https://{host}:{}/s/{}", link.port, link.token);
    let url = url::Url::parse(&url).map_err(|_| FetchError::BadLink("a bad host"))?;
    let session = tokio::time::timeout(PATIENCE, client.connect(url))
        .await
        .map_err(|_| FetchError::Connect("no answer".into()))?
        .map_err(|e| FetchError::Connect(e.to_string()))?;
    let result = download(&session, &base, &dest, force, progress).await;
    // A refused link is closed with the reason: that is the error to show.
    let result = match result {
        Err(FetchError::Transfer(why)) => {
            let closed = tokio::time::timeout(Duration::from_secs(1), session.closed()).await;
            match closed {
                Ok(web_transport_quinn::SessionError::WebTransportError(
                    web_transport_quinn::WebTransportError::Closed(_, reason),
                )) if !reason.is_empty() => Err(FetchError::Refused(reason)),
                _ => Err(FetchError::Transfer(why)),
            }
        }
        other => other,
    };
    session.close(crate::protocol::close::NORMAL, b"bye");
    result.map(|(size, sha256)| (dest, size, sha256))
}

async fn download(
    session: &web_transport_quinn::Session,
    name: &SafeName,
    dest: &Path,
    force: bool,
    progress: &ProgressBar,
) -> Result<(u64, [u8; 32]), FetchError> {
    let broke =
        |e: &dyn std::fmt::Display| FetchError::Transfer(format!("the transfer broke: {e}"));
    let (mut send, mut recv) = session.open_bi().await.map_err(|e| broke(&e))?;
    let request = Request::Download {
        name: String::new(),
    };
    write_frame(&mut send, &request)
        .await
        .map_err(|e| broke(&e))?;
    let _ = send.finish();
    let size = match read_frame::<Response, _>(&mut recv)
        .await
        .map_err(|e| broke(&e))?
    {
        Response::FileHeader { size, .. } => size,
        Response::Error { message, .. } => return Err(FetchError::Refused(sanitize(&message))),
        _ => {
            return Err(FetchError::Transfer(
                "an unexpected answer from the server".into(),
            ))
        }
    };
    let received = receive_file(&mut recv, size, name, dest, force, PATIENCE, progress)
        .await
        .map_err(|e| match e {
            ClientError::HashMismatch(_) => FetchError::Transfer(
                "the file does not match the server's SHA-256; nothing was saved".into(),
            ),
            ClientError::Interrupted(_) | ClientError::Stalled(_) | ClientError::Protocol(_) => {
                broke(&e)
            }
            ClientError::Exists(path) => FetchError::Local(format!(
                "{} already exists; use --force to replace it",
                path.display()
            )),
            other => FetchError::Local(other.to_string()),
        })?;
    Ok((size, received))
}

/// Undoes the link's percent-encoding of the name.
fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_parse_and_junk_is_refused() {
        let link = Link::parse(
            "http://127.0.0.1:4433/#t=abc_-9&m=read&k=file&n=docs/a%20b.pdf&h=AAEC,AwQ&p=5000",
        )
        .unwrap();
        assert_eq!(link.host, "127.0.0.1");
        assert_eq!(link.port, 5000);
        assert_eq!(link.token, "abc_-9");
        assert_eq!(link.name, "docs/a b.pdf");
        assert_eq!(link.hashes, vec![vec![0, 1, 2], vec![3, 4]]);
        let link = Link::parse("https://files.example.com/#t=x&m=read&k=file&n=a").unwrap();
        assert_eq!((link.host.as_str(), link.port), ("files.example.com", 443));
        let link = Link::parse("http://[::1]:7/#t=x").unwrap();
        assert_eq!((link.host.as_str(), link.port), ("[::1]", 7));
        for bad in [
            "",
            "http://h/",
            "http://h/#m=read",
            "h#t=x",
            "http://h/#t=a/b",
            "http://h:x/#t=a",
        ] {
            assert!(Link::parse(bad).is_err(), "{bad}");
        }
    }
}
