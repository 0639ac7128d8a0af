//! The one place with `unsafe`: the libbpf FFI layer (plus the few libc calls the agent
//! needs: signal handlers, `vsnprintf` for libbpf's log lines, `localtime_r` for the
//! syslog time, and the canary child's two mappings).
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
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use libbpf_sys as sys;
use rustix::io::Errno;

/// The compiled BPF programs (`bpf/enforce.bpf.c`, built by `build.rs`), the same
/// source's maps alone, and the path tier (`bpf/path.bpf.c`), zlib-compressed, with
/// their inflated lengths. The programs come twice: for kernels with their own BTF,
/// and (`CORE_`, built with ENFORCE_NO_KERNEL_BTF) the kprobe and tracepoint programs
/// for kernels without it, relocated against a BTF file.
static PROGRAMS_Z: (&[u8], usize) = (
    include_bytes!(concat!(env!("OUT_DIR"), "/enforce.bpf.o.z")),
    include!(concat!(env!("OUT_DIR"), "/enforce.bpf.o.z.len.rs")),
);
static MAPS_Z: (&[u8], usize) =
    (include_bytes!(concat!(env!("OUT_DIR"), "/maps.bpf.o.z")), include!(concat!(env!("OUT_DIR"), "/maps.bpf.o.z.len.rs")));
static CORE_PROGRAMS_Z: (&[u8], usize) = (
    include_bytes!(concat!(env!("OUT_DIR"), "/enforce-core.bpf.o.z")),
    include!(concat!(env!("OUT_DIR"), "/enforce-core.bpf.o.z.len.rs")),
);
static PATH_Z: (&[u8], usize) =
    (include_bytes!(concat!(env!("OUT_DIR"), "/path.bpf.o.z")), include!(concat!(env!("OUT_DIR"), "/path.bpf.o.z.len.rs")));

/// An embedded object with programs: which one holds a tier's (and, for the
/// BTF tiers, which build: see [`BtfChoice`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Image {
    /// `bpf/enforce.bpf.c`: every tier that reads kernel structures through BTF.
    Programs,
    /// `bpf/path.bpf.c`: the path tier, with no CO-RE relocation (loads without BTF).
    Path,
}

impl Image {
    fn z(self, btf: &BtfChoice) -> &'static (&'static [u8], usize) {
        match self {
            // A BTF file is chosen only on a kernel without its own BTF.
            Image::Programs if btf.is_file() => &CORE_PROGRAMS_Z,
            Image::Programs => &PROGRAMS_Z,
            Image::Path => &PATH_Z,
        }
    }
}

extern "C" {
    // zlib, which libbpf links.
    fn uncompress(dest: *mut u8, dest_len: *mut core::ffi::c_ulong, source: *const u8, source_len: core::ffi::c_ulong)
        -> c_int;
}

/// An embedded object, inflated. Not kept: libbpf is done with the bytes once the
/// object is open (it copies the sections it keeps), and 144 kB held for the agent's
/// whole life would be 144 kB of its RSS; inflating again costs about a millisecond.
fn inflated(z: &(&'static [u8], usize)) -> Result<Vec<u8>, Error> {
    let (bytes, len) = *z;
    let mut buf = vec![0u8; len];
    let mut got = len as core::ffi::c_ulong;
    // SAFETY: buf has room for `got` bytes; `bytes` is a complete zlib stream.
    let ret = unsafe { uncompress(buf.as_mut_ptr(), &mut got, bytes.as_ptr(), bytes.len() as _) };
    if ret != 0 || got as usize != len {
        return Err(Error { op: "inflate", what: "an embedded BPF object", errno: Errno::INVAL });
    }
    Ok(buf)
}

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

/// `struct bpf_object_open_opts` up to `btf_custom_path`, laid out for the target
/// (libbpf-sys's generated struct has the padding of a 64-bit target; on 32-bit ARM
/// it would put every field after `relaxed_maps` at the wrong offset). libbpf takes
/// a shorter struct than its own (`sz` says how long) and zero for what is left out.
#[repr(C)]
struct OpenOpts {
    sz: usize,
    object_name: *const c_char,
    relaxed_maps: bool,
    pin_root_path: *const c_char,
    _removed_attach_prog_fd: u32,
    kconfig: *const c_char,
    btf_custom_path: *const c_char,
}

/// The BTF an object's CO-RE relocations use, and with it which build of the programs
/// [`Image::Programs`] opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BtfChoice {
    /// libbpf's default: the kernel's own (/sys/kernel/btf/vmlinux), where it has one.
    Kernel,
    /// A file instead (`btf =` in the config, on a kernel without BTF): the objects
    /// opened are the ones built for kernels without BTF.
    File(CString),
}

