"""The page in a real browser: Playwright drives Debian's Chromium (/usr/bin/chromium) against
`flopcast web` on a loopback port, fills the training and reason-cost forms, opens the other
tabs by address, and checks that every number the page shows is the API's number for the same
request, and that the serving latency CDFs and the reason-cost chart draw the API's numbers.

Skips when fastapi, uvicorn, plotly, playwright or /usr/bin/chromium is missing, except under
FLOPCAST_REQUIRE_BROWSER=1 (set by .ci/run), where a missing piece fails the test.
FLOPCAST_WEB_SCREENSHOT=PATH also writes the training screenshot to PATH (docs/web.png is
made so).
"""

import importlib.util
import json
import math
import os
import re
import shutil
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
REQUIRE = os.environ.get("FLOPCAST_REQUIRE_BROWSER") == "1"
#: The training request the test types into the form (field = the form's input name).
TRAIN = {"model": "llama-3.1-70b", "gpu": "h100-sxm", "gpus": 64, "tp": 4, "pp": 2,
         "global_batch": 128, "seq_len": 4096}
#: The training form's drop-downs among the fields TRAIN fills (the rest are text boxes).
TRAIN_SELECTS = {"model", "gpu"}
#: Shown numbers have 4 significant digits (app.js fmt): at most half a unit in the 4th digit.
SHOWN_RTOL = 5.01e-4
#: Fields the training result must show (paths in the API's JSON).
TRAIN_FIELDS = {"step_time_s", "tokens_per_s", "mfu", "memory.total", "memory.capacity",
                "memory_by_stage.first.total", "memory_by_stage.last.activations",
                "breakdown_s.compute_s", "breakdown_s.bubble_s"}


def _missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    for module in ("fastapi", "uvicorn", "plotly", "playwright"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install 'flopcast[web]' playwright)"
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} is missing (apt-get install -y chromium)"
    return None


@pytest.fixture(scope="module")
def base_url():
    """`flopcast web`'s application served by uvicorn in a thread on a free loopback port."""
    why = _missing()
    if why:
        if REQUIRE:
            pytest.fail(f"FLOPCAST_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(why)
    import uvicorn

    from flopcast.web.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(base_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM))
        yield b
        b.close()


@pytest.fixture
def page(browser):
    """A fresh page; JavaScript errors on it fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def post(base_url: str, path: str, body: dict, warnings: list | None = None) -> tuple[int, dict]:
    """POST a JSON body straight to the API: (status, JSON answer); the warnings it sends
    (X-Flopcast-Warning) are appended to ``warnings``."""
    req = urllib.request.Request(base_url + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as res:
            if warnings is not None and res.headers.get("X-Flopcast-Warning"):
                warnings.extend(json.loads(res.headers["X-Flopcast-Warning"]))
            return res.status, json.load(res)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def lookup(data, path: str):
    """data at a dotted path ('memory_by_stage.first.total', 'top.0.mfu')."""
    for key in path.split("."):
        data = data[int(key)] if isinstance(data, list) else data[key]
    return data


def shown_number(text: str) -> float:
    """The number a cell shows ('70,360', '7.610e-4', '52.58')."""
    assert re.fullmatch(r"-?[\d,]*\.?\d+(e[+-]?\d+)?", text), f"not a number: {text!r}"
    return float(text.replace(",", ""))


def fill_train_form(page, base_url: str, request: dict) -> None:
    page.goto(base_url + "/", wait_until="domcontentloaded")
    page.wait_for_selector("body[data-ready=true]", state="attached")
    for name, value in request.items():
        field = page.locator(f"#train-form [name={name}]")
        if name in TRAIN_SELECTS:
            field.select_option(str(value))
        else:
            field.fill(str(value))
    page.click("#train-submit")
    page.wait_for_selector("#train-result[data-state=done], #train-result[data-state=error]",
                           state="attached", timeout=20_000)


def result_cells(page, result: str) -> list[dict]:
    return page.eval_on_selector_all(
        f"{result} [data-field]",
        "els => els.map(e => ({field: e.dataset.field, value: e.dataset.value ?? null,"
        " scale: e.dataset.scale ?? null, text: e.textContent}))")


def check_cells(cells: list[dict], answer: dict) -> None:
    """Each cell carries the API's number and shows it (scaled, rounded to 4 digits)."""
    for cell in cells:
        expected = lookup(answer, cell["field"])
        if cell["value"] is None:
            words = {True: "yes", False: "no", None: "—"}
            assert cell["text"] == words.get(expected, str(expected)), cell
            continue
        assert float(cell["value"]) == expected, cell
        scaled = expected * float(cell["scale"] or 1)
        assert math.isclose(shown_number(cell["text"]), scaled, rel_tol=SHOWN_RTOL,
                            abs_tol=1e-12), (cell, scaled)


