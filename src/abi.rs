//! Rust mirror of `bpf/enforce.h`, the one ABI shared with the BPF programs.
//!
//! The header is the source of truth: every struct here is `#[repr(C)]` with the
//! same fields in the same order, and the test at the bottom pins each size,
//! alignment and offset to the numbers the C compiler gives. Map keys and values are
//! serialised field by field (`to_bytes`), so no unsafe byte view is needed.

/// Length of `enforce_event.comm` (the kernel's TASK_COMM_LEN).
pub const COMM_LEN: usize = 16;

/// Rule id of the agent's canaries: acted on whatever the mode.
pub const RULE_CANARY: u32 = 0xffff_ffff;
/// `exec_rule` of the allow list's canary inode: judged by the allow list, as canary.
pub const RULE_ALLOW_CANARY: u32 = 0xffff_fffe;

/// Length of `enforce_event.file`.
pub const FILE_LEN: usize = 64;
const _: () = assert!(size_of::<[u8; 64]>() == FILE_LEN);

/// `enum enforce_reason`: a deny rule matched.
pub const REASON_RULE: u8 = 0;
/// `enum enforce_reason`: allow_exec_from: the file is on no allowed filesystem.
pub const REASON_UNTRUSTED: u8 = 1;
/// `enum enforce_reason`: allow_anon_exec = no.
pub const REASON_ANON: u8 = 2;
/// `enum enforce_reason`: a signal tier could not read the path or destination from the
/// caller's memory, and signalled it.
pub const REASON_UNREADABLE: u8 = 3;
/// `enum enforce_reason`: a signal tier killed a clone that would make a new process
/// share the caller's descriptor table (class open) or memory (class exec), or the
/// parent of a vfork child killed for a mapping in their memory.
pub const REASON_SHARED: u8 = 4;

/// `enum enforce_flags`: exec only from the filesystems in `exec_allow`.
pub const FLAG_ALLOW_LIST: u32 = 1;
/// `enum enforce_flags`: no executable anonymous (or written private) memory.
pub const FLAG_DENY_ANON: u32 = 2;
/// `enum enforce_flags`: the policy has deny_open rules.
pub const FLAG_OPEN_RULES: u32 = 4;
/// `enum enforce_flags`: the policy has deny_exec rules.
pub const FLAG_EXEC_RULES: u32 = 8;
/// `enum enforce_flags`: the policy has deny_connect rules.
pub const FLAG_CONNECT_RULES: u32 = 16;

/// `enum enforce_class`: an open.
pub const CLASS_OPEN: u8 = 1;
/// `enum enforce_class`: an exec.
pub const CLASS_EXEC: u8 = 2;
/// `enum enforce_class`: a connect.
pub const CLASS_CONNECT: u8 = 3;

/// `enum enforce_op`: a file opened.
pub const OP_OPEN: u8 = 1;
/// `enum enforce_op`: a program executed.
pub const OP_EXEC: u8 = 2;
/// `enum enforce_op`: a file mapped executable.
pub const OP_MMAP: u8 = 3;
/// `enum enforce_op`: a file mapping made executable.
pub const OP_MPROTECT: u8 = 4;
/// `enum enforce_op`: connect(2).
pub const OP_CONNECT: u8 = 5;
/// `enum enforce_op`: a send with a destination address.
pub const OP_SEND: u8 = 6;
/// `enum enforce_op`: a rule followed a rename onto a new inode.
pub const OP_FOLLOW: u8 = 7;

/// `enum enforce_action`: the operation failed with EPERM, or the offender was signalled.
pub const ACTION_DENIED: u8 = 1;
/// `enum enforce_action`: audit mode, allowed and logged.
pub const ACTION_AUDITED: u8 = 2;
/// `enum enforce_action`: a denied inode was replaced by rename; the rule moved along.
pub const ACTION_FOLLOWED: u8 = 3;
/// `enum enforce_action`: a denied inode lost a name (unlink, rename away); the agent
/// re-resolves the rule's path.
pub const ACTION_UNLINKED: u8 = 4;

