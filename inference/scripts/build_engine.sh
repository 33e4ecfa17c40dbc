#!/usr/bin/env bash
# Build the production TensorRT engine yolov8n/1/model.plan from the served ONNX.
#
# Runs on the GPU node itself (a Kubernetes init container or Job in a TensorRT image that has
# trtexec and nvidia-smi), because a plan only loads on the GPU model and TensorRT version
# that built it. A stamp next to the plan records ONNX + GPU + driver + trtexec; a rerun with
# the same stamp keeps the plan (init containers run on every pod start), FORCE=1 rebuilds.
#
# Usage: build_engine.sh MODEL_REPOSITORY [SERVED_ONNX]
#   MODEL_REPOSITORY  the trt repository (objectvision-triton repo --flavour trt ...)
#   SERVED_ONNX       default: MODEL_REPOSITORY/yolov8n/model.onnx
# Environment: MAX_BATCH (64, must equal config.pbtxt max_batch_size), OPT_BATCH (16),
#   PRECISION (fp16 | fp32), TRTEXEC (trtexec), WORKSPACE_MIB (4096), FORCE (0).
set -euo pipefail

log() { printf '%s [build_engine] %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }

repo="${1:?usage: build_engine.sh MODEL_REPOSITORY [SERVED_ONNX]}"
model_dir="${repo%/}/yolov8n"
onnx="${2:-${model_dir}/model.onnx}"
plan="${model_dir}/1/model.plan"
stamp_file="${plan}.stamp"
max_batch="${MAX_BATCH:-64}"
opt_batch="${OPT_BATCH:-16}"
precision="${PRECISION:-fp16}"
trtexec="${TRTEXEC:-trtexec}"
workspace_mib="${WORKSPACE_MIB:-4096}"

[[ -f "${onnx}" ]] || { log "served ONNX not found: ${onnx}"; exit 2; }
command -v "${trtexec}" >/dev/null || { log "trtexec not found (set TRTEXEC)"; exit 2; }
if [[ -f "${model_dir}/config.pbtxt" ]] \
    && ! grep -q "^max_batch_size: ${max_batch}\$" "${model_dir}/config.pbtxt"; then
  log "MAX_BATCH=${max_batch} differs from max_batch_size in ${model_dir}/config.pbtxt"
  exit 2
fi
mkdir -p "$(dirname "${plan}")"

gpu="$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -n1 || true)"
stamp="onnx=$(sha256sum "${onnx}" | cut -d' ' -f1) gpu=${gpu:-unknown}"
stamp+=" trtexec=$(sha256sum "$(command -v "${trtexec}")" | cut -d' ' -f1)"
stamp+=" precision=${precision} opt=${opt_batch} max=${max_batch}"
if [[ "${FORCE:-0}" != "1" && -s "${plan}" && -f "${stamp_file}" ]] \
    && [[ "$(cat "${stamp_file}")" == "${stamp}" ]]; then
  log "engine up to date for this ONNX/GPU/TensorRT: ${plan}"
  exit 0
fi

precision_flag=()
[[ "${precision}" == "fp16" ]] && precision_flag=(--fp16)
shape() { echo "images:${1}x640x640x3"; }
tmp_plan="${plan}.tmp.$$"
build_log="${plan}.build.log"
trap 'rm -f "${tmp_plan}"' EXIT

log "building ${plan} from ${onnx} on GPU '${gpu:-unknown}' (${precision}, batch 1..${max_batch}, opt ${opt_batch})"
start=$(date +%s)
# trtexec also times the engine at the opt shape after building: its throughput lands in the log.
set +e
"${trtexec}" \
  --onnx="${onnx}" \
  --saveEngine="${tmp_plan}" \
  "${precision_flag[@]}" \
  --minShapes="$(shape 1)" \
  --optShapes="$(shape "${opt_batch}")" \
  --maxShapes="$(shape "${max_batch}")" \
  --memPoolSize=workspace:"${workspace_mib}" \
  --timingCacheFile="${model_dir}/timing.cache" \
  2>&1 | tee "${build_log}" | grep --line-buffered -E \
    'RUNNING TensorRT|TensorRT version|Building engine|Engine built|Throughput|Latency: min|GPU Compute Time: min|PASSED|FAILED|ERROR|Error'
statuses=("${PIPESTATUS[@]}")
set -e
status=${statuses[0]}
if [[ ${status} -ne 0 || ! -s "${tmp_plan}" ]]; then
  log "trtexec failed (exit ${status}); full log: ${build_log}"
  exit 1
fi
mv -f "${tmp_plan}" "${plan}"
echo "${stamp}" > "${stamp_file}"
log "engine ready: ${plan} ($(du -h "${plan}" | cut -f1), $(( $(date +%s) - start )) s)"
