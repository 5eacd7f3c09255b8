"""Fuzz every command with hostile options and files (issue 12).

Each example runs the real entry point (``flopcast.cli.main``) in-process with a valid base
command plus a few options drawn from good, boundary and hostile values, and asserts:
exit status 0 or 2, never an uncaught exception (a traceback; NumPy's RuntimeWarnings, e.g.
an overflow, are raised as errors), a single ``error:`` line on
status 2, finite JSON on status 0 with ``--json``, and no run longer than HANG_S.

``FLOPCAST_FUZZ_EXAMPLES`` sets the examples per command (default keeps the suite fast;
``python benchmarks/fuzz.py`` runs a larger campaign and prints the counts).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import signal
import warnings
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flopcast.cli import main

EXAMPLES = int(os.environ.get("FLOPCAST_FUZZ_EXAMPLES", "25"))
HANG_S = 10
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
TRIED: Counter = Counter()
#: The shipped calibrations: each kind must be accepted (or refused in one line) everywhere.
CALIBRATIONS = sorted((Path(__file__).resolve().parents[1] / "src" / "flopcast" /
                       "calibration").glob("*.yaml"))

# Values anyone can type where a number goes: boundaries, non-finite, overflowing, malformed.
HOSTILE_NUMBERS = ["0", "-1", "-0", "nan", "inf", "-inf", "1e400", "1e30", "1e-30", "0.5",
                   "9" * 20, "1" * 309, "1" * 5000, "", " ", "abc", "0x10", "1,2", "True",
                   "１２", "1_000", "2.5e3", "-1e400"]
HOSTILE_TEXT = ["", " ", "a" * 300, "a" * 5000, "../../etc/passwd", "/nonexistent/x.yaml",
                "h100-sxm\n", "ünïcödé", "[plot]", "--json", "-", ",", ",,,", "llama-3.1-8b,"]


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def run(argv: list[str]) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``flopcast argv`` run in this process."""
    out, err = io.StringIO(), io.StringIO()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(HANG_S)
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
                warnings.catch_warnings():
            # an overflow or 0/0 that NumPy only warns about is a result nobody should see
            warnings.simplefilter("error", RuntimeWarning)
            main(argv)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except Hang:
        pytest.fail(f"ran longer than {HANG_S} s: flopcast {' '.join(argv)}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    return code, out.getvalue(), err.getvalue()


def _finite(obj, path="") -> str | None:
    if isinstance(obj, float) and not math.isfinite(obj):
        return path or "<root>"
    if isinstance(obj, dict):
        return next((p for k, v in obj.items() if (p := _finite(v, f"{path}.{k}"))), None)
    if isinstance(obj, list):
        return next((p for i, v in enumerate(obj) if (p := _finite(v, f"{path}[{i}]"))), None)
    return None


def _no_constant(name):
    raise ValueError(f"non-finite JSON literal {name}")


def check(argv: list[str]) -> None:
    TRIED[argv[0] if argv[0] not in ("plan", "serve", "reason", "catalog")
          or len(argv) < 2 or argv[1].startswith("-") else " ".join(argv[:2])] += 1
    code, out, err = run(argv)
    shown = " ".join(a if len(a) < 60 else a[:57] + "…" for a in argv)
    assert code in (0, 2), f"exit {code}: flopcast {shown}\n{err[-2000:]}"
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and lines[0] != "error:", \
            f"not one error line: flopcast {shown}\n{err[-2000:]}"
    elif "--json" in argv and "--help" not in argv:
        data = json.loads(out, parse_constant=_no_constant)
        bad = _finite(data)
        assert bad is None, f"non-finite {bad}: flopcast {shown}"


# ---------------------------------------------------------------------------------------------
# Hostile files, written once.

def _write_files(root: Path) -> dict[str, list[str]]:
    root.mkdir(parents=True, exist_ok=True)
    good_cfg = ('{"model_type": "llama", "num_hidden_layers": 2, "hidden_size": 64, '
                '"num_attention_heads": 4, "intermediate_size": 128, "vocab_size": 100}')
    texts = {
        "empty.json": b"", "trunc.json": b'{"model_type": "llama", "num_hid',
        "bom.json": b"\xef\xbb\xbf" + good_cfg.encode(),
        "utf16.json": good_cfg.encode("utf-16"), "binary.json": bytes(range(256)) * 4,
        "list.json": b"[1, 2]", "null.json": b"null", "number.json": b"3",
        "deep.json": b"[" * 50_000 + b"]" * 50_000,
        "bigint.json": good_cfg.replace('"num_hidden_layers": 2',
                                        '"num_hidden_layers": ' + "9" * 400).encode(),
        "nan.json": good_cfg.replace('"hidden_size": 64', '"hidden_size": NaN').encode(),
        "wrongtype.json": good_cfg.replace('"hidden_size": 64', '"hidden_size": [64]').encode(),
        "texttype.json": b'{"model_type": ["llama"], "text_config": 3}',
        "bad.yaml": b"a: [b\n", "list.yaml": b"- 1\n- 2\n", "scalar.yaml": b"42\n",
        "tags.yaml": b"!!python/object/apply:os.system ['echo hi']\n",
        "bomb.yaml": b"a: &a [x, x, x, x, x, x, x, x, x]\n" + b"".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)},"
            f" *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n".encode()
            for i in range(9)),
        "families.yaml": b"families: [1, 2]\n", "families2.yaml": b"families:\n  hopper: 3\n",
        "eff.yaml": b"families:\n  hopper:\n    efficiency:\n      gemm_fraction: .nan\n",
        "gpu.yaml": b"id: x\nfamily: hopper\nname: x\n", "empty.csv": b"",
        "date.yaml": b"families:\n  hopper:\n    date: 2020-02-30\n",
        "header.csv": b"a,b,c\n1,2,3\n", "binary.csv": bytes(range(256)) * 4,
        "bom.csv": b"\xef\xbb\xbfmodel,benchmark,problem,samples,correct\nm,b,p,10,3\n",
        "neg.csv": b"model,benchmark,problem,samples,correct\nm,b,p,-10,3\n",
        "over.csv": b"model,benchmark,problem,samples,correct\nm,b,p,10,30\n",
        "huge.csv": b"model,benchmark,problem,samples,correct\nm,b,p," + b"9" * 500 + b",3\n",
        "inf.csv": b"model,benchmark,problem,samples,correct\nm,b,p,inf,3\n",
        "unknown.csv": b"model,benchmark,problem,samples,correct,zzz\nm,b,p,10,3,1\n",
        "trace.csv": b"arrival_s,input_len,output_len\n0,10,10\nnan,10,10\n-1,1e400,5\n",
        "trace.jsonl": b'{"arrival_s": 0, "input_len": 10}\n[1]\n{"arrival_s": "x"}\n',
    }
    for name, data in texts.items():
        (root / name).write_bytes(data)
    (root / "dir.yaml").mkdir(exist_ok=True)
    (root / "dir.json").mkdir(exist_ok=True)
    files = [str(root / n) for n in [*texts, "dir.yaml", "dir.json"]]
    files += [str(root / "missing.yaml"), str(root / "missing.json"), str(root / ("x" * 300))]
    files += [p for p in ("/dev/zero", *(str(c) for c in CALIBRATIONS)) if Path(p).exists()]
    return {"model": [f for f in files if f.endswith((".json", ".yaml"))] + files[:3],
            "any": files}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, list[str]]:
    return _write_files(tmp_path_factory.mktemp("hostile"))


