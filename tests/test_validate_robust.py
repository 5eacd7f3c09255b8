"""Hostile and malformed measurement files (issue 12): `flopcast validate` and `flopcast
calibrate` answer a file-level problem with one line on stderr and exit status 2, never a
traceback; a single bad row is skipped with its reason and not scored."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from flopcast.cli import main
from flopcast.validate import validate_file
from flopcast.validate.inputs import parse_number

INFERENCE = ["id", "source", "model", "gpu", "num_gpus", "tp", "precision", "engine",
             "input_len", "output_len", "batch_size", "metric", "value", "notes"]
GOOD = dict(id="R:1", source="r", model="llama-3.1-8b", gpu="h100-sxm", num_gpus="1", tp="1",
            precision="bf16", engine="vllm", input_len="128", output_len="128",
            batch_size="8", metric="tpot_ms", value="10", notes="")


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `flopcast ARGS`."""
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def refused(capsys, *args: str) -> str:
    """The one error line of a command that must refuse its input with exit status 2."""
    code, _, err = run_cli(capsys, *args)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def _bad_files(tmp_path: Path) -> dict[str, tuple[bytes, str]]:
    """name → (file content, a phrase its one-line error must contain)."""
    header = ",".join(INFERENCE) + "\n"
    row = ",".join(GOOD[c] for c in INFERENCE) + "\n"
    return {
        "empty": (b"", "empty file"),
        "blank": (b"\n  \n", "empty file"),
        "binary": (bytes(range(256)) * 8, "not UTF-8"),
        "nul": (header.encode() + b"R:1\x00,r\n", "NUL character"),
        "latin1": (header.encode() + "R:1,caf\xe9\n".encode("latin-1"), "not UTF-8"),
        "unknown schema": (b"a,b,c\n1,2,3\n", "matches no measurement schema"),
        "missing column": (b"id,model,gpu,engine,metric\nR:1,llama-3.1-8b,h100-sxm,vllm,tpot_ms\n",
                           "no column value"),
        "duplicate column": (b"id,model,gpu,metric,value,value,engine\n", "appears twice"),
        "header only": (header.encode(), "no data rows"),
        "huge field": ((header + row[:-1] + "x" * 200_000 + "\n").encode(),
                       "longer than 131,072 characters"),
        "huge header": (("x" * 5000 + "," + header).encode(), "characters"),
    }


def test_file_level_problems_are_one_line_exit_2(tmp_path, capsys):
    for name, (content, phrase) in _bad_files(tmp_path).items():
        path = tmp_path / f"{name.replace(' ', '_')}.csv"
        path.write_bytes(content)
        line = refused(capsys, "validate", str(path))
        assert str(path) in line and phrase in line, (name, line)
        line = refused(capsys, "calibrate", str(path), "-o", str(tmp_path / "c.yaml"))
        assert phrase in line, (name, line)


def test_missing_file_and_directory(tmp_path, capsys):
    assert "file not found" in refused(capsys, "validate", str(tmp_path / "none.csv"))
    assert "is a directory" in refused(capsys, "validate", str(tmp_path))


def test_bom_and_utf16_files_are_read(tmp_path, write_csv):
    text = write_csv(INFERENCE, [GOOD], "plain.csv").read_text()
    expected = validate_file(tmp_path / "plain.csv")["rows"][0]["predicted"]
    for name, data in (("bom", b"\xef\xbb\xbf" + text.encode()), ("u16", text.encode("utf-16"))):
        (tmp_path / f"{name}.csv").write_bytes(data)
        row = validate_file(tmp_path / f"{name}.csv")["rows"][0]
        assert row["id"] == "R:1" and row["predicted"] == expected


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "0", "abc", "", "1e400",
                                   "1" * 500, "1e13"])
def test_unusable_measured_values_are_skipped_not_scored(tmp_path, value, write_csv):
    path = write_csv(INFERENCE, [dict(GOOD, id="BAD", value=value), GOOD], "v.csv")
    result = validate_file(path)
    bad, good = result["rows"]
    assert bad["predicted"] is None and "ape_pct" not in bad
    assert bad["skipped"].startswith("value") and "allowed" in bad["skipped"]
    assert bad["measured"] is None or math.isfinite(bad["measured"])
    assert good["predicted"] is not None
    assert result["summary"]["predicted"] == 1


@pytest.mark.parametrize("column,value,phrase", [
    ("batch_size", "1" * 500, "out of range"),       # 309+ digits: no OverflowError
    ("batch_size", "inf", "not finite"),
    ("batch_size", "2.5", "not a whole number"),
    ("batch_size", "0", "out of range"),
    ("batch_size", "10000000", "out of range"),
    ("num_gpus", "-8", "out of range"),
    ("input_len", "many", "not a number"),
    ("tp", "nan", "not a number"),
    ("model", "m" * 5000, "5,000 characters"),
])
def test_bad_cells_skip_the_row_with_a_reason(tmp_path, column, value, phrase, write_csv):
    path = write_csv(INFERENCE, [dict(GOOD, id="BAD", **{column: value}), GOOD], "c.csv")
    bad, good = validate_file(path)["rows"]
    assert bad["predicted"] is None and phrase in bad["skipped"], bad["skipped"]
    assert column in bad["skipped"] and len(bad["skipped"]) < 300
    assert bad["line"] == 2 and good["line"] == 3 and good["predicted"] is not None


