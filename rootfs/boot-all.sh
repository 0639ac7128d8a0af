# Sourced by rootfs/vm-test.sh and rootfs/vm-test-init.sh.
#
# boot_all TAG ARCH: boots every line of standard input, "NAME INITRD KERNEL APPEND...",
# with rootfs/vm-boot.sh (KERNEL "-" = vm-boot.sh's default x86_64 kernel), prints
# "TAG: NAME: PASS|FAIL" per boot, and returns 1 if any failed.
boot_all() {
    _tag=$1 _arch=$2 _failed=
    while read -r _name _initrd _kernel _append; do
        [ -n "$_name" ] || continue
        if [ "$_kernel" = - ]; then set --; else set -- --kernel "$_kernel"; fi
        if "$here/vm-boot.sh" --arch "$_arch" --name "$_name" --initrd "$_initrd" "$@" \
            --append "$_append" </dev/null; then
            echo "$_tag: $_name: PASS"
        else
            echo "$_tag: $_name: FAIL" >&2
            _failed="$_failed $_name"
        fi
    done
    [ -z "$_failed" ] || { echo "$_tag: failed:$_failed" >&2; return 1; }
    echo "$_tag: every boot passed"
}