# ---------------------------------------------------------------------------------------------
# Commands: a valid base and the options to vary, each with its good values.

NUM = st.sampled_from(HOSTILE_NUMBERS)
TEXT = st.sampled_from(HOSTILE_TEXT)


def _opt(good: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(good), NUM, TEXT)


COMMANDS: dict[str, tuple[list[str], dict[str, list[str]]]] = {
    "train": (["train", "--model", "llama-3.1-8b", "--gpus", "8"], {
        "--gpus": ["8", "16", "3"], "--tp": ["1", "2", "8"], "--pp": ["1", "2"],
        "--vp": ["1", "2"], "--cp": ["1", "2"], "--dp": ["8", "4"], "--ep": ["1", "2"],
        "--micro-batch": ["1", "2"], "--global-batch": ["64", "8"], "--seq-len": ["4096", "1"],
        "--zero": ["0", "1", "2", "3"], "--recompute": ["none", "full"],
        "--schedule": ["1f1b", "gpipe"], "--precision": ["bf16", "fp8"],
        "--tokens": ["15T", "1e12", "300B"], "--price": ["2.5", "0"],
        "--gpus-per-node": ["8", "4"], "--network-gbps": ["400", "100"],
        "--gpu": ["h100-sxm", "b200", "a100-80gb"], "--attention-backend": ["cudnn"],
        "--layers": ["2"], "--hidden": ["64"], "--heads": ["4"], "--vocab": ["100"],
    }),
    "plan train": (["plan", "train", "--model", "llama-3.1-8b", "--gpus", "8", "--tp", "8"], {
        "--gpus": ["8", "16", "8..32", "8,16"], "--seq-len": ["4096", "2048"],
        "--global-batch": ["64", "128"], "--top": ["1", "5"], "--tokens": ["1T"],
        "--objective": ["time", "cost"], "--deadline-days": ["30"], "--tp": ["8", "4,8"],
        "--pp": ["1", "1,2"], "--micro-batch": ["1", "1,2"], "--zero": ["1", "0,1"],
        "--seq-lens": ["2048,4096"], "--gpu": ["h100-sxm", "h100-sxm,b200"],
    }),
    "infer": (["infer", "--model", "llama-3.1-8b"], {
        "--gpus": ["1", "2"], "--tp": ["1", "2"], "--pp": ["1", "2"], "--ep": ["1"],
        "--precision": ["bf16", "fp8", "w4a16", "w3a16"], "--kv-precision": ["fp8", "int4"],
        "--engine": ["vllm", "tensorrt-llm", "sglang"], "--input-len": ["1024", "1"],
        "--output-len": ["128", "1"], "--batch": ["1", "8"], "--concurrency": ["16"],
        "--max-throughput": [""], "--gpu": ["h100-sxm", "l40s"],
    }),
    "serve": (["serve", "--model", "llama-3.1-8b", "--input-len", "200", "--output-len", "50",
               "--num-requests", "40", "--request-rate", "5"], {
        "--num-requests": ["40", "1"], "--request-rate": ["5", "100"],
        "--burstiness": ["1", "4"], "--concurrency": ["4"], "--offline": [""],
        "--input-len": ["200", "1"], "--output-len": ["50", "1"], "--dataset": ["sharegpt"],
        "--length-dist": ["fixed", "uniform", "lognormal", "random"],
        "--range-ratio": ["0.5"], "--spread": ["1.0"], "--seed": ["0", "7"],
        "--scheduler": ["vllm", "sarathi", "sglang", "static", "trtllm-inflight"],
        "--max-num-seqs": ["16"], "--max-num-tokens": ["2048"], "--chunk-tokens": ["0", "512"],
        "--batch-size": ["4"], "--shared-prefix-len": ["100"], "--num-prefixes": ["2"],
        "--router": ["round-robin", "prefix-affinity"], "--gpus": ["1", "2"],
        "--tp": ["1"], "--pp": ["1"], "--engine": ["vllm", "sglang"],
        "--slo-ttft-p99": ["500"], "--slo-tpot-p99": ["50"],
    }),
    "serve plan": (["serve", "plan", "--model", "llama-3.1-8b", "--input-len", "200",
                    "--output-len", "50", "--num-requests", "20", "--gpu-types", "h100-sxm",
                    "--request-rate", "2"], {
        "--max-tp": ["1", "2"], "--num-requests": ["20"], "--request-rate": ["2", "10"],
        "--slo-tpot-p99": ["50"], "--gpu-types": ["h100-sxm", "h100-sxm,l40s"],
        "--precision": ["fp8"], "--seed": ["1"],
    }),
    "reason coverage": (["reason", "coverage", "--reps", "3"], {
        "--k": ["1,10,100", "1000"],
        "--method": ["combined", "model-average", "kumaraswamy", "beta-mixture", "power-law"],
        "--reps": ["3", "1"], "--seed": ["0"],
    }),
    "reason cost": (["reason", "cost", "--model", "llama-3.1-8b"], {
        "--gpu": ["h100-sxm"], "--gpus": ["1", "2"], "--engine": ["vllm"],
        "--precision": ["bf16", "fp8"], "--trials": ["1,8,64", "1"], "--prompt-len": ["500"],
        "--out-len": ["4000", "1"], "--intensity": ["562.5"],
    }),
    "reason plan": (["reason", "plan", "--strategies", "oracle", "--max-k", "64",
                     "--target-accuracy", "0.2"], {
        "--target-accuracy": ["0.3", "0.99"], "--budget": ["0.01"],
        "--strategies": ["oracle,best-of-n", "majority"], "--max-k": ["16", "64"],
        "--k-per-octave": ["1", "2"], "--objective": ["usd", "eflops", "latency"],
        "--per-bin": ["0", "3"], "--verifier-tpr": ["0.9"], "--verifier-fpr": ["0.1"],
        "--out-len": ["512"], "--prompt-len": ["500"], "--gpu": ["h100-sxm"],
        "--model-map": ["pythia-70m=pythia-160m"], "--benchmark": ["MATH"],
    }),
    "catalog": (["catalog", "gpus"], {}),
}


