//! The same open, connect and send, submitted through io_uring: the operation runs
//! in the kernel (inline or on an io-wq worker) without the open/connect/sendmsg
//! syscalls, so syscall tracepoints never see it. Raw io_uring_setup/io_uring_enter
//! and mmap'd rings, one submission at a time; the result is the CQE's `res`.
//! Layouts are the kernel's uapi (linux/io_uring.h), stable since 5.1; OPENAT and
//! CONNECT need 5.6.

use crate::{cstr, errno, finish, parse_addr, raw_sockaddr, socket, Fd};
use crate::net::{msghdr_to, payload_iov};
use std::mem::size_of;
use std::sync::atomic::{AtomicU32, Ordering};

const IORING_OP_SENDMSG: u8 = 9;
const IORING_OP_CONNECT: u8 = 16;
const IORING_OP_OPENAT: u8 = 18;
const IORING_ENTER_GETEVENTS: u32 = 1;
const IORING_OFF_SQ_RING: i64 = 0;
const IORING_OFF_CQ_RING: i64 = 0x800_0000;
const IORING_OFF_SQES: i64 = 0x1000_0000;

#[repr(C)]
#[derive(Default)]
struct SqringOffsets {
    head: u32,
    tail: u32,
    ring_mask: u32,
    ring_entries: u32,
    flags: u32,
    dropped: u32,
    array: u32,
    resv1: u32,
    user_addr: u64,
}

#[repr(C)]
#[derive(Default)]
struct CqringOffsets {
    head: u32,
    tail: u32,
    ring_mask: u32,
    ring_entries: u32,
    overflow: u32,
    cqes: u32,
    flags: u32,
    resv1: u32,
    user_addr: u64,
}

#[repr(C)]
#[derive(Default)]
struct Params {
    sq_entries: u32,
    cq_entries: u32,
    flags: u32,
    sq_thread_cpu: u32,
    sq_thread_idle: u32,
    features: u32,
    wq_fd: u32,
    resv: [u32; 3],
    sq_off: SqringOffsets,
    cq_off: CqringOffsets,
}

/// A submission queue entry. `off` doubles as `addr2` (CONNECT: the address
/// length); `op_flags` is `open_flags` for OPENAT and `msg_flags` for SENDMSG.
#[repr(C)]
#[derive(Default)]
struct Sqe {
    opcode: u8,
    flags: u8,
    ioprio: u16,
    fd: i32,
    off: u64,
    addr: u64,
    len: u32,
    op_flags: u32,
    user_data: u64,
    buf_index: u16,
    personality: u16,
    file_index: i32,
    addr3: u64,
    pad: u64,
}

#[repr(C)]
struct Cqe {
    user_data: u64,
    res: i32,
    flags: u32,
}

const _: () = assert!(size_of::<Params>() == 120 && size_of::<Sqe>() == 64 && size_of::<Cqe>() == 16);

/// A ring fd with its three mappings. Unmapped at exit only: the process is short-lived.
struct Ring {
    fd: Fd,
    sq: *mut u8,
    cq: *mut u8,
    sqes: *mut Sqe,
    p: Params,
}

fn map(fd: i32, len: usize, off: i64) -> Result<*mut u8, i32> {
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, libc::MAP_SHARED, fd, off) };
    if p == libc::MAP_FAILED { Err(errno()) } else { Ok(p as *mut u8) }
}

/// A u32 the kernel shares with us (ring heads and tails), read and written atomically.
unsafe fn shared_u32<'a>(base: *mut u8, off: u32) -> &'a AtomicU32 {
    &*(base.add(off as usize) as *const AtomicU32)
}

