#!/bin/sh
# First sysinit step of the init-system VM images (rootfs/vm-test-init.sh): what a
# device's early boot does (mounts, lo, hostname), plus the test's fixtures, which
# must exist before the agent starts (a missing deny_open path is a config error).
export PATH=/sbin:/usr/sbin:/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev # Debian kernels lack DEVTMPFS_MOUNT
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t securityfs securityfs /sys/kernel/security
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=0755 tmpfs /run
# Buildroot's skeleton: /var/run -> ../run, /var/log -> ../tmp (a 1777 tmpfs whose
# mode the scripts must not change).
rm -rf /var/run /var/log
ln -s ../run /var/run
ln -s ../tmp /var/log
# A read-only mount: an ENFORCE_LOG under /ro cannot be written, even by root.
mkdir -p /ro
mount -t tmpfs -o ro,mode=0755 tmpfs /ro
hostname enforce-vm
ip link set lo up

# What is loaded before any agent runs: the stop test compares against it.
probe bpf-count >/run/bpf-baseline

mkdir -p /data /opt/denied
echo secret >/data/secret
echo other >/data/other
cp /bin/probe /opt/denied/tool
for l in "127.0.0.1 8080" "127.0.0.2 8080"; do
	probe listen $l </dev/null >/dev/null 2>&1 &
done
echo "sysinit: kernel $(uname -r), lsm $(cat /sys/kernel/security/lsm)"

# OpenRC image: what `rc-update add SERVICE boot` leaves behind for localmount,
# syslogd, dhcpcd and enforce (the boot runlevel, as on Alpine), and
# `rc-update add sshd default`.
if [ -x /sbin/openrc ]; then
	mkdir -p /etc/insserv.conf.d # Debian's openrc reads it for LSB headers
	mkdir -p /etc/runlevels/sysinit /etc/runlevels/boot /etc/runlevels/default /etc/runlevels/shutdown
	for s in localmount syslogd dhcpcd enforce; do
		ln -sf /etc/init.d/$s /etc/runlevels/boot/$s
	done
	ln -sf /etc/init.d/sshd /etc/runlevels/default/sshd
fi
