"""User RGB-D data as image pairs in a folder tree (source ``folder``).

RGB images are found with ``rgb_glob`` under ``root``; each one's depth image is
found by rewriting its path relative to ``root`` with the ``depth_pattern`` regex
substitution, for example (NYU-style names)::

    rgb_glob: "rgb/*"
    depth_pattern: 'rgb/rgb_(\\w+)\\.(jpg|png)$=>depth/sync_depth_\\1.png'

Files the glob finds but the pattern does not match are not RGB images of a pair
and are skipped. Depth must be a single-channel 16-bit image storing
``depth_scale`` per metre, 0 for missing depth. An optional ``<root>/intrinsics.json``
with ``fx``, ``fy``, ``cx``, ``cy`` (pixels; with ``width`` and ``height`` when they
refer to another image size) gives the camera intrinsics.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

from keras_depth.config import FolderSourceConfig
from keras_depth.sources.base import DepthSource, RawRecord, RecordError

SOURCE_NAME = "folder"
INTRINSICS_FILE = "intrinsics.json"
PATTERN_SEPARATOR = "=>"
DEPTH_MODES_16BIT = ("I;16", "I;16L", "I;16B", "I;16N")
UINT16_MAX = 65535

# Truncated files must fail to decode (and go to the dead-letter file), never be
# silently completed with grey pixels.
ImageFile.LOAD_TRUNCATED_IMAGES = False

log = logging.getLogger(__name__)


def parse_depth_pattern(pattern: str) -> tuple[re.Pattern[str], str]:
    """Splits ``"<regex>=><replacement>"`` into a compiled regex and the replacement.

    Raises:
        ValueError: naming ``folder.depth_pattern`` when the separator is missing or
            the regex does not compile.
    """
    regex, sep, replacement = pattern.partition(PATTERN_SEPARATOR)
    if not sep or not regex:
        raise ValueError(
            f"folder.depth_pattern must look like '<regex>{PATTERN_SEPARATOR}<replacement>', got {pattern!r}"
        )
    try:
        return re.compile(regex), replacement
    except re.error as err:
        raise ValueError(f"folder.depth_pattern has an invalid regex {regex!r}: {err}") from err


def _read_intrinsics(path: Path) -> dict[str, float] | None:
    """``fx``, ``fy``, ``cx``, ``cy`` and, when present, ``width``, ``height``,
    ``depth_scale`` from an intrinsics file, or None when there is no file."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        fields = {k: float(data[k]) for k in ("fx", "fy", "cx", "cy")}
        fields.update({k: float(data[k]) for k in ("width", "height", "depth_scale") if k in data})
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: expected a JSON object with numbers fx, fy, cx, cy ({err!r})") from err
    return fields


def _open_fully(path: Path, what: str) -> Image.Image:
    """Opens and fully decodes an image, so truncation and corruption surface here."""
    try:
        image = Image.open(path)
        image.load()
    except FileNotFoundError as err:
        raise RecordError(f"missing {what} file {path}") from err
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise RecordError(f"unreadable {what} image {path}: {err}") from err
    return image


def decode_depth(path: Path, depth_scale: float) -> np.ndarray:
    """Reads a 16-bit depth image as float32 metres (H, W); stored 0 stays 0 (invalid).

    Raises:
        RecordError: when the file is missing, unreadable, or not single-channel 16-bit.
    """
    image = _open_fully(path, "depth")
    if image.mode in DEPTH_MODES_16BIT:
        raw = np.asarray(image)
    elif image.mode == "I" and image.format == "PNG":
        # Some Pillow versions open 16-bit greyscale PNGs as 32-bit "I".
        raw = np.asarray(image)
        if raw.size and (raw.min() < 0 or raw.max() > UINT16_MAX):
            raise RecordError(f"depth image {path} has values outside the 16-bit range")
    else:
        raise RecordError(
            f"depth image {path} must be single-channel 16-bit, got mode {image.mode!r} "
            f"with bands {image.getbands()}"
        )
    return raw.astype(np.float32) * np.float32(1.0 / depth_scale)


def decode_rgb(path: Path) -> np.ndarray:
    """Reads a PNG or JPEG as uint8 RGB (H, W, 3).

    Raises:
        RecordError: when the file is missing, unreadable or truncated.
    """
    image = _open_fully(path, "RGB")
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


