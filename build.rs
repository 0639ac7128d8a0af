//! Compiles the BPF programs in `bpf/` with clang and leaves the objects in OUT_DIR,
//! where `src/bpf.rs` embeds it with `include_bytes!`.
//!
//! The object keeps its BTF (CO-RE relocation needs it at load time) and loses its
//! DWARF (`llvm-strip -g`) and the relocations of .BTF.ext, which are most of its size.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // libbpf-sys exports the directory holding <bpf/bpf_helpers.h> and friends.
    let libbpf_include = env::var("DEP_BPF_INCLUDE").expect("libbpf-sys exports DEP_BPF_INCLUDE");
    let arch = match env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("x86_64") => "x86",
        Ok("aarch64") => "arm64",
        Ok(other) => panic!("no BPF target arch mapping for {other}"),
        Err(e) => panic!("CARGO_CFG_TARGET_ARCH: {e}"),
    };
    let clang = env::var("BPF_CLANG").unwrap_or_else(|_| "clang".into());
    let strip = env::var("BPF_STRIP").unwrap_or_else(|_| "llvm-strip".into());

    // enforce.bpf.o: every tier with BTF. path.bpf.o: the path tier, with no CO-RE
    // relocation (it includes no vmlinux.h), so that libbpf loads it on kernels
    // without BTF; src/bpf.rs checks that its .BTF.ext holds none.
    //
    // The compiler may be a wrapper that adds the target's hardening flags to every
    // call: Buildroot's host-clang adds -fstack-protector-strong, -fPIE -pie and
    // -Wl,-z,now -Wl,-z,relro (and, with an external toolchain, a config file with
    // --gcc-install-dir) before these arguments. A BPF object can have none of that:
    // the later -fno-* win, -fno-PIE also keeps Buildroot's wrapper from adding PIE,
    // and flags a compile-only call does not use are not errors. -Werror still holds
    // for the source.
    for name in ["enforce", "path"] {
        let obj = out.join(format!("{name}.bpf.o"));
        run(Command::new(&clang)
            .args(["-target", "bpf", "-O2", "-g", "-Wall", "-Werror"])
            .args(["-fno-stack-protector", "-fno-PIE", "-fcf-protection=none"])
            .arg("-Wno-unused-command-line-argument")
            .arg(format!("-D__TARGET_ARCH_{arch}"))
            .arg("-Ibpf")
            .arg(format!("-I{libbpf_include}"))
            .args(["-c", &format!("bpf/{name}.bpf.c"), "-o"])
            .arg(&obj));
        // .rel.BTF.ext only serves linkers: libbpf reads .BTF.ext without it.
        run(Command::new(&strip).args(["-g", "-R", ".rel.BTF.ext"]).arg(&obj));
    }

    for f in ["bpf/enforce.bpf.c", "bpf/path.bpf.c", "bpf/enforce.h", "bpf/vmlinux.h"] {
        println!("cargo:rerun-if-changed={f}");
    }
    println!("cargo:rerun-if-env-changed=BPF_CLANG");
    println!("cargo:rerun-if-env-changed=BPF_STRIP");
}

fn run(cmd: &mut Command) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e} (is it installed? `make deps`)", cmd.get_program()));
    assert!(status.success(), "{cmd:?} failed with {status}");
}
