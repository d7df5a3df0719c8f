//! `share` at the prompt and as a one-shot command (clients with the admin permission): share
//! links made, listed and revoked by the running server, printed as `qft share` prints them
//! (the link alone on stdout, what it allows on stderr). The parsing of the prompt's line, the
//! requests and the printing are here side by side.
//!
//! The server checks the name through its storage and keeps the link in its own store; a server
//! without `--web` says so, and an older one that does not know `share` is named as lacking it.

use std::time::Duration;

use super::manage::lacks;
use super::session::Session;
use super::stream::{response, safe, unexpected};
use super::{Client, ClientError};
use crate::protocol::{Request, Response, ShareInfo};
use crate::share::MAX_EXPIRY;

/// What `share` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareCommand {
    /// `share NAME [--expires TIME] [--upload-only] [--uses N] [--url URL]`
    Create {
        /// The remote file or directory (relative to the prompt's `cd`, resolved before it
        /// runs).
        name: String,
        /// How long the link works.
        expires: Duration,
        /// A drop box for a directory.
        upload_only: bool,
        /// Transfers allowed in all.
        uses: Option<u64>,
        /// The page's address as the holder reaches it; default: this server's host, at the
        /// port it answers browsers on.
        url: Option<String>,
    },
    /// `share --list`
    List,
    /// `share --revoke ID`
    Revoke {
        /// As `share --list` shows it.
        id: String,
    },
}

/// How long a link works when `--expires` is not given (as `qft share`).
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(24 * 3600);

impl ShareCommand {
    /// Parses the words after `share` at the prompt.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut name = None;
        let (mut expires, mut upload_only, mut uses, mut url) = (None, false, None, None);
        let (mut list, mut revoke) = (false, None);
        let mut words = args.iter();
        let mut options = true;
        while let Some(word) = words.next() {
            let mut value = |what: &str| {
                words
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("SHARE {word} needs {what}"))
            };
            match word.as_str() {
                "--" if options => options = false,
                "--expires" if options => expires = Some(parse_expiry(&value("a time")?)?),
                "--upload-only" if options => upload_only = true,
                "--uses" if options => uses = Some(parse_uses(&value("a number")?)?),
                "--url" if options => url = Some(value("the page's address")?),
                "--list" if options => list = true,
                "--revoke" if options => revoke = Some(value("a link's ID")?),
                flag if options && flag.starts_with('-') && flag.len() > 1 => {
                    return Err(format!(
                        "SHARE has no option '{}' (it takes --expires TIME, --upload-only, \
                         --uses N, --url URL, --list, --revoke ID)",
                        crate::paths::sanitize(flag)
                    ))
                }
                _ if name.is_some() => return Err("SHARE takes one name".into()),
                _ => name = Some(word.clone()),
            }
        }
        let creating = expires.is_some() || upload_only || uses.is_some() || url.is_some();
        match (name, list, revoke) {
            (None, true, None) if !creating => Ok(ShareCommand::List),
            (None, false, Some(id)) if !creating => Ok(ShareCommand::Revoke { id }),
            (Some(name), false, None) => Ok(ShareCommand::Create {
                name,
                expires: expires.unwrap_or(DEFAULT_EXPIRY),
                upload_only,
                uses,
                url,
            }),
            (None, false, None) => Err("SHARE needs a name (or --list, or --revoke ID)".into()),
            _ => Err("SHARE takes a name, or --list, or --revoke ID: one of them".into()),
        }
    }
}

/// Parses `--expires` as `qft share` takes it: 30m, 1h, 7d..., at most 30 days.
pub fn parse_expiry(text: &str) -> Result<Duration, String> {
    let time = humantime::parse_duration(text).map_err(|_| {
        format!(
            "'{}' is not a time (e.g. 30m, 1h, 7d)",
            crate::paths::sanitize(text)
        )
    })?;
    match time > MAX_EXPIRY {
        true => Err("a link may last at most 30 days".into()),
        false => Ok(time),
    }
}

fn parse_uses(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "'{}' is not a number of uses (1 or more)",
            crate::paths::sanitize(text)
        )),
    }
}

/// A link the server made: what prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedLink {
    /// The share as the server keeps it.
    pub share: ShareInfo,
    /// The capability (the server keeps only its hash).
    pub token: String,
    /// The certificate hashes a browser pins until the link expires.
    pub hashes: Vec<[u8; 32]>,
    /// The UDP port the server answers browsers on.
    pub port: u16,
}

impl SharedLink {
    /// The link, to the page at `base`.
    pub fn link(&self, base: &str) -> String {
        crate::share::link(
            &self.share,
            base,
            &self.token,
            &self.hashes,
            Some(self.port),
        )
    }
}

