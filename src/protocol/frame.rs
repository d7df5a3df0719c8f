//! Length-prefixed postcard frames: the only code that reads or writes message bytes.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::Message;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer ended the stream cleanly where a frame should have started.
    #[error("the peer closed the stream before sending a message")]
    Closed,
    /// The stream ended inside a frame.
    #[error("the peer's message was cut short")]
    Truncated,
    /// The length prefix is over this message type's limit; nothing was allocated.
    #[error("the peer sent a {len}-byte message, over the {max}-byte limit")]
    TooLarge {
        /// Declared length.
        len: u64,
        /// The limit for this message type.
        max: usize,
    },
    /// The bytes are not exactly one message of the expected type.
    #[error("the peer sent a malformed message")]
    Malformed,
    /// A well-formed frame holding a variant this build does not know (from a newer peer).
    #[error("the peer sent a kind of message this version does not know")]
    UnknownVariant,
    /// The stream itself failed (connection lost, stream reset).
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Reads one frame of type `T`, refusing oversized lengths before allocating.
pub async fn read_frame<T: Message, R: AsyncRead + Unpin>(reader: &mut R) -> Result<T, FrameError> {
    read_frame_limited(reader, T::MAX_LEN).await
}

/// [`read_frame`] with a limit below the type's own (a server's `--max-frame`).
pub async fn read_frame_limited<T: Message, R: AsyncRead + Unpin>(
    reader: &mut R,
    limit: usize,
) -> Result<T, FrameError> {
    let max = limit.min(T::MAX_LEN);
    let mut prefix = [0u8; 4];
    let mut got = 0;
    while got < prefix.len() {
        match reader.read(&mut prefix[got..]).await? {
            0 if got == 0 => return Err(FrameError::Closed),
            0 => return Err(FrameError::Truncated),
            n => got += n,
        }
    }
    let len = u32::from_be_bytes(prefix) as usize;
    if len > max {
        return Err(FrameError::TooLarge {
            len: len as u64,
            max,
        });
    }
    let mut buf = vec![0u8; len];
    reader
        .read_exact(&mut buf)
        .await
        .map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => FrameError::Truncated,
            _ => FrameError::Io(e),
        })?;
    decode(&buf)
}

/// Decodes exactly one message from `bytes`; trailing bytes make it malformed.
pub fn decode<T: Message>(bytes: &[u8]) -> Result<T, FrameError> {
    if bytes.len() > T::MAX_LEN {
        return Err(FrameError::TooLarge {
            len: bytes.len() as u64,
            max: T::MAX_LEN,
        });
    }
    match postcard::take_from_bytes::<T>(bytes) {
        // postcard also accepts overlong varints (0x80 0x00 for 0); only the canonical
        // encoding is a valid frame, so that every message has exactly one.
        Ok((msg, [])) if postcard::to_stdvec(&msg).is_ok_and(|canonical| canonical == bytes) => {
            Ok(msg)
        }
        Ok(_) => Err(FrameError::Malformed),
        // postcard writes an enum's variant index first, as a varint; a one-byte index past the
        // known ones is a newer peer's request, not garbage.
        Err(_)
            if T::VARIANTS.is_some_and(|n| {
                bytes
                    .first()
                    .is_some_and(|&b| b < 0x80 && u32::from(b) >= n)
            }) =>
        {
            Err(FrameError::UnknownVariant)
        }
        _ => Err(FrameError::Malformed),
    }
}

/// Encodes `msg` as one frame (prefix included).
pub fn encode<T: Message>(msg: &T) -> Result<Vec<u8>, FrameError> {
    // Reserve the prefix, then let postcard append: one buffer, one write.
    let mut buf = postcard::to_extend(msg, vec![0u8; 4]).map_err(|_| FrameError::Malformed)?;
    let len = buf.len() - 4;
    if len > T::MAX_LEN {
        // Only our own bug can get here (e.g. an over-long name that escaped validation).
        return Err(FrameError::TooLarge {
            len: len as u64,
            max: T::MAX_LEN,
        });
    }
    buf[..4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(buf)
}

/// Writes one frame.
pub async fn write_frame<T: Message, W: AsyncWrite + Unpin>(
    writer: &mut W,
    msg: &T,
) -> Result<(), FrameError> {
    let buf = encode(msg)?;
    writer.write_all(&buf).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ErrorCode, Request, Response, Trailer};

    #[tokio::test]
    async fn round_trips_every_shape() {
        let msgs = vec![
            Request::List { dir: String::new() },
            Request::Upload {
                name: "a/b.txt".into(),
                size: u64::MAX,
            },
            Request::Help,
        ];
        for msg in msgs {
            let bytes = encode(&msg).unwrap();
            let back: Request = read_frame(&mut &bytes[..]).await.unwrap();
            assert_eq!(back, msg);
        }
        let err = Response::Error {
            code: ErrorCode::Other(999),
            message: "x".into(),
        };
        let bytes = encode(&err).unwrap();
        assert_eq!(
            read_frame::<Response, _>(&mut &bytes[..]).await.unwrap(),
            err
        );
    }

    #[tokio::test]
    async fn oversized_length_is_refused_before_allocating() {
        // A prefix of 2^32 - 1: if this allocated, the test would abort on memory.
        let bytes = [0xff, 0xff, 0xff, 0xff];
        let err = read_frame::<Request, _>(&mut &bytes[..]).await.unwrap_err();
        assert!(
            matches!(
                err,
                FrameError::TooLarge {
                    len: 4294967295,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn truncated_and_empty_streams_are_told_apart() {
        let empty: &[u8] = &[];
        assert!(matches!(
            read_frame::<Request, _>(&mut &empty[..]).await,
            Err(FrameError::Closed)
        ));
        let bytes = encode(&Request::Help).unwrap();
        let cut = &bytes[..bytes.len() - 1];
        assert!(matches!(
            read_frame::<Request, _>(&mut &cut[..]).await,
            Err(FrameError::Truncated)
        ));
        assert!(matches!(
            read_frame::<Request, _>(&mut &bytes[..2]).await,
            Err(FrameError::Truncated)
        ));
    }

    #[test]
    fn only_the_canonical_encoding_decodes() {
        // Delete { name: "" } is [3, 0]; [3, 0x80, 0x00] spells the same length overlong.
        assert_eq!(
            decode::<Request>(&[3, 0]).unwrap(),
            Request::Delete {
                name: String::new()
            }
        );
        assert!(matches!(
            decode::<Request>(&[3, 0x80, 0x00]),
            Err(FrameError::Malformed)
        ));
    }

    #[tokio::test]
    async fn trailing_bytes_and_garbage_are_malformed() {
        let mut bytes = encode(&Trailer { sha256: [7; 32] }).unwrap();
        bytes.push(0);
        let len = (bytes.len() - 4) as u32;
        bytes[..4].copy_from_slice(&len.to_be_bytes());
        assert!(matches!(
            read_frame::<Trailer, _>(&mut &bytes[..]).await,
            Err(FrameError::Malformed)
        ));
        let newer = [0, 0, 0, 2, 90, 0];
        assert!(matches!(
            read_frame::<Request, _>(&mut &newer[..]).await,
            Err(FrameError::UnknownVariant)
        ));
        let garbage = [0, 0, 0, 3, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame::<Request, _>(&mut &garbage[..]).await,
            Err(FrameError::Malformed)
        ));
    }
}
