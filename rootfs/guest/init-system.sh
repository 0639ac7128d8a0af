#!/bin/sh
# Guest test for the init-system images built by rootfs/vm-test-init.sh: the agent
# was started at boot by the init system through the script shipped in init/; this
# shows that it enforces, reloads, survives what it should, and then drives the
# script through many start/reload/restart/stop cycles, asserting after every step
# that exactly one agent runs when one should and none when none should. The flavour
# comes from the kernel command line:
#   enforce_init=sysv      BusyBox init + Buildroot rcS + /etc/init.d/S05enforce
#                          (enforce_ssd=busybox or dpkg: whose start-stop-daemon)
#   enforce_init=respawn   BusyBox init + the ::respawn: line of init/inittab
#   enforce_init=openrc    BusyBox init + OpenRC + /etc/init.d/enforce
#   enforce_cycles=N       cycles for sysv and openrc (default 30)
# /var/log is a symlink to ../tmp, as in Buildroot's skeleton; /ro is a read-only
# mount (an ENFORCE_LOG there cannot be written). The kernel has bpf in lsm=, so
# denials are EPERM from the LSM tier. Prints the ENFORCE-VM-RESULT marker and
# powers off through init.
set -u
PATH=/sbin:/usr/sbin:/bin:/usr/bin
flavour=$(sed -n 's/.*enforce_init=\([a-z]*\).*/\1/p' /proc/cmdline)
ssd=$(sed -n 's/.*enforce_ssd=\([a-z]*\).*/\1/p' /proc/cmdline)
cycles=$(sed -n 's/.*enforce_cycles=\([0-9]*\).*/\1/p' /proc/cmdline)
cycles=${cycles:-30}
failures=0
checks=0
ok() { checks=$((checks + 1)); [ "${quiet:-0}" = 1 ] || echo "ok - $*"; }
not_ok() { checks=$((checks + 1)); echo "not ok - $*"; failures=$((failures + 1)); }
check() { # NAME CMD...: the command must succeed
	name=$1
	shift
	if out=$("$@" 2>&1); then ok "$name"; else not_ok "$name: rc=$?: $out"; fi
}
denied() { # NAME CMD...: the command must fail with EPERM
	name=$1
	shift
	out=$("$@" 2>&1)
	case "$out" in *": EPERM"*) ok "$name: EPERM" ;; *) not_ok "$name: wanted EPERM: $out" ;; esac
}
finish() {
	echo "guest: $checks checks, $failures failure(s)"
	if [ $failures -eq 0 ]; then echo "ENFORCE-VM-RESULT: PASS"; else echo "ENFORCE-VM-RESULT: FAIL ($failures)"; fi
	sync
	poweroff # through init: its shutdown actions run
	sleep 60
	poweroff -f
}
# lines PATTERN: our syslog lines matching PATTERN.
lines() { grep 'enforce\[' /var/log/messages 2>/dev/null | grep -c "$1"; }
wait_lines() { # PATTERN N SECONDS: until at least N lines match
	i=0
	while [ "$(lines "$1")" -lt "$2" ]; do
		i=$((i + 1))
		[ $i -gt $(($3 * 10)) ] && return 1
		sleep 0.1
	done
}
write_config() { # DENIED_FILE [EXTRA LINE]
	printf '%s\n' "mode = enforce" "fallback = signal" "deny_open = $1" "deny_exec = /opt/denied/tool" \
		"deny_connect = 127.0.0.2/32:8080" "syslog_ident = enforce" "syslog_facility = auth" "${2:-}" \
		>/etc/enforce.conf
}
# agents: the pids of every process running /usr/sbin/enforce (by /proc/PID/exe,
# so a start-stop-daemon or sh still on its way to exec it does not count), but the
# scripts' brief `enforce --check-config` runs, which are not agents.
agents() {
	for _p in $(ls -l /proc/[0-9]*/exe 2>/dev/null | sed -n 's|.* /proc/\([0-9]*\)/exe -> /usr/sbin/enforce$|\1|p'); do
		case $(tr '\0' ' ' <"/proc/$_p/cmdline" 2>/dev/null) in
		*" --check-config "*) ;;
		*) echo "$_p" ;;
		esac
	done
}
count() { set -- $1; echo $#; }
# supervisors: supervise-daemon processes (OpenRC).
supervisors() { pidof supervise-daemon; }
# The agent the service manager knows: the pidfile (sysv), supervise-daemon's
# child_pid (OpenRC).
known_pid() {
	case $flavour in
	sysv) cat /var/run/enforce.pid 2>/dev/null ;;
	openrc) cat /run/openrc/options/enforce/child_pid 2>/dev/null ;;
	esac
}
# one_agent NAME: exactly one agent runs, and it is the one the service knows.
# Sets $agent to its pid.
one_agent() {
	a=$(agents)
	agent=$a
	if [ "$(count "$a")" -ne 1 ]; then
		not_ok "$1: want exactly one agent, found $(count "$a") (pids: ${a:-none}); ps: $(ps | grep -c '[e]nforce')"
		return 1
	fi
	k=$(known_pid)
	if [ "$k" != "$a" ]; then
		not_ok "$1: the agent is pid $a, the service knows '${k}'"
		return 1
	fi
	if [ "$flavour" = openrc ] && [ "$(count "$(supervisors)")" -ne 1 ]; then
		not_ok "$1: want one supervise-daemon, found: $(supervisors)"
		return 1
	fi
	ok "$1: one agent (pid $a)"
}
# no_agent NAME: no agent runs, and the service does not claim one.
no_agent() {
	a=$(agents)
	if [ -n "$a" ]; then
		not_ok "$1: want no agent, found pids $a"
		return 1
	fi
	if [ "$flavour" = sysv ] && [ -e /var/run/enforce.pid ]; then
		not_ok "$1: no agent, but /var/run/enforce.pid is left ($(cat /var/run/enforce.pid))"
		return 1
	fi
	if [ "$flavour" = openrc ] && [ -n "$(supervisors)" ]; then
		not_ok "$1: no agent, but supervise-daemon runs: $(supervisors)"
		return 1
	fi
	ok "$1: no agent"
}
svc_ok() { # NAME ACTION [WANT]: the action succeeds (and prints WANT)
	if out=$($svc "$2" 2>&1); then
		case $out in
		*"${3:-}"*) ok "$1: $2: $(echo "$out" | tail -n 1)" ;;
		*) not_ok "$1: $2 succeeded without '$3': $out" ;;
		esac
	else
		not_ok "$1: $2: rc=$?: $out"
	fi
}
svc_fails() { # NAME ACTION WANT: the action fails, printing WANT
	if out=$($svc "$2" 2>&1); then
		not_ok "$1: $2 succeeded: $out"
	else
		case $out in
		*"$3"*) ok "$1: $2 fails: $(echo "$out" | grep -F "$3" | head -n 1)" ;;
		*) not_ok "$1: $2 failed without '$3': $out" ;;
		esac
	fi
}
# The service's settings file (sourced by the script on every run).
settings=/etc/default/enforce
[ "$flavour" = openrc ] && settings=/etc/conf.d/enforce
set_setting() { # NAME VALUE: replace or add NAME=VALUE
	mkdir -p "$(dirname "$settings")"
	grep -v "^$1=" "$settings" >"$settings.new" 2>/dev/null
	echo "$1=\"$2\"" >>"$settings.new"
	mv "$settings.new" "$settings"
}
del_setting() { grep -v "^$1=" "$settings" >"$settings.new"; mv "$settings.new" "$settings"; }

