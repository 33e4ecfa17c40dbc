#!/usr/bin/env bash
# Export YOLOv8n to ONNX with Ultralytics, for machines without ../shared/models.
# Needs network access (Ultralytics downloads the weights); runs in a throwaway venv so
# torch never enters the project's environments.
# Usage: export_yolov8n.sh PYTHON OUTPUT_ONNX
set -euo pipefail
python="${1:?python interpreter}"
output="${2:?output path}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$python" -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check ultralytics onnx
(cd "$work" && "$work/venv/bin/yolo" export model=yolov8n.pt format=onnx opset=17 dynamic=True)
mkdir -p "$(dirname "$output")"
cp "$work/yolov8n.onnx" "$output"
echo "exported $output"
