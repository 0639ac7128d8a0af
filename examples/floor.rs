//! The benchmark's floor loader (`tests/bench.sh`, `make bench`; not part of the
//! product, never installed):
//!
//! ```text
//! floor lsm|fmodret|kprobe|tracepoint
//! ```
//!
//! Loads the empty programs of `bpf/floor.bpf.c` that sit on exactly the hooks the
//! agent's tier of that name attaches, attaches every one, prints
//! `attached: TIER N programs` and holds them until it is killed (SIGTERM): the kernel
//! detaches everything when the process exits; nothing is pinned. A syscall
//! tracepoint the architecture lacks (arm64 has no open or creat) is skipped, as the
//! agent skips it. Exits 1 with the reason when anything else fails to load or attach.

use std::ffi::CStr;
use std::process::exit;

use libbpf_sys as sys;

static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/floor.bpf.o"));

fn fail(what: &str) -> ! {
    eprintln!("floor: {what}: {}", std::io::Error::last_os_error());
    exit(1)
}

fn main() {
    let tier = std::env::args().nth(1).unwrap_or_default();
    let prefix = match tier.as_str() {
        "lsm" => "fl_lsm_",
        "fmodret" => "fl_fmr_",
        "kprobe" => "fl_kp_",
        "tracepoint" => "fl_tp_",
        _ => {
            eprintln!("usage: floor lsm|fmodret|kprobe|tracepoint");
            exit(2)
        }
    };
    // Syscall tracepoints and legacy kprobes are found through tracefs; the bench runs
    // this in a private mount namespace, as it runs the agent.
    if !std::path::Path::new("/sys/kernel/tracing/events").is_dir() {
        let _ = rustix::mount::mount("tracefs", "/sys/kernel/tracing", "tracefs", rustix::mount::MountFlags::empty(), None);
    }
    // SAFETY: OBJECT is a static ELF image; libbpf copies what it keeps. Every pointer
    // below comes from libbpf for this object, which lives until the process exits.
    unsafe {
        let obj = sys::bpf_object__open_mem(OBJECT.as_ptr().cast(), OBJECT.len() as _, std::ptr::null());
        if obj.is_null() {
            fail("open");
        }
        let mut prog = std::ptr::null_mut();
        loop {
            prog = sys::bpf_object__next_program(obj, prog);
            if prog.is_null() {
                break;
            }
            let name = CStr::from_ptr(sys::bpf_program__name(prog)).to_string_lossy();
            sys::bpf_program__set_autoload(prog, name.starts_with(prefix));
        }
        if sys::bpf_object__load(obj) != 0 {
            fail("load");
        }
        let mut attached = 0;
        loop {
            prog = sys::bpf_object__next_program(obj, prog);
            if prog.is_null() {
                break;
            }
            if !sys::bpf_program__autoload(prog) {
                continue;
            }
            let name = CStr::from_ptr(sys::bpf_program__name(prog)).to_string_lossy().into_owned();
            if sys::bpf_program__attach(prog).is_null() {
                let err = std::io::Error::last_os_error();
                let section = CStr::from_ptr(sys::bpf_program__section_name(prog)).to_string_lossy();
                if err.raw_os_error() == Some(2) && section.starts_with("tracepoint/syscalls/") {
                    continue; // this architecture has no such syscall
                }
                eprintln!("floor: attach {name}: {err}");
                exit(1);
            }
            attached += 1; // the link stays alive until exit
        }
        println!("attached: {tier} {attached} programs");
    }
    loop {
        std::thread::park();
    }
}
