"""NYU Depth v2's labelled subset from its official files (source ``nyu_labeled``).

``nyu_depth_v2_labeled.mat`` is a MATLAB v7.3 file, i.e. HDF5 (after a 512-byte
MATLAB header), read here with h5py one frame at a time, never as a whole (2.8 GB).
HDF5 stores MATLAB's column-major arrays with their dimensions reversed, so h5py sees:

============  =========================  =========================================
name          MATLAB size                h5py shape, dtype
============  =========================  =========================================
``images``    480 x 640 x 3 x 1449       (1449, 3, 640, 480) uint8: [frame][channel][column][row]
``depths``    480 x 640 x 1449           (1449, 640, 480) float32 metres, in-painted (all valid)
``rawDepths`` 480 x 640 x 1449           (1449, 640, 480) float32 metres, 0 = no Kinect reading
``scenes``    1449 x 1 cell of char      (1, 1449) object references to uint16 (length, 1) char codes
============  =========================  =========================================

so frame ``i`` is ``images[i].transpose(2, 1, 0)`` (H, W, 3) and ``depths[i].T`` (H, W),
which keeps RGB and depth aligned. Its group is its ``scenes`` entry (``kitchen_0028a``).

The official split ``splits.mat`` is a MATLAB v5 file (read with ``scipy.io.loadmat``)
holding ``trainNdxs`` (795 x 1) and ``testNdxs`` (654 x 1), 1-based frame numbers.

Keys are ``nyu_labeled/<frame>`` with the 1-based frame number of ``splits.mat`` and
MATLAB, zero-padded to 4 digits. Beam workers each open the file once, lazily: the
h5py handle is never part of the pickled source.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from keras_depth.config import DEFAULT_MAX_IMAGE_PIXELS, NyuLabeledConfig
from keras_depth.data.layout import TEST, TRAIN
from keras_depth.sources.base import DepthSource, RawRecord, RecordError
from keras_depth.sources.decode import check_pixel_count
from keras_depth.sources.manifest import files_manifest

SOURCE_NAME = "nyu_labeled"
IMAGES = "images"
SCENES = "scenes"
DEPTH_FIELDS = ("depths", "rawDepths")
SPLIT_VARIABLES = {TRAIN: "trainNdxs", TEST: "testNdxs"}
NOT_IN_SPLITS = "not in splits.mat"
EXPECTED_FILE = (
    "nyu_depth_v2_labeled.mat (MATLAB v7.3 / HDF5 with images (N, 3, W, H) uint8, "
    "depths and rawDepths (N, W, H) float32, scenes (1, N) object references)"
)
# The NYU toolbox's RGB camera (camera_params.m: fx_rgb, fy_rgb, cx_rgb, cy_rgb), pixels of 640 x 480.
KINECT_RGB_INTRINSICS = (518.857901, 519.469611, 325.582449, 253.736166)
KINECT_SIZE = (480, 640)


def frame_key(frame: int) -> str:
    """The key of 1-based frame number ``frame``: ``nyu_labeled/0001``."""
    return f"{SOURCE_NAME}/{frame:04d}"


def read_official_splits(path: Path) -> dict[int, str]:
    """The official split of each listed frame: 1-based frame number -> ``train`` or ``test``.

    Args:
        path: ``splits.mat`` (MATLAB v5) with the vectors ``trainNdxs`` and ``testNdxs``.

    Raises:
        FileNotFoundError: naming ``nyu_labeled.splits_path`` when the file is missing.
        ValueError: naming the file (and variable) when it is not a MATLAB v5 file with
            both vectors of positive integers, or a frame is in both.
    """
    import scipy.io  # only this source needs scipy

    if not path.is_file():
        raise FileNotFoundError(f"nyu_labeled.splits_path {str(path)!r} is not a file (expected splits.mat)")
    try:
        variables = scipy.io.loadmat(path)
    except (ValueError, NotImplementedError, TypeError, OSError) as err:
        raise ValueError(
            f"{path}: not a MATLAB v5 splits.mat with trainNdxs and testNdxs ({type(err).__name__}: {err})"
        ) from err
    splits: dict[int, str] = {}
    for split, name in SPLIT_VARIABLES.items():
        if name not in variables:
            found = sorted(key for key in variables if not key.startswith("__"))
            raise ValueError(f"{path}: no variable {name!r} (found {found}); expected splits.mat")
        values = np.asarray(variables[name])
        if values.size == 0 or min(values.shape) != 1 or np.any(values < 1) or np.any(values % 1):
            raise ValueError(
                f"{path}: {name} must be a vector of 1-based frame numbers, got shape {values.shape}"
            )
        for frame in values.astype(np.int64).ravel().tolist():
            if splits.get(frame, split) != split:
                raise ValueError(f"{path}: frame {frame} is in both trainNdxs and testNdxs")
            splits[frame] = split
    return splits


def _matlab_string(file: h5py.File, reference: h5py.Reference, what: str) -> str:
    """The text of a MATLAB char array that ``reference`` points to (uint16 codes)."""
    try:
        codes = np.asarray(file[reference])
    except (ValueError, KeyError, TypeError) as err:
        raise RecordError(f"{file.filename}: {what} is not a valid object reference ({err})") from err
    if not np.issubdtype(codes.dtype, np.integer):
        raise RecordError(f"{file.filename}: {what} must be a MATLAB char array, got dtype {codes.dtype}")
    return "".join(map(chr, codes.ravel().tolist()))


class NyuLabeledSource(DepthSource):
    """The 1449 labelled NYU Depth v2 frames, 480 x 640, with their scene and official split.

    Args:
        cfg: The ``.mat`` file, depth field, ``splits.mat`` and whether to follow it.
        max_image_pixels: Frames with more pixels are dead-lettered without being read.

    Raises:
        FileNotFoundError: naming the field when ``path`` or ``splits_path`` is not a file.
        ValueError: when ``depth_field`` is unknown or ``splits.mat`` is malformed.
    """

    name = SOURCE_NAME

    def __init__(self, cfg: NyuLabeledConfig, max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> None:
        if cfg.depth_field not in DEPTH_FIELDS:
            raise ValueError(
                f"nyu_labeled.depth_field must be one of {', '.join(DEPTH_FIELDS)}, got {cfg.depth_field!r}"
            )
        self.path = Path(cfg.path).expanduser()
        if not cfg.path or not self.path.is_file():
            raise FileNotFoundError(
                f"nyu_labeled.path {cfg.path!r} is not a file; expected the path of {EXPECTED_FILE}"
            )
        self.cfg = cfg
        self.max_image_pixels = max_image_pixels
        self.splits_path = Path(cfg.splits_path).expanduser() if cfg.splits_path else None
        follow = self.splits_path is not None and cfg.use_official_split
        self.official = read_official_splits(self.splits_path) if follow else None
        self._skipped: dict[str, int] = {}
        self._file: h5py.File | None = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_file"] = None  # each process opens the file itself
        return state

    def _open(self) -> h5py.File:
        if self._file is None:
            try:
                self._file = h5py.File(self.path, "r")
            except OSError as err:
                raise ValueError(
                    f"{self.path}: not a MATLAB v7.3 (HDF5) file; expected {EXPECTED_FILE}"
                ) from err
        return self._file

    def _num_frames(self) -> int:
        """The number of frames, after checking every dataset's shape against ``images``.

        Raises:
            ValueError: naming the file and dataset when one is missing or mis-shaped.
        """
        file = self._open()
        for name in (IMAGES, self.cfg.depth_field, SCENES):
            if not isinstance(file.get(name), h5py.Dataset):
                raise ValueError(f"{self.path}: no dataset {name!r}; expected {EXPECTED_FILE}")
        images, depth, scenes = file[IMAGES], file[self.cfg.depth_field], file[SCENES]
        if images.ndim != 4 or images.shape[1] != 3 or images.dtype != np.uint8:
            raise ValueError(
                f"{self.path}: {IMAGES} must be uint8 (N, 3, W, H), got {images.dtype} {images.shape}"
            )
        count, _, width, height = images.shape
        if depth.shape != (count, width, height):
            raise ValueError(
                f"{self.path}: {self.cfg.depth_field} must be (N, W, H) = {(count, width, height)} "
                f"like {IMAGES}, got {depth.shape}"
            )
        if scenes.size != count or h5py.check_dtype(ref=scenes.dtype) is not h5py.Reference:
            raise ValueError(
                f"{self.path}: {SCENES} must hold {count} object references (a MATLAB cell), "
                f"got {scenes.dtype} {scenes.shape}"
            )
        return count

    def list_keys(self) -> list[str]:
        """Keys of every frame, or of the frames ``splits.mat`` lists when following it.

        Raises:
            ValueError: naming the file when its layout is not the labelled dataset's, or
                naming ``splits.mat`` when it lists a frame the file does not have.
        """
        count = self._num_frames()
        frames = range(1, count + 1)
        if self.official is not None:
            beyond = sorted(frame for frame in self.official if frame > count)
            if beyond:
                raise ValueError(
                    f"{self.splits_path}: lists frames up to {beyond[-1]} but {self.path} has {count}"
                )
            frames = [frame for frame in frames if frame in self.official]
        self._skipped = {NOT_IN_SPLITS: count - len(frames)} if len(frames) < count else {}
        return [frame_key(frame) for frame in frames]

    def skipped_records(self) -> dict[str, int]:
        """Frames left out because ``splits.mat`` does not list them (when following it)."""
        return dict(self._skipped)

    def manifest(self) -> dict:
        """Size and modification time of the ``.mat`` file and ``splits.mat``."""
        paths = [self.path] + ([self.splits_path] if self.splits_path else [])
        return files_manifest(paths, self.path.parent)

    def source_path(self, key: str) -> str:
        """``<file>:<frame>``."""
        return f"{self.path}:{key.rpartition('/')[2]}"

    def _frame(self, key: str) -> int:
        prefix, _, number = key.rpartition("/")
        if prefix != SOURCE_NAME or not number.isdigit() or int(number) < 1:
            raise RecordError(f"{key!r} is not a key of the {SOURCE_NAME} source")
        return int(number)

    def load(self, key: str) -> RawRecord:
        """Reads one frame: RGB (H, W, 3) uint8 and depth (H, W) float32 metres, both 480 x 640.

        The Kinect RGB intrinsics come with frames of the original 480 x 640 size.

        Raises:
            RecordError: naming the file and dataset when the frame is beyond the file or
                not in the official split being followed, or its scene entry is not a
                MATLAB string.
        """
        frame = self._frame(key)
        official = None if self.official is None else self.official.get(frame)
        if self.official is not None and official is None:
            raise RecordError(f"{self.path}: frame {frame} is not listed in {self.splits_path}")
        file = self._open()
        images, depth, scenes = file[IMAGES], file[self.cfg.depth_field], file[SCENES]
        if frame > images.shape[0]:
            raise RecordError(f"{self.path}: frame {frame} is beyond the {images.shape[0]} frames")
        _, _, width, height = images.shape
        check_pixel_count(height, width, self.max_image_pixels, "RGB", f"{self.path}:{IMAGES}")
        index = frame - 1
        image = np.ascontiguousarray(images[index].transpose(2, 1, 0))
        depth_map = np.ascontiguousarray(depth[index].T, dtype=np.float32)
        reference = scenes[(0, index) if scenes.shape[0] == 1 else (index, 0)]
        scene = _matlab_string(file, reference, f"{SCENES}[{frame}]")
        return RawRecord(
            key=key,
            source_path=self.source_path(key),
            image=image,
            depth=depth_map,
            intrinsics=KINECT_RGB_INTRINSICS if (height, width) == KINECT_SIZE else None,
            group=scene,
            official_split=official,
        )
