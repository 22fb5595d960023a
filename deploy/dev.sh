#!/usr/bin/env bash
# One command for a newcomer: install the Debian packages, build mintgate,
# and run `mintgate dev` (embedded broker + local redis-server + demo
# traffic). Extra arguments go to `mintgate dev`.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target mintgate
exec ./build/mintgate dev "$@"
