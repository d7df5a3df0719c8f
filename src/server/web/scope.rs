//! What a browser's session may do, decided per request: the whole server as a keyless client
//! would have it (the permissions, and the requests the page makes), or exactly what one share
//! link says, with the link's names rewritten under the shared name. A link's transfer takes
//! one of its uses before it starts, and a drop box never replaces a file.

use std::sync::Arc;

use super::Web;
use crate::paths::SafeName;
use crate::protocol::{ErrorCode, Request};
use crate::server::auth::Permissions;
use crate::server::exchange::{safe_name, Failure};
use crate::server::requests::{describe, needs};
use crate::server::Context;
use crate::share::{Share, ShareAccess, ShareKind};

/// What a session may do.
#[derive(Debug)]
pub(crate) enum Scope {
    /// The whole server, with these permissions (a keyless client's, within the server's mask).
    Whole(Permissions),
    /// One share link.
    Share(Share),
}

/// A request the scope allows, and what to do before it runs.
#[derive(Debug)]
struct Admitted {
    /// The request, its names under the served root.
    request: Request,
    /// The share whose use this transfer takes.
    takes_use: Option<String>,
    /// An upload that must not replace a file (a drop box cannot see what it would destroy).
    new_only: bool,
}

/// The request as it may run for this session, or why not; a link's use is taken here.
pub(in crate::server) async fn admit(
    ctx: &Context,
    web: &Arc<Web>,
    scope: &Scope,
    request: Request,
) -> Result<Request, Failure> {
    let admitted = decide(ctx, scope, request)?;
    if admitted.new_only {
        let (_, name) = describe(&admitted.request);
        match ctx.storage.open_read(safe_name(name)?).await {
            Ok(_) => {
                return Err(Failure::Refuse(
                    ErrorCode::PermissionDenied,
                    "a file of that name is already there, and this link does not replace files"
                        .into(),
                ))
            }
            Err(crate::storage::StorageError::NotFound { .. }) => {}
            Err(other) => return Err(other.into()),
        }
    }
    if let Some(id) = admitted.takes_use {
        let web = web.clone();
        let taken = tokio::task::spawn_blocking(move || web.shares.take_use(&id));
        match taken.await {
            Ok(Ok(_)) => {}
            Ok(Err(refusal)) => {
                return Err(Failure::Refuse(
                    ErrorCode::PermissionDenied,
                    refusal.to_string(),
                ))
            }
            Err(e) => return Err(Failure::Refuse(ErrorCode::Internal, e.to_string())),
        }
    }
    Ok(admitted.request)
}

/// Whether `scope` allows `request`, and on which names.
fn decide(ctx: &Context, scope: &Scope, request: Request) -> Result<Admitted, Failure> {
    let share = match scope {
        Scope::Whole(allowed) => {
            offered(&request)?;
            if let Some((permission, word)) = needs(&request) {
                if !allowed.contains(permission) {
                    let (command, _) = describe(&request);
                    return Err(Failure::Refuse(
                        ErrorCode::PermissionDenied,
                        format!("permission denied: {command} needs the '{word}' permission, which a browser does not have here"),
                    ));
                }
            }
            return Ok(Admitted {
                request,
                takes_use: None,
                new_only: false,
            });
        }
        Scope::Share(share) => share,
    };
    let denied = |what: &str| {
        Failure::Refuse(
            ErrorCode::PermissionDenied,
            format!("permission denied: this link does not allow {what}"),
        )
    };
    let read = share.access == ShareAccess::Read;
    let dir = share.kind == ShareKind::Dir;
    let uses = Some(share.id.clone());
    let (request, takes_use, new_only) = match request {
        Request::List { dir: asked } if read && dir => {
            let dir = within(share, &asked, true)?;
            (Request::List { dir }, None, false)
        }
        Request::List { .. } => return Err(denied("listing")),
        Request::Download { name } if read => {
            let name = within(share, &name, !dir)?;
            (Request::Download { name }, uses, false)
        }
        Request::ResumeDownload { name, have } if read => {
            let name = within(share, &name, !dir)?;
            (Request::ResumeDownload { name, have }, uses, false)
        }
        Request::Download { .. } | Request::ResumeDownload { .. } => {
            return Err(denied("downloading"))
        }
        Request::Upload { name, size } if !read && dir => {
            if !ctx.mask.contains(Permissions::WRITE) {
                return Err(denied("uploading to a read-only server"));
            }
            let name = within(share, &name, false)?;
            (Request::Upload { name, size }, uses, true)
        }
        Request::Upload { .. } => return Err(denied("uploading")),
        Request::Help => (Request::Help, None, false),
        _ => return Err(denied("that")),
    };
    Ok(Admitted {
        request,
        takes_use,
        new_only,
    })
}

/// Refuses what the page never asks of a whole-server session: resuming an upload (partials
/// are kept per client key, and a browser has none), stopping the server, managing names and
/// links (the qft client's, not the page's).
fn offered(request: &Request) -> Result<(), Failure> {
    match request {
        Request::List { .. }
        | Request::Download { .. }
        | Request::ResumeDownload { .. }
        | Request::Upload { .. }
        | Request::Delete { .. }
        | Request::Help
        | Request::Space => Ok(()),
        Request::ResumeUpload { .. } => Err(Failure::Refuse(
            ErrorCode::Unsupported,
            "resuming needs a client key; use a plain upload".into(),
        )),
        Request::Shutdown => Err(Failure::Refuse(
            ErrorCode::PermissionDenied,
            "permission denied: a browser cannot stop the server".into(),
        )),
        _ => Err(Failure::Refuse(
            ErrorCode::Unsupported,
            "this is not offered to a browser".into(),
        )),
    }
}

