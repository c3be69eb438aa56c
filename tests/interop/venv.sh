# Sourced by the interop runners.
#
# ensure_interop_venv VENV IMPORTS REQUIREMENT...
#   Makes VENV a virtualenv in which `python -c "import IMPORTS"` works,
#   installing REQUIREMENTs from PyPI when it does not (a cached venv that
#   already imports them is kept as is). Concurrent test runs sharing VENV
#   are serialised with flock. When the install fails: exit 1 under CI
#   (PyPI is reachable there, so that is a failure), else exit 77 (CTest:
#   skipped), e.g. offline.
ensure_interop_venv() {
  local venv=$1 imports=$2
  shift 2
  local py="$venv/bin/python"
  mkdir -p "$(dirname "$venv")"
  exec 9>"$venv.lock"
  flock 9
  if ! "$py" -c "import $imports" 2>/dev/null; then
    if ! { python3 -m venv "$venv" &&
           "$py" -m pip install --quiet --disable-pip-version-check "$@"; }; then
      if [[ -n "${CI:-}" ]]; then
        echo "interop: cannot set up $venv with $*" >&2
        exit 1
      fi
      echo "interop: cannot set up $venv with $* (offline?); skipping" >&2
      exit 77
    fi
  fi
  flock -u 9
}

# install_python_package PY SOURCE WORK
#   Builds the package in SOURCE (python/) and installs it, without
#   dependencies (the venv has them), into WORK/site for PYTHONPATH: the
#   installed package is what is tested, and the shared venv stays as it
#   is. The build backend (setuptools) comes from the venv when it has one,
#   else from PyPI; exit as ensure_interop_venv when that fails.
install_python_package() {
  local py=$1 source=$2 work=$3
  cp -r "$source" "$work/python-src"
  rm -rf "$work/python-src/build" "$work/python-src"/*.egg-info
  local install=("$py" -m pip install --quiet --disable-pip-version-check --no-deps
                 --target "$work/site")
  if "$py" -c "import setuptools" 2>/dev/null; then
    "${install[@]}" --no-build-isolation "$work/python-src"
  elif ! "${install[@]}" "$work/python-src"; then
    if [[ -n "${CI:-}" ]]; then
      echo "interop: cannot build and install $source" >&2
      exit 1
    fi
    echo "interop: cannot build and install $source (offline?); skipping" >&2
    exit 77
  fi
}

# torch_interop_setup TOOL...
#   The common start of the runners that check glvq against PyTorch and
#   transformers: sets bin_dir ($GLVQ_BIN_DIR, which must hold every TOOL),
#   fixture ($GLVQ_FIXTURES_DIR/stories260K; exit 77 when absent), venv
#   ($GLVQ_TORCH_VENV, default <build dir>/.venv-llama, shared by all of
#   them) and py, and makes sure the venv has the tested versions.
torch_interop_setup() {
  bin_dir=${GLVQ_BIN_DIR:?set GLVQ_BIN_DIR to the build/bin directory}
  fixture=${GLVQ_FIXTURES_DIR:?set GLVQ_FIXTURES_DIR}/stories260K
  local tool
  for tool in "$@"; do
    if [[ ! -x "$bin_dir/$tool" ]]; then
      echo "interop: $bin_dir/$tool is not built (ninja $tool)" >&2
      exit 1
    fi
  done
  if [[ ! -f "$fixture/model.safetensors" ]]; then
    echo "interop: fixture $fixture not found; skipping" >&2
    exit 77
  fi
  venv=${GLVQ_TORCH_VENV:-$(dirname "$bin_dir")/.venv-llama}
  py="$venv/bin/python"
  # The tested versions.
  ensure_interop_venv "$venv" "torch, transformers, safetensors, numpy" \
    "torch==2.15.0" "transformers==5.23.0" "safetensors==0.8.0" "numpy>=1.24"
}
