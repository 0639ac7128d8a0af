//! Compiles the BPF programs in `bpf/` with clang and leaves the objects in OUT_DIR:
//! `enforce.bpf.o` and `path.bpf.o`, which `src/bpf.rs` embeds (compressed,
//! `*.bpf.o.z`) with `include_bytes!`, and `floor.bpf.o`, the benchmark's empty
//! programs (`examples/floor.rs`).
//!
//! The object keeps its BTF (CO-RE relocation needs it at load time) and loses its
//! DWARF (`llvm-strip -g`) and the relocations of .BTF.ext, which are most of its size.
//! The embedded objects also lose their BTF line info (`blank_line_info`).

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
    }

    compress(&obj, &out.join("enforce.bpf.o.z"));
    compress(&maps, &out.join("maps.bpf.o.z"));
    compress(&core, &out.join("enforce-core.bpf.o.z"));
    compress(&path, &out.join("path.bpf.o.z"));

    for f in ["bpf/enforce.bpf.c", "bpf/path.bpf.c", "bpf/floor.bpf.c", "bpf/enforce.h", "bpf/shared_maps.h", "bpf/vmlinux.h"] {
        println!("cargo:rerun-if-changed={f}");
    }
    println!("cargo:rerun-if-env-changed=BPF_CLANG");
    println!("cargo:rerun-if-env-changed=BPF_STRIP");
}

