//! The one place with `unsafe`: the libbpf FFI layer (plus the few libc calls the agent
//! needs: signal handlers, `vsnprintf` for libbpf's log lines, and the canary child's
//! two mappings).
//!
//! Every libbpf pointer is owned by a RAII type whose `Drop` frees it: [`Object`]
//! closes the BPF object (and with it every map and program fd), [`Link`] detaches one
//! program, [`RingBuffer`] frees the consumer. Borrowed views ([`Program`], [`Map`])
//! carry the object's lifetime, so nothing can outlive what it points into.
//!
//! libbpf runs in its 1.0 mode: failing calls return NULL or a negative errno and
//! also set `errno`; both are turned into [`Error`] here.

use core::ffi::{c_char, c_int, c_void, CStr};
use core::fmt;
use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};
use std::os::fd::BorrowedFd;

use libbpf_sys as sys;
use rustix::io::Errno;

/// The compiled BPF programs (`bpf/enforce.bpf.c`, built by `build.rs`).
pub static OBJECT_BYTES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/enforce.bpf.o"));
/// The path tier (`bpf/path.bpf.c`): no CO-RE relocation, so it loads without kernel
/// BTF; it also declares every shared map, and the agent creates them from it.
pub static PATH_OBJECT_BYTES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/path.bpf.o"));

/// A failed libbpf operation: what was attempted, on what, and the errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error {
    /// The operation, e.g. "load" or "attach".
    pub op: &'static str,
    /// The program or map it was about, "" for the whole object.
    pub what: &'static str,
    /// The errno libbpf reported.
    pub errno: Errno,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.what.is_empty() {
            write!(f, "{}: {} (errno {})", self.op, self.errno, self.errno.raw_os_error())
        } else {
            write!(f, "{} {}: {} (errno {})", self.op, self.what, self.errno, self.errno.raw_os_error())
        }
    }
}

impl std::error::Error for Error {}

