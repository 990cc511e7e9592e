"""The layers drawn over a slice: heatmap, support region (heatmap > threshold) and lesion outline.

All three are image items in the slice's own pixel grid inside the same view box, so they stay
registered to the anatomy under zoom and pan; window/level only touches the slice below.
Moving the threshold recomputes one boolean mask and its outline, never the network.
"""

from __future__ import annotations

import functools

import numpy as np
import pyqtgraph as pg

from core.render import jet

COLORMAPS = ("jet", "viridis", "inferno", "magma", "cividis")
SUPPORT_STYLES = ("outline", "filled")
SUPPORT_RGBA = (255, 255, 255, 255)
SUPPORT_TINT = (255, 255, 255, 90)
LESION_RGBA = (40, 255, 90, 255)


@functools.cache
def lookup_table(name: str) -> np.ndarray:
    """(256, 3) uint8 colours of a colour map (jet as in the paper, or a perceptually uniform one).

    Made once per name (the slice view asks on every slice change); read-only.
    """
    if name == "jet":
        lut = (jet(np.linspace(0.0, 1.0, 256, dtype=np.float32)) * 255).round().astype(np.uint8)
    elif name in COLORMAPS:
        lut = pg.colormap.get(name).getLookupTable(0.0, 1.0, 256, alpha=False).astype(np.uint8)
    else:
        raise ValueError(f"unknown colour map {name!r} ({', '.join(COLORMAPS)})")
    lut.flags.writeable = False
    return lut


def outline(mask: np.ndarray) -> np.ndarray:
    """The mask's inner boundary: pixels of ``mask`` with a 4-neighbour outside it."""
    m = np.asarray(mask, bool)
    inner = m.copy()
    inner[1:, :] &= m[:-1, :]
    inner[:-1, :] &= m[1:, :]
    inner[:, 1:] &= m[:, :-1]
    inner[:, :-1] &= m[:, 1:]
    inner[0, :] = inner[-1, :] = False
    inner[:, 0] = inner[:, -1] = False
    return m & ~inner


def _rgba(mask: np.ndarray, colour: tuple[int, int, int, int]) -> np.ndarray:
    out = np.zeros((*mask.shape, 4), np.uint8)
    out[mask] = colour
    return out


class OverlayLayers:
    """Heatmap, support region and lesion outline items added to ``viewbox`` above the slice."""

    def __init__(self, viewbox: pg.ViewBox) -> None:
        self.heat_item = pg.ImageItem(axisOrder="row-major")
        self.support_item = pg.ImageItem(axisOrder="row-major")
        self.lesion_item = pg.ImageItem(axisOrder="row-major")
        for z, item in enumerate((self.heat_item, self.support_item, self.lesion_item), start=1):
            item.setZValue(z)
            viewbox.addItem(item)
        self.heatmap: np.ndarray | None = None
        self.lesion: np.ndarray | None = None
        self.threshold = 0.7
        self.colormap = "jet"
        self.opacity = 0.4
        self.support_style = "outline"
        self.heat_visible = True
        self.lesion_visible = True
        self.set_opacity(self.opacity)

    def set_heatmap(self, heatmap: np.ndarray | None) -> None:
        """The current slice's heatmap (float in [0, 1] on the slice grid) or None."""
        self.heatmap = heatmap
        if heatmap is None:
            self.heat_item.clear()
        else:
            self.heat_item.setImage(heatmap, levels=(0.0, 1.0), lut=lookup_table(self.colormap), autoLevels=False)
        self._update_visibility()
        self.set_threshold(self.threshold)

    def set_lesion(self, lesion: np.ndarray | None) -> None:
        self.lesion = lesion
        if lesion is None or not lesion.any():
            self.lesion_item.clear()
        else:
            self.lesion_item.setImage(_rgba(outline(lesion), LESION_RGBA), autoLevels=False)
        self._update_visibility()

    def set_threshold(self, threshold: float) -> None:
        self.threshold = float(threshold)
        if self.heatmap is None:
            self.support_item.clear()
            return
        support = self.heatmap > self.threshold
        if self.support_style == "outline":
            self.support_item.setImage(_rgba(outline(support), SUPPORT_RGBA), autoLevels=False)
        else:
            self.support_item.setImage(_rgba(support, SUPPORT_TINT), autoLevels=False)

    def set_colormap(self, name: str) -> None:
        lut = lookup_table(name)
        self.colormap = name
        if self.heatmap is not None:
            self.heat_item.setLookupTable(lut)

    def set_opacity(self, opacity: float) -> None:
        self.opacity = float(opacity)
        self.heat_item.setOpacity(self.opacity)

    def set_support_style(self, style: str) -> None:
        if style not in SUPPORT_STYLES:
            raise ValueError(f"unknown support style {style!r}")
        self.support_style = style
        self.set_threshold(self.threshold)

    def set_heat_visible(self, visible: bool) -> None:
        self.heat_visible = visible
        self._update_visibility()

    def set_lesion_visible(self, visible: bool) -> None:
        self.lesion_visible = visible
        self._update_visibility()

    def _update_visibility(self) -> None:
        on = self.heat_visible and self.heatmap is not None
        self.heat_item.setVisible(on)
        self.support_item.setVisible(on)
        self.lesion_item.setVisible(self.lesion_visible and self.lesion is not None)
