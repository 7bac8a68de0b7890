"""Procedural textures evaluated in surface coordinates (metres), vectorised.

Patterns are attached to the surfaces in world units, so tiles, planks and stripes
keep their physical size: their projected size and the convergence of their lines
are perspective cues to depth, as in real indoor photographs.

Each pattern maps texture coordinates ``(u, v)`` (metres, shape (N,)) to a mix
weight ``w`` in [0, 1] between the material's ``base`` and ``accent`` albedos and a
brightness factor (per-tile or per-plank variation).
"""

from __future__ import annotations

import numpy as np

from keras_depth.sources.synthetic.materials import DOTS, NOISE, PLAIN, PLANKS, STRIPES, TILES, Material

GROUT_FRACTION = 0.04  # grout width as a fraction of the tile size
TILE_BRIGHTNESS_JITTER = 0.15  # per-tile brightness varies by +-this fraction
PLANK_LENGTH = 1.2  # metres between plank end joints
PLANK_GAP_FRACTION = 0.04  # dark gap between planks, fraction of the plank width
PLANK_GAP_BRIGHTNESS = 0.55
PLANK_BRIGHTNESS_JITTER = 0.2
GRAIN_LINES_PER_PLANK = 4.0
GRAIN_WAVINESS = 0.35  # grain line displacement in line periods
STRIPE_DUTY = 0.5
DOT_RADIUS = 0.25  # in lattice cells
NOISE_FINE_OCTAVE_WEIGHT = 0.35  # weight of the second value-noise octave (4x finer)

_HASH_X = np.uint32(0x8DA6B343)
_HASH_Y = np.uint32(0xD8163841)
_HASH_MIX = np.uint32(0x2C1B3C6D)
_INV_2_24 = np.float32(1.0 / (1 << 24))


def hash01(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    """Pseudo-random float32 in [0, 1) per integer lattice point ``(ix, iy)``.

    Args:
        ix: int32 lattice coordinates, any shape; ``iy`` the same shape.
        seed: Hash seed (the material's).

    Returns:
        float32 values of the shape of ``ix``, uniform-looking and uncorrelated
        between neighbouring lattice points.
    """
    h = ix.view(np.uint32) * _HASH_X
    h ^= iy.view(np.uint32) * _HASH_Y
    h ^= np.uint32(seed & 0xFFFFFFFF)
    h ^= h >> 15
    h *= _HASH_MIX
    h ^= h >> 12
    return (h >> 8).astype(np.float32) * _INV_2_24


def _split(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer lattice cell (int32) and fractional position in [0, 1) of ``x``."""
    cell = np.floor(x)
    return cell.astype(np.int32), x - cell


def value_noise(u: np.ndarray, v: np.ndarray, seed: int) -> np.ndarray:
    """Smooth value noise with unit feature size, float32 in [0, 1], shape of ``u``."""
    iu, fu = _split(u)
    iv, fv = _split(v)
    su = fu * fu * (3.0 - 2.0 * fu)
    sv = fv * fv * (3.0 - 2.0 * fv)
    iu1, iv1 = iu + 1, iv + 1
    n0 = hash01(iu, iv, seed)
    n0 += (hash01(iu1, iv, seed) - n0) * su
    n1 = hash01(iu, iv1, seed)
    n1 += (hash01(iu1, iv1, seed) - n1) * su
    return n0 + (n1 - n0) * sv


def _tiles(u, v, m: Material):
    iu, fu = _split(u * (1.0 / m.scale))
    iv, fv = _split(v * (1.0 / m.scale))
    grout = (fu < GROUT_FRACTION) | (fv < GROUT_FRACTION)
    brightness = 1.0 + TILE_BRIGHTNESS_JITTER * (2.0 * hash01(iu, iv, m.seed) - 1.0)
    return grout.astype(np.float32), np.where(grout, np.float32(1.0), brightness)


def _planks(u, v, m: Material):
    iv, fv = _split(v * (1.0 / m.scale))
    zero = np.zeros_like(iv)
    offset = hash01(iv, zero, m.seed)
    ju, fu = _split(u * (1.0 / PLANK_LENGTH) + offset)
    plank_rand = hash01(iv, ju, m.seed)
    phase = fv * GRAIN_LINES_PER_PLANK + GRAIN_WAVINESS * np.sin(u * 2.3 + 40.0 * plank_rand)
    grain = 0.5 + 0.5 * np.sin((2.0 * np.pi) * phase)
    gap = (fv < PLANK_GAP_FRACTION) | (fu * (PLANK_LENGTH / m.scale) < PLANK_GAP_FRACTION)
    brightness = 1.0 + PLANK_BRIGHTNESS_JITTER * (2.0 * plank_rand - 1.0)
    return grain * grain, np.where(gap, np.float32(PLANK_GAP_BRIGHTNESS), brightness)


def _stripes(u, v, m: Material):
    _, fu = _split(u * (1.0 / m.scale))
    return (fu < STRIPE_DUTY).astype(np.float32), None


def _dots(u, v, m: Material):
    iv, fv = _split(v * (1.0 / m.scale))
    _, fu = _split(
        u * (1.0 / m.scale) + 0.5 * (iv & 1).astype(np.float32)
    )  # every other row shifted by half a cell
    r2 = (fu - 0.5) ** 2 + (fv - 0.5) ** 2
    return (r2 < DOT_RADIUS * DOT_RADIUS).astype(np.float32), None


def _noise(u, v, m: Material):
    inv = 1.0 / m.scale
    coarse = value_noise(u * inv, v * inv, m.seed)
    fine = value_noise(u * (4.0 * inv), v * (4.0 * inv), m.seed + 1)
    return coarse + NOISE_FINE_OCTAVE_WEIGHT * (fine - 0.5), None


_PATTERNS = {TILES: _tiles, PLANKS: _planks, STRIPES: _stripes, DOTS: _dots, NOISE: _noise}


def albedo(material: Material, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Linear-RGB albedo of a material at texture coordinates.

    Args:
        material: The surface's material.
        u: Texture coordinate in metres, float32 shape (N,); ``v`` likewise.

    Returns:
        float32 albedo, channels first: shape (3, N), values in [0, 1].
    """
    base = np.asarray(material.base, dtype=np.float32)[:, None]
    if material.pattern == PLAIN:
        return np.broadcast_to(base, (3, u.shape[0]))
    weight, brightness = _PATTERNS[material.pattern](u, v, material)
    accent = np.asarray(material.accent, dtype=np.float32)[:, None]
    out = base + weight * (accent - base)
    if brightness is not None:
        out *= brightness
    return np.clip(out, 0.0, 1.0, out=out)