/// Writes `obj` in zlib format to `z`: the agent embeds its objects compressed (the
/// programs take about 40 kB of the binary instead of 140 kB; the binary must stay
/// under 1 MiB) and inflates each once with zlib's `uncompress`, which libbpf's zlib
/// already links. The deflate stream comes from `gzip -9 -n` (on every build host),
/// rewrapped: a zlib header instead of gzip's, an Adler-32 of the object instead of
/// gzip's CRC-32 and length. The inflated length goes to `Z.len.rs` beside it.
fn compress(obj: &std::path::Path, z_path: &std::path::Path) {
    let mut raw = std::fs::read(obj).expect("the BPF object");
    blank_line_info(&mut raw);
    std::fs::write(obj, &raw).expect("write the BPF object");
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

/// Drops the BTF line info of a BPF object, in place and at the same size: the
/// .BTF.ext line-info records and the source lines and file names they point to in
/// the .BTF string table become zeros, and .BTF.ext says it has no line info. They
/// only serve verifier logs and tools (libbpf, CO-RE and the kernel do not need them);
/// zeros compress to nearly nothing, which is about 10 kB of the binary per object
/// (the binary must stay under 1 MiB). Strings anything else names (types, members,
/// sections, CO-RE access strings) are kept. An object this does not understand is
/// left as it is, with a warning.
fn blank_line_info(elf: &mut [u8]) {
    if let Err(why) = try_blank_line_info(elf) {
        println!("cargo:warning=BPF object keeps its line info: {why}");
    }
}

fn try_blank_line_info(elf: &mut [u8]) -> Result<(), String> {
    let u16_at = |b: &[u8], o: usize| -> Result<usize, String> {
        Ok(u16::from_le_bytes(b.get(o..o + 2).ok_or("truncated")?.try_into().unwrap()) as usize)
    };
    let u32_at = |b: &[u8], o: usize| -> Result<usize, String> {
        Ok(u32::from_le_bytes(b.get(o..o + 4).ok_or("truncated")?.try_into().unwrap()) as usize)
    };
    let u64_at = |b: &[u8], o: usize| -> Result<usize, String> {
        Ok(u64::from_le_bytes(b.get(o..o + 8).ok_or("truncated")?.try_into().unwrap()) as usize)
    };
    // ELF64, little-endian (clang -target bpf on a little-endian host: bpfel).
    if elf.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 2, 1][..]) {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let (shoff, shentsize, shnum, shstrndx) = (u64_at(elf, 0x28)?, u16_at(elf, 0x3a)?, u16_at(elf, 0x3c)?, u16_at(elf, 0x3e)?);
    let section = |i: usize| -> Result<(usize, usize, usize), String> {
        let h = shoff + i * shentsize;
        Ok((u32_at(elf, h)?, u64_at(elf, h + 24)?, u64_at(elf, h + 32)?))
    };
    let (_, names_off, _) = section(shstrndx)?;
    let mut btf = None;
    let mut ext = None;
    for i in 0..shnum {
        let (name, off, size) = section(i)?;
        let name = &elf[names_off + name..];
        let name = &name[..name.iter().position(|&b| b == 0).ok_or("section name")?];
        match name {
            b".BTF" => btf = Some(off..off + size),
            b".BTF.ext" => ext = Some(off..off + size),
            _ => {}
        }
    }
    let (Some(btf), Some(ext)) = (btf, ext) else { return Ok(()) }; // the maps alone: no line info
    if ext.start < btf.end && btf.start < ext.end {
        return Err(".BTF and .BTF.ext overlap".into());
    }

    // .BTF: header, types, strings (offsets after the header).
    let b = &elf[btf.clone()];
    if u16_at(b, 0)? != 0xeb9f {
        return Err("BTF magic".into());
    }
    let hdr = u32_at(b, 4)?;
    let (types, types_len, strs, strs_len) = (hdr + u32_at(b, 8)?, u32_at(b, 12)?, hdr + u32_at(b, 16)?, u32_at(b, 20)?);
    let mut named = vec![0usize]; // offsets of the strings something other than line info names
    let mut at = types;
    while at < types + types_len {
        let (name, info) = (u32_at(b, at)?, u32_at(b, at + 4)?);
        named.push(name);
        let (kind, vlen) = ((info >> 24) & 0x1f, info & 0xffff);
        at += 12;
        match kind {
            2 | 7..=12 | 16 | 18 => {}         // ptr, fwd, typedef, cv, restrict, func, float, type tag
            1 | 14 | 17 => at += 4,            // int, var, decl tag
            3 => at += 12,                     // array
            15 => at += 12 * vlen,             // datasec: no names
            4 | 5 | 19 | 6 | 13 => {
                // struct, union, enum64 (12-byte entries); enum, func proto (8): a name first
                let step = if matches!(kind, 4 | 5 | 19) { 12 } else { 8 };
                for k in 0..vlen {
                    named.push(u32_at(b, at + k * step)?);
                }
                at += step * vlen;
            }
            _ => return Err(format!("BTF kind {kind}")),
        }
    }

    // .BTF.ext: header, then func info, line info and CO-RE relocations, each a record
    // size and blocks of (section name, count, records).
    let e = &elf[ext.clone()];
    let ehdr = u32_at(e, 4)?;
    if u16_at(e, 0)? != 0xeb9f || ehdr < 32 {
        return Err("BTF.ext header (func info, line info, CO-RE relocations)".into());
    }
    let infos = |off_at: usize| -> Result<(usize, usize), String> { Ok((ehdr + u32_at(e, off_at)?, u32_at(e, off_at + 4)?)) };
    let blocks = |(start, len): (usize, usize), strings: &[usize], named: &mut Vec<usize>| -> Result<(), String> {
        if len == 0 {
            return Ok(());
        }
        let rec = u32_at(e, start)?;
        let mut at = start + 4;
        while at < start + len {
            named.push(u32_at(e, at)?);
            let n = u32_at(e, at + 4)?;
            at += 8;
            for _ in 0..n {
                for &field in strings {
                    named.push(u32_at(e, at + field)?);
                }
                at += rec;
            }
        }
        Ok(())
    };
    blocks(infos(8)?, &[], &mut named)?; // func info: insn, type id
    let line = infos(16)?;
    blocks(infos(24)?, &[8], &mut named)?; // CO-RE relocations: insn, type id, access string, kind

    let mut keep = vec![false; strs_len];
    for &o in &named {
        let mut i = o;
        while i < strs_len {
            keep[i] = true;
            if b[strs + i] == 0 {
                break;
            }
            i += 1;
        }
    }
    for (i, kept) in keep.iter().enumerate() {
        if !kept {
            elf[btf.start + strs + i] = 0;
        }
    }
    // Zero line_info_len and the records (after reading every other block).
    let (line_start, line_len) = line;
    elf[ext.start + 20..ext.start + 24].copy_from_slice(&0u32.to_le_bytes());
    elf[ext.start + line_start..ext.start + line_start + line_len].fill(0);
    Ok(())
}
