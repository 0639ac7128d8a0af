#!/bin/sh
# The reliability proofs, run by /init as /test/run.sh in a VM booted by
# rootfs/vm-test.sh (boots rel-lsm and rel-tracepoint). The kernel command line says
# which tier must serve the open class:
#   enforce_expect=lsm         denied opens fail with EPERM; the offender counts them
#   enforce_expect=tracepoint  (with enforce_tiers=tracepoint) the offender is killed;
#                              a supervisor forks one child per open and counts kills
# The proofs:
#   1. reload under fire: a process opens a denied file in a tight loop across 100
#      reloads that add and remove rules; it never succeeds; a file whose rule a
#      reload removed opens right after that reload, one it added is denied right
#      after; every denial is counted and logged once (never audited):
#      logged + coalesced + dropped = the kernel's denied counter = what the
#      offender counted (plus the checks' own denials).
#   2. a full ring buffer still denies (the agent is stopped with SIGSTOP so nothing
#      drains it; ringbuf_size = 4K), and every loss is counted.
#   3. (lsm) a flood: 1,000,000 denied opens from 4 processes: every one denied,
#      the agent's RSS flat, logged + coalesced + dropped = produced.
#   4. pinning: SIGKILL the agent, the denied open still fails; a restarted agent
#      adopts the pinned set (exactly one set attached); SIGTERM removes everything.
#      Without the key nothing survives the agent.
# Exits 0 only when every case passed; /init turns that into the result marker.
set -u
PATH=/bin:/sbin:/usr/bin:/usr/sbin
. /test/lib.sh
expect=$(param enforce_expect)
tiers=$(param enforce_tiers)
reloads=$(param enforce_reloads)
reloads=${reloads:-100}
flood=$(param enforce_flood)
flood=${flood:-250000}
case $expect in
lsm) sync=yes ;;
tracepoint) sync=no ;;
*) echo "reliability: enforce_expect must be lsm or tracepoint, got '$expect'"; exit 1 ;;
esac
t0=$(date +%s)
elapsed() { echo "$(($(date +%s) - t0)) s"; }

# wait_for FILE PATTERN SECONDS [PID]: until FILE has a line with PATTERN; fails at
# the deadline, or at once when process PID has ended (replaces lib.sh's).
wait_for() {
	local deadline=$(($(date +%s) + $3))
	while ! grep -q "$2" "$1" 2>/dev/null; do
		[ "$(date +%s)" -gt $deadline ] && return 1
		[ -n "${4:-}" ] && ! kill -0 "$4" 2>/dev/null && return 1
		sleep 0.1
	done
}
# count_at_least FILE PATTERN N SECONDS PID: until FILE has N lines with PATTERN.
count_at_least() {
	local deadline=$(($(date +%s) + $4))
	while [ "$(grep -c "$2" "$1" 2>/dev/null)" -lt "$3" ]; do
		[ "$(date +%s)" -gt $deadline ] && return 1
		kill -0 "$5" 2>/dev/null || return 1
		sleep 0.05
	done
}
field() { # LINE KEY: the number after KEY=
	echo "$1" | tr ' ' '\n' | sed -n "s/^$2=\([0-9]*\).*/\1/p" | head -n 1
}

