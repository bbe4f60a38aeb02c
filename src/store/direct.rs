//! Writing the rest of a large blob past the page cache (`O_DIRECT`), on a thread of
//! its own, while the encrypting thread goes on sealing.
//!
//! Why: on a virtual machine whose memory balloon gives freed pages back to the host,
//! copying a GiB into the page cache sometimes takes several times longer than
//! sealing it (docs/PERFORMANCE.md), and a buffered write does that copy on the
//! encrypting thread. A direct write moves the bytes from two reused buffers to the
//! disk instead, and the final fsync has only metadata left.
//!
//! How: a blob starts buffered. Once it has grown past [`DIRECT_AFTER`] and its size
//! is a multiple of [`ALIGN`], and if one of [`DIRECT_SLOTS`] is free (each costs two
//! 1 MiB buffers), the file description is switched to `O_DIRECT` and later bytes are
//! staged in aligned 1 MiB buffers that a writer thread writes in order. At the end,
//! the last whole blocks go the same way and the remaining bytes (less than a block)
//! are written buffered once the writer is done. A filesystem that refuses `O_DIRECT`
//! (when set, or on a write) gets the same bytes buffered instead: nothing is written
//! twice or skipped, since a refused write moves no file offset. Either way the blob
//! is fsynced by its [`super::blobs::NewBlob::seal`] before it counts.

use std::fs::File;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};

use crate::budget::{Budget, Claim};

/// Bytes a blob is written through the page cache before it may go direct: most
/// items (messages, documents) never do.
pub(super) const DIRECT_AFTER: u64 = 8 * 1024 * 1024;
/// Alignment of a direct write's memory, file offset and length: 4 KiB covers the
/// logical block sizes of the disks in use.
pub(super) const ALIGN: usize = 4096;
/// Bytes per direct write.
const BUFFER: usize = 1024 * 1024;
/// Blobs written direct at once (each holds two buffers: 2 MiB); others stay buffered.
const DIRECT_SLOTS: usize = 1;
static SLOTS: Budget = Budget::new(DIRECT_SLOTS);

/// The direct part of one blob's writing. Drop waits for the writer thread.
pub(super) struct Direct {
    /// The buffer being filled.
    filling: Aligned,
    to_writer: Option<SyncSender<Aligned>>,
    /// Buffers the writer has written, to fill again.
    written: Receiver<Aligned>,
    thread: Option<JoinHandle<io::Result<()>>>,
    _slot: Claim<'static>,
}

impl Direct {
    /// Switches `file` (whose size so far is a multiple of [`ALIGN`]) to direct
    /// writes, if a slot is free and the filesystem takes `O_DIRECT`; `None` leaves
    /// it buffered.
    pub(super) fn start(file: &File) -> Option<Direct> {
        let slot = SLOTS.take(1, 1);
        if slot.units() == 0 {
            return None;
        }
        let flags = fcntl_getfl(file).ok()?;
        fcntl_setfl(file, flags | OFlags::DIRECT).ok()?;
        let Ok(mut theirs) = file.try_clone() else {
            let _ = fcntl_setfl(file, flags);
            return None;
        };
        let (to_writer, jobs) = mpsc::sync_channel::<Aligned>(1);
        let (done, written) = mpsc::sync_channel::<Aligned>(2);
        done.send(Aligned::new())
            .expect("the channel has room and its receiver is here");
        let thread = std::thread::Builder::new()
            .name("blob-writer".into())
            .spawn(move || -> io::Result<()> {
                let mut direct = true;
                for mut buffer in jobs {
                    write_blocks(&mut theirs, buffer.data(), &mut direct)?;
                    buffer.len = 0;
                    // The other side has gone (finished or dropped): nothing to return.
                    let _ = done.send(buffer);
                }
                Ok(())
            });
        let Ok(thread) = thread else {
            let _ = fcntl_setfl(file, flags);
            return None;
        };
        Some(Direct {
            filling: Aligned::new(),
            to_writer: Some(to_writer),
            written,
            thread: Some(thread),
            _slot: slot,
        })
    }

