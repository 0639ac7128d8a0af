#!/bin/sh
# Guest test for the init-system images built by rootfs/vm-test-init.sh: the agent
# was started by the init system through the script shipped in init/; this shows
# that it enforces, reloads, survives what it should, and stops cleanly through that
# same script. The flavour comes from the kernel command line:
#   enforce_init=sysv      BusyBox init + Buildroot rcS + /etc/init.d/S50enforce
#   enforce_init=respawn   BusyBox init + the ::respawn: line of init/inittab
#   enforce_init=openrc    BusyBox init + OpenRC + /etc/init.d/enforce
# The kernel has bpf in lsm=, so denials are EPERM from the LSM tier. Prints the
# ENFORCE-VM-RESULT marker and powers off through init.
set -u
PATH=/sbin:/usr/sbin:/bin:/usr/bin
flavour=$(sed -n 's/.*enforce_init=\([a-z]*\).*/\1/p' /proc/cmdline)
failures=0
ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; failures=$((failures + 1)); }
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
	echo "guest: $failures failure(s)"
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

case $flavour in
sysv) svc=/etc/init.d/S50enforce ;;
openrc) svc="rc-service enforce" ;;
respawn) svc= ;;
*) not_ok "unknown enforce_init='$flavour'"; finish ;;
esac
echo "guest: init system '$flavour', service command '${svc:-none}'"

# 1. Started at boot by the shipped script (or inittab line).
wait_lines "attached:" 1 120 || not_ok "no 'attached:' line in syslog"
grep 'enforce\[' /var/log/messages
[ "$(lines 'attached: posture=ENFORCE tier.open=lsm tier.exec=lsm tier.connect=lsm')" -eq 1 ] &&
	ok "started at boot with posture ENFORCE on the LSM tier" || not_ok "posture line"
pid=$(pidof enforce)
[ -n "$pid" ] && ok "agent running as pid $pid" || { not_ok "agent not running"; finish; }
[ -n "$svc" ] && check "status says running" $svc status

# 2. It enforces.
denied "open the denied file" probe open /data/secret
check "open a neighbour file" probe open /data/other
denied "exec the denied binary" probe exec /opt/denied/tool sleep-exit 0
denied "connect 127.0.0.2:8080" probe connect 127.0.0.2 8080
check "connect 127.0.0.1:8080" probe connect 127.0.0.1 8080
wait_lines "denied class=open" 1 5 && ok "the denial is in syslog" || not_ok "no denial line in syslog"

if [ -n "$svc" ]; then
	# 3. Reload through the script: the new policy replaces the old without a gap.
	write_config /data/other
	check "reload with a new config" $svc reload
	denied "after reload the newly denied file" probe open /data/other
	check "after reload the formerly denied file" probe open /data/secret
	[ "$(pidof enforce)" = "$pid" ] && ok "same agent process after reload" || not_ok "agent pid changed"
	# A bad config: the script refuses to signal, and the agent keeps its policy.
	write_config /data/other "bogus line"
	out=$($svc reload 2>&1) && not_ok "reload with a bad config succeeded: $out" ||
		{ case "$out" in *"/etc/enforce.conf:8:"*) ok "reload with a bad config fails naming /etc/enforce.conf:8" ;;
			*) not_ok "reload error does not name the line: $out" ;; esac; }
	# The agent itself, sent SIGHUP with a bad config, keeps its policy too.
	kill -HUP "$pid"
	wait_lines "reload failed: /etc/enforce.conf:8:" 1 20 && ok "agent logs 'reload failed' with file:line" ||
		not_ok "no 'reload failed' line"
	denied "after failed reloads the policy still holds" probe open /data/other
	write_config /data/secret
	check "reload back to the first config" $svc reload
	denied "the first policy holds again" probe open /data/secret

	# 4. Stop through the script: detached, nothing left, the file opens again.
	check "stop" $svc stop
	[ -z "$(pidof enforce)" ] && ok "agent gone after stop" || not_ok "agent still running after stop"
	wait_lines "stopped: denied=" 1 5 && ok "agent logged: $(grep 'enforce\[' /var/log/messages | grep -o 'stopped: .*')" ||
		not_ok "no 'stopped:' line (the agent did not exit cleanly)"
	[ "$(probe bpf-count)" = "$(cat /run/bpf-baseline)" ] && ok "nothing of ours loaded after stop" ||
		not_ok "after stop: $(probe bpf-count), at boot: $(cat /run/bpf-baseline)"
	check "after stop the file opens" probe open /data/secret
	$svc status >/dev/null 2>&1 && not_ok "status says running after stop" || ok "status says stopped"

	# 5. A start with a bad config fails before anything is loaded.
	write_config /data/secret "bogus line"
	$svc start >/tmp/start.out 2>&1 && not_ok "start with a bad config succeeded" ||
		ok "start with a bad config fails: $(grep -o '/etc/enforce.conf:8:.*' /tmp/start.out | head -n 1)"
	[ -z "$(pidof enforce)" ] && [ "$(probe bpf-count)" = "$(cat /run/bpf-baseline)" ] &&
		ok "nothing running or loaded after the failed start" || not_ok "something left after the failed start"
	write_config /data/secret
	check "start again" $svc start
	denied "enforcing again" probe open /data/secret
	if [ "$flavour" = openrc ]; then
		# supervise-daemon restarts an agent that dies.
		n=$(lines "attached:")
		kill -KILL "$(pidof enforce)"
		wait_lines "attached:" $((n + 1)) 60 && ok "supervise-daemon restarted the killed agent" ||
			not_ok "agent not restarted by supervise-daemon"
		denied "the restarted agent enforces" probe open /data/secret
	fi
	# init's shutdown actions stop it on power-off.
else
	# 3. respawn: init restarts a killed agent, which enforces again.
	kill -KILL "$pid"
	wait_lines "attached:" 2 120 && ok "init restarted the agent" || not_ok "agent not restarted"
	newpid=$(pidof enforce)
	[ -n "$newpid" ] && [ "$newpid" != "$pid" ] && ok "new agent pid $newpid" || not_ok "agent pid '$newpid'"
	denied "the restarted agent enforces" probe open /data/secret
fi
finish
