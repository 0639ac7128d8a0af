#!/bin/sh
# The guest test, run by /init as /test/run.sh inside a VM booted by rootfs/vm-test.sh (through rootfs/vm-boot.sh).
# The kernel command line says which tier must act:
#   enforce_expect=TIER     lsm or fmodret: denied operations fail with EPERM, posture
#                           ENFORCE; kprobe, tracepoint or path: the offender is
#                           killed, posture ENFORCE_SIGNAL
#   enforce_tiers=A,B       the config's `tiers =` (default: the whole ladder)
#   enforce_blockers=B1,B2  blockers --check must name (each a prefix of one)
#   enforce_btf=PATH        the config's `btf =` (a kernel without BTF)
#   enforce_posture=P       the posture --check and the agent must report, when the
#                           tier's default is not it (AUDIT_ONLY: a class is not
#                           fully served; REFUSED with enforce_expect=none)
#   enforce_exec_tier=T     the exec class's tier in reports, when not the expected
#                           tier (none: one of its hooks is not served)
#   enforce_expect=none     nothing can be served: only --check runs, must never say
#                           ENFORCE, must name the blockers and leave nothing loaded
#   enforce_limits=L1,L2    limits the README states for this kernel, asserted as
#                           limits: mprotect (the tier has no mprotect program here:
#                           5.10's tracepoint tier, no bpf_find_vma), interp (nor the
#                           program checking a new program's ELF interpreter)
#   enforce_jit=yes|no      --check must say the expected tier's programs are (not)
#                           JIT-compiled (TIER.jit)
#   enforce_cases=core      only the main enforce session (its denials, controls and
#                           the nothing-left check); the routes, signal=TERM,
#                           trusted-exec and audit sessions are not run, and the guest
#                           says so
#   enforce_overlay=1       load /lib/modules/overlay.ko and run the overlay cases (an
#                           unprivileged user's overlay of the rules' directories)
#   enforce_fs=1            load btrfs, vfat and loop from /lib/modules, mount
#                           /lib/btrfs.img (a subvolume made on the host) and a FAT image
#                           made here, and run the filesystem cases
#   enforce_hide_btf=1      hide the kernel's BTF (/sys/kernel/btf) from libbpf, as on a
#                           kernel built without it: only the path tier can load;
#                           with enforce_btf, the kernel's BTF is first copied there
#                           (the kprobe and tracepoint tiers' build for kernels
#                           without BTF, relocated against that file)
# Exits 0 only when every case passed; /init turns that into the result marker.
set -u
PATH=/bin:/sbin:/usr/bin:/usr/sbin
. /test/lib.sh
expect=$(param enforce_expect)
tiers=$(param enforce_tiers)
blockers=$(param enforce_blockers)
btf=$(param enforce_btf)
cases=$(param enforce_cases)
limits=$(param enforce_limits)
# has_limit NAME: whether enforce_limits names NAME.
has_limit() { case ",$limits," in *",$1,"*) return 0 ;; esac; return 1; }
if [ "$(param enforce_hide_btf)" = 1 ]; then
	[ -n "$btf" ] && cp /sys/kernel/btf/vmlinux "$btf" && echo "guest: the kernel's BTF copied to $btf"
	mount -t tmpfs -o ro none /sys/kernel/btf && echo "guest: /sys/kernel/btf hidden: libbpf finds no kernel BTF"
fi
case $expect in
lsm | fmodret) sync=yes want_posture=ENFORCE want_rc=0 ;;
kprobe | tracepoint | path) sync=no want_posture=ENFORCE_SIGNAL want_rc=10 ;;
none) sync=no want_posture=REFUSED want_rc=12 ;;
*) echo "guest: enforce_expect must name a tier or none, got '$expect'"; exit 1 ;;
esac
want_posture=$(param enforce_posture)
want_posture=${want_posture:-$(case $expect in lsm | fmodret) echo ENFORCE ;; none) echo REFUSED ;; *) echo ENFORCE_SIGNAL ;; esac)}
case $want_posture in
ENFORCE) want_rc=0 ;; ENFORCE_SIGNAL) want_rc=10 ;; AUDIT_ONLY) want_rc=11 ;; REFUSED) want_rc=12 ;;
*) echo "guest: unknown enforce_posture '$want_posture'"; exit 1 ;;
esac
exec_tier=$(param enforce_exec_tier)
exec_tier=${exec_tier:-$expect}
# The tracepoint and path tiers have no kernel program for rules following a rename:
# the agent does it (the path tier needs none: its rules are names).
case $expect in tracepoint | path) follow=agent ;; *) follow=$expect ;; esac
echo "guest: expecting the $expect tier (tiers=${tiers:-all}); lsm=$(cat /sys/kernel/security/lsm)"

if [ "$(param enforce_overlay)" = 1 ]; then
	insmod /lib/modules/overlay.ko && echo "guest: overlayfs loaded" || echo "guest: insmod overlay.ko failed"
fi
# Filesystems before the agent starts: the programs find btrfs's types in its module's BTF.
if [ "$(param enforce_fs)" = 1 ]; then
	for m in xor raid6_pq crc32c_generic libcrc32c zstd_compress btrfs loop fat vfat nls_cp437 nls_ascii nls_utf8 \
		squashfs erofs crc16 mbcache jbd2 ext4; do
		insmod /lib/modules/$m.ko || echo "guest: insmod $m.ko failed"
	done
	mkdir -p /mnt/btrfs && mount -o loop /lib/btrfs.img /mnt/btrfs && echo "guest: btrfs mounted" || echo "guest: no btrfs"
	dd if=/dev/zero of=/tmp/fat.img bs=1M count=4 2>/dev/null && mkdosfs /tmp/fat.img >/dev/null &&
		mkdir -p /mnt/fat && mount -o loop -t vfat /tmp/fat.img /mnt/fat &&
		echo secret >/mnt/fat/secret && echo other >/mnt/fat/other && cp /bin/probe /mnt/fat/denied-tool &&
		echo "guest: vfat mounted" || echo "guest: no vfat"
	for fs in sq erofs ext4; do
		mkdir -p /mnt/$fs && mount -o loop,ro /lib/$fs.img /mnt/$fs && echo "guest: $fs mounted" || echo "guest: no $fs"
	done
	# OpenWrt's root: an overlay of the squashfs and a writable upper layer.
	mkdir -p /tmp/ow/u /tmp/ow/w /mnt/ow && mount -t overlay overlay -o lowerdir=/mnt/sq,upperdir=/tmp/ow/u,workdir=/tmp/ow/w /mnt/ow &&
		cp /bin/probe /mnt/ow/written-tool && echo "guest: squashfs overlay mounted" || echo "guest: no squashfs overlay"
fi

