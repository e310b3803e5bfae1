#!/usr/bin/env bash
# Builds the Debian package into target/debian/ with cargo-deb, from the
# [package.metadata.deb] table of Cargo.toml. Extra arguments go to cargo-deb, for
# example `--profile ci` for a faster, less optimised build.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-deb >/dev/null; then
    echo "cargo-deb not found: install it with \`cargo install cargo-deb --locked\`" >&2
    exit 1
fi
cargo deb --locked "$@"
