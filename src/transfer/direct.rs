//! Direct writes: a received file's blocks go from the copy's buffer to the disk without passing
//! through the page cache (O_DIRECT), on the filesystems known to do that well.
//!
//! Why: through the page cache, every byte received is copied once more by the kernel into
//! pages it must first find and allocate, and then written back from them: 0.26 CPU s per GB on
//! the receiving end here, a fifth of what a verified receiver spends (BENCHMARKS.md); on a
//! virtual machine that hands freed memory back to its host, each of those new pages can cost
//! a fault on the host too (up to 2 s per GiB on the benchmark machine). And a large file fills
//! the page cache with pages nobody asked to keep, pushing out what was there.
//! A direct write copies the block once, in user space, into one aligned buffer used again and
//! again, and the disk reads it from there. Durability is unchanged: the commit's fsync still
//! runs (it then has only the device's cache and the metadata left to flush); a direct write's
//! error comes back from the write itself.
//!
//! Where: ext2/3/4 and XFS only. On NFS every direct write is a synchronous round trip to the
//! server; tmpfs, FUSE and others refuse it, emulate it, or (btrfs, with data checksums) have had
//! their troubles with it: they keep the page cache. Elsewhere than Linux nothing changes.
//!
//! How: a second open file of the same inode, with O_DIRECT (the transfer's own file keeps its
//! flags: the commit and any other user see a plain file), opened at the first block of a MiB. From
//! then on a block whose offset is aligned has its aligned part written directly and its tail (the
//! last block of a file, shorter) through the plain file; a block at an odd offset (a resume that
//! stopped mid-block) goes through the plain file whole. If the kernel refuses a direct write
//! (EINVAL: alignment, or a filesystem that does not do it after all), direct writes stop for the
//! rest of the file and that block goes the plain way: nothing is written twice or lost.

use std::fs::File;
use std::io;

use bytes::Bytes;

use super::{write_all_at, LARGE_BLOCK};

/// How a file being received is written: directly once a block of a [`LARGE_BLOCK`] shows that
/// data is coming fast enough for it (a small file, or a slow link's 256 KiB blocks, never opens
/// a second file: a direct write of 256 KiB costs more per byte than the page cache), else the
/// plain way.
#[derive(Debug)]
pub struct Writes {
    state: State,
    /// How the direct file is opened: [`Direct::open`], or in tests on any filesystem.
    open: fn(&File) -> Option<Direct>,
}

impl Default for Writes {
    fn default() -> Self {
        Writes {
            state: State::Untried,
            open: Direct::open,
        }
    }
}

#[derive(Debug)]
enum State {
    /// Not tried yet: no block large enough has come.
    Untried,
    On(Direct),
    /// Not available for this file, or refused by the kernel.
    Off,
}