# Objects to deny and their neighbours.
mkdir -p /data /mnt/bind /opt/denied
echo secret >/data/secret
mkdir -p /data/sub && echo secret >/data/sub/secret
echo other >/data/other
ln /data/secret /data/hardlink
ln -s /data/secret /data/symlink
ln -s /data /linkdir
mount --bind /data /mnt/bind
cp /bin/probe /opt/denied/tool
echo shadow >/data/shadow
echo unlinked >/data/unlinked
echo renamed >/data/renamed
echo handle >/tmp/handle-secret # tmpfs: open_by_handle_at needs a filesystem that exports handles
printf '#!/bin/sh\necho script-ran\n' >/opt/denied/script.sh
printf '#!/bin/sh\necho script-ran\n' >/usr/bin/allowed-script.sh
chmod +x /opt/denied/script.sh /usr/bin/allowed-script.sh
# The loader route: a dynamic program (from the image's glibc fixture) run by ld.so.
for l in /lib64/ld-linux-x86-64.so.2 /lib/ld-linux-aarch64.so.1 /lib/ld-linux-armhf.so.3; do [ -x $l ] && loader=$l; done
cp /usr/bin/dynecho /opt/denied/dynecho
# A program whose ELF interpreter is a denied copy of the loader, and its control.
cp $loader /opt/denied/ld
cp $loader /usr/lib/ld-copy
probe patch-interp /usr/bin/dynecho /usr/bin/interp-denied /opt/denied/ld
probe patch-interp /usr/bin/dynecho /usr/bin/interp-allowed /usr/lib/ld-copy
# Trusted exec: the initramfs root is the trusted filesystem; a tmpfs on /untrusted
# is where an attacker would write, and a bind mount puts it under the trusted root.
mkdir -p /untrusted /opt/bound
mount -t tmpfs -o mode=0755 tmpfs /untrusted
cp /bin/probe /untrusted/static-tool
cp /usr/bin/dynecho /untrusted/dyntool
cp /usr/lib/libhello.so /untrusted/libhello.so
printf '#!/bin/sh\necho script-ran\n' >/untrusted/script.sh
chmod +x /untrusted/script.sh
mount --bind /untrusted /opt/bound

# Listeners on loopback addresses.
ip -6 addr add fd00::2/128 dev lo
ip -6 addr add fd00::3/128 dev lo
sleep 1 # IPv6 DAD
for l in "127.0.0.1 8080" "127.0.0.2 8080" "127.0.0.2 8081" "127.0.0.3 9000" \
	"fd00::2 8080" "fd00::2 8081" "fd00::3 9000" "::1 8080"; do
	probe listen $l &
done
sleep 0.5

write_config() { # MODE FALLBACK [EXTRA LINE]
	cat >/etc/enforce.conf <<EOF
# guest test config
mode = $1
fallback = $2
${tiers:+tiers = $tiers}
${btf:+btf = $btf}
deny_open = /data/secret
deny_exec = /opt/denied/tool
deny_connect = 127.0.0.2/32:8080
deny_connect = 127.0.0.3/32
deny_connect = [fd00::2/128]:8080
deny_connect = fd00::3/128
syslog_ident = enforce
syslog_facility = auth
deny_open = /data/shadow
deny_open = /tmp/handle-secret
deny_exec = /opt/denied/dynecho
deny_exec = /opt/denied/script.sh
${3:-}
deny_open = /data/unlinked
deny_open = /data/renamed
deny_exec = /opt/denied/ld
deny_open = /data/sub/secret
EOF
}

# The operations, each with what enforce mode must do to it.
operations() { # WANT_FOR_DENIED
	d=$1
	run_case "open by path" "$d" probe open /data/secret
	if [ "$expect" = path ]; then
		# The path tier matches names: the file's other names are its documented limits.
		limit "open through a hardlink made before" probe open /data/hardlink
		limit "open through a symlink made before" probe open /data/symlink
		limit "open through a bind mount" probe open /mnt/bind/secret
		limit "open through /proc/self/fd/N of a descriptor opened by another name" \
			sh -c 'exec 3</data/hardlink && exec probe open /proc/self/fd/3'
		limit "open through a symlinked directory" probe open /linkdir/secret
		run_case "open by a path with '..' (taken by its last component)" "$d" probe open /data/../data/secret
	else
		run_case "open through a hardlink" "$d" probe open /data/hardlink
		run_case "open through a symlink" "$d" probe open /data/symlink
		run_case "open through a bind mount" "$d" probe open /mnt/bind/secret
	fi
	run_case "open by relative path" "$d" sh -c 'cd /data && exec probe open secret'
	run_case "open a neighbour file" ok probe open /data/other
	# The denied binary would print "open /data/other: ok" if it ran.
	run_case "exec the denied binary" "$d" probe exec /opt/denied/tool open /data/other
	run_case "exec another binary" ok probe exec /bin/probe sleep-exit 0
	run_case "connect 127.0.0.2:8080 (denied port)" "$d" probe connect 127.0.0.2 8080
	run_case "connect 127.0.0.2:8081 (other port)" ok probe connect 127.0.0.2 8081
	run_case "connect 127.0.0.1:8080 (other address)" ok probe connect 127.0.0.1 8080
	run_case "connect 127.0.0.3:9000 (denied address, any port)" "$d" probe connect 127.0.0.3 9000
	run_case "connect [fd00::2]:8080 (denied)" "$d" probe connect fd00::2 8080
	run_case "connect [fd00::2]:8081 (other port)" ok probe connect fd00::2 8081
	run_case "connect [fd00::3]:9000 (denied address)" "$d" probe connect fd00::3 9000
	run_case "connect [::1]:8080 (other address)" ok probe connect ::1 8080
	run_case "connect [::ffff:127.0.0.2]:8080 (v4-mapped, denied)" "$d" probe connect ::ffff:127.0.0.2 8080
	run_case "connect [::ffff:127.0.0.2]:8081 (v4-mapped, other port)" ok probe connect ::ffff:127.0.0.2 8081
}
DENIALS_OPEN=5 DENIALS_EXEC=1 DENIALS_CONNECT=5
[ "$expect" = path ] && DENIALS_OPEN=3

# limit NAME CMD...: an operation this tier cannot see, documented in the README's
# limits table: it must still succeed, so the table stays true.
limit() {
	name=$1
	shift
	out=$("$@" 2>&1)
	rc=$?
	[ $rc -eq 0 ] && ok "documented limit of the $expect tier: $name (not denied)" ||
		not_ok "$name: the README says the $expect tier does not see it, but rc=$rc: $out"
}

# run_program NAME WANT MARKER CMD...: a program whose output would contain MARKER
# had it run; denied = it did not run (a failure, or killed in a signal tier).
run_program() {
	name=$1 want=$2 marker=$3
	shift 3
	out=$("$@" 2>&1)
	rc=$?
	case $want in
	ok) case "$out" in *"$marker"*) ok "$name" ;; *) not_ok "$name: wanted '$marker', rc=$rc: $out" ;; esac ;;
	denied)
		case "$out" in *"$marker"*)
			not_ok "$name: it ran: $out"
			return
			;;
		esac
		if [ $sync = yes ]; then
			[ $rc -ne 0 ] && [ $rc -ne 137 ] && ok "$name (failed: rc=$rc $(echo "$out" | tail -n 1))" ||
				not_ok "$name: wanted a failure, rc=$rc: $out"
		else
			[ $rc -eq 137 ] && ok "$name (killed)" || not_ok "$name: wanted SIGKILL, rc=$rc: $out"
		fi
		;;
	esac
}

# open32 prints "errno N": EPERM is errno 1.
run_open32() {
	name=$1
	shift
	out=$("$@" 2>&1)
	rc=$?
	if [ $sync = yes ]; then
		case "$out" in *": errno 1") [ $rc -eq 1 ] && ok "$name" && return ;; esac
		not_ok "$name: wanted errno 1, rc=$rc: $out"
	else
		[ $rc -eq 137 ] && ok "$name (killed)" || not_ok "$name: wanted SIGKILL, rc=$rc: $out"
	fi
}

# pkey_case CHECK ARGS...: CHECK ARGS, where the kernel has pkey_mprotect(2); where it
# answers ENOSYS for everyone (arm64 before 6.12, 32-bit ARM), there is no such route.
pkey_case() {
	if probe pkey-mprotect-exec /bin/probe | grep -q ENOSYS; then
		ok "no pkey_mprotect on this kernel (ENOSYS): no route through it"
	else
		"$@"
	fi
}

