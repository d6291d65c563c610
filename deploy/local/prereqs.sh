#!/usr/bin/env bash
# Check the system programs the project needs and, on Debian as root, install what is missing.
#   Java 11+  TorchServe's frontend        (Debian: openjdk-17-jre-headless)
#   Node 18+  the TF.js demo and its tests (Debian: nodejs npm)
#   Chromium  the browser tests            (Debian: chromium chromium-driver)
#   g++       torch.compile on CPU: TorchInductor generates C++ and builds it (Debian: g++)
# Elsewhere it names what to install and fails. Fast when everything is there.
#   deploy/local/prereqs.sh --bench   only what the benchmarks' native load generator needs
#   (`make setup-bench`): Debian's libb64-0d, which NVIDIA's perf_analyzer links (benchmarks/native.py)
set -euo pipefail

missing_pkgs=()
problems=()

java_major() { java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1; }
node_major() { node --version 2>/dev/null | sed 's/^v\([0-9]*\).*/\1/'; }

if [ "${1:-}" = --bench ]; then
  if ! /sbin/ldconfig -p | grep -q 'libb64[.]so[.]0d'; then
    missing_pkgs+=(libb64-0d); problems+=("libb64.so.0d (perf_analyzer, the benchmarks' load generator)")
  fi
  if [ ${#missing_pkgs[@]} -eq 0 ]; then
    echo "  benchmark prerequisites: libb64.so.0d"
    exit 0
  fi
else
  if ! command -v java >/dev/null || [ "$(java_major)" -lt 11 ]; then
    missing_pkgs+=(openjdk-17-jre-headless); problems+=("Java 11 or newer (TorchServe)")
  fi
  if ! command -v node >/dev/null || ! command -v npm >/dev/null || [ "$(node_major)" -lt 18 ]; then
    missing_pkgs+=(nodejs npm); problems+=("Node.js 18 or newer with npm (the TF.js demo)")
  fi
  if ! command -v chromium >/dev/null; then
    missing_pkgs+=(chromium chromium-driver); problems+=("Chromium (browser tests; Debian package 'chromium')")
  fi
  if ! command -v g++ >/dev/null; then
    missing_pkgs+=(g++); problems+=("a C++ compiler, g++ (torch.compile's inductor backend on CPU: the torch-compile target)")
  fi
  if [ ${#missing_pkgs[@]} -eq 0 ]; then
    echo "  system prerequisites: java $(java_major), node $(node_major), $(chromium --version 2>/dev/null | head -1), $(g++ --version | head -1)"
    exit 0
  fi
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "  installing with apt-get: ${missing_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}" >/dev/null
  exec "$0" "$@"  # check again, and print the versions
fi

echo "error: missing system prerequisites:" >&2
printf '  - %s\n' "${problems[@]}" >&2
echo "install them (Debian/Ubuntu: sudo apt-get install ${missing_pkgs[*]}) and run 'make setup' again" >&2
exit 1
