#!/usr/bin/env bash
# Build the local Triton server's own virtualenv (default: .venv-triton in the repository root).
#
# Why a separate env: the main app venv uses numpy 2, but the Python backend stub of the
# tritonserver shipped in nvidia-pytriton 0.7.0 returns empty outputs with numpy 2, so the
# stub imports numpy 1.26 + onnxruntime from this env instead (see
# objectvision_inference.triton.tritonserver_command).
#
# Usage: inference/scripts/make_triton_env.sh [PYTHON] [VENV_DIR]
#   PYTHON    a CPython 3.11 with a shared libpython (default python3.11); the stub links it
#   VENV_DIR  default .venv-triton (relative to the current directory)
set -euo pipefail

python="${1:-python3.11}"
venv_dir="${2:-.venv-triton}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
requirements="${here}/../requirements-triton.txt"

echo "[make_triton_env] creating ${venv_dir} with $(${python} --version)"
"${python}" -m venv "${venv_dir}"
"${venv_dir}/bin/pip" install --disable-pip-version-check -q -r "${requirements}"

# tritonserver looks for the stub next to libtriton_python.so; the wheel ships one stub per
# Python version, so install the one matching this env's interpreter (what pytriton does itself).
site="$("${venv_dir}/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
pyver="$("${venv_dir}/bin/python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
triton_dir="${site}/pytriton/tritonserver"
cp --remove-destination "${triton_dir}/python_backend_stubs/${pyver}/triton_python_backend_stub" \
   "${triton_dir}/backends/python/triton_python_backend_stub"
chmod +x "${triton_dir}/backends/python/triton_python_backend_stub" "${triton_dir}/bin/tritonserver"

# Fail here, not at model load, if the stub cannot find libpython3.X.so (a Python built without
# --enable-shared); tritonserver_command puts the same directories on LD_LIBRARY_PATH.
libdir="$("${venv_dir}/bin/python" -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')"
missing="$(LD_LIBRARY_PATH="${site}/nvidia_pytriton.libs:${libdir}" \
  ldd "${triton_dir}/backends/python/triton_python_backend_stub" | grep 'not found' || true)"
if [[ -n "${missing}" ]]; then
  echo "[make_triton_env] the Python backend stub misses libraries:" >&2
  echo "${missing}" >&2
  exit 1
fi

"${venv_dir}/bin/python" -c 'import numpy, onnxruntime; print("[make_triton_env] numpy", numpy.__version__, "onnxruntime", onnxruntime.__version__)'
echo "[make_triton_env] tritonserver: ${triton_dir}/bin/tritonserver"
