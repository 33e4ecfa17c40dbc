"""Command line: PYTHONPATH=tools python -m deploy_validate COMMAND (see --help).

Commands: k8s, compose, dockerfiles, all, render, monitoring (writes k8s/monitoring's generated
PrometheusRule and PersesDashboard).

Exit status 0 when everything validates, 1 when a problem was found, 2 on bad usage or when
kubectl (the Kustomize that renders k8s/) is not installed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deploy_validate import REPO_ROOT, bake, compose, dockerfile, k8s, monitoring, render


def _report(title: str, problems: list[str]) -> int:
    for problem in problems:
        print(f"  FAIL {problem}")
    print(f"{title}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
    return len(problems)


def run_k8s(versions: list[str] | None) -> int:
    """Render every overlay with kubectl kustomize, then schemas and the project's rules."""
    versions = versions or k8s.kubernetes_versions()
    failures = 0
    for overlay in render.overlays(k8s.K8S_DIR):
        name = overlay.relative_to(k8s.K8S_DIR.parent)
        try:
            objects = render.render(overlay)
        except render.RenderError as error:
            failures += _report(f"k8s {name}", [str(error)])
            continue
        problems = (
            render.kustomization_problems(overlay, objects)
            + k8s.schema_errors(objects, versions)
            + k8s.check_rules(objects)
        )
        title = (
            f"k8s {name}: {len(objects)} objects "
            f"(kubectl kustomize, schemas for Kubernetes {', '.join(versions)})"
        )
        failures += _report(title, problems)
    failures += _report("k8s/monitoring's generated files", monitoring.drift_problems())
    return failures


def run_compose() -> int:
    return _report(f"compose {compose.COMPOSE_FILE.relative_to(REPO_ROOT)}", compose.validate())


def run_dockerfiles() -> int:
    failures = _report("Dockerfiles and .dockerignore", dockerfile.validate())
    return failures + _report(f"bake file {bake.BAKE_FILE.name}", bake.validate())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deploy_validate", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    k8s_cmd = sub.add_parser("k8s", help="render every overlay, validate every object")
    k8s_cmd.add_argument(
        "--k8s-version", action="append", help="Kubernetes version(s) to validate against"
    )
    sub.add_parser("compose", help="docker-compose.yml: schema and rules")
    sub.add_parser("dockerfiles", help="Dockerfiles, .dockerignore and docker-bake.hcl")
    sub.add_parser("all", help="k8s, compose and dockerfiles")
    render_cmd = sub.add_parser("render", help="print an overlay's objects as YAML")
    render_cmd.add_argument("overlay", type=Path)
    sub.add_parser(
        "monitoring",
        help="write k8s/monitoring's PrometheusRule and PersesDashboard from their deploy/ sources",
    )
    args = parser.parse_args(argv)

    if args.command == "monitoring":
        for written in monitoring.write_generated():
            print(f"wrote {written}")
        return 0
    failures = 0
    try:
        if args.command == "render":
            sys.stdout.write(render.dump(render.render(args.overlay)))
            return 0
        if args.command in ("k8s", "all"):
            failures += run_k8s(getattr(args, "k8s_version", None))
    except render.KubectlMissing as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except render.RenderError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.command in ("compose", "all"):
        failures += run_compose()
    if args.command in ("dockerfiles", "all"):
        failures += run_dockerfiles()
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
