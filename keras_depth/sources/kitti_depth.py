"""KITTI's annotated depth maps joined with the KITTI raw images (source ``kitti_depth``).

Official layouts (KITTI depth devkit readme, KITTI raw)::

    <annotated_root>/{train,val}/<date>_drive_<n>_sync/proj_depth/groundtruth/image_0{2,3}/<frame>.png
    <raw_root>/<date>/<date>_drive_<n>_sync/image_0{2,3}/data/<frame>.png
    <raw_root>/<date>/calib_cam_to_cam.txt            (optional: P_rect_02 / P_rect_03 intrinsics)

Annotated depth is uint16 PNG, metres = value / 256, 0 = no depth. Only raw frames
with an annotated depth map are records: the others (the first and last frames of
each drive, which the annotation leaves out) are skipped and counted in
``skipped_records``. A record's group is its drive, so a drive never spans two
splits. Keys: ``kitti_depth/<drive>/<camera>/<frame>``.

``split_files`` name frame lists in the Eigen-split format, one
``<date>/<drive> <frame> <l|r>`` per line (``l`` = image_02, ``r`` = image_03):
listed frames get their list's split verbatim; unlisted frames of a drive a list
names are skipped (they are near-duplicates of listed frames), as are, with
``skip_unlisted``, the frames of every other drive.
"""

from __future__ import annotations

import re
from pathlib import Path

from keras_depth.config import DEFAULT_MAX_IMAGE_PIXELS, KittiDepthConfig
from keras_depth.data.layout import SPLITS
from keras_depth.sources.base import DepthSource, RawRecord, RecordError
from keras_depth.sources.decode import decode_depth16, decode_rgb, depth_to_metres
from keras_depth.sources.manifest import files_manifest

SOURCE_NAME = "kitti_depth"
CAMERAS = {"l": "image_02", "r": "image_03"}
ANNOTATED_SUBSETS = ("train", "val")
GROUNDTRUTH_DIR = Path("proj_depth") / "groundtruth"
CALIBRATION_FILE = "calib_cam_to_cam.txt"
DEPTH_SCALE = 256.0  # stored value per metre
FRAME_DIGITS = 10
_DRIVE = re.compile(r"(\d{4}_\d{2}_\d{2})_drive_\d{4}_sync")
_SPLIT_LINE = re.compile(r"(?P<date>\d{4}_\d{2}_\d{2})/(?P<drive>\S+)\s+(?P<frame>\d+)\s+(?P<side>[lr])")
# Reasons in skipped_records.
NO_ANNOTATED_DEPTH = "raw frame without annotated depth"
LISTED_WITHOUT_DEPTH = "split-file frame without annotated depth"
UNLISTED_IN_LISTED_DRIVE = "unlisted frame of a drive in the split files"
UNLISTED = "frame of a drive no split file names (skip_unlisted)"

Frame = tuple[str, str, str]  # drive, camera, frame number (10 digits)


def drive_date(drive: str) -> str:
    """``2011_09_26`` of ``2011_09_26_drive_0002_sync``."""
    return drive[:10]