def _base_with_samples(name: str, base: list[str]) -> list[str]:
    if name in ("reason coverage", "reason plan"):
        return [*base, "--samples", str(SHARED / "reasoning" / "pythia-math-samples.csv")]
    return base


def _file_options(name: str, files: dict[str, list[str]]) -> dict[str, list[str]]:
    """Options of ``name`` that read a file, with the hostile files as values."""
    out = {"--calibration": files["any"]}
    if name in ("train", "plan train", "infer", "serve", "serve plan", "reason cost"):
        out["--model"] = files["model"]
    if name in ("train", "infer", "serve", "reason cost"):
        out["--gpu"] = [f for f in files["any"] if f.endswith(".yaml")]
    if name == "serve":
        out["--trace"] = files["any"]
    if name in ("reason coverage", "reason plan"):
        out["--samples"] = files["any"]
    if name == "catalog":
        return {}
    return out


def fuzz_options(keys: list[str]):
    """A test run EXAMPLES times (reproducibly) with 1 to 3 of ``keys`` chosen:
    ``test(data, chosen)`` draws their values from ``data``."""

    def wrap(test):
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(st.data())
        def run_one(data):
            test(data, data.draw(st.lists(st.sampled_from(keys), min_size=1, max_size=3,
                                          unique=True)))

        return run_one

    return wrap