/// `enum enforce_tier`: BPF-LSM.
pub const TIER_LSM: u8 = 1;
/// `enum enforce_tier`: fmod_ret on security_*().
pub const TIER_FMODRET: u8 = 2;
/// `enum enforce_tier`: kprobes on security_*().
pub const TIER_KPROBE: u8 = 3;
/// `enum enforce_tier`: syscall tracepoints.
pub const TIER_TRACEPOINT: u8 = 4;
/// `enum enforce_tier`: path strings at syscall tracepoints, no BTF.
pub const TIER_PATH: u8 = 5;
/// Entries of the `settings` array (index = tier).
#[allow(dead_code)] // mirrors the header; the agent indexes settings by tier
pub const TIER_MAX: u32 = 6;

/// `ENFORCE_PATH_LEN`: the length of a `deny_paths` key (a path, NUL, zero padding).
pub const PATH_LEN: usize = 256;

/// `struct enforce_path_agent`: the single entry of the path tier's `path_agent` map,
/// how its programs recognise the agent without the task struct: by host PID and a
/// random value the agent holds at an address of its own memory.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PathAgent {
    pub tgid: u32,
    /// Always zero.
    pub _pad: u32,
    /// Where in the agent's memory `cookie` is.
    pub cookie_addr: u64,
    pub cookie: u64,
}

impl PathAgent {
    pub const SIZE: usize = size_of::<Self>();

    /// The value bytes for the map, in native byte order.
    pub fn to_bytes(self) -> [u8; Self::SIZE] {
        use core::mem::offset_of;
        let mut b = [0; Self::SIZE];
        put(&mut b, offset_of!(Self, tgid), &self.tgid.to_ne_bytes());
        put(&mut b, offset_of!(Self, _pad), &self._pad.to_ne_bytes());
        put(&mut b, offset_of!(Self, cookie_addr), &self.cookie_addr.to_ne_bytes());
        put(&mut b, offset_of!(Self, cookie), &self.cookie.to_ne_bytes());
        b
    }
}

/// `struct enforce_path_key`: the key of `deny_paths`, a path string zero-padded to
/// [`PATH_LEN`]. Its value is an [`InodeRule`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathKey(pub [u8; PATH_LEN]);

impl PathKey {
    /// The key of `path`; None when it does not fit with its NUL or holds a NUL.
    pub fn new(path: &[u8]) -> Option<PathKey> {
        if path.len() >= PATH_LEN || path.contains(&0) {
            return None;
        }
        let mut key = [0; PATH_LEN];
        key[..path.len()].copy_from_slice(path);
        Some(PathKey(key))
    }

    /// The key bytes for the map.
    pub fn to_bytes(self) -> [u8; PATH_LEN] {
        self.0
    }
}

/// `enum enforce_mode`: only the canary acts (what zero-initialised settings mean).
pub const MODE_QUIET: u32 = 0;
/// `enum enforce_mode`: report, allow.
pub const MODE_AUDIT: u32 = 1;
/// `enum enforce_mode`: deny (or signal) and report.
pub const MODE_ENFORCE: u32 = 2;

/// Index of the per-CPU counter of denials.
pub const COUNTER_DENIED: u32 = 0;
/// Index of the per-CPU counter of audited events.
pub const COUNTER_AUDITED: u32 = 1;
/// Index of the per-CPU counter of events lost to a full ring buffer.
pub const COUNTER_DROPPED: u32 = 2;
/// Index of the per-CPU counter of rules that followed a rename.
pub const COUNTER_FOLLOWED: u32 = 3;
/// Index of the per-CPU counter of rules that could not follow (the map was full).
pub const COUNTER_FOLLOW_FAILED: u32 = 4;
/// Index of the per-CPU counter of names denied inodes lost (every mode, every
/// generation: a report lost to a full ring buffer is still noticed).
pub const COUNTER_UNLINKED: u32 = 5;
/// Index of the per-CPU counter of paths and destinations a program could not read
/// from the caller's memory while rules of their class exist.
pub const COUNTER_UNREADABLE: u32 = 6;
/// Number of counters.
#[allow(dead_code)] // mirrors the header; the agent reads the counters by index
pub const COUNTER_MAX: u32 = 7;

