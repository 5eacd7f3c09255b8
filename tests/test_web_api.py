"""The JSON API (flopcast.web.app): for the same inputs it answers exactly what the CLI's
--json prints, refuses bad input with HTTP 422 and the CLI's one line, and serves the page's
files. Skipped without the `web` extra."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from flopcast.cli import main  # noqa: E402
from flopcast.cli.common import app as cli_app  # noqa: E402
from flopcast.web.app import create_app  # noqa: E402


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app())


def cli_json(*args: str):
    """What `flopcast ARGS --json` prints, parsed (typer's CliRunner, in-process)."""
    result = CliRunner().invoke(cli_app, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def cli_error(*args: str) -> str:
    """The one line `flopcast ARGS` prints on stderr when it refuses them, without 'error: '."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), \
            pytest.raises(SystemExit) as exit_:
        main(list(args))
    assert exit_.value.code == 2
    (line,) = err.getvalue().strip().splitlines()
    return line.removeprefix("error: ")


def api(client: TestClient, path: str, body: dict):
    r = client.post(path, json=body)
    assert r.status_code == 200, r.text
    return r.json()


TRAIN_CASES = [
    (["-m", "llama-3.1-8b", "--gpus", "8", "--global-batch", "64", "--tokens", "1T"],
     {"model": "llama-3.1-8b", "gpus": 8, "global_batch": 64, "tokens": "1T"}),
    (["--layers", "4", "--hidden", "256", "--heads", "4", "--kv-heads", "2", "--gpus", "2",
      "--tp", "2", "--recompute", "full", "--precision", "fp8", "--price", "3.5",
      "--offload", "optimizer=cpu", "--framework", "fsdp"],
     {"layers": 4, "hidden": 256, "heads": 4, "kv_heads": 2, "gpus": 2, "tp": 2,
      "recompute": "full", "precision": "fp8", "price": 3.5, "offload": "optimizer=cpu",
      "framework": "fsdp"}),
]


@pytest.mark.parametrize(("args", "body"), TRAIN_CASES)
def test_train_api_equals_cli_json(client, args, body):
    assert api(client, "/api/train", body) == cli_json("train", *args)


@pytest.mark.parametrize(("args", "body"), [
    (["--pp", "0"], {"pp": 0}),
    (["--model", "no-such-model"], {"model": "no-such-model"}),
    (["--offload", "weights=moon"], {"offload": "weights=moon"}),
    (["--tokens", "0"], {"tokens": "0"}),
    (["--layers", "2"], {"layers": 2, "model": None}),
])
def test_train_refusal_is_422_with_the_cli_line(client, args, body):
    body = {"model": "llama-3.1-8b"} | body
    cli_args = ["train", *([] if "--model" in args or "--layers" in args
                           else ["-m", "llama-3.1-8b"]), *args]
    r = client.post("/api/train", json=body)
    assert r.status_code == 422
    assert r.json() == {"detail": cli_error(*cli_args)}


@pytest.mark.parametrize("body", [{"tp": "abc"}, {"no_such_option": 1}, [1], {"tp": 2**40},
                                  {"price": "nan"}, {"gpus": None}])
def test_train_bad_body_is_one_line_naming_the_option(client, body):
    r = client.post("/api/train", json=body)
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail
    key = next(iter(body)) if isinstance(body, dict) else "body"
    assert detail.startswith("body" if key == "body" else "--" + key.replace("_", "-"))


def test_page_placeholder_static_files_and_plotly(client):
    r = client.get("/")
    assert r.status_code == 200 and "flopcast" in r.text
    js = client.get("/static/vendor/plotly.min.js")
    if js.status_code == 200:  # plotly installed (the `web` extra)
        assert js.headers["content-type"].startswith("text/javascript")
        assert b"plotly" in js.content[:2000].lower()
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/static/%2e%2e/app.py").status_code == 404
    assert client.get("/static/no-such-file.js").status_code == 404


def test_openapi_lists_the_endpoints(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/train" in paths


@pytest.mark.parametrize("kind", ["gpus", "models", "engines", "frameworks", "datasets"])
def test_catalog_api_equals_cli_json(client, kind):
    r = client.get(f"/api/catalog/{kind}")
    assert r.status_code == 200
    assert r.json() == cli_json("catalog", kind)
    assert all(row["id"] for row in r.json())


@pytest.mark.parametrize(("args", "body"), [
    (["-m", "llama-3.1-8b"], {"model": "llama-3.1-8b"}),
    (["-m", "llama-3.1-70b", "--gpus", "4", "--concurrency", "32", "--precision", "fp8"],
     {"model": "llama-3.1-70b", "gpus": 4, "concurrency": 32, "precision": "fp8"}),
    (["--layers", "4", "--hidden", "256", "--heads", "4", "--max-throughput"],
     {"layers": 4, "hidden": 256, "heads": 4, "max_throughput": True}),
])
def test_infer_api_equals_cli_json(client, args, body):
    assert api(client, "/api/infer", body) == cli_json("infer", *args)


@pytest.mark.parametrize(("args", "body"), [
    (["--batch", "2", "--concurrency", "3"], {"batch": 2, "concurrency": 3}),
    (["--batch", "0"], {"batch": 0}),
    (["--engine", "nope"], {"engine": "nope"}),
])
def test_infer_refusal_is_422_with_the_cli_line(client, args, body):
    r = client.post("/api/infer", json={"model": "llama-3.1-8b"} | body)
    assert r.status_code == 422
    assert r.json() == {"detail": cli_error("infer", "-m", "llama-3.1-8b", *args)}


@pytest.mark.parametrize(("args", "body"), [
    (["-m", "llama-3.1-8b", "--gpus", "16", "--tokens", "1T"],
     {"model": "llama-3.1-8b", "gpus": 16, "tokens": "1T"}),
    (["-m", "llama-3.1-8b", "--gpu", "h100-sxm,a100-80gb", "--gpus", "8..16", "--tokens", "1T",
      "--deadline-days", "200", "--tp", "1,2", "--objective", "cost"],
     {"model": "llama-3.1-8b", "gpu": "h100-sxm,a100-80gb", "gpus": "8..16", "tokens": "1T",
      "deadline_days": 200, "tp": "1,2", "objective": "cost"}),
    (["-m", "pythia-1b,pythia-410m", "--gpus", "8", "--seq-lens", "1024,2048", "--top", "2"],
     {"model": "pythia-1b,pythia-410m", "gpus": 8, "seq_lens": "1024,2048", "top": 2}),
])
def test_plan_train_api_equals_cli_json(client, args, body):
    assert api(client, "/api/plan/train", body) == cli_json("plan", "train", *args)


SERVE = ["-m", "llama-3.1-8b", "--num-requests", "60", "--seed", "3"]


@pytest.mark.parametrize(("args", "body"), [
    (["--request-rate", "5", "--dataset", "sharegpt"],
     {"request_rate": 5, "dataset": "sharegpt"}),
    (["--concurrency", "4", "--input-len", "256", "--output-len", "32", "--gpus", "2"],
     {"concurrency": 4, "input_len": 256, "output_len": 32, "gpus": 2}),
    (["plan", "--request-rate", "2", "--dataset", "sharegpt", "--gpu-types", "h100-sxm,l40s",
      "--max-tp", "1", "--slo-ttft-p99", "3000"],
     {"request_rate": 2, "dataset": "sharegpt", "gpu_types": "h100-sxm,l40s", "max_tp": 1,
      "slo_ttft_p99": 3000}),
])
def test_serve_api_equals_cli_json(client, args, body):
    path = "/api/serve/plan" if args[0] == "plan" else "/api/serve"
    cli_args = ["plan", *SERVE, *args[1:]] if args[0] == "plan" else [*SERVE, *args]
    body = {"model": "llama-3.1-8b", "num_requests": 60, "seed": 3} | body
    assert api(client, path, body) == cli_json("serve", *cli_args)


SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "reasoning" / \
    "pythia-math-samples.csv"


def test_reason_api_equals_cli_json(client, tmp_path):
    samples = tmp_path / "samples.csv"
    samples.write_text("model,benchmark,problem,samples,correct\n"
                       + "".join(f"m,b,p{i},10,{i % 4}\n" for i in range(12)))
    body = {"samples": str(samples), "k": "1,5,40", "reps": 5}
    assert api(client, "/api/reason/coverage", body) == cli_json(
        "reason", "coverage", "--samples", str(samples), "--k", "1,5,40", "--reps", "5")
    assert api(client, "/api/reason/cost", {"model": "llama-3.1-8b", "trials": "1,16"}) == \
        cli_json("reason", "cost", "-m", "llama-3.1-8b", "--trials", "1,16")


@pytest.mark.skipif(not SAMPLES.exists(), reason="../shared/reasoning absent")
def test_reason_plan_api_equals_cli_json(client):
    body = {"samples": [str(SAMPLES)], "model_map": "pythia-70m=pythia-160m", "max_k": 64,
            "target_accuracy": 0.2, "per_bin": 2}
    assert api(client, "/api/reason/plan", body) == cli_json(
        "reason", "plan", "--samples", str(SAMPLES), "--model-map", "pythia-70m=pythia-160m",
        "--max-k", "64", "--target-accuracy", "0.2", "--per-bin", "2")


VALIDATE_CSV = ("model,gpu,num_gpus,metric,value,source,id,tp,global_batch,seq_len\n"
                "llama-3.1-8b,h100-sxm,8,step_time_s,3.1,test,t:1,1,64,4096\n"
                "llama-3.1-8b,h100-sxm,8,step_time_s,-1,test,t:2,1,64,4096\n")


def test_validate_upload_equals_cli_json(client, tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text(VALIDATE_CSV)
    r = client.post("/api/validate", files={"file": ("runs.csv", path.read_bytes(), "text/csv")})
    assert r.status_code == 200, r.text
    assert r.json() == cli_json("validate", str(path))


@pytest.mark.parametrize("content", [b"", b"a,b\n1,2\n", bytes(range(256))])
def test_validate_refusal_is_422_with_the_cli_line(client, tmp_path, content):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    r = client.post("/api/validate", files={"file": ("bad.csv", content, "text/csv")})
    assert r.status_code == 422
    assert r.json()["detail"] == cli_error("validate", str(path)).replace(str(tmp_path) + "/",
                                                                          "")


def test_warning_comes_in_a_header(client):
    r = client.post("/api/train", json={"model": "llama-2-7b", "seq_len": 8192,
                                        "global_batch": 8})
    assert r.status_code == 200
    (warning,) = json.loads(r.headers["x-flopcast-warning"])
    assert "context" in warning
    assert "x-flopcast-warning" not in client.post("/api/train", json={
        "model": "llama-2-7b", "global_batch": 8}).headers


def test_review_findings_answer_422_or_200_never_500(client, tmp_path):
    """Inputs a review found ending in a 500 or a misleading refusal: an empty samples list,
    a samples file every sample of which is correct, one-token outputs in a fleet plan; a
    file that is not a samples file is refused without echoing its first line; a server on
    loopback refuses a foreign Host header (DNS rebinding)."""
    from flopcast.web.app import LOOPBACK_HOSTS

    empty = client.post("/api/reason/plan", json={"samples": [], "target_accuracy": 0.5})
    assert empty.status_code == 422 and "--samples" in empty.json()["detail"]
    solved = tmp_path / "solved.csv"
    solved.write_text("model,benchmark,problem,samples,correct\n"
                      + "".join(f"pythia-410m,MATH,{i},10,10\n" for i in range(20)))
    plan = client.post("/api/reason/plan", json={"samples": [str(solved)],
                                                 "target_accuracy": 0.5})
    assert plan.status_code == 200 and plan.json()["best"]["accuracy"] > 0.99
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")  # not a header: not echoed
    leak = client.post("/api/reason/coverage", json={"samples": str(secret), "k": "1,10"})
    assert leak.status_code == 422 and "/bin/bash" not in leak.json()["detail"]
    fleet = client.post("/api/serve/plan", json={
        "model": "llama-3.1-8b", "input_len": 500, "output_len": 1, "request_rate": 5,
        "num_requests": 40, "slo_ttft_p99": 2000, "gpu_types": "h100-sxm"})
    assert fleet.status_code == 200, fleet.text
    assert fleet.json()["best"]["summary"]["tpot_ms"]["p99"] is None
    guarded = TestClient(create_app(allowed_hosts=LOOPBACK_HOSTS), base_url="http://127.0.0.1")
    assert guarded.get("/api/catalog/gpus").status_code == 200
    assert guarded.get("/api/catalog/gpus", headers={"host": "evil.example"}).status_code == 400