# run_case_rc NAME RC TEXT CMD...: exit code RC and output containing TEXT.
run_case_rc() {
	name=$1 want=$2 text=$3
	shift 3
	out=$("$@" 2>&1)
	rc=$?
	case "$out" in *"$text"*) [ $rc -eq "$want" ] && ok "$name" && return ;; esac
	not_ok "$name: wanted rc=$want and '$text', rc=$rc: $out"
}

# The routes around a rule that the synchronous tiers and kprobe cover (the
# tracepoint tier's limits are asserted as such). Each has an allowed control.
# inotify_watches PID: the directory watches PID holds (every inotify descriptor's).
inotify_watches() {
	cat /proc/$1/fdinfo/* 2>/dev/null | grep -c '^inotify wd:'
}

routes() {
	d=denied
	# Sends with a destination: UDP sendto and sendmsg, TCP Fast Open.
	run_case "udp sendto 127.0.0.2:8080 (denied)" $d probe udp-send sendto 127.0.0.2 8080
	run_case "udp sendmsg 127.0.0.2:8080 (denied)" $d probe udp-send sendmsg 127.0.0.2 8080
	run_case "udp sendto 127.0.0.2:8081 (other port)" ok probe udp-send sendto 127.0.0.2 8081
	run_case "udp sendto [fd00::2]:8080 (denied)" $d probe udp-send sendto fd00::2 8080
	run_case "udp sendmsg [fd00::3]:53 (denied address)" $d probe udp-send sendmsg fd00::3 53
	run_case "udp sendmsg [fd00::2]:8081 (other port)" ok probe udp-send sendmsg fd00::2 8081
	run_case "udp sendto [::ffff:127.0.0.2]:8080 (v4-mapped, denied)" $d probe udp-send sendto ::ffff:127.0.0.2 8080
	run_case "udp sendmsg [::ffff:127.0.0.3]:53 (v4-mapped, denied address)" $d probe udp-send sendmsg ::ffff:127.0.0.3 53
	run_case "udp sendto [::ffff:127.0.0.1]:8080 (v4-mapped, allowed)" ok probe udp-send sendto ::ffff:127.0.0.1 8080
	# sendmmsg: every message is checked, the first and the 41st (5.10's tracepoint
	# tier walks them without bpf_loop). A synchronous tier refuses the 41st message
	# after 40 went: the call returns 40 (ECANCELED here).
	run_case "udp sendmmsg, 1st message to 127.0.0.2:8080 (denied)" $d probe udp-sendmmsg 127.0.0.2 8080 0
	if [ $sync = yes ]; then
		run_case_rc "udp sendmmsg, 41st message to 127.0.0.2:8080 (denied, 40 sent)" 1 ": ECANCELED" probe udp-sendmmsg 127.0.0.2 8080 40
	else
		run_case "udp sendmmsg, 41st message to 127.0.0.2:8080 (denied)" $d probe udp-sendmmsg 127.0.0.2 8080 40
	fi
	run_case "udp sendmmsg, 41 messages to 127.0.0.2:8082 and 8081 (other ports)" ok probe udp-sendmmsg 127.0.0.2 8081 40
	run_case "tcp fast open to 127.0.0.2:8080 (denied)" $d probe tfo 127.0.0.2 8080
	run_case "tcp fast open to 127.0.0.2:8081 (other port)" ok probe tfo 127.0.0.2 8081
	# IPv6 destinations of length 24 (no sin6_scope_id), which the kernel accepts.
	run_case "connect [fd00::2]:8080, addrlen 24 (denied)" $d probe connect fd00::2 8080 24
	run_case "connect [::ffff:127.0.0.2]:8080, addrlen 24 (denied)" $d probe connect ::ffff:127.0.0.2 8080 24
	run_case "connect [fd00::2]:8081, addrlen 24 (other port)" ok probe connect fd00::2 8081 24
	run_case "udp sendto [fd00::2]:8080, addrlen 24 (denied)" $d probe udp-send sendto fd00::2 8080 24
	# A thread flips the port while connect runs: never connected to the denied one.
	if [ $sync = yes ]; then
		run_case_rc "racing connect never reaches the denied port" 0 "ok (" probe race-connect 127.0.0.2 8080 8081 300
	elif [ "$expect" = path ]; then
		# Only the caller's copy at entry is checked: a thread may change it before
		# the kernel copies it (a documented limit). Killed when the check saw the
		# denied port, or the race got through (exit 3); both are the tier's truth.
		out=$(probe race-connect 127.0.0.2 8080 8081 300 2>&1)
		rc=$?
		case $rc in
		137) ok "racing connect: killed when the entry check saw the denied port" ;;
		3) ok "documented limit of the path tier: a racing connect reached the denied port ($out)" ;;
		*) not_ok "racing connect: rc=$rc: $out" ;;
		esac
	else
		run_case_rc "racing connect is killed before it uses the denied port" 137 "" probe race-connect 127.0.0.2 8080 8081 300
	fi
	# A destination or path in a page the caller never touched (a fresh shared memfd
	# mapping, filled through the file): the hooks of lsm, fmodret and kprobe read the
	# kernel's copy; a tracepoint program cannot read it (no page faults there).
	run_case "connect, sockaddr in an untouched page (denied)" $d probe connect-untouched 127.0.0.2 8080
	for how in sendto sendmsg sendmmsg sendmsg-hdr; do
		run_case "udp $how, destination in an untouched page (denied)" $d probe send-untouched $how 127.0.0.2 8080
	done
	case $expect in
	lsm | fmodret | kprobe)
		run_case "connect, sockaddr in an untouched page (other port)" ok probe connect-untouched 127.0.0.2 8081
		run_case "udp sendto, destination in an untouched page (other port)" ok probe send-untouched sendto 127.0.0.2 8081
		;;
	tracepoint)
		# connect is judged at exit by the socket's peer; a send leaves no such state.
		run_case "connect, sockaddr in an untouched page (other port)" ok probe connect-untouched 127.0.0.2 8081
		run_case_rc "udp sendto, destination in an untouched page: killed whatever it names" 137 "" \
			probe send-untouched sendto 127.0.0.2 8081
		;;
	path)
		run_case_rc "connect, sockaddr in an untouched page: killed whatever it names" 137 "" \
			probe connect-untouched 127.0.0.2 8081
		run_case_rc "udp sendto, destination in an untouched page: killed whatever it names" 137 "" \
			probe send-untouched sendto 127.0.0.2 8081
		;;
	esac
	if [ "$expect" = path ]; then
		limit "open of the denied file, path in an untouched page (only counted)" probe open-untouched /data/secret
	else
		run_case "open of the denied file, path in an untouched page" $d probe open-untouched /data/secret
	fi
	run_case "open of another file, path in an untouched page" ok probe open-untouched /data/other
	# A clone(CLONE_FILES) child (another process) opens the denied file; its parent then
	# looks in the table they share for the descriptor (exit 3 when it reads the file).
	case $expect in
	lsm | fmodret) run_case_rc "a CLONE_FILES child's denied open leaves its parent no descriptor" 0 "no descriptor" \
		probe clone-files-open /data/secret ;;
	kprobe) run_case_rc "documented limit of the kprobe tier: the parent of a killed CLONE_FILES child reads its descriptor" 3 \
		"the parent read" probe clone-files-open /data/secret ;;
	tracepoint | path) run_case_rc "the maker of a CLONE_FILES child is killed, and no child is made" 137 "" \
		probe clone-files-open /data/secret ;;
	esac
	# Exec around bprm_check: the loader, mmap and mprotect of a denied file, scripts.
	if [ "$expect" = path ]; then
		# A file behind a descriptor has no name the path tier can read.
		limit "ld.so runs a denied dynamic program (it maps it, exec names ld.so)" $loader /opt/denied/dynecho dyn-ran
		limit "PROT_EXEC mapping of the denied binary" probe mmap-exec /opt/denied/tool
		limit "mprotect to exec of the denied binary" probe mprotect-exec /opt/denied/tool
		pkey_case limit "pkey_mprotect to exec of the denied binary" probe pkey-mprotect-exec /opt/denied/tool
		limit "a program whose ELF interpreter is denied (the kernel maps it, exec names the program)" /usr/bin/interp-denied dyn-ran
	else
		run_program "ld.so runs a denied dynamic program" $d dyn-ran $loader /opt/denied/dynecho dyn-ran
		if has_limit interp; then
			limit "a program whose ELF interpreter is denied (no bpf_find_vma)" /usr/bin/interp-denied dyn-ran
		else
			run_program "a program whose ELF interpreter is denied" $d dyn-ran /usr/bin/interp-denied dyn-ran
		fi
		run_case "PROT_EXEC mapping of the denied binary" $d probe mmap-exec /opt/denied/tool
		if has_limit mprotect; then
			limit "mprotect to exec of the denied binary (no mprotect program)" probe mprotect-exec /opt/denied/tool
			pkey_case limit "pkey_mprotect to exec of the denied binary (no mprotect program)" probe pkey-mprotect-exec /opt/denied/tool
		else
			run_case "mprotect to exec of the denied binary" $d probe mprotect-exec /opt/denied/tool
			pkey_case run_case "pkey_mprotect to exec of the denied binary" $d probe pkey-mprotect-exec /opt/denied/tool
		fi
	fi
	run_program "ld.so runs an allowed dynamic program" ok dyn-ran $loader /usr/bin/dynecho dyn-ran
	run_program "a program whose ELF interpreter is an allowed copy of the loader" ok dyn-ran /usr/bin/interp-allowed dyn-ran
	run_case "PROT_EXEC mapping of another binary" ok probe mmap-exec /bin/probe
	run_case "mprotect to exec of another binary" ok probe mprotect-exec /bin/probe
	if [ "$expect" = tracepoint ]; then
		limit "a denied script (sched_process_exec sees the interpreter)" /opt/denied/script.sh
	else
		run_program "a denied script" $d script-ran /opt/denied/script.sh
	fi
	run_program "an allowed script" ok script-ran /usr/bin/allowed-script.sh
	# Opens around the syscalls: by handle, 32-bit, io_uring.
	if [ "$expect" = path ]; then
		limit "open_by_handle_at of the denied file (no name)" probe open-by-handle /tmp/handle-secret
	else
		run_case "open_by_handle_at of the denied file" $d probe open-by-handle /tmp/handle-secret
	fi
	run_case "open_by_handle_at of another file" ok probe open-by-handle /tmp/check.txt
	run_case "32-bit open of another file" ok open32 /data/other
	run_case "io_uring open of another file" ok probe uring-open /data/other
	run_case "io_uring connect to 127.0.0.2:8081 (other port)" ok probe uring-connect 127.0.0.2 8081
	run_case "io_uring sendmsg to 127.0.0.2:8081 (other port)" ok probe uring-sendmsg 127.0.0.2 8081
	if [ "$expect" = tracepoint ] || [ "$expect" = path ]; then
		limit "a 32-bit program's open (compat syscalls have no per-syscall tracepoints)" open32 /data/secret
		limit "io_uring open" probe uring-open /data/secret
		limit "io_uring connect" probe uring-connect 127.0.0.2 8080
		limit "io_uring sendmsg" probe uring-sendmsg 127.0.0.2 8080
	else
		run_open32 "32-bit open of the denied file" open32 /data/secret
		run_case "io_uring open of the denied file" $d probe uring-open /data/secret
		run_case "io_uring connect to 127.0.0.2:8080 (denied)" $d probe uring-connect 127.0.0.2 8080
		run_case "io_uring sendmsg to 127.0.0.2:8080 (denied)" $d probe uring-sendmsg 127.0.0.2 8080
	fi
	# passwd-style replacement: write a new file, rename it over the denied one and
	# open it at once, in a tight loop.
	case $expect in
	lsm | fmodret) run_case_rc "rename over the denied file, then open, 50 times" 1 "EPERM x 50" probe rename-replace /data/shadow 50 ;;
	kprobe | path) run_case_rc "rename over the denied file, then open at once: killed" 137 "" probe rename-replace /data/shadow 50 ;;
	tracepoint) run_case_rc "rename over the denied file: killed once the agent re-resolves (a window)" 137 "" \
		probe rename-replace-wait /data/shadow 5000 ;;
	esac
	run_case "a neighbour of the replaced file" ok probe open /data/other
	if [ "$expect" = path ]; then
		# New names for a denied file: the maker is killed, after the syscall ran.
		run_case "a hardlink to the denied file: its maker is killed" $d ln /data/secret /data/newlink
		limit "the hardlink was made before the kill: another process opens it" probe open /data/newlink
		run_case "a symlink to the denied file: its maker is killed" $d ln -s /data/secret /tmp/newsym
		run_case "a relative symlink to the denied file: its maker is killed" $d ln -s secret /data/relsym
		run_case "renaming the denied file away: killed" $d mv /data/secret /data/moved
		limit "the rename ran before the kill: the file opens under its new name" probe open /data/moved
		mv /data/moved /data/secret && rm -f /data/newlink /tmp/newsym /data/relsym
		run_case "renaming a file onto the denied path is left alone (the rule is the path)" ok \
			sh -c 'echo new >/data/secret.new && mv /data/secret.new /data/secret'
		run_case "the file renamed onto the denied path is denied at once" $d probe open /data/secret
	fi
	# A denied file loses its name (unlink, or renamed away) and a new file takes the
	# path: no hook sees a replacement, the agent re-resolves the path. Where the
	# kernel's follow hook runs, it reports the lost name and the agent watches the
	# directory only until then (a watch slows every open on the filesystem).
	watches=$(inotify_watches $agent)
	case $follow in
	agent) [ "$watches" -gt 0 ] && ok "the agent watches the rules' directories all the time ($watches watches)" ||
		not_ok "no directory watch in the $expect tier, whose agent re-resolves paths itself" ;;
	*) [ "$watches" -eq 0 ] && ok "no directory watch while no denied file lost a name" ||
		not_ok "$watches directory watch(es) before any denied file lost a name" ;;
	esac
	if [ $sync = yes ]; then want=1 text="denied after"; else want=137 text=""; fi
	# (The path tier kills the maker of a new name for a denied file: no rename away.)
	for how in unlink rename; do
		[ $how = rename ] && [ "$expect" = path ] && continue
		case $how in unlink) file=/data/unlinked ;; rename) file=/data/renamed ;; esac
		out=$(probe lose-name-wait $how $file 5000 2>&1)
		rc=$?
		# An agent quick enough denies the new inode before its creator's open returns
		# (the directory event comes as the inode is made): no window at all.
		case "$out" in *"$text"* | *"create $file: EPERM") [ $rc -eq $want ] ;; *) false ;; esac &&
			ok "a denied file lost its name ($how), a new one made at its path: denied once the agent re-resolves (a window): ${out:-killed}" ||
			not_ok "a denied file lost its name ($how), a new one at its path: wanted rc=$want and '$text', rc=$rc: $out"
	done
	rm -f /data/renamed.away
	if [ "$follow" != agent ]; then
		i=0
		while [ "$(inotify_watches $agent)" -gt 0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
		watches=$(inotify_watches $agent)
		[ "$watches" -eq 0 ] && ok "the watches went once the new files were denied" ||
			not_ok "$watches directory watch(es) left after the new files were denied"
		run_case "an allowed file unlinked: no watch" ok sh -c 'echo x >/data/plain && rm /data/plain'
		sleep 0.5
		watches=$(inotify_watches $agent)
		[ "$watches" -eq 0 ] && ok "no watch after an allowed file was unlinked" ||
			not_ok "$watches directory watch(es) after an allowed file was unlinked"
	fi
	# Renames with no file at the target (a new name): nothing to follow.
	run_case "a rename to a new name and back" ok sh -c 'mv /data/other /data/other.new && mv /data/other.new /data/other'
	# The rule's directory renamed away, another made in its place with a new file at
	# the rule's path: the rule stays with its file (README: limits). In a shell of its
	# own: the path tier kills the creator of a denied name (after the file is made).
	sh -c 'mv /data/sub /data/sub.moved && mkdir /data/sub && echo new >/data/sub/secret' 2>/dev/null
	if [ "$expect" = path ]; then
		limit "the denied file under its renamed directory (another name)" probe open /data/sub.moved/secret
		run_case "a new file at the rule's path after its directory was renamed (the rule is the name)" $d probe open /data/sub/secret
	else
		run_case "the denied file under its renamed directory" $d probe open /data/sub.moved/secret
		limit "a new file at the rule's path after its directory was renamed (until a reload)" probe open /data/sub/secret
	fi
	rm -rf /data/sub.moved
	# An overlay of the rules' directories, mounted by nobody in a user namespace of
	# its own: the files through it are the same real files, denied; a neighbour is not.
	if [ "$(param enforce_overlay)" = 1 ]; then
		mkdir -p /tmp/ovl-own && chown 65534:65534 /tmp/ovl-own
		for lower in /data /opt/denied; do
			probe as-nobody unshare -Urm sh -c "cd /tmp/ovl-own && mkdir -p u$lower w$lower m$lower &&
				mount -t overlay overlay -o lowerdir=$lower,upperdir=u$lower,workdir=w$lower m$lower" ||
				not_ok "as nobody: no overlay of $lower in a user namespace"
		done
		# (Its shell's stderr is dropped: busybox sh may say "Killed" for the probe.)
		ovl() { probe as-nobody unshare -Urm sh -c "cd /tmp/ovl-own && for l in data opt/denied; do
			mount -t overlay overlay -o lowerdir=/\$l,upperdir=u/\$l,workdir=w/\$l m/\$l || exit 99; done && exec $*" 2>/dev/null; }
		run_case "as nobody, open through its own overlay of /data" $d ovl probe open m/data/secret
		run_case "as nobody, exec through its own overlay of /opt/denied" $d ovl probe exec m/opt/denied/tool open /data/other
		run_case "as nobody, mmap-exec through its own overlay of /opt/denied" $d ovl probe mmap-exec m/opt/denied/tool
		run_case "as nobody, open a neighbour through its own overlay" ok ovl probe open m/data/other
		# A copy-up (touch) of the denied file into the attacker's upper layer, then an
		# open: nobody cannot copy up a file it does not own (the copy keeps the owner,
		# who has no uid in its namespace), so the open still reaches the denied file.
		copy_up_open() { probe as-nobody unshare -Urm sh -c "cd /tmp/ovl-own && mkdir -p cu cw cm &&
			mount -t overlay overlay -o lowerdir=/data,upperdir=cu,workdir=cw cm && { (touch cm/secret); exec probe open cm/secret; }" 2>/dev/null; }
		run_case "as nobody, a copy-up of root's denied file through its own overlay is refused; the open is denied" $d copy_up_open
	fi
	# Anyone can run the agent's binary: a child of a process running it (stopped
	# under ptrace, as nobody) is acted on like any other process.
	for op in "open /data/secret" "exec /opt/denied/tool open /data/other" "connect 127.0.0.2 8080"; do
		# shellcheck disable=SC2086
		run_case_rc "as nobody, a child of a stopped /bin/enforce: ${op%% *} denied" 0 "ok (" probe stopped-parent /bin/enforce $op
	done
}

baseline=$(probe bpf-count)
echo "guest: before the agent: $baseline"

# --check: the posture this kernel really has, and nothing left behind. First with
# the paths the old canary used taken by someone else and /run read-only: the
# canary must not depend on any path a local user can occupy.
i=100
while [ $i -lt 400 ]; do
	mkdir -p /run/enforce-canary.$i /tmp/enforce-canary.$i
	i=$((i + 1))
done
mount -o remount,ro /run
write_config enforce signal
enforce --check >/tmp/check-ro.txt
rc=$?
mount -o remount,rw /run
rm -rf /run/enforce-canary.* /tmp/enforce-canary.*
[ $rc -eq $want_rc ] && grep -qx "posture=$want_posture" /tmp/check-ro.txt &&
	ok "pre-created canary paths and a read-only /run change nothing ($want_posture)" ||
	not_ok "with pre-created canary paths and a read-only /run: rc=$rc $(grep -E '^(posture|blockers)=' /tmp/check-ro.txt)"
enforce --check >/tmp/check.txt
rc=$?
cat /tmp/check.txt
if [ "$expect" = none ]; then
	[ $rc -eq $want_rc ] && grep -qx "posture=$want_posture" /tmp/check.txt && grep -qx "tier.open=none" /tmp/check.txt &&
		grep -qx "tier.exec=none" /tmp/check.txt && grep -qx "tier.connect=none" /tmp/check.txt &&
		ok "--check says $want_posture (exit $want_rc), no class served" ||
		not_ok "--check: wanted $want_posture/$want_rc and no class served, got rc=$rc"
else
	[ $rc -eq $want_rc ] && grep -qx "posture=$want_posture" /tmp/check.txt &&
		grep -qx "tier.open=$expect" /tmp/check.txt && grep -qx "tier.exec=$exec_tier" /tmp/check.txt &&
		grep -qx "tier.connect=$expect" /tmp/check.txt && grep -qx "hook.follow=$follow" /tmp/check.txt &&
		grep -qx "hook.exec=$expect" /tmp/check.txt &&
		ok "--check says $want_posture (exit $want_rc) with $expect for open and connect, exec by $exec_tier (hook.exec=$expect), follow=$follow" ||
		{
			not_ok "--check: wanted $want_posture/$want_rc with $expect (exec $exec_tier), got rc=$rc"
			# What libbpf and the verifier said, for the log.
			enforce -v --check >/dev/null 2>/tmp/check-debug.txt
			grep -E 'libbpf|tier:' /tmp/check-debug.txt | grep -v 'line info' | tail -40
			sed -n '/BEGIN PROG LOAD LOG/,/END PROG LOAD LOG/p' /tmp/check-debug.txt | tail -60
		}
fi
jit=$(param enforce_jit)
if [ -n "$jit" ]; then
	grep -qx "$expect.jit=$jit" /tmp/check.txt && ok "--check says $expect.jit=$jit" || not_ok "--check: $(grep '\.jit=' /tmp/check.txt)"
fi
if [ -n "$btf" ]; then
	grep -qx "btf=file:$btf" /tmp/check.txt && ok "--check says btf=file:$btf" || not_ok "--check: $(grep '^btf=' /tmp/check.txt)"
elif [ -e /sys/kernel/btf/vmlinux ]; then
	grep -qx "btf=kernel" /tmp/check.txt && ok "--check says btf=kernel" || not_ok "--check: $(grep '^btf=' /tmp/check.txt)"
else
	grep -qx "btf=none" /tmp/check.txt && ok "--check says btf=none" || not_ok "--check: $(grep '^btf=' /tmp/check.txt)"
fi
grep -qx "posture=ENFORCE" /tmp/check.txt && [ "$want_posture" != ENFORCE ] && not_ok "--check says ENFORCE"
for b in $(echo "$blockers" | tr ',' ' '); do
	sed -n 's/^blockers=//p' /tmp/check.txt | tr ',' '\n' | grep -q "^$b" && ok "--check names blocker $b" ||
		not_ok "--check does not name blocker $b"
done
if [ $sync = no ]; then
	write_config enforce refuse
	enforce --check >/dev/null
	rc=$?
	[ $rc -eq 12 ] && ok "--check with fallback=refuse exits 12" || not_ok "--check refuse: rc=$rc"
	write_config enforce signal
fi
sleep 1
[ "$(probe bpf-count)" = "$baseline" ] && ok "--check left nothing loaded" || not_ok "--check left $(probe bpf-count)"
[ -z "$(ls -a /run /tmp /dev/shm | grep enforce-canary)" ] && ok "--check left no canary" || not_ok "canary left behind"
if [ "$expect" = none ]; then
	# Nothing can be served: the agent refuses to start, and leaves nothing.
	enforce --config /etc/enforce.conf 2>/tmp/agent.log
	rc=$?
	[ $rc -eq 12 ] && grep -q "refused: posture=REFUSED" /tmp/agent.log && ok "the agent refuses (exit 12): $(grep refused: /tmp/agent.log)" ||
		not_ok "the agent: rc=$rc $(cat /tmp/agent.log)"
	run_case "without enforcement the file opens" ok probe open /data/secret
	[ "$(probe bpf-count)" = "$baseline" ] && ok "the refused agent left nothing loaded" || not_ok "after refusal: $(probe bpf-count)"
	echo "guest: $failures failure(s)"
	[ $failures -eq 0 ]
	exit
fi

start_agent() {
	: >/tmp/agent.log
	enforce --config /etc/enforce.conf 2>/tmp/agent.log &
	agent=$!
	if wait_for /tmp/agent.log 'attached:' 120; then
		ok "agent attached: $(grep attached: /tmp/agent.log)"
	else
		not_ok "agent did not attach"
		cat /tmp/agent.log
	fi
}

stop_agent() {
	kill -TERM $agent
	wait $agent
	rc=$?
	[ $rc -eq 0 ] && ok "agent stopped cleanly on SIGTERM" || not_ok "agent exit status $rc"
	cat /tmp/agent.log
}

# syslog_count PATTERN: lines of the current (or last) agent in busybox syslogd's file.
syslog_count() { grep "enforce\[$agent\]" /var/log/messages | grep -c "$1"; }

expect_syslog() { # ACTION CLASS N: lines for the class's main operation (op=CLASS)
	i=0
	while [ "$(syslog_count "$1 class=$2 op=$2 ")" -lt "$3" ]; do
		i=$((i + 1))
		[ $i -gt 50 ] && break
		sleep 0.1
	done
	n=$(syslog_count "$1 class=$2 op=$2 ")
	[ "$n" -eq "$3" ] && ok "syslog has $n '$1 class=$2 op=$2' lines" || not_ok "syslog has $n '$1 class=$2 op=$2' lines, wanted $3"
}

# Enforce mode.
start_agent
tier=$expect
grep -q "attached: posture=$want_posture tier.open=$tier tier.exec=$exec_tier tier.connect=$tier follow=$follow " /tmp/agent.log &&
	ok "agent reports $want_posture" || not_ok "agent posture line: $(grep attached: /tmp/agent.log)"
operations denied
expect_syslog denied open $DENIALS_OPEN
expect_syslog denied exec $DENIALS_EXEC
expect_syslog denied connect $DENIALS_CONNECT
[ "$(grep 'enforce\[' /var/log/messages | grep 'denied class=' | grep -vc "tier=$tier")" -eq 0 ] &&
	ok "every denial names tier=$tier" || not_ok "a denial names another tier"
if [ $sync = no ]; then
	grep 'enforce\[' /var/log/messages | grep 'denied class=' | grep -qv 'signal=KILL' &&
		not_ok "a signal-tier denial does not name signal=KILL" || ok "signal-tier denials name signal=KILL"
fi
grep 'enforce\[' /var/log/messages | grep 'denied class=open' | head -1
stop_agent
grep -q "stopped: denied=$((DENIALS_OPEN + DENIALS_EXEC + DENIALS_CONNECT)) " /tmp/agent.log &&
	ok "agent counted every denial" || not_ok "denial counter: $(grep stopped: /tmp/agent.log)"
sleep 1
[ "$(probe bpf-count)" = "$baseline" ] && ok "nothing of ours remains loaded or attached" ||
	not_ok "after stop: $(probe bpf-count), before: $baseline"
run_case "after stop the file opens again" ok probe open /data/secret
run_case "after stop the binary runs again" ok probe exec /opt/denied/tool sleep-exit 0
run_case "after stop the address connects again" ok probe connect 127.0.0.3 9000
if [ "$cases" = core ]; then
	echo "guest: enforce_cases=core: the routes, signal = TERM, trusted-exec and audit sessions were not run on this boot"
	if dmesg | grep -qE 'Oops|BUG:|Call trace:|WARNING: CPU'; then
		not_ok "the kernel logged an oops or a warning:"
		dmesg | grep -E -A12 'Oops|BUG:|Call trace:|WARNING: CPU' | head -40
	else
		ok "no oops or warning in the kernel log"
	fi
	echo "guest: $failures failure(s)"
	[ $failures -eq 0 ]
	exit
fi

# The routes around a rule, in a session of their own; every denial it counts is
# logged exactly once.
start_agent
routes
stop_agent
pid=$(sed -n 's/.*enforce\[\([0-9]*\)\]: attached:.*/\1/p' /var/log/messages | tail -n 1)
counted=$(sed -n 's/.*stopped: denied=\([0-9]*\) .*/\1/p' /tmp/agent.log)
# A denial line stands for one denial, or for N with " repeated=N" (coalesced).
logged=$(grep "enforce\[$pid\]: denied " /var/log/messages |
	awk '{ n = 1; for (i = 1; i <= NF; i++) if ($i ~ /^repeated=/) { sub(/repeated=/, "", $i); n = $i } s += n } END { print s + 0 }')
[ -n "$counted" ] && [ "$counted" -eq "$logged" ] && ok "the routes session logged each of its $counted denials once (repeats coalesced)" ||
	not_ok "the routes session counted '$counted' denials and logged $logged"
if [ "$follow" = agent ]; then want_follow="tier=agent"; else want_follow="tier=$follow"; fi
grep "enforce\[$pid\]: followed class=open op=follow $want_follow" /var/log/messages | grep -q "path=/data/shadow" &&
	ok "the rule followed the replacement: $(grep "enforce\[$pid\]: followed" /var/log/messages | head -n 1 | sed 's/.*followed/followed/')" ||
	not_ok "no 'followed ... $want_follow ... path=/data/shadow' line"
if [ "$follow" != agent ]; then
	for f in unlinked renamed; do
		grep "enforce\[$pid\]: unlinked class=open op=follow tier=$follow " /var/log/messages | grep -q " path=/data/$f " &&
			ok "the lost name of /data/$f was reported: $(grep "enforce\[$pid\]: unlinked .* path=/data/$f " /var/log/messages | head -n 1 | sed 's/.*enforce\[[0-9]*\]: //')" ||
			not_ok "no 'unlinked class=open op=follow tier=$follow ... path=/data/$f' line"
	done
fi
if [ "$expect" = path ]; then
	grep "enforce\[$pid\]: denied class=open op=open tier=path " /var/log/messages | grep -q " file=/data/newlink path=/data/secret " &&
		ok "the event of the killed ln names the hardlink it made: file=/data/newlink" ||
		not_ok "no 'denied class=open ... file=/data/newlink path=/data/secret' line"
fi

# A catchable signal is no enforcement: a process that ignores it reads the file.
if [ $sync = no ]; then
	write_config enforce signal "signal = TERM"
	enforce --check >/tmp/check.txt
	rc=$?
	[ $rc -eq 11 ] && grep -qx 'posture=AUDIT_ONLY' /tmp/check.txt && grep -q '^blockers=.*signal-catchable:TERM' /tmp/check.txt &&
		ok "signal = TERM: --check says AUDIT_ONLY with signal-catchable:TERM" ||
		not_ok "signal = TERM: --check rc=$rc: $(grep -E '^(posture|blockers)=' /tmp/check.txt)"
	start_agent
	grep -q "attached: posture=AUDIT_ONLY" /tmp/agent.log && ok "signal = TERM: the agent says AUDIT_ONLY" ||
		not_ok "signal = TERM: $(grep attached: /tmp/agent.log)"
	run_case "a process that ignores SIGTERM opens the denied file (why TERM is no enforcement)" ok probe ignore-term open /data/secret
	stop_agent
fi

# Trusted exec: allow_exec_from = / (the initramfs root), and allow_anon_exec.
trusted_config() { # MODE [EXTRA LINE]
	cat >/etc/enforce.conf <<EOF
mode = $1
fallback = signal
${tiers:+tiers = $tiers}
${btf:+btf = $btf}
syslog_ident = enforce
syslog_facility = auth
allow_exec_from = /
${2:-}
EOF
}
untrusted_programs() { # WANT
	d=$1
	run_program "a static program on the writable filesystem" $d "open /data/other: ok" /untrusted/static-tool open /data/other
	run_program "a dynamic program on the writable filesystem" $d dyn-ran /untrusted/dyntool dyn-ran
	run_program "the loader running a program from the writable filesystem" $d dyn-ran $loader /untrusted/dyntool dyn-ran
	run_program "the writable filesystem bound under the trusted root" $d "open /data/other: ok" /opt/bound/static-tool open /data/other
	run_program "a copy of a trusted program in a memfd" $d "open /data/other: ok" probe memfd-exec /bin/probe open /data/other
	run_program "dlopen of a library on the writable filesystem" $d hello-from-library dlopen-test /untrusted/libhello.so
	run_case "SysV shared memory attached with SHM_EXEC (a file on no allowed filesystem)" $d probe shm-attach EXEC
	if [ "$expect" = tracepoint ]; then
		[ "$d" = denied ] && limit "a script on the writable filesystem (the interpreter is trusted)" /untrusted/script.sh
	else
		run_program "a script on the writable filesystem" $d script-ran /untrusted/script.sh
	fi
}
trusted_programs() {
	run_program "a program of the image" ok "open /data/other: ok" probe open /data/other
	run_program "a dynamic program of the image" ok dyn-ran /usr/bin/dynecho dyn-ran
	run_program "the loader running a program of the image" ok dyn-ran $loader /usr/bin/dynecho dyn-ran
	run_program "dlopen of a library of the image" ok hello-from-library dlopen-test /usr/lib/libhello.so
	run_program "a script of the image" ok script-ran /usr/bin/allowed-script.sh
	run_case "SysV shared memory attached without SHM_EXEC" ok probe shm-attach DATA
}
if [ "$expect" = path ]; then
	# The exec policy needs the file's filesystem: the path tier cannot serve it.
	trusted_config enforce
	enforce --check >/tmp/check.txt
	rc=$?
	[ $rc -eq 12 ] && grep -q '^blockers=.*path-canary-failed:exec:0' /tmp/check.txt && grep -qx 'tier.exec=none' /tmp/check.txt &&
		ok "allow_exec_from with the path tier: REFUSED, path-canary-failed:exec:0" ||
		not_ok "allow_exec_from with the path tier: rc=$rc $(grep -E '^(posture|blockers)=' /tmp/check.txt)"
elif has_limit mprotect; then
	# An exec allow list needs every exec hook: without an mprotect program it is
	# refused, and says why.
	trusted_config enforce
	enforce --check >/tmp/check.txt
	rc=$?
	[ $rc -eq 12 ] && grep -q '^blockers=.*needs-find-vma:mprotect' /tmp/check.txt && grep -qx 'tier.exec=none' /tmp/check.txt &&
		ok "allow_exec_from without an mprotect program: REFUSED, $(grep -o '[a-z]*-needs-find-vma:mprotect' /tmp/check.txt)" ||
		not_ok "allow_exec_from without an mprotect program: rc=$rc $(grep -E '^(posture|blockers)=' /tmp/check.txt)"
else
trusted_config enforce
start_agent
grep -q "attached: posture=$want_posture tier.open=none tier.exec=$exec_tier " /tmp/agent.log &&
	ok "allow_exec_from: $want_posture, exec by $exec_tier" || not_ok "allow_exec_from: $(grep attached: /tmp/agent.log)"
untrusted_programs denied
trusted_programs
run_case "anonymous executable memory is allowed by default" ok probe anon-exec
run_case "W->X mprotect is allowed by default" ok probe wx-mprotect
stop_agent
pid=$(sed -n 's/.*enforce\[\([0-9]*\)\]: attached:.*/\1/p' /var/log/messages | tail -n 1)
grep "enforce\[$pid\]: denied class=exec op=exec reason=untrusted-fs tier=$expect " /var/log/messages | grep -q "file=/untrusted/static-tool rule=" &&
	ok "syslog: $(grep "enforce\[$pid\]: denied class=exec op=exec reason=untrusted-fs" /var/log/messages | head -n 1 | sed 's/.*denied/denied/')" ||
	not_ok "no 'denied class=exec op=exec reason=untrusted-fs ... file=/untrusted/static-tool' line"
grep -q "enforce\[$pid\]: denied class=exec op=mmap reason=untrusted-fs tier=$expect .* file=libhello.so rule=" /var/log/messages &&
	ok "syslog names the library mapping: $(grep "enforce\[$pid\]: denied class=exec op=mmap reason=untrusted-fs.*libhello" /var/log/messages | head -n 1 | sed 's/.*denied/denied/')" ||
	not_ok "no 'denied class=exec op=mmap reason=untrusted-fs ... file=libhello.so' line"

trusted_config enforce "allow_anon_exec = no"
start_agent
run_case "allow_anon_exec = no: an anonymous PROT_EXEC mapping" denied probe anon-exec
if has_limit mprotect; then
	limit "allow_anon_exec = no: W->X mprotect (no mprotect program)" probe wx-mprotect
else
	run_case "allow_anon_exec = no: W->X mprotect" denied probe wx-mprotect
fi
trusted_programs
stop_agent
pid=$(sed -n 's/.*enforce\[\([0-9]*\)\]: attached:.*/\1/p' /var/log/messages | tail -n 1)
if ! has_limit mprotect; then
	grep -q "enforce\[$pid\]: denied class=exec op=mprotect reason=anon-exec tier=$expect " /var/log/messages &&
		ok "syslog: $(grep "enforce\[$pid\]: denied class=exec op=mprotect reason=anon-exec" /var/log/messages | head -n 1 | sed 's/.*denied/denied/')" ||
		not_ok "no 'denied class=exec op=mprotect reason=anon-exec' line"
fi

# Never brick the device: an allow list that leaves out the image's own filesystem.
cat >/tmp/brick.conf <<EOF
mode = enforce
allow_exec_from = /untrusted
EOF
out=$(enforce --check-config --config /tmp/brick.conf 2>&1)
rc=$?
case "$out" in *"/tmp/brick.conf:2: allow_exec_from: "*"lies on none of the allowed filesystems"*) [ $rc -eq 78 ] && ok "a bricking allow list is refused at start (78): $out" ;;
*) not_ok "bricking allow list: rc=$rc: $out" ;; esac
trusted_config enforce
start_agent
cp /tmp/brick.conf /etc/enforce.conf
kill -HUP $agent
wait_for /tmp/agent.log 'reload failed' 60 && ok "a bricking allow list is refused at reload: $(grep 'reload failed' /tmp/agent.log | sed 's/.*reload failed/reload failed/')" ||
	not_ok "no 'reload failed' for a bricking allow list"