/// `enforce_event.family` of an IPv4 destination (Linux AF_INET; not in the header).
pub const AF_INET: u16 = 2;
/// `enforce_event.family` of an IPv6 destination (Linux AF_INET6; not in the header).
pub const AF_INET6: u16 = 10;

/// Copies `bytes` into `buf` at `off`. Offsets come from `offset_of!`, so they are
/// right by construction; the layout test covers every call.
fn put(buf: &mut [u8], off: usize, bytes: &[u8]) {
    buf[off..off + bytes.len()].copy_from_slice(bytes);
}

/// `struct enforce_settings`: single entry of the `settings` array map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// `MODE_AUDIT` or `MODE_ENFORCE`.
    pub mode: u32,
    /// Signal tiers: the signal to send.
    pub signal: u32,
    /// `FLAG_*`: the exec policy.
    pub flags: u32,
    /// The anonymous-memory canary's child, 0 = none.
    pub canary_tgid: u32,
}

impl Settings {
    /// Size of the C struct.
    pub const SIZE: usize = size_of::<Self>();

    /// The value bytes for the map, in native byte order.
    pub fn to_bytes(self) -> [u8; Self::SIZE] {
        let mut b = [0; Self::SIZE];
        put(&mut b, core::mem::offset_of!(Self, mode), &self.mode.to_ne_bytes());
        put(&mut b, core::mem::offset_of!(Self, signal), &self.signal.to_ne_bytes());
        put(&mut b, core::mem::offset_of!(Self, flags), &self.flags.to_ne_bytes());
        put(&mut b, core::mem::offset_of!(Self, canary_tgid), &self.canary_tgid.to_ne_bytes());
        b
    }
}

/// `enum enforce_handover_flags`: every act of the acting generation denies and ends
/// the operation, so a generation of the same kind may act beside it.
pub const HANDOVER_EXACT: u32 = 1;

/// `struct enforce_handover`: the single entry of the `handover` map, shared by every
/// generation of programs: which one acts, and who the agent is.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Handover {
    /// The generation that acts; 0 = none yet.
    pub generation: u32,
    /// `HANDOVER_*`.
    pub flags: u32,
    /// The agent's host PID.
    pub agent_tgid: u32,
    /// Always zero.
    pub _pad: u32,
    /// The agent's start time in clock ticks since boot (`/proc/PID/stat` field 22).
    pub agent_start: u64,
}

impl Handover {
    /// Size of the C struct.
    pub const SIZE: usize = size_of::<Self>();

    /// The value bytes for the map, in native byte order.
    pub fn to_bytes(self) -> [u8; Self::SIZE] {
        use core::mem::offset_of;
        let mut b = [0; Self::SIZE];
        put(&mut b, offset_of!(Self, generation), &self.generation.to_ne_bytes());
        put(&mut b, offset_of!(Self, flags), &self.flags.to_ne_bytes());
        put(&mut b, offset_of!(Self, agent_tgid), &self.agent_tgid.to_ne_bytes());
        put(&mut b, offset_of!(Self, _pad), &self._pad.to_ne_bytes());
        put(&mut b, offset_of!(Self, agent_start), &self.agent_start.to_ne_bytes());
        b
    }

    /// The value as the map holds it.
    pub fn from_bytes(b: [u8; Self::SIZE]) -> Handover {
        use core::mem::offset_of;
        let u32_at = |off: usize| u32::from_ne_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]]);
        let off = offset_of!(Self, agent_start);
        let mut start = [0; 8];
        start.copy_from_slice(&b[off..off + 8]);
        Handover {
            generation: u32_at(offset_of!(Self, generation)),
            flags: u32_at(offset_of!(Self, flags)),
            agent_tgid: u32_at(offset_of!(Self, agent_tgid)),
            _pad: u32_at(offset_of!(Self, _pad)),
            agent_start: u64::from_ne_bytes(start),
        }
    }
}

/// `struct enforce_inode_key`: key of `deny_inodes`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct InodeKey {
    /// The kernel's `s_dev` encoding, `(major << 20) | minor`, not userspace's st_dev.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
}