@pytest.mark.parametrize("name", list(COMMANDS))
def test_fuzz_command(name, files):
    base, options = COMMANDS[name]
    base = _base_with_samples(name, base)
    file_opts = _file_options(name, files)
    keys = sorted(set(options) | set(file_opts))
    if not keys:
        check([*base, "--json"])
        return

    def value_for(key: str) -> st.SearchStrategy[str]:
        good = options.get(key, [])
        hostile = st.sampled_from(file_opts[key]) if key in file_opts else st.nothing()
        return st.one_of(*(s for s in (st.sampled_from(good) if good else None, NUM, TEXT,
                                       hostile) if s is not None))

    @fuzz_options(keys)
    def one(data, chosen):
        argv = list(base)
        for key in chosen:
            value = data.draw(value_for(key), label=key)
            argv += [key] if value == "" and key in ("--offline", "--max-throughput") \
                else [key, value]
        if data.draw(st.booleans(), label="json"):
            argv.append("--json")
        check(argv)

    one()


@pytest.mark.parametrize("command", ["validate", "calibrate"])
def test_fuzz_measurement_files(command, files, tmp_path):
    """validate / calibrate on every hostile file, and on CSVs of hostile values."""
    csvs = list(files["any"])
    header = ("id,source,model,gpu,num_gpus,gpus_per_node,precision,tp,pp,dp,micro_batch,"
              "global_batch,seq_len,metric,value")
    for i, value in enumerate(HOSTILE_NUMBERS):
        path = tmp_path / f"rows{i}.csv"
        path.write_text(f"{header}\nr:1,s,llama-3.1-8b,h100-sxm,8,8,bf16,1,1,8,1,64,4096,"
                        f"step_time_s,{value}\n")
        csvs.append(str(path))
    for path in csvs:
        argv = [command, path] + (["-o", str(tmp_path / "out.yaml")] if command == "calibrate"
                                  else ["--json"])
        check(argv)


def test_help_of_every_command():
    for argv in (["--help"], ["--version"], ["plan"], ["serve", "--help"], ["reason"],
                 ["catalog"], ["train", "--help"], ["plan", "train", "--help"]):
        code, _, err = run(argv)
        assert code in (0, 2) and "Traceback" not in err, argv


# ---------------------------------------------------------------------------------------------
# The web API: every endpoint with the same options as JSON fields, plus values only JSON can
# carry (null, booleans, lists, objects, huge integers). Each answer must be 200 with finite
# JSON or 422 with a one-line "detail"; a 5xx (an uncaught exception) fails.

