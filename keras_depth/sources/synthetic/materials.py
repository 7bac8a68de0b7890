"""Surface materials of the renderer and their random palettes.

A material is a procedural pattern (see ``textures.py``) mixing two linear-RGB
albedos, with a physical feature size in metres, plus the optical flags that
matter to a structured-light depth sensor: glossy surfaces reflect the projected
pattern away, window glass shows the bright outside and returns no depth.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

# Pattern names (implemented in textures.py).
PLAIN = "plain"
TILES = "tiles"
PLANKS = "planks"
STRIPES = "stripes"
DOTS = "dots"
NOISE = "noise"

GLOSSY_FURNITURE_PROBABILITY = 0.2


@dataclass(frozen=True)
class Material:
    """A surface's appearance.

    Attributes:
        pattern: One of ``PLAIN``, ``TILES``, ``PLANKS``, ``STRIPES``, ``DOTS``, ``NOISE``.
        base: Main linear-RGB albedo, each channel in [0, 1].
        accent: Second linear-RGB albedo (grout, grain, stripes, noise extreme).
        scale: Pattern feature size in metres (tile, plank width, stripe period...).
        seed: Seed of the pattern's per-tile and noise hashes.
        glossy: Shiny surface: specular highlights, and the depth sensor loses it at
            oblique and head-on views.
        emissive: Window glass: drawn at ``base`` brightness regardless of lighting,
            with no depth.
    """

    pattern: str
    base: tuple[float, float, float]
    accent: tuple[float, float, float]
    scale: float
    seed: int
    glossy: bool = False
    emissive: bool = False


def _hsv(rng: np.random.Generator, hue, sat, val) -> tuple[float, float, float]:
    """A linear-RGB colour with HSV display components drawn uniformly from the given ranges.

    Display values are linearised with gamma 2, the inverse of the image formation's
    square root (close to sRGB).
    """
    h, s, v = (rng.uniform(*r) for r in (hue, sat, val))
    return tuple(c * c for c in colorsys.hsv_to_rgb(h % 1.0, s, v))


def _scaled(colour: tuple[float, float, float], factor: float) -> tuple[float, float, float]:
    return tuple(min(1.0, c * factor) for c in colour)


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


def floor_material(rng: np.random.Generator) -> Material:
    """Wooden planks, ceramic tiles or carpet."""
    kind = str(rng.choice([PLANKS, TILES, NOISE], p=[0.45, 0.3, 0.25]))
    if kind == PLANKS:
        base = _hsv(rng, (0.05, 0.11), (0.35, 0.7), (0.35, 0.8))
        return Material(PLANKS, base, _scaled(base, 0.6), float(rng.uniform(0.1, 0.22)), _seed(rng))
    if kind == TILES:
        base = _hsv(rng, (0.0, 1.0), (0.0, 0.25), (0.45, 0.95))
        grout = _hsv(rng, (0.0, 1.0), (0.0, 0.1), (0.3, 0.7))
        return Material(TILES, base, grout, float(rng.uniform(0.25, 0.6)), _seed(rng))
    base = _hsv(rng, (0.0, 1.0), (0.1, 0.5), (0.25, 0.7))
    return Material(NOISE, base, _scaled(base, 0.7), float(rng.uniform(0.05, 0.3)), _seed(rng))


def wall_material(rng: np.random.Generator) -> Material:
    """Paint, wallpaper stripes or dots, or rough plaster, mostly light colours."""
    kind = str(rng.choice([PLAIN, STRIPES, DOTS, NOISE], p=[0.4, 0.25, 0.15, 0.2]))
    base = _hsv(rng, (0.0, 1.0), (0.0, 0.3), (0.6, 0.95))
    accent = _hsv(rng, (0.0, 1.0), (0.05, 0.4), (0.4, 0.9)) if kind != NOISE else _scaled(base, 0.8)
    scale_range = {PLAIN: (1.0, 1.0), STRIPES: (0.05, 0.4), DOTS: (0.08, 0.25), NOISE: (0.2, 1.0)}[kind]
    return Material(kind, base, accent, float(rng.uniform(*scale_range)), _seed(rng))


def ceiling_material(rng: np.random.Generator) -> Material:
    """Off-white paint."""
    base = _hsv(rng, (0.0, 1.0), (0.0, 0.08), (0.8, 0.95))
    return Material(PLAIN, base, base, 1.0, _seed(rng))


def furniture_material(rng: np.random.Generator, kind: str) -> Material:
    """A material for furniture.

    Args:
        rng: Random generator.
        kind: ``"wood"`` (grained planks), ``"fabric"`` (soft noise), ``"painted"``
            (plain, sometimes glossy), ``"dark"`` (near-black, often glossy, like a
            screen or leather) or ``"metal"`` (glossy grey).

    Returns:
        The material.
    """
    if kind == "wood":
        base = _hsv(rng, (0.04, 0.12), (0.3, 0.75), (0.3, 0.85))
        return Material(PLANKS, base, _scaled(base, 0.65), float(rng.uniform(0.08, 0.3)), _seed(rng))
    if kind == "fabric":
        base = _hsv(rng, (0.0, 1.0), (0.15, 0.7), (0.2, 0.85))
        return Material(NOISE, base, _scaled(base, 0.6), float(rng.uniform(0.03, 0.15)), _seed(rng))
    if kind == "painted":
        base = _hsv(rng, (0.0, 1.0), (0.0, 0.8), (0.3, 0.95))
        glossy = bool(rng.random() < GLOSSY_FURNITURE_PROBABILITY)
        return Material(PLAIN, base, base, 1.0, _seed(rng), glossy=glossy)
    if kind == "dark":
        base = _hsv(rng, (0.0, 1.0), (0.0, 0.3), (0.03, 0.12))
        return Material(PLAIN, base, base, 1.0, _seed(rng), glossy=bool(rng.random() < 0.5))
    if kind == "metal":
        base = _hsv(rng, (0.0, 1.0), (0.0, 0.1), (0.5, 0.85))
        return Material(PLAIN, base, base, 1.0, _seed(rng), glossy=True)
    raise ValueError(f"unknown furniture material kind {kind!r}")


def window_material(rng: np.random.Generator) -> Material:
    """Bright window glass (daylight sky)."""
    base = _hsv(rng, (0.5, 0.62), (0.05, 0.35), (0.85, 1.0))
    return Material(PLAIN, base, base, 1.0, _seed(rng), emissive=True)


def picture_material(rng: np.random.Generator) -> Material:
    """A framed picture or poster: saturated blotches or stripes."""
    kind = str(rng.choice([NOISE, STRIPES]))
    base = _hsv(rng, (0.0, 1.0), (0.3, 0.9), (0.3, 0.9))
    accent = _hsv(rng, (0.0, 1.0), (0.3, 0.9), (0.2, 0.9))
    return Material(kind, base, accent, float(rng.uniform(0.05, 0.2)), _seed(rng))
