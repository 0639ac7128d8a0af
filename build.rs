//! Compiles the BPF programs in `bpf/` with clang and leaves the objects in OUT_DIR:
//! `enforce.bpf.o` and `path.bpf.o`, which `src/bpf.rs` embeds (compressed,
//! `*.bpf.o.z`) with `include_bytes!`, and `floor.bpf.o`, the benchmark's empty
//! programs (`examples/floor.rs`).
//!
//! The object keeps its BTF (CO-RE relocation needs it at load time) and loses its
//! DWARF (`llvm-strip -g`) and the relocations of .BTF.ext, which are most of its size.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let obj = out.join("enforce.bpf.o");
    // libbpf-sys exports the directory holding <bpf/bpf_helpers.h> and friends.
    let libbpf_include = env::var("DEP_BPF_INCLUDE").expect("libbpf-sys exports DEP_BPF_INCLUDE");
    let arch = match env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("x86_64") => "x86",
        Ok("aarch64") => "arm64",
        Ok("arm") => "arm",
        Ok(other) => panic!("no BPF target arch mapping for {other}"),
        Err(e) => panic!("CARGO_CFG_TARGET_ARCH: {e}"),
    };
    let clang = env::var("BPF_CLANG").unwrap_or_else(|_| "clang".into());
    let strip = env::var("BPF_STRIP").unwrap_or_else(|_| "llvm-strip".into());

    // enforce.bpf.o is the product's; floor.bpf.o only serves the benchmark's floor
    // loader (examples/floor.rs) and is never embedded in the agent.
    // maps.bpf.o: the same source with the maps only (see ENFORCE_MAPS_ONLY there).
    // path.bpf.o: the path tier, with no CO-RE relocation (it includes no vmlinux.h),
    // so that libbpf loads it on kernels without BTF; src/bpf.rs checks that its
    // .BTF.ext holds none.
    //
    // The compiler may be a wrapper that adds the target's hardening flags to every
    // call: Buildroot's host-clang adds -fstack-protector-strong, -fPIE -pie and
    // -Wl,-z,now -Wl,-z,relro (and, with an external toolchain, a config file with
    // --gcc-install-dir) before these arguments. A BPF object can have none of that:
    // the later -fno-* win, -fno-PIE also keeps Buildroot's wrapper from adding PIE,
    // and flags a compile-only call does not use are not errors. -Werror still holds
    // for the source.
    // enforce-core.bpf.o: the programs for kernels without their own BTF
    // (ENFORCE_NO_KERNEL_BTF there); they share the same maps.
    let maps = out.join("maps.bpf.o");
    let core = out.join("enforce-core.bpf.o");
    let path = out.join("path.bpf.o");
    const NO_KERNEL_BTF: &str = "-DENFORCE_NO_KERNEL_BTF";
    for (src, obj, defines) in [
        ("bpf/enforce.bpf.c", &obj, &["-DENFORCE_OBJECT"][..]),
        ("bpf/enforce.bpf.c", &maps, &["-DENFORCE_MAPS_ONLY"][..]),
        ("bpf/enforce.bpf.c", &core, &["-DENFORCE_OBJECT", NO_KERNEL_BTF][..]),
        ("bpf/path.bpf.c", &path, &["-DENFORCE_PATH"][..]),
        ("bpf/floor.bpf.c", &out.join("floor.bpf.o"), &["-DENFORCE_FLOOR"][..]),
    ] {
        // build.rs also reruns when a Rust source changes (for the version label):
        // an object newer than every BPF source, made by the same command, is kept.
        let command = format!("{clang} {strip} {arch} {libbpf_include} {src} {defines:?}");
        let stamp = obj.with_extension("o.cmd");
        if fresh(obj, &stamp, &command) {
            continue;
        }
        run(Command::new(&clang)
            .args(["-target", "bpf", "-O2", "-g", "-Wall", "-Werror"])
            .args(defines)
            .args(["-fno-stack-protector", "-fno-PIE", "-fcf-protection=none"])
            .arg("-Wno-unused-command-line-argument")
            .arg(format!("-D__TARGET_ARCH_{arch}"))
            .arg("-Ibpf")
            .arg(format!("-I{libbpf_include}"))
            .args(["-c", src, "-o"])
            .arg(&obj));
        // .rel.BTF.ext only serves linkers: libbpf reads .BTF.ext without it.
        run(Command::new(&strip).args(["-g", "-R", ".rel.BTF.ext"]).arg(&obj));
        std::fs::write(&stamp, &command).expect("write the object's command stamp");
    }

    compress(&obj, &out.join("enforce.bpf.o.z"));
    compress(&maps, &out.join("maps.bpf.o.z"));
    compress(&core, &out.join("enforce-core.bpf.o.z"));
    compress(&path, &out.join("path.bpf.o.z"));

    for f in BPF_SOURCES {
        println!("cargo:rerun-if-changed={f}");
    }
    println!("cargo:rerun-if-env-changed=BPF_CLANG");
    println!("cargo:rerun-if-env-changed=BPF_STRIP");

    println!("cargo:rustc-env=ENFORCE_BUILD={}", build_label());
}

