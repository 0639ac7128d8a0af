//! Sends and connects that never go through a plain `connect(2)` with a stable
//! address: unconnected UDP sends, TCP Fast Open, and a connect whose sockaddr
//! another thread rewrites while the kernel reads it.

use crate::{errno, finish, parse_addr, parse_addrlen, raw_sockaddr, socket, usage};
use std::io::{self, Write};
use std::mem::{size_of, zeroed};
use std::process::exit;
use std::sync::atomic::{AtomicBool, Ordering};

const PAYLOAD: &[u8] = b"probe\n";

fn sock_ptr(st: &libc::sockaddr_storage) -> *const libc::sockaddr {
    st as *const _ as *const libc::sockaddr
}

/// A `msghdr` that sends `iov` to the address in `st` (`msg_name` set), so a
/// sendmsg(2) on an unconnected socket carries its own destination.
pub fn msghdr_to(st: &libc::sockaddr_storage, len: u32, iov: &libc::iovec) -> libc::msghdr {
    let mut m: libc::msghdr = unsafe { zeroed() };
    m.msg_name = st as *const _ as *mut libc::c_void;
    m.msg_namelen = len;
    m.msg_iov = iov as *const _ as *mut libc::iovec;
    m.msg_iovlen = 1;
    m
}

pub fn payload_iov() -> libc::iovec {
    libc::iovec { iov_base: PAYLOAD.as_ptr() as *mut libc::c_void, iov_len: PAYLOAD.len() }
}

/// A send's return value: the whole datagram went out, or the errno.
fn sent(r: isize) -> Result<(), i32> {
    match r {
        r if r < 0 => Err(errno()),
        r if r as usize == PAYLOAD.len() => Ok(()),
        _ => Err(libc::EMSGSIZE), // a datagram is never sent in part
    }
}

/// `udp-send sendto|sendmsg ADDR PORT [ADDRLEN]`: one datagram from an unconnected
/// UDP socket of ADDR's family (a v4-mapped ADDR uses an AF_INET6 socket).
pub fn cmd_udp_send(args: &[&str]) -> ! {
    let (how, addr, port, len) = match args {
        [how, addr, port] => (*how, addr, port, None),
        [how, addr, port, len] => (*how, addr, port, Some(*len)),
        _ => usage(),
    };
    let (fam, st, natural) = raw_sockaddr(&parse_addr(addr, port));
    let len = parse_addrlen(len, natural);
    let what = format!("udp-send {}", args.join(" "));
    let fd = socket(fam, libc::SOCK_DGRAM).unwrap_or_else(|e| finish(&what, Err(e)));
    let res = match how {
        "sendto" => sent(unsafe {
            libc::sendto(fd.0, PAYLOAD.as_ptr() as *const libc::c_void, PAYLOAD.len(), 0, sock_ptr(&st), len)
        }),
        "sendmsg" => {
            let iov = payload_iov();
            let m = msghdr_to(&st, len, &iov);
            sent(unsafe { libc::sendmsg(fd.0, &m, 0) })
        }
        _ => usage(),
    };
    finish(&what, res)
}

/// `udp-sendmmsg ADDR PORT AT`: one sendmmsg(2) of AT+1 datagrams from an unconnected
/// UDP socket, the first AT to ADDR:PORT+1 and the last to ADDR:PORT: whether a hook
/// checks a message that far into the vector. Ok when every message went; ECANCELED
/// when only some did (the kernel reports a refused later message as a short count).
pub fn cmd_udp_sendmmsg(addr: &str, port: &str, at: &str) -> ! {
    let what = format!("udp-sendmmsg {addr} {port} {at}");
    let at: usize = at.parse().unwrap_or_else(|_| usage());
    let other = (port.parse::<u16>().unwrap_or_else(|_| usage()) + 1).to_string();
    let (fam, last, len) = raw_sockaddr(&parse_addr(addr, port));
    let (_, first, _) = raw_sockaddr(&parse_addr(addr, &other));
    let fd = socket(fam, libc::SOCK_DGRAM).unwrap_or_else(|e| finish(&what, Err(e)));
    let iov = payload_iov();
    let mut msgs: Vec<libc::mmsghdr> = (0..=at)
        .map(|i| libc::mmsghdr { msg_hdr: msghdr_to(if i == at { &last } else { &first }, len, &iov), msg_len: 0 })
        .collect();
    let r = unsafe { libc::sendmmsg(fd.0, msgs.as_mut_ptr(), msgs.len() as _, 0) };
    let res = match r {
        r if r < 0 => Err(errno()),
        r if r as usize == msgs.len() => Ok(()),
        _ => Err(libc::ECANCELED),
    };
    finish(&what, res)
}