# syslogd's socket takes 10 datagrams by default (net.unix.max_dgram_qlen): a reload
# writes the replaced generation's summary lines at once (up to 64, one per offender
# it followed), more than busybox syslogd under TCG drains in the agent's bounded wait,
# and lines syslog does not take are only counted (unsent). Restart it with room for
# them, so that every line the agent writes can be counted in the log.
sysctl -w net.unix.max_dgram_qlen=1024 >/dev/null || echo "reliability: cannot raise net.unix.max_dgram_qlen"
kill "$(pidof syslogd)"
while pidof syslogd >/dev/null; do sleep 0.1; done
rm -f /dev/log
syslogd -n -O /var/log/messages &
n=0
while [ ! -S /dev/log ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
[ -S /dev/log ] || { echo "reliability: no /dev/log"; exit 1; }

mkdir -p /data
echo secret >/data/secret
echo toggle >/data/toggle
for k in 0 1 2; do echo churn >/data/churn-$k; done

# The config: the looped-on file is always denied; other rules come and go.
write_config() { # FILE [EXTRA LINES...]
	f=$1
	shift
	{
		echo "mode = enforce"
		[ -n "$tiers" ] && echo "tiers = $tiers"
		echo "deny_open = /data/secret"
		for l in "$@"; do echo "$l"; done
	} >"$f"
}

agent=
start_agent() { # CONFIG: start, wait for attached:
	: >/tmp/agent.log
	enforce --config "$1" 2>/tmp/agent.log &
	agent=$!
	if wait_for /tmp/agent.log 'attached:' 120 $agent; then
		ok "agent $agent attached: $(grep attached: /tmp/agent.log | sed 's/.*attached: //')"
	else
		not_ok "agent did not attach: $(cat /tmp/agent.log)"
	fi
}
stopped_line=
stop_agent() { # SIGTERM, wait, keep the stopped: line
	kill -TERM "$agent"
	wait "$agent"
	rc=$?
	[ $rc -eq 0 ] && ok "agent stopped cleanly on SIGTERM" || { not_ok "agent exit status $rc"; cat /tmp/agent.log; }
	stopped_line=$(grep 'stopped:' /tmp/agent.log | tail -n 1)
	echo "  $stopped_line"
}
# denied_open PATH: the open is denied (EPERM, or the opener killed).
denied_open() {
	out=$(probe open "$1" 2>&1)
	rc=$?
	if [ $sync = yes ]; then [ $rc -eq 1 ] && [ "$out" = "open $1: EPERM" ]; else [ $rc -eq 137 ] && [ -z "$out" ]; fi
}
# The syslog lines of agent PID: denials it stands for (1, or N with repeated=N,
# plus the denied= of overflow lines), and audited lines.
syslog_denials() {
	grep "enforce\[$1\]: " /var/log/messages | awk '
		/\]: denied class=/ { n = 1; for (i = 1; i <= NF; i++) if ($i ~ /^repeated=/) { sub(/repeated=/, "", $i); n = $i } s += n }
		/not logged one by one/ { for (i = 1; i <= NF; i++) if ($i ~ /^denied=/) { sub(/denied=/, "", $i); s += $i } }
		END { print s + 0 }'
}
syslog_audited() { grep "enforce\[$1\]: " /var/log/messages | grep -c 'audited class='; }
# check_totals WHAT PRODUCED: the stopped: line and syslog agree with PRODUCED denials.
check_totals() {
	what=$1 produced=$2
	d=$(field "$stopped_line" denied) a=$(field "$stopped_line" audited) x=$(field "$stopped_line" dropped)
	l=$(field "$stopped_line" logged) c=$(field "$stopped_line" coalesced) u=$(field "$stopped_line" unsent)
	[ "$a" = 0 ] && ok "$what: nothing audited in enforce mode" || not_ok "$what: audited=$a in enforce mode"
	[ "$d" = "$produced" ] && ok "$what: the kernel's denied counter ($d) = the denials the offenders saw ($produced)" ||
		not_ok "$what: the kernel counted denied=$d, the offenders saw $produced"
	[ $((l + c + x)) -eq "$d" ] && ok "$what: logged $l + coalesced $c + dropped $x = denied $d" ||
		not_ok "$what: logged $l + coalesced $c + dropped $x = $((l + c + x)), denied $d"
	[ "$u" = 0 ] || not_ok "$what: syslog did not take $u lines"
	s=$(syslog_denials "$agent")
	[ "$s" -eq $((l + c)) ] && ok "$what: syslog's lines stand for $s denials = logged + coalesced" ||
		not_ok "$what: syslog's lines stand for $s denials, logged + coalesced = $((l + c))"
	n=$(syslog_audited "$agent")
	[ "$n" = 0 ] || not_ok "$what: $n audited lines in syslog"
}

