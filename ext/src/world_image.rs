//! Images of sandbox memory, mapped copy-on-write into other sandboxes: how a group starts from a
//! loaded world in microseconds rather than loading its plugin (and libraries) again.
//!
//! Between calls, everything a guest instance holds is in its linear memory: QuickJS keeps all of
//! its state there, and the guest's only mutable global, its shadow-stack pointer, is back at its
//! start value once a call returns. So a fresh instance whose memory is made equal to a loaded
//! world's memory *is* that world again, with nothing shared: each sandbox maps the image
//! privately, and its writes go to its own pages.
//!
//! Two kinds of image, one type ([`WorldImage`]):
//! - a **loaded world's** image, captured once per connection and plugin version, right after
//!   the plugin was loaded (`plugin.rs`);
//! - the **fresh** image ([`fresh`]): the memory of a new instance of the guest, as wasmtime made
//!   it. A sandbox that had a world mapped in maps this back, and zeros above it, before it goes
//!   back to wasmtime (`sandbox.rs`): wasmtime then finds the memory as it left it, and resets it
//!   as usual.
//!
//! An image is a sealed `memfd` file: mapping it is one `mmap` call, and pages are only copied
//! when a sandbox writes them. A sandbox with an image mapped can also be reset to it in place
//! ([`WorldImage::restore`]): the pages it wrote are exactly its private (anonymous) pages, which
//! the kernel lists (`PAGEMAP_SCAN`); they are copied back from the image, and anything above the
//! image is zeroed. That is what lets a connection keep a loaded world's sandbox between groups.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;

/// Bytes of a page, as the images are cut.
const PAGE_BYTES: usize = 4096;

/// A copy of a sandbox's memory, to map into others.
#[derive(Debug)]
pub struct WorldImage {
    file: OwnedFd,
    len: usize,
    /// The image, mapped read-only: where [`WorldImage::restore`] copies pages back from.
    view: *const u8,
}

// SAFETY: `view` is a read-only mapping of a sealed file, owned by the image; reading it from
// any thread is fine.
unsafe impl Send for WorldImage {}
// SAFETY: as above; nothing mutates through `view`.
unsafe impl Sync for WorldImage {}

impl Drop for WorldImage {
    fn drop(&mut self) {
        // SAFETY: the image's own mapping, unused once the image goes.
        unsafe { libc::munmap(self.view as *mut libc::c_void, self.len) };
    }
}