/// `tfo ADDR PORT`: a TCP Fast Open client. sendto(MSG_FASTOPEN) on a fresh socket
/// connects and sends in one call, never calling connect(2). Without a cookie the
/// kernel sends a plain SYN (asking for one) and the data after the handshake;
/// either way the call succeeds once the data is queued. Needs the client bit (1)
/// of net.ipv4.tcp_fastopen, the default; without it the kernel connects normally.
pub fn cmd_tfo(addr: &str, port: &str) -> ! {
    let (fam, st, len) = raw_sockaddr(&parse_addr(addr, port));
    let what = format!("tfo {addr} {port}");
    let fd = socket(fam, libc::SOCK_STREAM).unwrap_or_else(|e| finish(&what, Err(e)));
    // Blocking send waits for the handshake: bound it like `connect` (3 s).
    let tv = libc::timeval { tv_sec: 3, tv_usec: 0 };
    let tvp = &tv as *const libc::timeval as *const libc::c_void;
    if unsafe { libc::setsockopt(fd.0, libc::SOL_SOCKET, libc::SO_SNDTIMEO, tvp, size_of::<libc::timeval>() as u32) } < 0 {
        finish(&what, Err(errno()));
    }
    // MSG_NOSIGNAL: a reset peer must give EPIPE, not a SIGPIPE that would look
    // like the agent's kill.
    let flags = libc::MSG_FASTOPEN | libc::MSG_NOSIGNAL;
    let r = unsafe { libc::sendto(fd.0, PAYLOAD.as_ptr() as *const libc::c_void, PAYLOAD.len(), flags, sock_ptr(&st), len) };
    let res = match r {
        // The send timeout ran out during the handshake; the kernel says EINPROGRESS.
        r if r < 0 && errno() == libc::EINPROGRESS => Err(libc::ETIMEDOUT),
        r if r < 0 => Err(errno()),
        _ => Ok(()),
    };
    finish(&what, res)
}

/// `race-connect ADDR DENIED_PORT ALLOWED_PORT TRIES`: the time-of-check/time-of-use
/// attack on a connect hook that reads the address from user memory. A second thread
/// rewrites the port in the one sockaddr the main thread passes to connect(2), so a
/// hook may read one port and the kernel copy the other. Each try connects a fresh
/// blocking TCP socket and asks getpeername(2) where it really went. Listeners on
/// both ports must be running (`probe listen`). Exit 3 when a connect reached the
/// denied port, 0 when none did; EPERM (denied under BPF-LSM) counts as a try.
/// The attack needs the flipper to run while connect(2) does, so two CPUs: on one,
/// the address is fixed for the whole syscall (and a one-CPU qemu TCG guest only
/// preempts the flipper after its last store: no try reaches the denied port even
/// without an agent, so the case proves nothing there).
pub fn cmd_race_connect(addr: &str, denied: &str, allowed: &str, tries: &str) -> ! {
    let denied_port: u16 = denied.parse().unwrap_or_else(|_| usage());
    // The sockaddr starts out allowed: without the flipper every connect would
    // reach the allowed port, so reaching the denied one is the race's doing.
    let (fam, st, len) = raw_sockaddr(&parse_addr(addr, allowed));
    let allowed_port = parse_addr(addr, allowed).port();
    let tries: u64 = tries.parse().unwrap_or_else(|_| usage());
    // Leaked: both threads use it until exit. Only raw pointers touch it.
    let shared = Box::into_raw(Box::new(st));
    // sin_port and sin6_port both sit at offset 2. A usize, because raw pointers
    // are not Send.
    let port_at = shared as usize + 2;
    static STARTED: AtomicBool = AtomicBool::new(false);
    static STOP: AtomicBool = AtomicBool::new(false);
    let (d, a) = (denied_port.to_be(), allowed_port.to_be());
    let flipper = std::thread::spawn(move || {
        let p = port_at as *mut u16;
        STARTED.store(true, Ordering::Release);
        while !STOP.load(Ordering::Relaxed) {
            // Volatile: every store must reach memory; nothing in this thread reads it.
            unsafe {
                std::ptr::write_volatile(p, d);
                std::ptr::write_volatile(p, a);
            }
        }
    });
    // Connect only once the flipper runs, so that every try is a real race.
    while !STARTED.load(Ordering::Acquire) {
        std::thread::yield_now();
    }
    let mut allowed_connects = 0u64;
    for i in 1..=tries {
        let fd = socket(fam, libc::SOCK_STREAM).unwrap_or_else(|e| finish("race-connect", Err(e)));
        if unsafe { libc::connect(fd.0, shared as *const libc::sockaddr, len) } < 0 {
            match errno() {
                libc::EPERM => continue,
                // Connected, then closed and reset by the listener before connect(2)
                // returned (seen in a one-CPU guest after thousands of tries, with the
                // TIME_WAIT table full): where it went can no longer be asked.
                libc::EPIPE | libc::ECONNRESET => continue,
                e => finish("race-connect", Err(e)),
            }
        }
        let mut peer: libc::sockaddr_storage = unsafe { zeroed() };
        let mut plen = size_of::<libc::sockaddr_storage>() as u32;
        if unsafe { libc::getpeername(fd.0, &mut peer as *mut _ as *mut libc::sockaddr, &mut plen) } < 0 {
            finish("race-connect getpeername", Err(errno()));
        }
        let port = u16::from_be(unsafe { *((&peer as *const _ as *const u8).add(2) as *const u16) });
        if port == denied_port {
            println!("race-connect: connected to the denied port after {i} tries");
            let _ = io::stdout().flush();
            exit(3);
        }
        allowed_connects += 1;
    }
    STOP.store(true, Ordering::Relaxed);
    let _ = flipper.join();
    println!("race-connect: ok ({tries} tries, {allowed_connects} connects to the allowed port)");
    exit(0)
}