/// What `--version` names beside the version (ENFORCE_BUILD; empty for none):
/// ENFORCE_VERSION_EXTRA when the build system sets it (Buildroot and Yocto build from
/// a tarball and know their own version strings), else `git describe --always
/// --dirty` when this package is the top of a git checkout (a tarball unpacked inside
/// some other checkout, such as Buildroot's tree, must not name that one's commit).
fn build_label() -> String {
    println!("cargo:rerun-if-env-changed=ENFORCE_VERSION_EXTRA");
    if let Ok(extra) = env::var("ENFORCE_VERSION_EXTRA") {
        // One line of printable ASCII, bounded: it is printed as given.
        let extra: String = extra.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(80).collect();
        if !extra.trim().is_empty() {
            return extra.trim().to_owned();
        }
    }
    let git = |args: &[&str]| {
        let out = Command::new("git").args(args).output().ok().filter(|o| o.status.success())?;
        Some(String::from_utf8(out.stdout).ok()?.trim().to_owned())
    };
    let manifest = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let top = git(&["-C", &manifest, "rev-parse", "--show-toplevel"]);
    let same = |a: &str, b: &str| std::fs::canonicalize(a).ok().is_some_and(|a| std::fs::canonicalize(b).ok() == Some(a));
    if !top.is_some_and(|top| same(&top, &manifest)) {
        return String::new();
    }
    // Described again when HEAD moves, the branch it names moves, or the index or a
    // source changes (which is when -dirty can change for what is built).
    let mut watched = vec!["HEAD".to_owned(), "index".to_owned(), "packed-refs".to_owned()];
    watched.extend(git(&["-C", &manifest, "symbolic-ref", "-q", "HEAD"]));
    for name in watched {
        if let Some(path) = git(&["-C", &manifest, "rev-parse", "--git-path", &name]) {
            let path = PathBuf::from(&manifest).join(path); // relative to the checkout when it is
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    for dir in ["src", "bpf", "Cargo.toml", "Cargo.lock", "build.rs"] {
        println!("cargo:rerun-if-changed={dir}");
    }
    git(&["-C", &manifest, "describe", "--always", "--dirty"]).unwrap_or_default()
}

/// Every file the BPF objects are compiled from.
const BPF_SOURCES: [&str; 6] =
    ["bpf/enforce.bpf.c", "bpf/path.bpf.c", "bpf/floor.bpf.c", "bpf/enforce.h", "bpf/shared_maps.h", "bpf/vmlinux.h"];

/// `obj` was made by `command` (its stamp says so) after the last change of any BPF
/// source.
fn fresh(obj: &std::path::Path, stamp: &std::path::Path, command: &str) -> bool {
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let (Some(made), Ok(stamped)) = (modified(obj), std::fs::read_to_string(stamp)) else { return false };
    stamped == command && BPF_SOURCES.iter().all(|src| modified(std::path::Path::new(src)).is_some_and(|t| t < made))
}

/// Writes `obj` in zlib format to `z`: the agent embeds its objects compressed (the
/// programs take about 40 kB of the binary instead of 140 kB; the binary must stay
/// under 1 MiB) and inflates each once with zlib's `uncompress`, which libbpf's zlib
/// already links. The deflate stream comes from `gzip -9 -n` (on every build host),
/// rewrapped: a zlib header instead of gzip's, an Adler-32 of the object instead of
/// gzip's CRC-32 and length. The inflated length goes to `Z.len.rs` beside it.
fn compress(obj: &std::path::Path, z_path: &std::path::Path) {
    let raw = std::fs::read(obj).expect("the BPF object");
    let gz = Command::new("gzip")
        .args(["-9", "-n", "-c"])
        .arg(obj)
        .output()
        .unwrap_or_else(|e| panic!("cannot run gzip: {e}"));
    assert!(gz.status.success(), "gzip failed: {:?}", gz.status);
    let gz = gz.stdout;
    // ID1 ID2 CM=deflate FLG=0 (no name, comment or extra field with -n): a 10-byte header.
    assert!(gz.len() > 18 && gz[..4] == [0x1f, 0x8b, 8, 0], "unexpected gzip header");
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    let mut z = vec![0x78, 0xda];
    z.extend_from_slice(&gz[10..gz.len() - 8]);
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    std::fs::write(z_path, z).expect("write the compressed object");
    std::fs::write(z_path.with_extension("z.len.rs"), format!("{}\n", raw.len())).expect("write its length");
}

fn run(cmd: &mut Command) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e} (is it installed? `make deps`)", cmd.get_program()));
    assert!(status.success(), "{cmd:?} failed with {status}");
}