    /// Stages `buf` (some of it, up to a full buffer); a full buffer goes to the
    /// writer. An error is the writer's (a full disk, say): the blob is lost.
    pub(super) fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.filling.put(buf);
        if self.filling.len == BUFFER {
            let next = match self.written.recv() {
                Ok(next) => next,
                Err(_) => return Err(self.failure()),
            };
            let full = std::mem::replace(&mut self.filling, next);
            let sent = self.to_writer.as_ref().map(|to| to.send(full));
            if !matches!(sent, Some(Ok(()))) {
                return Err(self.failure());
            }
        }
        Ok(n)
    }

    /// Writes what is staged: whole blocks by the writer, then the rest buffered
    /// through `file` (which shares the writer's file description and offset).
    pub(super) fn finish(mut self, file: &mut File) -> io::Result<()> {
        let whole = self.filling.len / ALIGN * ALIGN;
        let rest = self.filling.data()[whole..].to_vec();
        self.filling.len = whole;
        if whole > 0 {
            let full = std::mem::replace(&mut self.filling, Aligned::empty());
            let sent = self.to_writer.as_ref().map(|to| to.send(full));
            if !matches!(sent, Some(Ok(()))) {
                return Err(self.failure());
            }
        }
        self.wait()?;
        let flags = fcntl_getfl(&*file)?;
        fcntl_setfl(&*file, flags - OFlags::DIRECT)?;
        file.write_all(&rest)
    }

    /// The writer thread's error, once it has ended.
    fn failure(&mut self) -> io::Error {
        match self.wait() {
            Err(err) => err,
            Ok(()) => io::Error::other("the blob writer stopped"),
        }
    }

    /// Ends the writer (after what it was given) and returns how it ended.
    fn wait(&mut self) -> io::Result<()> {
        self.to_writer = None;
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the blob writer panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for Direct {
    fn drop(&mut self) {
        // An abandoned blob: its file is removed by its owner; the writer must not
        // outlive it by more than what it was given.
        let _ = self.wait();
    }
}

/// Writes `data` at the file's offset: direct while the filesystem takes it, then
/// buffered (a refused direct write moves no offset, so it is written once).
fn write_blocks(file: &mut File, mut data: &[u8], direct: &mut bool) -> io::Result<()> {
    while !data.is_empty() {
        match file.write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err)
                if *direct
                    && err.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) =>
            {
                *direct = false;
                let flags = fcntl_getfl(&*file)?;
                fcntl_setfl(&*file, flags - OFlags::DIRECT)?;
            }
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// A 1 MiB buffer at an [`ALIGN`]ed address, `len` bytes of it in use. It holds
/// ciphertext only, so it is not wiped.
struct Aligned {
    bytes: Vec<u8>,
    start: usize,
    len: usize,
}

impl Aligned {
    fn new() -> Self {
        let bytes = vec![0u8; BUFFER + ALIGN];
        let start = bytes.as_ptr().align_offset(ALIGN);
        assert!(start < ALIGN, "a byte buffer can start at any address");
        Aligned {
            bytes,
            start,
            len: 0,
        }
    }

    /// No buffer (what is left in place of one given away at the end).
    fn empty() -> Self {
        Aligned {
            bytes: Vec::new(),
            start: 0,
            len: 0,
        }
    }

    fn data(&self) -> &[u8] {
        &self.bytes[self.start..self.start + self.len]
    }

    /// Copies as much of `buf` as fits; returns how much.
    fn put(&mut self, buf: &[u8]) -> usize {
        let n = (BUFFER - self.len).min(buf.len());
        let at = self.start + self.len;
        self.bytes[at..at + n].copy_from_slice(&buf[..n]);
        self.len += n;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// A direct writer for `file`, once the one slot is free (another test may hold
    /// it for a moment). The temp directory's filesystem must take `O_DIRECT`.
    fn started(file: &File) -> Direct {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(direct) = Direct::start(file) {
                return direct;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no direct writer within 10 s: is the temp directory on a filesystem without O_DIRECT?"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Bytes that differ from one block to the next.
    fn noise(size: usize) -> Vec<u8> {
        (0..size).map(|i| (i % 251 + i / 4093) as u8).collect()
    }

    #[test]
    fn a_blob_written_direct_in_odd_pieces_reads_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let mut file = File::create(&path).unwrap();
        let data = noise(3 * BUFFER + 5 * ALIGN + 77);
        // A buffered start that ends on a block, as BlobWriter switches.
        file.write_all(&data[..ALIGN]).unwrap();
        let mut direct = started(&file);
        let mut rest = &data[ALIGN..];
        while !rest.is_empty() {
            let piece = rest.len().min(65_552);
            let n = direct.write(&rest[..piece]).unwrap();
            rest = &rest[n..];
        }
        direct.finish(&mut file).unwrap();
        assert!(!fcntl_getfl(&file).unwrap().contains(OFlags::DIRECT));
        file.sync_all().unwrap();
        let mut back = Vec::new();
        File::open(&path).unwrap().read_to_end(&mut back).unwrap();
        assert!(back == data);
    }

    #[test]
    fn a_slot_is_taken_once_and_given_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::create(dir.path().join("blob")).unwrap();
        let first = started(&file);
        assert!(Direct::start(&file).is_none(), "one blob at a time");
        drop(first);
        drop(started(&file));
    }
}