echo "reliability: expecting the $expect tier (tiers=${tiers:-all}); lsm=$(cat /sys/kernel/security/lsm)"
baseline=$(probe bpf-count)
echo "reliability: before the agent: $baseline"

# ---- 1. reload under fire ----
# Reload i: /data/toggle denied when i is odd, allowed when even; /data/churn-(i%3) denied.
reload_config() { # I
	if [ $(($1 % 2)) -eq 1 ]; then t="deny_open = /data/toggle"; else t="# /data/toggle allowed"; fi
	write_config /etc/enforce.conf "$t" "deny_open = /data/churn-$(($1 % 3))"
}
reload_config 0
start_agent /etc/enforce.conf
if [ $sync = yes ]; then
	probe open-loop /data/secret - >/tmp/looper.out &
else
	probe kill-loop /data/secret - >/tmp/looper.out &
fi
looper=$!
sleep 1
# The agent's own memory (heap and stack: RssAnon), for the flood below. VmRSS also
# counts the pages of the ring buffer it has read (a shared mapping of 2 x
# ringbuf_size, RssShmem), which come in as the consumer first reaches them: a new
# generation's whole ring may or may not be resident when a sample is taken. Seen: VmRSS 1396 -> 1912 KiB in one flood, flat
# in the next, with the 516 KiB in the anon_inode:bpf-map mapping (smaps).
agent_mem() { awk '/^RssAnon:/{print $2}' "/proc/$1/status"; }
toggle_denied=0 toggle_bad=0 failed_reloads=0
rss_reload10=$(agent_mem "$agent") # replaced after reload 10
r=1
while [ $r -le "$reloads" ]; do
	reload_config $r
	kill -HUP "$agent"
	if ! count_at_least /tmp/agent.log 'reloaded:' $r 120 $agent; then
		not_ok "reload $r: no reloaded: line within 120 s: $(grep -E 'reload (failed|refused)' /tmp/agent.log | tail -n 1)"
		failed_reloads=$((failed_reloads + 1))
		break
	fi
	# Right after the reload: the toggled rule is in force, or gone.
	if [ $((r % 2)) -eq 1 ]; then
		if denied_open /data/toggle; then toggle_denied=$((toggle_denied + 1)); else
			toggle_bad=$((toggle_bad + 1))
			echo "  reload $r added the rule on /data/toggle, and it opened"
		fi
	else
		out=$(probe open /data/toggle 2>&1)
		rc=$?
		if [ $rc -ne 0 ]; then
			toggle_bad=$((toggle_bad + 1))
			echo "  reload $r removed the rule on /data/toggle, and its open gave: rc=$rc $out"
		fi
	fi
	[ $((r % 25)) -eq 0 ] && echo "  $r reloads ($(elapsed))"
	[ $r -eq 10 ] && rss_reload10=$(agent_mem "$agent") && vmrss_reload10=$(probe rss "$agent")
	r=$((r + 1))
done
rss_reloads=$(agent_mem "$agent")
vmrss_reloads=$(probe rss "$agent")
kill -TERM "$looper"
wait "$looper"
looper_rc=$?
looper_line=$(cat /tmp/looper.out)
echo "  $looper_line"
[ $failed_reloads -eq 0 ] && ok "$reloads reloads, each reported" || not_ok "a reload was not reported"
[ $toggle_bad -eq 0 ] && ok "after each reload the toggled rule was in force or gone at once ($toggle_denied denied, $((reloads - toggle_denied)) opened)" ||
	not_ok "$toggle_bad times the toggled rule was not what the reload made it"
if [ $sync = yes ]; then
	produced=$(field "$looper_line" eperm)
	[ $looper_rc -eq 0 ] && [ "$(field "$looper_line" ok)" = 0 ] && [ "${produced:-0}" -gt 0 ] &&
		ok "the looping opener never succeeded: $produced opens, every one EPERM" ||
		not_ok "the looping opener: $looper_line"
