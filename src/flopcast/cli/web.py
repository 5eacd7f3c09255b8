"""`flopcast web`: serve the page and the JSON API (optional extra `web`)."""

from __future__ import annotations

import sys

import typer

from flopcast.cli.common import app, int_option
from flopcast.errors import FlopcastError

#: What `flopcast web` needs beyond the core, and the extra that installs it.
WEB_MODULES = ("fastapi", "uvicorn", "multipart")
WEB_INSTALL = "pip install 'flopcast[web]'"


@app.command()
def web(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (127.0.0.1: "
                             "this machine only)."),
    port: int = int_option(8000, "--port", help="Port to listen on."),
) -> None:
    """Serve the page (forms, tables, charts) and the JSON API (POST /api/train, …; schema at
    /openapi.json) on http://HOST:PORT/ (pip install 'flopcast[web]')."""
    import importlib.util

    missing = [m for m in WEB_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise FlopcastError(f"web: needs {', '.join(missing)}; {WEB_INSTALL}")
    if not 0 < port < 65536:
        raise FlopcastError(f"--port: a port in 1..65535; got {port}")
    _check_address(host, port)
    import uvicorn

    from flopcast.web.app import LOOPBACK_HOSTS, create_app

    app_ = create_app(allowed_hosts=LOOPBACK_HOSTS if host in LOOPBACK_HOSTS else None)
    shown = f"[{host}]" if ":" in host else host
    print(f"flopcast web: http://{shown}:{port}/ (Ctrl-C stops it)", file=sys.stderr)
    uvicorn.run(app_, host=host, port=port, log_level="warning")


def _check_address(host: str, port: int) -> None:
    """Refuse, in one line, an address the server could not listen on (unknown host, port in
    use or not allowed), before announcing it: uvicorn would log and exit 1 or 3."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as e:
        raise FlopcastError(f"--host: cannot listen on {host!r} ({e})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as e:  # the port when taken or privileged, else the address
            option = "--port" if e.errno in (errno.EADDRINUSE, errno.EACCES) else "--host"
            raise FlopcastError(f"{option}: cannot listen on {host}:{port} "
                                f"({e.strerror or e})") from None
