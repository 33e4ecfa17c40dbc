# ObjectVision: every command a developer or CI needs. A fresh machine needs only
# Python 3.11 and make; everything else is installed here, into .venv-tools/ and .venv/.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV := .venv-tools/bin/uv
UV_VERSION := 0.13.9
TRITON_VENV := .venv-triton
# PyTorch side env for the native YOLOv8n (torch is not in the workspace lock: it is large and
# only the GPU flavour needs it). pip takes the CPU wheel from /opt/wheels where it exists.
TORCH_VENV := .venv-torch
TORCH_VERSION := 2.13.0
TORCH_WHEELS ?= /opt/wheels
MODEL_DIR ?= ../shared/models
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
export OBJECTVISION_DATA_DIR ?= $(CURDIR)/.data

PROTOS := $(wildcard proto/objectvision/v1/*.proto)
STUBS_DIR := common/src

.PHONY: help install proto model triton-env run test test-slow lint format bench clean \
	k8s-validate compose-validate bench-quick torch-env test-torch gpu-kit gpu-dry-run rules-check \
	monitoring-rules screenshots trace-screenshots dashboard-screenshot counting-frame typecheck

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(UV):
	$(PYTHON) -m venv .venv-tools
	.venv-tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.installed: $(UV) uv.lock pyproject.toml $(wildcard */pyproject.toml)
	$(UV) sync --frozen --all-packages
	touch $@

install: $(VENV)/.installed ## Install every service and the dev tools into .venv

$(TRITON_VENV)/.installed: inference/requirements-triton.txt
	bash inference/scripts/make_triton_env.sh $(PYTHON) $(TRITON_VENV)
	touch $@

triton-env: $(TRITON_VENV)/.installed ## Triton's own environment (numpy 1.x for its Python backend)

$(TORCH_VENV)/.installed:
	$(PYTHON) -m venv $(TORCH_VENV)
	$(TORCH_VENV)/bin/pip install --quiet --disable-pip-version-check \
		$$(if [ -d "$(TORCH_WHEELS)" ]; then echo --find-links "$(TORCH_WHEELS)"; fi) \
		torch==$(TORCH_VERSION) numpy==2.4.6 onnx==1.23.2 onnxruntime==1.32.0 \
		opencv-python-headless==5.0.0.93 pillow==12.1.0 pytest==9.2.0 \
		grpcio==1.85.3 prometheus-client==0.26.0 psutil==7.2.2
	touch $@

# The GPU box's Python on this CPU: torch and what bench/gpu.sh finds there (grpcio, psutil,
# prometheus_client) beside the test tools; `make gpu-dry-run` runs the device script in it.
torch-env: $(TORCH_VENV)/.installed ## PyTorch (CPU) env for the native YOLOv8n tests and the GPU dry run

test-torch: torch-env ## Native PyTorch YOLOv8n == the served ONNX graph, on the CPU
	PYTHONPATH=inference/src $(TORCH_VENV)/bin/pytest -q -p no:cacheprovider -c /dev/null \
		--rootdir=inference --confcutdir=inference inference/tests/test_torch_yolo.py \
		inference/tests/test_torch_pipeline.py

proto: install ## Regenerate the gRPC stubs from proto/ (messages and services typed: _pb2.pyi, _pb2_grpc.pyi)
	$(BIN)/python -m grpc_tools.protoc -Iproto --python_out=$(STUBS_DIR) \
		--grpc_python_out=$(STUBS_DIR) --pyi_out=$(STUBS_DIR) \
		--plugin=protoc-gen-mypy_grpc=$(BIN)/protoc-gen-mypy_grpc --mypy_grpc_out=$(STUBS_DIR) \
		$(PROTOS)

model: install ## Put the served models in place (MODEL_PATH, else ../shared/models, else export; int8 from MODEL_INT8_PATH)
	@source="$${MODEL_PATH:-$(MODEL_DIR)/yolov8n.onnx}"; \
	if [ ! -f "$$source" ]; then \
		echo "No model at $$source: exporting YOLOv8n with Ultralytics (needs network)"; \
		source="$(OBJECTVISION_DATA_DIR)/models/yolov8n.onnx"; \
		bash inference/scripts/export_yolov8n.sh "$(PYTHON)" "$$source" || exit 1; \
	fi; \
	$(BIN)/objectvision-prepare-model --source "$$source" \
		--output "$(OBJECTVISION_DATA_DIR)/models/yolov8n_served.onnx" || exit 1; \
	int8="$${MODEL_INT8_PATH:-$(MODEL_DIR)/yolov8n_int8.onnx}"; \
	if [ -f "$$int8" ]; then \
		$(BIN)/objectvision-prepare-model --source "$$int8" \
			--output "$(OBJECTVISION_DATA_DIR)/models/yolov8n-int8_served.onnx" || exit 1; \
	else echo "No int8 model at $$int8: serving yolov8n only"; fi

run: install triton-env model ## Start the whole system on this machine (Ctrl-C stops it)
	$(BIN)/objectvision-dev run

screenshots: install ## Retake docs/console*.png with headless Chromium from the running system (`make run` in another shell)
	$(BIN)/python tools/generate_console_palette.py --check
	$(BIN)/python tools/console_screenshots.py

