//! `qft share`: make, list and revoke share links, on the server's machine, in the server's qft
//! home (the running server reads the same store for every browser session, so a link works, or
//! stops working, at once). The link is printed alone on stdout; the rest goes to stderr.
//!
//! The name is checked through the storage contract, as the server will serve it: a local
//! directory or an `s3://BUCKET/PREFIX` (with the same `--s3-*` flags and credentials as
//! `qft serve`), so a link is made only for a file or directory that is there.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};
use clap::{ArgGroup, Args};

use crate::client::display::emit;
use crate::home::qft_home;
use crate::paths::{sanitize, SafeName};
use crate::server::web::{root_of, WebCerts};
use crate::share::{
    check_name, link, list_line, now, page_of, plan, summary, NewShare, ShareInfo, ShareStore,
};

/// `qft share NAME`, `qft share --list`, `qft share --revoke ID`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("what").required(true).args(["name", "list", "revoke"])))]
pub(super) struct ShareArgs {
    /// The file or directory to share, relative to the served directory (--dir).
    name: Option<String>,
    /// How long the link works (e.g. 30m, 1h, 7d; at most 30d).
    #[arg(long, value_name = "TIME", default_value = "1d", value_parser = humantime::parse_duration)]
    expires: Duration,
    /// A drop box: the link uploads new files into the directory, and can neither list nor
    /// download.
    #[arg(long)]
    upload_only: bool,
    /// Transfers (downloads or uploads) the link allows in all.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    uses: Option<u64>,
    /// What the server serves: a directory, or s3://BUCKET[/PREFIX] as given to qft serve.
    #[arg(long, value_name = "DIR", default_value = ".")]
    dir: PathBuf,
    /// The S3 endpoint for an s3:// --dir, as given to qft serve.
    #[arg(long, value_name = "URL")]
    s3_endpoint: Option<String>,
    /// Allow a plain-http S3 endpoint, as given to qft serve.
    #[arg(long)]
    s3_allow_http: bool,
    /// The page's address as the link's holder reaches it (an https proxy in front of the
    /// server, say). Default: the page `qft serve --web` printed for this directory, else
    /// http://localhost:4433/.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// The server uses its own --cert/--key, which browsers check themselves: put no
    /// certificate hashes in the link.
    #[arg(long)]
    no_pin: bool,
    /// List the links (expired ones are kept a week, so that they say so).
    #[arg(long, conflicts_with_all = ["name", "revoke"])]
    list: bool,
    /// Revoke the link with this ID (as --list shows it).
    #[arg(long, value_name = "ID", conflicts_with = "name")]
    revoke: Option<String>,
}

/// Runs `qft share`.
pub(super) async fn share(args: ShareArgs) -> anyhow::Result<()> {
    let home = qft_home().context("cannot find the qft home")?;
    let store = ShareStore::new(&home);
    if args.list {
        let shares = store.list().context("cannot read the share links")?;
        let now = now();
        for share in &shares {
            emit(&list_line(&ShareInfo::from(share), now));
        }
        return Ok(());
    }
    if let Some(id) = &args.revoke {
        if !store.revoke(id).context("cannot revoke")? {
            bail!("there is no share link with the ID '{}'", sanitize(id));
        }
        eprintln!("revoked {id}");
        return Ok(());
    }
    let name = args.name.as_deref().unwrap_or_default();
    let name = SafeName::new(name).with_context(|| format!("cannot share '{}'", sanitize(name)))?;
    check_name(&name)?;
    let storage =
        super::serve::open_storage(&args.dir, args.s3_endpoint.clone(), args.s3_allow_http).await?;
    let found = storage
        .stat(name.clone())
        .await
        .with_context(|| format!("cannot share '{}'", name.as_str()))?;
    let (kind, access) = plan(&name, found.kind, args.upload_only, args.expires)?;
    let hashes = match args.no_pin {
        true => Vec::new(),
        false => {
            let identity = super::serve::server_identity()?;
            WebCerts::new(&home, &identity)?.hashes_until(SystemTime::now() + args.expires)?
        }
    };
    let root = root_of(&storage);
    let noted = page_of(&home, &root);
    // The server's own page names its port, which the link then carries for a page elsewhere.
    let port = noted
        .as_deref()
        .and_then(|page| page.trim_end_matches('/').rsplit(':').next()?.parse().ok());
    let url = args
        .url
        .clone()
        .or(noted)
        .unwrap_or_else(|| "http://localhost:4433/".into());
    let (share, token) = store
        .create(NewShare {
            root,
            name: name.as_str().to_string(),
            kind,
            access,
            expires_in: args.expires,
            max_uses: args.uses,
        })
        .context("cannot keep the share link")?;
    let info = ShareInfo::from(&share);
    eprintln!("{}", summary(&info));
    emit(&link(&info, &url, &token, &hashes, port));
    Ok(())
}