case $flavour in
sysv) svc=/etc/init.d/S05enforce ;;
openrc) svc="rc-service enforce" ;;
respawn) svc= ;;
*) not_ok "unknown enforce_init='$flavour'"; finish ;;
esac
echo "guest: init system '$flavour', service command '${svc:-none}', $cycles cycles"
if [ "$flavour" = sysv ]; then
	# What the script gets: the same lookup in the same shell (/bin/sh; BusyBox's
	# sh runs its own applet for a bare start-stop-daemon, whatever PATH says).
	v=$(/bin/sh -c 'start-stop-daemon --version' 2>&1)
	case $ssd:$v in
	dpkg:*Debian*) ok "the scripts' start-stop-daemon is dpkg's: $(echo "$v" | head -n 1)" ;;
	busybox:*BusyBox*) ok "the scripts' start-stop-daemon is BusyBox's: $(echo "$v" | grep BusyBox)" ;;
	*) not_ok "enforce_ssd=$ssd but the scripts' start-stop-daemon says: $v" ;;
	esac
fi
tmpmode=$(stat -c %a /tmp)

# 1. Started at boot by the shipped script (or inittab line).
wait_lines "attached:" 1 120 || not_ok "no 'attached:' line in syslog"
grep 'enforce\[' /var/log/messages
[ "$(lines 'attached: posture=ENFORCE tier.open=lsm tier.exec=lsm tier.connect=lsm')" -eq 1 ] &&
	ok "started at boot with posture ENFORCE on the LSM tier" || not_ok "posture line"
