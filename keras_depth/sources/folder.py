"""User RGB-D data as image pairs in a folder tree (source ``folder``).

RGB images are found with ``rgb_glob`` under ``root``; each one's depth image is
found by rewriting its path relative to ``root`` with the ``depth_pattern`` regex
substitution, for example (NYU-style names)::

    rgb_glob: "rgb/*"
    depth_pattern: 'rgb/rgb_(\\w+)\\.(jpg|png)$=>depth/sync_depth_\\1.png'

Files the glob finds but the pattern does not match are not RGB images of a pair
and are skipped; every other non-directory the glob finds (symbolic links that
dangle or loop included) is a record, written or dead-lettered with its reason.
Depth must be a single-channel 16-bit image storing ``depth_scale`` per metre;
stored 0 and the ``invalid_values`` mean no measurement. Each record's group
(scene, sequence: the split keeps a group together) is the RGB file's parent
directory, or the first group of ``group_pattern``. An optional
``<root>/intrinsics.json`` with ``fx``, ``fy``, ``cx``, ``cy`` (pixels; with ``width``
and ``height`` when they refer to another image size) gives the camera intrinsics.
Images are decoded by :mod:`keras_depth.sources.decode` (size checked from the
header first, colour modes never converted silently).
"""

from __future__ import annotations

import json
import logging
import posixpath
import re
from pathlib import Path

from keras_depth.config import DEFAULT_MAX_IMAGE_PIXELS, FolderSourceConfig
from keras_depth.sources.base import DepthSource, RawRecord, RecordError
from keras_depth.sources.decode import decode_depth16, decode_rgb, depth_to_metres
from keras_depth.sources.manifest import files_manifest

SOURCE_NAME = "folder"
INTRINSICS_FILE = "intrinsics.json"
PATTERN_SEPARATOR = "=>"
ROOT_GROUP = "."
UINT16_MAX = 65535

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


def parse_group_pattern(pattern: str) -> re.Pattern[str] | None:
    """The compiled ``folder.group_pattern``, or None for "" (group = parent directory).

    Raises:
        ValueError: naming ``folder.group_pattern`` when the regex does not compile or
            has no capturing group.
    """
    if not pattern:
        return None
    try:
        regex = re.compile(pattern)
    except re.error as err:
        raise ValueError(f"folder.group_pattern has an invalid regex {pattern!r}: {err}") from err
    if regex.groups < 1:
        raise ValueError(
            f"folder.group_pattern {pattern!r} needs a capturing group (...) naming the record's group"
        )
    return regex


def check_invalid_values(values: list[int]) -> tuple[int, ...]:
    """``folder.invalid_values`` as a sorted tuple with 0 always included.

    Raises:
        ValueError: naming ``folder.invalid_values`` when a value is not an integer in 0..65535.
    """
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= UINT16_MAX:
            raise ValueError(
                f"folder.invalid_values must be stored 16-bit values (integers 0..{UINT16_MAX}), "
                f"got {value!r} in {values!r}"
            )
    return tuple(sorted({0, *values}))


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


class FolderSource(DepthSource):
    """RGB-D pairs in a folder tree, matched by a glob and a path substitution.

    Args:
        cfg: Root folder, RGB glob, RGB-to-depth path pattern, depth scale, invalid
            stored values and group pattern.
        max_image_pixels: RGB or depth images with more pixels (from the file header)
            are dead-lettered without being decoded.

    Raises:
        FileNotFoundError: when ``cfg.root`` is not a folder.
        ValueError: when ``depth_pattern``, ``group_pattern``, ``depth_scale``,
            ``invalid_values`` or ``intrinsics.json`` is invalid.
    """

    name = SOURCE_NAME

    def __init__(self, cfg: FolderSourceConfig, max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> None:
        self.cfg = cfg
        self.max_image_pixels = max_image_pixels
        self.root = Path(cfg.root).expanduser()
        self._check_root()
        if not cfg.depth_scale > 0:
            raise ValueError(
                f"folder.depth_scale must be > 0 (stored units per metre), got {cfg.depth_scale}"
            )
        self.invalid_values = check_invalid_values(cfg.invalid_values)
        self.regex, self.replacement = parse_depth_pattern(cfg.depth_pattern)
        self.group_regex = parse_group_pattern(cfg.group_pattern)
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
        """``folder/<path relative to root>`` of every RGB file with a pattern match, sorted.

        Every non-directory the glob finds counts, so a dangling or looping symbolic link
        (or a FIFO) becomes a record that ``load`` dead-letters with its reason.

        Raises:
            FileNotFoundError: when the root is gone or no file matches.
        """
        self._check_root()
        try:
            found = [p for p in self.root.glob(self.cfg.rgb_glob) if not p.is_dir()]
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

    def manifest(self) -> dict:
        """``files`` (RGB, depth and intrinsics files) and the ``sha256`` of their relative
        names, sizes and modification times; stat calls only, no file is read."""
        keys = self.list_keys()
        paths = [Path(self.source_path(key)) for key in keys]
        paths += [self.depth_path(key) for key in keys]
        paths.append(self.root / INTRINSICS_FILE)
        return files_manifest(paths, self.root)

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

    def group(self, key: str) -> str:
        """The group of ``key``: its RGB file's parent directory, or ``group_pattern``'s first group.

        Raises:
            RecordError: naming the path and the pattern when ``group_pattern`` does not
                match it or its first group is empty.
        """
        relative = self._relative(key)
        if self.group_regex is None:
            return posixpath.dirname(relative) or ROOT_GROUP
        match = self.group_regex.search(relative)
        if match is None or not match.group(1):
            found = "does not match" if match is None else "captures an empty group in"
            raise RecordError(f"folder.group_pattern {self.cfg.group_pattern!r} {found} {relative!r}")
        return match.group(1)

    def _intrinsics(self, height: int, width: int) -> tuple[float, float, float, float] | None:
        if self.camera is None:
            return None
        sx = width / self.camera.get("width", width)
        sy = height / self.camera.get("height", height)
        c = self.camera
        return (c["fx"] * sx, c["fy"] * sy, c["cx"] * sx, c["cy"] * sy)

    def load(self, key: str) -> RawRecord:
        """Decodes the RGB image and its depth (metres; invalid stored values -> 0).

        Raises:
            RecordError: naming the file, when either image is missing, not a regular
                file, over ``max_image_pixels``, unreadable, truncated, not RGB (see
                :func:`~keras_depth.sources.decode.decode_rgb`), the depth is not
                single-channel 16-bit, or the path has no group.
        """
        rgb_path = Path(self.source_path(key))
        group = self.group(key)
        rgb = decode_rgb(rgb_path, self.max_image_pixels)
        raw_depth = decode_depth16(self.depth_path(key), self.max_image_pixels)
        return RawRecord(
            key=key,
            source_path=str(rgb_path),
            image=rgb.image,
            depth=depth_to_metres(raw_depth, self.cfg.depth_scale, self.invalid_values),
            intrinsics=self._intrinsics(*rgb.image.shape[:2]),
            group=group,
            conversions=rgb.conversions,
        )
