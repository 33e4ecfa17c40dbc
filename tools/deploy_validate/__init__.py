"""Offline validation of ObjectVision's deployment files.

* ``kustomize``: renders ``k8s/overlays/*`` with ``kubectl kustomize`` when kubectl is on PATH,
  else with a small Python renderer of the Kustomize subset this repository uses
  (``kustomize.SUPPORTED_FIELDS``); the tests check both give the same objects.
* ``kubernetes``: every rendered object against the Kubernetes JSON schemas shipped in the
  ``kubernetes-validate`` wheel (strict: unknown fields fail), CRDs against schemas vendored
  in ``schemas/``, then the project's own rules (non-root, probes, resources, references).
* ``compose``: ``docker-compose.yml`` against the compose-spec JSON schema vendored in the
  ``check-jsonschema`` wheel, after variable interpolation from ``deploy/compose.env.example``,
  then the project's rules (health checks, depends_on conditions, migrate, GPU, profiles).
* ``dockerfiles``: the service Dockerfiles and ``.dockerignore`` (multi-stage, non-root,
  HEALTHCHECK, no secrets in ENV/ARG, every COPY source present and not ignored).

Nothing here touches the network or a Docker engine.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
