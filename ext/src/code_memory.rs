//! Where the guest's machine code runs from: in place, from the pages of this library that embed
//! the precompiled guest, instead of a private copy.
//!
//! `Module::deserialize` would copy the ~4 MB artifact into fresh anonymous memory at every
//! process start: a thousand page faults before the first call, and 4 MB of private memory per
//! process. Wasmtime's artifacts need no relocations, so the embedded bytes can serve as the code
//! memory as they are (`Module::deserialize_raw`); the only change they need is execute
//! permission on their text section, which [`InPlaceCode`] grants with `mprotect`. The pages stay
//! clean, file-backed and shared with every other process that loaded the library, and only the
//! code a process runs is ever read in.

use std::ptr::NonNull;

use wasmtime::CustomCodeMemory;

/// Page alignment for the embedded artifact, so that its text section (page-aligned within the
/// artifact) starts on a page of the library's mapping.
#[repr(C, align(4096))]
pub struct PageAligned<T: ?Sized>(pub T);

/// The page size this module is built for; elsewhere the guest is loaded by copying.
const PAGE: usize = 4096;

/// Grants and revokes execute permission on the embedded guest's text section.
pub struct InPlaceCode;

impl InPlaceCode {
    /// Whether code can run in place here: a Unix whose pages are the size the artifact is
    /// aligned to (not macOS on arm64, whose pages are 16 KiB; not Windows). Elsewhere the guest
    /// is copied (`Module::deserialize`).
    #[cfg(unix)]
    pub fn supported() -> bool {
        // SAFETY: sysconf has no preconditions.
        usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }) == Ok(PAGE)
    }

    #[cfg(not(unix))]
    pub fn supported() -> bool {
        false
    }

    /// The bytes as `Module::deserialize_raw` takes them.
    pub fn memory(bytes: &'static PageAligned<[u8]>) -> NonNull<[u8]> {
        NonNull::from(&bytes.0)
    }

    #[cfg(unix)]
    fn protect(ptr: *const u8, len: usize, protection: libc::c_int) -> wasmtime::Result<()> {
        // SAFETY: wasmtime passes a page-aligned range of the embedded artifact (a static that
        // lives as long as the process); only its permissions change.
        let status = unsafe { libc::mprotect(ptr as *mut libc::c_void, len, protection) };
        if status == 0 {
            Ok(())
        } else {
            Err(wasmtime::Error::msg(format!("mprotect of the guest's code: {}", std::io::Error::last_os_error())))
        }
    }
}

impl CustomCodeMemory for InPlaceCode {
    fn required_alignment(&self) -> usize {
        PAGE
    }

    #[cfg(unix)]
    fn publish_executable(&self, ptr: *const u8, len: usize) -> wasmtime::Result<()> {
        Self::protect(ptr, len, libc::PROT_READ | libc::PROT_EXEC)
    }

    #[cfg(unix)]
    fn unpublish_executable(&self, ptr: *const u8, len: usize) -> wasmtime::Result<()> {
        Self::protect(ptr, len, libc::PROT_READ)
    }

    // Never installed where `supported()` is false.
    #[cfg(not(unix))]
    fn publish_executable(&self, _ptr: *const u8, _len: usize) -> wasmtime::Result<()> {
        Err(wasmtime::Error::msg("running the guest's code in place needs a Unix"))
    }

    #[cfg(not(unix))]
    fn unpublish_executable(&self, _ptr: *const u8, _len: usize) -> wasmtime::Result<()> {
        Ok(())
    }
}