def test_training_form_shows_the_api_numbers(base_url, page, tmp_path):
    fill_train_form(page, base_url, TRAIN)
    assert page.get_attribute("#train-result", "data-state") == "done", \
        page.inner_text("#train-error")
    status, answer = post(base_url, "/api/train", TRAIN)
    assert status == 200, answer
    cells = result_cells(page, "#train-result")
    missing = TRAIN_FIELDS - {c["field"] for c in cells}
    assert not missing, f"the page does not show {missing}"
    check_cells(cells, answer)
    with urllib.request.urlopen(base_url + "/api/catalog/models", timeout=30) as res:
        models = [row["id"] for row in json.load(res)]
    options = page.eval_on_selector_all("#train-form [name=model] option",
                                        "os => os.map(o => o.value)")
    assert options == models
    page.wait_for_selector("#train-chart-memory .main-svg", state="attached")
    shot = tmp_path / "train.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("FLOPCAST_WEB_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["FLOPCAST_WEB_SCREENSHOT"])


def test_the_address_reruns_the_form(base_url, page):
    fill_train_form(page, base_url, TRAIN)
    shared = page.url
    assert "#train?" in shared and "model=llama-3.1-70b" in shared and "tp=4" in shared
    page.goto("about:blank")
    page.goto(shared, wait_until="domcontentloaded")
    page.wait_for_selector("#train-result[data-state=done]", state="attached", timeout=20_000)
    assert page.input_value("#train-form [name=gpus]") == str(TRAIN["gpus"])
    assert page.input_value("#train-form [name=model]") == TRAIN["model"]
    _, answer = post(base_url, "/api/train", TRAIN)
    check_cells(result_cells(page, "#train-result"), answer)


#: (form, endpoint, request) for the other tabs: opened by address, checked against the API
#: (the serving tabs: SERVING_TABS below).
OTHER_TABS = [
    ("infer", "/api/infer", {"model": "llama-3.1-8b", "gpus": 1, "batch": 8}),
    ("plan", "/api/plan/train", {"model": "llama-3.1-8b", "gpus": "16", "top": 3}),
    # beyond the model's context: allowed, with a warning the page must show
    ("train", "/api/train", {"model": "pythia-70m", "seq_len": 8192}),
]


def open_by_address(page, base_url: str, form: str, request: dict) -> None:
    """Open #form?request (the shared-address form), wait for its result, check no error."""
    page.goto(f"{base_url}/#{form}?{urllib.parse.urlencode(request)}",
              wait_until="domcontentloaded")
    page.wait_for_selector(f"#{form}-result[data-state=done], #{form}-result[data-state=error]",
                           state="attached", timeout=20_000)
    assert page.is_hidden(f"#{form}-error"), page.inner_text(f"#{form}-error")


def test_other_tabs_show_the_api_numbers(base_url, page):
    page.goto(base_url + "/", wait_until="domcontentloaded")
    page.wait_for_selector("body[data-ready=true]", state="attached")
    for form, endpoint, request in OTHER_TABS:
        open_by_address(page, base_url, form, request)
        warnings: list[str] = []
        status, answer = post(base_url, endpoint, request, warnings)
        assert status == 200, answer
        cells = result_cells(page, f"#{form}-result")
        assert len(cells) > 10
        check_cells(cells, answer)
        shown = page.eval_on_selector_all(f"#{form}-result .warning",
                                          "ws => ws.map(w => w.textContent)")
        assert shown == [f"warning: {w}" for w in warnings]
    assert shown, "the context-length warning was not shown"


def test_invalid_input_shows_the_one_line_error(base_url, page):
    bad = {**TRAIN, "model": "llama-3.1-8b", "gpus": 8, "tp": 3, "pp": 1}
    fill_train_form(page, base_url, bad)
    status, answer = post(base_url, "/api/train", bad)
    assert status == 422
    assert page.get_attribute("#train-result", "data-state") == "error"
    assert page.is_visible("#train-error")
    shown = page.inner_text("#train-error")
    assert shown == answer["detail"] and "\n" not in shown and "tp" in shown
    assert page.inner_text("#train-result") == ""


def test_validate_upload_shows_the_api_numbers(base_url, page, training_csv, tmp_path):
    import httpx

    lines = training_csv.read_text().splitlines(keepends=True)
    csv = tmp_path / "few.csv"
    csv.write_text("".join(lines[:9]))
    answer = httpx.post(base_url + "/api/validate", timeout=60,
                        files={"file": (csv.name, csv.read_bytes(), "text/csv")}).json()
    page.goto(base_url + "/#validate", wait_until="domcontentloaded")
    page.wait_for_selector("body[data-ready=true]", state="attached")
    page.set_input_files("#validate-file", str(csv))
    page.click("#validate-submit")
    page.wait_for_selector("#validate-result[data-state=done], #validate-result[data-state=error]",
                           state="attached", timeout=20_000)
    assert page.is_hidden("#validate-error"), page.inner_text("#validate-error")
    cells = result_cells(page, "#validate-result")
    assert {"summary.median_ape_pct", "rows.0.predicted", "rows.7.ape_pct"} <= {
        c["field"] for c in cells}
    check_cells(cells, answer)