impl BtfChoice {
    /// The BTF file at `path` (the kernel's own if the path has a NUL byte, which the
    /// config refuses).
    pub fn file(path: &str) -> BtfChoice {
        CString::new(path).map_or(BtfChoice::Kernel, BtfChoice::File)
    }

    /// Whether a file is chosen: the objects opened are the build for kernels without BTF.
    pub fn is_file(&self) -> bool {
        matches!(self, BtfChoice::File(_))
    }

    /// For libbpf's `btf_custom_path`: null for the kernel's own.
    fn custom_path(&self) -> *const c_char {
        match self {
            BtfChoice::Kernel => core::ptr::null(),
            BtfChoice::File(path) => path.as_ptr(),
        }
    }
}

/// An opened (and, after [`Object::load`], loaded) BPF object.
pub struct Object {
    ptr: NonNull<sys::bpf_object>,
}

impl Object {
    /// Opens the embedded object with only the programs `keep` names set to load (the
    /// others' autoload is turned off), relocated against `btf`: that is how one tier
    /// is loaded.
    pub fn open_image(image: Image, btf: &BtfChoice, keep: impl Fn(&CStr) -> bool) -> Result<Object, Error> {
        Self::open_bytes(&inflated(image.z(btf))?, btf, keep)
    }

    /// Opens the embedded object that has the maps and no program, to create them.
    pub fn open_maps(btf: &BtfChoice) -> Result<Object, Error> {
        Self::open_bytes(&inflated(&MAPS_Z)?, btf, |_| false)
    }

    fn open_bytes(bytes: &[u8], btf: &BtfChoice, keep: impl Fn(&CStr) -> bool) -> Result<Object, Error> {
        let opts = OpenOpts {
            sz: size_of::<OpenOpts>(),
            object_name: core::ptr::null(),
            relaxed_maps: false,
            pin_root_path: core::ptr::null(),
            _removed_attach_prog_fd: 0,
            kconfig: core::ptr::null(),
            btf_custom_path: btf.custom_path(),
        };
        // SAFETY: bytes is an ELF image; bpf_object__open_mem copies what it keeps (the
        // BTF path included: strdup) and is done with the buffer when it returns (it
        // ends its ELF handle before), so both may drop after this call. OpenOpts has
        // libbpf's layout up to btf_custom_path and `sz` says so.
        let raw =
            unsafe { sys::bpf_object__open_mem(bytes.as_ptr().cast(), bytes.len() as _, (&opts as *const OpenOpts).cast()) };
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
        for map in self.raw_maps() {
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
        Ok(())
    }

    /// Makes the map `name` of this (not yet loaded) object use the map behind `fd`
    /// (one shared with other objects, or adopted from a pin) instead of creating its own.
    pub fn reuse_map_fd(&mut self, name: &'static CStr, fd: BorrowedFd<'_>) -> Result<(), Error> {
        let m = self.map(name)?;
        // SAFETY: m points into self, which is not loaded yet; libbpf dups the fd.
        check(unsafe { sys::bpf_map__reuse_fd(m.ptr.as_ptr(), fd.as_raw_fd()) }, "reuse map", name_str(name))?;
        Ok(())
    }

    /// Every map of this loaded object, by name (`events`, `counters`, ...), with its
    /// descriptor: what pinning a generation pins.
    pub fn maps(&self) -> Vec<(String, BorrowedFd<'_>)> {
        let mut out = Vec::new();
        for map in self.raw_maps() {
            // SAFETY: map is a map of self; its name is NUL-terminated and lives with it.
            let name = unsafe { CStr::from_ptr(sys::bpf_map__name(map)) }.to_string_lossy().into_owned();
            // SAFETY: as above; a loaded map has a descriptor owned by the object, which
            // the returned borrow cannot outlive.
            let fd = unsafe { sys::bpf_map__fd(map) };
            if fd >= 0 {
                // SAFETY: fd is open for as long as self (see above).
                out.push((name, unsafe { BorrowedFd::borrow_raw(fd) }));
            }
        }
        out
    }

    /// Every map of this object, in its order: libbpf's pointers, valid while it is.
    fn raw_maps(&self) -> impl Iterator<Item = *mut sys::bpf_map> + '_ {
        let mut map = core::ptr::null_mut();
        core::iter::from_fn(move || {
            // SAFETY: self is live; map is null or a map of self.
            map = unsafe { sys::bpf_object__next_map(self.ptr.as_ptr(), map) };
            (!map.is_null()).then_some(map)
        })
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
        for map in self.raw_maps() {
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
        out
    }

    /// Leaves the map `name` of this (not yet loaded) object uncreated, if it has one:
    /// one its programs do not use on this kernel (or of a type it lacks). libbpf
    /// poisons the programs' references to it, which the verifier accepts only where
    /// they are dead code.
    pub fn skip_map(&mut self, name: &'static CStr) -> Result<(), Error> {
        let Ok(m) = self.map(name) else { return Ok(()) };
        // SAFETY: m points into self, which is open and not yet loaded.
        check(unsafe { sys::bpf_map__set_autocreate(m.ptr.as_ptr(), false) }, "skip map", name_str(name))?;
        Ok(())
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

impl Program<'_> {
    /// Attaches the program to the tracepoint `category/name` (one program may serve
    /// several).
    pub fn attach_tracepoint(&self, category: &'static CStr, name: &'static CStr) -> Result<Link, Error> {
        // SAFETY: ptr is a loaded program of a live object; the names are NUL-terminated.
        let raw = unsafe { sys::bpf_program__attach_tracepoint(self.ptr.as_ptr(), c_name(category), c_name(name)) };
        NonNull::new(raw)
            .map(|ptr| Link { ptr })
            .ok_or_else(|| Error { op: "attach", what: name_str(name), errno: last_errno() })
    }
}

/// The head of `struct bpf_prog_info` up to `xlated_prog_len` (fixed-width fields:
/// the same on 32- and 64-bit targets). The kernel fills no more than it is given.
#[repr(C)]
#[derive(Default)]
struct ProgInfoHead {
    type_: u32,
    id: u32,
    tag: [u8; 8],
    jited_prog_len: u32,
    xlated_prog_len: u32,
}

impl Program<'_> {
    /// Whether the kernel runs this loaded program as native code (its JIT compiled
    /// it) rather than in the BPF interpreter.
    pub fn jited(&self) -> Result<bool, Error> {
        // SAFETY: ptr is a program of a live, loaded object.
        let fd = unsafe { sys::bpf_program__fd(self.ptr.as_ptr()) };
        check(fd, "query", name_str(self.name))?;
        let mut info = ProgInfoHead::default();
        let mut len = size_of::<ProgInfoHead>() as u32;
        // SAFETY: info is valid for `len` bytes, which the kernel writes at most;
        // bpf_prog_info begins with exactly these fields.
        let ret = unsafe { sys::bpf_prog_get_info_by_fd(fd, (&mut info as *mut ProgInfoHead).cast(), &mut len) };
        check(ret, "query", name_str(self.name))?;
        Ok(info.jited_prog_len > 0)
    }
}

/// An attached program; dropping it detaches. A libbpf link holds its own fd (and
/// through it the program), so it does not borrow the object.
pub struct Link {
    ptr: NonNull<sys::bpf_link>,
}

impl Link {
    /// The link's descriptor (to pin it).
    pub fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: a live link owns its descriptor until it is destroyed, which the
        // borrow prevents.
        unsafe { BorrowedFd::borrow_raw(sys::bpf_link__fd(self.ptr.as_ptr())) }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // SAFETY: we own the link and destroy it once.
        unsafe { sys::bpf_link__destroy(self.ptr.as_ptr()) };
    }
}

