"""The web API and page: ``create_app()`` builds the FastAPI application ``flopcast web``
serves.

Every JSON endpoint takes the typed request of a command (flopcast.api; field names are the
command's options in snake_case) and answers exactly what the command's ``--json`` prints.
Invalid input is HTTP 422 with ``{"detail": "<the one line the CLI prints>"}``; warnings
(allowed but doubtful input) come in the ``X-Flopcast-Warning`` header. The page and its
script are files under ``static/``; the charting library is the ``plotly.min.js`` bundled in
the ``plotly`` package: nothing is fetched from the internet.

Paths in a request (``model`` as a config file, ``gpu`` as an entry file, ``calibration``,
reasoning ``samples``) are read on the machine that serves: bind it to 127.0.0.1 (the
default) unless everyone who can reach it may read those files. ``calibrate`` has no
endpoint: it writes a calibration file on the server and a fit (with leave-one-source-out,
dozens of fits) takes minutes; run ``flopcast calibrate FILE.csv`` instead.
"""

import importlib.util
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ValidationError

from flopcast.api.common import error_line, json_of, one_line
from flopcast.errors import FlopcastError, echo

STATIC = Path(__file__).resolve().parent / "static"
#: Served at ``GET /`` while the page (static/index.html) is missing.
PLACEHOLDER = ("<!doctype html><html><head><meta charset='utf-8'><title>flopcast</title>"
               "</head><body><h1>flopcast</h1><p>The page is not installed; the JSON API is "
               "described at <a href='/openapi.json'>/openapi.json</a>.</p></body></html>")


#: Host headers a loopback-bound server answers: a page elsewhere that re-points its own
#: domain at 127.0.0.1 (DNS rebinding) sends its domain, and is refused.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")


def create_app(allowed_hosts: list[str] | tuple[str, ...] | None = None) -> FastAPI:
    """The application: JSON endpoints under /api, the page at /, its files under /static.
    ``allowed_hosts``: answer only requests whose Host header names one of these (`flopcast
    web` passes LOOPBACK_HOSTS when it listens on a loopback address)."""
    from flopcast.cli.common import package_version

    app = FastAPI(title="flopcast", version=package_version(), docs_url=None,
                  redoc_url=None, description=__doc__)
    if allowed_hosts:
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    _error_handlers(app)
    for route in routes():
        _add_post(app, *route)
    _catalog_routes(app)
    _validate_route(app)
    _static_routes(app)
    return app


def routes() -> list[tuple[str, type[BaseModel], Any, Callable, str]]:
    """(path, request type, result type, function, summary) of each POST endpoint."""
    from flopcast.api.infer import InferRequest, InferResult, run_infer
    from flopcast.api.plan import PlanResult, PlanSweepResult, PlanTrainRequest, run_plan_train
    from flopcast.api.reason import (
        ReasonCostRequest,
        ReasonCostResult,
        ReasonCoverageRequest,
        ReasonCoverageResult,
        ReasonPlanRequest,
        ReasonPlanResult,
        run_reason_cost,
        run_reason_coverage,
        run_reason_plan,
    )
    from flopcast.api.serve import (
        ServePlanRequest,
        ServePlanResult,
        ServeRequest,
        ServeResult,
        run_serve,
        run_serve_plan,
    )
    from flopcast.api.train import TrainRequest, TrainResult, run_train

    return [
        ("/api/train", TrainRequest, TrainResult, run_train,
         "One training configuration (flopcast train --json)."),
        ("/api/plan/train", PlanTrainRequest, PlanResult | PlanSweepResult, run_plan_train,
         "Search configurations, clusters and sweeps (flopcast plan train --json)."),
        ("/api/infer", InferRequest, InferResult, run_infer,
         "Serving one configuration in steady state (flopcast infer --json)."),
        ("/api/serve", ServeRequest, ServeResult, run_serve,
         "Simulate a request stream on a deployment (flopcast serve --json)."),
        ("/api/serve/plan", ServePlanRequest, ServePlanResult, run_serve_plan,
         "The cheapest fleet meeting p99 SLOs at a request rate (flopcast serve plan --json)."),
        ("/api/reason/coverage", ReasonCoverageRequest, ReasonCoverageResult,
         run_reason_coverage, "Coverage (pass@k) from per-problem samples (flopcast reason "
         "coverage --json); samples is a path on the server."),
        ("/api/reason/cost", ReasonCostRequest, ReasonCostResult, run_reason_cost,
         "Cost of one problem at N samples (flopcast reason cost --json)."),
        ("/api/reason/plan", ReasonPlanRequest, ReasonPlanResult, run_reason_plan,
         "Model × strategy × samples for a target accuracy or a budget (flopcast reason plan "
         "--json); samples are paths on the server."),
    ]


def _add_post(app: FastAPI, path: str, request_type: type[BaseModel],
              result_type: Any, run: Callable, summary: str) -> None:
    """POST ``path``: the body validated as ``request_type``, answered by ``run`` (in a worker
    thread: the estimates are CPU-bound), serialised as the CLI's --json."""

    def endpoint(body) -> Response:
        warnings: list[str] = []
        result = run(body, warnings.append)
        headers = {"X-Flopcast-Warning": _header_text(warnings)} if warnings else None
        return JSONResponse(json_of(result), headers=headers)

    endpoint.__annotations__ = {"body": request_type, "return": Response}
    endpoint.__name__ = path.strip("/").replace("/", "_")
    app.post(path, response_model=result_type, summary=summary,
             responses={422: {"description": "Invalid input: {\"detail\": one line}"}}
             )(endpoint)