impl InodeKey {
    /// Size of the C struct.
    pub const SIZE: usize = size_of::<Self>();

    /// The key bytes for the map, in native byte order.
    pub fn to_bytes(self) -> [u8; Self::SIZE] {
        let mut b = [0; Self::SIZE];
        put(&mut b, core::mem::offset_of!(Self, dev), &self.dev.to_ne_bytes());
        put(&mut b, core::mem::offset_of!(Self, ino), &self.ino.to_ne_bytes());
        b
    }
}

/// `struct enforce_inode_rule`: value of `deny_inodes`, the rule id per class.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InodeRule {
    /// Config line of the deny_open rule, 0 = opening is not denied.
    pub open_rule: u32,
    /// Config line of the deny_exec rule, 0 = exec is not denied.
    pub exec_rule: u32,
}

impl InodeRule {
    /// Size of the C struct.
    pub const SIZE: usize = size_of::<Self>();

    /// The value bytes for the map, in native byte order.
    pub fn to_bytes(self) -> [u8; Self::SIZE] {
        let mut b = [0; Self::SIZE];
        put(&mut b, core::mem::offset_of!(Self, open_rule), &self.open_rule.to_ne_bytes());
        put(&mut b, core::mem::offset_of!(Self, exec_rule), &self.exec_rule.to_ne_bytes());
        b
    }

    /// The value as the map holds it.
    pub fn from_bytes(b: [u8; Self::SIZE]) -> InodeRule {
        let at = |off: usize| u32::from_ne_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]]);
        InodeRule {
            open_rule: at(core::mem::offset_of!(Self, open_rule)),
            exec_rule: at(core::mem::offset_of!(Self, exec_rule)),
        }
    }
}

/// `struct enforce_net4_key`: key of the `deny_net4` LPM trie.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Net4Key {
    /// 32 (port and pad) + CIDR prefix length.
    pub prefixlen: u32,
    /// Port in network byte order (store `port.to_be()`), 0 = every port.
    pub port: u16,
    /// Always zero.
    pub _pad: u16,
    /// Address in network byte order.
    pub addr: [u8; 4],
}

impl Net4Key {
    /// Size of the C struct.
    pub const SIZE: usize = size_of::<Self>();

    /// The key bytes for the map; `port` and `addr` are already in network order.
    pub fn to_bytes(self) -> [u8; Self::SIZE] {
        let mut b = [0; Self::SIZE];
        put(&mut b, core::mem::offset_of!(Self, prefixlen), &self.prefixlen.to_ne_bytes());
        put(&mut b, core::mem::offset_of!(Self, port), &self.port.to_ne_bytes());
        put(&mut b, core::mem::offset_of!(Self, _pad), &self._pad.to_ne_bytes());
        put(&mut b, core::mem::offset_of!(Self, addr), &self.addr);
        b
    }
}

/// `struct enforce_net6_key`: key of the `deny_net6` LPM trie.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Net6Key {
    /// 32 (port and pad) + CIDR prefix length.
    pub prefixlen: u32,
    /// Port in network byte order (store `port.to_be()`), 0 = every port.
    pub port: u16,
    /// Always zero.
    pub _pad: u16,
    /// Address in network byte order.
    pub addr: [u8; 16],
}

impl Net6Key {
    /// Size of the C struct.
    pub const SIZE: usize = size_of::<Self>();

    /// The key bytes for the map; `port` and `addr` are already in network order.
    pub fn to_bytes(self) -> [u8; Self::SIZE] {
        let mut b = [0; Self::SIZE];
        put(&mut b, core::mem::offset_of!(Self, prefixlen), &self.prefixlen.to_ne_bytes());
        put(&mut b, core::mem::offset_of!(Self, port), &self.port.to_ne_bytes());
        put(&mut b, core::mem::offset_of!(Self, _pad), &self._pad.to_ne_bytes());
        put(&mut b, core::mem::offset_of!(Self, addr), &self.addr);
        b
    }
}

/// `struct enforce_net_rule`: value of both LPM tries.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetRule {
    /// Config line of the deny_connect rule.
    pub rule: u32,
}

