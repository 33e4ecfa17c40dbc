"""Command line: PYTHONPATH=tools python -m deploy_validate COMMAND (see --help).

Commands: k8s, compose, dockerfiles, all, render, prometheus-rule (writes the PrometheusRule).

Exit status 0 when everything validates, 1 when a problem was found, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deploy_validate import REPO_ROOT, compose, dockerfile, k8s, kustomize, monitoring


def _report(title: str, problems: list[str]) -> int:
    for problem in problems:
        print(f"  FAIL {problem}")
    print(f"{title}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
    return len(problems)


def run_k8s(renderer: str, versions: list[str] | None) -> int:
    versions = versions or k8s.kubernetes_versions()
    failures = 0
    for overlay in kustomize.overlays(k8s.K8S_DIR):
        used, objects = kustomize.render(overlay, renderer)
        problems = k8s.schema_errors(objects, versions) + k8s.check_rules(objects)
        if used == "kubectl" and renderer == "auto":
            # Keep the fallback honest: the Python renderer must give the same objects.
            python_objects = kustomize.render_python(overlay)
            problems += kustomize.differences(objects, python_objects)
        title = (
            f"k8s {overlay.relative_to(REPO_ROOT)}: {len(objects)} objects "
            f"(rendered with {used}, schemas for Kubernetes {', '.join(versions)})"
        )
        failures += _report(title, problems)
    rule_file = monitoring.PROMETHEUS_RULE_FILE.relative_to(REPO_ROOT)
    failures += _report(f"PrometheusRule {rule_file}", monitoring.drift_problems())
    return failures


def run_compose() -> int:
    return _report(f"compose {compose.COMPOSE_FILE.relative_to(REPO_ROOT)}", compose.validate())


def run_dockerfiles() -> int:
    return _report("Dockerfiles and .dockerignore", dockerfile.validate())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deploy_validate", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    k8s_cmd = sub.add_parser("k8s", help="render every overlay, validate every object")
    k8s_cmd.add_argument("--renderer", choices=["auto", "kubectl", "python"], default="auto")
    k8s_cmd.add_argument(
        "--k8s-version", action="append", help="Kubernetes version(s) to validate against"
    )
    sub.add_parser("compose", help="docker-compose.yml: schema and rules")
    sub.add_parser("dockerfiles", help="Dockerfiles and .dockerignore")
    all_cmd = sub.add_parser("all", help="k8s, compose and dockerfiles")
    all_cmd.add_argument("--renderer", choices=["auto", "kubectl", "python"], default="auto")
    render_cmd = sub.add_parser("render", help="print an overlay's objects as YAML")
    render_cmd.add_argument("overlay", type=Path)
    render_cmd.add_argument("--renderer", choices=["auto", "kubectl", "python"], default="python")
    sub.add_parser(
        "prometheus-rule",
        help="write k8s/monitoring/prometheus-rules.yaml from deploy/prometheus-rules.yml",
    )
    args = parser.parse_args(argv)

    if args.command == "prometheus-rule":
        monitoring.write_prometheus_rule()
        print(f"wrote {monitoring.PROMETHEUS_RULE_FILE.relative_to(REPO_ROOT)}")
        return 0
    if args.command == "render":
        _, objects = kustomize.render(args.overlay, args.renderer)
        sys.stdout.write(kustomize.dump(objects))
        return 0
    failures = 0
    if args.command in ("k8s", "all"):
        failures += run_k8s(args.renderer, getattr(args, "k8s_version", None))
    if args.command in ("compose", "all"):
        failures += run_compose()
    if args.command in ("dockerfiles", "all"):
        failures += run_dockerfiles()
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
