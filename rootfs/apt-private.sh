# Sourced by rootfs/fetch-kernel.sh, rootfs/fetch-arm64.sh and rootfs/fetch-armhf.sh:
# a private APT setup (its own lists, cache and sources under the VM cache) that
# reaches a Debian suite or architecture the system's sources do not name, without
# touching the system's dpkg or apt state.
#
# The caller sets apt_dir (the setup's directory), apt_arch (amd64, arm64, ...) and
# apt_sources (the sources.list lines), and defines log and die.

# apt_private apt-get|apt-cache ARGS...: the tool, on the private index only.
apt_private() {
    tool=$1
    shift
    "$tool" -q -o APT::Architecture="$apt_arch" -o APT::Architectures::="$apt_arch" \
        -o Dir::State="$apt_dir/state" -o Dir::State::Lists="$apt_dir/lists" \
        -o Dir::State::status=/dev/null -o Dir::Cache="$apt_dir/cache" \
        -o Dir::Etc::SourceList="$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null \
        -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null \
        -o Dir::Etc::Parts="$apt_dir/no-parts" -o APT::Sandbox::User=root "$@"
}
# apt_ready [--refresh]: the private index, fetched once (again with --refresh).
apt_ready() {
    [ -s "$apt_dir/updated" ] && [ "${1:-}" != --refresh ] && return 0
    # no-parts: none of the system's apt.conf.d hooks (packagekit's failed updates
    # here now and then; appstream adds metadata nobody here reads).
    mkdir -p "$apt_dir/state" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/no-parts"
    printf '%s\n' "$apt_sources" >"$apt_dir/sources.list"
    apt_private apt-get update >&2 || apt_private apt-get update >&2 ||
        die "apt-get update of the private $apt_arch index failed (twice)"
    date >"$apt_dir/updated"
}
# download PACKAGE DIR: the .deb of PACKAGE into DIR (cached); prints its path.
download() {
    deb=$(ls "$2/$1"_*.deb 2>/dev/null | tail -n 1 || true)
    if [ -z "$deb" ]; then
        mkdir -p "$2"
        tmp=$(mktemp -d "$2/.dl.XXXXXX")
        # A kept index can name a .deb the mirror has since dropped: refresh once.
        (cd "$tmp" && apt_private apt-get download "$1" >&2) ||
            { apt_ready --refresh && (cd "$tmp" && apt_private apt-get download "$1" >&2); } ||
            { rm -rf "$tmp"; die "apt-get download $1 failed"; }
        mv "$tmp"/*.deb "$2/"
        rmdir "$tmp"
        deb=$(ls "$2/$1"_*.deb | tail -n 1)
    fi
    echo "$deb"
}
# newest PATTERN SUITE: the newest kernel package whose name matches PATTERN (a grep -E
# regex) and that SUITE (e.g. bookworm-backports) carries; any suite when SUITE is "".
newest() {
    apt_private apt-cache pkgnames linux-image- | grep -E "^$1\$" | sort -rV | while read -r name; do
        if [ -z "$2" ] || apt_private apt-cache madison "$name" | grep -q " $2/"; then
            echo "$name"
            break
        fi
    done
}
