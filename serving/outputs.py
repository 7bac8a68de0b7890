"""Image in, depth files out: the per-image I/O shared by ``serving.client`` and ``serving.predict``.

For an input ``<stem>.<ext>`` and a predicted depth map (metres, [h, w]) the writer produces, in the
output directory:

- ``<stem>_depth.png``: 16-bit grayscale PNG in millimetres, clipped to 1..65535; 0 marks invalid
  pixels (non-finite or <= 0 depth). This is the NYU/TUM convention read by most RGB-D tools.
- ``<stem>_depth.npy``: float32 [h, w] metres, unclipped.
- ``<stem>_depth_color.png``: RGB visualisation with a matplotlib colormap over a fixed range
  ``0..max_depth_m`` (the same scale for every image, so frames compare); invalid pixels black.
- ``<stem>.ply`` (optional): point cloud of the valid pixels with the image's colours,
  back-projected with pinhole intrinsics: x = (u - cx) z / fx, y = (v - cy) z / fy, z = depth
  (OpenCV camera axes: x right, y down, z forward; metres).

The depth written is ``depth_full`` (the input's resolution) when the model returns it, else
``depth`` (the model's output grid).
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, UnidentifiedImageError

from serving.contract import DEPTH_FULL_OUTPUT, DEPTH_OUTPUT

MILLIMETRES_PER_METRE = 1000.0
UINT16_MAX = 65535
INVALID_DEPTH_MM = 0
DEFAULT_COLORMAP = "magma"
DEFAULT_MAX_DEPTH_M = 10.0  # NYU's evaluation cap
PLY_BINARY = "binary"
PLY_ASCII = "ascii"
PLY_ASCII_ROW = "%.6f %.6f %.6f %d %d %d"
_PLY_VERTEX = np.dtype(
    [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")]
)


class ImageReadError(ValueError):
    """An input image that cannot be read or decoded (the message names the file)."""


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole camera intrinsics in pixels.

    Attributes:
        fx: Focal length along x (pixels).
        fy: Focal length along y (pixels).
        cx: Principal point x (pixels).
        cy: Principal point y (pixels).
    """

    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def parse(cls, text: str) -> Intrinsics:
        """Parses ``"fx,fy,cx,cy"``.

        Raises:
            ValueError: Unless there are four numbers with positive focal lengths.
        """
        try:
            values = [float(part) for part in text.split(",")]
        except ValueError as error:
            raise ValueError(f"intrinsics must be four numbers fx,fy,cx,cy, got {text!r}") from error
        if len(values) != 4 or values[0] <= 0 or values[1] <= 0:
            raise ValueError(f"intrinsics must be fx,fy,cx,cy with fx, fy > 0, got {text!r}")
        return cls(*values)

    def scaled(self, scale_x: float, scale_y: float) -> Intrinsics:
        """The intrinsics of the same camera after resizing the image by (scale_x, scale_y)."""
        return Intrinsics(self.fx * scale_x, self.fy * scale_y, self.cx * scale_x, self.cy * scale_y)


# NYU Depth v2 Kinect colour camera at its native 640x480 (width, height).
NYU_KINECT_INTRINSICS = Intrinsics(fx=518.8579, fy=519.4696, cx=325.5824, cy=253.7362)
NYU_KINECT_SIZE = (640, 480)


@dataclass(frozen=True)
class OutputOptions:
    """What to write per image.

    Attributes:
        pointcloud: Also write ``<stem>.ply``.
        intrinsics: Camera intrinsics in pixels of the input image; None uses the NYU Kinect
            intrinsics scaled from 640x480 to the depth map.
        colormap: matplotlib colormap name for the colour PNG.
        max_depth_m: Depth (metres) mapped to the top of the colormap.
        ply_format: ``"binary"`` (little-endian) or ``"ascii"``.
    """

    pointcloud: bool = False
    intrinsics: Intrinsics | None = None
    colormap: str = DEFAULT_COLORMAP
    max_depth_m: float = DEFAULT_MAX_DEPTH_M
    ply_format: str = PLY_BINARY


def read_image(path: str | Path) -> tuple[bytes, np.ndarray]:
    """An input image's encoded bytes and its RGB pixels.

    Returns:
        (file bytes, uint8 [H, W, 3] RGB).

    Raises:
        ImageReadError: If the file cannot be read or is not an image.
    """
    path = Path(path)
    try:
        encoded = path.read_bytes()
    except OSError as error:
        raise ImageReadError(f"{path}: cannot read image: {error.strerror or error}") from error
    try:
        with Image.open(io.BytesIO(encoded)) as image:
            rgb = np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as error:
        raise ImageReadError(f"{path}: not a decodable image (expected PNG or JPEG): {error}") from error
    return encoded, rgb


