"""DIODE (Dense Indoor and Outdoor DEpth) in its official layout (source ``diode``).

::

    <root>/{train,val}/{indoors,outdoor}/scene_<id>/scan_<id>/<name>.png             RGB, 1024 x 768
    <root>/{train,val}/{indoors,outdoor}/scene_<id>/scan_<id>/<name>_depth.npy       (H, W, 1) float32 metres
    <root>/{train,val}/{indoors,outdoor}/scene_<id>/scan_<id>/<name>_depth_mask.npy  (H, W) float, 1 = valid

Depth where the mask is 0 is stored as 0 (invalid). A record's group is its scene
(DIODE's train and val scenes are disjoint). With ``use_official_split`` DIODE's
train split feeds our ``train`` and its val split our ``val_split`` (``test`` by
default: DIODE publishes no test depth, so its val split is the held-out set).
Keys: ``diode/<train|val>/<scene type>/<scene>/<scan>/<name>``.
"""

from __future__ import annotations

import tokenize
from pathlib import Path

import numpy as np

from keras_depth.config import DEFAULT_MAX_IMAGE_PIXELS, DiodeConfig
from keras_depth.data.layout import TEST, TRAIN, VAL
from keras_depth.sources.base import DepthSource, RawRecord, RecordError
from keras_depth.sources.decode import decode_rgb
from keras_depth.sources.manifest import files_manifest

SOURCE_NAME = "diode"
SUBSETS = ("train", "val")
SCENE_TYPES = ("indoors", "outdoor")
DEPTH_SUFFIX = "_depth.npy"
MASK_SUFFIX = "_depth_mask.npy"
# The DIODE devkit's camera (intrinsics.txt), pixels of the 1024 x 768 images.
INTRINSICS = (886.81, 927.06, 512.0, 384.0)
IMAGE_SIZE = (768, 1024)


def read_npy(path: Path, shape: tuple[int, ...], what: str) -> np.ndarray:
    """Reads a ``.npy`` array of exactly ``shape`` as float32; the shape is checked from the
    header (the file is memory-mapped), before any data is read.

    Args:
        path: The file.
        shape: The expected shape (the RGB image's, whose size was checked from its header).
        what: What it holds (for messages).

    Raises:
        RecordError: naming the file when it is missing, not a ``.npy`` array, of another
            shape or not real-valued.
    """
    try:
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError as err:
        raise RecordError(f"missing {what} file {path}") from err
    # SyntaxError, TokenError: numpy parsing a corrupt header (found by test_source_fuzz.py).
    except (OSError, ValueError, EOFError, SyntaxError, tokenize.TokenError) as err:
        raise RecordError(f"unreadable {what} file {path}: not a .npy array ({err})") from err
    if mapped.shape != shape:
        raise RecordError(
            f"{what} file {path} has shape {mapped.shape}, expected {shape} to match the RGB image"
        )
    if not (np.issubdtype(mapped.dtype, np.floating) or np.issubdtype(mapped.dtype, np.integer)):
        raise RecordError(f"{what} file {path} must be real-valued, got dtype {mapped.dtype}")
    return np.array(mapped, dtype=np.float32)


class DiodeSource(DepthSource):
    """DIODE scans of the selected scene types, grouped by scene.

    Args:
        cfg: Root, scene types and split settings.
        max_image_pixels: RGB images with more pixels (from the file header) are dead-lettered unread.

    Raises:
        FileNotFoundError: when ``root`` is not a folder.
        ValueError: when a scene type or ``val_split`` is unknown.
    """

    name = SOURCE_NAME

    def __init__(self, cfg: DiodeConfig, max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> None:
        self.root = Path(cfg.root).expanduser()
        if not cfg.root or not self.root.is_dir():
            raise FileNotFoundError(f"diode.root {cfg.root!r} is not an existing folder")
        if not cfg.scene_types or set(cfg.scene_types) - set(SCENE_TYPES):
            raise ValueError(
                f"diode.scene_types must be a non-empty subset of {list(SCENE_TYPES)}, got {cfg.scene_types}"
            )
        if cfg.val_split not in (VAL, TEST):
            raise ValueError(f"diode.val_split must be {VAL!r} or {TEST!r}, got {cfg.val_split!r}")
        self.cfg = cfg
        self.max_image_pixels = max_image_pixels

    def list_keys(self) -> list[str]:
        """Keys of every ``scan_*/*.png`` of the selected scene types, sorted.

        Raises:
            FileNotFoundError: naming the root and the expected layout when nothing matches.
        """
        images = sorted(
            path.relative_to(self.root).with_suffix("").as_posix()
            for subset in SUBSETS
            for scene_type in self.cfg.scene_types
            for path in (self.root / subset / scene_type).glob("scene_*/scan_*/*.png")
        )
        if not images:
            raise FileNotFoundError(
                f"no DIODE images under diode.root {str(self.root)!r}: expected "
                f"{{{','.join(SUBSETS)}}}/{{{','.join(self.cfg.scene_types)}}}/scene_*/scan_*/<name>.png"
            )
        return [f"{SOURCE_NAME}/{relative}" for relative in images]

    def _stem(self, key: str) -> Path:
        """``<root>/<subset>/<type>/<scene>/<scan>/<name>`` of ``key``."""
        prefix, _, relative = key.partition("/")
        parts = relative.split("/")
        if prefix != SOURCE_NAME or len(parts) != 5 or parts[0] not in SUBSETS or parts[1] not in SCENE_TYPES:
            raise RecordError(f"{key!r} is not a key of the {SOURCE_NAME} source")
        return self.root / relative

    def manifest(self) -> dict:
        """Names, sizes and mtimes of every image, depth and mask file."""
        stems = [self._stem(key) for key in self.list_keys()]
        suffixes = (".png", DEPTH_SUFFIX, MASK_SUFFIX)
        return files_manifest(
            (stem.parent / (stem.name + suffix) for stem in stems for suffix in suffixes), self.root
        )

    def source_path(self, key: str) -> str:
        """The RGB image of ``key``."""
        return str(self._stem(key).with_suffix(".png"))

    def load(self, key: str) -> RawRecord:
        """Reads the RGB image, its depth (metres) and its mask; masked-out depth becomes 0.

        Raises:
            RecordError: naming the file when one is missing, unreadable, of the wrong
                shape, or the mask holds values other than 0 and 1.
        """
        stem = self._stem(key)
        rgb = decode_rgb(stem.with_suffix(".png"), self.max_image_pixels)
        height, width = rgb.image.shape[:2]
        depth_path = stem.parent / (stem.name + DEPTH_SUFFIX)
        mask_path = stem.parent / (stem.name + MASK_SUFFIX)
        depth = read_npy(depth_path, (height, width, 1), "depth")[..., 0]
        mask = read_npy(mask_path, (height, width), "depth mask")
        if not np.isin(mask, (0.0, 1.0)).all():
            raise RecordError(
                f"depth mask {mask_path} must hold only 0 and 1, got values in [{mask.min()}, {mask.max()}]"
            )
        subset, _, scene = key.split("/")[1:4]
        official = None
        if self.cfg.use_official_split:
            official = TRAIN if subset == "train" else self.cfg.val_split
        return RawRecord(
            key=key,
            source_path=str(stem.with_suffix(".png")),
            image=rgb.image,
            depth=np.where(mask == 1.0, depth, np.float32(0.0)),
            intrinsics=INTRINSICS if (height, width) == IMAGE_SIZE else None,
            group=scene,
            official_split=official,
            conversions=rgb.conversions,
        )
