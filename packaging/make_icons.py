"""Draw CTLens' application icon: an axial chest CT slice with a heatmap under a magnifying lens.

The SVG is written from the geometry below; the PNGs are that SVG rendered by Qt (QSvgRenderer),
so every size shows the same drawing. Sizes of 24 px and less use a simplified variant (no vessels,
thicker lens) that stays legible. Run from the repository root after changing the drawing:

    python packaging/make_icons.py        # rewrites packaging/icons/ and resources/ctlens.svg (the window icon)
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

ICONS = Path(__file__).resolve().parent / "icons"
WINDOW_ICON = Path(__file__).resolve().parents[1] / "resources" / "ctlens.svg"  # the running app's icon
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
SMALL = 24  # at or below this size the simplified drawing is used


def svg(detail: bool = True) -> str:
    """The icon on a 256 x 256 canvas; ``detail=False`` drops what a 16-24 px icon cannot show."""
    vessels = (
        '  <g fill="#4a535c">\n'
        '    <circle cx="70" cy="112" r="3.5"/><circle cx="92" cy="150" r="3"/><circle cx="78" cy="166" r="3"/>\n'
        '    <circle cx="98" cy="104" r="2.5"/><circle cx="182" cy="160" r="3"/><circle cx="160" cy="170" r="2.5"/>\n'
        "  </g>\n"
        '  <ellipse cx="128" cy="64" rx="11" ry="5" fill="#e9ecef"/>\n'
        if detail
        else ""
    )
    ring, handle, rim = (11, 18, 5) if detail else (17, 28, 0)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 256 256">
  <title>CTLens</title>
  <defs>
    <linearGradient id="tile" x1="0" y1="0" x2="0" y2="1">
      <stop offset="0" stop-color="#1d2b38"/>
      <stop offset="1" stop-color="#0a1016"/>
    </linearGradient>
    <radialGradient id="heat" cx="168" cy="114" r="34" gradientUnits="userSpaceOnUse">
      <stop offset="0" stop-color="#fff35c"/>
      <stop offset="0.45" stop-color="#ff8a1e"/>
      <stop offset="1" stop-color="#e0241b" stop-opacity="0"/>
    </radialGradient>
  </defs>
  <rect x="8" y="8" width="240" height="240" rx="52" fill="url(#tile)"/>
  <ellipse cx="128" cy="136" rx="104" ry="80" fill="#8b9197" stroke="#cfd3d7" stroke-width="{rim}"/>
  <ellipse cx="84" cy="132" rx="36" ry="56" fill="#141a20" transform="rotate(-8 84 132)"/>
  <ellipse cx="172" cy="132" rx="36" ry="56" fill="#141a20" transform="rotate(8 172 132)"/>
  <circle cx="128" cy="196" r="14" fill="#eef0f2"/>
{vessels}  <circle cx="168" cy="114" r="34" fill="url(#heat)"/>
  <circle cx="164" cy="116" r="46" fill="#ffffff" fill-opacity="0.08" stroke="#ffd23f" stroke-width="{ring}"/>
  <line x1="199" y1="151" x2="228" y2="180" stroke="#ffd23f" stroke-width="{handle}" stroke-linecap="round"/>
</svg>
"""


def render(svg_text: str, size: int) -> bytes:
    """PNG bytes of ``svg_text`` rendered by Qt at ``size`` x ``size`` (transparent corners)."""
    from PySide6 import QtCore, QtGui, QtSvg

    renderer = QtSvg.QSvgRenderer(QtCore.QByteArray(svg_text.encode()))
    image = QtGui.QImage(size, size, QtGui.QImage.Format.Format_ARGB32)
    image.fill(QtCore.Qt.GlobalColor.transparent)
    painter = QtGui.QPainter(image)
    painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    buffer = QtCore.QBuffer()
    buffer.open(QtCore.QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(buffer.data())


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PIL import Image
    from PySide6 import QtGui

    _app = QtGui.QGuiApplication.instance() or QtGui.QGuiApplication(sys.argv[:1])
    scalable = ICONS / "hicolor" / "scalable" / "apps" / "ctlens.svg"
    scalable.parent.mkdir(parents=True, exist_ok=True)
    scalable.write_text(svg())
    WINDOW_ICON.write_text(svg())
    pngs = {}
    for size in SIZES:
        out = ICONS / "hicolor" / f"{size}x{size}" / "apps" / "ctlens.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        data = render(svg(detail=size > SMALL), size)
        # Re-encoded by Pillow with the best zlib level: the same pixels, smaller files.
        image = Image.open(io.BytesIO(data))
        image.save(out, optimize=True)
        pngs[size] = image
        print(f"{out.relative_to(ICONS.parent)}  {out.stat().st_size} bytes")
    ico = ICONS / "ctlens.ico"  # Windows: the executable's icon (PyInstaller takes it from here)
    pngs[256].save(ico, sizes=[(s, s) for s in SIZES if s <= 256], append_images=[pngs[s] for s in SIZES if s < 256])
    print(f"{ico.relative_to(ICONS.parent)}  {ico.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