/// Whether the kernel has task storage maps (5.11 on): libbpf creates one and closes it.
pub fn kernel_has_task_storage() -> bool {
    // SAFETY: a plain probe; no options.
    unsafe { sys::libbpf_probe_bpf_map_type(sys::BPF_MAP_TYPE_TASK_STORAGE, core::ptr::null()) == 1 }
}

/// Whether the kernel has the `bpf_find_vma` helper (5.17 on).
pub fn kernel_has_find_vma() -> bool {
    tracepoint_helper(sys::BPF_FUNC_find_vma)
}

/// Whether the kernel has the `bpf_loop` helper (5.17 on).
pub fn kernel_has_bpf_loop() -> bool {
    tracepoint_helper(sys::BPF_FUNC_loop)
}

fn tracepoint_helper(id: sys::bpf_func_id) -> bool {
    // SAFETY: a plain probe; no options.
    unsafe { sys::libbpf_probe_bpf_helper(sys::BPF_PROG_TYPE_TRACEPOINT, id, core::ptr::null()) == 1 }
}

/// A map inside a loaded [`Object`].
pub struct Map<'a> {
    ptr: NonNull<sys::bpf_map>,
    name: &'static CStr,
    _obj: PhantomData<&'a Object>,
}

impl<'a> Map<'a> {
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