/// `asked` (relative to the share) as a name under the served root. `""` names the share
/// itself, when `itself` allows that (a file share, or listing a directory share's top).
fn within(share: &Share, asked: &str, itself: bool) -> Result<String, Failure> {
    if asked.is_empty() {
        return match itself {
            true => Ok(share.name.clone()),
            false => Err(Failure::Refuse(
                ErrorCode::InvalidName,
                "a name inside the shared directory is needed".into(),
            )),
        };
    }
    if share.kind == ShareKind::File {
        return Err(Failure::Refuse(
            ErrorCode::PermissionDenied,
            "permission denied: this link is for one file only".into(),
        ));
    }
    let rel: SafeName = safe_name(asked)?;
    Ok(format!("{}/{}", share.name, rel.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::{Access, Limits, Storage};

    fn share(name: &str, kind: ShareKind, access: ShareAccess) -> Scope {
        Scope::Share(Share {
            id: "0123456789ab".into(),
            token_sha256: String::new(),
            root: String::new(),
            name: name.into(),
            kind,
            access,
            created: 0,
            expires: u64::MAX,
            max_uses: None,
            used: 0,
        })
    }

    fn context(mask: Permissions) -> (Context, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        (
            Context::new(storage, Access::Open, mask, Limits::default()),
            dir,
        )
    }

    fn name(
        ctx: &Context,
        scope: &Scope,
        request: Request,
    ) -> Result<(String, bool, bool), String> {
        match decide(ctx, scope, request) {
            Ok(a) => Ok((
                describe(&a.request).1.to_string(),
                a.takes_use.is_some(),
                a.new_only,
            )),
            Err(Failure::Refuse(_, message) | Failure::Abort(_, message)) => Err(message),
        }
    }

    #[test]
    fn a_link_grants_what_it_says_and_nothing_more() {
        let (ctx, _dir) = context(Permissions::ALL);
        let list = |dir: &str| Request::List { dir: dir.into() };
        let get = |name: &str| Request::ResumeDownload {
            name: name.into(),
            have: 0,
        };
        let put = |name: &str| Request::Upload {
            name: name.into(),
            size: 1,
        };
        let del = |name: &str| Request::Delete { name: name.into() };

        let file = share("docs/report.pdf", ShareKind::File, ShareAccess::Read);
        assert_eq!(
            name(&ctx, &file, get("")),
            Ok(("docs/report.pdf".into(), true, false))
        );
        for request in [get("other.pdf"), get("../x"), list(""), put("x"), del("")] {
            assert!(name(&ctx, &file, request.clone()).is_err(), "{request:?}");
        }

        let dir = share("photos", ShareKind::Dir, ShareAccess::Read);
        assert_eq!(
            name(&ctx, &dir, list("")),
            Ok(("photos".into(), false, false))
        );
        assert_eq!(
            name(&ctx, &dir, list("2026")),
            Ok(("photos/2026".into(), false, false))
        );
        assert_eq!(
            name(&ctx, &dir, get("a.jpg")),
            Ok(("photos/a.jpg".into(), true, false))
        );
        for request in [
            get(""),
            get("../secret"),
            get("a/../../b"),
            list(".."),
            put("a.jpg"),
            del("a.jpg"),
        ] {
            assert!(name(&ctx, &dir, request.clone()).is_err(), "{request:?}");
        }

        let drop = share("uploads", ShareKind::Dir, ShareAccess::UploadOnly);
        assert_eq!(
            name(&ctx, &drop, put("new.txt")),
            Ok(("uploads/new.txt".into(), true, true))
        );
        for request in [
            put(""),
            put("../x"),
            list(""),
            get("new.txt"),
            del("new.txt"),
        ] {
            assert!(name(&ctx, &drop, request.clone()).is_err(), "{request:?}");
        }
        // A read-only server refuses a drop box's uploads too.
        let (read_only, _dir) = context(Permissions::READ);
        assert!(name(&read_only, &drop, put("new.txt")).is_err());
    }

    #[test]
    fn a_whole_server_session_has_the_keyless_permissions() {
        let (ctx, _dir) = context(Permissions::ALL);
        let reader = Scope::Whole(Permissions::READ);
        let upload = Request::Upload {
            name: "a".into(),
            size: 1,
        };
        let refused = name(&ctx, &reader, upload).unwrap_err();
        assert!(
            refused.contains("needs the 'write' permission"),
            "{refused}"
        );
        let list = Request::List { dir: "a".into() };
        assert_eq!(name(&ctx, &reader, list), Ok(("a".into(), false, false)));
        // Whatever the permissions, a browser makes no links and stops no server.
        let everything = Scope::Whole(Permissions::ALL);
        for request in [
            Request::ShareList,
            Request::Shutdown,
            Request::ResumeUpload {
                name: "a".into(),
                size: 1,
            },
        ] {
            assert!(
                name(&ctx, &everything, request.clone()).is_err(),
                "{request:?}"
            );
        }
    }
}
