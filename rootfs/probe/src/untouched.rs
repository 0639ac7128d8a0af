//! Arguments in a page this process never touched: a fresh shared mapping of a memfd,
//! filled through the file (pwrite), never through the mapping. The page is in the
//! page cache but not in this process's page tables, so a program at a syscall
//! tracepoint cannot read it (no page faults there), while the kernel's own copy of the
//! argument faults it in and reads it.

use crate::net::payload_iov;
use crate::{cstr, errno, finish, parse_addr, raw_sockaddr, socket, usage};
use std::mem::{size_of, zeroed};

/// A shared mapping of one fresh memfd page, and the memfd to fill it through.
struct Untouched {
    base: *mut u8,
    mfd: i32,
}

impl Untouched {
    fn new() -> Result<Untouched, i32> {
        let mfd = unsafe { libc::memfd_create(c"probe-untouched".as_ptr(), libc::MFD_CLOEXEC) };
        if mfd < 0 {
            return Err(errno());
        }
        if unsafe { libc::ftruncate(mfd, 4096) } < 0 {
            return Err(errno());
        }
        let p = unsafe { libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, mfd, 0) };
        if p == libc::MAP_FAILED {
            return Err(errno());
        }
        Ok(Untouched { base: p as *mut u8, mfd })
    }

    /// Writes `bytes` at `off` through the file; returns where they are in the mapping.
    fn put(&self, off: usize, bytes: &[u8]) -> Result<usize, i32> {
        let r = unsafe { libc::pwrite(self.mfd, bytes.as_ptr() as *const libc::c_void, bytes.len(), off as libc::off_t) };
        if r != bytes.len() as isize {
            return Err(if r < 0 { errno() } else { libc::EIO });
        }
        Ok(self.base as usize + off)
    }
}

fn bytes_of<T>(v: &T) -> &[u8] {
    unsafe { std::slice::from_raw_parts(v as *const T as *const u8, size_of::<T>()) }
}

/// `connect-untouched ADDR PORT`: a blocking TCP connect whose sockaddr lies in an
/// untouched page.
pub fn cmd_connect(addr: &str, port: &str) -> ! {
    let what = format!("connect-untouched {addr} {port}");
    let (fam, st, len) = raw_sockaddr(&parse_addr(addr, port));
    let res = (|| {
        let page = Untouched::new()?;
        let sa = page.put(0, &bytes_of(&st)[..len as usize])?;
        let fd = socket(fam, libc::SOCK_STREAM)?;
        if unsafe { libc::syscall(libc::SYS_connect, fd.0, sa, len) } < 0 {
            return Err(errno());
        }
        Ok(())
    })();
    finish(&what, res)
}

/// `send-untouched sendto|sendmsg|sendmmsg|sendmsg-hdr ADDR PORT`: one UDP datagram
/// from an unconnected socket, its destination in an untouched page (`sendmsg-hdr`:
/// the whole msghdr there too).
pub fn cmd_send(how: &str, addr: &str, port: &str) -> ! {
    let what = format!("send-untouched {how} {addr} {port}");
    let (fam, st, len) = raw_sockaddr(&parse_addr(addr, port));
    let res = (|| {
        let page = Untouched::new()?;
        let sa = page.put(0, &bytes_of(&st)[..len as usize])?;
        let fd = socket(fam, libc::SOCK_DGRAM)?;
        let iov = payload_iov();
        let mut m: libc::msghdr = unsafe { zeroed() };
        m.msg_name = sa as *mut libc::c_void;
        m.msg_namelen = len;
        m.msg_iov = &iov as *const _ as *mut libc::iovec;
        m.msg_iovlen = 1;
        // Raw system calls: musl's sendmsg and sendmmsg copy the header in user space
        // (to clear its padding), which would touch the page.
        let r = match how {
            "sendto" => unsafe { libc::syscall(libc::SYS_sendto, fd.0, iov.iov_base, iov.iov_len, 0, sa, len) },
            "sendmsg" => unsafe { libc::syscall(libc::SYS_sendmsg, fd.0, &m as *const libc::msghdr, 0) },
            "sendmsg-hdr" => {
                let hdr = page.put(256, bytes_of(&m))?;
                unsafe { libc::syscall(libc::SYS_sendmsg, fd.0, hdr, 0) }
            }
            "sendmmsg" => {
                let mut v = [libc::mmsghdr { msg_hdr: m, msg_len: 0 }];
                unsafe { libc::syscall(libc::SYS_sendmmsg, fd.0, v.as_mut_ptr(), 1, 0) }
            }
            _ => usage(),
        };
        if r < 0 {
            return Err(errno());
        }
        Ok(())
    })();
    finish(&what, res)
}

/// `open-untouched PATH`: open(PATH, O_RDONLY) with the path string in an untouched page.
pub fn cmd_open(path: &str) -> ! {
    let what = format!("open-untouched {path}");
    let c = cstr(path);
    let res = (|| {
        let page = Untouched::new()?;
        let p = page.put(0, c.as_bytes_with_nul())?;
        let fd = unsafe { libc::syscall(libc::SYS_openat, libc::AT_FDCWD, p, libc::O_RDONLY | libc::O_CLOEXEC) } as i32;
        if fd < 0 {
            return Err(errno());
        }
        unsafe { libc::close(fd) };
        Ok(())
    })();
    finish(&what, res)
}