    /// Inserts or replaces `count` entries, laid out back to back in `keys` and
    /// `values`: one system call per batch where the kernel has batch updates for this
    /// map type (hash and array maps), one per entry where it has not.
    pub fn update_many(&self, keys: &[u8], values: &[u8], count: usize) -> Result<(), Error> {
        if count == 0 {
            return Ok(());
        }
        let (ks, vs) = (keys.len() / count, values.len() / count);
        // SAFETY: ptr is a map of a live object.
        let (map_ks, map_vs) = unsafe { (sys::bpf_map__key_size(self.ptr.as_ptr()), sys::bpf_map__value_size(self.ptr.as_ptr())) };
        if ks * count != keys.len() || vs * count != values.len() || ks != map_ks as usize || vs != map_vs as usize {
            return Err(Error { op: "update map", what: name_str(self.name), errno: Errno::INVAL });
        }
        let opts = sys::bpf_map_batch_opts { sz: size_of::<sys::bpf_map_batch_opts>() as _, ..Default::default() };
        let mut n = count as u32;
        // SAFETY: the slices hold exactly `count` keys and values of the map's sizes
        // (checked above), all the kernel reads.
        let ret = unsafe { sys::bpf_map_update_batch(self.fd(), keys.as_ptr().cast(), values.as_ptr().cast(), &mut n, &opts) };
        let unsupported = [Errno::INVAL, Errno::OPNOTSUPP, Errno::from_raw_os_error(524)]; // 524: ENOTSUPP
        if ret == 0 {
            return Ok(());
        }
        // A kernel without the command (EINVAL, before 5.6) or without it for this map
        // type (ENOTSUPP: LPM tries) writes no count back, so `n` says nothing here. Per
        // entry from the first is safe either way: an update replaces, and an entry's
        // own error comes back from its own update.
        if !unsupported.iter().any(|e| -ret == e.raw_os_error()) {
            check(ret, "update map", name_str(self.name))?;
        }
        for i in 0..count {
            self.update(&keys[i * ks..(i + 1) * ks], &values[i * vs..(i + 1) * vs])?;
        }
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

    /// The map's descriptor, borrowed for as long as the object lives.
    pub fn borrowed_fd(&self) -> BorrowedFd<'a> {
        // SAFETY: the object owns the descriptor and outlives 'a.
        unsafe { BorrowedFd::borrow_raw(self.fd()) }
    }
}

fn c_path(path: &Path) -> Result<CString, Error> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Error { op: "pin", what: "path", errno: Errno::INVAL })
}

/// Pins the BPF object behind `fd` (a map or a link) at `path` in a bpf filesystem.
pub fn pin(fd: BorrowedFd<'_>, path: &Path) -> Result<(), Error> {
    let p = c_path(path)?;
    // SAFETY: p is NUL-terminated; the kernel only reads it.
    check(unsafe { sys::bpf_obj_pin(fd.as_raw_fd(), p.as_ptr()) }, "pin", "object")?;
    Ok(())
}

/// Opens the BPF object pinned at `path`.
pub fn get_pinned(path: &Path) -> Result<OwnedFd, Error> {
    let p = c_path(path)?;
    // SAFETY: p is NUL-terminated; the kernel only reads it.
    let fd = check(unsafe { sys::bpf_obj_get(p.as_ptr()) }, "open pinned", "object")?;
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What a map must be for [`FdMap`] to use it: its kind and sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapShape {
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
}

/// `BPF_MAP_TYPE_ARRAY`.
pub const MAP_ARRAY: u32 = sys::BPF_MAP_TYPE_ARRAY;
/// `BPF_MAP_TYPE_PERCPU_ARRAY`.
pub const MAP_PERCPU_ARRAY: u32 = sys::BPF_MAP_TYPE_PERCPU_ARRAY;
/// `BPF_MAP_TYPE_RINGBUF` (key and value sizes are 0).
pub const MAP_RINGBUF: u32 = sys::BPF_MAP_TYPE_RINGBUF;
/// `BPF_MAP_TYPE_HASH`.
pub const MAP_HASH: u32 = sys::BPF_MAP_TYPE_HASH;

/// The kernel's description of the map behind `fd`.
fn map_info(fd: BorrowedFd<'_>) -> Result<sys::bpf_map_info, Error> {
    let mut info = sys::bpf_map_info::default();
    let mut len = size_of::<sys::bpf_map_info>() as u32;
    // SAFETY: info is a zeroed bpf_map_info of len bytes; the kernel writes at most that.
    check(unsafe { sys::bpf_map_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) }, "map info", "map")?;
    Ok(info)
}

