//! `qft share`: make, list and revoke share links, on the server's machine, in the server's qft
//! home (the running server reads the same store for every browser session, so a link works, or
//! stops working, at once). The link is printed alone on stdout; the rest goes to stderr.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};
use clap::{ArgGroup, Args};

use crate::client::display::emit;
use crate::home::qft_home;
use crate::paths::{sanitize, SafeName};
use crate::server::web::{root_path, WebCerts};
use crate::share::{page_of, when, NewShare, ShareAccess, ShareKind, ShareStore, MAX_EXPIRY};
use crate::storage::PRIVATE_DIR;

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
    /// The directory the server serves.
    #[arg(long, value_name = "DIR", default_value = ".")]
    dir: PathBuf,
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
pub(super) fn share(args: ShareArgs) -> anyhow::Result<()> {
    let home = qft_home().context("cannot find the qft home")?;
    let store = ShareStore::new(&home);
    if args.list {
        return list(&store);
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
    if name.components().next() == Some(PRIVATE_DIR) {
        bail!(
            "cannot share '{}': the server's private area is not served",
            name.as_str()
        );
    }
    let path = args.dir.join(name.as_str());
    let meta = std::fs::symlink_metadata(&path)
        .with_context(|| format!("cannot share '{}'", name.as_str()))?;
    let kind = match meta {
        m if m.is_file() => ShareKind::File,
        m if m.is_dir() => ShareKind::Dir,
        _ => bail!(
            "cannot share '{}': it is neither a file nor a directory",
            name.as_str()
        ),
    };
    let access = match args.upload_only {
        true if kind == ShareKind::File => {
            bail!(
                "an upload-only link is for a directory; '{}' is a file",
                name.as_str()
            )
        }
        true => ShareAccess::UploadOnly,
        false => ShareAccess::Read,
    };
    if args.expires > MAX_EXPIRY {
        bail!("a link may last at most 30 days");
    }
    let hashes = match args.no_pin {
        true => Vec::new(),
        false => {
            let identity = super::serve::server_identity()?;
            WebCerts::new(&home, &identity)?.hashes_until(SystemTime::now() + args.expires)?
        }
    };
    let root = root_path(&args.dir);
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
    let uses = share
        .max_uses
        .map_or(String::new(), |n| format!(", {n} uses"));
    eprintln!(
        "share {}: {} {} until {}{uses}",
        share.id,
        share.access,
        sanitize(&share.name),
        when(share.expires).trim_start_matches("at ")
    );
    emit(&share.link(&url, &token, &hashes, port));
    Ok(())
}

fn list(store: &ShareStore) -> anyhow::Result<()> {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    for share in store.list().context("cannot read the share links")? {
        let uses = match share.max_uses {
            Some(max) => format!("{}/{max}", share.used),
            None => format!("{}", share.used),
        };
        let state = match share.max_uses {
            _ if now >= share.expires => "expired",
            Some(max) if share.used >= max => "used up",
            _ => "active",
        };
        emit(&format!(
            "{}\t{}\t{}\t{}\tuses {uses}\t{state}\t{}",
            share.id,
            share.access,
            when(share.expires).trim_start_matches("at "),
            match share.kind {
                ShareKind::File => "file",
                ShareKind::Dir => "dir",
            },
            sanitize(&share.name),
        ));
    }
    Ok(())
}