impl Writes {
    /// Writes all of `pieces` to `file` at `pos`, directly where it can. Returns whether any of
    /// it went through the page cache (so the caller's early writeback has something to do).
    pub fn write_at(&mut self, file: &File, pos: u64, pieces: &[Bytes]) -> io::Result<bool> {
        let len: u64 = pieces.iter().map(|p| p.len() as u64).sum();
        if matches!(self.state, State::Untried) && len >= LARGE_BLOCK as u64 {
            self.state = (self.open)(file).map_or(State::Off, State::On);
        }
        let State::On(direct) = &mut self.state else {
            write_all_at(file, pos, pieces)?;
            return Ok(true);
        };
        let wrote = direct.write(pos, pieces)?;
        if wrote.refused {
            self.state = State::Off;
        }
        if wrote.direct < len {
            write_all_at(file, pos + wrote.direct, &after(pieces, wrote.direct))?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Whether blocks are being written directly.
    #[cfg(test)]
    fn is_direct(&self) -> bool {
        matches!(self.state, State::On(_))
    }
}

/// The file opened with O_DIRECT, and the aligned buffer its writes go through.
#[derive(Debug)]
struct Direct {
    file: File,
    /// Offsets and lengths of direct writes are multiples of this, and so is the buffer's address.
    align: usize,
    /// [`LARGE_BLOCK`] + `align` bytes, of which the [`LARGE_BLOCK`] from the first aligned
    /// address are used: one direct write per block a receiver hands on.
    buf: Vec<u8>,
}

/// What [`Direct::write`] did: bytes written directly from the start of the block; whether the
/// kernel refused a direct write (then no more should be tried).
struct Wrote {
    direct: u64,
    refused: bool,
}

impl Direct {
    /// A direct handle on `file`'s inode, if its filesystem is one of those direct writes suit.
    fn open(file: &File) -> Option<Direct> {
        platform::suits(file)?;
        Direct::open_any(file)
    }

    /// A direct handle on `file`'s inode, whatever its filesystem (tests use it as is).
    fn open_any(file: &File) -> Option<Direct> {
        let align = platform::alignment(file)?;
        let own = platform::reopen_direct(file)?;
        Some(Direct::with(own, align))
    }

    fn with(file: File, align: usize) -> Direct {
        Direct {
            file,
            align,
            buf: vec![0; LARGE_BLOCK + align],
        }
    }

    /// Writes the aligned part of `pieces` at `pos`, [`LARGE_BLOCK`] at a time; the caller
    /// writes the rest. An error other than a refusal is the write's own (no space, the device
    /// failed).
    fn write(&mut self, pos: u64, pieces: &[Bytes]) -> io::Result<Wrote> {
        let len: u64 = pieces.iter().map(|p| p.len() as u64).sum();
        let align = self.align as u64;
        let aligned = if pos.is_multiple_of(align) {
            len - len % align
        } else {
            0
        };
        let start = self.buf.as_ptr().align_offset(self.align);
        let mut done = 0u64;
        while done < aligned {
            let n = (aligned - done).min(LARGE_BLOCK as u64) as usize;
            let window = &mut self.buf[start..start + n];
            copy_out(pieces, done, window);
            match platform::pwrite(&self.file, window, pos + done) {
                // A short write leaves the rest to the plain file, which takes any alignment.
                Ok(wrote) if wrote < n => {
                    return Ok(Wrote {
                        direct: done + wrote as u64,
                        refused: false,
                    })
                }
                Ok(_) => done += n as u64,
                Err(e) if platform::is_refusal(&e) => {
                    return Ok(Wrote {
                        direct: done,
                        refused: true,
                    })
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Wrote {
            direct: done,
            refused: false,
        })
    }
}

/// Copies `dst.len()` bytes of the concatenated `pieces`, from byte `from`, into `dst`.
fn copy_out(pieces: &[Bytes], from: u64, dst: &mut [u8]) {
    let mut skip = from;
    let mut filled = 0;
    for piece in pieces {
        if filled == dst.len() {
            break;
        }
        let plen = piece.len() as u64;
        if skip >= plen {
            skip -= plen;
            continue;
        }
        let piece = &piece[skip as usize..];
        skip = 0;
        let n = piece.len().min(dst.len() - filled);
        dst[filled..filled + n].copy_from_slice(&piece[..n]);
        filled += n;
    }
}

/// What follows the first `from` bytes of `pieces`, as pieces (sharing their memory).
fn after(pieces: &[Bytes], from: u64) -> Vec<Bytes> {
    let mut skip = from;
    let mut rest = Vec::new();
    for piece in pieces {
        let plen = piece.len() as u64;
        if skip >= plen {
            skip -= plen;
            continue;
        }
        rest.push(piece.slice(skip as usize..));
        skip = 0;
    }
    rest
}

#[cfg(target_os = "linux")]
mod platform {
    use std::fs::{File, OpenOptions};
    use std::io;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;

    use rustix::fs::{AtFlags, OFlags, StatxFlags};

    /// ext2/3/4's and XFS's magic numbers (statfs(2)).
    const EXT4: u64 = 0xEF53;
    const XFS: u64 = 0x5846_5342;
    /// Past this, an alignment is not one a local disk asks for: stay on the page cache.
    const MAX_ALIGN: u32 = 64 << 10;

    pub fn suits(file: &File) -> Option<()> {
        let kind = rustix::fs::fstatfs(file).ok()?.f_type as u64;
        suits_kind(kind).then_some(())
    }

    /// Whether a filesystem of this statfs(2) type is one direct writes suit.
    pub fn suits_kind(kind: u64) -> bool {
        matches!(kind, EXT4 | XFS)
    }

    /// The alignment direct writes to `file` need: what the kernel reports (Linux 6.1 and
    /// later; none means the file takes no direct writes), else 4 KiB, which any disk takes.
    pub fn alignment(file: &File) -> Option<usize> {
        let align = match rustix::fs::statx(file, "", AtFlags::EMPTY_PATH, StatxFlags::DIOALIGN) {
            Ok(st) if st.stx_mask & StatxFlags::DIOALIGN.bits() != 0 => {
                if st.stx_dio_offset_align == 0 || st.stx_dio_mem_align == 0 {
                    return None;
                }
                st.stx_dio_offset_align.max(st.stx_dio_mem_align)
            }
            _ => 4096,
        };
        (align.is_power_of_two() && align <= MAX_ALIGN).then_some(align as usize)
    }

    /// A second open file of `file`'s inode, for writing, with O_DIRECT.
    pub fn reopen_direct(file: &File) -> Option<File> {
        OpenOptions::new()
            .write(true)
            .custom_flags(OFlags::DIRECT.bits() as i32)
            .open(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .ok()
    }

    pub fn pwrite(file: &File, buf: &[u8], pos: u64) -> io::Result<usize> {
        loop {
            match rustix::io::pwrite(file, buf, pos) {
                Err(rustix::io::Errno::INTR) => continue,
                other => return Ok(other?),
            }
        }
    }

    /// The kernel's "not like this" to a direct write, as opposed to a failure of the write.
    pub fn is_refusal(e: &io::Error) -> bool {
        e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
mod platform {
    use std::fs::File;
    use std::io;

    pub fn suits(_: &File) -> Option<()> {
        None
    }
    pub fn alignment(_: &File) -> Option<usize> {
        None
    }
    pub fn reopen_direct(_: &File) -> Option<File> {
        None
    }
    pub fn pwrite(_: &File, _: &[u8], _: u64) -> io::Result<usize> {
        Err(io::ErrorKind::Unsupported.into())
    }
    pub fn is_refusal(_: &io::Error) -> bool {
        true
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests;