impl Client {
    /// Has the server make a share link for `name` (needs the admin permission, and a server
    /// with `--web`).
    pub async fn share(
        &self,
        name: &str,
        expires: Duration,
        upload_only: bool,
        uses: Option<u64>,
    ) -> Result<SharedLink, ClientError> {
        let request = Request::ShareCreate {
            name: safe(name)?.to_string(),
            expires: expires.as_secs(),
            upload_only,
            uses,
        };
        let attempt = async {
            let mut recv = self.ask(&request).await?;
            match response(&mut recv, self.stall).await? {
                Response::Shared {
                    share,
                    token,
                    hashes,
                    port,
                } => Ok(SharedLink {
                    share,
                    token,
                    hashes,
                    port,
                }),
                other => Err(unexpected(&other)),
            }
        };
        self.explain(attempt.await).map_err(|e| lacks("share", e))
    }

    /// The server's share links.
    pub async fn shares(&self) -> Result<Vec<ShareInfo>, ClientError> {
        let attempt = async {
            let mut recv = self.ask(&Request::ShareList).await?;
            let mut all = Vec::new();
            loop {
                match response(&mut recv, self.stall).await? {
                    Response::SharePage { shares, last } => {
                        all.extend(shares);
                        if all.len() > super::MAX_LIST_ENTRIES {
                            return Err(ClientError::Protocol(
                                "a list of more share links than any server keeps".into(),
                            ));
                        }
                        if last {
                            return Ok(all);
                        }
                    }
                    other => return Err(unexpected(&other)),
                }
            }
        };
        self.explain(attempt.await).map_err(|e| lacks("share", e))
    }

    /// Revokes the server's share link `id`.
    pub async fn revoke_share(&self, id: &str) -> Result<(), ClientError> {
        let request = Request::ShareRevoke { id: id.to_string() };
        let attempt = async {
            let mut recv = self.ask(&request).await?;
            match response(&mut recv, self.stall).await? {
                Response::Revoked => Ok(()),
                other => Err(unexpected(&other)),
            }
        };
        self.explain(attempt.await).map_err(|e| lacks("share", e))
    }

    /// The page of this server as a link's holder reaches it by default: this host, at the
    /// port the server answers browsers on.
    pub fn page(&self, port: u16) -> String {
        match self.host.contains(':') {
            true => format!("http://[{}]:{port}/", self.host),
            false => format!("http://{}:{port}/", self.host),
        }
    }
}

impl Session {
    /// Runs `share`; returns how many of its operations failed.
    pub(super) async fn share(&self, command: &ShareCommand) -> usize {
        let out = self.output();
        match command {
            ShareCommand::Create {
                name,
                expires,
                upload_only,
                uses,
                url,
            } => match self.client.share(name, *expires, *upload_only, *uses).await {
                Ok(made) => {
                    let base = url.clone().unwrap_or_else(|| self.client.page(made.port));
                    out.shared(&made.share, Some(&made.link(&base)));
                    0
                }
                Err(e) => out.fail(Some(name.as_str()), &e),
            },
            ShareCommand::List => match self.client.shares().await {
                Ok(shares) => {
                    for share in &shares {
                        out.shared(share, None);
                    }
                    0
                }
                Err(e) => out.fail(None, &e),
            },
            ShareCommand::Revoke { id } => match self.client.revoke_share(id).await {
                Ok(()) => {
                    out.revoked(id);
                    0
                }
                Err(e) => out.fail(None, &e),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<ShareCommand, String> {
        let words: Vec<String> = shlex::split(line).unwrap();
        ShareCommand::parse(&words)
    }

    #[test]
    fn share_takes_the_options_qft_share_takes() {
        assert_eq!(
            parse("report.pdf --expires 1h --uses 2"),
            Ok(ShareCommand::Create {
                name: "report.pdf".into(),
                expires: Duration::from_secs(3600),
                upload_only: false,
                uses: Some(2),
                url: None,
            })
        );
        assert_eq!(
            parse("--upload-only inbox --url https://files.example/"),
            Ok(ShareCommand::Create {
                name: "inbox".into(),
                expires: DEFAULT_EXPIRY,
                upload_only: true,
                uses: None,
                url: Some("https://files.example/".into()),
            })
        );
        assert_eq!(parse("--list"), Ok(ShareCommand::List));
        assert_eq!(
            parse("--revoke 0123456789ab"),
            Ok(ShareCommand::Revoke {
                id: "0123456789ab".into()
            })
        );
        assert_eq!(
            parse("-- --odd"),
            Ok(ShareCommand::Create {
                name: "--odd".into(),
                expires: DEFAULT_EXPIRY,
                upload_only: false,
                uses: None,
                url: None,
            })
        );
        for (bad, why) in [
            ("", "needs a name"),
            ("a b", "one name"),
            ("a --list", "one of them"),
            ("--list --uses 2", "one of them"),
            ("a --expires 40d", "at most 30 days"),
            ("a --expires soon", "not a time"),
            ("a --uses 0", "not a number of uses"),
            ("a --uses", "needs a number"),
            ("a --fast", "no option '--fast'"),
        ] {
            let refused = parse(bad).unwrap_err();
            assert!(refused.contains(why), "{bad}: {refused}");
        }
    }
}
