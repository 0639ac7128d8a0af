//! The hand-over between generations of programs. A reload (and an agent adopting a
//! pinned set) attaches a second generation beside the running one, switches it on,
//! and only then detaches the first, so enforcement never lapses; the `handover` map,
//! one for every generation the agent loads (and shared with a pinned set it adopts),
//! says which generation acts, so that an operation is acted on — denied, signalled,
//! audited, reported, counted — exactly once (the rule in `bpf/enforce.bpf.c`,
//! `acting()`). Its entry also names the agent, whom no generation ever denies: by
//! host PID and start time, so that a PID reused after the agent died is not exempt
//! from a pinned set that outlived it.

use std::path::Path;

use crate::abi;
use crate::bpf::{self, FdMap, Map, MapShape};
use crate::map_names::MapName;

/// What the `handover` map must be.
pub const SHAPE: MapShape = MapShape { map_type: bpf::MAP_ARRAY, key_size: 4, value_size: abi::Handover::SIZE as u32 };

const KEY: [u8; 4] = 0u32.to_ne_bytes();

/// This process as the programs recognise the agent: host PID and start time in clock
/// ticks since boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub tgid: u32,
    pub start: u64,
}

/// Field 22 (starttime) of a `/proc/PID/stat` line. The command name (field 2) is in
/// parentheses and may itself contain spaces and parentheses: count from the last `)`.
fn start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: field 3 (state) is the first; starttime is field 22.
    rest.split_ascii_whitespace().nth(22 - 3)?.parse().ok()
}

/// This process's identity (PID 0 and start 0 if /proc cannot say: then nothing is
/// exempt, which only costs the agent its exemption).
pub fn identity() -> Identity {
    let tgid = rustix::process::getpid().as_raw_nonzero().get() as u32;
    let start = std::fs::read_to_string("/proc/self/stat").ok().as_deref().and_then(start_time);
    if start.is_none() {
        log::warn!("cannot read the agent's start time from /proc/self/stat: the programs will not exempt it");
    }
    Identity { tgid, start: start.unwrap_or(u64::MAX) }
}

/// The value this process holds for the path tier to recognise it (`path_agent`):
/// random, set once, never changed.
static PATH_COOKIE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

/// This process as the path tier's programs recognise the agent: its PID, and a
/// random value with the address where its memory holds it (enforce.h).
pub fn path_agent() -> abi::PathAgent {
    let cookie = PATH_COOKIE.get_or_init(|| {
        let mut r = [0u8; 8];
        // 0 when the kernel's random source fails: the programs then exempt no one.
        match rustix::rand::getrandom(&mut r, rustix::rand::GetRandomFlags::empty()) {
            Ok(8) => u64::from_ne_bytes(r) | 1,
            _ => 0,
        }
    });
    abi::PathAgent {
        tgid: rustix::process::getpid().as_raw_nonzero().get() as u32,
        _pad: 0,
        cookie_addr: cookie as *const u64 as u64,
        cookie: *cookie,
    }
}

/// The entry a fresh `handover` map starts with: no generation acts yet.
pub fn initial(me: Identity) -> abi::Handover {
    abi::Handover { generation: 0, flags: 0, agent_tgid: me.tgid, _pad: 0, agent_start: me.start }
}

/// The agent's handle on the shared map.
pub struct Handover {
    map: FdMap,
    me: Identity,
}

impl Handover {
    /// The `handover` map a generation's maps created (the agent's first gate run).
    pub fn of(map: &Map<'_>) -> Result<Handover, bpf::Error> {
        let fd = map.borrowed_fd().try_clone_to_owned().map_err(|e| bpf::Error {
            op: "dup",
            what: MapName::Handover.as_str(),
            errno: rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::IO),
        })?;
        Ok(Handover { map: FdMap::new(fd, SHAPE)?, me: identity() })
    }

    /// A pinned set's map: the agent adopting it names itself there at once, so the
    /// pinned programs exempt it (and no longer the agent that pinned them).
    pub fn adopt(path: &Path) -> Result<Handover, bpf::Error> {
        let h = Handover { map: FdMap::open(path, SHAPE)?, me: identity() };
        let mut entry = h.read()?;
        entry.agent_tgid = h.me.tgid;
        entry.agent_start = h.me.start;
        h.write(entry)?;
        Ok(h)
    }

    /// The map, for objects that share it.
    pub fn map(&self) -> &FdMap {
        &self.map
    }

    pub fn read(&self) -> Result<abi::Handover, bpf::Error> {
        let mut value = [0u8; abi::Handover::SIZE];
        self.map.lookup(&KEY, &mut value)?;
        Ok(abi::Handover::from_bytes(value))
    }

    fn write(&self, entry: abi::Handover) -> Result<(), bpf::Error> {
        self.map.update(&KEY, &entry.to_bytes())
    }

    /// Generation `generation` acts from now on (one map update: the programs of the
    /// generation it replaces stop acting at the same instant); `exact` when every act
    /// of it denies and ends the operation (see `acting()` in the BPF programs).
    pub fn take_over(&self, generation: u32, exact: bool) -> Result<(), bpf::Error> {
        let flags = if exact { abi::HANDOVER_EXACT } else { 0 };
        self.write(abi::Handover { generation, flags, ..initial(self.me) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_field_22_whatever_the_name() {
        let line = "4242 (a b) c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1234 56 18446744073709551615";
        assert_eq!(start_time(line), Some(987654));
        assert_eq!(start_time("1 (init) S 0 1 1 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 17 10 1"), Some(17));
        assert_eq!(start_time("1 (init) S 0 1"), None);
        assert_eq!(start_time("garbage"), None);
    }

    #[test]
    fn this_process_has_a_start_time() {
        let me = identity();
        assert_eq!(me.tgid, std::process::id());
        assert_ne!(me.start, u64::MAX);
    }

    #[test]
    fn the_path_cookie_is_where_it_says() {
        let me = path_agent();
        assert_eq!(me.tgid, std::process::id());
        assert_ne!(me.cookie, 0, "random, and never the value that exempts no one");
        assert_eq!(me, path_agent(), "set once");
        assert_eq!(PATH_COOKIE.get().map(|c| c as *const u64 as u64), Some(me.cookie_addr));
    }

    #[test]
    fn take_over_keeps_the_identity() {
        let me = Identity { tgid: 7, start: 9 };
        let e = abi::Handover { generation: 3, flags: abi::HANDOVER_EXACT, ..initial(me) };
        assert_eq!((e.agent_tgid, e.agent_start, e.generation), (7, 9, 3));
    }
}