impl NetRule {
    /// Size of the C struct.
    pub const SIZE: usize = size_of::<Self>();

    /// The value bytes for the map, in native byte order.
    pub fn to_bytes(self) -> [u8; Self::SIZE] {
        self.rule.to_ne_bytes()
    }
}

/// `struct enforce_event`: one ring-buffer record. The agent only reads these
/// (`events::decode`, by the offsets of this struct); it never builds one outside tests.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(dead_code)] // read by offset_of!, constructed only by tests
pub struct Event {
    /// Kernel `s_dev` encoding (open, exec).
    pub dev: u64,
    /// Inode number (open, exec).
    pub ino: u64,
    /// Process id (the kernel's tgid).
    pub pid: u32,
    /// Real uid.
    pub uid: u32,
    /// Config line of the matching rule, or `RULE_CANARY`.
    pub rule: u32,
    /// `CLASS_*`.
    pub class: u8,
    /// `ACTION_*`.
    pub action: u8,
    /// `TIER_*`.
    pub tier: u8,
    /// Signal sent by the signal tier, 0 for none.
    pub signal: u8,
    /// `AF_INET` or `AF_INET6` (connect).
    pub family: u16,
    /// Destination port in host byte order (connect).
    pub port: u16,
    /// Destination address in network order; AF_INET uses the first 4 bytes.
    pub addr: [u8; 16],
    /// Task name, NUL-padded (not always NUL-terminated).
    pub comm: [u8; COMM_LEN],
    /// `OP_*`.
    pub op: u8,
    /// `REASON_*`.
    pub reason: u8,
    /// Always zero.
    pub _pad: [u8; 2],
    /// `REASON_UNTRUSTED`: the file as the kernel names it, NUL-terminated or cut.
    /// (A literal length: rustc 1.95 ICEs on the named constant here in tests.)
    pub file: [u8; 64],
}

impl Default for Event {
    fn default() -> Event {
        Event {
            dev: 0,
            ino: 0,
            pid: 0,
            uid: 0,
            rule: 0,
            class: 0,
            action: 0,
            tier: 0,
            signal: 0,
            family: 0,
            port: 0,
            addr: [0; 16],
            comm: [0; COMM_LEN],
            op: 0,
            reason: 0,
            _pad: [0; 2],
            file: [0; FILE_LEN],
        }
    }
}

impl Event {
    /// Size of the C struct: the shortest record `events::decode` accepts.
    pub const SIZE: usize = size_of::<Self>();

    /// The record bytes as the kernel would write them (tests build records with this).
    #[cfg(test)]
    pub fn to_bytes(self) -> [u8; Self::SIZE] {
        use core::mem::offset_of;
        let mut b = [0; Self::SIZE];
        put(&mut b, offset_of!(Self, dev), &self.dev.to_ne_bytes());
        put(&mut b, offset_of!(Self, ino), &self.ino.to_ne_bytes());
        put(&mut b, offset_of!(Self, pid), &self.pid.to_ne_bytes());
        put(&mut b, offset_of!(Self, uid), &self.uid.to_ne_bytes());
        put(&mut b, offset_of!(Self, rule), &self.rule.to_ne_bytes());
        put(&mut b, offset_of!(Self, class), &[self.class]);
        put(&mut b, offset_of!(Self, action), &[self.action]);
        put(&mut b, offset_of!(Self, tier), &[self.tier]);
        put(&mut b, offset_of!(Self, signal), &[self.signal]);
        put(&mut b, offset_of!(Self, family), &self.family.to_ne_bytes());
        put(&mut b, offset_of!(Self, port), &self.port.to_ne_bytes());
        put(&mut b, offset_of!(Self, addr), &self.addr);
        put(&mut b, offset_of!(Self, comm), &self.comm);
        put(&mut b, offset_of!(Self, op), &[self.op]);
        put(&mut b, offset_of!(Self, reason), &[self.reason]);
        put(&mut b, offset_of!(Self, _pad), &self._pad);
        put(&mut b, offset_of!(Self, file), &self.file);
        b
    }
}

