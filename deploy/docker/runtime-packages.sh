#!/usr/bin/env bash
# Prints, one per line, the Debian/Ubuntu packages that own the shared
# libraries the given binaries load (ldd). The image's runtime stage
# installs exactly these by name, so it needs no list of versioned library
# package names that differs between distribution releases.
#   deploy/docker/runtime-packages.sh build/bin/glvq build/bin/glvq-worker
set -euo pipefail
(($#)) || { echo "usage: $0 BINARY..." >&2; exit 2; }

# dpkg records a file under the path its package ships it at; with a
# merged /usr that may be the /lib or the /usr/lib spelling of the path.
owner() {
  local path
  for path in "$1" "$(realpath "$1")" "/usr${1#/usr}" "${1#/usr}"; do
    dpkg-query -S "$path" 2>/dev/null | head -n 1 | cut -d: -f1 && return 0
  done
  echo "runtime-packages: no package owns $1" >&2
  return 1
}

ldd "$@" | awk '/=> \// { print $3 }' | sort -u | while read -r lib; do
  owner "$lib"
done | sort -u
