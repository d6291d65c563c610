#!/usr/bin/env bash
# Check the system programs the picked targets need and, on Debian as root, install what is missing.
#   deploy/local/prereqs.sh java node chromium g++ libb64      (make setup passes what the pick needs)
# The names are core/environments.py's SYSTEM:
#   java      Java 11+, TorchServe's frontend                     (Debian: openjdk-17-jre-headless)
#   node      Node 18+ with npm, the page's packages, TF.js in Node (Debian: nodejs npm)
#   chromium  the page's runtimes, run headless                   (Debian: chromium chromium-driver)
#   g++       torch.compile on CPU: TorchInductor builds C++      (Debian: g++)
#   libb64    libb64.so.0d, which NVIDIA's perf_analyzer links     (Debian: libb64-0d)
# Elsewhere it names what to install and fails. Fast when everything is there.
set -euo pipefail

missing_pkgs=()
problems=()
found=()

java_major() { java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1; }
node_major() { node --version 2>/dev/null | sed 's/^v\([0-9]*\).*/\1/'; }

for need in "$@"; do
  case "$need" in
    java)
      if ! command -v java >/dev/null || [ "$(java_major)" -lt 11 ]; then
        missing_pkgs+=(openjdk-17-jre-headless); problems+=("Java 11 or newer (TorchServe)")
      else found+=("java $(java_major)"); fi ;;
    node)
      if ! command -v node >/dev/null || ! command -v npm >/dev/null || [ "$(node_major)" -lt 18 ]; then
        missing_pkgs+=(nodejs npm); problems+=("Node.js 18 or newer with npm (the page, TF.js in Node)")
      else found+=("node $(node_major)"); fi ;;
    chromium)
      if ! command -v chromium >/dev/null; then
        missing_pkgs+=(chromium chromium-driver); problems+=("Chromium (the page's runtimes; Debian package 'chromium')")
      else found+=("$(chromium --version 2>/dev/null | head -1)"); fi ;;
    g++)
      if ! command -v g++ >/dev/null; then
        missing_pkgs+=(g++); problems+=("a C++ compiler, g++ (torch.compile's inductor on CPU: the torch-compile target)")
      else found+=("g++ $(g++ -dumpversion)"); fi ;;
    libb64)
      if ! /sbin/ldconfig -p | grep -q 'libb64[.]so[.]0d'; then
        missing_pkgs+=(libb64-0d); problems+=("libb64.so.0d (perf_analyzer, the native load generator)")
      else found+=("libb64.so.0d"); fi ;;
    *)
      echo "error: unknown system program '$need' (known: java node chromium g++ libb64)" >&2; exit 2 ;;
  esac
done

if [ ${#missing_pkgs[@]} -eq 0 ]; then
  if [ ${#found[@]} -eq 0 ]; then echo "  system programs: none needed"
  else echo "  system programs: $(printf '%s, ' "${found[@]}" | sed 's/, $//')"; fi
  exit 0
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && [ -z "${DIGITS_PREREQS_CHECKED:-}" ]; then
  echo "  installing with apt-get: ${missing_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}" >/dev/null
  DIGITS_PREREQS_CHECKED=1 exec "$0" "$@"  # check again (once), and print the versions
fi

echo "error: missing system programs:" >&2
printf '  - %s\n' "${problems[@]}" >&2
echo "install them (Debian/Ubuntu: sudo apt-get install ${missing_pkgs[*]}) and run 'make setup' again" >&2
exit 1