else
	produced=$(field "$looper_line" killed)
	[ $looper_rc -eq 0 ] && [ "$(field "$looper_line" opened)" = 0 ] && [ "${produced:-0}" -gt 0 ] &&
		ok "no opener ever returned from its open: $produced openers, every one killed (each restarted one killed again)" ||
		not_ok "the killed openers: $looper_line"
fi
# Its own memory (RssAnon, as for the flood below): VmRSS also counts whatever part of
# the current generation's ring buffer happens to be resident.
[ "$rss_reloads" -le $((rss_reload10 + 64)) ] && ok "the agent's own memory after reload 10: ${rss_reload10} KiB, after reload $reloads: ${rss_reloads} KiB (RssAnon; VmRSS ${vmrss_reload10} -> ${vmrss_reloads} KiB)" ||
	not_ok "the agent's own memory grew across reloads: ${rss_reload10} KiB after reload 10, ${rss_reloads} KiB after reload $reloads (RssAnon; VmRSS ${vmrss_reload10} -> ${vmrss_reloads} KiB)"
sleep 1
stop_agent
check_totals "reload under fire" $((produced + toggle_denied))
grep -q 'reload failed\|reload refused' /tmp/agent.log && not_ok "a reload failed: $(grep -m1 'reload f\|reload r' /tmp/agent.log)"
echo "reliability: reload under fire done ($(elapsed))"

# ---- 1b. reload under fire in audit mode ----
# Nothing is denied: every open succeeds and is audited. Two generations attached
# during a reload must not both report it; the hand-over is one map update, so only an
# open in flight at that instant can be reported by neither or both (at most one per
# CPU per reload: the bound asserted here).
audit_reloads=$(param enforce_audit_reloads)
audit_reloads=${audit_reloads:-20}
if [ $sync = yes ]; then
	write_config /etc/enforce.conf
	sed -i 's/^mode = enforce/mode = audit/' /etc/enforce.conf
	start_agent /etc/enforce.conf
	probe open-loop /data/secret - >/tmp/looper.out &
	looper=$!
	sleep 1
	r=1
	while [ $r -le "$audit_reloads" ]; do
		kill -HUP "$agent"
		count_at_least /tmp/agent.log 'reloaded:' $r 120 $agent || { not_ok "audit reload $r: no reloaded: line"; break; }
		r=$((r + 1))
	done
	kill -TERM "$looper"
	wait "$looper"
	looper_line=$(cat /tmp/looper.out)
	echo "  $looper_line"
	sleep 1
	stop_agent
	opens=$(field "$looper_line" ok) a=$(field "$stopped_line" audited) d=$(field "$stopped_line" denied)
	l=$(field "$stopped_line" logged) c=$(field "$stopped_line" coalesced) x=$(field "$stopped_line" dropped)
	off=$((a - opens))
	[ $off -lt 0 ] && off=$((-off))
	[ "$d" = 0 ] && [ $off -le $((2 * audit_reloads)) ] &&
		ok "audit mode, $audit_reloads reloads: $opens opens, audited=$a (off by $off; at most 2 per reload)" ||
		not_ok "audit mode, $audit_reloads reloads: $opens opens, audited=$a denied=$d (off by $off)"
	[ $((l + c + x)) -eq "$a" ] && ok "audit mode: logged $l + coalesced $c + dropped $x = audited $a" ||
		not_ok "audit mode: logged $l + coalesced $c + dropped $x = $((l + c + x)), audited $a"
	echo "reliability: audit-mode reload under fire done ($(elapsed))"
fi

# ---- 2. a full ring buffer still denies ----
write_config /etc/enforce.conf "ringbuf_size = 4K"
start_agent /etc/enforce.conf
kill -STOP "$agent"
if [ $sync = yes ]; then
	n=25000 pids=
	for k in 1 2 3 4; do
		probe open-loop /data/secret $n >/tmp/full.$k &
		pids="$pids $!"
	done
	for p in $pids; do wait "$p"; done
	produced=0
	for k in 1 2 3 4; do
		line=$(cat /tmp/full.$k)
		e=$(field "$line" eperm)
		[ "$e" = $n ] && [ "$(field "$line" ok)" = 0 ] || not_ok "with the ring buffer full: $line"
		produced=$((produced + ${e:-0}))
	done
	[ $produced -eq $((4 * n)) ] && ok "with the agent stopped and a 4K ring buffer: $produced opens from 4 processes, every one EPERM"
