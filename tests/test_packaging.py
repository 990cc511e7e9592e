"""Desktop packaging: the PyInstaller spec, the Linux desktop entry, AppStream metainfo and icons agree
with each other and with the project; the slow test builds the bundle and runs it without the venv."""

from __future__ import annotations

import ast
import configparser
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import tomllib
from PIL import Image

import core

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"
SPEC = PACKAGING / "ctlens.spec"
ICONS = PACKAGING / "icons" / "hicolor"
APP_ID = "org.ctlens.CTLens"
DESKTOP = PACKAGING / "linux" / f"{APP_ID}.desktop"
METAINFO = PACKAGING / "linux" / f"{APP_ID}.metainfo.xml"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(DESKTOP, encoding="utf-8")
    return parser["Desktop Entry"]


def spec_excludes() -> list[str]:
    tree = ast.parse(SPEC.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "EXCLUDES" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise AssertionError("ctlens.spec defines no EXCLUDES list")


def imported_modules(*packages: str) -> set[str]:
    """Every module named in an import statement under the given source folders."""
    names: set[str] = set()
    for package in packages:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names.add(node.module)
                    names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("size", SIZES)
def test_icon_png_at_every_size(size):
    path = ICONS / f"{size}x{size}" / "apps" / "ctlens.png"
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (size, size) and image.mode == "RGBA"
        alpha = np.asarray(image)[..., 3]
    assert alpha[0, 0] == 0 and alpha[size // 2, size // 2] == 255  # rounded tile: clear corners, opaque middle
    assert path.stat().st_size < 64 * 1024


def test_scalable_icon_and_windows_icon():
    root = ET.parse(ICONS / "scalable" / "apps" / "ctlens.svg").getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    _, _, width, height = (float(v) for v in root.attrib["viewBox"].split())
    assert width == height
    with Image.open(PACKAGING / "icons" / "ctlens.ico") as ico:
        assert ico.format == "ICO" and {(s, s) for s in SIZES if s <= 256} <= set(ico.info["sizes"])


def test_icons_are_what_make_icons_draws():
    sys.path.insert(0, str(PACKAGING))
    try:
        import make_icons
    finally:
        sys.path.remove(str(PACKAGING))
    assert make_icons.SIZES == SIZES
    assert (ICONS / "scalable" / "apps" / "ctlens.svg").read_text() == make_icons.svg()
    assert make_icons.WINDOW_ICON.read_text() == make_icons.svg()  # the window shows the same icon


def test_desktop_entry_launches_the_viewer():
    entry = desktop_entry()
    for key in ("Type", "Name", "Comment", "Exec", "Icon", "Categories", "Terminal"):
        assert entry.get(key), key
    assert entry["Type"] == "Application" and entry["Terminal"] == "false"
    exec_ = entry["Exec"].split()
    assert exec_[0] == "ctlens" == entry["TryExec"] and exec_[1] == "view"
    assert exec_[0] in PYPROJECT["project"]["scripts"]
    assert entry["Icon"] == "ctlens" and (ICONS / "256x256" / "apps" / f"{entry['Icon']}.png").is_file()
    assert entry["Categories"].endswith(";")
    if shutil.which("desktop-file-validate"):
        result = subprocess.run(["desktop-file-validate", str(DESKTOP)], capture_output=True, text=True)
        assert result.returncode == 0 and "error" not in result.stdout, result.stdout


def test_metainfo_matches_desktop_entry_and_project():
    root = ET.parse(METAINFO).getroot()
    assert root.tag == "component" and root.get("type") == "desktop-application"
    assert root.findtext("id") == APP_ID
    assert root.findtext("launchable[@type='desktop-id']") == DESKTOP.name
    assert root.findtext("provides/binary") == desktop_entry()["Exec"].split()[0]
    assert root.findtext("icon[@type='stock']") == desktop_entry()["Icon"]
    assert root.findtext("project_license") == PYPROJECT["project"]["license"]["text"]
    assert root.find("releases/release").get("version") == core.__version__ == PYPROJECT["project"]["version"]
    categories = {c.text for c in root.iterfind("categories/category")}
    assert categories == {c for c in desktop_entry()["Categories"].split(";") if c}
    if shutil.which("appstreamcli"):
        result = subprocess.run(["appstreamcli", "validate", "--no-net", str(METAINFO)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_spec_excludes_dev_tools_but_nothing_the_app_imports():
    excludes = set(spec_excludes())
    assert {"pytest", "mypy", "ruff", "importlinter", "pytorch_grad_cam", "tkinter", "triton", "tests"} <= excludes
    assert {"PySide6.QtWebEngineCore", "PySide6.Qt3DCore", "PySide6.QtQuick", "PySide6.QtQml",
            "PySide6.QtMultimedia", "PySide6.QtPdf"} <= excludes  # fmt: skip
    used = imported_modules("core", "desktop")
    clash = {m for m in used for x in excludes if m == x or m.startswith(x + ".")}
    assert not clash, f"excluded from the bundle but imported by the app: {sorted(clash)}"


def test_spec_entry_point_and_build_wiring():
    spec = SPEC.read_text()
    for name in ("ctlens_main.py", "make_icons.py", "linux/install.sh"):
        assert (PACKAGING / name).is_file(), name
    assert 'name="ctlens"' in spec and "core.resources" in spec and APP_ID in spec
    assert os.access(PACKAGING / "linux" / "install.sh", os.X_OK)
    assert any(r.startswith("pyinstaller") for r in PYPROJECT["project"]["optional-dependencies"]["package"])
    makefile = (ROOT / "Makefile").read_text()
    assert "package" in makefile.split(".PHONY:")[1].splitlines()[0] and "packaging/ctlens.spec" in makefile
    result = subprocess.run([sys.executable, str(PACKAGING / "ctlens_main.py"), "--version"],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0 and result.stdout.strip() == f"ctlens {core.__version__}", result.stderr


def _fake_bundle(folder: Path) -> Path:
    """A bundle folder laid out as ctlens.spec lays out dist/ctlens on Linux, with a stand-in executable."""
    bundle = folder / "ctlens"
    (bundle / "share" / "applications").mkdir(parents=True)
    (bundle / "share" / "metainfo").mkdir(parents=True)
    shutil.copytree(ICONS, bundle / "share" / "icons" / "hicolor")
    shutil.copy2(DESKTOP, bundle / "share" / "applications")
    shutil.copy2(METAINFO, bundle / "share" / "metainfo")
    shutil.copy2(PACKAGING / "linux" / "install.sh", bundle)
    exe = bundle / "ctlens"
    exe.write_text("#!/bin/sh\necho ctlens-bundle\n")
    exe.chmod(0o755)
    return bundle


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX shell script")
def test_linux_install_script_installs_and_uninstalls(tmp_path):
    bundle = _fake_bundle(tmp_path / "unpacked")
    prefix = tmp_path / "prefix"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PREFIX": str(prefix)}
    result = subprocess.run(["sh", str(bundle / "install.sh")], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    binary = prefix / "bin" / "ctlens"
    assert subprocess.run([str(binary)], capture_output=True, text=True).stdout.strip() == "ctlens-bundle"
    installed = (prefix / "share" / "applications" / DESKTOP.name).read_text()
    assert f"Exec={binary} view %f" in installed and f"TryExec={binary}" in installed
    assert (prefix / "share" / "metainfo" / METAINFO.name).is_file()
    for size in SIZES:
        assert (prefix / "share" / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "ctlens.png").is_file()
    uninstall = [str(prefix / "lib" / "ctlens" / "install.sh"), "--uninstall"]
    result = subprocess.run(uninstall, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert not binary.exists() and not (prefix / "lib" / "ctlens").exists()
    assert not list(prefix.rglob("*ctlens*")) and not list(prefix.rglob(f"{APP_ID}*"))


# --- the real bundle (slow: several minutes to build; the demo model trains on first use) ---


def _clean_env(tmp: Path) -> dict[str, str]:
    """No venv, no PYTHON*: what a desktop session gives a freshly installed app. The user's cache
    (or $CTLENS_CACHE / $XDG_CACHE_HOME) is kept, so a demo model trained before is reused."""
    env = {"HOME": os.environ.get("HOME", str(tmp)), "PATH": "/usr/bin:/bin", "QT_QPA_PLATFORM": "offscreen",
           "XDG_CONFIG_HOME": str(tmp / "config")}  # fmt: skip
    for key in ("CTLENS_CACHE", "XDG_CACHE_HOME", "SYSTEMROOT", "TMPDIR"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("PyInstaller", reason="pip install -e '.[package]'")
    work = tmp_path_factory.mktemp("package")
    # Built straight into PREFIX/lib, where install.sh puts a bundle, so installing needs no copy of gigabytes.
    result = subprocess.run(
        [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
         "--distpath", str(work / "prefix" / "lib"), "--workpath", str(work / "build"), str(SPEC)],
        capture_output=True, text=True, timeout=3600, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    yield work / "prefix" / "lib" / "ctlens"
    shutil.rmtree(work, ignore_errors=True)  # gigabytes: not left for pytest's tmp retention


@pytest.mark.slow
def test_bundle_leaves_out_what_the_app_does_not_need(bundle):
    files = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*")}
    internal = bundle / "_internal"
    assert (bundle / "ctlens").is_file() and (internal / "core" / "resources" / "ctlens.svg").is_file()
    for name in ("triton", "pytest", "_pytest", "mypy", "ruff", "pytorch_grad_cam", "matplotlib", "cv2", "tests",
                 "torch/include", "tkinter"):  # fmt: skip
        assert not (internal / name).exists(), name
    unwanted = ("WebEngine", "Qt6Quick", "Qt6Qml", "Qt6Multimedia", "Qt6Pdf", "Qt63D", "_tkinter", "libtk", "libtcl")
    assert not [f for f in files if any(u in f.rsplit("/", 1)[-1] for u in unwanted)]
    assert (bundle / "install.sh").is_file() and (bundle / "share" / "applications" / DESKTOP.name).is_file()


def _screenshot_checks(path: Path) -> np.ndarray:
    img = np.asarray(Image.open(path).convert("RGB")).astype(int)
    h, w = img.shape[:2]
    assert h > 400 and w > 800
    view = img[h // 4 : 3 * h // 4, int(w * 0.25) : int(w * 0.7)]
    assert (view.mean(-1) < 60).mean() > 0.05  # dark lung fields and background of the CT slice
    assert (view.max(-1) - view.min(-1)).mean() > 20  # the colour heatmap over the gray slice
    return img


@pytest.mark.slow
def test_bundle_runs_without_python_and_shows_the_demo_like_the_venv(bundle, tmp_path):
    env = _clean_env(tmp_path)
    exe = bundle / ("ctlens.exe" if sys.platform == "win32" else "ctlens")
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True, env=env, timeout=300)
    assert version.returncode == 0 and version.stdout.strip() == f"ctlens {core.__version__}", version.stderr
    shot = tmp_path / "bundle.png"
    run = subprocess.run([str(exe), "view", "--screenshot", str(shot)], capture_output=True, text=True, env=env,
                         timeout=1800)  # fmt: skip  # the first run trains the demo model (minutes)
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr[-4000:]
    bundled = _screenshot_checks(shot)
    # The same command from the venv (`make demo` is `ctlens view`) draws the same window.
    ref = tmp_path / "venv.png"
    venv_env = dict(env, PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}")
    result = subprocess.run([sys.executable, "-m", "desktop", "--screenshot", str(ref)], capture_output=True, text=True,
                            env=venv_env, timeout=1800)  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    reference = _screenshot_checks(ref)
    assert bundled.shape == reference.shape
    assert (np.abs(bundled - reference).max(-1) > 24).mean() < 0.01  # same slice, heatmap and panels


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux installer")
def test_installed_bundle_runs_through_its_symlink(bundle, tmp_path):
    prefix = bundle.parents[1]  # installs in place: bin/ctlens -> lib/ctlens/ctlens, share/...
    env = dict(_clean_env(tmp_path), PREFIX=str(prefix))
    result = subprocess.run(["sh", str(bundle / "install.sh")], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    version = subprocess.run([str(prefix / "bin" / "ctlens"), "--version"], capture_output=True, text=True, env=env,
                             timeout=300)  # fmt: skip
    assert version.stdout.strip() == f"ctlens {core.__version__}", version.stderr
    assert "Exec=" + str(prefix / "bin" / "ctlens") in (prefix / "share" / "applications" / DESKTOP.name).read_text()