impl WorldImage {
    /// Copies `memory` into a new sealed memory file. Pages of zeros are left as holes.
    pub fn capture(memory: &[u8]) -> io::Result<WorldImage> {
        // SAFETY: a NUL-terminated name and flags; the result is checked.
        let fd = unsafe { libc::memfd_create(c"jsbox-world".as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor that nothing else owns.
        let file = unsafe { OwnedFd::from_raw_fd(fd) };
        let len = memory.len().next_multiple_of(PAGE_BYTES);
        // SAFETY: a descriptor of ours.
        if unsafe { libc::ftruncate(file.as_raw_fd(), len as libc::off_t) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut at = 0;
        while at < memory.len() {
            // The next run of pages that hold something.
            while at < memory.len() && is_zero(&memory[at..(at + PAGE_BYTES).min(memory.len())]) {
                at += PAGE_BYTES;
            }
            let start = at;
            while at < memory.len() && !is_zero(&memory[at..(at + PAGE_BYTES).min(memory.len())]) {
                at += PAGE_BYTES;
            }
            write_all_at(&file, &memory[start..at.min(memory.len())], start)?;
        }
        let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
        // SAFETY: a descriptor of ours, made with MFD_ALLOW_SEALING.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new read-only mapping of our file.
        let view =
            unsafe { libc::mmap(std::ptr::null_mut(), len.max(PAGE_BYTES), libc::PROT_READ, libc::MAP_PRIVATE, file.as_raw_fd(), 0) };
        if view == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(WorldImage { file, len: len.max(PAGE_BYTES), view: view.cast() })
    }

    /// Makes memory `base..base + size`, where this image was mapped ([`WorldImage::map_over`]),
    /// equal to the image again (and zero above it), however it was written since. (Zero above
    /// it is the memory's content, not its size: see `Sandbox::reset`.)
    ///
    /// # Safety
    ///
    /// As for [`WorldImage::map_over`], and this image must have been mapped at `base` (so that
    /// every page that differs from it is a private page the kernel can list).
    pub unsafe fn restore(&self, base: *mut u8, size: usize) -> io::Result<()> {
        for written in written_pages(base, size)? {
            let copied = written.start..written.end.min(self.len);
            if !copied.is_empty() {
                // SAFETY: both ranges lie in their mappings (the image's, the memory's), which
                // do not overlap.
                unsafe { std::ptr::copy_nonoverlapping(self.view.add(copied.start), base.add(copied.start), copied.len()) };
            }
            let above = written.start.max(self.len)..written.end;
            if !above.is_empty() {
                // SAFETY: inside the caller's memory; its pages above the image become zero.
                unsafe { std::ptr::write_bytes(base.add(above.start), 0, above.len()) };
            }
        }
        Ok(())
    }

    /// Bytes of memory it holds (a whole number of pages).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Maps the image over `base..base + len()`, privately: reads see the image, writes copy
    /// the page.
    ///
    /// # Safety
    ///
    /// `base..base + len()` must be readable and writable memory that this process mapped, that
    /// no reference points into while this runs, and whose contents its owner expects to be
    /// replaced (a guest's linear memory between calls).
    pub unsafe fn map_over(&self, base: *mut u8) -> io::Result<()> {
        // SAFETY: the caller's contract; MAP_FIXED replaces exactly that range.
        let mapped = unsafe {
            libc::mmap(
                base.cast(),
                self.len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_FIXED,
                self.file.as_raw_fd(),
                0,
            )
        };
        if mapped == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Maps fresh zero pages over `base..base + len`.
///
/// # Safety
///
/// As for [`WorldImage::map_over`].
pub unsafe fn zero_over(base: *mut u8, len: usize) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    // SAFETY: the caller's contract; MAP_FIXED replaces exactly that range.
    let mapped = unsafe {
        libc::mmap(base.cast(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED, -1, 0)
    };
    if mapped == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The image of a fresh instance's memory, captured once per process (by `capture`, given a
/// fresh instance's memory, the first time it is needed).
pub fn fresh(capture: impl FnOnce() -> io::Result<WorldImage>) -> Result<&'static WorldImage, String> {
    static FRESH: OnceLock<Result<WorldImage, String>> = OnceLock::new();
    FRESH.get_or_init(|| capture().map_err(|e| e.to_string())).as_ref().map_err(Clone::clone)
}

/// The pages of `base..base + len` that hold private data (written since the range was mapped
/// from a file or as zeros), as byte ranges from `base`: `PAGEMAP_SCAN` (Linux 6.7) for pages
/// present or swapped out that are neither a file's page nor the shared zero page.
fn written_pages(base: *mut u8, len: usize) -> io::Result<Vec<std::ops::Range<usize>>> {
    /// `struct pm_scan_arg` of `<linux/fs.h>`.
    #[repr(C)]
    struct ScanArg {
        size: u64,
        flags: u64,
        start: u64,
        end: u64,
        walk_end: u64,
        vec: u64,
        vec_len: u64,
        max_pages: u64,
        category_inverted: u64,
        category_mask: u64,
        category_anyof_mask: u64,
        return_mask: u64,
    }
    /// `struct page_region`.
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Region {
        start: u64,
        end: u64,
        categories: u64,
    }
    const PAGE_IS_FILE: u64 = 1 << 2;
    const PAGE_IS_PRESENT: u64 = 1 << 3;
    const PAGE_IS_SWAPPED: u64 = 1 << 4;
    const PAGE_IS_PFNZERO: u64 = 1 << 5;
    /// `_IOWR('f', 16, struct pm_scan_arg)`.
    const PAGEMAP_SCAN: libc::c_ulong = 0xC060_6610;

    let pagemap = pagemap()?;
    let mut regions = [Region { start: 0, end: 0, categories: 0 }; 64];
    let mut found = Vec::new();
    let (mut start, end) = (base as u64, base as u64 + len as u64);
    while start < end {
        let mut arg = ScanArg {
            size: std::mem::size_of::<ScanArg>() as u64,
            flags: 0,
            start,
            end,
            walk_end: 0,
            vec: regions.as_mut_ptr() as u64,
            vec_len: regions.len() as u64,
            max_pages: 0,
            category_inverted: PAGE_IS_FILE | PAGE_IS_PFNZERO,
            category_mask: PAGE_IS_FILE | PAGE_IS_PFNZERO,
            category_anyof_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
            return_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
        };
        // SAFETY: the argument and its output vector are valid for the call; the kernel only
        // reads page tables of the given range.
        let filled = unsafe { libc::ioctl(pagemap, PAGEMAP_SCAN, &mut arg) };
        if filled < 0 {
            return Err(io::Error::last_os_error());
        }
        for region in &regions[..filled as usize] {
            found.push((region.start - base as u64) as usize..(region.end - base as u64) as usize);
        }
        if arg.walk_end <= start {
            return Err(io::Error::other("PAGEMAP_SCAN made no progress"));
        }
        start = arg.walk_end;
    }
    Ok(found)
}

/// This process's `/proc/self/pagemap`, opened once per process (again in a forked child, whose
/// inherited descriptor would describe the parent). No lock: a child forked while another
/// thread held one would wait for it forever. The pid and descriptor live in one word; threads
/// that open it at once keep the first and close the others.
fn pagemap() -> io::Result<libc::c_int> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static PAGEMAP: AtomicU64 = AtomicU64::new(0);
    let pid = std::process::id() as u64;
    let held = PAGEMAP.load(Ordering::Acquire);
    if held != 0 && held >> 32 == pid {
        return Ok(held as u32 as libc::c_int);
    }
    let fd = OwnedFd::from(std::fs::File::open("/proc/self/pagemap")?);
    let mine = pid << 32 | fd.as_raw_fd() as u32 as u64;
    match PAGEMAP.compare_exchange(held, mine, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            // Kept for the process's life. (A parent's descriptor, inherited, stays open.)
            std::mem::forget(fd);
            Ok(mine as u32 as libc::c_int)
        }
        Err(other) if other >> 32 == pid => Ok(other as u32 as libc::c_int),
        Err(_) => Err(io::Error::other("the pagemap descriptor changed hands")),
    }
}

fn is_zero(bytes: &[u8]) -> bool {
    // Eight bytes at a time: the compiler vectorizes this.
    let (words, rest) = bytes.split_at(bytes.len() / 8 * 8);
    words.chunks_exact(8).all(|w| u64::from_ne_bytes(w.try_into().expect("eight bytes")) == 0) && rest.iter().all(|&b| b == 0)
}

fn write_all_at(file: &OwnedFd, mut bytes: &[u8], mut offset: usize) -> io::Result<()> {
    while !bytes.is_empty() {
        // SAFETY: a descriptor of ours and a valid buffer.
        let written = unsafe { libc::pwrite(file.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), offset as libc::off_t) };
        if written < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        bytes = &bytes[written as usize..];
        offset += written as usize;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A private anonymous mapping of `len` bytes, unmapped on drop.
    struct Region(*mut u8, usize);

    impl Region {
        fn new(len: usize) -> Region {
            // SAFETY: a new anonymous mapping.
            let ptr = unsafe {
                libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
            };
            assert_ne!(ptr, libc::MAP_FAILED);
            Region(ptr.cast(), len)
        }

        fn bytes(&mut self) -> &mut [u8] {
            // SAFETY: the whole mapping, used by one test at a time.
            unsafe { std::slice::from_raw_parts_mut(self.0, self.1) }
        }
    }

    impl Drop for Region {
        fn drop(&mut self) {
            // SAFETY: our own mapping.
            unsafe { libc::munmap(self.0.cast(), self.1) };
        }
    }

    #[test]
    fn a_mapped_image_reads_as_captured_and_writes_stay_private() {
        let mut memory = vec![0u8; 5 * PAGE_BYTES];
        memory[10] = 1;
        memory[3 * PAGE_BYTES + 7] = 2;
        let image = WorldImage::capture(&memory).unwrap();
        assert_eq!(image.len(), memory.len());
        let (mut a, mut b) = (Region::new(memory.len()), Region::new(memory.len()));
        a.bytes().fill(9);
        // SAFETY: our own mappings, not borrowed now.
        unsafe { image.map_over(a.0).unwrap() };
        assert_eq!(a.bytes(), &memory[..]);
        a.bytes()[10] = 42;
        // SAFETY: as above.
        unsafe { image.map_over(b.0).unwrap() };
        assert_eq!(b.bytes()[10], 1, "one sandbox's write is not another's");
        // SAFETY: as above.
        unsafe { zero_over(a.0, a.1).unwrap() };
        assert!(a.bytes().iter().all(|&x| x == 0));
    }

    #[test]
    fn restoring_undoes_every_write_and_only_copies_written_pages() {
        let mut memory = vec![0u8; 8 * PAGE_BYTES];
        for (i, byte) in memory.iter_mut().enumerate().skip(PAGE_BYTES) {
            *byte = (i % 251) as u8;
        }
        let image = WorldImage::capture(&memory[..6 * PAGE_BYTES]).unwrap();
        let mut region = Region::new(memory.len());
        // SAFETY: our own mapping, not borrowed now.
        unsafe { image.map_over(region.0).unwrap() };
        let bytes = region.bytes();
        bytes[0] = 1;
        bytes[2 * PAGE_BYTES + 5] ^= 0xff;
        bytes[7 * PAGE_BYTES] = 3;
        let read: u64 = bytes[3 * PAGE_BYTES..4 * PAGE_BYTES].iter().map(|&b| b as u64).sum();
        assert!(read > 0);
        let written = written_pages(region.0, region.1).unwrap();
        assert_eq!(written, vec![0..PAGE_BYTES, 2 * PAGE_BYTES..3 * PAGE_BYTES, 7 * PAGE_BYTES..8 * PAGE_BYTES]);
        // SAFETY: as above.
        unsafe { image.restore(region.0, region.1).unwrap() };
        let bytes = region.bytes();
        assert_eq!(&bytes[..6 * PAGE_BYTES], &memory[..6 * PAGE_BYTES]);
        assert!(bytes[6 * PAGE_BYTES..].iter().all(|&b| b == 0));
    }
}