/// Every map loaded on the machine, by anyone, named `name` and of `shape` (walking
/// the kernel's map ids needs CAP_SYS_ADMIN). A map that goes away meanwhile is left out.
pub fn maps_named(name: &CStr, shape: MapShape) -> Result<Vec<FdMap>, Error> {
    let mut found = Vec::new();
    let mut id = 0u32;
    loop {
        let mut next = 0u32;
        // SAFETY: next is a valid u32 the kernel writes.
        let ret = unsafe { sys::bpf_map_get_next_id(id, &mut next) };
        match check(ret, "list maps", "map id") {
            Ok(_) => id = next,
            Err(e) if e.errno == Errno::NOENT => return Ok(found),
            Err(e) => return Err(e),
        }
        // SAFETY: plain call; a non-negative return is a new descriptor nothing else owns.
        let Ok(fd) = check(unsafe { sys::bpf_map_get_fd_by_id(id) }, "open map", "map id") else { continue };
        // SAFETY: as above.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let Ok(info) = map_info(fd.as_fd()) else { continue };
        // SAFETY: the kernel NUL-terminates the name within its 16 bytes.
        let its = unsafe { CStr::from_ptr(info.name.as_ptr()) };
        let its_shape = MapShape { map_type: info.type_, key_size: info.key_size, value_size: info.value_size };
        if its == name && its_shape == shape {
            found.push(FdMap { fd, shape });
        }
    }
}

/// A map reached by its descriptor alone (a pinned one, or one shared between
/// objects), whose kind and sizes were checked when it was opened: every access
/// passes buffers of exactly the map's sizes, so the kernel never reads or writes
/// past them.
pub struct FdMap {
    fd: OwnedFd,
    shape: MapShape,
}

impl FdMap {
    /// Takes `fd` if its map has `shape` (EINVAL otherwise: a map of another layout,
    /// e.g. pinned by another version).
    pub fn new(fd: OwnedFd, shape: MapShape) -> Result<FdMap, Error> {
        let info = map_info(fd.as_fd())?;
        let found = MapShape { map_type: info.type_, key_size: info.key_size, value_size: info.value_size };
        if found != shape {
            log::debug!("pinned map: found {found:?}, wanted {shape:?}");
            return Err(Error { op: "open pinned", what: "map of another layout", errno: Errno::INVAL });
        }
        Ok(FdMap { fd, shape })
    }

