# Helpers for container roots made from this host's files (scripts/build-image, and the test's
# client image in Tests/containers). Sourced, not run.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# copy_libraries ROOT EXECUTABLE...: the shared libraries the executables load, and the dynamic
# loader, copied to the same paths under ROOT.
copy_libraries() {
    local root=$1 library
    shift
    for library in $(ldd "$@" 2>/dev/null | grep -o '/[^ ]*' | sort -u); do
        [ -e "$library" ] || continue
        install -D -m 0644 "$(readlink -f "$library")" "$root$library"
    done
    chmod 0755 "$root"/lib64/ld-linux-* 2>/dev/null || true
}

# base_files ROOT USER UID: what every such root needs: /etc/passwd and /etc/group with root and
# USER (UID, in its own group of the same number), name lookup from those files, a /tmp, and the
# CA certificates.
base_files() {
    local root=$1 user=$2 uid=$3
    install -d -m 0755 "$root/etc" "$root/etc/ssl/certs"
    install -d -m 1777 "$root/tmp"
    printf 'root:x:0:0:root:/root:/usr/sbin/nologin\n%s:x:%s:%s::/nonexistent:/usr/sbin/nologin\n' "$user" "$uid" "$uid" >"$root/etc/passwd"
    printf 'root:x:0:\n%s:x:%s:\n' "$user" "$uid" >"$root/etc/group"
    printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
    chmod 0644 "$root/etc/passwd" "$root/etc/group" "$root/etc/nsswitch.conf"
    install -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
}
