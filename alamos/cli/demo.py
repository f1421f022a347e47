"""``alamos demo``: a layered toy workload, instrumented, then summarised."""

from __future__ import annotations

import json

import click

from alamos.cli import main


@main.command()
@click.option("--seconds", default=3.0, show_default=True, help="How long to run the workload.")
def demo(seconds: float) -> None:
    """Run an instrumented toy workload and print its report tree."""
    import alamos

    with alamos.new("server", level="debug", console=False) as root:
        api = root.sub("api")
        cesium = root.sub("cesium")
        writes = cesium.metrics.counter("writes", "Writes accepted")
        n = max(1, int(seconds * 100))
        for i in range(n):
            with api.trace.prod("handle"), cesium.trace.prod("write") as span:
                span.set("bytes", i)
                writes.inc()
        click.echo(json.dumps(root.report(), indent=2))
