//! The BPF objects' maps, by name: the one place a map's name is spelled. The names are
//! the C names of `bpf/shared_maps.h`, `bpf/enforce.bpf.c` and `bpf/path.bpf.c`; the
//! test at the bottom holds this list and the embedded objects to each other, so a
//! misspelt or missing name fails there and not as an ENOENT at run time.

use core::ffi::CStr;

/// A map of the embedded BPF objects. Maps only the programs touch are named too, so
/// that the list is complete; the agent never constructs those.
#[cfg_attr(not(test), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapName {
    /// Each tier's mode, signal, exec policy and canary child (`abi::Settings`).
    Settings,
    /// Which generation acts, and who the agent is (`handover.rs`).
    Handover,
    /// This generation's number.
    Generation,
    /// IPv4 deny rules, a trie.
    DenyNet4,
    /// IPv6 deny rules, a trie.
    DenyNet6,
    /// The ring buffer of events.
    Events,
    /// The per-CPU counters (`abi::COUNTER_*`).
    Counters,
    /// The canary children of every gate on the machine.
    CanaryTasks,
    /// Deny rules by inode.
    DenyInodes,
    /// allow_exec_from: the filesystems code may run from.
    ExecAllow,
    /// The bit array that lets an inode through to `deny_inodes`.
    InodeFilter,
    /// Inodes a kernel program moved a rule onto.
    FollowedInodes,
    /// The bit arrays that let a /16 through to the net tries.
    NetFilter,
    /// The connect in flight, in task storage.
    ConnectFds,
    /// The connect in flight, by thread, where there is no task storage.
    ConnectFdsHash,
    /// The memory of vfork children killed for a mapping.
    VforkPoisoned,
    /// The path tier's deny rules by name.
    DenyPaths,
    /// The path tier's per-CPU room for a path.
    PathScratch,
    /// Who the agent is, for the path tier.
    PathAgent,
}

impl MapName {
    /// Every map, in the order of the sources.
    #[cfg(test)]
    pub const ALL: [MapName; 19] = [
        MapName::Settings,
        MapName::Handover,
        MapName::Generation,
        MapName::DenyNet4,
        MapName::DenyNet6,
        MapName::Events,
        MapName::Counters,
        MapName::CanaryTasks,
        MapName::DenyInodes,
        MapName::ExecAllow,
        MapName::InodeFilter,
        MapName::FollowedInodes,
        MapName::NetFilter,
        MapName::ConnectFds,
        MapName::ConnectFdsHash,
        MapName::VforkPoisoned,
        MapName::DenyPaths,
        MapName::PathScratch,
        MapName::PathAgent,
    ];

    /// The C name, as libbpf and the kernel know the map.
    pub const fn name(self) -> &'static CStr {
        match self {
            MapName::Settings => c"settings",
            MapName::Handover => c"handover",
            MapName::Generation => c"generation",
            MapName::DenyNet4 => c"deny_net4",
            MapName::DenyNet6 => c"deny_net6",
            MapName::Events => c"events",
            MapName::Counters => c"counters",
            MapName::CanaryTasks => c"canary_tasks",
            MapName::DenyInodes => c"deny_inodes",
            MapName::ExecAllow => c"exec_allow",
            MapName::InodeFilter => c"inode_filter",
            MapName::FollowedInodes => c"followed_inodes",
            MapName::NetFilter => c"net_filter",
            MapName::ConnectFds => c"connect_fds",
            MapName::ConnectFdsHash => c"connect_fds_hash",
            MapName::VforkPoisoned => c"vfork_poisoned",
            MapName::DenyPaths => c"deny_paths",
            MapName::PathScratch => c"path_scratch",
            MapName::PathAgent => c"path_agent",
        }
    }

    /// The name as text (pin file names, messages).
    pub fn as_str(self) -> &'static str {
        // All of them are ASCII.
        self.name().to_str().unwrap_or("?")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::{BtfChoice, Image, Object};

    /// The maps an opened object declares, without libbpf's own for its global data
    /// (`OBJECT.rodata`, ...: no C name has a dot).
    fn declared(obj: &Object) -> Vec<String> {
        obj.map_defs().into_iter().map(|m| m.0).filter(|n| !n.contains('.')).collect()
    }

    /// Every embedded object: the maps alone, both builds of the programs, the path tier.
    fn objects() -> Vec<(&'static str, Object)> {
        let (kernel, file) = (BtfChoice::Kernel, BtfChoice::file("vmlinux.btf"));
        vec![
            ("maps-only", Object::open_maps(&kernel).unwrap()),
            ("programs", Object::open_image(Image::Programs, &kernel, |_| false).unwrap()),
            ("no-kernel-BTF programs", Object::open_image(Image::Programs, &file, |_| false).unwrap()),
            ("path", Object::open_image(Image::Path, &kernel, |_| false).unwrap()),
        ]
    }

    #[test]
    fn every_named_map_is_in_the_objects_and_every_map_is_named() {
        let objects = objects();
        let named: Vec<&str> = MapName::ALL.iter().map(|m| m.as_str()).collect();
        for m in MapName::ALL {
            assert!(objects.iter().any(|(_, o)| o.map(m.name()).is_ok()), "{m:?} is in no embedded object");
        }
        for (what, obj) in &objects {
            for name in declared(obj) {
                assert!(named.contains(&name.as_str()), "the {what} object's map {name} is not in MapName");
            }
        }
        // The maps-only object creates maps the programs declare (and reuse).
        let programs = declared(&objects[1].1);
        assert!(declared(&objects[0].1).iter().all(|m| programs.contains(m)));
        let mut sorted = named.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), named.len(), "a name twice");
    }

    /// The path object reuses the shared maps it names (src/maps.rs): each must be
    /// declared as the maps-only object creates it. Its own maps have names no shared
    /// map has, so that reuse by name never hands it one of those.
    #[test]
    fn the_path_object_declares_shared_maps_alike_and_its_own_apart() {
        let shared = Object::open_maps(&BtfChoice::Kernel).unwrap().map_defs();
        let path = Object::open_image(Image::Path, &BtfChoice::Kernel, |_| false).unwrap().map_defs();
        let own: Vec<_> = path.iter().filter(|m| !shared.iter().any(|s| s.0 == m.0)).map(|m| m.0.as_str()).collect();
        let expected = [MapName::DenyPaths, MapName::PathScratch, MapName::PathAgent].map(MapName::as_str);
        assert_eq!(own, expected, "{path:?}");
        for m in path.iter().filter(|m| !own.contains(&m.0.as_str())) {
            let theirs = shared.iter().find(|s| s.0 == m.0).unwrap();
            assert_eq!((m.1, m.2, m.3), (theirs.1, theirs.2, theirs.3), "{} differs from bpf/enforce.bpf.c's", m.0);
        }
    }
}