/// The cheap first tests (enforce.h): the multiplier of the inode filter's hash.
pub const FILTER_MULT: u64 = 0x9E37_79B9_7F4A_7C15;
/// Slots of `followed_inodes` (only the BPF programs write them; pinned by a test).
#[cfg(test)]
pub const FOLLOWED_SLOTS: u32 = 1024;
/// Words of `net_filter` per family and kind of rule (a bit per /16).
pub const NET_FILTER_WORDS: u32 = 1024;
/// Length of `inode_filter` for the programs built for kernels without BTF (enforce.h).
pub const INODE_FILTER_WORDS_NO_BTF: u32 = 8192;

/// The filter hash `b` of an inode number (enforce.h): its bit in `inode_filter` is bit
/// `b & 63` of word `(b >> 6) mod words`.
pub fn inode_hash(ino: u64) -> u64 {
    ino.wrapping_mul(FILTER_MULT) >> 40
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{align_of, offset_of};

    /// The numbers are what `cc` prints for bpf/enforce.h (sizeof, _Alignof, offsetof)
    /// on x86_64, and what clang gives for the BPF target: change the header, change these.
    #[test]
    fn layout_matches_the_c_header() {
        assert_eq!((size_of::<Settings>(), align_of::<Settings>()), (16, 4));
        assert_eq!(offset_of!(Settings, mode), 0);
        assert_eq!(offset_of!(Settings, signal), 4);
        assert_eq!(offset_of!(Settings, flags), 8);
        assert_eq!(offset_of!(Settings, canary_tgid), 12);

        assert_eq!((size_of::<Handover>(), align_of::<Handover>()), (24, 8));
        assert_eq!(offset_of!(Handover, generation), 0);
        assert_eq!(offset_of!(Handover, flags), 4);
        assert_eq!(offset_of!(Handover, agent_tgid), 8);
        assert_eq!(offset_of!(Handover, _pad), 12);
        assert_eq!(offset_of!(Handover, agent_start), 16);

        assert_eq!((size_of::<PathAgent>(), align_of::<PathAgent>()), (24, 8));
        assert_eq!(offset_of!(PathAgent, tgid), 0);
        assert_eq!(offset_of!(PathAgent, _pad), 4);
        assert_eq!(offset_of!(PathAgent, cookie_addr), 8);
        assert_eq!(offset_of!(PathAgent, cookie), 16);

        assert_eq!((size_of::<InodeKey>(), align_of::<InodeKey>()), (16, 8));
        assert_eq!(offset_of!(InodeKey, dev), 0);
        assert_eq!(offset_of!(InodeKey, ino), 8);

        assert_eq!((size_of::<InodeRule>(), align_of::<InodeRule>()), (8, 4));
        assert_eq!(offset_of!(InodeRule, open_rule), 0);
        assert_eq!(offset_of!(InodeRule, exec_rule), 4);

        assert_eq!((size_of::<Net4Key>(), align_of::<Net4Key>()), (12, 4));
        assert_eq!(offset_of!(Net4Key, prefixlen), 0);
        assert_eq!(offset_of!(Net4Key, port), 4);
        assert_eq!(offset_of!(Net4Key, _pad), 6);
        assert_eq!(offset_of!(Net4Key, addr), 8);

        assert_eq!((size_of::<Net6Key>(), align_of::<Net6Key>()), (24, 4));
        assert_eq!(offset_of!(Net6Key, prefixlen), 0);
        assert_eq!(offset_of!(Net6Key, port), 4);
        assert_eq!(offset_of!(Net6Key, _pad), 6);
        assert_eq!(offset_of!(Net6Key, addr), 8);

        assert_eq!((size_of::<NetRule>(), align_of::<NetRule>()), (4, 4));
        assert_eq!(offset_of!(NetRule, rule), 0);

        assert_eq!((size_of::<Event>(), align_of::<Event>()), (136, 8));
        assert_eq!(offset_of!(Event, dev), 0);
        assert_eq!(offset_of!(Event, ino), 8);
        assert_eq!(offset_of!(Event, pid), 16);
        assert_eq!(offset_of!(Event, uid), 20);
        assert_eq!(offset_of!(Event, rule), 24);
        assert_eq!(offset_of!(Event, class), 28);
        assert_eq!(offset_of!(Event, action), 29);
        assert_eq!(offset_of!(Event, tier), 30);
        assert_eq!(offset_of!(Event, signal), 31);
        assert_eq!(offset_of!(Event, family), 32);
        assert_eq!(offset_of!(Event, port), 34);
        assert_eq!(offset_of!(Event, addr), 36);
        assert_eq!(offset_of!(Event, comm), 52);
        assert_eq!(offset_of!(Event, op), 68);
        assert_eq!(offset_of!(Event, reason), 69);
        assert_eq!(offset_of!(Event, _pad), 70);
        assert_eq!(offset_of!(Event, file), 72);
        assert_eq!(size_of::<PathKey>(), 256);
    }

    #[test]
    fn path_keys_are_zero_padded() {
        let k = PathKey::new(b"/etc/shadow").unwrap();
        assert_eq!(&k.0[..11], b"/etc/shadow");
        assert!(k.0[11..].iter().all(|&b| b == 0));
        assert!(PathKey::new(&[b'a'; 255]).is_some());
        assert_eq!(PathKey::new(&[b'a'; 256]), None, "no room for the NUL");
        assert_eq!(PathKey::new(b"/a\0b"), None, "a NUL inside");
    }

    #[test]
    fn enum_values_match_the_c_header() {
        let header = include_str!("../bpf/enforce.h");
        let has = |name: &str, v: u32| assert!(header.contains(&format!("\t{name} = {v},")), "{name} = {v}");
        for (name, v) in [("DENIED", ACTION_DENIED), ("AUDITED", ACTION_AUDITED), ("FOLLOWED", ACTION_FOLLOWED), ("UNLINKED", ACTION_UNLINKED)] {
            has(&format!("ENFORCE_ACTION_{name}"), u32::from(v));
        }
        for (name, v) in [
            ("DENIED", COUNTER_DENIED),
            ("AUDITED", COUNTER_AUDITED),
            ("DROPPED", COUNTER_DROPPED),
            ("FOLLOWED", COUNTER_FOLLOWED),
            ("FOLLOW_FAILED", COUNTER_FOLLOW_FAILED),
            ("UNLINKED", COUNTER_UNLINKED),
            ("UNREADABLE", COUNTER_UNREADABLE),
            ("MAX", COUNTER_MAX),
        ] {
            has(&format!("ENFORCE_COUNTER_{name}"), v);
        }
        for (name, v) in [("RULE", REASON_RULE), ("UNTRUSTED", REASON_UNTRUSTED), ("ANON", REASON_ANON), ("UNREADABLE", REASON_UNREADABLE), ("SHARED", REASON_SHARED)] {
            has(&format!("ENFORCE_REASON_{name}"), u32::from(v));
        }
        for (name, v) in [
            ("ALLOW_LIST", FLAG_ALLOW_LIST),
            ("DENY_ANON", FLAG_DENY_ANON),
            ("OPEN_RULES", FLAG_OPEN_RULES),
            ("EXEC_RULES", FLAG_EXEC_RULES),
            ("CONNECT_RULES", FLAG_CONNECT_RULES),
        ] {
            has(&format!("ENFORCE_FLAG_{name}"), v);
        }
    }

    #[test]
    fn filter_constants_match_the_c_header() {
        let header = include_str!("../bpf/enforce.h");
        let define = |name: &str| -> u64 {
            let line = header.lines().find(|l| l.starts_with(&format!("#define {name} "))).unwrap();
            let v = line.split_whitespace().nth(2).unwrap().trim_end_matches("ULL");
            match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16).unwrap(),
                None => v.parse().unwrap(),
            }
        };
        assert_eq!(define("ENFORCE_FILTER_MULT"), FILTER_MULT);
        assert_eq!(define("ENFORCE_FOLLOWED_SLOTS"), u64::from(FOLLOWED_SLOTS));
        assert_eq!(define("ENFORCE_NET_FILTER_WORDS"), u64::from(NET_FILTER_WORDS));
        assert_eq!(define("ENFORCE_INODE_FILTER_WORDS_NO_BTF"), u64::from(INODE_FILTER_WORDS_NO_BTF));
        // 24 bits of hash: enough for any filter the agent makes.
        assert_eq!(inode_hash(u64::MAX) >> 24, 0);
        assert_eq!(inode_hash(1), FILTER_MULT >> 40);
        assert_ne!(inode_hash(2), inode_hash(3));
    }

    #[test]
    fn to_bytes_places_every_field() {
        let s = Settings {
            mode: MODE_ENFORCE,
            signal: 9,
            flags: FLAG_DENY_ANON,
            canary_tgid: 77,
        };
        let b = s.to_bytes();
        assert_eq!(b[0..4], 2u32.to_ne_bytes());
        assert_eq!(b[4..8], 9u32.to_ne_bytes());
        assert_eq!(b[8..12], 2u32.to_ne_bytes());
        assert_eq!(b[12..16], 77u32.to_ne_bytes());

        let h = Handover { generation: 7, flags: HANDOVER_EXACT, agent_tgid: 0x0a0b_0c0d, _pad: 0, agent_start: 1 << 40 };
        let hb = h.to_bytes();
        assert_eq!(hb[0..4], 7u32.to_ne_bytes());
        assert_eq!(hb[4..8], 1u32.to_ne_bytes());
        assert_eq!(hb[8..12], 0x0a0b_0c0du32.to_ne_bytes());
        assert_eq!(hb[16..24], (1u64 << 40).to_ne_bytes());
        assert_eq!(Handover::from_bytes(hb), h);

        let k = InodeKey { dev: 0x0080_0001, ino: u64::MAX - 1 };
        assert_eq!(k.to_bytes()[0..8], 0x0080_0001u64.to_ne_bytes());
        assert_eq!(k.to_bytes()[8..16], (u64::MAX - 1).to_ne_bytes());

        let r = InodeRule { open_rule: 3, exec_rule: 7 };
        assert_eq!(InodeRule::from_bytes(r.to_bytes()), r);
        assert_eq!(r.to_bytes()[..4], 3u32.to_ne_bytes());
        assert_eq!(r.to_bytes()[4..], 7u32.to_ne_bytes());

        let k4 = Net4Key { prefixlen: 40, port: 443u16.to_be(), _pad: 0, addr: [10, 0, 0, 0] };
        assert_eq!(k4.to_bytes(), [40u32.to_ne_bytes().as_slice(), &[1, 187, 0, 0, 10, 0, 0, 0]].concat()[..]);

        let mut addr = [0; 16];
        addr[0] = 0xfd;
        let k6 = Net6Key { prefixlen: 40, port: 0, _pad: 0, addr };
        let b6 = k6.to_bytes();
        assert_eq!(b6[..4], 40u32.to_ne_bytes());
        assert_eq!(b6[4..8], [0; 4]);
        assert_eq!(b6[8..], addr);

        assert_eq!(NetRule { rule: 5 }.to_bytes(), 5u32.to_ne_bytes());

        let e = Event {
            dev: 1,
            ino: 2,
            pid: 3,
            uid: 4,
            rule: 5,
            class: 6,
            action: 7,
            tier: 8,
            signal: 9,
            family: 10,
            port: 11,
            addr: [12; 16],
            comm: [13; COMM_LEN],
            op: 14,
            reason: 15,
            _pad: [0; 2],
            file: [16; FILE_LEN],
        };
        let b = e.to_bytes();
        assert_eq!(b[0..8], 1u64.to_ne_bytes());
        assert_eq!(b[16..20], 3u32.to_ne_bytes());
        assert_eq!(b[28..32], [6, 7, 8, 9]);
        assert_eq!(b[34..36], 11u16.to_ne_bytes());
        assert_eq!(b[36..52], [12; 16]);
        assert_eq!(b[52..68], [13; 16]);
        assert_eq!(b[68..72], [14, 15, 0, 0]);
        assert_eq!(b[72..136], [16; FILE_LEN]);
    }
}