run_program "the running allow list still holds after the refused reload" denied "open /data/other: ok" /untrusted/static-tool open /data/other
stop_agent

# Audit mode: everything runs, and what would have been denied is logged.
trusted_config audit "allow_anon_exec = no"
start_agent
untrusted_programs ok
run_case "audit: an anonymous PROT_EXEC mapping runs" ok probe anon-exec
stop_agent
pid=$(sed -n 's/.*enforce\[\([0-9]*\)\]: attached:.*/\1/p' /var/log/messages | tail -n 1)
for what in "op=exec reason=untrusted-fs" "op=mmap reason=untrusted-fs" "op=mmap reason=anon-exec"; do
	grep -q "enforce\[$pid\]: audited class=exec $what " /var/log/messages && ok "audit logs 'audited class=exec $what'" ||
		not_ok "audit did not log 'audited class=exec $what'"
done

fi

# btrfs: inode numbers restart in every subvolume (sv/secret and twin have the same);
# a rule names the file in its subvolume, and nothing with its number elsewhere.
if [ "$(param enforce_fs)" = 1 ]; then
	if [ -d /mnt/btrfs/sv ]; then
		cat >/etc/enforce.conf <<EOF
mode = enforce
fallback = signal
${tiers:+tiers = $tiers}
deny_open = /mnt/btrfs/sv/secret
deny_exec = /mnt/btrfs/sv/denied-tool
EOF
		start_agent
		run_case "btrfs: open of the denied file in a subvolume" denied probe open /mnt/btrfs/sv/secret
		run_case "btrfs: open of the file with its inode number in another subvolume" ok probe open /mnt/btrfs/twin
		run_case "btrfs: exec of the denied program in a subvolume" denied probe exec /mnt/btrfs/sv/denied-tool open /data/other
		run_case "btrfs: exec of another program in the subvolume" ok probe exec /mnt/btrfs/sv/tool sleep-exit 0
		stop_agent
	else
		not_ok "btrfs: the image is not mounted on /mnt/btrfs"
	fi
	# FAT numbers inodes in memory: an inode evicted from the cache comes back with
	# another number. The agent holds its rules' files, so their numbers stay.
	if [ -f /mnt/fat/secret ]; then
		before=$(stat -c %i /mnt/fat/other)
		sync && echo 3 >/proc/sys/vm/drop_caches
		[ "$(stat -c %i /mnt/fat/other)" != "$before" ] && ok "vfat: an evicted inode comes back with another number (the premise)" ||
			not_ok "vfat: the inode number of an evicted file did not change ($before)"
		cat >/etc/enforce.conf <<EOF