    /// Opens the map pinned at `path`, if it has `shape`.
    pub fn open(path: &Path, shape: MapShape) -> Result<FdMap, Error> {
        FdMap::new(get_pinned(path)?, shape)
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn sizes(&self, key: &[u8], value_len: usize) -> Result<(), Error> {
        if key.len() != self.shape.key_size as usize || value_len != self.shape.value_size as usize || self.shape.map_type == MAP_RINGBUF {
            return Err(Error { op: "access", what: "pinned map", errno: Errno::INVAL });
        }
        Ok(())
    }

    /// Inserts or replaces one entry.
    pub fn update(&self, key: &[u8], value: &[u8]) -> Result<(), Error> {
        self.sizes(key, value.len())?;
        // SAFETY: both buffers have exactly the map's key and value sizes (checked).
        let ret = unsafe { sys::bpf_map_update_elem(self.fd.as_raw_fd(), key.as_ptr().cast(), value.as_ptr().cast(), 0) };
        check(ret, "update map", "pinned map")?;
        Ok(())
    }

    /// Removes one entry.
    pub fn delete(&self, key: &[u8]) -> Result<(), Error> {
        self.sizes(key, self.shape.value_size as usize)?;
        // SAFETY: the key buffer has exactly the map's key size (checked).
        let ret = unsafe { sys::bpf_map_delete_elem(self.fd.as_raw_fd(), key.as_ptr().cast()) };
        check(ret, "delete from map", "map")?;
        Ok(())
    }

    /// Reads one entry into `value`; false when there is none.
    pub fn lookup(&self, key: &[u8], value: &mut [u8]) -> Result<bool, Error> {
        self.sizes(key, value.len())?;
        // SAFETY: both buffers have exactly the map's key and value sizes (checked).
        let ret = unsafe { sys::bpf_map_lookup_elem(self.fd.as_raw_fd(), key.as_ptr().cast(), value.as_mut_ptr().cast()) };
        match check(ret, "read map", "pinned map") {
            Ok(_) => Ok(true),
            Err(e) if e.errno == Errno::NOENT => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sums a per-CPU `u64` value over every possible CPU.
    pub fn sum_percpu_u64(&self, key: u32) -> Result<u64, Error> {
        if self.shape.map_type != MAP_PERCPU_ARRAY || self.shape.value_size != 8 || self.shape.key_size != 4 {
            return Err(Error { op: "access", what: "pinned map", errno: Errno::INVAL });
        }
        // SAFETY: plain query of a libbpf global.
        let cpus = check(unsafe { sys::libbpf_num_possible_cpus() }, "count cpus", "")? as usize;
        let mut values = vec![0u64; cpus];
        let k = key.to_ne_bytes();
        // SAFETY: a per-CPU array of u64 values: the kernel writes 8 bytes (rounded up
        // to 8) per possible CPU, which is what values holds.
        let ret = unsafe { sys::bpf_map_lookup_elem(self.fd.as_raw_fd(), k.as_ptr().cast(), values.as_mut_ptr().cast()) };
        check(ret, "read map", "pinned map")?;
        Ok(values.iter().sum())
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
        Self::on_fd(map.fd(), name_str(map.name), callback)
    }

    /// Starts consuming a ring buffer reached by its descriptor (a pinned one).
    pub fn from_map(map: &'a FdMap, callback: impl FnMut(&[u8]) + 'a) -> Result<RingBuffer<'a>, Error> {
        if map.shape.map_type != MAP_RINGBUF {
            return Err(Error { op: "ring buffer", what: "pinned map", errno: Errno::INVAL });
        }
        Self::on_fd(map.fd.as_raw_fd(), "pinned events", callback)
    }

    fn on_fd(fd: c_int, what: &'static str, callback: impl FnMut(&[u8]) + 'a) -> Result<RingBuffer<'a>, Error> {
        let mut callback: Box<Box<SampleFn<'a>>> = Box::new(Box::new(callback));
        let ctx: *mut Box<SampleFn<'a>> = &mut *callback;
        // SAFETY: the map fd is live for 'a (the caller's borrow); ctx stays valid as
        // long as self.
        let raw = unsafe { sys::ring_buffer__new(fd, Some(sample_trampoline), ctx.cast(), core::ptr::null()) };
        let ptr = NonNull::new(raw).ok_or_else(|| Error { op: "ring buffer", what, errno: last_errno() })?;
        Ok(RingBuffer { ptr, _callback: callback })
    }

    /// Hands at most `n` of the records already in the buffer to the callback, without
    /// waiting: a producer as fast as the consumer cannot keep it here forever.
    pub fn consume_n(&mut self, n: usize) -> Result<usize, Errno> {
        // SAFETY: self.ptr is live and consumed only through &mut self.
        let ret = unsafe { sys::ring_buffer__consume_n(self.ptr.as_ptr(), n as _) };
        if ret < 0 {
            Err(Errno::from_raw_os_error(-ret))
        } else {
            Ok(ret as usize)
        }
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
    /// SIGTERM, SIGINT or SIGQUIT: detach and exit.
    pub stop: AtomicBool,
    /// SIGHUP: re-read the config and swap the policy if it is valid.
    pub reload: AtomicBool,
    /// SIGUSR1: log one `stats:` line and go on.
    pub stats: AtomicBool,
}

static REQUESTS: Requests =
    Requests { stop: AtomicBool::new(false), reload: AtomicBool::new(false), stats: AtomicBool::new(false) };

use rustix::process::Signal;

/// Signals that request a clean stop.
const STOP_SIGNALS: [Signal; 3] = [Signal::TERM, Signal::INT, Signal::QUIT];

/// Signals whose default action would terminate the agent, and that a process may be
/// sent by mistake (a stray `kill -USR2`, a timer, a power daemon): caught by a
/// handler that does nothing, so enforcement goes on. Caught, not set to SIG_IGN: a
/// caught signal is reset to its default across exec, so the canary child (which the
/// signal tier may kill with USR1, USR2, ...) starts with the defaults. SIGPIPE comes
/// back as EPIPE from the write, SIGXFSZ as EFBIG. SIGSTOP and SIGKILL cannot be
/// caught; faults (SEGV, BUS, ILL, FPE, ABRT, SYS, TRAP) and real-time signals keep
/// their default action.
const DROPPED_SIGNALS: [Signal; 9] = [
    Signal::USR2,
    Signal::PIPE,
    Signal::ALARM,
    Signal::VTALARM,
    Signal::PROF,
    Signal::IO,
    Signal::POWER,
    Signal::STKFLT,
    Signal::XFSZ,
];

/// Job-control signals that would stop the agent: ignored (SIG_IGN), not caught. A
/// write to a terminal from a background process with a caught SIGTTOU fails with
/// ERESTARTSYS and is retried forever; with SIGTTOU ignored it goes through (and a
/// read with SIGTTIN ignored fails with EIO). None of these is a signal the signal
/// tier may send, so the canary child inheriting SIG_IGN changes nothing.
const IGNORED_SIGNALS: [Signal; 3] = [Signal::TSTP, Signal::TTIN, Signal::TTOU];

/// musl's `struct sigaction` (the same on every architecture musl supports).
#[repr(C)]
struct SigAction {
    /// A handler's address, or SIG_IGN.
    handler: usize,
    mask: [core::ffi::c_ulong; 128 / size_of::<core::ffi::c_ulong>()],
    flags: c_int,
    restorer: Option<extern "C" fn()>,
}

/// `SA_RESTART`: interrupted reads and writes resume (poll still returns EINTR, which
/// is what wakes the loop). Its value on x86, arm and aarch64.
const SA_RESTART: c_int = 0x1000_0000;

extern "C" {
    // From the C library (musl).
    fn sigaction(sig: c_int, act: *const SigAction, old: *mut SigAction) -> c_int;
}

extern "C" fn on_signal(sig: c_int) {
    // async-signal-safe: one atomic store
    let flag = match sig {
        s if s == Signal::HUP.as_raw() => &REQUESTS.reload,
        s if s == Signal::USR1.as_raw() => &REQUESTS.stats,
        _ => &REQUESTS.stop,
    };
    flag.store(true, Ordering::SeqCst);
}

extern "C" fn on_dropped_signal(_: c_int) {}

/// `SIG_IGN`.
const SIG_IGN: usize = 1;

/// Installs `handler` (a handler's address, or SIG_IGN) for `sig`, with SA_RESTART
/// and an empty mask.
fn handle(sig: Signal, handler: usize) -> Result<(), Errno> {
    let act = SigAction { handler, mask: [0; 128 / size_of::<core::ffi::c_ulong>()], flags: SA_RESTART, restorer: None };
    // SAFETY: `act` is a valid sigaction for musl; `handler` is SIG_IGN or one of the
    // handlers here, which are async-signal-safe (an atomic store, or nothing).
    if unsafe { sigaction(sig.as_raw(), &act, core::ptr::null_mut()) } != 0 {
        return Err(Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::INVAL));
    }
    Ok(())
}

/// Makes SIGTERM, SIGINT and SIGQUIT request a clean stop instead of killing the
/// process, so links are detached by their destructors; SIGHUP request a reload;
/// SIGUSR1 request a `stats:` line; the signals of DROPPED_SIGNALS do nothing, and
/// those of IGNORED_SIGNALS are ignored. A blocked `poll` returns EINTR.
pub fn catch_signals() -> &'static Requests {
    let caught = [Signal::HUP, Signal::USR1].into_iter().chain(STOP_SIGNALS).map(|s| (s, on_signal as extern "C" fn(c_int) as usize));
    let dropped = DROPPED_SIGNALS.into_iter().map(|s| (s, on_dropped_signal as extern "C" fn(c_int) as usize));
    let ignored = IGNORED_SIGNALS.into_iter().map(|s| (s, SIG_IGN));
    for (sig, handler) in caught.chain(dropped).chain(ignored) {
        if let Err(e) = handle(sig, handler) {
            log::warn!("cannot catch signal {}: {e}", sig.as_raw());
        }
    }
    &REQUESTS
}

