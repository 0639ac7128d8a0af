# shellcheck shell=sh
# Shared by the guest tests (run.sh, scale.sh, reliability.sh), sourced from
# /test/lib.sh: the kernel command line, TAP-style results, and run_case.
# The sourcing script sets `sync` (yes: a synchronous tier answers EPERM; no: a
# signal tier kills) before calling run_case, and exits with `failures`.
param() { tr ' ' '\n' </proc/cmdline | sed -n "s/^$1=//p"; }
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

# wait_for FILE PATTERN SECONDS: until FILE has a line with PATTERN; fails at the deadline.
wait_for() { # FILE PATTERN SECONDS
	i=0
	while ! grep -q "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt $(($3 * 10)) ] && return 1
		sleep 0.1
	done
}
