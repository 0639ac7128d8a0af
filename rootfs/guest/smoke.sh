#!/bin/sh
# Placeholder guest test: checks that the VM harness and /bin/probe work.
# Build and boot: see rootfs/README.md. Exits non-zero on the first failure.
set -u
fail=0
check() { # check EXPECTED_RC CMD...: run CMD, compare its exit status
    want=$1; shift
    "$@"
    got=$?
    if [ "$got" -ne "$want" ]; then
        echo "smoke: FAILED (exit $got, want $want): $*"
        fail=1
    fi
}

echo "smoke: lsm=$(cat /sys/kernel/security/lsm)"
grep -q bpf /sys/kernel/security/lsm || { echo "smoke: bpf not in LSM list"; fail=1; }
[ -S /dev/log ] || { echo "smoke: /dev/log missing"; fail=1; }

probe listen 127.0.0.1 8080 &
probe listen :: 8081 &
sleep 0.5
check 0 probe connect 127.0.0.1 8080
check 0 probe connect ::1 8081
check 0 probe connect ::ffff:127.0.0.2 8081
check 1 probe connect 127.0.0.1 9
check 0 probe bpf-count
check 0 probe open /etc/passwd
check 1 probe open /nonexistent
check 7 probe exec /bin/probe sleep-exit 7
check 1 probe exec /nonexistent
logger -t smoke "hello syslog"
sleep 0.2
check 0 grep -q 'smoke.*hello syslog' /var/log/messages
exit $fail