else
	n=300
	probe kill-loop /data/secret $n >/tmp/full.1
	line=$(cat /tmp/full.1)
	produced=$(field "$line" killed)
	[ "$produced" = $n ] && ok "with the agent stopped and a 4K ring buffer: $n openers, every one killed" ||
		not_ok "with the ring buffer full: $line"
fi
kill -CONT "$agent"
sleep 2
stop_agent
x=$(field "$stopped_line" dropped)
[ "${x:-0}" -gt 0 ] && ok "the full ring buffer lost $x events, and counted them" || not_ok "no event was dropped: the ring buffer never filled"
check_totals "full ring buffer" "$produced"
grep -q 'events lost: the ring buffer was full' /tmp/agent.log && ok "the agent warned: $(grep -m1 'events lost' /tmp/agent.log | sed 's/.*WARN[^ ]* *//')" ||
	not_ok "no 'events lost' warning"
echo "reliability: full ring buffer done ($(elapsed))"

# ---- 3. a flood: 4 × 250,000 denied opens ----
if [ $sync = yes ]; then
	write_config /etc/enforce.conf
	start_agent /etc/enforce.conf
	sleep 1
	rss_idle=$(agent_mem "$agent")
	pids=
	for k in 1 2 3 4; do
		: >/tmp/flood.$k
		probe open-loop /data/secret "$flood" >/tmp/flood.$k &
		pids="$pids $!"
	done
	rss0= peak=0 running=yes hup=no
	while [ $running = yes ]; do
		sleep 2
		r=$(agent_mem "$agent")
		[ "$r" -gt "$peak" ] && peak=$r
		if [ $hup = no ]; then
			# A reload in the middle of the flood must be answered while it goes on.
			hup=yes
			kill -HUP "$agent"
			if count_at_least /tmp/agent.log 'reloaded:' 1 60 $agent; then
				ok "flood: a SIGHUP during the flood was answered ($(elapsed))"
			else
				not_ok "flood: a SIGHUP during the flood was not answered within 60 s"
			fi
			still=0
			for k in 1 2 3 4; do [ -s /tmp/flood.$k ] || still=$((still + 1)); done
			echo "  $still of the 4 flooding processes were still running after the reload"
			# The start of the measurement: the reload's own allocations are behind.
			rss0=$(agent_mem "$agent") peak=$rss0
		fi
		running=no # each prints its line when it ends
		for k in 1 2 3 4; do [ -s /tmp/flood.$k ] || running=yes; done
	done
	for p in $pids; do wait "$p"; done
	sleep 2
	rss1=$(agent_mem "$agent")
	produced=0
	for k in 1 2 3 4; do
		line=$(cat /tmp/flood.$k)
		e=$(field "$line" eperm)
		[ "$e" = "$flood" ] && [ "$(field "$line" ok)" = 0 ] || not_ok "flood process $k: $line"
		produced=$((produced + ${e:-0}))
	done
	[ $produced -eq $((4 * flood)) ] && ok "flood: $produced opens from 4 processes, every one EPERM ($(elapsed))"
	echo "  agent RssAnon: ${rss_idle} KiB before the flood; ${rss0} KiB at its start (after the reload), ${peak} KiB at most during, ${rss1} KiB at the end"
	[ "$rss1" -le $((rss0 + 16)) ] && [ "$peak" -le $((rss0 + 16)) ] && ok "flood: the agent's own memory stayed flat (RssAnon ${rss0} → ${rss1} KiB, peak ${peak}; VmRSS at the end $(probe rss "$agent") KiB)" ||
		not_ok "flood: the agent's own memory grew: RssAnon ${rss0} → ${rss1} KiB (peak ${peak})"
	stop_agent
	check_totals "flood" "$produced"
	echo "reliability: flood done ($(elapsed))"
