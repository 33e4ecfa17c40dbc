"""Offline validation of ObjectVision's deployment files.

* ``render``: renders ``k8s/overlays/*`` with ``kubectl kustomize`` (the Kustomize kubectl
  carries; no renderer of our own), then checks what Kustomize accepts silently but we do not.
* ``kubernetes``: every rendered object against the Kubernetes JSON schemas shipped in the
  ``kubernetes-validate`` wheel (strict: unknown fields fail), CRDs against schemas vendored
  in ``schemas/``, then the project's own rules (non-root, probes, resources, references).
* ``compose``: ``docker-compose.yml`` against the compose-spec JSON schema vendored in the
  ``check-jsonschema`` wheel, after variable interpolation from ``deploy/compose.env.example``,
  then the project's rules (health checks, depends_on conditions, migrate, GPU, profiles).
* ``dockerfiles``: ``deploy/docker/Dockerfile`` (every Python image), the CPU Triton's and
  ``.dockerignore`` (multi-stage, non-root, HEALTHCHECK, no secrets in ENV/ARG, every COPY
  source present and not ignored).
* ``bake``: ``docker-bake.hcl``, read with a real HCL parser: every image's Dockerfile stage
  and build arguments, the same as docker-compose.yml's ``build:`` sections, the images the
  Kubernetes manifests run.

Nothing here touches the network or a Docker engine.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
