# Shared by the project's scripts. Sourced, not run.

# need_packages PACKAGE...: installs the Debian packages that are not installed yet. Needs root
# and apt-get; otherwise says what to install and fails. The package lists are refreshed only
# when an install from them fails (a fresh container has none).
need_packages() {
    local missing=() package
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "${0##*/}: install ${missing[*]} first (apt-get install ${missing[*]})" >&2
        return 1
    fi
    echo "${0##*/}: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
        { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2; }
}

# need_tools COMMAND:PACKAGE...: installs the packages whose command (or, for an absolute path,
# file) is missing.
need_tools() {
    local packages=() pair what
    for pair in "$@"; do
        what=${pair%%:*}
        if [[ "$what" == /* ]]; then [ -e "$what" ] && continue; else command -v "$what" >/dev/null && continue; fi
        packages+=("${pair#*:}")
    done
    [ "${#packages[@]}" -eq 0 ] || need_packages "${packages[@]}"
}

# broker_version: brokerVersion in Sources/BrokerClient/Version.swift, the one version of the
# executables and the package.
broker_version() {
    sed -n 's/^package let brokerVersion = "\(.*\)"$/\1/p' "$(dirname "${BASH_SOURCE[0]}")/../Sources/BrokerClient/Version.swift"
}