def depth_of(outputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """The depth map to write from one example's outputs: ``depth_full`` if present, else ``depth``.

    Args:
        outputs: Output name -> array for one example (``[h, w]`` metres).

    Raises:
        KeyError: If neither output is present.
    """
    for name in (DEPTH_FULL_OUTPUT, DEPTH_OUTPUT):
        if name in outputs:
            return np.asarray(outputs[name], dtype=np.float32)
    raise KeyError(
        f"model outputs {sorted(outputs)} contain neither {DEPTH_FULL_OUTPUT!r} nor {DEPTH_OUTPUT!r}"
    )


def valid_mask(depth: np.ndarray) -> np.ndarray:
    """True where depth is finite and positive."""
    return np.isfinite(depth) & (depth > 0)


def depth_to_millimetres(depth: np.ndarray) -> np.ndarray:
    """Metres -> uint16 millimetres; invalid pixels 0, valid ones clipped to 1..65535."""
    valid = valid_mask(depth)
    millimetres = np.rint(np.where(valid, depth, 0.0) * MILLIMETRES_PER_METRE)
    millimetres = np.where(valid, np.clip(millimetres, 1, UINT16_MAX), INVALID_DEPTH_MM)
    return millimetres.astype(np.uint16)


def colorize_depth(
    depth: np.ndarray, max_depth_m: float = DEFAULT_MAX_DEPTH_M, colormap: str = DEFAULT_COLORMAP
) -> np.ndarray:
    """Depth [h, w] metres -> uint8 [h, w, 3] RGB with ``colormap`` over 0..``max_depth_m``; invalid black."""
    valid = valid_mask(depth)
    normalised = np.clip(np.where(valid, depth, 0.0) / max_depth_m, 0.0, 1.0)
    rgb = matplotlib.colormaps[colormap](normalised)[..., :3]
    return np.where(valid[..., None], np.rint(rgb * 255), 0).astype(np.uint8)


def backproject(depth: np.ndarray, intrinsics: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Valid pixels of a depth map -> 3-D points in the camera frame.

    Args:
        depth: [h, w] metres.
        intrinsics: In pixels of this depth map.

    Returns:
        (float32 [M, 3] points in metres, bool [h, w] mask of the M valid pixels, row-major order).
    """
    valid = valid_mask(depth)
    rows, cols = np.nonzero(valid)
    z = depth[rows, cols]
    x = (cols - intrinsics.cx) * z / intrinsics.fx
    y = (rows - intrinsics.cy) * z / intrinsics.fy
    return np.stack([x, y, z], axis=-1).astype(np.float32), valid


def write_ply(path: Path, points: np.ndarray, colors: np.ndarray, ply_format: str = PLY_BINARY) -> None:
    """Writes a coloured point cloud.

    Args:
        path: Output ``.ply`` file.
        points: float32 [M, 3] metres.
        colors: uint8 [M, 3] RGB.
        ply_format: ``"binary"`` (binary_little_endian 1.0) or ``"ascii"``.
    """
    vertices = np.empty(len(points), dtype=_PLY_VERTEX)
    for axis, name in enumerate("xyz"):
        vertices[name] = points[:, axis]
    for channel, name in enumerate(("red", "green", "blue")):
        vertices[name] = colors[:, channel]
    encoding = "binary_little_endian" if ply_format == PLY_BINARY else "ascii"
    properties = [f"property float {name}" for name in "xyz"] + [
        f"property uchar {name}" for name in ("red", "green", "blue")
    ]
    header = (
        "\n".join(
            ["ply", f"format {encoding} 1.0", f"element vertex {len(points)}", *properties, "end_header"]
        )
        + "\n"
    )
    with open(path, "wb") as handle:
        handle.write(header.encode("ascii"))
        if ply_format == PLY_BINARY:
            handle.write(vertices.tobytes())
        else:
            np.savetxt(handle, vertices, fmt=PLY_ASCII_ROW)


def _resize_rgb(rgb: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    if rgb.shape[:2] == size_hw:
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((size_hw[1], size_hw[0]), Image.Resampling.BILINEAR))


def _intrinsics_for(
    depth_hw: tuple[int, int], image_hw: tuple[int, int], intrinsics: Intrinsics | None
) -> Intrinsics:
    if intrinsics is None:
        width, height = NYU_KINECT_SIZE
        return NYU_KINECT_INTRINSICS.scaled(depth_hw[1] / width, depth_hw[0] / height)
    return intrinsics.scaled(depth_hw[1] / image_hw[1], depth_hw[0] / image_hw[0])


def write_depth_outputs(
    out_dir: Path, stem: str, depth: np.ndarray, rgb: np.ndarray, options: OutputOptions
) -> dict[str, Path]:
    """Writes the files for one image.

    Args:
        out_dir: Output directory (created if missing).
        stem: File name stem (the input's name without extension).
        depth: float32 [h, w] metres.
        rgb: uint8 [H, W, 3] input image (colours for the point cloud; resized to [h, w]).
        options: What to write.

    Returns:
        Kind (``png16``, ``npy``, ``color``, ``ply``) -> written path.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    depth = np.asarray(depth, dtype=np.float32)
    paths = {
        "png16": out_dir / f"{stem}_depth.png",
        "npy": out_dir / f"{stem}_depth.npy",
        "color": out_dir / f"{stem}_depth_color.png",
    }
    Image.fromarray(depth_to_millimetres(depth)).save(paths["png16"])
    np.save(paths["npy"], depth)
    Image.fromarray(colorize_depth(depth, options.max_depth_m, options.colormap)).save(paths["color"])
    if options.pointcloud:
        intrinsics = _intrinsics_for(depth.shape, rgb.shape[:2], options.intrinsics)
        points, valid = backproject(depth, intrinsics)
        paths["ply"] = out_dir / f"{stem}.ply"
        write_ply(paths["ply"], points, _resize_rgb(rgb, depth.shape)[valid], options.ply_format)
    return paths


def output_stems(paths: Sequence[Path]) -> list[str]:
    """Output stems for input paths, suffixed ``_2``, ``_3``... when two inputs share a stem."""
    stems: list[str] = []
    for path in paths:
        stem, count = path.stem, 1
        while stem in stems:
            count += 1
            stem = f"{path.stem}_{count}"
        stems.append(stem)
    return stems


def _intrinsics_flag(text: str) -> Intrinsics:
    try:
        return Intrinsics.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the output flags shared by the client and predict CLIs."""
    parser.add_argument("--out", type=Path, required=True, help="Output directory.")
    parser.add_argument(
        "--pointcloud", action="store_true", help="Also write <stem>.ply (coloured point cloud)."
    )
    parser.add_argument(
        "--intrinsics",
        type=_intrinsics_flag,
        default=None,
        help="fx,fy,cx,cy in pixels of the input image (default: NYU Kinect, 518.9 px at 640x480, scaled).",
    )
    parser.add_argument(
        "--ply-format", choices=(PLY_BINARY, PLY_ASCII), default=PLY_BINARY, help="PLY encoding."
    )
    parser.add_argument(
        "--colormap",
        default=DEFAULT_COLORMAP,
        choices=sorted(matplotlib.colormaps),
        metavar="NAME",
        help="matplotlib colormap.",
    )
    parser.add_argument(
        "--max-depth",
        type=float,
        default=DEFAULT_MAX_DEPTH_M,
        help="Depth in metres at the top of the colour scale.",
    )


def output_options(args: argparse.Namespace) -> OutputOptions:
    """``OutputOptions`` from the flags added by ``add_output_arguments``."""
    return OutputOptions(
        pointcloud=args.pointcloud,
        intrinsics=args.intrinsics,
        colormap=args.colormap,
        max_depth_m=args.max_depth,
        ply_format=args.ply_format,
    )


def predict_image_files(
    paths: Sequence[Path],
    out_dir: Path,
    options: OutputOptions,
    predict: Callable[[bytes, Path], Mapping[str, np.ndarray]],
) -> None:
    """Reads each image, predicts its depth and writes the outputs, printing one line per image.

    Args:
        paths: PNG/JPEG files.
        out_dir: Where the per-image outputs go (see :func:`write_depth_outputs`).
        options: Output options from the command line.
        predict: Maps (encoded image bytes, path) to the model outputs of that one image.

    Raises:
        ImageReadError: naming the file, when an image cannot be read or decoded. Errors raised by
            ``predict`` propagate unchanged.
    """
    for path, stem in zip(paths, output_stems(paths), strict=True):
        encoded, rgb = read_image(path)
        outputs = predict(encoded, path)
        written = write_depth_outputs(out_dir, stem, depth_of(outputs), rgb, options)
        print(f"{path}: " + ", ".join(str(written[kind]) for kind in written))
