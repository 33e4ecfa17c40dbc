#!/usr/bin/env bash
# deploy/k8s-deploy.sh OVERLAY   (dev | prod; run from the repository root)
# Roll ObjectVision out with plain kubectl, migrations first:
#   1. the migrate Job (deleted first: a Job's pod template is immutable) with only what it
#      needs (objects labelled app.kubernetes.io/component=migrate), then wait for it;
#   2. everything else; then wait for every Deployment to finish rolling out.
# Prerequisites: namespace objectvision and Secret objectvision-secrets exist
# (docs/deployment.md). Argo CD users need none of this: the Job is a PreSync hook.
set -euo pipefail

overlay="${1:?usage: deploy/k8s-deploy.sh dev|prod}"
dir="k8s/overlays/${overlay}"
namespace="${NAMESPACE:-objectvision}"
timeout="${MIGRATE_TIMEOUT:-15m}"
[[ -d "${dir}" ]] || { echo "no overlay ${dir}" >&2; exit 2; }
log() { echo "[k8s-deploy] $(date -u +%Y-%m-%dT%H:%M:%SZ) $*"; }

kubectl get namespace "${namespace}" >/dev/null
kubectl -n "${namespace}" get secret objectvision-secrets >/dev/null

log "migrations (${dir})"
kubectl -n "${namespace}" delete job objectvision-migrate --ignore-not-found --wait=true
kubectl apply -k "${dir}" -l app.kubernetes.io/component=migrate
if ! kubectl -n "${namespace}" wait --for=condition=complete job/objectvision-migrate \
        --timeout="${timeout}"; then
    kubectl -n "${namespace}" logs job/objectvision-migrate --all-containers --tail=200 || true
    log "migrations failed: nothing else was changed"
    exit 1
fi

log "apply ${dir}"
kubectl apply -k "${dir}"
for deployment in $(kubectl -n "${namespace}" get deployments -o name); do
    # A Triton pod whose GPU product and TensorRT version are new to the engine cache builds
    # the TensorRT engine first (minutes; later pods copy it): give them longer.
    kubectl -n "${namespace}" rollout status "${deployment}" --timeout=30m
done
log "done"
