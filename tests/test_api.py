"""flopcast.api: the typed requests mirror the commands' options (names and defaults), the
command line builds them, and the web extra stays out of the CLI's imports."""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import io
import subprocess
import sys
from enum import Enum

import pytest

from flopcast.api.catalog import CatalogRequest
from flopcast.api.common import ModelFlags, json_of, validation_line
from flopcast.api.infer import InferRequest
from flopcast.api.plan import PlanTrainRequest
from flopcast.api.reason import ReasonCostRequest, ReasonCoverageRequest, ReasonPlanRequest
from flopcast.api.serve import ServePlanRequest, ServeRequest
from flopcast.api.train import TrainRequest, run_train
from flopcast.api.validate import ValidateRequest
from flopcast.cli import catalog, infer, main, measure, plan, reason, reason_plan, serve, train

#: (command function, its request type).
PAIRS = [(train.train, TrainRequest), (plan.plan_train, PlanTrainRequest),
         (infer.infer, InferRequest), (serve.serve, ServeRequest),
         (serve.serve_plan, ServePlanRequest), (reason.reason_coverage, ReasonCoverageRequest),
         (reason.reason_cost, ReasonCostRequest), (reason_plan.reason_plan, ReasonPlanRequest),
         (measure.validate, ValidateRequest), (catalog.catalog, CatalogRequest)]


def _default(value):
    default = getattr(value, "default", value)  # typer's OptionInfo / ArgumentInfo
    if isinstance(default, Enum):
        return default.value
    return None if default is ... else default


@pytest.mark.parametrize(("command", "request_type"), PAIRS,
                         ids=[c.__name__ for c, _ in PAIRS])
def test_request_fields_are_the_command_options_with_their_defaults(command, request_type):
    params = inspect.signature(command).parameters
    for name, field in request_type.model_fields.items():
        assert name in params, f"{request_type.__name__}.{name} is no option of the command"
        if field.is_required():
            continue
        want = _default(field.default)
        got = _default(params[name].default)
        assert str(got) == str(want), f"{request_type.__name__}.{name}: {got!r} != {want!r}"


@pytest.mark.parametrize("command", [train.train, plan.plan_train, infer.infer, serve.serve,
                                     serve.serve_plan])
def test_every_model_command_has_the_model_option_group(command):
    params = inspect.signature(command).parameters
    assert set(ModelFlags.model_fields) <= set(params)


def test_unknown_field_and_bounds_are_refused_in_one_line():
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as exc:
        TrainRequest(model="llama-3.1-8b", tpp=2)
    assert validation_line(exc.value) == "tpp: Extra inputs are not permitted; got 2"
    with pytest.raises(ValidationError) as exc:
        TrainRequest(model="llama-3.1-8b", gpus=2**40)
    assert validation_line(exc.value).startswith("gpus: Input should be less than or equal")


def test_run_train_warns_beyond_the_context_and_answers():
    heard: list[str] = []
    result = run_train(TrainRequest(model="llama-2-7b", seq_len=8192, global_batch=8), heard.append)
    assert result.config["seq_len"] == 8192 and result.fits in (True, False)
    assert len(heard) == 1 and "context" in heard[0]
    assert json_of(result) == result.model_dump(mode="json")


def test_cli_imports_no_web_framework():
    code = ("import sys, flopcast.cli; print(sorted(m for m in ('fastapi', 'starlette', "
            "'uvicorn', 'plotly', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_web_without_the_extra_is_one_line(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "uvicorn" else real(name, *a))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_:
        main(["web"])
    assert exit_.value.code == 2
    assert err.getvalue().strip() == ("error: web: needs uvicorn; "
                                      "pip install 'flopcast[web]'")
