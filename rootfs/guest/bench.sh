#!/bin/sh
# The guest side of `make bench-vm` (rootfs/bench-vm.sh), run by /init as /test/run.sh.
# Runs tests/bench-rounds.sh (here /test/bench-rounds.sh) in this boot: interleaved
# rounds of no programs, each tier's floor (/bin/floor), and the agent with one rule
# and with many per class, printing `sample ...` lines on the console for the host to
# tabulate. The kernel command line says what to run:
#   enforce_bench_tiers=T1,T2  the tiers (this boot's LSM list decides which can run)
#   enforce_bench_rounds=N     rounds
#   enforce_bench_rules=N      rules per class of the `many` configuration
#   enforce_bench_n=O,C,E      loop lengths: opens, connects, execs per sample
# Exits 0 when every round ran (the numbers are the host's to read; nothing is judged).
set -u
PATH=/bin:/sbin:/usr/bin:/usr/sbin
param() { tr ' ' '\n' </proc/cmdline | sed -n "s/^$1=//p"; }
tiers=$(param enforce_bench_tiers | tr , ' ')
rounds=$(param enforce_bench_rounds)
rules=$(param enforce_bench_rules)
n=$(param enforce_bench_n)
BENCH_N_OPEN=${n%%,*}
n=${n#*,}
BENCH_N_CONNECT=${n%%,*}
BENCH_N_EXEC=${n#*,}
# A dynamic program (the image's glibc fixture): it maps its libraries executable,
# as most programs do, so the exec loop exercises the mmap hooks too.
BENCH_EXEC=/usr/bin/dynecho
export BENCH_N_OPEN BENCH_N_CONNECT BENCH_N_EXEC BENCH_EXEC
echo "bench-vm: kernel $(uname -r); lsm $(cat /sys/kernel/security/lsm); tiers $tiers; $rounds rounds;" \
    "$rules rules; loops $BENCH_N_OPEN opens, $BENCH_N_CONNECT connects, $BENCH_N_EXEC execs"
/test/bench-rounds.sh setup /tmp/bench "$rules" || exit 1
# shellcheck disable=SC2086 # the tiers are words
/test/bench-rounds.sh rounds /tmp/bench /bin/enforce /bin/probe /bin/floor "$rounds" $tiers || exit 1
echo "bench-vm: done"