def test_wrong_field_count_skips_the_row(tmp_path, write_csv):
    path = write_csv(INFERENCE, [GOOD], "f.csv")
    path.write_text(path.read_text() + "R:2,r,llama-3.1-8b,h100-sxm,1,1,bf16,vllm,128,128,8,"
                    "tpot_ms,10,,one too many\n")
    first, second = validate_file(path)["rows"]
    assert first["predicted"] is not None
    assert second["predicted"] is None and "has 15 fields; the header has 14" in second["skipped"]


def test_cli_table_shows_skips_and_escapes_markup(tmp_path, capsys, write_csv):
    path = write_csv(INFERENCE, [dict(GOOD, id="[/bold]x", value="-1"), GOOD], "t.csv")
    code, out, err = run_cli(capsys, "validate", str(path))
    assert code == 0 and not err
    assert "[/bold]x" in out and "skipped" in out


def test_bad_calibration_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    import flopcast.validate.report as report

    def no_reading(*_):
        raise AssertionError("the CSV was read before the calibration was checked")

    monkeypatch.setattr(report, "read_table", no_reading)
    csv_path = str(tmp_path / "never-read.csv")
    (tmp_path / "list.yaml").write_text("[1, 2]\n")
    (tmp_path / "nofamilies.yaml").write_text("description: x\n")
    (tmp_path / "broken.yaml").write_text("a: [\n")
    for cal, phrase in ((tmp_path / "none.yaml", "file not found"), (tmp_path, "not a file"),
                        (tmp_path / "list.yaml", "expected a calibration"),
                        (tmp_path / "nofamilies.yaml", "not a calibration"),
                        (tmp_path / "broken.yaml", "not valid YAML")):
        line = refused(capsys, "validate", csv_path, "--calibration", str(cal))
        assert "--calibration" in line and phrase in line, line


def test_calibrate_checks_output_folder_before_fitting(tmp_path, capsys, write_csv):
    path = write_csv(INFERENCE, [GOOD], "i.csv")
    line = refused(capsys, "calibrate", str(path), "-o", str(tmp_path / "no" / "c.yaml"))
    assert "does not exist" in line
    line = refused(capsys, "calibrate", str(path), "-o", str(tmp_path))
    assert "is a directory" in line


def test_calibrate_refuses_fewer_rows_than_parameters(tmp_path, capsys, write_csv):
    pytest.importorskip("scipy")
    path = write_csv(INFERENCE, [GOOD, dict(GOOD, id="R:2", value="nan")], "i.csv")
    line = refused(capsys, "calibrate", str(path), "-o", str(tmp_path / "c.yaml"))
    assert "1 usable row for 2 parameters" in line, line
    assert not (tmp_path / "c.yaml").exists()


def test_calibrate_with_only_unusable_values_says_why(tmp_path, capsys, write_csv):
    path = write_csv(INFERENCE, [dict(GOOD, value=v) for v in ("0", "-1", "inf")], "i.csv")
    line = refused(capsys, "calibrate", str(path), "-o", str(tmp_path / "c.yaml"))
    assert "none of its 3 inference rows can be fitted" in line and "value '0'" in line


def test_serving_and_training_rows_reject_hostile_numbers(tmp_path, write_csv):
    serving = write_csv(INFERENCE + ["scenario", "request_rate"],
                        [dict(GOOD, scenario="online", request_rate="0", batch_size="")], "s.csv")
    row = validate_file(serving)["rows"][0]
    assert row["predicted"] is None and "request_rate '0' is out of range" in row["skipped"]
    training = ["id", "model", "gpu", "num_gpus", "seq_len", "tp", "metric", "value"]
    base = dict(id="T:1", model="llama-3.1-8b", gpu="h100-sxm", num_gpus="8", seq_len="4096",
                metric="step_time_s", value="1")
    path = write_csv(training, [dict(base, tp="1" * 400), base], "t.csv")
    bad, good = validate_file(path)["rows"]
    assert "tp '111" in bad["skipped"] and good["predicted"] is not None


def test_parse_number_rules():
    assert parse_number("request_rate", "inf") == math.inf
    assert parse_number("value", "1e3") == 1000.0
    assert parse_number("tp", "8.0") == 8.0
    for column, text in (("value", "0"), ("value", "1e400"), ("tp", "1.5"), ("tp", "-inf"),
                         ("slo_ttft_ms", "inf"), ("zero_stage", "4")):
        with pytest.raises(ValueError, match="allowed"):
            parse_number(column, text)
