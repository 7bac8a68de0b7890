"""The RGB-D sensor: colour image formation and Kinect-like depth failures.

The depth sensor imitates a structured-light Kinect (NYU Depth v2): an infrared
projector beside the camera casts a dot pattern, and depth is missing where the
pattern cannot be seen or matched:

- beyond the range (``max_depth``) and through window glass;
- in the projector's shadow beside the left edges of foreground objects (the
  projector sits ``PROJECTOR_BASELINE`` to the camera's right);
- along depth discontinuities (mixed pixels);
- on glossy surfaces seen obliquely (the pattern is mirrored away) or head-on
  (the sensor saturates), on very dark surfaces and at grazing angles;
- in blotches on far surfaces, where the projected dots grow too faint.

Where depth is kept it is the exact z-depth: the labels are clean, the holes are
what the network has to live with, as with real sensor data.
"""

from __future__ import annotations

import statistics

import numpy as np

from keras_depth.sources.synthetic.camera import Intrinsics
from keras_depth.sources.synthetic.textures import value_noise

PROJECTOR_BASELINE = 0.075  # metres between the Kinect's IR projector and camera
SHADOW_TOLERANCE = 0.5  # pixels of projector-column overlap before a point counts as shadowed
# Inverse-depth step (1/m) between neighbouring pixels of a 640 px wide image that marks a
# discontinuity; on a smooth surface the step grows with the pixel size, so it scales with 640 / W.
EDGE_INVERSE_DEPTH_JUMP_AT_640 = 0.03
EDGE_BAND_AT_640 = 4  # pixels of missing depth across a discontinuity at 640 px width (min 2)
GRAZING_COS = 0.1  # surfaces seen at more than ~84 degrees incidence return nothing
GLOSSY_OBLIQUE_COS = 0.35  # glossy surfaces lose depth beyond ~70 degrees incidence...
GLOSSY_HEADON_COS = 0.985  # ...and when seen nearly head-on
FAR_FADE_START = 3.5  # metres beyond which far-range dropouts begin...
FAR_FADE_MAX_DROPOUT = 0.6  # ...reaching this fraction of pixels at max_depth
FAR_BLOTCH_SIZE_AT_640 = 24.0  # pixels, feature size of the far-range dropout blotches
DARK_LUMINANCE = 0.015  # linear luminance (after exposure) below which depth may drop out
EXPOSURE_PERCENTILE = 97.0  # this percentile of scene luminance is exposed to...
EXPOSURE_TARGET_RANGE = (0.6, 0.9)  # ...this linear level (randomised per image)
EXPOSURE_SUBSAMPLE = 7  # every n-th pixel is enough to estimate the percentile
WINDOW_BRIGHTNESS = 1.1  # windows relative to the exposure's white (they clip slightly)
IMAGE_NOISE_STD = 2.0 / 255.0  # Gaussian noise on display values in [0, 1]
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _noise_table() -> np.ndarray:
    """Gaussian noise in display levels (plus the 0.5 rounding offset) for each byte value.

    Indexing it with random bytes draws quantised Gaussian noise several times
    faster than ``Generator.standard_normal``.
    """
    normal = statistics.NormalDist()
    quantiles = [normal.inv_cdf((i + 0.5) / 256) for i in range(256)]
    return (np.asarray(quantiles, dtype=np.float32) * IMAGE_NOISE_STD * 255.0 + 0.5).astype(np.float32)


_NOISE_TABLE = _noise_table()