fn last_errno() -> Errno {
    Errno::from_raw_os_error(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

/// libbpf returns `-errno`; 0 and positive values are success.
fn check(ret: c_int, op: &'static str, what: &'static str) -> Result<c_int, Error> {
    if ret < 0 {
        Err(Error { op, what, errno: Errno::from_raw_os_error(-ret) })
    } else {
        Ok(ret)
    }
}

/// Names passed to libbpf must be NUL-terminated; all of ours are static literals.
fn c_name(name: &'static CStr) -> *const c_char {
    name.as_ptr()
}

fn name_str(name: &'static CStr) -> &'static str {
    name.to_str().unwrap_or("?")
}

/// An opened (and, after [`Object::load`], loaded) BPF object.
pub struct Object {
    ptr: NonNull<sys::bpf_object>,
}

impl Object {
    /// Opens the embedded object with only the programs `keep` names set to load (the
    /// others' autoload is turned off): that is how one tier, or only its maps, is loaded.
    /// `image` is one of the embedded objects ([`OBJECT_BYTES`], [`PATH_OBJECT_BYTES`]).
    pub fn open_image(image: &'static [u8], keep: impl Fn(&CStr) -> bool) -> Result<Object, Error> {
        // SAFETY: image is a static ELF image; libbpf copies what it keeps.
        let raw = unsafe { sys::bpf_object__open_mem(image.as_ptr().cast(), image.len() as _, core::ptr::null()) };
        let ptr = NonNull::new(raw).ok_or_else(|| Error { op: "open", what: "", errno: last_errno() })?;
        let obj = Object { ptr };
        let mut prog = core::ptr::null_mut();
        loop {
            // SAFETY: obj is live; prog is null or a program of obj.
            prog = unsafe { sys::bpf_object__next_program(obj.ptr.as_ptr(), prog) };
            if prog.is_null() {
                break;
            }
            // SAFETY: prog is a program of obj; its name is a NUL-terminated string it owns.
            let name = unsafe { CStr::from_ptr(sys::bpf_program__name(prog)) };
            if !keep(name) {
                // SAFETY: obj is open and not yet loaded.
                check(unsafe { sys::bpf_program__set_autoload(prog, false) }, "skip", "program")?;
            }
        }
        Ok(obj)
    }

    /// Makes every map of this (not yet loaded) object use the same-named map of
    /// `owner` instead of creating its own: all tiers share one set of maps.
    pub fn reuse_maps(&mut self, owner: &Object) -> Result<(), Error> {
        let mut map = core::ptr::null_mut();
        loop {
            // SAFETY: self is live; map is null or a map of self.
            map = unsafe { sys::bpf_object__next_map(self.ptr.as_ptr(), map) };
            if map.is_null() {
                return Ok(());
            }
            // SAFETY: map belongs to self and has a NUL-terminated name.
            let name = unsafe { sys::bpf_map__name(map) };
            // SAFETY: owner is live; name is NUL-terminated.
            let theirs = unsafe { sys::bpf_object__find_map_by_name(owner.ptr.as_ptr(), name) };
            if theirs.is_null() {
                continue;
            }
            // SAFETY: theirs is a map of the loaded owner; libbpf dups the fd.
            let fd = unsafe { sys::bpf_map__fd(theirs) };
            // SAFETY: map is a map of self, which is not loaded yet.
            check(unsafe { sys::bpf_map__reuse_fd(map, fd) }, "reuse map", "")?;
        }
    }

    /// Sets a map's max_entries before load (the ring buffer's size in bytes).
    pub fn set_max_entries(&mut self, map: &'static CStr, entries: u32) -> Result<(), Error> {
        let m = self.map(map)?;
        // SAFETY: m points into self, which is open and not yet loaded.
        check(unsafe { sys::bpf_map__set_max_entries(m.ptr.as_ptr(), entries) }, "resize", name_str(map))?;
        Ok(())
    }

    /// Creates the maps and loads the programs into the kernel. Cannot be retried:
    /// on failure drop this object and open a new one.
    pub fn load(&mut self) -> Result<(), Error> {
        // SAFETY: self.ptr is a live object.
        check(unsafe { sys::bpf_object__load(self.ptr.as_ptr()) }, "load", "")?;
        Ok(())
    }

    /// A program by its C function name.
    pub fn program(&self, name: &'static CStr) -> Result<Program<'_>, Error> {
        // SAFETY: self.ptr is live; the name is NUL-terminated.
        let raw = unsafe { sys::bpf_object__find_program_by_name(self.ptr.as_ptr(), c_name(name)) };
        NonNull::new(raw)
            .map(|ptr| Program { ptr, name, _obj: PhantomData })
            .ok_or(Error { op: "find program", what: name_str(name), errno: Errno::NOENT })
    }

    /// Every map of the (opened) object: name, type, key size, value size.
    #[cfg(test)]
    pub fn map_defs(&self) -> Vec<(String, u32, u32, u32)> {
        let mut out = Vec::new();
        let mut map = core::ptr::null_mut();
        loop {
            // SAFETY: self is live; map is null or a map of self.
            map = unsafe { sys::bpf_object__next_map(self.ptr.as_ptr(), map) };
            if map.is_null() {
                return out;
            }
            // SAFETY: map is a map of self; its name is NUL-terminated and owned by it.
            let (name, kind, key, value) = unsafe {
                (
                    CStr::from_ptr(sys::bpf_map__name(map)).to_string_lossy().into_owned(),
                    sys::bpf_map__type(map) as u32,
                    sys::bpf_map__key_size(map),
                    sys::bpf_map__value_size(map),
                )
            };
            out.push((name, kind, key, value));
        }
    }

    /// A map by its C name.
    pub fn map(&self, name: &'static CStr) -> Result<Map<'_>, Error> {
        // SAFETY: self.ptr is live; the name is NUL-terminated.
        let raw = unsafe { sys::bpf_object__find_map_by_name(self.ptr.as_ptr(), c_name(name)) };
        NonNull::new(raw)
            .map(|ptr| Map { ptr, name, _obj: PhantomData })
            .ok_or(Error { op: "find map", what: name_str(name), errno: Errno::NOENT })
    }
}

impl Drop for Object {
    fn drop(&mut self) {
        // SAFETY: we own the object; links borrowing it are gone (lifetimes).
        unsafe { sys::bpf_object__close(self.ptr.as_ptr()) }
    }
}

/// A program inside an [`Object`].
pub struct Program<'a> {
    ptr: NonNull<sys::bpf_program>,
    name: &'static CStr,
    _obj: PhantomData<&'a Object>,
}

impl<'a> Program<'a> {
    /// Attaches the program where its ELF section says (`lsm/…`, `tracepoint/…`).
    pub fn attach(&self) -> Result<Link, Error> {
        // SAFETY: ptr is a loaded program of a live object.
        let raw = unsafe { sys::bpf_program__attach(self.ptr.as_ptr()) };
        NonNull::new(raw)
            .map(|ptr| Link { ptr })
            .ok_or_else(|| Error { op: "attach", what: name_str(self.name), errno: last_errno() })
    }
}

/// An attached program; dropping it detaches. A libbpf link holds its own fd (and
/// through it the program), so it does not borrow the object.
pub struct Link {
    ptr: NonNull<sys::bpf_link>,
}

impl Drop for Link {
    fn drop(&mut self) {
        // SAFETY: we own the link and destroy it once.
        unsafe { sys::bpf_link__destroy(self.ptr.as_ptr()) };
    }
}

/// A map inside a loaded [`Object`].
pub struct Map<'a> {
    ptr: NonNull<sys::bpf_map>,
    name: &'static CStr,
    _obj: PhantomData<&'a Object>,
}

impl Map<'_> {
    /// Inserts or replaces one entry. libbpf checks both sizes against the map's.
    pub fn update(&self, key: &[u8], value: &[u8]) -> Result<(), Error> {
        // SAFETY: the slices are valid for their lengths, which libbpf checks against
        // the map's key and value sizes before the kernel reads them.
        let ret = unsafe {
            sys::bpf_map__update_elem(
                self.ptr.as_ptr(),
                key.as_ptr().cast(),
                key.len() as _,
                value.as_ptr().cast(),
                value.len() as _,
                0,
            )
        };
        check(ret, "update map", name_str(self.name))?;
        Ok(())
    }

    /// Reads one entry into `value`; false when there is none.
    pub fn lookup(&self, key: &[u8], value: &mut [u8]) -> Result<bool, Error> {
        // SAFETY: the slices are valid for their lengths, which libbpf checks against
        // the map's key and value sizes before the kernel writes `value`.
        let ret = unsafe {
            sys::bpf_map__lookup_elem(
                self.ptr.as_ptr(),
                key.as_ptr().cast(),
                key.len() as _,
                value.as_mut_ptr().cast(),
                value.len() as _,
                0,
            )
        };
        match check(ret, "read map", name_str(self.name)) {
            Ok(_) => Ok(true),
            Err(e) if e.errno == Errno::NOENT => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes one entry.
    pub fn delete(&self, key: &[u8]) -> Result<(), Error> {
        // SAFETY: the slice is valid for its length, which libbpf checks against the
        // map's key size.
        let ret = unsafe { sys::bpf_map__delete_elem(self.ptr.as_ptr(), key.as_ptr().cast(), key.len() as _, 0) };
        check(ret, "delete from map", name_str(self.name))?;
        Ok(())
    }

    /// Sums a per-CPU `u64` value over every possible CPU.
    pub fn sum_percpu_u64(&self, key: u32) -> Result<u64, Error> {
        // SAFETY: plain query of a libbpf global.
        let cpus = check(unsafe { sys::libbpf_num_possible_cpus() }, "count cpus", "")? as usize;
        let mut values = vec![0u64; cpus];
        let k = key.to_ne_bytes();
        // SAFETY: the buffers are valid for the sizes passed; libbpf checks them
        // against key size and value size × possible CPUs.
        let ret = unsafe {
            sys::bpf_map__lookup_elem(
                self.ptr.as_ptr(),
                k.as_ptr().cast(),
                k.len() as _,
                values.as_mut_ptr().cast(),
                (values.len() * 8) as _,
                0,
            )
        };
        check(ret, "read map", name_str(self.name))?;
        Ok(values.iter().sum())
    }

    fn fd(&self) -> c_int {
        // SAFETY: ptr is a map of a live object.
        unsafe { sys::bpf_map__fd(self.ptr.as_ptr()) }
    }
}

type SampleFn<'a> = dyn FnMut(&[u8]) + 'a;

/// A ring-buffer consumer calling `callback` once per record.
pub struct RingBuffer<'a> {
    ptr: NonNull<sys::ring_buffer>,
    // Boxed twice so libbpf holds a thin pointer that stays put.
    _callback: Box<Box<SampleFn<'a>>>,
}

unsafe extern "C" fn sample_trampoline(ctx: *mut c_void, data: *mut c_void, size: sys::size_t) -> c_int {
    // SAFETY: ctx is the Box<Box<SampleFn>> owned by the RingBuffer that registered
    // this trampoline; libbpf calls it only inside ring_buffer__poll, from that
    // RingBuffer's own (exclusive) poll. data/size describe one committed record.
    let callback = unsafe { &mut *(ctx as *mut Box<SampleFn<'_>>) };
    let record = unsafe { core::slice::from_raw_parts(data as *const u8, size as usize) };
    callback(record);
    0
}

impl<'a> RingBuffer<'a> {
    /// Starts consuming the ring buffer map `map`.
    pub fn new(map: &Map<'a>, callback: impl FnMut(&[u8]) + 'a) -> Result<RingBuffer<'a>, Error> {
        let mut callback: Box<Box<SampleFn<'a>>> = Box::new(Box::new(callback));
        let ctx: *mut Box<SampleFn<'a>> = &mut *callback;
        // SAFETY: the map fd is live for 'a; ctx stays valid as long as self.
        let raw = unsafe { sys::ring_buffer__new(map.fd(), Some(sample_trampoline), ctx.cast(), core::ptr::null()) };
        let ptr = NonNull::new(raw).ok_or_else(|| Error { op: "ring buffer", what: name_str(map.name), errno: last_errno() })?;
        Ok(RingBuffer { ptr, _callback: callback })
    }

    /// Hands every record already in the buffer to the callback, without waiting.
    pub fn consume(&mut self) -> Result<usize, Errno> {
        // SAFETY: self.ptr is live and consumed only through &mut self.
        let ret = unsafe { sys::ring_buffer__consume(self.ptr.as_ptr()) };
        if ret < 0 {
            Err(Errno::from_raw_os_error(-ret))
        } else {
            Ok(ret as usize)
        }
    }

    /// The descriptor that becomes readable when records arrive (to poll it with others).
    pub fn epoll_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the epoll fd is owned by the ring buffer and lives as long as self.
        unsafe { BorrowedFd::borrow_raw(sys::ring_buffer__epoll_fd(self.ptr.as_ptr())) }
    }
}

impl Drop for RingBuffer<'_> {
    fn drop(&mut self) {
        // SAFETY: we own the ring buffer; the callback box outlives this call.
        unsafe { sys::ring_buffer__free(self.ptr.as_ptr()) }
    }
}

/// Maps the first page of `fd` (anonymous memory when None) readable and executable,
/// then unmaps it: the canary child's executable mapping of a denied file, or of
/// anonymous memory (the kernel denies it, or the child is signalled).
pub fn map_executable(fd: Option<BorrowedFd<'_>>) -> Result<(), Errno> {
    use rustix::mm::{mmap, mmap_anonymous, munmap, MapFlags, ProtFlags};
    let len = rustix::param::page_size();
    let prot = ProtFlags::READ | ProtFlags::EXEC;
    // SAFETY: a fresh private mapping chosen by the kernel; nothing else refers to it,
    // and it is unmapped before return without being read.
    unsafe {
        let addr = match fd {
            Some(fd) => mmap(core::ptr::null_mut(), len, prot, MapFlags::PRIVATE, fd, 0)?,
            None => mmap_anonymous(core::ptr::null_mut(), len, prot, MapFlags::PRIVATE)?,
        };
        munmap(addr, len)
    }
}

/// Maps the first page of `fd` readable (anonymous memory, readable and writable,
/// when None), then asks to make it executable: the canary child's `mprotect`.
pub fn protect_executable(fd: Option<BorrowedFd<'_>>) -> Result<(), Errno> {
    use rustix::mm::{mmap, mmap_anonymous, mprotect, munmap, MapFlags, MprotectFlags, ProtFlags};
    let len = rustix::param::page_size();
    // SAFETY: as above; the mapping is private to this call and never executed.
    unsafe {
        let addr = match fd {
            Some(fd) => mmap(core::ptr::null_mut(), len, ProtFlags::READ, MapFlags::PRIVATE, fd, 0)?,
            None => mmap_anonymous(core::ptr::null_mut(), len, ProtFlags::READ | ProtFlags::WRITE, MapFlags::PRIVATE)?,
        };
        let result = mprotect(addr, len, MprotectFlags::READ | MprotectFlags::EXEC);
        munmap(addr, len)?;
        result
    }
}

extern "C" {
    // From the C library libbpf already links (musl).
    fn vsnprintf(buf: *mut c_char, size: usize, fmt: *const c_char, ap: *mut sys::__va_list_tag) -> c_int;
    fn signal(signum: c_int, handler: extern "C" fn(c_int)) -> usize;
}

/// The longest libbpf message shown with -v (a verifier log comes as one message).
const LIBBPF_LOG_BYTES: usize = 64 * 1024;

unsafe extern "C" fn libbpf_print(level: sys::libbpf_print_level, fmt: *const c_char, ap: *mut sys::__va_list_tag) -> c_int {
    // libbpf's warnings are mostly the details behind an error we report ourselves
    // (a refused load, a missing tracepoint): show them with -v, keep stderr clean.
    let target = match level {
        sys::LIBBPF_WARN | sys::LIBBPF_INFO => log::Level::Debug,
        _ => log::Level::Trace,
    };
    if !log::log_enabled!(target) {
        return 0;
    }
    // Only with -v: big enough for a whole verifier log of our programs, whose last
    // lines say why a load failed.
    let mut buf = vec![0 as c_char; LIBBPF_LOG_BYTES];
    // SAFETY: buf is LIBBPF_LOG_BYTES long and vsnprintf NUL-terminates within it.
    let n = unsafe { vsnprintf(buf.as_mut_ptr(), buf.len(), fmt, ap) };
    // SAFETY: buf is NUL-terminated (zeroed, and vsnprintf terminates).
    let line = unsafe { CStr::from_ptr(buf.as_ptr()) };
    let cut = if usize::try_from(n).is_ok_and(|n| n >= LIBBPF_LOG_BYTES) { " [truncated]" } else { "" };
    log::log!(target, "libbpf: {}{cut}", line.to_string_lossy().trim_end());
    n
}

/// Routes libbpf's own messages into `log` (debug level).
pub fn route_libbpf_log() {
    // SAFETY: installs a callback with the signature libbpf expects.
    unsafe { sys::libbpf_set_print(Some(libbpf_print)) };
}

/// What the agent's signal handlers request. Set from signal handlers, read by the
/// poll loop, which wakes with EINTR.
pub struct Requests {
    /// SIGTERM or SIGINT: detach and exit.
    pub stop: AtomicBool,
    /// SIGHUP: re-read the config and swap the policy if it is valid.
    pub reload: AtomicBool,
}

static REQUESTS: Requests = Requests { stop: AtomicBool::new(false), reload: AtomicBool::new(false) };

const SIGHUP: c_int = 1;
const SIGINT: c_int = 2;
const SIGTERM: c_int = 15;

extern "C" fn on_signal(sig: c_int) {
    // async-signal-safe: one atomic store
    let flag = if sig == SIGHUP { &REQUESTS.reload } else { &REQUESTS.stop };
    flag.store(true, Ordering::SeqCst);
}

/// Makes SIGTERM and SIGINT request a clean stop instead of killing the process, so
/// links are detached by their destructors, and SIGHUP request a reload. A blocked
/// `poll` returns EINTR.
pub fn catch_signals() -> &'static Requests {
    for sig in [SIGHUP, SIGINT, SIGTERM] {
        // SAFETY: the handler only stores to an atomic.
        unsafe { signal(sig, on_signal) };
    }
    &REQUESTS
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes of the named section of a little-endian ELF64 image.
    fn section<'a>(elf: &'a [u8], wanted: &str) -> Option<&'a [u8]> {
        let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
        let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) as usize;
        let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap()) as usize;
        assert_eq!(&elf[..6], b"\x7fELF\x02\x01", "a little-endian ELF64 object");
        let (shoff, shentsize, shnum, shstrndx) = (u64_at(0x28), u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
        let header = |i: usize| shoff + i * shentsize;
        let strtab = u64_at(header(shstrndx) + 24);
        (0..shnum).find_map(|i| {
            let h = header(i);
            let name = &elf[strtab + u32_at(h)..];
            let name = &name[..name.iter().position(|&b| b == 0)?];
            (name == wanted.as_bytes()).then(|| &elf[u64_at(h + 24)..u64_at(h + 24) + u64_at(h + 32)])
        })
    }

    /// libbpf demands the kernel's BTF for an object with any CO-RE relocation
    /// (obj_needs_vmlinux_btf): the path tier's object must have none.
    #[test]
    fn the_path_object_has_no_core_relocation() {
        let ext = section(PATH_OBJECT_BYTES, ".BTF.ext").expect("func and line info are kept");
        let hdr_len = u32::from_le_bytes(ext[4..8].try_into().unwrap());
        let core_relo_len = if hdr_len >= 32 { u32::from_le_bytes(ext[28..32].try_into().unwrap()) } else { 0 };
        assert_eq!(core_relo_len, 0, "CO-RE relocations in bpf/path.bpf.c");
        // The main object has them: the check reads what it means to.
        let ext = section(OBJECT_BYTES, ".BTF.ext").unwrap();
        assert!(u32::from_le_bytes(ext[28..32].try_into().unwrap()) > 0);
    }

    /// The agent creates the shared maps from the path object: it must declare every
    /// map of the main object, alike.
    #[test]
    fn the_path_object_declares_every_shared_map() {
        let main = Object::open_image(OBJECT_BYTES, |_| false).unwrap().map_defs();
        let path = Object::open_image(PATH_OBJECT_BYTES, |_| false).unwrap().map_defs();
        for m in &main {
            assert!(path.contains(m), "{m:?} is not declared alike in bpf/path.bpf.c: {path:?}");
        }
    }
}
