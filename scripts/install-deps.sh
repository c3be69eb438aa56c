#!/usr/bin/env bash
# Installs every Debian package glvq needs to build and test (idempotent).
# CUDA is not installed here: it comes with the machine under /usr/local/cuda.
# Usage: scripts/install-deps.sh [--with-services]
#   --with-services also installs the real servers some integration tests start.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git python3 python3-venv
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libeigen3-dev libyaml-cpp-dev prometheus-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libcli11-dev
  libonig-dev libicu-dev  # common/text: tokenizer.json split patterns, Unicode normal forms
  openssl  # tests/integration/security_test.cc makes its certificates
)
# --with-services: the real servers that some tests start (CI installs them).
services=(
  munge slurmctld slurmd slurm-client  # tests/slurm: deploy/slurm/glvq.sbatch on a real Slurm
  prometheus  # tests/integration/prometheus_test.cc: scrapes a coordinator and a worker
)
[[ "${1:-}" == --with-services ]] && packages+=("${services[@]}")

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all packages present"
fi