def _header_text(warnings: list[str]) -> str:
    """Warnings as one ASCII header value (JSON list, non-ASCII escaped)."""
    return json.dumps(warnings, ensure_ascii=True)


def _error_handlers(app: FastAPI) -> None:
    """Every refusal as HTTP 422 {"detail": one line}: a body that is not the request type
    (FastAPI's own check), and what the specs, catalogs and workloads refuse."""

    @app.exception_handler(RequestValidationError)
    async def _invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _refusal(request_error_line(exc.errors()))

    @app.exception_handler(FlopcastError)
    @app.exception_handler(ValidationError)
    @app.exception_handler(OSError)
    async def _refused(request: Request, exc: Exception) -> JSONResponse:
        return _refusal(one_line(exc))


def _refusal(line: str) -> JSONResponse:
    return JSONResponse({"detail": line}, status_code=422)


def request_error_line(errors) -> str:
    """The first error of a request body as one line naming the option: a field of the body
    is the command's option of that name ('global_batch: …' → '--global-batch: …')."""
    if not errors:
        return "body: not a valid request"
    err = dict(errors[0])
    loc = tuple(err.get("loc", ()))
    loc = loc[1:] if loc[:1] == ("body",) else loc
    if len(loc) == 1 and isinstance(loc[0], str):
        loc = ("--" + loc[0].replace("_", "-"),)
    err["loc"] = loc or ("body",)
    return error_line(err, {})


def _catalog_routes(app: FastAPI) -> None:
    """GET /api/catalog/{gpus,models,engines,frameworks,datasets} (flopcast catalog KIND
    --json): the entries the page's drop-downs offer."""
    from flopcast.api.catalog import CatalogKind, CatalogResult

    for kind in CatalogKind:
        app.get(f"/api/catalog/{kind.value}", response_model=CatalogResult,
                summary=f"The catalog's {kind.value} (flopcast catalog {kind.value} --json)."
                )(_catalog_endpoint(kind))


def _catalog_endpoint(kind) -> Callable[[], Response]:
    """The endpoint answering one catalog (no parameters)."""
    from flopcast.api.catalog import CatalogRequest, run_catalog

    def endpoint() -> Response:
        return JSONResponse(json_of(run_catalog(CatalogRequest(kind=kind))))

    endpoint.__name__ = f"catalog_{kind.value}"
    return endpoint


#: Largest measurement CSV /api/validate takes (the shipped training.csv is ~100 kB).
MAX_UPLOAD_BYTES = 20 * 2**20
#: Characters kept from an uploaded file's name (the rest become '_').
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def _validate_route(app: FastAPI) -> None:
    """POST /api/validate: a measurement CSV uploaded (multipart field ``file``; optional
    form field ``calibration``, a path on the server), answered as `flopcast validate FILE
    --json`."""
    from fastapi import File, Form, UploadFile

    from flopcast.api.validate import ValidateRequest, ValidateResult, run_validate

    @app.post("/api/validate", response_model=ValidateResult,
              summary="Score a measurement CSV (flopcast validate FILE --json).",
              responses={422: {"description": "Invalid input: {\"detail\": one line}"}})
    def validate(file: Annotated[UploadFile, File()],
                 calibration: Annotated[str | None, Form()] = None) -> Response:
        data = file.file.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise FlopcastError(f"file: at most {MAX_UPLOAD_BYTES // 2**20} MiB")
        name = "".join(c if c in _NAME_CHARS else "_"
                       for c in Path(file.filename or "").name).lstrip(".") or "upload.csv"
        with tempfile.TemporaryDirectory(prefix="flopcast-") as folder:
            path = Path(folder) / name
            path.write_bytes(data)
            try:
                result = run_validate(ValidateRequest(file=str(path), calibration=calibration))
            except (FlopcastError, ValidationError, OSError) as exc:
                # the message names the file as uploaded, not the temporary folder
                raise FlopcastError(one_line(exc).replace(folder + "/", "")) from None
        return JSONResponse(json_of(result))


def _static_routes(app: FastAPI) -> None:
    """GET / (the page, or a placeholder while it is missing), /static/vendor/plotly.min.js
    (plotly's bundled copy) and /static/… (the page's files)."""

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> Response:
        page = STATIC / "index.html"
        return FileResponse(page) if page.is_file() else HTMLResponse(PLACEHOLDER)

    @app.get("/static/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js() -> Response:
        path = plotly_bundle()
        if path is None:
            return JSONResponse({"detail": "plotly is not installed: pip install "
                                 "'flopcast[web]'"}, status_code=404)
        return FileResponse(path, media_type="text/javascript")

    @app.get("/static/{path:path}", include_in_schema=False)
    def static(path: str) -> Response:
        file = (STATIC / path).resolve()
        if not file.is_relative_to(STATIC) or not file.is_file():
            return JSONResponse({"detail": f"no such file: {echo(path)}"}, status_code=404)
        return FileResponse(file)


def plotly_bundle() -> Path | None:
    """plotly.min.js inside the installed ``plotly`` package (found without importing it)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / "package_data" / "plotly.min.js"
        if path.is_file():
            return path
    return None