#: (form, endpoint, request) of the serving tabs; every field whose page default differs from
#: the API's is given, so the page's request is this one.
SERVING_TABS = [
    ("serve", "/api/serve", {"model": "llama-3.1-8b", "dataset": "sharegpt", "request_rate": 6,
                             "num_requests": 150, "seed": 2}),
    ("servplan", "/api/serve/plan", {"model": "llama-3.1-8b", "request_rate": 4,
                                     "gpu_types": "h100-sxm", "max_tp": 1,
                                     "dataset": "sharegpt", "slo_ttft_p99": 500,
                                     "slo_tpot_p99": 50, "num_requests": 60}),
]
LATENCY_KEYS = ("ttft_ms", "tpot_ms", "itl_ms", "e2e_latency_ms")


def chart_traces(page, chart_id: str) -> list[dict]:
    """The traces Plotly drew in #chart_id: name, x, y."""
    page.wait_for_selector(f"#{chart_id} .main-svg", state="attached", timeout=20_000)
    return page.evaluate("id => document.getElementById(id).data.map("
                         "t => ({name: t.name, x: t.x, y: t.y}))", chart_id)


def test_serving_tabs_draw_the_api_cdf(base_url, page):
    """The latency CDF is the API's distribution (cdf: values at its quantile grid), drawn
    and tabled, on Serve and on Plan a fleet."""
    for form, endpoint, request in SERVING_TABS:
        open_by_address(page, base_url, form, request)
        status, answer = post(base_url, endpoint, request)
        assert status == 200, answer
        summary, prefix = (answer, "") if form == "serve" else (answer["best"]["summary"],
                                                                 "best.summary.")
        cells = result_cells(page, f"#{form}-result")
        check_cells(cells, answer)
        fields = {c["field"] for c in cells}
        for key in LATENCY_KEYS:
            values = summary["cdf"][key]["values"]
            assert len(values) >= 20
            assert {f"{prefix}cdf.{key}.values.{i}" for i in range(len(values))} <= fields
        drawn = chart_traces(page, f"{form}-chart-cdf")
        assert [t["name"] for t in drawn] == ["TTFT", "TPOT", "ITL", "end-to-end"]
        for trace, key in zip(drawn, LATENCY_KEYS, strict=True):
            assert trace["x"] == summary["cdf"][key]["values"]
            assert trace["y"] == summary["cdf"][key]["quantiles"]


#: The reason cost request the test types into the form (the other fields keep defaults
#: equal to the API's).
RCOST = {"model": "llama-3.1-8b", "gpu": "h100-sxm", "trials": "1,4,32", "out_len": 2000}
RCOST_FIELDS = ("flops", "kinetics_eflops", "kinetics_memory_share", "seconds", "prefill_s",
                "decode_s", "parallel_trials", "waves", "gpu_hours", "usd", "joules")


def test_reason_cost_form_shows_the_api_numbers(base_url, page):
    page.goto(base_url + "/#reason", wait_until="domcontentloaded")
    page.wait_for_selector("body[data-ready=true]", state="attached")
    for name, value in RCOST.items():
        field = page.locator(f"#rcost-form [name={name}]")
        if name in {"model", "gpu"}:
            field.select_option(value)
        else:
            field.fill(str(value))
    page.click("#rcost-submit")
    page.wait_for_selector("#rcost-result[data-state=done], #rcost-result[data-state=error]",
                           state="attached", timeout=20_000)
    assert page.is_hidden("#rcost-error"), page.inner_text("#rcost-error")
    assert "#rcost?" in page.url and "trials=1%2C4%2C32" in page.url
    status, answer = post(base_url, "/api/reason/cost", RCOST)
    assert status == 200, answer
    assert [row["trials"] for row in answer["costs"]] == [1, 4, 32]
    cells = result_cells(page, "#rcost-result")
    assert {f"costs.{i}.{f}" for i in range(3) for f in RCOST_FIELDS} <= {c["field"]
                                                                          for c in cells}
    check_cells(cells, answer)
    drawn = chart_traces(page, "rcost-chart-cost")
    assert [t["x"] for t in drawn] == [[1, 4, 32]] * 3
    assert [t["y"] for t in drawn] == [[r[k] for r in answer["costs"]]
                                       for k in ("flops", "kinetics_eflops", "usd")]