trace-screenshots: install triton-env model ## Retake docs/trace-*.png (a detect and a batch-job trace in the Jaeger UI, from a traced system of its own); needs a jaeger-ui build at JAEGER_UI_DIR (see tools/trace_screenshots.py)
	$(BIN)/python tools/trace_screenshots.py --jaeger-ui "$(JAEGER_UI_DIR)"

counting-frame: install triton-env model ## Retake docs/video-counting.png (a frame of a real video job's annotated video, with track ids and a counting line; a system of its own)
	$(BIN)/python tools/counting_frame.py

dashboard-screenshot: install triton-env model rules-check ## Retake docs/dashboard.png (the Perses dashboard over a loaded system of its own; npm builds tools/dashboard_viewer)
	npm ci --prefix tools/dashboard_viewer --no-audit --no-fund
	npm run build --prefix tools/dashboard_viewer
	$(BIN)/python tools/dashboard_screenshot.py

# mypy, configured in pyproject.toml [tool.mypy], over the packages named here (bench without its
# tests, as every other package): each passes it.
TYPECHECKED := common/src auth-service/src devstack/src client/src notification-service/src gateway/src inference/src detection-service/src bench --exclude bench/tests

typecheck: install ## mypy over the packages in TYPECHECKED
	$(BIN)/mypy $(TYPECHECKED)

lint: install rules-check typecheck ## ruff, mypy, the stubs must match proto/, promtool on the Prometheus rules
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Prometheus' own checker (Debian package `prometheus`, installed here when missing and apt-get
# can: a fresh machine gets it like everything else): the rules parse, and every alert behaves as
# deploy/prometheus-rules.test.yml says. tests/test_monitoring.py runs the same package's server.
PROMTOOL ?= promtool
rules-check: ## promtool check + unit tests of deploy/prometheus-rules.yml
	@command -v $(PROMTOOL) >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
				--no-install-recommends prometheus >/dev/null; \
		fi; }
	@command -v $(PROMTOOL) >/dev/null || { \
		echo "$(PROMTOOL) not found: install Debian's prometheus package (apt-get install prometheus)"; \
		exit 1; }
	$(PROMTOOL) check rules deploy/prometheus-rules.yml
	$(PROMTOOL) test rules deploy/prometheus-rules.test.yml

monitoring-rules: install ## k8s/monitoring's PrometheusRule and PersesDashboard from deploy/prometheus-rules.yml and deploy/perses
	$(DEPLOY_VALIDATE) monitoring

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

DEPLOY_VALIDATE := PYTHONPATH=tools $(BIN)/python -m deploy_validate

# Renders with `kubectl kustomize` (Kustomize ships inside kubectl; no renderer of our own):
# without kubectl it stops with exit status 2 and says what to install.
k8s-validate: install ## Render every k8s overlay with kubectl kustomize, validate every object offline
	$(DEPLOY_VALIDATE) k8s

compose-validate: install ## docker-compose.yml (compose-spec schema + rules), the Dockerfiles, docker-bake.hcl, .dockerignore
	$(DEPLOY_VALIDATE) compose
	$(DEPLOY_VALIDATE) dockerfiles

# The main tier in TEST_WORKERS processes, a test file each at a time: each worker starts its
# own embedded PostgreSQL, Redis, Triton and stacks, so their tests never meet. On 2 cores one
# process kept one core busy on average (17 min); two take 6.5 to 11 (clean clones on
# 2026-12-07, a quiet machine and a busy one), and three no less than two: CPU-bound. TEST_WORKERS=0: one process (as with
# DATABASE_URL/REDIS_URL naming one external server the workers would share).
TEST_WORKERS ?= 2

test: install triton-env model lint k8s-validate compose-validate ## The whole suite against real PostgreSQL, Redis and Triton
	$(BIN)/pytest -m "not slow" -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile

test-slow: install triton-env model torch-env ## Fault-injection and load tests, and the PyTorch model
	$(BIN)/pytest -m slow -p no:cacheprovider
	$(MAKE) test-torch

bench: install triton-env model ## Benchmark every layer on this machine (< 10 min); bench/results/latest.{json,md,png}
	$(BIN)/python -m bench

bench-quick: install triton-env model ## Same, fewer points and short windows (< 2 min)
	$(BIN)/python -m bench --quick

gpu-kit: install ## Fill .gpu/ with what bench/gpu.sh carries to a GPU box (model, images, Triton, client)
	$(BIN)/python -m bench.gpu_kit

# Device time is scarce: a script that fails there wastes a lease. This runs every step of it
# here first (fp32, no CUDA graphs or nvJPEG), from a kit built for this machine's Python.
gpu-dry-run: install torch-env ## bench/gpu.sh on this CPU, end to end, before spending device time
	$(BIN)/python -m bench.gpu_kit --out .gpu-cpu \
		--python-version $$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
	CPU_DRY_RUN=1 PYTHON=$(TORCH_VENV)/bin/python KIT=.gpu-cpu OUT=$${OUT:-$$(mktemp -d)} \
		bash bench/gpu.sh

clean:
	rm -rf $(VENV) $(TRITON_VENV) $(TORCH_VENV) .venv-tools tools/dashboard_viewer/node_modules tools/dashboard_viewer/dist