/// musl's `struct tm` (`tm_gmtoff` is a `long`, then `tm_zone`).
#[repr(C)]
struct Tm {
    fields: [c_int; 9], // tm_sec … tm_isdst
    gmtoff: core::ffi::c_long,
    zone: *const c_char,
}

extern "C" {
    // musl 1.2 has a 64-bit time_t everywhere; on 32-bit targets the time64 function
    // is `__localtime64_r` (the plain name keeps the old 32-bit ABI).
    #[cfg_attr(target_pointer_width = "32", link_name = "__localtime64_r")]
    fn localtime_r(t: *const i64, tm: *mut Tm) -> *mut Tm;
}

/// The local time's offset from UTC, in seconds, at `unix_secs`, as the C library
/// reads it from `TZ` or `/etc/localtime` (0 when it cannot say).
pub fn utc_offset(unix_secs: i64) -> i64 {
    let mut tm = Tm { fields: [0; 9], gmtoff: 0, zone: core::ptr::null() };
    // SAFETY: both pointers are valid for the call; localtime_r is the reentrant form
    // and writes only into `tm`.
    let ok = !unsafe { localtime_r(&unix_secs, &mut tm) }.is_null();
    if ok {
        #[allow(clippy::useless_conversion)] // c_long is i32 on 32-bit targets
        i64::from(tm.gmtoff)
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;

    #[test]
    fn sigaction_matches_musls_layout_and_stray_signals_do_not_kill() {
        let requests = catch_signals();
        // What the C library reads back is what was written: the layout agrees.
        let query = |sig: Signal| {
            let mut old = SigAction { handler: 0, mask: [1; 128 / size_of::<core::ffi::c_ulong>()], flags: 0, restorer: None };
            // SAFETY: a query only; `old` is a valid, writable sigaction.
            assert_eq!(unsafe { sigaction(sig.as_raw(), core::ptr::null(), &mut old) }, 0);
            old
        };
        assert_eq!(query(Signal::TTOU).handler, SIG_IGN);
        let old = query(Signal::USR2);
        assert_eq!(old.handler, on_dropped_signal as extern "C" fn(c_int) as usize);
        assert_eq!(old.flags & SA_RESTART, SA_RESTART);
        // The kernel's mask is the first 64 bits; musl leaves the rest as it was.
        assert_eq!(old.mask[..8 / size_of::<core::ffi::c_ulong>()], [0; 8 / size_of::<core::ffi::c_ulong>()]);
        assert_eq!(size_of::<SigAction>(), if cfg!(target_pointer_width = "64") { 152 } else { 140 });
        // A signal sent to the process itself is handled before kill returns (this thread
        // does not block it), or by another thread of the test process: either way it
        // must not end the process.
        let me = rustix::process::getpid();
        for sig in DROPPED_SIGNALS.into_iter().chain(IGNORED_SIGNALS) {
            rustix::process::kill_process(me, sig).unwrap();
        }
        rustix::process::kill_process(me, Signal::USR1).unwrap();
        while !requests.stats.swap(false, Ordering::SeqCst) {
            std::thread::yield_now();
        }
        assert!(!requests.stop.load(Ordering::SeqCst));
    }

    #[test]
    fn open_opts_have_libbpfs_layout() {
        #[cfg(target_pointer_width = "64")]
        {
            // libbpf-sys's generated struct is right for 64-bit targets: agree with it.
            assert_eq!(offset_of!(OpenOpts, pin_root_path), offset_of!(sys::bpf_object_open_opts, pin_root_path));
            assert_eq!(offset_of!(OpenOpts, kconfig), offset_of!(sys::bpf_object_open_opts, kconfig));
            assert_eq!(offset_of!(OpenOpts, btf_custom_path), offset_of!(sys::bpf_object_open_opts, btf_custom_path));
            assert_eq!(size_of::<OpenOpts>(), 56);
        }
        #[cfg(target_pointer_width = "32")]
        {
            // size_t and pointers are 4 bytes: what clang gives for libbpf.h on armv7.
            assert_eq!(offset_of!(OpenOpts, pin_root_path), 12);
            assert_eq!(offset_of!(OpenOpts, kconfig), 20);
            assert_eq!(offset_of!(OpenOpts, btf_custom_path), 24);
            assert_eq!(size_of::<OpenOpts>(), 28);
        }
    }

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
        let path = inflated(Image::Path.z(&BtfChoice::Kernel)).unwrap();
        let ext = section(&path, ".BTF.ext").expect("func and line info are kept");
        let hdr_len = u32::from_le_bytes(ext[4..8].try_into().unwrap());
        let core_relo_len = if hdr_len >= 32 { u32::from_le_bytes(ext[28..32].try_into().unwrap()) } else { 0 };
        assert_eq!(core_relo_len, 0, "CO-RE relocations in bpf/path.bpf.c");
        // The main object has them: the check reads what it means to.
        let programs = inflated(Image::Programs.z(&BtfChoice::Kernel)).unwrap();
        let ext = section(&programs, ".BTF.ext").unwrap();
        assert!(u32::from_le_bytes(ext[28..32].try_into().unwrap()) > 0);
    }

    /// The build for kernels without their own BTF has nothing that needs it: no kernel
    /// function or typed kernel symbol (libbpf then demands the kernel's BTF for the
    /// whole object, btf_custom_path or not), and no program that attaches by it.
    #[test]
    fn the_no_kernel_btf_build_needs_no_kernel_btf() {
        let core = inflated(Image::Programs.z(&BtfChoice::file("vmlinux.btf"))).unwrap();
        let has = |elf: &[u8], sec: &str, what: &str| {
            let bytes = section(elf, sec).unwrap();
            bytes.windows(what.len()).any(|w| w == what.as_bytes())
        };
        // Kernel functions and typed ksyms sit in the BTF's .ksyms data section.
        assert!(!has(&core, ".BTF", ".ksyms"), "a kernel function or typed ksym in the no-BTF build");
        for kind in ["lsm/", "fmod_ret/", "fentry/", "tp_btf/"] {
            assert!(!has(&core, ".strtab", kind), "{kind} in the no-BTF build");
        }
        // The BTF build has them: the check reads what it means to.
        let full = inflated(Image::Programs.z(&BtfChoice::Kernel)).unwrap();
        assert!(has(&full, ".BTF", ".ksyms") && has(&full, ".strtab", "lsm/") && has(&full, ".strtab", "tp_btf/"));
    }
}
