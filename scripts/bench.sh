#!/usr/bin/env bash
# Runs the benchmarks and rewrites the measured part of docs/BENCHMARKS.md: the machine,
# the command, and the figures. The text outside the markers is kept.
#
# Run as root on a Debian machine (it installs packages, starts its own smbd and sshd on
# loopback and drops the page cache). It needs about twice the largest file size free
# under BAKFLEET_BENCH_DIR (default: target/bench).
#
#   scripts/bench.sh [--sizes-mib 1024,4096] [--repeats 3] [--keep-page-cache]
#
# The arguments go to the transfer benchmark. BAKFLEET_BENCH_CATALOGUE_ARGS holds the
# catalogue benchmark's (default: 1,000,000 backups, 20 callers, 10 requests each), and
# BAKFLEET_BENCH_FLEET_ARGS the fleet benchmark's (default: 1,000 instances with 10
# databases each, a log slot every 15 minutes; `--small` runs in seconds).
#
# BAKFLEET_BENCH_PROFILE picks the cargo profile (default `release`; `ci` reuses the test
# build and is what a shared machine can afford).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/bench.sh must run as root (it installs packages, starts smbd and sshd and drops the page cache)" >&2
    exit 1
fi

packages=(samba smbclient openssh-server openssh-client openssl coreutils procps)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

profile="${BAKFLEET_BENCH_PROFILE:-release}"
work_dir="${BAKFLEET_BENCH_DIR:-target/bench}"
mkdir -p "$work_dir"
figures="$(mktemp)"
catalogue_figures="$(mktemp)"
fleet_figures="$(mktemp)"
trap 'rm -f "$figures" "$catalogue_figures" "$fleet_figures"' EXIT
catalogue_args="${BAKFLEET_BENCH_CATALOGUE_ARGS:---backups 1000000 --clients 20 --requests 10}"
fleet_args="${BAKFLEET_BENCH_FLEET_ARGS:-}"

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
cargo bench --profile "$profile" --bench transfer -- \
    --work-dir "$work_dir" --output "$figures" "$@"
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
# shellcheck disable=SC2086 # the variable holds several arguments
cargo bench --profile "$profile" --bench catalogue -- \
    --work-dir "$work_dir" --output "$catalogue_figures" $catalogue_args
load_after_catalogue="$(cut -d' ' -f1-3 /proc/loadavg)"
# The fleet benchmark starts the simulator binary, which lives in another package.
cargo build --profile "$profile" -p mssql-sim
# shellcheck disable=SC2086 # the variable holds several arguments
cargo bench --profile "$profile" --bench fleet -- \
    --work-dir "$work_dir" --output "$fleet_figures" $fleet_args

cpu_model="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
cpu_flags="$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'sha_ni|aes|avx2|avx512f|pclmulqdq' | sort | tr '\n' ' ')"
memory="$(free -h | awk '/^Mem:/ {print $2}')"
disk="$(df -h --output=source,fstype,size,avail "$work_dir" | tail -1 | tr -s ' ')"
samba_version="$(smbd --version)"
ssh_version="$(ssh -V 2>&1)"
openssl_version="$(openssl version)"
coreutils_version="$(sha256sum --version | sed -n 1p)"

section="$(mktemp)"
{
    echo "<!-- figures:begin (written by scripts/bench.sh) -->"
    echo "## Transfer and hashing figures"
    echo
    echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') with"
    echo "\`BAKFLEET_BENCH_PROFILE=$profile BAKFLEET_BENCH_CATALOGUE_ARGS='$catalogue_args' BAKFLEET_BENCH_FLEET_ARGS='$fleet_args' scripts/bench.sh $*\`,"
    echo "git $(git rev-parse --short HEAD)."
    echo
    echo "| machine | |"
    echo "| --- | --- |"
    echo "| CPU | $cpu_model, $(nproc) cores |"
    echo "| CPU flags | $cpu_flags|"
    echo "| memory | $memory |"
    echo "| kernel | $(uname -r) |"
    echo "| disk (source, type, size, free) | $disk |"
    echo "| load average before / after transfers / after catalogue | $load_before / $load_after / $load_after_catalogue |"
    echo "| peers | $samba_version, $ssh_version |"
    echo "| tools | $openssl_version, $coreutils_version |"
    echo
    cat "$figures"
    echo
    echo "### Catalogue"
    echo
    echo "The queries-only rows time the catalogue calls each page makes (\`instances\` and"
    echo "\`fleet_overview\` for the fleet page; \`database_overview\`, \`backup_listing\` and"
    echo "\`runs_of_database\` for a database page). The whole-request rows send the pages"
    echo "through the admin site's router with a viewer's session, and \`build_plan\` times"
    echo "\`restore-plan\`."
    cat "$catalogue_figures"
    echo
    echo "### Fleet scale"
    cat "$fleet_figures"
    echo "<!-- figures:end -->"
} > "$section"

doc=docs/BENCHMARKS.md
if [ -f "$doc" ] && grep -q '<!-- figures:begin' "$doc"; then
    # Replace the old section between the markers, keep the rest.
    awk -v section="$section" '
        /<!-- figures:begin/ { while ((getline line < section) > 0) print line; skip = 1; next }
        /<!-- figures:end -->/ { skip = 0; next }
        !skip { print }
    ' "$doc" > "$doc.new"
    mv "$doc.new" "$doc"
else
    cat "$section" >> "$doc"
fi
rm -f "$section"
echo "wrote $doc"