class FolderSource(DepthSource):
    """RGB-D pairs in a folder tree, matched by a glob and a path substitution.

    Args:
        cfg: Root folder, RGB glob, RGB-to-depth path pattern and depth scale.

    Raises:
        FileNotFoundError: when ``cfg.root`` is not a folder.
        ValueError: when ``depth_pattern``, ``depth_scale`` or ``intrinsics.json`` is invalid.
    """

    name = SOURCE_NAME

    def __init__(self, cfg: FolderSourceConfig) -> None:
        self.cfg = cfg
        self.root = Path(cfg.root).expanduser()
        self._check_root()
        if not cfg.depth_scale > 0:
            raise ValueError(
                f"folder.depth_scale must be > 0 (stored units per metre), got {cfg.depth_scale}"
            )
        self.regex, self.replacement = parse_depth_pattern(cfg.depth_pattern)
        self.camera = _read_intrinsics(self.root / INTRINSICS_FILE)
        stated_scale = (self.camera or {}).get("depth_scale")
        if stated_scale is not None and stated_scale != cfg.depth_scale:
            log.warning(
                "%s states depth_scale %s but folder.depth_scale is %s; using %s",
                self.root / INTRINSICS_FILE,
                stated_scale,
                cfg.depth_scale,
                cfg.depth_scale,
            )

    def _check_root(self) -> None:
        if not self.root.is_dir():
            raise FileNotFoundError(f"folder.root {str(self.root)!r} is not an existing folder")

    def list_keys(self) -> list[str]:
        """``folder/<path relative to root>`` of every RGB image with a pattern match, sorted.

        Raises:
            FileNotFoundError: when the root is gone or no file matches.
        """
        self._check_root()
        try:
            found = [p for p in self.root.glob(self.cfg.rgb_glob) if p.is_file()]
        except (NotImplementedError, ValueError) as err:
            raise ValueError(
                f"folder.rgb_glob {self.cfg.rgb_glob!r} must be relative to folder.root: {err}"
            ) from err
        relative = sorted(p.relative_to(self.root).as_posix() for p in found)
        keys = [f"{SOURCE_NAME}/{rel}" for rel in relative if self.regex.search(rel)]
        if not keys:
            raise FileNotFoundError(
                f"no RGB images under {str(self.root)!r} match folder.rgb_glob {self.cfg.rgb_glob!r} "
                f"and folder.depth_pattern {self.cfg.depth_pattern!r}"
            )
        return keys

    def _relative(self, key: str) -> str:
        prefix = f"{SOURCE_NAME}/"
        if not key.startswith(prefix):
            raise RecordError(f"{key!r} is not a key of the folder source")
        return key[len(prefix) :]

    def source_path(self, key: str) -> str:
        """Path of the RGB image of ``key``."""
        return str(self.root / self._relative(key))

    def depth_path(self, key: str) -> Path:
        """Path of the depth image paired with ``key``'s RGB image."""
        relative = self._relative(key)
        depth_relative, count = self.regex.subn(self.replacement, relative)
        if count == 0:
            raise RecordError(f"folder.depth_pattern {self.cfg.depth_pattern!r} does not match {relative!r}")
        return self.root / depth_relative

    def _intrinsics(self, height: int, width: int) -> tuple[float, float, float, float] | None:
        if self.camera is None:
            return None
        sx = width / self.camera.get("width", width)
        sy = height / self.camera.get("height", height)
        c = self.camera
        return (c["fx"] * sx, c["fy"] * sy, c["cx"] * sx, c["cy"] * sy)

    def load(self, key: str) -> RawRecord:
        """Decodes the RGB image and its depth.

        Raises:
            RecordError: naming the file, when either image is missing, unreadable,
                truncated, or the depth is not single-channel 16-bit.
        """
        rgb_path = Path(self.source_path(key))
        depth_path = self.depth_path(key)
        if not depth_path.is_file():
            raise RecordError(f"missing depth file {depth_path} for {rgb_path}")
        image = decode_rgb(rgb_path)
        depth = decode_depth(depth_path, self.cfg.depth_scale)
        return RawRecord(
            key=key,
            source_path=str(rgb_path),
            image=image,
            depth=depth,
            intrinsics=self._intrinsics(*image.shape[:2]),
        )
