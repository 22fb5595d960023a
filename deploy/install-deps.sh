#!/usr/bin/env bash
# Install every Debian package mintgate needs to build, run and test.
# Idempotent and quick when everything is present: dpkg is asked first, and
# apt-get runs only for what is missing.
set -euo pipefail

PKGS=(
  # build
  build-essential cmake pkg-config clang libclang-rt-14-dev
  # libraries
  librdkafka-dev libavro-dev libhiredis-dev libevent-dev libjansson-dev
  libyaml-dev libssl-dev libcmocka-dev
  # run and test: Redis server and CLI tools, Kafka CLI client, test driver
  redis-server redis-tools kcat python3 openssl
  # the analyst report is checked by rendering it in headless Chromium
  chromium fonts-dejavu-core
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
# Debian's package starts a system redis-server on 6379; mintgate's dev stack
# and tests start their own on free ports and do not need it.
