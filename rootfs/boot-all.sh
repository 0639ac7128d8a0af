# Sourced by rootfs/vm-test.sh and rootfs/vm-test-init.sh.
#
# boot_all TAG ARCH: boots every line of standard input, "NAME INITRD KERNEL APPEND...",
# with rootfs/vm-boot.sh (KERNEL "-" = vm-boot.sh's default x86_64 kernel), two at a
# time (ENFORCE_VM_JOBS; each boot is one host thread), prints "TAG: NAME: PASS|FAIL"
# per boot, and returns 1 if any failed.
boot_all() {
    _tag=$1 _arch=$2 _jobs=${ENFORCE_VM_JOBS:-2} _running=0
    _failures=$(mktemp -d)
    while read -r _name _initrd _kernel _append; do
        [ -n "$_name" ] || continue
        (
            if [ "$_kernel" = - ]; then set --; else set -- --kernel "$_kernel"; fi
            if "$here/vm-boot.sh" --arch "$_arch" --name "$_name" --initrd "$_initrd" "$@" \
                --append "$_append" </dev/null; then
                echo "$_tag: $_name: PASS"
            else
                echo "$_tag: $_name: FAIL" >&2
                : >"$_failures/$_name"
            fi
        ) &
        _running=$((_running + 1))
        if [ "$_running" -ge "$_jobs" ]; then
            wait
            _running=0
        fi
    done
    wait
    _failed=$(ls "$_failures")
    rm -rf "$_failures"
    [ -z "$_failed" ] || { echo "$_tag: failed:" $_failed >&2; return 1; }
    echo "$_tag: every boot passed"
}