mode = enforce
fallback = signal
${tiers:+tiers = $tiers}
deny_open = /mnt/fat/secret
deny_exec = /mnt/fat/denied-tool
EOF
		start_agent
		run_case "vfat: open of the denied file" denied probe open /mnt/fat/secret
		sync && echo 3 >/proc/sys/vm/drop_caches
		run_case "vfat: open of the denied file after the caches are dropped" denied probe open /mnt/fat/secret
		run_case "vfat: exec of the denied program after the caches are dropped" denied probe exec /mnt/fat/denied-tool open /data/other
		run_case "vfat: open of another file" ok probe open /mnt/fat/other
		stop_agent
	else
		not_ok "vfat: no FAT filesystem on /mnt/fat"
	fi
	# Read-only roots (squashfs, erofs, ext4) and an overlay of the squashfs, as OpenWrt.
	if [ -f /mnt/sq/secret ] && [ -f /mnt/erofs/secret ] && [ -f /mnt/ext4/secret ] && [ -f /mnt/ow/secret ]; then
		cat >/etc/enforce.conf <<EOF
mode = enforce
fallback = signal
${tiers:+tiers = $tiers}
deny_open = /mnt/sq/secret
deny_open = /mnt/erofs/secret
deny_open = /mnt/ext4/secret
deny_open = /mnt/ow/owsecret
deny_exec = /mnt/sq/denied-tool
deny_exec = /mnt/erofs/denied-tool
deny_exec = /mnt/ext4/denied-tool
EOF
		start_agent
		for fs in sq erofs ext4; do
			run_case "$fs: open of the denied file" denied probe open /mnt/$fs/secret
			run_case "$fs: open of another file" ok probe open /mnt/$fs/other
			run_case "$fs: exec of the denied program" denied probe exec /mnt/$fs/denied-tool open /data/other
			run_case "$fs: exec of another program" ok probe exec /mnt/$fs/tool sleep-exit 0
		done
		run_case "squashfs overlay: open of the denied file through the overlay" denied probe open /mnt/ow/owsecret
		run_case "squashfs overlay: the same file in the squashfs (the rule names the real file)" denied probe open /mnt/sq/owsecret
		run_case "squashfs overlay: a denied squashfs file through the overlay" denied probe open /mnt/ow/secret
		run_case "squashfs overlay: exec of a denied squashfs program through the overlay" denied probe exec /mnt/ow/denied-tool open /data/other
		run_case "squashfs overlay: another file through the overlay" ok probe open /mnt/ow/other
		stop_agent
		if [ "$expect" != path ] && ! has_limit mprotect; then
			# allow_exec_from naming each root: what they hold runs, what /untrusted holds
			# does not. The squashfs is named only as the overlay's lower layer: the
			# overlay trusts its layers (the written upper layer included).
			trusted_config enforce "allow_exec_from = /mnt/erofs
