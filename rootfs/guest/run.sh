#!/bin/sh
# The guest test, run by /init as /test/run.sh inside a VM booted by rootfs/vm-test.sh (through rootfs/vm-boot.sh).
# The kernel command line says which tier must act:
#   enforce_expect=TIER     lsm or fmodret: denied operations fail with EPERM, posture
#                           ENFORCE; kprobe or tracepoint: the offender is killed,
#                           posture ENFORCE_SIGNAL
#   enforce_tiers=A,B       the config's `tiers =` (default: the whole ladder)
#   enforce_blockers=B1,B2  blockers --check must name (each a prefix of one)
# Exits 0 only when every case passed; /init turns that into the result marker.
set -u
PATH=/bin:/sbin:/usr/bin:/usr/sbin
param() { tr ' ' '\n' </proc/cmdline | sed -n "s/^$1=//p"; }
expect=$(param enforce_expect)
tiers=$(param enforce_tiers)
blockers=$(param enforce_blockers)
case $expect in
lsm | fmodret) sync=yes want_posture=ENFORCE want_rc=0 ;;
kprobe | tracepoint) sync=no want_posture=ENFORCE_SIGNAL want_rc=10 ;;
*) echo "guest: enforce_expect must name a tier, got '$expect'"; exit 1 ;;
esac
# The tracepoint tier has no kernel program for rules following a rename: the agent does it.
if [ "$expect" = tracepoint ]; then follow=agent; else follow=$expect; fi
failures=0
ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; failures=$((failures + 1)); }

# run_case NAME WANT CMD...: WANT is ok, denied (EPERM from a synchronous tier, or the
# process killed by SIGKILL from a signal tier) or audited (= ok).
run_case() {
	name=$1 want=$2
	shift 2
	out=$("$@" 2>&1)
	rc=$?
	case $want in
	ok | audited) [ $rc -eq 0 ] && ok "$name" || not_ok "$name: wanted success, rc=$rc: $out" ;;
	denied)
		if [ $sync = yes ]; then
			case "$out" in *": EPERM"*) [ $rc -eq 1 ] && ok "$name" && return ;; esac
			not_ok "$name: wanted EPERM, rc=$rc: $out"
		else
			[ $rc -eq 137 ] && [ -z "$out" ] && ok "$name (killed)" && return
			not_ok "$name: wanted SIGKILL and no output, rc=$rc: $out"
		fi
		;;
	esac
}

wait_for() { # FILE PATTERN SECONDS
	i=0
	while ! grep -q "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt $(($3 * 10)) ] && return 1
		sleep 0.1
	done
}

echo "guest: expecting the $expect tier (tiers=${tiers:-all}); lsm=$(cat /sys/kernel/security/lsm)"

# Objects to deny and their neighbours.
mkdir -p /data /mnt/bind /opt/denied
echo secret >/data/secret
echo other >/data/other
ln /data/secret /data/hardlink
ln -s /data/secret /data/symlink
mount --bind /data /mnt/bind
cp /bin/probe /opt/denied/tool

# Listeners on loopback addresses.
ip -6 addr add fd00::2/128 dev lo
ip -6 addr add fd00::3/128 dev lo
sleep 1 # IPv6 DAD
for l in "127.0.0.1 8080" "127.0.0.2 8080" "127.0.0.2 8081" "127.0.0.3 9000" \
	"fd00::2 8080" "fd00::2 8081" "fd00::3 9000" "::1 8080"; do
	probe listen $l &
done
sleep 0.5

write_config() { # MODE FALLBACK
	cat >/etc/enforce.conf <<EOF
# guest test config
mode = $1
fallback = $2
${tiers:+tiers = $tiers}
deny_open = /data/secret
deny_exec = /opt/denied/tool
deny_connect = 127.0.0.2/32:8080
deny_connect = 127.0.0.3/32
deny_connect = [fd00::2/128]:8080
deny_connect = fd00::3/128
syslog_ident = enforce
syslog_facility = auth
EOF
}

# The operations, each with what enforce mode must do to it.
operations() { # WANT_FOR_DENIED
	d=$1
	run_case "open by path" "$d" probe open /data/secret
	run_case "open through a hardlink" "$d" probe open /data/hardlink
	run_case "open through a symlink" "$d" probe open /data/symlink
	run_case "open through a bind mount" "$d" probe open /mnt/bind/secret
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

baseline=$(probe bpf-count)
echo "guest: before the agent: $baseline"

# --check: the posture this kernel really has, and nothing left behind.
write_config enforce signal
enforce --check >/tmp/check.txt
rc=$?
cat /tmp/check.txt
[ $rc -eq $want_rc ] && grep -qx "posture=$want_posture" /tmp/check.txt &&
	grep -qx "tier.open=$expect" /tmp/check.txt && grep -qx "tier.exec=$expect" /tmp/check.txt &&
	grep -qx "tier.connect=$expect" /tmp/check.txt && grep -qx "hook.follow=$follow" /tmp/check.txt &&
	ok "--check says $want_posture (exit $want_rc) with $expect for every class, follow=$follow" ||
	not_ok "--check: wanted $want_posture/$want_rc with $expect, got rc=$rc"
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

# syslog_count PATTERN: lines of ours in busybox syslogd's file.
syslog_count() { grep "enforce\[" /var/log/messages | grep -c "$1"; }

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
grep -q "attached: posture=$want_posture tier.open=$tier tier.exec=$tier tier.connect=$tier follow=$follow " /tmp/agent.log &&
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

echo "guest: $failures failure(s)"
[ $failures -eq 0 ]