def read_split_file(path: Path, field: str) -> set[Frame]:
    """The frames an Eigen-format list names.

    Args:
        path: The list; one ``<date>/<drive> <frame> <l|r>`` per line, blank lines ignored.
        field: The config field naming it (for messages).

    Raises:
        FileNotFoundError: naming ``field`` when the file is missing.
        ValueError: naming the file and line when a line is not in that format.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{field} {str(path)!r} is not a file")
    frames = set()
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        match = _SPLIT_LINE.fullmatch(line.strip())
        if match is None or not match["drive"].startswith(match["date"]):
            raise ValueError(
                f"{path}:{number}: expected '<date>/<drive> <frame> <l|r>' "
                f"(e.g. '2011_09_26/2011_09_26_drive_0002_sync 0000000069 l'), got {line!r}"
            )
        frames.add((match["drive"], CAMERAS[match["side"]], f"{int(match['frame']):0{FRAME_DIGITS}d}"))
    return frames


def read_calibration(path: Path) -> dict[str, tuple[float, float, float, float]]:
    """(fx, fy, cx, cy) per camera from the rectified projections ``P_rect_02`` and ``P_rect_03``.

    Raises:
        ValueError: naming the file and entry when a projection is not 12 numbers.
    """
    entries = dict(line.split(":", 1) for line in path.read_text().splitlines() if ":" in line)
    intrinsics = {}
    for camera in CAMERAS.values():
        name = f"P_rect_{camera[-2:]}"
        try:
            values = [float(value) for value in entries[name].split()]
        except (KeyError, ValueError) as err:
            raise ValueError(f"{path}: {name} must be a 3x4 projection matrix (12 numbers)") from err
        if len(values) != 12:
            raise ValueError(
                f"{path}: {name} must be a 3x4 projection matrix (12 numbers), got {len(values)}"
            )
        intrinsics[camera] = (values[0], values[5], values[2], values[6])
    return intrinsics


class KittiDepthSource(DepthSource):
    """Annotated KITTI frames of the selected cameras, grouped by drive.

    Args:
        cfg: Annotated and raw roots, cameras, split lists.
        max_image_pixels: Images with more pixels (from the file header) are dead-lettered.

    Raises:
        FileNotFoundError: naming the field when a root or split file is missing.
        ValueError: when a camera is unknown or a split file or calibration is malformed.
    """

    name = SOURCE_NAME

    def __init__(self, cfg: KittiDepthConfig, max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> None:
        for field, root in (("annotated_root", cfg.annotated_root), ("raw_root", cfg.raw_root)):
            if not root or not Path(root).expanduser().is_dir():
                raise FileNotFoundError(f"kitti_depth.{field} {root!r} is not an existing folder")
        unknown = sorted(set(cfg.cameras) - set(CAMERAS.values()))
        if unknown or not cfg.cameras:
            raise ValueError(
                f"kitti_depth.cameras must be a non-empty subset of {sorted(CAMERAS.values())}, got {cfg.cameras}"
            )
        self.cfg = cfg
        self.max_image_pixels = max_image_pixels
        self.annotated_root = Path(cfg.annotated_root).expanduser()
        self.raw_root = Path(cfg.raw_root).expanduser()
        self.listed: dict[Frame, str] = {}
        for split in SPLITS:
            path = getattr(cfg.split_files, split)
            if path:
                for frame in read_split_file(Path(path).expanduser(), f"kitti_depth.split_files.{split}"):
                    if self.listed.setdefault(frame, split) != split:
                        raise ValueError(
                            f"kitti_depth.split_files: {' '.join(frame)} is listed for both "
                            f"{self.listed[frame]} and {split}"
                        )
        self._subsets: dict[str, str] = {}  # drive -> annotated subset folder (train or val)
        self._intrinsics: dict[str, dict[str, tuple[float, float, float, float]]] = {}  # date -> camera -> K
        self._skipped: dict[str, int] = {}

    def _annotated_frames(self) -> dict[Frame, None]:
        """Every annotated frame of the selected cameras, in sorted order; fills ``_subsets``."""
        frames: dict[Frame, None] = {}
        for subset in ANNOTATED_SUBSETS:
            for drive_dir in sorted((self.annotated_root / subset).glob("*_drive_*_sync")):
                if _DRIVE.fullmatch(drive_dir.name) is None:
                    continue
                self._subsets[drive_dir.name] = subset
                for camera in self.cfg.cameras:
                    for path in sorted((drive_dir / GROUNDTRUTH_DIR / camera).glob("*.png")):
                        frames[(drive_dir.name, camera, path.stem)] = None
        if not frames:
            raise FileNotFoundError(
                f"no annotated depth under kitti_depth.annotated_root {str(self.annotated_root)!r}: expected "
                f"{{train,val}}/<date>_drive_<n>_sync/{GROUNDTRUTH_DIR.as_posix()}/"
                f"{{{','.join(self.cfg.cameras)}}}/<frame>.png"
            )
        return frames

    def _raw_frames(self, drive: str, camera: str) -> set[str]:
        data_dir = self.raw_root / drive_date(drive) / drive / camera / "data"
        return {path.stem for path in data_dir.glob("*.png")}

    def list_keys(self) -> list[str]:
        """Keys of the annotated frames that the split files (if any) let through.

        Raises:
            FileNotFoundError: when the annotated root holds no depth map of the cameras.
            ValueError: naming ``calib_cam_to_cam.txt`` when it is malformed.
        """
        annotated = self._annotated_frames()
        skipped = {NO_ANNOTATED_DEPTH: 0, LISTED_WITHOUT_DEPTH: 0, UNLISTED_IN_LISTED_DRIVE: 0, UNLISTED: 0}
        for drive, camera in sorted({(drive, camera) for drive, camera, _ in annotated}):
            raw = self._raw_frames(drive, camera)
            skipped[NO_ANNOTATED_DEPTH] += sum((drive, camera, frame) not in annotated for frame in raw)
        selected = [frame for frame in self.listed if frame[1] in self.cfg.cameras]
        skipped[LISTED_WITHOUT_DEPTH] = sum(frame not in annotated for frame in selected)
        listed_drives = {drive for drive, _, _ in selected}
        keys = []
        for frame in annotated:
            if frame not in self.listed and frame[0] in listed_drives:
                skipped[UNLISTED_IN_LISTED_DRIVE] += 1
            elif frame not in self.listed and selected and self.cfg.skip_unlisted:
                skipped[UNLISTED] += 1
            else:
                keys.append(f"{SOURCE_NAME}/{'/'.join(frame)}")
        self._skipped = {reason: count for reason, count in skipped.items() if count}
        self._intrinsics = {}
        for date in sorted({drive_date(drive) for drive, _, _ in annotated}):
            calibration = self.raw_root / date / CALIBRATION_FILE
            if calibration.is_file():
                self._intrinsics[date] = read_calibration(calibration)
        return keys

    def skipped_records(self) -> dict[str, int]:
        """Frames passed over by the last ``list_keys``, by reason (see the module docstring)."""
        return dict(self._skipped)

    def _paths(self, key: str) -> tuple[Path, Path]:
        """(annotated depth, raw RGB) of ``key``."""
        parts = key.split("/")
        if len(parts) != 4 or parts[0] != SOURCE_NAME or parts[1] not in self._subsets:
            raise RecordError(
                f"{key!r} is not a key of the {SOURCE_NAME} source listed from {self.annotated_root}"
            )
        _, drive, camera, frame = parts
        depth = self.annotated_root / self._subsets[drive] / drive / GROUNDTRUTH_DIR / camera / f"{frame}.png"
        rgb = self.raw_root / drive_date(drive) / drive / camera / "data" / f"{frame}.png"
        return depth, rgb

    def manifest(self) -> dict:
        """Names, sizes and mtimes of every annotated depth map, raw image, split file and calibration."""
        keys = self.list_keys()
        paths = [path for key in keys for path in self._paths(key)]
        paths += [self.raw_root / date / CALIBRATION_FILE for date in self._intrinsics]
        paths += [Path(path).expanduser() for path in vars(self.cfg.split_files).values() if path]
        return files_manifest(paths, self.annotated_root.parent)

    def source_path(self, key: str) -> str:
        """The annotated depth map of ``key``."""
        return str(self._paths(key)[0])

    def load(self, key: str) -> RawRecord:
        """Reads the raw RGB image and its annotated depth (metres; 0 = no depth).

        Raises:
            RecordError: naming the file when the depth map or the raw image is missing,
                unreadable or not of the expected kind, or their sizes differ.
        """
        depth_path, rgb_path = self._paths(key)
        depth = depth_to_metres(decode_depth16(depth_path, self.max_image_pixels), DEPTH_SCALE)
        rgb = decode_rgb(rgb_path, self.max_image_pixels)
        if rgb.image.shape[:2] != depth.shape:
            raise RecordError(
                f"raw image {rgb_path} is {rgb.image.shape[:2]} (H, W) but its annotated depth "
                f"{depth_path} is {depth.shape}"
            )
        _, drive, camera, frame = key.split("/")
        return RawRecord(
            key=key,
            source_path=str(depth_path),
            image=rgb.image,
            depth=depth,
            intrinsics=self._intrinsics.get(drive_date(drive), {}).get(camera),
            group=drive,
            official_split=self.listed.get((drive, camera, frame)),
            conversions=rgb.conversions,
        )