def form_image(
    radiance: np.ndarray, emissive: np.ndarray, albedo: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Auto-exposes, gamma-encodes, adds noise and quantises the linear radiance.

    Args:
        radiance: Linear-RGB radiance, channels first, float32 (3, H, W).
        emissive: Window pixels, bool (H, W): shown at their albedo times
            ``WINDOW_BRIGHTNESS`` regardless of exposure.
        albedo: Linear-RGB albedo, channels first, float32 (3, H, W) (the window colour).
        rng: Random generator for the exposure level and the noise.

    Returns:
        ``(image, luminance)``: uint8 RGB (H, W, 3) and the exposed linear
        luminance, float32 (H, W).
    """
    lum = np.tensordot(LUMA, radiance, axes=1)
    sample = lum.reshape(-1)[::EXPOSURE_SUBSAMPLE]
    level = max(float(np.percentile(sample, EXPOSURE_PERCENTILE)), 1e-6)
    gain = np.float32(rng.uniform(*EXPOSURE_TARGET_RANGE) / level)
    linear = radiance * gain
    linear[:, emissive] = albedo[:, emissive] * WINDOW_BRIGHTNESS
    lum *= gain
    display = np.sqrt(np.clip(linear, 0.0, 1.0, out=linear), out=linear)
    display *= 255.0
    noise = np.frombuffer(rng.bytes(display.size), dtype=np.uint8).reshape(display.shape)
    display += np.take(_NOISE_TABLE, noise)
    np.clip(display, 0.0, 255.0, out=display)
    return display.transpose(1, 2, 0).astype(np.uint8, order="C"), lum


def _projector_shadow(depth: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """Pixels whose surface the projector cannot see, bool (H, W).

    A point at column ``u`` and depth ``z`` is lit by projector column
    ``u - fx * b / z``; it is shadowed when some point to its right maps to a
    smaller projector column (a nearer surface is in the way).
    """
    columns = np.arange(depth.shape[1], dtype=np.float32) - (intrinsics.fx * PROJECTOR_BASELINE) / depth
    right_min = np.minimum.accumulate(columns[:, ::-1], axis=1)[:, ::-1]
    shadow = np.zeros(depth.shape, dtype=bool)
    shadow[:, :-1] = columns[:, :-1] > right_min[:, 1:] + SHADOW_TOLERANCE
    return shadow


def _discontinuities(depth: np.ndarray, half_band: int) -> np.ndarray:
    """Pixels within ``half_band`` pixels of a depth discontinuity, bool (H, W)."""
    inv = 1.0 / depth
    threshold = EDGE_INVERSE_DEPTH_JUMP_AT_640 * 640 / depth.shape[1]
    jump_x = np.abs(np.diff(inv, axis=1)) > threshold
    jump_y = np.abs(np.diff(inv, axis=0)) > threshold
    edge = np.zeros(depth.shape, dtype=bool)
    edge[:, :-1] |= jump_x
    edge[:, 1:] |= jump_x
    edge[:-1, :] |= jump_y
    edge[1:, :] |= jump_y
    for _ in range(half_band - 1):
        grown = edge.copy()
        grown[:, :-1] |= edge[:, 1:]
        grown[:, 1:] |= edge[:, :-1]
        grown[:-1, :] |= edge[1:, :]
        grown[1:, :] |= edge[:-1, :]
        edge = grown
    return edge


def _far_dropouts(depth: np.ndarray, max_depth: float, seed: int) -> np.ndarray:
    """Blotchy dropouts that grow with distance beyond ``FAR_FADE_START``, bool (H, W)."""
    far = np.flatnonzero(depth.reshape(-1) > FAR_FADE_START)
    dropped = np.zeros(depth.shape, dtype=bool)
    if far.size == 0:
        return dropped
    height, width = depth.shape
    scale = 640.0 / (FAR_BLOTCH_SIZE_AT_640 * width)  # blotches per pixel
    rows, cols = np.divmod(far, width)
    blotches = value_noise(cols.astype(np.float32) * scale, rows.astype(np.float32) * scale, seed)
    fade = (depth.reshape(-1)[far] - FAR_FADE_START) * (FAR_FADE_MAX_DROPOUT / (max_depth - FAR_FADE_START))
    dropped.reshape(-1)[far[blotches < fade]] = True
    return dropped


def sensor_depth(
    true_depth: np.ndarray,
    cos_incidence: np.ndarray,
    glossy: np.ndarray,
    emissive: np.ndarray,
    luminance: np.ndarray,
    intrinsics: Intrinsics,
    max_depth: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """The depth the sensor reports: the true z-depth with the sensor's holes.

    Args:
        true_depth: Exact z-depth in metres, float32 (H, W), finite and > 0.
        cos_incidence: Cosine between the surface normal and the viewing ray, float32 (H, W).
        glossy: Pixels on glossy materials, bool (H, W).
        emissive: Window pixels, bool (H, W).
        luminance: Exposed linear luminance, float32 (H, W).
        intrinsics: Intrinsics of the image.
        max_depth: Range limit in metres; farther pixels are invalid.
        rng: Random generator for dark-pixel dropouts.

    Returns:
        float32 depth in metres (H, W); 0 = invalid.
    """
    invalid = (true_depth > max_depth) | emissive | (cos_incidence < GRAZING_COS)
    invalid |= glossy & ((cos_incidence < GLOSSY_OBLIQUE_COS) | (cos_incidence > GLOSSY_HEADON_COS))
    dark = np.flatnonzero(luminance < DARK_LUMINANCE)
    if dark.size:
        keep_probability = luminance.reshape(-1)[dark] * (1.0 / DARK_LUMINANCE)
        invalid.reshape(-1)[dark[rng.random(dark.size, dtype=np.float32) >= keep_probability]] = True
    invalid |= _far_dropouts(true_depth, max_depth, int(rng.integers(0, 2**31 - 1)))
    invalid |= _projector_shadow(true_depth, intrinsics)
    half_band = max(1, round(EDGE_BAND_AT_640 / 2 * true_depth.shape[1] / 640))
    invalid |= _discontinuities(true_depth, half_band)
    return np.where(invalid, np.float32(0.0), true_depth)
