"""Operating the server: what a balancer, Kubernetes, Prometheus and a tracing backend ask of it.

`health` answers `/healthz` and `/readyz`; `metrics` is the Prometheus side of `cutout_mcp.telemetry`
and its own listener (`CUTOUT_METRICS_ADDR`); `tracing` installs the OpenTelemetry SDK when the
`OTEL_*` variables ask for it. Each is imported only when switched on, so start-up pays nothing
otherwise. docs/operations.md describes all of it.
"""
