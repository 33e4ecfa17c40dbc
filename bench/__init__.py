"""ObjectVision benchmarks: one harness that loads every layer of the system the same way.

`python -m bench` (`make bench`) measures the raw model in process, Triton alone, the
detection service's gRPC API, the gateway's REST API and a naive single-process baseline on
one machine, then writes JSON, Markdown and a plot under `bench/results/`. See
`bench/README.md` and `docs/adr/0008-benchmarks.md`.
"""