pid=$(pidof enforce)
[ -n "$pid" ] && ok "agent running as pid $pid" || { not_ok "agent not running"; finish; }
[ -n "$svc" ] && one_agent "at boot" && check "status says running" $svc status

# The boot order, from the stand-ins' records (/sbin/mark-boot): syslog (and
# localmount) before the agent, the network and remote logins after it attached.
if [ -n "$svc" ]; then
	sed 's/^/guest: boot order: /' /run/boot-order
	case $flavour in
	sysv) before="S01syslogd" after="S40network S50dropbear" ;;
	openrc) before="localmount syslogd" after="dhcpcd sshd" ;;
	esac
	for s in $before; do
		grep -q "^$s agents=0 attached=0\$" /run/boot-order && ok "$s started before the agent" ||
			not_ok "$s did not start before the agent: $(grep "^$s " /run/boot-order || echo 'never started')"
	done
	for s in $after; do
		grep -q "^$s agents=1 attached=1\$" /run/boot-order && ok "$s started after the agent attached" ||
			not_ok "$s did not start after the agent attached: $(grep "^$s " /run/boot-order || echo 'never started')"
	done
fi

# 2. It enforces.
denied "open the denied file" probe open /data/secret
check "open a neighbour file" probe open /data/other
denied "exec the denied binary" probe exec /opt/denied/tool sleep-exit 0
denied "connect 127.0.0.2:8080" probe connect 127.0.0.2 8080
check "connect 127.0.0.1:8080" probe connect 127.0.0.1 8080
wait_lines "denied class=open" 1 5 && ok "the denial is in syslog" || not_ok "no denial line in syslog"

if [ -z "$svc" ]; then
	# 3. respawn: init restarts a killed agent, which enforces again.
	kill -KILL "$pid"
	wait_lines "attached:" 2 120 && ok "init restarted the agent" || not_ok "agent not restarted"
	newpid=$(pidof enforce)
	[ -n "$newpid" ] && [ "$newpid" != "$pid" ] && ok "new agent pid $newpid" || not_ok "agent pid '$newpid'"
	denied "the restarted agent enforces" probe open /data/secret
	finish
fi

# 3. Reload through the script: the new policy replaces the old without a gap.
write_config /data/other
svc_ok "new config" reload "reloaded: posture=ENFORCE"
denied "after reload the newly denied file" probe open /data/other
check "after reload the formerly denied file" probe open /data/secret
[ "$(pidof enforce)" = "$pid" ] && ok "same agent process after reload" || not_ok "agent pid changed"
# A bad config: checkconfig names it, the script refuses to signal, and the agent
# keeps its policy.
svc_ok "good config" checkconfig
write_config /data/other "bogus line"
svc_fails "bad config" checkconfig "/etc/enforce.conf:8:"
svc_fails "bad config" reload "/etc/enforce.conf:8:"
# The agent itself, sent SIGHUP with a bad config, keeps its policy too.
kill -HUP "$pid"
wait_lines "reload failed: /etc/enforce.conf:8:" 1 20 && ok "agent logs 'reload failed' with file:line" ||
	not_ok "no 'reload failed' line"
denied "after failed reloads the policy still holds" probe open /data/other
# restart with a bad config: refused before the agent is stopped.
svc_fails "bad config" restart "/etc/enforce.conf:8:"
if one_agent "after a refused restart"; then
	[ "$agent" = "$pid" ] && ok "the same agent runs on" || not_ok "the agent changed: $pid -> $agent"
fi
denied "after the refused restart the policy still holds" probe open /data/other
write_config /data/secret
svc_ok "first config again" reload "reloaded:"
denied "the first policy holds again" probe open /data/secret

# 4. Stop through the script: detached, nothing left, the file opens again.
svc_ok "running" stop
no_agent "after stop"
wait_lines "stopped: denied=" 1 5 && ok "agent logged: $(grep 'enforce\[' /var/log/messages | grep -o 'stopped: .*')" ||
	not_ok "no 'stopped:' line (the agent did not exit cleanly)"
[ "$(probe bpf-count)" = "$(cat /run/bpf-baseline)" ] && ok "nothing of ours loaded after stop" ||
	not_ok "after stop: $(probe bpf-count), at boot: $(cat /run/bpf-baseline)"