impl Ring {
    /// Two entries are plenty: one operation is in flight at a time. The SQ and CQ
    /// rings are mapped separately, which every kernel accepts (one shared mapping
    /// is only an option since 5.4, IORING_FEAT_SINGLE_MMAP).
    fn new() -> Result<Ring, i32> {
        let mut p = Params::default();
        let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 2u32, &mut p as *mut Params) };
        if fd < 0 {
            return Err(errno());
        }
        let fd = Fd(fd as i32);
        let sq_len = p.sq_off.array as usize + p.sq_entries as usize * size_of::<u32>();
        let cq_len = p.cq_off.cqes as usize + p.cq_entries as usize * size_of::<Cqe>();
        let sq = map(fd.0, sq_len, IORING_OFF_SQ_RING)?;
        let cq = map(fd.0, cq_len, IORING_OFF_CQ_RING)?;
        let sqes = map(fd.0, p.sq_entries as usize * size_of::<Sqe>(), IORING_OFF_SQES)? as *mut Sqe;
        Ok(Ring { fd, sq, cq, sqes, p })
    }

    fn enter(&self, to_submit: u32, min_complete: u32, flags: u32) -> Result<i64, i32> {
        loop {
            let null = std::ptr::null::<libc::c_void>();
            let r = unsafe { libc::syscall(libc::SYS_io_uring_enter, self.fd.0, to_submit, min_complete, flags, null, 0usize) };
            match r {
                r if r >= 0 => return Ok(r.into()), // c_long: i32 on 32-bit ARM
                _ if errno() == libc::EINTR => continue,
                _ => return Err(errno()),
            }
        }
    }

    /// Submits one entry and waits for its completion: Ok(res) when res >= 0, else
    /// Err(-res). Anything whose address is in `sqe` must outlive this call.
    fn run(&self, sqe: Sqe) -> Result<i32, i32> {
        unsafe {
            let so = &self.p.sq_off;
            let tail = shared_u32(self.sq, so.tail);
            let mask = *(self.sq.add(so.ring_mask as usize) as *const u32);
            let t = tail.load(Ordering::Relaxed); // we are the only producer
            let idx = t & mask;
            self.sqes.add(idx as usize).write(sqe);
            *(self.sq.add(so.array as usize) as *mut u32).add(idx as usize) = idx;
            tail.store(t.wrapping_add(1), Ordering::Release); // the entry before the tail

            if self.enter(1, 0, 0)? != 1 {
                return Err(libc::EIO);
            }
            let co = &self.p.cq_off;
            let (head, ctail) = (shared_u32(self.cq, co.head), shared_u32(self.cq, co.tail));
            let h = head.load(Ordering::Relaxed);
            while ctail.load(Ordering::Acquire) == h {
                self.enter(0, 1, IORING_ENTER_GETEVENTS)?;
            }
            let cmask = *(self.cq.add(co.ring_mask as usize) as *const u32);
            let cqe = &*(self.cq.add(co.cqes as usize) as *const Cqe).add((h & cmask) as usize);
            let res = cqe.res;
            head.store(h.wrapping_add(1), Ordering::Release);
            if res < 0 { Err(-res) } else { Ok(res) }
        }
    }
}

/// `uring-open PATH`: IORING_OP_OPENAT(AT_FDCWD, PATH, O_RDONLY), then close.
pub fn cmd_open(path: &str) -> ! {
    let what = format!("uring-open {path}");
    let p = cstr(path);
    let res = Ring::new().and_then(|ring| {
        let sqe = Sqe {
            opcode: IORING_OP_OPENAT,
            fd: libc::AT_FDCWD,
            addr: p.as_ptr() as u64,
            op_flags: (libc::O_RDONLY | libc::O_CLOEXEC) as u32,
            ..Default::default()
        };
        ring.run(sqe).map(|fd| drop(Fd(fd)))
    });
    finish(&what, res)
}

/// `uring-connect ADDR PORT`: IORING_OP_CONNECT of a fresh TCP socket. No timeout:
/// meant for loopback, where it is answered at once.
pub fn cmd_connect(addr: &str, port: &str) -> ! {
    let what = format!("uring-connect {addr} {port}");
    let (fam, st, len) = raw_sockaddr(&parse_addr(addr, port));
    let res = Ring::new().and_then(|ring| {
        let fd = socket(fam, libc::SOCK_STREAM)?;
        let sqe = Sqe {
            opcode: IORING_OP_CONNECT,
            fd: fd.0,
            addr: &st as *const _ as u64,
            off: len as u64,
            ..Default::default()
        };
        ring.run(sqe).map(drop)
    });
    finish(&what, res)
}

/// `uring-sendmsg ADDR PORT`: IORING_OP_SENDMSG of one datagram from an unconnected
/// UDP socket, the destination in msg_name.
pub fn cmd_sendmsg(addr: &str, port: &str) -> ! {
    let what = format!("uring-sendmsg {addr} {port}");
    let (fam, st, len) = raw_sockaddr(&parse_addr(addr, port));
    let iov = payload_iov();
    let m = msghdr_to(&st, len, &iov);
    let res = Ring::new().and_then(|ring| {
        let fd = socket(fam, libc::SOCK_DGRAM)?;
        let sqe = Sqe { opcode: IORING_OP_SENDMSG, fd: fd.0, addr: &m as *const _ as u64, ..Default::default() };
        match ring.run(sqe)? {
            n if n as usize == iov.iov_len => Ok(()),
            _ => Err(libc::EMSGSIZE), // a datagram is never sent in part
        }
    });
    finish(&what, res)
}