fi

# ---- 4. pinning ----
# Without the key: nothing survives the agent.
write_config /etc/enforce.conf
start_agent /etc/enforce.conf
kill -KILL "$agent"
wait "$agent" 2>/dev/null
sleep 1
[ "$(probe bpf-count)" = "$baseline" ] && ok "without pin, nothing survives a SIGKILLed agent" ||
	not_ok "without pin, after SIGKILL: $(probe bpf-count) (before: $baseline)"
probe open /data/secret >/dev/null && ok "without pin, the file opens once the agent is gone" || not_ok "without pin the file is still denied"
[ ! -e /sys/fs/bpf/enforce ] || not_ok "without pin, /sys/fs/bpf/enforce exists"

pin=/sys/fs/bpf/enforce
write_config /etc/enforce.conf "pin = $pin"
start_agent /etc/enforce.conf
one_set=$(probe bpf-count)
echo "  one set attached: $one_set; pinned: $(ls -R $pin 2>&1 | tr '\n' ' ')"
grep "enforce\[$agent\]: " /var/log/messages | grep -v ' class=' | sed 's/^/  syslog: /'
enforce --check --config /etc/enforce.conf >/tmp/check.txt
grep '^pinned=' /tmp/check.txt | grep -q 'gen-' && ok "--check reports the pinned set: $(grep '^pinned=' /tmp/check.txt)" ||
	not_ok "--check does not report the pinned set: $(grep -E '^pin' /tmp/check.txt)"
kill -KILL "$agent"
wait "$agent" 2>/dev/null
sleep 1
[ "$(probe bpf-count)" = "$one_set" ] && ok "after SIGKILL the pinned set stays attached ($one_set)" ||
	not_ok "after SIGKILL: $(probe bpf-count), with the agent: $one_set"
denied_open /data/secret && ok "after SIGKILL the denied open still fails" || not_ok "after SIGKILL the file opens"
denied_open /data/secret
gap_denials=2
start_agent /etc/enforce.conf
wait_for /tmp/agent.log 'adopted:' 60 $agent && ok "the restarted agent adopted the pinned set: $(grep -m1 'adopted:' /tmp/agent.log | sed 's/.*adopted:/adopted:/')" ||
	not_ok "the restarted agent did not say it adopted the pinned set"
sleep 1
[ "$(probe bpf-count)" = "$one_set" ] && ok "after the restart exactly one set is attached ($one_set)" ||
	not_ok "after the restart: $(probe bpf-count), one set is $one_set"
gens=$(ls $pin 2>/dev/null | grep -c '^gen-')
[ "$gens" = 1 ] && ok "one generation pinned: $(ls $pin | tr '\n' ' ')" || not_ok "pinned generations: $(ls $pin 2>&1 | tr '\n' ' ')"
denied_open /data/secret && ok "the adopted policy denies" || not_ok "after the restart the file opens"
sleep 1
n=$(grep "enforce\[$agent\]: denied class=open" /var/log/messages | grep -c 'rule=')
[ "$n" -ge $((gap_denials + 1)) ] && ok "syslog has the $gap_denials denials made while no agent ran, and the new one ($n lines)" ||
	not_ok "syslog has $n denial lines from the restarted agent, wanted $((gap_denials + 1))"
stop_agent
sleep 1
[ "$(probe bpf-count)" = "$baseline" ] && ok "after SIGTERM nothing of ours is loaded ($baseline)" ||
	not_ok "after SIGTERM: $(probe bpf-count), before the agent: $baseline"
[ ! -e $pin ] && ok "after SIGTERM no pin remains ($(ls /sys/fs/bpf | tr '\n' ' '))" || not_ok "after SIGTERM: $(ls -R $pin 2>&1 | tr '\n' ' ')"
probe open /data/secret >/dev/null && ok "after SIGTERM the file opens" || not_ok "after SIGTERM the file is still denied"
echo "reliability: pinning done ($(elapsed))"

echo "reliability: $failures failure(s) in $(elapsed)"
[ $failures -eq 0 ]