check "after stop the file opens" probe open /data/secret
$svc status >/dev/null 2>&1
rc=$?
[ $rc -eq 3 ] && ok "status says stopped (3)" || not_ok "status after stop: rc=$rc, want 3"
if [ "$flavour" = sysv ]; then
	echo 1 >/var/run/enforce.pid # pid 1 is init, not the agent
	$svc status >/dev/null 2>&1
	rc=$?
	[ $rc -eq 1 ] && ok "status with a stale pidfile: 1" || not_ok "status with a stale pidfile: rc=$rc, want 1"
	$svc bogus >/dev/null 2>&1
	rc=$?
	[ $rc -eq 2 ] && ok "usage error: 2" || not_ok "usage error: rc=$rc, want 2"
	svc_fails "not running" reload "not running"
	svc_ok "stale pidfile" stop "not running"
	kill -0 1 && [ ! -e /var/run/enforce.pid ] && ok "stop removed the stale pidfile and left pid 1 alone" ||
		not_ok "stop with a stale pidfile"
fi

# 5. A start with a bad config fails before anything is loaded; checkconfig works
# with no agent running and starts none.
write_config /data/secret "bogus line"
svc_fails "bad config, stopped" checkconfig "/etc/enforce.conf:8:"
svc_fails "bad config" start "/etc/enforce.conf:8:"
no_agent "after a start with a bad config"
[ "$(probe bpf-count)" = "$(cat /run/bpf-baseline)" ] && ok "nothing loaded after the failed start" ||
	not_ok "loaded after the failed start: $(probe bpf-count)"
write_config /data/secret
svc_ok "good config, stopped" checkconfig
no_agent "after checkconfig"

# 6. No answer within ENFORCE_WAIT: the start fails and stops the agent.
set_setting ENFORCE_WAIT 0
svc_fails "ENFORCE_WAIT=0" start "no answer from the agent"
no_agent "after a start that timed out"
del_setting ENFORCE_WAIT

# 7. The agent dies while the script waits for it: the start fails at once.
n=0
while [ $n -lt 3 ]; do
	n=$((n + 1))
	before=$(lines "attached:")
	$svc start >/tmp/start.out 2>&1 &
	spid=$!
	i=0
	while [ -z "$(agents)" ] && [ $i -lt 400 ]; do sleep 0.02; i=$((i + 1)); done
	victim=$(agents)
	[ -n "$victim" ] && kill -STOP $victim
	if [ -z "$victim" ] || [ "$(lines "attached:")" -gt "$before" ]; then
		# Missed, or too late: it had attached already. Undo and try again.
		[ -z "$victim" ] || kill -CONT $victim
		wait $spid
		$svc stop >/dev/null 2>&1
		continue
	fi
	t0=$(date +%s)
	kill -KILL $victim
	wait $spid
	rc=$?
	t=$(($(date +%s) - t0))
	[ $rc -ne 0 ] && [ $t -lt 10 ] && ok "agent killed during the start: start fails in ${t}s: $(grep -E 'exited|FAIL' /tmp/start.out | tail -n 1)" ||
		not_ok "agent killed during the start: rc=$rc after ${t}s: $(cat /tmp/start.out)"
	sleep 3 # longer than respawn_delay: nothing may come back
	no_agent "after the agent died during the start"
	break
done
[ $n -lt 3 ] || not_ok "could not catch the agent before it attached in 3 tries"

# 8. An unwritable ENFORCE_LOG: the agent runs anyway, its stderr elsewhere.
set_setting ENFORCE_LOG /ro/log/enforce.log
svc_ok "ENFORCE_LOG unwritable" start "attached: posture=ENFORCE"
one_agent "with ENFORCE_LOG unwritable" &&
	ok "its stderr goes to $(readlink /proc/$agent/fd/2)"
denied "with ENFORCE_LOG unwritable it enforces" probe open /data/secret
svc_ok "ENFORCE_LOG unwritable" reload "reloaded:"
svc_ok "ENFORCE_LOG unwritable" stop
no_agent "after stop with ENFORCE_LOG unwritable"
del_setting ENFORCE_LOG

# 8b. A log larger than ENFORCE_LOG_MAX becomes ENFORCE_LOG.1 at the start.
set_setting ENFORCE_LOG_MAX 2000
rm -f /var/log/enforce.log.1
{ echo "old-log-marker"; head -c 3000 /dev/zero | tr '\0' x; echo; } >>/var/log/enforce.log
svc_ok "ENFORCE_LOG_MAX=2000" start "attached: posture=ENFORCE"
if grep -q old-log-marker /var/log/enforce.log.1 2>/dev/null && ! grep -q old-log-marker /var/log/enforce.log &&
	grep -q 'attached: ' /var/log/enforce.log; then
	ok "the log over ENFORCE_LOG_MAX became enforce.log.1 ($(wc -c </var/log/enforce.log.1) bytes); the new one has $(wc -c </var/log/enforce.log)"
