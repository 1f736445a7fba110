"""`diffclass serve`: a local web page and JSON API that classify uploaded images."""

from __future__ import annotations

from typing import Annotated

import typer

from diffclass.cli.app import ModelOption, SeedOption, StrategyOption, app
from diffclass.progress import console


@app.command()
def serve(
    model: ModelOption = "digits",
    strategy: StrategyOption = None,
    host: Annotated[str, typer.Option(help="Address to bind (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    seed: SeedOption = 0,
):
    """Serve a page to drop an image on and see its classes, plus POST /classify, POST /explain, GET /health."""
    from diffclass.loading import load
    from diffclass.serve import require_server
    from diffclass.serve import serve as run_server

    require_server()  # before the model is loaded
    clf = load(model, seed=seed)
    console.print(f"serving {model} on http://{host}:{port} (Ctrl-C stops)")
    run_server(clf, strategy, host, port, str(model))
