//! Uploads to the object store: plain ones (staged under a fresh id, gone if dropped) and
//! resumable ones (staged under an id derived from the client's key, the name and the size,
//! kept when the transfer breaks, continued by the same client through any server).
//!
//! Claims: in this process, a newer attempt of the same client tells the older one to let go and
//! waits until it has stored what it held; across servers, the manifest's conditional writes do
//! the same job, more bluntly (the older attempt's next write fails).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutOptions, PutPayload};
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, Notify, OwnedMutexGuard};

use super::publish::sha256_attributes;
use super::read::ObjectContent;
use super::staging::{ObjectSink, Staging, PARTIALS, UPLOADS};
use super::{from_store, Inner, Object};
use crate::paths::SafeName;
use crate::pieces::Pieces;
use crate::protocol::FileMeta;
use crate::storage::{
    Partial, PartialInner, PartialLimits, ReadStream, StorageError, Upload, UploadInner,
    WriteStream,
};

/// How long a newer attempt waits for an older one in this process to store what it held.
const LET_GO_WAIT: Duration = Duration::from_secs(30);

/// A partial in use in this process.
#[derive(Debug, Clone)]
pub(super) struct Claim {
    /// Tells the attempt holding it to let go.
    notify: Arc<Notify>,
    /// Held by that attempt until it has stored what it held.
    busy: Arc<Mutex<()>>,
}

/// A plain upload being received.
#[derive(Debug)]
pub struct ObjectUpload {
    staging: Arc<Mutex<Staging>>,
    /// The file's key (a small body is put there whole).
    target: Path,
    name: String,
    inner: Arc<Inner>,
    committed: bool,
    /// What the file keeps besides its bytes.
    meta: FileMeta,
}

/// A resumable upload's partial in use by one attempt.
#[derive(Debug)]
pub struct ObjectPartial {
    staging: Arc<Mutex<Staging>>,
    manifest_key: String,
    claim: Claim,
    /// Released (in [`Drop`], after storing what is held) to let a newer attempt in.
    busy: Option<OwnedMutexGuard<()>>,
    inner: Arc<Inner>,
    /// Committed or discarded: nothing to store on drop.
    done: bool,
}

/// A name no other staging area has: time, process, and a counter, hashed.
pub(super) fn unique() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut h = Sha256::new();
    h.update(std::process::id().to_be_bytes());
    h.update(NEXT.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    h.update(now.as_nanos().to_be_bytes());
    crate::transfer::hex(&h.finalize().into())[..24].to_owned()
}

impl Object {
    pub(in crate::storage) async fn begin_upload(
        &self,
        name: SafeName,
        size: u64,
    ) -> Result<Upload, StorageError> {
        let inner = self.inner.clone();
        let target = inner.check_target(&name).await?;
        let staging = Staging::new(
            inner.clone(),
            UPLOADS,
            &unique(),
            name.as_str(),
            target.clone(),
            size,
            unique(),
            false,
        );
        Ok(Upload {
            inner: UploadInner::Object(ObjectUpload {
                staging: Arc::new(Mutex::new(staging)),
                target,
                name: name.to_string(),
                inner,
                committed: false,
                meta: FileMeta::default(),
            }),
        })
    }

