//! The page, over plain HTTP on TCP at the server's address and port number: `/` (the HTML),
//! `/app.js` (the script), `/style.css` and `/config.json` (the port and the certificate hashes to pin).
//! Both files are compiled in; nothing is fetched from anywhere else.
//!
//! `http://localhost:PORT/` and `http://127.0.0.1:PORT/` are secure contexts, so WebTransport
//! works from them; a remote browser needs the page from an `https://` origin (a reverse proxy
//! in front of this port). Requests are read with a size cap and a deadline, at most
//! [`MAX_CLIENTS`] at once; anything but a GET of those three paths gets an error status.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tracing::debug;

use super::Web;

const INDEX: &str = include_str!("../../../web/index.html");
const APP: &str = include_str!("../../../web/app.js");
const STYLE: &str = include_str!("../../../web/style.css");

/// HTTP connections handled at once; more wait in the kernel's backlog.
const MAX_CLIENTS: usize = 32;
/// The largest request head read.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client has to send its request.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the page until the server stops.
pub(crate) async fn serve(
    listener: TcpListener,
    web: Arc<Web>,
    port: u16,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            _ = stop.changed() => return,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let web = web.clone();
                tokio::spawn(async move {
                    if let Err(e) = answer(stream, &web, port).await {
                        debug!(%peer, "page request failed: {e}");
                    }
                    drop(permit);
                });
            }
            Err(e) => {
                debug!("cannot accept a page request: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn answer(mut stream: TcpStream, web: &Arc<Web>, port: u16) -> std::io::Result<()> {
    let head = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)).await {
        Ok(head) => head?,
        Err(_) => return Ok(()),
    };
    let mut words = head.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split(['?', '#']).next().unwrap_or("");
    let response = match (method, path) {
        ("GET" | "HEAD", "/" | "/index.html") => ok("text/html; charset=utf-8", INDEX.into()),
        ("GET" | "HEAD", "/app.js") => ok("text/javascript; charset=utf-8", APP.into()),
        ("GET" | "HEAD", "/style.css") => ok("text/css; charset=utf-8", STYLE.into()),
        ("GET" | "HEAD", "/config.json") => {
            let web = web.clone();
            match tokio::task::spawn_blocking(move || web.hashes()).await {
                Ok(Ok(hashes)) => ok("application/json", config(port, &hashes)),
                _ => status(500, "Internal Server Error"),
            }
        }
        ("GET" | "HEAD", _) => status(404, "Not Found"),
        _ => status(405, "Method Not Allowed"),
    };
    let (head_only, response) = (method == "HEAD", response);
    let (headers, body) = response;
    stream.write_all(headers.as_bytes()).await?;
    if !head_only {
        stream.write_all(&body).await?;
    }
    stream.shutdown().await
}

/// Reads up to the blank line that ends a request head.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() + n > MAX_HEAD {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

fn config(port: u16, hashes: &[[u8; 32]]) -> Vec<u8> {
    let hashes: Vec<String> = hashes.iter().map(|h| URL_SAFE_NO_PAD.encode(h)).collect();
    serde_json::json!({ "port": port, "hashes": hashes })
        .to_string()
        .into_bytes()
}

/// The page may talk only to itself and, over WebTransport, to https origins.
const SECURITY: &str = "Content-Security-Policy: default-src 'self'; connect-src 'self' https:; \
     img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'\r\n\
     X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n";

fn ok(kind: &str, body: Vec<u8>) -> (String, Vec<u8>) {
    let headers = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n{SECURITY}Connection: close\r\n\r\n",
        body.len()
    );
    (headers, body)
}

fn status(code: u16, text: &str) -> (String, Vec<u8>) {
    let body = format!("{code} {text}\n").into_bytes();
    let headers = format!(
        "HTTP/1.1 {code} {text}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{SECURITY}Connection: close\r\n\r\n",
        body.len()
    );
    (headers, body)
}
