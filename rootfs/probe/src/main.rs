//! `probe`: a tiny static test tool for the VM guest.
//!
//! Every subcommand prints one result line (`<what>: ok` or `<what>: ERRNO`) and
//! exits 0 on success, 1 on failure (2 on a usage error). An operation denied by
//! BPF-LSM shows as `EPERM`; one caught by a signal tier prints nothing (killed).
//! The attack cases (race-connect, rename-replace, rename-replace-wait,
//! lose-name-wait) exit 3 when the attack got through. Besides `open32` (rootfs/compat), the cases that avoid a
//! plain syscall live in modules: `net` (sends without connect, the connect race),
//! `untouched` (arguments in a page never touched), `uring` (io_uring), `mem` (executable mappings, memfd exec), `files` (open by
//! handle, ignored signals, atomic replace).
//!
//! ```text
//! probe open PATH               open(PATH, O_RDONLY)
//! probe exec PATH [ARGS..]      execv(PATH, [PATH, ARGS..]); prints only on failure
//! probe connect ADDR PORT [ADDRLEN]
//!                               TCP connect, 3 s timeout; ADDR is IPv4 or IPv6 (also
//!                               v4-mapped ::ffff:a.b.c.d); ADDRLEN is passed to connect(2)
//!                               as is (IPv6: 24 omits sin6_scope_id, which the kernel takes)
//! probe udp-send sendto|sendmsg ADDR PORT [ADDRLEN]
//!                               one datagram from an unconnected UDP socket of ADDR's
//!                               family (v4-mapped: AF_INET6) via sendto(2) or sendmsg(2)
//!                               with msg_name; never calls connect(2)
//! probe udp-sendmmsg ADDR PORT AT
//!                               one sendmmsg(2) of AT+1 datagrams: the first AT to
//!                               ADDR:PORT+1, the last to ADDR:PORT; ok when all went,
//!                               ECANCELED when only some did
//! probe tfo ADDR PORT           TCP Fast Open client: sendto(MSG_FASTOPEN) on a fresh
//!                               socket, no connect(2); ok once the data is queued
//! probe race-connect ADDR DENIED_PORT ALLOWED_PORT TRIES
//!                               a thread flips the port in the sockaddr being passed to
//!                               connect(2); exit 3 with "connected to the denied port
//!                               after N tries", or 0 with "ok (N tries, M connects to the
//!                               allowed port)"; needs listeners on both ports
//! probe connect-untouched ADDR PORT
//!                               blocking TCP connect, the sockaddr in a page this process
//!                               never touched (a fresh shared memfd mapping filled through
//!                               the file): a tracepoint program cannot read it
//! probe send-untouched sendto|sendmsg|sendmmsg|sendmsg-hdr ADDR PORT
//!                               one UDP datagram, unconnected, its destination in such a
//!                               page (sendmsg-hdr: the msghdr there too)
//! probe open-untouched PATH     open(PATH, O_RDONLY), the path string in such a page
//! probe clone-files-open PATH  a clone(CLONE_FILES) child opens PATH; once it is gone the
//!                               parent reads PATH through a descriptor left in the table
//!                               they shared: exit 3 when it could, 0 when none was left
//! probe clone-vm-exec PATH      a clone(CLONE_VM) child maps PATH executable; once it is
//!                               gone the parent calls the mapping's first byte (x86: a
//!                               file starting with `ret`): exit 3 when it ran, 0 when no
//!                               executable mapping was left
//! probe vfork-map-exec PATH     the same with a vfork child (CLONE_VM|CLONE_VFORK)
//! probe uring-open PATH         open(PATH, O_RDONLY) as IORING_OP_OPENAT (io_uring)
//! probe uring-connect ADDR PORT TCP connect as IORING_OP_CONNECT (no timeout: loopback)
//! probe uring-sendmsg ADDR PORT one UDP datagram as IORING_OP_SENDMSG, msg_name set;
//!                               the uring-* print the errno of io_uring_setup (ENOSYS
//!                               where io_uring is missing) or of the CQE
//! probe mmap-exec PATH          the first page of PATH mmap'd PROT_READ|PROT_EXEC (what
//!                               ld.so does with a program it is given); noexec mount: EPERM
//! probe mprotect-exec PATH      the first page mmap'd PROT_READ, then mprotect'd +PROT_EXEC
//! probe pkey-mprotect-exec PATH the same through pkey_mprotect(2), key -1
//! probe anon-exec               anonymous mmap PROT_READ|PROT_WRITE|PROT_EXEC
//! probe shm-attach EXEC|DATA    a private SysV segment attached with SHM_EXEC (EXEC)
//!                               or without (DATA)
//! probe patch-interp SRC DST INTERP
//!                               DST: a copy of the ELF program SRC whose PT_INTERP names
//!                               INTERP (no longer than SRC's own), mode 0755
//! probe wx-mprotect             anonymous RW page gets a `ret`, mprotect to R|X, called
//! probe memfd-exec PATH [ARGS..]
//!                               PATH copied into a memfd (no MFD_CLOEXEC), executed with
//!                               execveat(AT_EMPTY_PATH); prints only on failure
//! probe open-by-handle PATH     name_to_handle_at + open_by_handle_at (mount fd: PATH's
//!                               directory) + read; needs CAP_DAC_READ_SEARCH (root)
//! probe ignore-term open PATH   TERM INT HUP QUIT USR1 USR2 ABRT ignored, then open+read PATH;
//!                               prints `open PATH: ...` (a catchable signal did not stop it)
//! probe opath-unlink-reopen TARGET MS
//!                               an O_PATH descriptor of TARGET, TARGET unlinked, MS ms,
//!                               then TARGET read through /proc/self/fd/N
//! probe opath-in-flight-reopen TARGET MS
//!                               the same while the only descriptor is in flight in a
//!                               Unix socket (SCM_RIGHTS to itself)
//! probe rename-replace TARGET N N× write TARGET.tmp.<i>, rename it over TARGET, open TARGET
//!                               at once: exit 3 "opened the replacement after rename #i",
//!                               or 1 "EPERM x N" when every open was denied
//! probe rename-replace-wait TARGET MS
//!                               one replacement, then an open every ms: exit 1 "denied
//!                               after X ms", or 3 "still openable after MS ms"
//! probe lose-name-wait unlink|rename TARGET MS
//!                               TARGET unlinked (or renamed to TARGET.away), a new file
//!                               made at TARGET, then an open every ms: exit 1 "denied
//!                               after X ms", or 3 "still openable after MS ms"
//! probe listen ADDR PORT        bind+listen, prints ok, then accepts and closes forever
//! probe stopped-parent AGENT OP ARGS..
//!                               as nobody, `probe OP ARGS..` run by a child whose parent
//!                               execs AGENT and is stopped there (PTRACE_TRACEME): exit 3
//!                               "got through: LINE" when OP succeeded, else 0 (parent.rs)
//! probe as-nobody CMD ARGS..     CMD run as nobody (uid and gid 65534, no groups)
//! probe bpf-count               progs=N links=N (loaded BPF programs and links)
//! probe sleep-exit N [SECS]     sleeps SECS (default 0) and exits with code N
//! probe bench open PATH N       N× open+close; prints "WALL CPU": ns per operation of
//!                               wall time, and of CPU time (user+sys, with children)
//! probe bench connect ADDR PORT N   N× TCP connect to a closed port (ECONNREFUSED)
//! probe bench exec PATH N       N× fork+exec PATH+wait (its stdout to /dev/null)
//! probe open-loop PATH N|-      open+close PATH N times (- : until SIGTERM), counting
//!                               EPERM, successes and other errors; exit 3 if any open
//!                               was not denied with EPERM
//! probe kill-loop PATH N|-      one forked child per open of PATH, N times (- : until
//!                               SIGTERM), counting children killed by SIGKILL; exit 3
//!                               if any child was not killed
//! probe rss PID                 VmRSS of PID in KiB
//! probe syslog-sink PATH IDLE_MS    a stand-in syslog daemon for make bench: binds a
//!                               datagram socket at PATH, prints `listening`, counts what
//!                               arrives until IDLE_MS pass without a datagram (after the
//!                               first); prints `received=N events=E span_us=S` (E: lines
//!                               with `class=`; S: first to last datagram), removes PATH
//! ```