else
	not_ok "no rotation: $(ls -l /var/log/enforce.log*)"
fi
svc_ok "ENFORCE_LOG_MAX=2000" stop
no_agent "after stop with ENFORCE_LOG_MAX=2000"
del_setting ENFORCE_LOG_MAX

# 9. Cycles: every cycle starts and stops through the script; every 5th restarts
# in between, every 10th reloads, and one in ten each tries a restart with a bad
# config and restarts with an unwritable ENFORCE_LOG. Exactly one agent, or none,
# after every step.
echo "guest: $cycles start/stop cycles"
now() { cut -d' ' -f1 /proc/uptime; }
timed() { # OP CMD...: run CMD, recording its time under OP
	_op=$1
	shift
	_t=$(now)
	"$@"
	_rc=$?
	echo "$_op $_t $(now)" >>/tmp/op-times
	return $_rc
}
t0=$(now)
f0=$failures
quiet=1
c=0
while [ $c -lt "$cycles" ]; do
	c=$((c + 1))
	timed start svc_ok "cycle $c" start "attached: posture=ENFORCE"
	if ! one_agent "cycle $c: after start"; then
		$svc stop >/dev/null 2>&1
		continue
	fi
	first=$agent
	case $((c % 10)) in
	3)
		write_config /data/secret "bogus line"
		timed bad_restart svc_fails "cycle $c: bad config" restart "/etc/enforce.conf:8:"
		write_config /data/secret
		if one_agent "cycle $c: after a refused restart"; then
			[ "$agent" = "$first" ] || not_ok "cycle $c: a refused restart replaced the agent ($first -> $agent)"
		fi
		;;
	5 | 0)
		timed restart svc_ok "cycle $c" restart "attached: posture=ENFORCE"
		if one_agent "cycle $c: after restart"; then
			[ "$agent" != "$first" ] || not_ok "cycle $c: restart kept pid $first"
		fi
		;;
	7)
		set_setting ENFORCE_LOG /ro/log/enforce.log
		timed restart svc_ok "cycle $c: ENFORCE_LOG unwritable" restart "attached: posture=ENFORCE"
		del_setting ENFORCE_LOG
		one_agent "cycle $c: after restart with ENFORCE_LOG unwritable"
		;;
	9)
		timed reload svc_ok "cycle $c" reload "reloaded: posture=ENFORCE"
		if one_agent "cycle $c: after reload"; then
			[ "$agent" = "$first" ] || not_ok "cycle $c: reload replaced the agent ($first -> $agent)"
		fi
		denied "cycle $c: enforcing" probe open /data/secret
		;;
	esac
	timed stop svc_ok "cycle $c" stop
	no_agent "cycle $c: after stop"
	if [ $((c % 10)) -eq 1 ]; then
		$svc status >/dev/null 2>&1
		rc=$?
		[ $rc -eq 3 ] || not_ok "cycle $c: status after stop: rc=$rc, want 3"
	fi
done
quiet=0
t=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')
times=$(awk '{ n[$1]++; s[$1] += $3 - $2 } END { for (k in n) printf " %s %dx%.2fs", k, n[k], s[k] / n[k] }' /tmp/op-times)
echo "guest: cycle times (count x average):$times"
[ $failures -eq $f0 ] && ok "$cycles cycles in ${t}s: exactly one agent or none after every step" ||
	not_ok "$cycles cycles in ${t}s: $((failures - f0)) failure(s)"
[ "$(probe bpf-count)" = "$(cat /run/bpf-baseline)" ] && ok "nothing of ours loaded after the cycles" ||
	not_ok "after the cycles: $(probe bpf-count), at boot: $(cat /run/bpf-baseline)"
[ "$(stat -c %a /tmp)" = "$tmpmode" ] && ok "/tmp (the target of /var/log) kept its mode $tmpmode" ||
	not_ok "/tmp's mode changed from $tmpmode to $(stat -c %a /tmp)"

# 10. Start again; supervise-daemon restarts an agent that dies (OpenRC).
svc_ok "last" start "attached:"
denied "enforcing again" probe open /data/secret
if [ "$flavour" = openrc ]; then
	n=$(lines "attached:")
	kill -KILL "$(pidof enforce)"
	wait_lines "attached:" $((n + 1)) 60 && ok "supervise-daemon restarted the killed agent" ||
		not_ok "agent not restarted by supervise-daemon"
	sleep 0.5
	one_agent "after the respawn"
	denied "the restarted agent enforces" probe open /data/secret
fi
# init's shutdown actions stop it on power-off.
finish
