"""The pixel-features and clean-up controls of the main widget."""

from __future__ import annotations

from typing import Callable

from magicgui.widgets import ComboBox, Container, FloatSpinBox, LineEdit, Select, SpinBox

from ..core import COLOR_SPACES, DEFAULT_FEATURES, FILTERS

PRESETS = [("channel values", "none"), ("default features", "default")]
FILTER_CHOICES = [
    ("Gaussian", "gaussian"),
    ("gradient magnitude", "gradient"),
    ("Laplacian of Gaussian", "log"),
    ("difference of Gaussians", "dog"),
    ("structure tensor", "structure"),
    ("Hessian", "hessian"),
]
assert [v for _, v in FILTER_CHOICES] == list(FILTERS)


def parse_scales(text: str) -> tuple:
    """'1, 2.5 4' -> (1.0, 2.5, 4.0); ValueError naming the bad entry."""
    parts = [p for p in text.replace(",", " ").split() if p]
    try:
        return tuple(float(p) for p in parts)
    except ValueError:
        raise ValueError(
            f"scales {text!r} must be numbers (sigmas in pixels) separated by commas, e.g. '1, 4'."
        ) from None


class FeatureSection(Container):
    """``features`` (preset), ``color_space``, ``filters``, ``scales``, ``spatial_weight``,
    ``min_size`` and ``hole_size``.

    Choosing a preset sets these controls (and, through ``set_common``, the
    main widget's smoothing and normalisation); the controls then define the
    run, so a preset is a starting point to edit.
    """

    def __init__(self, set_common: Callable[[float, str], None]):
        super().__init__(labels=True)
        self._set_common = set_common
        self._rgb = False
        self.features = ComboBox(label="features", choices=PRESETS, value="none")
        self.features.tooltip = (
            "channel values: cluster the pixel values as they are (fastest, exact). default features: "
            "CIELAB colour for RGB images; for grey and multichannel images a blob filter (Laplacian of "
            "Gaussian, sigma 4 px) beside the lightly smoothed values."
        )
        self.color_space = ComboBox(label="colour space", choices=list(COLOR_SPACES), value="rgb")
        self.color_space.tooltip = "For RGB images: RGB, CIELAB (perceptual) or HSV (hue as an angle)."
        self.filters = Select(label="filters", choices=FILTER_CHOICES, value=[])
        self.filters.tooltip = "Filter responses added per channel and scale (ctrl-click to choose several)."
        self.filters.native.setMaximumHeight(80)
        self.scales = LineEdit(label="filter scales (px)", value="1, 4")
        self.scales.tooltip = "Gaussian sigmas of the filters, in pixels, e.g. '1, 4'."
        self.spatial_weight = FloatSpinBox(label="spatial weight", value=0.0, min=0.0, max=100.0, step=0.1)
        self.spatial_weight.tooltip = (
            "Adds the pixel position (physical units from the layer's scale) as a feature: higher values "
            "give more compact clusters."
        )
        self.min_size = SpinBox(label="remove islands < (px)", value=0, min=0, max=10**7)
        self.min_size.tooltip = (
            "Clean-up: regions of one label smaller than this take their neighbours' label."
        )
        self.hole_size = SpinBox(label="fill holes ≤ (px)", value=0, min=0, max=10**7)
        self.hole_size.tooltip = "Clean-up: regions up to this size surrounded by one label take that label."
        self.extend(
            [
                self.features,
                self.color_space,
                self.filters,
                self.scales,
                self.spatial_weight,
                self.min_size,
                self.hole_size,
            ]
        )
        self.features.changed.connect(self._on_preset)
        self.margins = (0, 0, 0, 0)  # align with the main widget's rows

    def set_rgb(self, rgb: bool):
        self._rgb = bool(rgb)
        self.color_space.enabled = self._rgb
        if not self._rgb:
            self.color_space.value = "rgb"

    def _on_preset(self, _value=None):
        if self.features.value == "none":
            self.color_space.value = "rgb"
            self.filters.value = []
            self.spatial_weight.value = 0.0
            self._set_common(0.0, "minmax")
            return
        preset = DEFAULT_FEATURES["rgb" if self._rgb else "grey"]
        if self._rgb:
            self.color_space.value = preset.get("color_space", "rgb")
        self.filters.value = list(preset.get("filters", ()))
        if preset.get("scales"):
            self.scales.value = ", ".join(f"{s:g}" for s in preset["scales"])
        self.spatial_weight.value = float(preset.get("spatial_weight", 0.0))
        self._set_common(float(preset.get("smoothing", 0.0)), preset.get("normalize", "minmax"))

    def options(self) -> dict:
        """Keyword arguments of :func:`cluster_image` for these controls."""
        filters = tuple(self.filters.value or ())
        return {
            "color_space": self.color_space.value if self._rgb else "rgb",
            "filters": filters,
            "scales": parse_scales(self.scales.value) if filters else (1.0, 4.0),
            "spatial_weight": float(self.spatial_weight.value),
            "min_size": int(self.min_size.value),
            "hole_size": int(self.hole_size.value),
        }
