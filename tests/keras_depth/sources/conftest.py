"""Writers of tiny datasets in the official on-disk layouts of NYU Depth v2 (labelled), KITTI depth and DIODE.

Every frame carries a marker: a block of pure-white RGB pixels at a per-frame place whose
depth is ``MARKER_DEPTH``, so a test can check that RGB and depth stay aligned
(``assert_aligned``). Other RGB values stay below 250 and other depths below ``MARKER_DEPTH``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
from PIL import Image

MARKER_DEPTH = 9.5  # metres; exact in float16 and in KITTI's 1/256 m steps
MARKER_SIZE = 2


def marker_place(index: int, height: int, width: int) -> tuple[int, int]:
    """Top-left (row, column) of frame ``index``'s marker; differs between neighbouring frames."""
    return (3 + 5 * index) % (height - MARKER_SIZE), (7 + 11 * index) % (width - MARKER_SIZE)


def marked_frame(
    rng: np.random.Generator, index: int, height: int, width: int, hole_fraction: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """RGB uint8 (H, W, 3) and depth float32 metres (H, W, 0 = hole) with frame ``index``'s marker."""
    image = rng.integers(0, 250, (height, width, 3), dtype=np.uint8)
    depth = rng.uniform(0.5, 8.0, (height, width)).astype(np.float32)
    depth[rng.random((height, width)) < hole_fraction] = 0.0
    row, col = marker_place(index, height, width)
    image[row : row + MARKER_SIZE, col : col + MARKER_SIZE] = 255
    depth[row : row + MARKER_SIZE, col : col + MARKER_SIZE] = MARKER_DEPTH
    return image, depth


def _assert_aligned(image: np.ndarray, depth: np.ndarray, index: int) -> None:
    assert image.shape[:2] == depth.shape
    white = np.argwhere((image == 255).all(axis=2))
    row, col = marker_place(index, *depth.shape)
    expected = [[r, c] for r in range(row, row + MARKER_SIZE) for c in range(col, col + MARKER_SIZE)]
    assert white.tolist() == expected
    assert np.argwhere(depth == MARKER_DEPTH).tolist() == expected


@pytest.fixture(scope="session")
def assert_aligned() -> Callable[[np.ndarray, np.ndarray, int], None]:
    """``assert_aligned(image, depth, index)``: the white RGB block and the ``MARKER_DEPTH`` pixels
    are the same pixels, at frame ``index``'s place."""
    return _assert_aligned


@pytest.fixture(scope="session")
def marked_frames() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """``marked_frames(count, height, width)``: RGB uint8 (N, H, W, 3) and depth float32 (N, H, W)
    metres, frame ``i`` with marker ``i``."""

    def build(count: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(count)
        frames = [marked_frame(rng, index, height, width) for index in range(count)]
        return np.stack([image for image, _ in frames]), np.stack([depth for _, depth in frames])

    return build


# --- NYU Depth v2 labelled: nyu_depth_v2_labeled.mat (MATLAB v7.3 = HDF5) and splits.mat (MATLAB v5) ---

MATLAB_USERBLOCK = 512
MATLAB_HEADER = (
    b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
)


@dataclass
class NyuLabeledFiles:
    """A written labelled file and what it holds, in our (H, W) order.

    Attributes:
        path: ``nyu_depth_v2_labeled.mat``.
        splits_path: ``splits.mat``, or None when not written.
        images: uint8 (N, H, W, 3).
        depths: float32 (N, H, W) metres, no hole (in-painted).
        raw_depths: float32 (N, H, W) metres, 0 = hole.
        scenes: Scene of each frame.
        train: 1-based frame numbers in ``trainNdxs``.
        test: 1-based frame numbers in ``testNdxs``.
    """

    path: Path
    splits_path: Path | None
    images: np.ndarray
    depths: np.ndarray
    raw_depths: np.ndarray
    scenes: list[str]
    train: list[int] = field(default_factory=list)
    test: list[int] = field(default_factory=list)


def _matlab_attribute(dataset: h5py.Dataset | h5py.Group, matlab_class: str) -> None:
    dataset.attrs["MATLAB_class"] = np.bytes_(matlab_class)


def write_nyu_mat(
    path: Path, images: np.ndarray, depths: np.ndarray, raw_depths: np.ndarray, scenes: list[str]
) -> None:
    """Writes frames as MATLAB v7.3 does: HDF5 after a 512-byte header, dimensions reversed.

    ``images`` (N, H, W, 3) is stored as (N, 3, W, H), depths (N, H, W) as (N, W, H), and
    ``scenes`` as a (1, N) cell: object references into ``#refs#`` to uint16 (length, 1) chars.
    """
    with h5py.File(path, "w", userblock_size=MATLAB_USERBLOCK) as file:
        _matlab_attribute(file.create_dataset("images", data=images.transpose(0, 3, 2, 1)), "uint8")
        _matlab_attribute(file.create_dataset("depths", data=depths.transpose(0, 2, 1)), "single")
        _matlab_attribute(file.create_dataset("rawDepths", data=raw_depths.transpose(0, 2, 1)), "single")
        refs = file.create_group("#refs#")
        references = []
        for index, scene in enumerate(scenes):
            chars = refs.create_dataset(f"s{index}", data=np.array([[ord(c)] for c in scene], np.uint16))
            _matlab_attribute(chars, "char")
            chars.attrs["MATLAB_int_decode"] = np.int32(2)
            references.append(chars.ref)
        cell = file.create_dataset("scenes", (1, len(scenes)), dtype=h5py.ref_dtype)
        cell[0, :] = references
        _matlab_attribute(cell, "cell")
    with open(path, "r+b") as file:
        file.write(MATLAB_HEADER.ljust(116) + bytes(8) + b"\x00\x02IM")


def write_splits_mat(path: Path, train: list[int], test: list[int]) -> None:
    """``splits.mat`` (MATLAB v5): ``trainNdxs`` and ``testNdxs`` as double column vectors."""
    column = lambda frames: np.array(frames, np.float64).reshape(-1, 1)  # noqa: E731
    scipy.io.savemat(path, {"trainNdxs": column(train), "testNdxs": column(test)}, format="5")


@pytest.fixture
def nyu_labeled_files(tmp_path: Path, marked_frames) -> Callable[..., NyuLabeledFiles]:
    """Builds ``nyu_depth_v2_labeled.mat`` (+ ``splits.mat`` when ``train``/``test`` are given) in a new folder.

    Arguments: ``scenes`` (one per frame), ``height``, ``width``, ``train``, ``test`` (1-based
    frame numbers, written as given), and optionally the frames themselves: ``images``
    (N, H, W, 3) and ``depths`` (N, H, W) metres, also used as ``rawDepths`` (marked frames
    with 30 % raw-depth holes otherwise).
    """

    def build(
        scenes: list[str], height: int = 24, width: int = 32, train=None, test=None, images=None, depths=None
    ) -> NyuLabeledFiles:
        if images is None:
            images, depths = marked_frames(len(scenes), height, width)
            holes = np.random.default_rng(1).random(depths.shape) < 0.3
            raw_depths = np.where(holes & (depths != MARKER_DEPTH), 0.0, depths).astype(np.float32)
        else:
            raw_depths = depths
        folder = tmp_path / f"nyu_{len(list(tmp_path.glob('nyu_*')))}"  # a fresh folder per call
        folder.mkdir()
        path = folder / "nyu_depth_v2_labeled.mat"
        write_nyu_mat(path, images, depths, raw_depths, scenes)
        splits_path = None
        if train is not None:
            splits_path = folder / "splits.mat"
            write_splits_mat(splits_path, train, test)
        return NyuLabeledFiles(path, splits_path, images, depths, raw_depths, scenes, train or [], test or [])

    return build


# --- KITTI depth: data_depth_annotated + KITTI raw ---

CALIBRATION = {
    "image_02": (721.5377, 721.5377, 609.5593, 172.854),
    "image_03": (721.5377, 721.5377, 609.5593, 172.854),
}


def png(path: Path, array: np.ndarray) -> Path:
    """Writes ``array`` (uint8 RGB or uint16 greyscale) as a PNG, creating the folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def calibration_text(intrinsics: dict[str, tuple[float, float, float, float]]) -> str:
    """``calib_cam_to_cam.txt`` with rectified projections ``P_rect_0X`` from (fx, fy, cx, cy)."""
    lines = ["calib_time: 09-Jan-2012 13:57:47", "corner_dist: 9.950000e-02"]
    for camera, (fx, fy, cx, cy) in intrinsics.items():
        number = camera[-2:]
        lines.append(f"S_{number}: 1.392000e+03 5.120000e+02")
        lines.append(
            f"P_rect_{number}: {fx:e} 0.0 {cx:e} 4.5e+01 0.0 {fy:e} {cy:e} 2.1e-01 0.0 0.0 1.0 2.7e-03"
        )
    return "\n".join(lines) + "\n"


@dataclass
class KittiTree:
    """A KITTI annotated + raw tree.

    Attributes:
        annotated_root: ``{train,val}/<drive>/proj_depth/groundtruth/image_0X/<frame>.png``.
        raw_root: ``<date>/<drive>/image_0X/data/<frame>.png`` and ``<date>/calib_cam_to_cam.txt``.
        depth_m: (drive, camera, frame) -> float32 (H, W) metres as written (0 = no depth).
        marker_index: (drive, camera, frame) -> marker index of the frame.
    """

    annotated_root: Path
    raw_root: Path
    depth_m: dict[tuple[str, str, str], np.ndarray] = field(default_factory=dict)
    marker_index: dict[tuple[str, str, str], int] = field(default_factory=dict)


@pytest.fixture
def kitti_tree(tmp_path: Path) -> Callable[..., KittiTree]:
    """Builds a KITTI tree: ``drives`` maps drive -> (annotated subset, raw frame count, annotated frames).

    Depth is sparse (70 % holes), quantised to 1/256 m; every drive's date gets a calibration file.
    """

    def build(drives: dict[str, tuple[str, int, range]], height: int = 20, width: int = 48) -> KittiTree:
        tree = KittiTree(tmp_path / "data_depth_annotated", tmp_path / "raw")
        rng = np.random.default_rng(0)
        for drive, (subset, num_raw, annotated) in drives.items():
            date = drive[:10]
            (tree.raw_root / date).mkdir(parents=True, exist_ok=True)
            (tree.raw_root / date / "calib_cam_to_cam.txt").write_text(calibration_text(CALIBRATION))
            for camera in ("image_02", "image_03"):
                for number in range(num_raw):
                    frame = f"{number:010d}"
                    index = len(tree.marker_index)
                    image, depth = marked_frame(rng, index, height, width, hole_fraction=0.7)
                    png(tree.raw_root / date / drive / camera / "data" / f"{frame}.png", image)
                    if number in annotated:
                        stored = np.round(depth * 256).astype(np.uint16)
                        groundtruth = tree.annotated_root / subset / drive / "proj_depth" / "groundtruth"
                        png(groundtruth / camera / f"{frame}.png", stored)
                        tree.depth_m[(drive, camera, frame)] = stored.astype(np.float32) / 256
                    tree.marker_index[(drive, camera, frame)] = index
        return tree

    return build


# --- DIODE: {train,val}/{indoors,outdoor}/scene_*/scan_*/<name>.png, _depth.npy, _depth_mask.npy ---


@dataclass
class DiodeTree:
    """A DIODE tree.

    Attributes:
        root: The dataset root.
        frames: Key suffix ``<subset>/<type>/<scene>/<scan>/<name>`` -> (marker index, depth
            float32 (H, W) as stored, mask float32 (H, W)).
    """

    root: Path
    frames: dict[str, tuple[int, np.ndarray, np.ndarray]] = field(default_factory=dict)


@pytest.fixture
def diode_tree(tmp_path: Path) -> Callable[..., DiodeTree]:
    """Builds a DIODE tree from ``scans``: (subset, scene type, scene id, scan id, images per scan)."""

    def build(scans: list[tuple[str, str, int, int, int]], height: int = 18, width: int = 24) -> DiodeTree:
        tree = DiodeTree(tmp_path / "diode")
        rng = np.random.default_rng(0)
        for subset, scene_type, scene, scan, count in scans:
            folder = tree.root / subset / scene_type / f"scene_{scene:05d}" / f"scan_{scan:05d}"
            for number in range(count):
                name = f"{scene:05d}_{scan:05d}_{scene_type}_{number:03d}_000"
                index = len(tree.frames)
                image, depth = marked_frame(rng, index, height, width)
                mask = (rng.random((height, width)) > 0.2).astype(np.float32)
                mask[depth == MARKER_DEPTH] = 1.0
                depth[mask == 0] = rng.uniform(0, 3)  # what the scanner left there: not a measurement
                png(folder / f"{name}.png", image)
                np.save(folder / f"{name}_depth.npy", depth[..., None])
                np.save(folder / f"{name}_depth_mask.npy", mask)
                tree.frames[f"{subset}/{scene_type}/scene_{scene:05d}/scan_{scan:05d}/{name}"] = (
                    index,
                    depth,
                    mask,
                )
        return tree

    return build
