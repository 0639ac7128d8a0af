#!/bin/bash
# The per-operation table of `make bench` and `make bench-vm`, from the sample lines
# of tests/bench-rounds.sh (`sample ROUND CONFIG OP CPU WALL`): CPU time per operation
# (user+sys of the loop and its children), with the wall time's median beside it.
#
#   tests/bench-table.sh SAMPLES RULES TIER...
#
# Per tier and operation: the median ns of no programs, the tier's floor, the agent
# with one rule per class and with RULES per class, the spread (half the
# interquartile range in % of the median), and each configuration's ratio to the one
# before it as the median of the per-round ratios (the rounds are interleaved, so a
# round's configurations saw the same machine). Then the rows against the targets:
# agent/floor <= 1.03, RULES/one <= 1.01.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 SAMPLES RULES TIER..." >&2; exit 2; }
samples=$1 rules=$2
shift 2

median() { printf '%s\n' "$@" | sort -g | awk 'NF { v[++n] = $1 } END { if (n) print v[int((n + 1) / 2)]; else print "-" }'; }
rmedian() { local m; m=$(median "$@"); [ "$m" = - ] && echo - || printf '%.3f' "$m"; }
spread() {
    printf '%s\n' "$@" | sort -g | awk 'NF { v[++n] = $1 }
        END { if (n < 2) { print "-"; exit } q1 = v[int((n + 3) / 4)]; q3 = v[int((3 * n + 1) / 4)]; m = v[int((n + 1) / 2)]
              printf "%.1f%%", m ? 50 * (q3 - q1) / m : 0 }'
}
of() { awk -v c="$1" -v o="$2" '$1 == "sample" && $3 == c && $4 == o { print $5 }' "$samples"; }
wall() { awk -v c="$1" -v o="$2" '$1 == "sample" && $3 == c && $4 == o && $6 != "" { print $6 }' "$samples"; }
# Per-round ratios A/B of one operation.
paired() {
    awk -v a="$1" -v b="$2" -v o="$3" '$1 == "sample" && $4 == o { v[$2, $3] = $5; r[$2] = 1 }
        END { for (i in r) if (v[i, b] > 0 && v[i, a] != "") print v[i, a] / v[i, b] }' "$samples"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a != "-" && a != "") printf "%.3f", a / b; else print "-" }'; }

rounds=$(awk '$1 == "sample" { r[$2] = 1 } END { print length(r) }' "$samples")
echo "$rounds interleaved rounds; median CPU ns per operation, its spread, the ratio (median of"
echo "the per-round ratios of CPU time), and the median wall ns"
printf '%-16s %-18s %12s %8s %18s %12s\n' "operation" "configuration" "CPU ns" spread "ratio" "wall ns"
for t in "$@"; do
    for op in open:open+close open-near:open,beside-rule connect:connect,refused exec:fork+exec+wait; do
        o=${op%%:*} label=${op#*:}
        for c in none floor:$t one:$t many:$t; do
            s=$(of "$c" "$o")
            case $c in
            none) r="" ;;
            floor:*) r="$(rmedian $(paired "$c" none "$o")) vs none" ;;
            one:*) r="$(rmedian $(paired "$c" "floor:$t" "$o")) vs floor" ;;
            many:*) r="$(rmedian $(paired "$c" "one:$t" "$o")) vs one" ;;
            esac
            printf '%-16s %-18s %12s %8s %18s %12s\n' "$label" "$c" "$(median $s)" "$(spread $s)" "$r" "$(median $(wall "$c" "$o"))"
        done
    done
done
echo
printf '%-54s %10s %12s %8s\n' "figure" target measured ratio
for t in "$@"; do
    for o in open open-near connect exec; do
        m=$(rmedian $(paired "one:$t" "floor:$t" "$o"))
        printf '%-54s %10s %12s %8s\n' "$t: agent/floor, $o" 1.03 "$m" "$(ratio "$m" 1.03)"
        m=$(rmedian $(paired "many:$t" "one:$t" "$o"))
        printf '%-54s %10s %12s %8s\n' "$t: $rules rules/1 rule per class, $o" 1.01 "$m" "$(ratio "$m" 1.01)"
    done
done
