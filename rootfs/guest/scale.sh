#!/bin/sh
# The capacity test (rootfs/vm-test.sh, boot `scale`), run by /init as /test/run.sh:
# a policy of 10,000 rules per class — the capacity of each class — in every tier of
# the ladder, one agent at a time (`tiers = T`). In each, the last rule of each list
# is denied (open, exec, connect), and so is one from the middle, while a file, a
# program and a destination that no rule names are not. The kernel command line has
# bpf in lsm=, so all four tiers can run.
# Exits 0 only when every case passed; /init turns that into the result marker.
set -u
PATH=/bin:/sbin:/usr/bin:/usr/sbin
. /test/lib.sh
N=10000
echo "scale: $N rules per class; lsm=$(cat /sys/kernel/security/lsm)"
# N files per file class, the last exec one a real program; controls nobody denies.
mkdir -p /scale/open /scale/exec
(cd /scale/open && seq 1 $N | xargs touch)
(cd /scale/exec && seq 1 $N | xargs touch && seq 1 $N | xargs chmod 755)
cp /bin/probe /scale/exec/$N
cp /bin/probe /scale/exec/5000
echo allowed >/scale/allowed
cp /bin/probe /scale/allowed-tool
for l in "127.0.0.2 8080" "127.0.0.2 8081" "127.0.0.3 8080"; do
	probe listen $l &
done
sleep 0.5

write_config() { # TIER
	{
		echo "tiers = $1"
		echo "syslog_ident = enforce"
		awk -v n=$N 'BEGIN {
			for (i = 1; i <= n; i++) print "deny_open = /scale/open/" i
			for (i = 1; i <= n; i++) print "deny_exec = /scale/exec/" i
			# n - 1 networks spread over IPv4 (never 127/8) and IPv6, distinct, then
			# one in the middle of the list and one at its end on loopback.
			srand(7)
			while (count < n - 1) {
				if (count == n / 2) { print "deny_connect = 127.0.0.2/32:8081"; count++; continue }
				if (count % 4 == 3) {
					printf "deny_connect = [2001:db8:%x:%x::/64]:%d\n", int(rand() * 65536), count, 1 + int(rand() * 65535)
					count++; continue
				}
				a = int(rand() * 256); if (a == 127 || a == 0) continue
				len = 12 + int(rand() * 21)
				v = a * 16777216 + int(rand() * 16777216)
				m = 1; for (j = len; j < 32; j++) m *= 2; v = int(v / m) * m
				key = v "/" len
				if (key in seen) continue
				seen[key] = 1; count++
				printf "deny_connect = %d.%d.%d.%d/%d\n", int(v / 16777216), int(v / 65536) % 256, int(v / 256) % 256, v % 256, len
			}
			print "deny_connect = 127.0.0.2/32:8080"
		}'
	} >/etc/enforce.conf
}

baseline=$(probe bpf-count)
for tier in lsm fmodret kprobe tracepoint; do
	case $tier in
	lsm | fmodret) sync=yes posture=ENFORCE ;;
	*) sync=no posture=ENFORCE_SIGNAL ;;
	esac
	write_config $tier
	echo "scale: $tier: $(grep -c '^deny_open' /etc/enforce.conf) open, $(grep -c '^deny_exec' /etc/enforce.conf) exec," \
		"$(grep -c '^deny_connect' /etc/enforce.conf) connect rules, $(wc -c </etc/enforce.conf) bytes"
	# Emptied first: the background shell truncates it only once it runs, and until
	# then wait_for could read the previous tier's 'attached:' line.
	: >/tmp/agent.log
	enforce >/tmp/agent.log 2>&1 &
	agent=$!
	if ! wait_for /tmp/agent.log 'attached:' 300; then
		not_ok "$tier: the agent attached"
		cat /tmp/agent.log
		kill $agent 2>/dev/null
		wait $agent
		continue
	fi
	line=$(grep -m1 'attached:' /tmp/agent.log)
	echo "scale: $tier: ${line#*attached: }"
	case $line in
	*"posture=$posture tier.open=$tier tier.exec=$tier tier.connect=$tier "*"rules open=$N exec=$N connect=$N "*) ok "$tier: attached with $N rules per class" ;;
	*) not_ok "$tier: attached line: $line" ;;
	esac
	run_case "$tier: open the last deny_open file" denied probe open /scale/open/$N
	run_case "$tier: open a deny_open file from the middle" denied probe open /scale/open/5000
	run_case "$tier: open a file no rule names" ok probe open /scale/allowed
	# The denied programs would print "sleep-exit: 0" if they ran.
	run_case "$tier: exec the last deny_exec program" denied probe exec /scale/exec/$N sleep-exit 0
	run_case "$tier: exec a deny_exec program from the middle" denied probe exec /scale/exec/5000 sleep-exit 0
	run_case "$tier: exec a program no rule names" ok probe exec /scale/allowed-tool sleep-exit 0
	run_case "$tier: connect to the last deny_connect destination" denied probe connect 127.0.0.2 8080
	run_case "$tier: connect to a deny_connect destination from the middle" denied probe connect 127.0.0.2 8081
	run_case "$tier: connect to a destination no rule names" ok probe connect 127.0.0.3 8080
	kill -TERM $agent
	wait $agent
	rc=$?
	stopped=$(grep -o 'stopped: .*' /tmp/agent.log)
	case "$rc $stopped" in
	"0 stopped: denied=6 "*) ok "$tier: stopped cleanly, 6 denials counted" ;;
	*) not_ok "$tier: stop: rc=$rc, $stopped"; tail -5 /tmp/agent.log ;;
	esac
	left=$(probe bpf-count)
	[ "$left" = "$baseline" ] && ok "$tier: nothing left loaded" || not_ok "$tier: left loaded: $left, before: $baseline"
done
echo "scale: $failures failure(s)"
[ $failures -eq 0 ]
