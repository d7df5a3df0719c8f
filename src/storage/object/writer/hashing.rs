//! The hashing of a writer's parts, on a thread of its own: each part's SHA-256 (a resume
//! piece) and the whole object's hash state after it, which a resumable upload records with
//! the part so that the next attempt, on any server, can say what is held and continue the
//! whole file's hash without reading the parts back (those of an open multipart upload cannot
//! be read).

use bytes::Bytes;
use sha2::{Digest, Sha256};

/// The SHA-256 of one part's bytes, and the whole object's hash state after the part.
#[derive(Debug, Clone)]
pub(in crate::storage::object) struct Hashed {
    pub sha256: [u8; 32],
    pub state: Sha256,
}

/// The hashing thread of a writer: parts in, in order; their [`Hashed`] out, in the same order.
#[derive(Debug)]
pub(super) struct Hashing {
    pub parts: std::sync::mpsc::Sender<Bytes>,
    pub hashed: tokio::sync::mpsc::UnboundedReceiver<Hashed>,
}

impl Hashing {
    /// Starts the thread, continuing the whole object's hash from `state`.
    pub fn start(state: Sha256) -> Self {
        let (parts, incoming) = std::sync::mpsc::channel::<Bytes>();
        let (out, hashed) = tokio::sync::mpsc::unbounded_channel();
        // Ends when the writer (the sender) goes. A thread of its own, not the runtime's
        // blocking pool: a runtime shutting down waits for those. If it cannot start, its
        // results never come, and the upload fails with "the hashing of the parts stopped".
        let spawned = std::thread::Builder::new()
            .name("qft-part-hash".into())
            .spawn(move || {
                let mut whole = state;
                while let Ok(part) = incoming.recv() {
                    let sha256 = Sha256::digest(&part).into();
                    whole.update(&part);
                    let state = whole.clone();
                    if out.send(Hashed { sha256, state }).is_err() {
                        break;
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot start hashing an upload's parts: {e}");
        }
        Hashing { parts, hashed }
    }
}