allow_exec_from = /mnt/ext4
allow_exec_from = /mnt/ow"
			start_agent
			for p in /mnt/ow/tool /mnt/ow/written-tool /mnt/erofs/tool /mnt/ext4/tool; do
				run_program "allow_exec_from: a program on an allowed root ($p)" ok "open /data/other: ok" $p open /data/other
			done
			run_program "allow_exec_from: a program on the writable filesystem" denied "open /data/other: ok" /untrusted/static-tool open /data/other
			stop_agent
		fi
	else
		not_ok "the read-only roots are not all mounted (/mnt/sq, /mnt/erofs, /mnt/ext4, /mnt/ow)"
	fi
fi

# Audit mode: the same operations succeed and are logged.
write_config audit signal
start_agent
grep -q "attached: posture=AUDIT_ONLY" /tmp/agent.log && ok "audit mode reports AUDIT_ONLY" ||
	not_ok "audit posture: $(grep attached: /tmp/agent.log)"
operations audited
expect_syslog audited open $DENIALS_OPEN
expect_syslog audited exec $DENIALS_EXEC
expect_syslog audited connect $DENIALS_CONNECT
stop_agent

# Whatever the programs did, the kernel must not have complained.
if dmesg | grep -qE 'Oops|BUG:|Call trace:|WARNING: CPU'; then
	not_ok "the kernel logged an oops or a warning:"
	dmesg | grep -E -A12 'Oops|BUG:|Call trace:|WARNING: CPU' | head -40
else
	ok "no oops or warning in the kernel log"
fi

echo "guest: $failures failure(s)"
[ $failures -eq 0 ]
