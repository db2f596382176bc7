#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, and only those missing.
#
# The tests start their own PostgreSQL and Redis instances on free loopback
# ports with private data directories, so the system services these packages
# ship are never needed: we keep apt from starting them, and a system cluster
# that already runs on 5432 does not get in the way either.
set -euo pipefail

# package name -> a path that proves the part we use is installed
declare -A PROBES=(
    [postgresql]="/usr/lib/postgresql/*/bin/initdb"
    [redis-server]="/usr/bin/redis-server"
    [chromium]="/usr/bin/chromium"
    [poppler-utils]="/usr/bin/pdftoppm"
    [fonts-dejavu-core]="/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    [fonts-noto-ui-core]="/usr/share/fonts/truetype/noto/NotoSansDevanagariUI-Regular.ttf"
    [fonts-wqy-microhei]="/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
    [fonts-noto-color-emoji]="/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
    [fonts-symbola]="/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf"
    [wrk]="/usr/bin/wrk"
    [iproute2]="/usr/sbin/tc /sbin/tc"
)
ORDER=(postgresql redis-server chromium poppler-utils fonts-dejavu-core fonts-noto-ui-core fonts-wqy-microhei fonts-noto-color-emoji fonts-symbola wrk iproute2)

is_installed() {
    local pkg="$1" probe
    # dpkg alone can say "installed" for a half-removed package, and a probe
    # alone can be satisfied by a hand-built binary; the probe is what the
    # tests actually run, so it has the final word.
    for probe in ${PROBES[$pkg]}; do
        [[ -e "$probe" ]] && return 0
    done
    return 1
}

missing=()
for pkg in "${ORDER[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
    echo "install-system-deps: all present (${ORDER[*]})"
    exit 0
fi

echo "install-system-deps: missing: ${missing[*]}"

if ((EUID != 0)); then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        exec sudo -n -- bash "$0" "$@"
    fi
    cat >&2 <<EOF
install-system-deps: not root and no password-less sudo, cannot install.
Please run as root:
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}
EOF
    exit 1
fi

# Package maintainer scripts call invoke-rc.d, which asks policy-rc.d whether
# a service may start; exit code 101 means "no". Only add our own when the
# machine has none, and remove exactly that one afterwards.
policy=/usr/sbin/policy-rc.d
own_policy=0
cleanup() {
    if ((own_policy)); then
        rm -f "$policy"
    fi
}
trap cleanup EXIT
if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    own_policy=1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"

still_missing=()
for pkg in "${missing[@]}"; do
    is_installed "$pkg" || still_missing+=("$pkg")
done
if ((${#still_missing[@]} > 0)); then
    echo "install-system-deps: still missing after install: ${still_missing[*]}" >&2
    exit 1
fi
echo "install-system-deps: installed ${missing[*]}"
