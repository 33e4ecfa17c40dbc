# Every image ObjectVision builds, for `docker buildx bake` (BuildKit), from the repository root:
#
#   docker buildx bake -f docker-bake.hcl                  # all of them, objectvision/*:dev
#   docker buildx bake -f docker-bake.hcl k8s              # what the Kubernetes overlays run
#   REGISTRY=ghcr.io/ OBJECTVISION_TAG=0.1.0 docker buildx bake -f docker-bake.hcl k8s --push
#
# Name the file (-f): without it bake also reads docker-compose.yml and merges the two.
# Targets are named after the docker-compose.yml services that build them, and each sets the
# same Dockerfile, stage and build arguments as that service's `build:` section
# (`make compose-validate` fails when they differ). The Python images all come from
# deploy/docker/Dockerfile; only the CPU Triton, on NVIDIA's image, has its own.
# Keep values plain strings with ${VARIABLE} references: tools/deploy_validate reads this file
# statically (no Docker engine on the development machines) and refuses other expressions.

variable "REGISTRY" {
  # Prefix of every image name, with its trailing slash: "ghcr.io/" -> ghcr.io/objectvision/auth.
  default = ""
}

variable "OBJECTVISION_TAG" {
  # The same variable, and default, as docker-compose.yml's image tags.
  default = "dev"
}

variable "MODEL_DIR" {
  # The folder holding yolov8n.onnx (not in git), model-prep's named build context "models".
  default = "../shared/models"
}

group "default" {
  targets = ["gateway", "auth-service", "detection-service", "notification-service", "migrate", "model-prep", "triton-cpu"]
}

# The images the Kubernetes overlays run (k8s/base; triton-cpu in the dev overlay). Kubernetes
# migrates from the service images, so it needs no migrate image.
group "k8s" {
  targets = ["gateway", "auth-service", "detection-service", "notification-service", "model-prep", "triton-cpu"]
}

target "_python" {
  context    = "."
  dockerfile = "deploy/docker/Dockerfile"
}

target "gateway" {
  inherits = ["_python"]
  target   = "service"
  args = {
    PACKAGES         = "objectvision-gateway"
    COMMAND          = "objectvision-gateway"
    HEALTHCHECK_ARGS = "http --port-env GATEWAY_PORT --default-port 8000 --path /health"
    PORTS            = "8000 9100"
  }
  tags = ["${REGISTRY}objectvision/gateway:${OBJECTVISION_TAG}"]
}

target "auth-service" {
  inherits = ["_python"]
  target   = "service"
  args = {
    PACKAGES         = "objectvision-auth"
    COMMAND          = "objectvision-auth"
    HEALTHCHECK_ARGS = "grpc --port-env AUTH_GRPC_PORT --default-port 50051"
    PORTS            = "50051 9101"
  }
  tags = ["${REGISTRY}objectvision/auth:${OBJECTVISION_TAG}"]
}

target "detection-service" {
  inherits = ["_python"]
  target   = "service"
  args = {
    PACKAGES         = "objectvision-detection"
    COMMAND          = "objectvision-detection"
    HEALTHCHECK_ARGS = "grpc --port-env DETECTION_GRPC_PORT --default-port 50052"
    PORTS            = "50052 9102"
  }
  tags = ["${REGISTRY}objectvision/detection:${OBJECTVISION_TAG}"]
}

target "notification-service" {
  inherits = ["_python"]
  target   = "service"
  args = {
    PACKAGES         = "objectvision-notification"
    COMMAND          = "objectvision-notification"
    HEALTHCHECK_ARGS = "grpc --port-env NOTIFICATION_GRPC_PORT --default-port 50053"
    PORTS            = "50053 9103"
  }
  tags = ["${REGISTRY}objectvision/notification:${OBJECTVISION_TAG}"]
}

target "migrate" {
  inherits = ["_python"]
  target   = "migrate"
  args = {
    PACKAGES = "objectvision-auth objectvision-detection objectvision-notification"
  }
  tags = ["${REGISTRY}objectvision/migrate:${OBJECTVISION_TAG}"]
}

target "model-prep" {
  inherits = ["_python"]
  target   = "model-prep"
  args = {
    PACKAGES = "objectvision-inference"
  }
  contexts = {
    models = "${MODEL_DIR}"
  }
  tags = ["${REGISTRY}objectvision/model-prep:${OBJECTVISION_TAG}"]
}

target "triton-cpu" {
  context    = "."
  dockerfile = "deploy/triton-cpu/Dockerfile"
  tags       = ["${REGISTRY}objectvision/triton-cpu:${OBJECTVISION_TAG}"]
}