    pub(in crate::storage) async fn begin_partial(
        &self,
        name: SafeName,
        client: [u8; 32],
        size: u64,
        limits: PartialLimits,
    ) -> Result<Partial, StorageError> {
        let inner = self.inner.clone();
        let shown = name.to_string();
        let target = inner.check_target(&name).await?;
        let id = partial_id(&name, client, size);
        let claim = Claim {
            notify: Arc::new(Notify::new()),
            busy: Arc::new(Mutex::new(())),
        };
        let busy = claim.busy.clone().lock_owned().await;
        let previous = inner.claims().insert(id.clone(), claim.clone());
        if let Some(previous) = previous {
            previous.notify.notify_one();
            // Until the older attempt stored what it held, the manifest does not say it all.
            if tokio::time::timeout(LET_GO_WAIT, previous.busy.lock())
                .await
                .is_err()
            {
                tracing::warn!("an older attempt did not let go in time; taking over");
            }
        }
        if !inner.is_current(&id, &claim) {
            return Err(StorageError::Superseded(shown));
        }
        let mut staging = Staging::new(
            inner.clone(),
            PARTIALS,
            &id,
            &shown,
            target,
            size,
            unique(),
            true,
        );
        let opened = async {
            // A new partial only within the limits; one there already is continued.
            match inner.store.objects.head(&staging.manifest_key).await {
                Ok(_) => {}
                Err(object_store::Error::NotFound { .. }) => {
                    let client = crate::transfer::hex(&client);
                    super::expire::admit(&inner, &client, limits, &shown).await?;
                }
                Err(e) => return Err(from_store(&shown, e)),
            }
            staging.take_over(staging.manifest.owner.clone()).await?;
            Ok(())
        }
        .await;
        if let Err(e) = opened {
            inner.release(&id, &claim);
            return Err(e);
        }
        let held = staging.manifest.held();
        Ok(Partial {
            held,
            inner: PartialInner::Object(ObjectPartial {
                staging: Arc::new(Mutex::new(staging)),
                manifest_key: id,
                claim,
                busy: Some(busy),
                inner,
                done: false,
            }),
        })
    }
}

/// The id of the partial of `client` uploading `size` bytes as `name`: the client's key, so
/// its partials can be counted by prefix, then length-prefixed fields hashed, so no two
/// (client, name, size) share one.
fn partial_id(name: &SafeName, client: [u8; 32], size: u64) -> String {
    let text = name.as_str();
    let mut key = Sha256::new();
    key.update(client);
    key.update((text.len() as u64).to_be_bytes());
    key.update(text.as_bytes());
    key.update(size.to_be_bytes());
    let key: [u8; 32] = key.finalize().into();
    format!(
        "{}-{}",
        crate::transfer::hex(&client),
        crate::transfer::hex(&key)
    )
}

impl Inner {
    fn claims(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Claim>> {
        self.claims.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_current(&self, id: &str, claim: &Claim) -> bool {
        self.claims()
            .get(id)
            .is_some_and(|c| Arc::ptr_eq(&c.notify, &claim.notify))
    }

    fn release(&self, id: &str, claim: &Claim) {
        let mut claims = self.claims();
        if claims
            .get(id)
            .is_some_and(|c| Arc::ptr_eq(&c.notify, &claim.notify))
        {
            claims.remove(id);
        }
    }
}

impl ObjectUpload {
    pub(in crate::storage) fn set_meta(&mut self, meta: FileMeta) {
        self.meta = meta;
        // Before any body: nothing else holds the staging yet.
        if let Ok(mut staging) = self.staging.try_lock() {
            staging.set_meta(meta);
        }
    }

    pub(in crate::storage) fn sink(&self) -> WriteStream {
        WriteStream::Object(ObjectSink {
            staging: self.staging.clone(),
        })
    }

    pub(in crate::storage) async fn commit(mut self, sha256: [u8; 32]) -> Result<(), StorageError> {
        let result = self.staging.lock().await.publish(sha256).await;
        self.committed = result.is_ok();
        result
    }

    pub(in crate::storage) async fn commit_whole(
        mut self,
        body: Vec<Bytes>,
        sha256: [u8; 32],
    ) -> Result<(), StorageError> {
        // One request, whole or not at all, with its digest beside it.
        let mut attributes = sha256_attributes(sha256);
        super::meta::add_meta(&mut attributes, &self.meta);
        let options = PutOptions {
            attributes,
            ..Default::default()
        };
        let payload: PutPayload = body.into_iter().collect();
        self.inner
            .store
            .objects
            .put_opts(&self.target, payload, options)
            .await
            .map_err(|e| from_store(&self.name, e))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for ObjectUpload {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        // Nothing becomes visible either way; what was staged goes.
        let staging = self.staging.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { staging.lock().await.remove().await });
        }
    }
}

impl ObjectPartial {
    /// Returns the bytes still held: none if they were written with other metadata.
    pub(in crate::storage) fn set_meta(&mut self, meta: FileMeta) -> u64 {
        // Before the body: nothing else holds the staging yet.
        match self.staging.try_lock() {
            Ok(mut staging) => {
                staging.set_meta(meta);
                staging.manifest.held()
            }
            Err(_) => 0,
        }
    }