mod files;
mod flood;
mod mem;
mod net;
mod parent;
mod shared;
mod untouched;
mod uring;

use std::ffi::CString;
use std::io::{self, Write};
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::exit;
use std::time::Duration;

pub(crate) fn usage() -> ! {
    eprintln!(
        "usage: probe open PATH | exec PATH [ARGS..] | connect ADDR PORT [ADDRLEN] | \
         udp-send sendto|sendmsg ADDR PORT [ADDRLEN] | udp-sendmmsg ADDR PORT AT | tfo ADDR PORT | \
         race-connect ADDR DENIED_PORT ALLOWED_PORT TRIES | connect-untouched ADDR PORT | \
         send-untouched sendto|sendmsg|sendmmsg|sendmsg-hdr ADDR PORT | open-untouched PATH | \
         clone-files-open PATH | clone-vm-exec PATH | vfork-map-exec PATH | \
         uring-open PATH | uring-connect ADDR PORT | uring-sendmsg ADDR PORT | \
         mmap-exec PATH | mprotect-exec PATH | pkey-mprotect-exec PATH | anon-exec | shm-attach EXEC|DATA | patch-interp SRC DST INTERP | wx-mprotect | memfd-exec PATH [ARGS..] | \
         open-by-handle PATH | ignore-term open PATH | rename-replace TARGET N | \
         rename-replace-wait TARGET MS | lose-name-wait unlink|rename TARGET MS | opath-unlink-reopen TARGET MS | opath-in-flight-reopen TARGET MS | listen ADDR PORT | stopped-parent AGENT OP ARGS.. | as-nobody CMD ARGS.. | bpf-count | sleep-exit N [SECS] | bench open|connect|exec ... | \
         open-loop PATH N|- | kill-loop PATH N|- | rss PID | \
         syslog-sink PATH IDLE_MS"
    );
    exit(2)
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn errno_name(e: i32) -> String {
    let name = match e {
        libc::EPERM => "EPERM",
        libc::ECANCELED => "ECANCELED",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::E2BIG => "E2BIG",
        libc::ENOEXEC => "ENOEXEC",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::EMFILE => "EMFILE",
        libc::ETXTBSY => "ETXTBSY",
        libc::EROFS => "EROFS",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ENOSYS => "ENOSYS",
        libc::ELOOP => "ELOOP",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EADDRINUSE => "EADDRINUSE",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::ENETDOWN => "ENETDOWN",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::ECONNABORTED => "ECONNABORTED",
        libc::ECONNRESET => "ECONNRESET",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::EINPROGRESS => "EINPROGRESS",
        libc::ECHILD => "ECHILD",
        libc::EPIPE => "EPIPE",
        libc::ENODEV => "ENODEV",
        libc::EXDEV => "EXDEV",
        libc::ENOTSOCK => "ENOTSOCK",
        libc::EDESTADDRREQ => "EDESTADDRREQ",
        libc::EMSGSIZE => "EMSGSIZE",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        libc::ENOBUFS => "ENOBUFS",
        libc::EISCONN => "EISCONN",
        libc::ENOTCONN => "ENOTCONN",
        libc::EALREADY => "EALREADY",
        libc::ESTALE => "ESTALE",
        libc::EOVERFLOW => "EOVERFLOW",
        524 => "ENOTSUPP",
        _ => return format!("errno {e}"),
    };
    name.to_string()
}

/// Print the result line and exit: 0 on success, 1 with the errno name otherwise.
fn finish(what: &str, res: Result<(), i32>) -> ! {
    match res {
        Ok(()) => println!("{what}: ok"),
        Err(e) => println!("{what}: {}", errno_name(e)),
    }
    let _ = io::stdout().flush();
    exit(if res.is_ok() { 0 } else { 1 })
}

fn cstr(s: &str) -> CString {
    CString::new(s).unwrap_or_else(|_| usage())
}

fn parse_addr(addr: &str, port: &str) -> SocketAddr {
    let ip: IpAddr = addr.parse().unwrap_or_else(|_| usage());
    let port: u16 = port.parse().unwrap_or_else(|_| usage());
    SocketAddr::new(ip, port)
}

/// The sockaddr the kernel gets for `sa`: (family, storage, natural length).
/// `sin_port` and `sin6_port` both sit at offset 2, right after the family.
fn raw_sockaddr(sa: &SocketAddr) -> (i32, libc::sockaddr_storage, u32) {
    let mut st: libc::sockaddr_storage = unsafe { zeroed() };
    let p = &mut st as *mut libc::sockaddr_storage;
    match sa {
        SocketAddr::V4(a) => {
            let s = p as *mut libc::sockaddr_in;
            unsafe {
                (*s).sin_family = libc::AF_INET as _;
                (*s).sin_port = a.port().to_be();
                (*s).sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
            }
            (libc::AF_INET, st, size_of::<libc::sockaddr_in>() as u32)
        }
        SocketAddr::V6(a) => {
            let s = p as *mut libc::sockaddr_in6;
            unsafe {
                (*s).sin6_family = libc::AF_INET6 as _;
                (*s).sin6_port = a.port().to_be();
                (*s).sin6_addr.s6_addr = a.ip().octets();
            }
            (libc::AF_INET6, st, size_of::<libc::sockaddr_in6>() as u32)
        }
    }
}

/// An explicit sockaddr length from the command line, passed to the kernel as is
/// (e.g. 24: an IPv6 sockaddr without `sin6_scope_id`). At most the storage size,
/// so the kernel never reads past the buffer.
fn parse_addrlen(s: Option<&str>, natural: u32) -> u32 {
    match s {
        None => natural,
        Some(s) => match s.parse::<u32>() {
            Ok(n) if n as usize <= size_of::<libc::sockaddr_storage>() => n,
            _ => usage(),
        },
    }
}

/// A file descriptor closed when dropped (loops that make one per try).
struct Fd(i32);

impl Drop for Fd {
    fn drop(&mut self) {
        unsafe { libc::close(self.0) };
    }
}

/// socket(2) with CLOEXEC; the errno on failure.
fn socket(fam: i32, ty: i32) -> Result<Fd, i32> {
    let fd = unsafe { libc::socket(fam, ty | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 { Err(errno()) } else { Ok(Fd(fd)) }
}

/// open(PATH, O_RDONLY) and close; the errno on failure.
fn open_close(p: &CString) -> Result<(), i32> {
    let fd = unsafe { libc::open(p.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(errno());
    }
    unsafe { libc::close(fd) };
    Ok(())
}

/// open(PATH, O_RDONLY), the descriptor kept for what comes next.
fn open_ro(path: &str) -> Result<Fd, i32> {
    let fd = unsafe { libc::open(cstr(path).as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 { Err(errno()) } else { Ok(Fd(fd)) }
}

fn cmd_open(path: &str) -> ! {
    finish(&format!("open {path}"), open_close(&cstr(path)))
}

fn cmd_exec(path: &str, args: &[String]) -> ! {
    let p = cstr(path);
    let owned: Vec<CString> = std::iter::once(p.clone()).chain(args.iter().map(|a| cstr(a))).collect();
    let mut argv: Vec<*const libc::c_char> = owned.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let _ = io::stdout().flush();
    unsafe { libc::execv(p.as_ptr(), argv.as_ptr()) };
    finish(&format!("exec {path}"), Err(errno()))
}

/// TCP connect with the sockaddr length given (or the natural one), 3 s timeout.
/// Non-blocking connect plus poll, as `TcpStream::connect_timeout` does, but with
/// raw socket(2)/connect(2) so that the length reaches the kernel unchanged.
fn connect_raw(fam: i32, sa: &libc::sockaddr_storage, len: u32) -> Result<(), i32> {
    let fd = socket(fam, libc::SOCK_STREAM | libc::SOCK_NONBLOCK)?;
    if unsafe { libc::connect(fd.0, sa as *const _ as *const libc::sockaddr, len) } == 0 {
        return Ok(());
    }
    if errno() != libc::EINPROGRESS {
        return Err(errno());
    }
    let mut pfd = libc::pollfd { fd: fd.0, events: libc::POLLOUT, revents: 0 };
    loop {
        match unsafe { libc::poll(&mut pfd, 1, 3000) } {
            0 => return Err(libc::ETIMEDOUT),
            r if r < 0 && errno() == libc::EINTR => continue,
            r if r < 0 => return Err(errno()),
            _ => break,
        }
    }
    let (mut err, mut elen) = (0i32, size_of::<i32>() as u32);
    let r = unsafe {
        libc::getsockopt(fd.0, libc::SOL_SOCKET, libc::SO_ERROR, &mut err as *mut i32 as *mut libc::c_void, &mut elen)
    };
    match (r, err) {
        (r, _) if r < 0 => Err(errno()),
        (_, 0) => Ok(()),
        (_, e) => Err(e),
    }
}

fn cmd_connect(args: &[&str]) -> ! {
    let (addr, port, len) = match args {
        [addr, port] => (addr, port, None),
        [addr, port, len] => (addr, port, Some(*len)),
        _ => usage(),
    };
    let (fam, st, natural) = raw_sockaddr(&parse_addr(addr, port));
    let len = parse_addrlen(len, natural);
    finish(&format!("connect {}", args.join(" ")), connect_raw(fam, &st, len))
}

fn setsockopt_int(fd: i32, level: i32, name: i32, val: i32) -> Result<(), i32> {
    let r = unsafe {
        libc::setsockopt(fd, level, name, &val as *const i32 as *const libc::c_void, size_of::<i32>() as u32)
    };
    if r < 0 { Err(errno()) } else { Ok(()) }
}

fn listen_socket(addr: &str, sa: &SocketAddr) -> Result<i32, i32> {
    let (fam, storage, len) = raw_sockaddr(sa);
    unsafe {
        let fd = libc::socket(fam, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(errno());
        }
        setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        if fam == libc::AF_INET6 && addr == "::" {
            // Dual-stack: the wildcard also accepts IPv4 (as ::ffff:a.b.c.d).
            setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 0)?;
        }
        if libc::bind(fd, &storage as *const _ as *const libc::sockaddr, len) < 0 {
            return Err(errno());
        }
        // The longest queue the kernel allows (net.core.somaxconn caps it): a client
        // that connects in a tight loop (race-connect) must not overflow it while
        // this process waits for a CPU, or its SYNs are dropped and retried 1 s later.
        if libc::listen(fd, libc::SOMAXCONN) < 0 {
            return Err(errno());
        }
        Ok(fd)
    }
}

fn cmd_listen(addr: &str, port: &str) -> ! {
    let sa = parse_addr(addr, port);
    let what = format!("listen {addr} {port}");
    let fd = match listen_socket(addr, &sa) {
        Ok(fd) => fd,
        Err(e) => finish(&what, Err(e)),
    };
    println!("{what}: ok");
    let _ = io::stdout().flush();
    loop {
        let c = unsafe { libc::accept4(fd, std::ptr::null_mut(), std::ptr::null_mut(), libc::SOCK_CLOEXEC) };
        if c >= 0 {
            unsafe { libc::close(c) };
        } else if errno() != libc::EINTR && errno() != libc::ECONNABORTED {
            finish(&what, Err(errno()));
        }
    }
}

/// Walk the kernel's ID space with BPF_*_GET_NEXT_ID (start_id at offset 0,
/// next_id at offset 4 of union bpf_attr) and count the entries.
fn count_ids(cmd: libc::c_long) -> Result<u32, i32> {
    let (mut id, mut n) = (0u32, 0u32);
    loop {
        let mut attr = [0u32; 32]; // 128 zeroed bytes; the kernel checks the tail is zero
        attr[0] = id;
        let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), size_of::<[u32; 32]>()) };
        if r < 0 {
            return match errno() {
                libc::ENOENT => Ok(n),
                e => Err(e),
            };
        }
        id = attr[1];
        n += 1;
    }
}

fn cmd_bpf_count() -> ! {
    const BPF_PROG_GET_NEXT_ID: libc::c_long = 11;
    const BPF_LINK_GET_NEXT_ID: libc::c_long = 31;
    match (count_ids(BPF_PROG_GET_NEXT_ID), count_ids(BPF_LINK_GET_NEXT_ID)) {
        (Ok(p), Ok(l)) => {
            println!("progs={p} links={l}");
            exit(0)
        }
        (Err(e), _) | (_, Err(e)) => finish("bpf-count", Err(e)),
    }
}

fn cmd_sleep_exit(code: &str, secs: Option<&String>) -> ! {
    let code: i32 = code.parse().unwrap_or_else(|_| usage());
    let secs: u64 = secs.map(|s| s.parse().unwrap_or_else(|_| usage())).unwrap_or(0);
    std::thread::sleep(Duration::from_secs(secs));
    println!("sleep-exit: {code}");
    let _ = io::stdout().flush();
    exit(code)
}

/// CPU time (user + system) of this process and of its waited-for children, in ns.
fn cpu_ns() -> u128 {
    let of = |who| {
        // SAFETY: getrusage writes one struct rusage.
        let mut ru: libc::rusage = unsafe { zeroed() };
        unsafe { libc::getrusage(who, &mut ru) };
        let tv = |t: libc::timeval| t.tv_sec as u128 * 1_000_000_000 + t.tv_usec as u128 * 1000;
        tv(ru.ru_utime) + tv(ru.ru_stime)
    };
    of(libc::RUSAGE_SELF) + of(libc::RUSAGE_CHILDREN)
}

/// Runs `op` `n` times and prints the mean wall time and the mean CPU time (this
/// process and its children: what the operation costs, however busy the machine)
/// per operation, in ns; any failure ends it.
fn bench_loop(what: &str, n: u32, mut op: impl FnMut() -> Result<(), i32>) -> ! {
    let (start, cpu) = (std::time::Instant::now(), cpu_ns());
    for _ in 0..n {
        if let Err(e) = op() {
            finish(&format!("bench {what}"), Err(e));
        }
    }
    let n = u128::from(n.max(1));
    println!("{} {}", start.elapsed().as_nanos() / n, (cpu_ns() - cpu) / n);
    exit(0)
}

fn cmd_bench(what: &str, rest: &[&str]) -> ! {
    let count = |s: &str| -> u32 { s.parse().unwrap_or_else(|_| usage()) };
    match (what, rest) {
        ("open", [path, n]) => {
            let p = cstr(path);
            bench_loop(what, count(n), || open_close(&p))
        }
        ("connect", [addr, port, n]) => {
            let sa = parse_addr(addr, port);
            // A port nobody listens on: the hook runs on every connect, and no
            // listener's scheduling or TIME_WAIT state enters the numbers.
            bench_loop(what, count(n), || match TcpStream::connect(sa) {
                Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => Ok(()),
                Err(e) => Err(e.raw_os_error().unwrap_or(libc::EIO)),
                Ok(_) => Err(libc::EEXIST), // something listens there: not what we measure
            })
        }
        ("exec", [path, n]) => bench_loop(what, count(n), || {
            let status = std::process::Command::new(path)
                .stdout(std::process::Stdio::null())
                .status()
                .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
            if status.success() { Ok(()) } else { Err(libc::ECHILD) }
        }),
        _ => usage(),
    }
}

/// A counting syslog daemon: reads datagrams as fast as they come, nothing else.
fn cmd_syslog_sink(path: &str, idle_ms: &str) -> ! {
    use std::os::unix::net::UnixDatagram;
    let idle = Duration::from_millis(idle_ms.parse().unwrap_or_else(|_| usage()));
    let _ = std::fs::remove_file(path);
    let sock = UnixDatagram::bind(path).unwrap_or_else(|e| {
        println!("syslog-sink: {e}");
        exit(1)
    });
    let big: libc::c_int = 8 << 20;
    // SAFETY: a valid socket and an int option value of the right size.
    unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&sock),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&big as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as u32,
        );
    }
    println!("listening");
    let _ = io::stdout().flush();
    let mut buf = [0u8; 2048];
    let (mut received, mut events) = (0u64, 0u64);
    let (mut first, mut last) = (None, std::time::Instant::now());
    loop {
        // Wait without a limit for the first datagram, then at most `idle` between two.
        let _ = sock.set_read_timeout(if first.is_some() { Some(idle) } else { None });
        match sock.recv(&mut buf) {
            Ok(n) => {
                last = std::time::Instant::now();
                first.get_or_insert(last);
                received += 1;
                if buf[..n].windows(6).any(|w| w == b"class=") {
                    events += 1;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                println!("syslog-sink: {e}");
                break;
            }
        }
    }
    let span = first.map_or(0, |f| last.duration_since(f).as_micros());
    println!("received={received} events={events} span_us={span}");
    let _ = std::fs::remove_file(path);
    exit(0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a.as_slice() {
        ["open", path] => cmd_open(path),
        ["exec", path, ..] => cmd_exec(path, &args[2..]),
        ["connect", rest @ ..] => cmd_connect(rest),
        ["udp-send", rest @ ..] => net::cmd_udp_send(rest),
        ["udp-sendmmsg", addr, port, at] => net::cmd_udp_sendmmsg(addr, port, at),
        ["tfo", addr, port] => net::cmd_tfo(addr, port),
        ["race-connect", addr, denied, allowed, tries] => net::cmd_race_connect(addr, denied, allowed, tries),
        ["connect-untouched", addr, port] => untouched::cmd_connect(addr, port),
        ["send-untouched", how, addr, port] => untouched::cmd_send(how, addr, port),
        ["open-untouched", path] => untouched::cmd_open(path),
        ["clone-files-open", path] => shared::cmd_clone_files_open(path),
        ["clone-vm-exec", path] => shared::cmd_clone_vm_exec(path, false),
        ["vfork-map-exec", path] => shared::cmd_clone_vm_exec(path, true),
        ["uring-open", path] => uring::cmd_open(path),
        ["uring-connect", addr, port] => uring::cmd_connect(addr, port),
        ["uring-sendmsg", addr, port] => uring::cmd_sendmsg(addr, port),
        ["mmap-exec", path] => mem::cmd_mmap_exec(path),
        ["mprotect-exec", path] => mem::cmd_mprotect_exec(path),
        ["pkey-mprotect-exec", path] => mem::cmd_pkey_mprotect_exec(path),
        ["anon-exec"] => mem::cmd_anon_exec(),
        ["shm-attach", how @ ("EXEC" | "DATA")] => mem::cmd_shm_attach(*how == "EXEC"),
        ["patch-interp", src, dst, interp] => mem::cmd_patch_interp(src, dst, interp),
        ["wx-mprotect"] => mem::cmd_wx_mprotect(),
        ["memfd-exec", path, ..] => mem::cmd_memfd_exec(path, &args[2..]),
        ["open-by-handle", path] => files::cmd_open_by_handle(path),
        ["ignore-term", "open", path] => files::cmd_ignore_term_open(path),
        ["rename-replace", target, n] => files::cmd_rename_replace(target, n),
        ["rename-replace-wait", target, ms] => files::cmd_rename_replace_wait(target, ms),
        ["lose-name-wait", how, target, ms] => files::cmd_lose_name_wait(how, target, ms),
        ["opath-unlink-reopen", target, ms] => files::cmd_opath_unlink_reopen(target, ms),
        ["opath-in-flight-reopen", target, ms] => files::cmd_opath_in_flight_reopen(target, ms),
        ["listen", addr, port] => cmd_listen(addr, port),
        ["stopped-parent", agent, ..] => parent::cmd_stopped_parent(agent, &args[2..]),
        ["as-nobody", ..] => parent::cmd_as_nobody(&args[1..]),
        ["bpf-count"] => cmd_bpf_count(),
        ["sleep-exit", code] => cmd_sleep_exit(code, None),
        ["sleep-exit", code, _] => cmd_sleep_exit(code, args.get(2)),
        ["bench", what, rest @ ..] => cmd_bench(what, rest),
        ["open-loop", path, n] => flood::cmd_open_loop(path, n),
        ["kill-loop", path, n] => flood::cmd_kill_loop(path, n),
        ["rss", pid] => flood::cmd_rss(pid),
        ["syslog-sink", path, idle_ms] => cmd_syslog_sink(path, idle_ms),
        _ => usage(),
    }
}
