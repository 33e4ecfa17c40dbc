#!/usr/bin/env bash
# Build, or fetch from the engine cache, the production TensorRT engine
# yolov8n_engine/1/model.plan, and write the DALI letterbox yolov8n_preprocess/1/model.dali.
#
# Runs on the GPU node itself (Kubernetes init containers, compose's engine-build), because a
# plan only loads on the GPU product and TensorRT version that built it. The engine's ONNX is
# the plain yolov8n.onnx rewritten by add_efficient_nms.py (uint8 NHWC input, EfficientNMS).
#
# Engine cache (ENGINE_CACHE_DIR, a ReadWriteMany volume or a mounted bucket shared by every
# Triton pod): a build takes minutes of a GPU, and every pod of one GPU product and TensorRT
# version would build the same bytes, so plans are kept under
#   ENGINE_CACHE_DIR/yolov8n_engine/<GPU product>/trt-<TensorRT version>/<ONNX sha256>-<precision>-b1-<opt>-<max>/
# A pod copies the plan when it is there; otherwise it takes an exclusive flock on the entry,
# looks again (another pod may have built it meanwhile), builds, publishes with a rename (a
# reader never sees half a plan) and lets go. The lock dies with its holder, so a pod killed
# mid-build blocks nobody. Without ENGINE_CACHE_DIR the pod builds its own plan.
#
# A stamp next to the local plan records what it was built for; a rerun with the same stamp
# keeps it (init containers run on every pod start). FORCE=1 rebuilds and replaces the cache
# entry: run it once (one pod or a Job), not on every pod.
#
# Usage: build_engine.sh MODEL_REPOSITORY [PLAIN_ONNX]
#   MODEL_REPOSITORY  the trt repository (objectvision-triton repo --flavour trt ...)
#   PLAIN_ONNX        default: MODEL_REPOSITORY/yolov8n_engine/model.onnx
# Environment: STEPS ("engine dali"; the engine needs trtexec, i.e. the TensorRT image, the
#   DALI file the nvidia.dali of the Triton image that loads it, so containers may split them),
#   ENGINE_CACHE_DIR (unset: no cache), LOCK_WAIT_SECONDS (1800), MAX_BATCH (64, must equal
#   max_batch_size of both configs), OPT_BATCH (16), PRECISION (fp16 | fp32), TRTEXEC (trtexec),
#   WORKSPACE_MIB (4096), PYTHON (python3), SCRIPTS_DIR (this script's folder: where
#   add_efficient_nms.py and dali_letterbox.py are), FORCE (0).
set -euo pipefail

log() { printf '%s [build_engine] %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }

repo="${1:?usage: build_engine.sh MODEL_REPOSITORY [PLAIN_ONNX]}"
repo="${repo%/}"
engine_dir="${repo}/yolov8n_engine"
preprocess_dir="${repo}/yolov8n_preprocess"
plain="${2:-${engine_dir}/model.onnx}"
plan="${engine_dir}/1/model.plan"
stamp_file="${plan}.stamp"
build_log="${plan}.build.log"
dali_file="${preprocess_dir}/1/model.dali"
steps="${STEPS:-engine dali}"
cache_dir="${ENGINE_CACHE_DIR:-}"
lock_wait="${LOCK_WAIT_SECONDS:-1800}"
max_batch="${MAX_BATCH:-64}"
opt_batch="${OPT_BATCH:-16}"
precision="${PRECISION:-fp16}"
trtexec="${TRTEXEC:-trtexec}"
workspace_mib="${WORKSPACE_MIB:-4096}"
python="${PYTHON:-python3}"
scripts_dir="${SCRIPTS_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"
force="${FORCE:-0}"

for step in ${steps}; do
  case "${step}" in
    engine|dali) ;;
    *) log "STEPS may hold 'engine' and 'dali', not '${step}'"; exit 2 ;;
  esac
done
case "${precision}" in
  fp16|fp32) ;;
  *) log "PRECISION must be fp16 or fp32, not '${precision}'"; exit 2 ;;
esac

