"""The headless CLI: inspect over good, bad and real-world inputs; synth."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file, get_testdata_files

from core.cli.main import main

# Files pydicom itself documents as malformed, each must come back as ok: false, one line.
MALFORMED = ["MR_truncated.dcm", "badVR.dcm", "JPEG2000-embedded-sequence-delimiter.dcm", "rtplan_truncated.dcm"]
READABLE_CT = ["CT_small.dcm", "693_UNCI.dcm", "693_J2KI.dcm", "693_J2KR.dcm", "explicit_VR-UN.dcm",
               "bad_sequence.dcm", "eCT_Supplemental.dcm", "J2K_pixelrep_mismatch.dcm"]  # fmt: skip


def _inspect_json(paths, capsys):
    code = main(["inspect", "--json", *map(str, paths)])
    lines = capsys.readouterr().out.splitlines()
    return code, [json.loads(line) for line in lines]


def test_inspect_json_one_object_per_path_and_exit_codes(synth_root, tmp_path, capsys):
    code, records = _inspect_json([synth_root / "SYN001"], capsys)
    assert code == 0 and len(records) == 1
    rec = records[0]
    assert rec["ok"] and rec["path"] == str(synth_root / "SYN001")
    assert rec["series"][0]["slices"] == 12 and rec["series"][0]["unit"] == "HU"
    assert rec["annotations"]
    code, records = _inspect_json([synth_root / "SYN002", tmp_path / "missing"], capsys)
    assert code == 2 and [r["ok"] for r in records] == [True, False]
    assert "no such file" in records[1]["error"]


@pytest.mark.parametrize("name", READABLE_CT)
def test_readable_ct_files_load(name, capsys):
    code, (rec,) = _inspect_json([get_testdata_file(name, download=False)], capsys)
    assert code == 0 and rec["ok"], rec
    lo, hi = rec["series"][0]["range"]
    assert -4096 <= lo < hi <= 4096  # HU, not raw stored values


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_files_give_one_line_errors(name, capsys):
    code, (rec,) = _inspect_json([get_testdata_file(name, download=False)], capsys)
    assert code == 2 and not rec["ok"]
    assert rec["error"] and "\n" not in rec["error"] and "Traceback" not in rec["error"]


def test_every_pydicom_test_file_goes_through_inspect_without_a_crash(tmp_path):
    files = get_testdata_files()
    assert len(files) > 200  # pydicom's own files plus pydicom-data
    result = subprocess.run(
        [sys.executable, "-m", "core.cli", "inspect", "--json", *files],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert "Traceback" not in result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["path"] for r in records] == files
    assert all(r["ok"] or r["error"] for r in records)
    assert sum(r["ok"] for r in records) > 100
    assert result.returncode == 2  # some are meant to be unreadable


def test_text_output_and_error_exit(synth_root, capsys):
    assert main(["inspect", str(synth_root / "SYN001")]) == 0
    out = capsys.readouterr().out
    assert "12 x 128x128" in out and "annotation" in out


def test_synth_command(tmp_path, capsys):
    code = main(["synth", "--out", str(tmp_path / "s"), "--patients", "1", "--slices", "4", "--size", "64"])
    assert code == 0
    assert (tmp_path / "s" / "labels.csv").is_file()
    assert len(list((tmp_path / "s" / "SYN001" / "CT").glob("*.dcm"))) == 4
    code = main(["synth", "--out", str(tmp_path / "t"), "--patients", "1", "--slices", "6", "--size", "64",
                 "--lesion-scale", "1.5", "--twins"])  # fmt: skip
    assert code == 0 and len(list((tmp_path / "t" / "SYN001T" / "CT").glob("*.dcm"))) == 6
    code = main(["synth", "--out", str(tmp_path / "u"), "--patients", "2", "--slices", "4", "--size", "64",
                 "--healthy-every", "3"])  # fmt: skip
    assert code == 0 and (tmp_path / "u" / "SYN002" / "lesions.seg.dcm").is_file()  # every 3rd is healthy
    for bad in (["--healthy-every", "0"], ["--seed", "-1"]):  # one line, exit 2, nothing written
        assert main(["synth", "--out", str(tmp_path / "v"), *bad]) == 2
        assert "--healthy-every >= 1, 0 <= --seed < 2^32" in capsys.readouterr().err
        assert not (tmp_path / "v").exists()


def test_python_dash_m_desktop_help_needs_no_display():
    result = subprocess.run([sys.executable, "-m", "desktop", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "screenshot" in result.stdout


def test_ctlens_version_from_the_console_script():
    exe = Path(sys.executable).with_name("ctlens")
    result = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("ctlens ")