    pub(in crate::storage) fn source(&self) -> ReadStream {
        // Parts of an open upload cannot be read back: what they hold is described by
        // `pieces` and `state_at` instead, from the manifest. A tail can.
        let staging = self.staging.try_lock();
        let tail = staging.as_ref().ok().and_then(|s| s.manifest.tail.clone());
        let content = match tail {
            Some(tail) => {
                let key = Path::from(tail.key.as_str());
                ObjectContent::new(&self.inner.store, key, None, tail.len, "")
            }
            None => ObjectContent::spans(&self.inner.store, Vec::new(), ""),
        };
        ReadStream::Object(content.source_at(0))
    }

    pub(in crate::storage) fn pieces(&self) -> Option<Pieces> {
        let staging = self.staging.try_lock().ok()?;
        match staging.manifest.tail {
            Some(_) => None,
            None => Some(staging.manifest.pieces()),
        }
    }

    pub(in crate::storage) fn state_at(&self, from: u64) -> Option<Sha256> {
        let staging = self.staging.try_lock().ok()?;
        staging.manifest.state_at(from)
    }

    pub(in crate::storage) fn take_hashing(&mut self, state: Sha256) -> Option<Sha256> {
        match self.staging.try_lock() {
            Ok(mut staging) => staging.take_hashing(state),
            Err(_) => Some(state),
        }
    }

    pub(in crate::storage) async fn digest(&self) -> Result<[u8; 32], StorageError> {
        self.staging.lock().await.digest().await
    }

    pub(in crate::storage) async fn keep(&mut self, from: u64) -> Result<(), StorageError> {
        self.staging.lock().await.keep(from).await
    }

    pub(in crate::storage) fn sink(&self, _from: u64) -> WriteStream {
        // Appends after what is held, which is where `keep` left it.
        WriteStream::Object(ObjectSink {
            staging: self.staging.clone(),
        })
    }

    pub(in crate::storage) fn claim(&self) -> Arc<Notify> {
        self.claim.notify.clone()
    }

    pub(in crate::storage) async fn commit(mut self, sha256: [u8; 32]) -> Result<(), StorageError> {
        let result = self.staging.lock().await.publish(sha256).await;
        // Published, or aborted on the way (see `publish`): nothing to keep either way.
        self.done = true;
        result
    }

    pub(in crate::storage) async fn discard(mut self) {
        self.staging.lock().await.remove().await;
        self.done = true;
    }
}

impl Drop for ObjectPartial {
    fn drop(&mut self) {
        let (inner, id, claim) = (
            self.inner.clone(),
            self.manifest_key.clone(),
            self.claim.clone(),
        );
        let busy = self.busy.take();
        let staging = self.staging.clone();
        let done = self.done;
        let let_go = async move {
            if !done {
                // The transfer broke: what arrived is stored and recorded for the next attempt,
                // wherever it runs; an open multipart upload is left for that attempt to
                // complete (see `staging`).
                match staging.lock().await.store_held().await {
                    Ok(()) => {}
                    // A newer attempt owns the manifest and completes what it records.
                    Err(StorageError::Superseded(_)) => {}
                    // What the manifest recorded before stays usable: nothing is aborted.
                    Err(e) => tracing::debug!("a broken upload's last bytes were not kept: {e}"),
                }
            }
            inner.release(&id, &claim);
            drop(busy);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(let_go);
            }
            Err(_) => self.inner.release(&self.manifest_key, &self.claim),
        }
    }
}