# The plan's batch profile and DALI's batch must cover what Triton may send each model.
check_max_batch() {
  local config="$1/config.pbtxt"
  if [[ -f "${config}" ]] && ! grep -q "^max_batch_size: ${max_batch}\$" "${config}"; then
    log "MAX_BATCH=${max_batch} differs from max_batch_size in ${config}"
    exit 2
  fi
}

work="$(mktemp -d)"
partials=()
cleanup() {
  rm -rf "${work}"
  if ((${#partials[@]})); then rm -f "${partials[@]}"; fi
}
trap cleanup EXIT

# Copy via a temporary name in the destination folder, then rename: Triton, or a second pod
# reading the cache, never sees a partial file.
install_file() {
  local source="$1" dest="$2" partial
  partial="$(dirname "${dest}")/.$(basename "${dest}").${HOSTNAME:-host}.$$"
  partials+=("${partial}")
  cp "${source}" "${partial}"
  mv -f "${partial}" "${dest}"
}

# trtexec prints "[TensorRT v100500]" on every run; a trtexec that does not falls back to its
# own checksum, which still changes with every TensorRT build.
tensorrt_version() {
  local banner
  banner="$("${trtexec}" --help 2>&1 | sed -n 's/.*\[TensorRT v\([0-9][0-9]*\)\].*/\1/p' | head -n1 || true)"
  if [[ -n "${banner}" ]]; then
    echo "${banner}"
  else
    echo "sha-$(sha256sum "$(command -v "${trtexec}")" | cut -c1-16)"
  fi
}

build_plan() {
  local onnx="$1" dest="$2" partial start status
  local precision_flag=()
  [[ "${precision}" == "fp16" ]] && precision_flag=(--fp16)
  partial="$(dirname "${dest}")/.$(basename "${dest}").${HOSTNAME:-host}.$$"
  partials+=("${partial}")
  log "building on GPU '${gpu}' (TensorRT ${trt_version}, ${precision}, batch 1..${max_batch}, opt ${opt_batch})"
  start=$(date +%s)
  # trtexec also times the engine at the opt shape after building: its throughput lands in the log.
  set +e
  "${trtexec}" \
    --onnx="${onnx}" \
    --saveEngine="${partial}" \
    "${precision_flag[@]}" \
    --minShapes="images:1x640x640x3" \
    --optShapes="images:${opt_batch}x640x640x3" \
    --maxShapes="images:${max_batch}x640x640x3" \
    --memPoolSize=workspace:"${workspace_mib}" \
    --timingCacheFile="${work}/timing.cache" \
    2>&1 | tee "${build_log}" | grep --line-buffered -E \
      'RUNNING TensorRT|TensorRT version|Building engine|Engine built|Throughput|Latency: min|GPU Compute Time: min|PASSED|FAILED|ERROR|Error'
  status=${PIPESTATUS[0]}
  set -e
  if [[ ${status} -ne 0 || ! -s "${partial}" ]]; then
    log "trtexec failed (exit ${status}); full log: ${build_log}"
    exit 1
  fi
  mv -f "${partial}" "${dest}"
  log "engine built: ${dest} ($(du -h "${dest}" | cut -f1), $(( $(date +%s) - start )) s)"
}

fetch_plan() {
  install_file "$1/model.plan" "${plan}"
  echo "${stamp}" > "${stamp_file}"
  log "engine ready from the cache: ${plan} ($1)"
}

# The cache entry of this key: fetched when present, else built under the entry's lock.
cached_engine() {
  local entry="$1" lock_fd status
  if ! mkdir -p "${entry}"; then
    log "ENGINE_CACHE_DIR ${cache_dir} is not writable here"
    exit 2
  fi
  if [[ "${force}" != "1" && -s "${entry}/model.plan" ]]; then
    fetch_plan "${entry}"
    return
  fi
  exec {lock_fd}>>"${entry}/.lock"
  local locked=0
  if ! command -v flock >/dev/null; then
    log "flock not found: building without the lock (another pod may build the same plan)"
  elif flock -w "${lock_wait}" -E 75 "${lock_fd}"; then
    locked=1
  else
    status=$?
    if [[ ${status} -eq 75 ]]; then
      # Another pod still holds the lock: exit, the kubelet restarts this init container, and
      # the next try finds that pod's plan or the lock free.
      log "another pod has been building ${entry} for over ${lock_wait} s; giving up this try"
      exit 1
    fi
    log "this filesystem refuses flock (exit ${status}): building without the lock"
  fi
  if [[ "${force}" != "1" && -s "${entry}/model.plan" ]]; then
    exec {lock_fd}>&-
    log "another pod built it while this one waited"
    fetch_plan "${entry}"
    return
  fi
  if ((locked)); then
    # What a pod killed mid-build left behind; only the lock holder can tell it is stale.
    rm -f "${entry}"/.model.plan.*
  fi
  log "not in the cache: building ${entry}"
  build_plan "${work}/engine.onnx" "${entry}/model.plan"
  echo "${stamp}" > "${work}/model.plan.stamp"
  install_file "${work}/model.plan.stamp" "${entry}/model.plan.stamp"
  install_file "${build_log}" "${entry}/build.log"
  exec {lock_fd}>&-
  log "published to the cache: ${entry}"
  fetch_plan "${entry}"
}

engine_step() {
  [[ -f "${plain}" ]] || { log "plain ONNX not found: ${plain}"; exit 2; }
  command -v "${trtexec}" >/dev/null || { log "trtexec not found (set TRTEXEC)"; exit 2; }
  [[ -f "${scripts_dir}/add_efficient_nms.py" ]] \
    || { log "add_efficient_nms.py not in ${scripts_dir} (set SCRIPTS_DIR)"; exit 2; }
  "${python}" -c 'import onnx' 2>/dev/null \
    || { log "${python} cannot import onnx, which add_efficient_nms.py needs (set PYTHON)"; exit 2; }
  check_max_batch "${engine_dir}"
  gpu="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n1 || true)"
  [[ -n "${gpu}" ]] || { log "nvidia-smi names no GPU: a plan must be built on the GPU that runs it"; exit 2; }
  mkdir -p "$(dirname "${plan}")"

  "${python}" "${scripts_dir}/add_efficient_nms.py" "${plain}" "${work}/engine.onnx"
  trt_version="$(tensorrt_version)"
  local onnx_sha gpu_key entry
  onnx_sha="$(sha256sum "${work}/engine.onnx" | cut -d' ' -f1)"
  gpu_key="$(printf '%s' "${gpu}" | tr -c 'A-Za-z0-9._-' '_')"
  stamp="gpu=${gpu} tensorrt=${trt_version} onnx=${onnx_sha} precision=${precision}"
  stamp+=" batch=1/${opt_batch}/${max_batch}"
  if [[ "${force}" != "1" && -s "${plan}" && -f "${stamp_file}" ]] \
      && [[ "$(cat "${stamp_file}")" == "${stamp}" ]]; then
    log "engine up to date for this ONNX/GPU/TensorRT: ${plan}"
    return
  fi
  if [[ -z "${cache_dir}" ]]; then
    log "no ENGINE_CACHE_DIR: building for this pod only"
    build_plan "${work}/engine.onnx" "${plan}"
    echo "${stamp}" > "${stamp_file}"
    return
  fi
  entry="${cache_dir%/}/yolov8n_engine/${gpu_key}/trt-${trt_version}"
  entry+="/${onnx_sha}-${precision}-b1-${opt_batch}-${max_batch}"
  cached_engine "${entry}"
}

dali_step() {
  check_max_batch "${preprocess_dir}"
  if [[ "${force}" != "1" && -s "${dali_file}" ]]; then
    log "DALI pipeline present: ${dali_file}"
    return
  fi
  [[ -f "${scripts_dir}/dali_letterbox.py" ]] \
    || { log "dali_letterbox.py not in ${scripts_dir} (set SCRIPTS_DIR)"; exit 2; }
  # The Triton image's own DALI, so that its DALI backend loads what this serializes.
  "${python}" -c 'import nvidia.dali' 2>/dev/null || {
    log "${python} cannot import nvidia.dali: run this step in the Triton image with"
    log "PYTHONPATH=/opt/tritonserver/backends/dali/wheel/dali"
    exit 2
  }
  mkdir -p "$(dirname "${dali_file}")"
  "${python}" "${scripts_dir}/dali_letterbox.py" "${dali_file}" --max-batch "${max_batch}"
}

for step in ${steps}; do
  "${step}_step"
done