ENDPOINTS = {"train": "/api/train", "plan train": "/api/plan/train", "infer": "/api/infer",
             "serve": "/api/serve", "serve plan": "/api/serve/plan",
             "reason coverage": "/api/reason/coverage", "reason cost": "/api/reason/cost",
             "reason plan": "/api/reason/plan"}
JSON_HOSTILE = [None, True, False, [], {}, ["8"], {"a": 1}, 0, -1, 2**31, 2**63, -2**64,
                10**400, 1e308, -1e-308, 0.5, "１２", "8 "]
#: Flags that are booleans in a request body.
SWITCHES = {"--offline", "--max-throughput", "--json"}


def _field(option: str) -> str:
    return option.lstrip("-").replace("-", "_")


def _json_value(text: str):
    """A command-line value as JSON would carry it: a number where it reads as one."""
    for kind in (int, float):
        try:
            value = kind(text)
        except ValueError:
            continue
        if math.isfinite(value):
            return value
    return text


def _body(name: str, base: list[str]) -> dict:
    """The request body of a command's base argv (options after the command words)."""
    words = 2 if name in ENDPOINTS and " " in name else 1
    args, body = base[words:], {}
    while args:
        key = args.pop(0)
        body[_field(key)] = True if key in SWITCHES else _json_value(args.pop(0))
    if name == "reason plan":
        body["samples"] = [body["samples"]]
    return body


@pytest.fixture(scope="module")
def client():
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from flopcast.web.app import create_app

    return TestClient(create_app(), raise_server_exceptions=False)


def check_api(client, path: str, body, files=None) -> None:
    """One request: 200 with finite JSON, or 422 with one line; never 5xx, never a hang."""
    TRIED["api " + path] += 1
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(HANG_S)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            r = (client.post(path, files=files) if files is not None
                 else client.post(path, json=body))
    except Hang:
        pytest.fail(f"ran longer than {HANG_S} s: POST {path} {str(body)[:300]}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    shown = f"POST {path} {str(body)[:300]}"
    assert r.status_code in (200, 422), f"{r.status_code}: {shown}\n{r.text[:2000]}"
    data = json.loads(r.text, parse_constant=_no_constant)
    if r.status_code == 422:
        detail = data.get("detail")
        assert isinstance(detail, str) and detail and "\n" not in detail, f"{shown}: {data}"
    else:
        assert _finite(data) is None, f"non-finite {_finite(data)}: {shown}"


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_fuzz_endpoint(name, files, client):
    base, options = COMMANDS[name]
    body = _body(name, _base_with_samples(name, base))
    file_opts = _file_options(name, files)
    keys = sorted({_field(k) for k in (*options, *file_opts)} | {"no_such_option"})

    def value_for(key: str) -> st.SearchStrategy:
        option = "--" + key.replace("_", "-")
        good = [True if option in SWITCHES else _json_value(v)
                for v in options.get(option, [])]
        hostile = file_opts.get(option, [])
        return st.one_of(*(st.sampled_from(v) for v in (good, hostile, JSON_HOSTILE,
                                                        HOSTILE_NUMBERS, HOSTILE_TEXT) if v))

    @fuzz_options(keys)
    def one(data, chosen):
        check_api(client, ENDPOINTS[name],
                  body | {key: data.draw(value_for(key), label=key) for key in chosen})

    one()


def test_fuzz_endpoint_bodies(client):
    """Bodies that are not objects, and the catalogs."""
    for path in ENDPOINTS.values():
        for body in (None, [], [1], "x", 1, {"": 1}, {"a" * 5000: 1}):
            check_api(client, path, body)
    for kind in ("gpus", "models", "engines", "frameworks", "datasets"):
        TRIED["api /api/catalog"] += 1
        assert client.get(f"/api/catalog/{kind}").status_code == 200


def test_fuzz_validate_upload(files, client):
    """POST /api/validate with every hostile file uploaded."""
    for path in files["any"]:
        try:
            content = Path(path).read_bytes()[:2**20] if Path(path).is_file() else b""
        except OSError:
            content = b""
        check_api(client, "/api/validate", path, files={"file": (Path(path).name, content)})


def teardown_module(module):
    """Counts of inputs tried per command (shown with ``pytest -s``)."""
    total = sum(TRIED.values())
    print(f"\nfuzz: {total} inputs: " + ", ".join(f"{k} {v}" for k, v in sorted(TRIED.items())))
