"""Typed configuration of the keras_depth library.

Each dataclass is one section of a pipeline config (``configs/*.yaml``) and is
also usable on its own from Python. Units: depth in metres, sizes in pixels,
angles in degrees. Defaults are the NYU Depth v2 sizes of Eigen et al. (2014).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from keras_depth.config_checks import (
    check_at_least,
    check_below_one,
    check_fraction,
    check_order,
    check_positive,
)

# OptimizerConfig.fine_algorithm and fine_schedule values other than the paper's.
ADAM = "adam"
COSINE = "cosine"

# Images with more pixels than this are refused before decoding (ingest.max_image_pixels):
# 50 MP is 8x a 12 MP photo and costs at most 150 MB as RGB.
DEFAULT_MAX_IMAGE_PIXELS = 50_000_000


@dataclass
class ModelConfig:
    """Architecture of the coarse (global) and fine (local) networks.

    Attributes:
        input_height: Network input height in pixels (NYU 228, KITTI 172).
        input_width: Network input width in pixels (NYU 304, KITTI 576).
        output_height: Height of the predicted log-depth map (NYU 55, KITTI 27).
        output_width: Width of the predicted log-depth map (NYU 74, KITTI 142).
        width_multiplier: Scales the channel count of every hidden conv layer
            (1.0 = the paper's 96/256/384/384/256 coarse and 63/64 fine channels).
        fc_units: Units of the coarse6 fully connected layer (paper: 4096).
        dropout_rate: Dropout after coarse6 (paper: 0.5).
        initial_depth: Depth in metres the untrained networks predict everywhere: the
            biases of the linear output layers coarse7 and fine4 start at
            ``log(initial_depth)`` (about 2.5 m indoors on NYU, about 15 m on KITTI). With
            ``fine_init: coarse_passthrough`` it sets coarse7's bias only.
        fine_init: How fine3/fine4 start. ``paper`` (the paper's presets): He-normal fine3, fine4 a
            near-constant ``log(initial_depth)``, so fine training first relearns what the coarse map
            already says. ``coarse_passthrough``: the untrained fine net outputs the coarse log depth
            exactly (two fine3 units carry it through the ReLU, fine4 adds them back) and learns a
            residual on top of it (see ``keras_depth.models.fine``).
    """

    input_height: int = 228
    input_width: int = 304
    output_height: int = 55
    output_width: int = 74
    width_multiplier: float = 1.0
    fc_units: int = 4096
    dropout_rate: float = 0.5
    initial_depth: float = 2.5
    fine_init: Literal["paper", "coarse_passthrough"] = "paper"

    def validate(self) -> None:
        """Raises ``ConfigValueError`` naming the first field outside its range."""
        check_at_least(self, 1, "input_height", "input_width", "output_height", "output_width", "fc_units")
        check_positive(self, "width_multiplier", "initial_depth")
        check_below_one(self, "dropout_rate")


@dataclass
class OptimizerConfig:
    """SGD with momentum and the paper's per-layer learning rates.

    Every rate is multiplied by ``lr_scale`` (one global factor, for example to
    adapt to a different batch size or a from-scratch start).

    Attributes:
        fine_algorithm: The fine phase's update: ``sgd`` (the paper: SGD with ``momentum``) or
            ``adam`` (Adam with Keras' default betas, at the same per-layer rates ``lr_fine_conv``
            and ``lr_fine_out``). The coarse phase always uses SGD.
        fine_schedule: The fine phase's base rate ``lr_scale``: ``constant`` (the paper) or
            ``cosine`` (decays to 0 along a half cosine over the phase's steps).
    """

    momentum: float = 0.9
    lr_coarse_conv: float = 0.001
    lr_coarse_fc: float = 0.1
    lr_fine_conv: float = 0.001
    lr_fine_out: float = 0.01
    lr_scale: float = 1.0
    clipnorm: float = 0.0  # 0 disables gradient clipping (the paper uses none)
    fine_algorithm: Literal["sgd", "adam"] = "sgd"
    fine_schedule: Literal["constant", "cosine"] = "constant"

    def validate(self) -> None:
        """Raises ``ConfigValueError`` naming the first field outside its range."""
        check_below_one(self, "momentum")
        check_at_least(self, 0, "lr_coarse_conv", "lr_coarse_fc", "lr_fine_conv", "lr_fine_out", "clipnorm")
        check_positive(self, "lr_scale")


@dataclass
class LossConfig:
    """Scale-invariant log loss: L = mean(d^2) - lam * mean(d)^2 over valid pixels.

    Attributes:
        lam: lambda (0 = L2 in log space, 0.5 = the paper's training loss,
            1 = scale-invariant error).
        min_depth: Target depths (metres) below this are invalid.
        max_depth: Target depths (metres) above this are invalid.
        mask_image_extremes: Also mask each image's own min and max depth
            (the paper does this on NYU for windows and specular surfaces).
    """

    lam: float = 0.5
    min_depth: float = 0.1
    max_depth: float = 10.0
    mask_image_extremes: bool = False

    def validate(self) -> None:
        """Raises ``ConfigValueError`` naming the first field outside its range."""
        check_fraction(self, "lam")
        check_positive(self, "min_depth")
        check_order(self, "min_depth", "max_depth")


@dataclass
class AugmentConfig:
    """Online training augmentation of (image, depth) pairs (paper section 3.3).

    Attributes:
        enabled: False replaces augmentation by the evaluation centre crop.
        scale_min: Smallest scale factor s; the image is magnified by s and depth divided by s.
        scale_max: Largest scale factor (NYU 1.5, KITTI 1.2).
        rotation_degrees: Rotation drawn from [-r, r] degrees (NYU 5, KITTI 0).
        color_min: Smallest per-channel colour gain c (RGB multiplied by c in [min, max]^3).
        color_max: Largest per-channel colour gain.
        flip_probability: Probability of a horizontal flip of image and depth together.
    """

    enabled: bool = True
    scale_min: float = 1.0
    scale_max: float = 1.5  # KITTI: 1.2
    rotation_degrees: float = 5.0  # KITTI: 0
    color_min: float = 0.8
    color_max: float = 1.2
    flip_probability: float = 0.5

    def validate(self) -> None:
        """Raises ``ConfigValueError`` naming the first field outside its range."""
        check_positive(self, "scale_min", "color_min")
        check_order(self, "scale_min", "scale_max", strict=False)
        check_order(self, "color_min", "color_max", strict=False)
        check_at_least(self, 0, "rotation_degrees")
        check_fraction(self, "flip_probability")


@dataclass
class DataConfig:
    """How TFRecords are read into batches (``keras_depth.data.make_dataset``).

    Attributes:
        batch_size: Images per step on each replica; the train stage reads global batches of
            ``batch_size x replicas`` (``make_dataset(..., batch_size=global)``).
        shuffle_buffer: Examples in the shuffle buffer (training only).
        num_parallel_reads: Shards read concurrently.
        deterministic: Fixed order and augmentation given ``seed``.
        seed: Seed for shuffling and augmentation when deterministic.
        cache_max_mb: Memory budget in megabytes (10^6 bytes) for keeping the decoded training split
            in memory: when its records x stored H x W x 7 bytes (uint8 RGB + float32 depth) fit, the
            shards are read and decoded once, not every epoch; larger splits (full NYU raw, KITTI)
            are streamed. 0 always streams.
    """

    batch_size: int = 32
    shuffle_buffer: int = 512
    num_parallel_reads: int = 4
    deterministic: bool = False
    seed: int = 0
    cache_max_mb: float = 2048.0

    def validate(self) -> None:
        """Raises ``ConfigValueError`` naming the first field outside its range."""
        check_at_least(self, 1, "batch_size", "shuffle_buffer", "num_parallel_reads")
        check_at_least(self, 0, "cache_max_mb")


@dataclass
class SyntheticRoomsConfig:
    """The built-in procedural indoor-scene renderer (source ``synthetic_rooms``).

    Attributes:
        num_scenes: Scenes rendered (keys ``synthetic_rooms/s<seed>/<index:06d>``).
        seed: Dataset seed; scene ``i`` with seed ``s`` is always the same image.
        height: Render height in pixels.
        width: Render width in pixels.
        max_depth: Range of the simulated depth sensor in metres; farther pixels
            are stored as invalid (0), like a Kinect's out-of-range readings.
        close_view_fraction: Fraction of the scenes that are close views: a cluttered table
            just in front of the camera, which looks down at it (hand-held footage of kitchens
            and desks, e.g. 7-Scenes); 0 renders the scenes of earlier versions.
    """

    num_scenes: int = 2000
    seed: int = 0
    height: int = 240
    width: int = 320
    max_depth: float = 10.0
    close_view_fraction: float = 0.0

    def validate(self) -> None:
        """Raises ``ConfigValueError`` naming the first field outside its range."""
        check_at_least(self, 1, "num_scenes", "height", "width")
        check_positive(self, "max_depth")
        check_fraction(self, "close_view_fraction")


@dataclass
class FolderSourceConfig:
    """User RGB-D data as pairs of image files in one folder tree (source ``folder``).

    Attributes:
        root: Folder to search.
        rgb_glob: Glob (relative to ``root``) of the RGB images.
        depth_pattern: Regex substitution turning an RGB path into its depth path,
            written ``"<regex>=><replacement>"`` (Python ``re.sub`` syntax).
        depth_scale: Stored depth value per metre (1000 for millimetre PNGs,
            256 for KITTI); a stored 0 is invalid.
        invalid_values: Stored depth values (0..65535) that mean "no measurement" and
            load as 0 m (invalid); 0 is invalid whatever this says. Microsoft 7-Scenes
            needs ``[0, 65535]``.
        group_pattern: Regex searched in the RGB path relative to ``root``; its first
            group names the record's group (scene, sequence), which the split keeps
            together. "" = the RGB file's parent directory (``.`` for files directly in
            ``root``). A path it does not match (or where the group is empty) is
            dead-lettered with a reason naming the path and the pattern.
    """

    root: str = ""
    rgb_glob: str = "**/*.png"
    depth_pattern: str = r"rgb_(\w+)\.(png|jpg)$=>depth_\1.png"
    depth_scale: float = 1000.0
    invalid_values: list[int] = field(default_factory=lambda: [0])
    group_pattern: str = ""

    def validate(self) -> None:
        """Raises ``ConfigValueError`` naming the first field outside its range."""
        check_positive(self, "depth_scale")


@dataclass
class SplitMapConfig:
    """One string per split of ours saying what feeds it; "" = nothing.

    Attributes:
        train: What feeds ``train``.
        val: What feeds ``val``.
        test: What feeds ``test``.
    """

    train: str = ""
    val: str = ""
    test: str = ""


@dataclass
class NyuLabeledConfig:
    """NYU Depth v2's labelled subset in its official files (source ``nyu_labeled``).

    Attributes:
        path: ``nyu_depth_v2_labeled.mat`` (MATLAB v7.3, i.e. HDF5; 1449 frames of 480x640).
        depth_field: ``depths`` (the toolbox's in-painted depth, every pixel valid) or
            ``rawDepths`` (the projected Kinect depth, 0 = no reading); metres.
        splits_path: The official split ``splits.mat`` (MATLAB v5, ``trainNdxs`` and
            ``testNdxs``, 1-based frame numbers); "" = none.
        use_official_split: With ``splits_path``, use its split verbatim (795 train and
            654 test frames; frames it does not list are skipped); otherwise the split
            hashes the scene.
    """

    path: str = ""
    depth_field: Literal["depths", "rawDepths"] = "depths"
    splits_path: str = ""
    use_official_split: bool = True


@dataclass
class KittiDepthConfig:
    """KITTI's annotated depth maps joined with the KITTI raw images (source ``kitti_depth``).

    Attributes:
        annotated_root: The depth annotations (``data_depth_annotated``):
            ``{train,val}/<date>_drive_<n>_sync/proj_depth/groundtruth/image_0{2,3}/*.png``,
            uint16, metres = value / 256, 0 = no depth.
        raw_root: KITTI raw: ``<date>/<date>_drive_<n>_sync/image_0{2,3}/data/*.png`` and,
            optionally, ``<date>/calib_cam_to_cam.txt`` (gives the intrinsics).
        cameras: Cameras read: ``image_02`` (left colour), ``image_03`` (right colour).
        split_files: Per split of ours, a frame list in the Eigen-split format, one
            ``<date>/<drive> <frame> <l|r>`` per line (``l`` = image_02, ``r`` = image_03),
            e.g. the 697-frame Eigen test list as ``test``; "" = none. Listed frames go to
            their list's split verbatim; unlisted frames of a drive that a list names are
            skipped (they would leak), those of other drives are split by hashing the drive.
        skip_unlisted: With ``split_files``, also skip the frames of drives no list names.
    """

    annotated_root: str = ""
    raw_root: str = ""
    cameras: list[Literal["image_02", "image_03"]] = field(default_factory=lambda: ["image_02", "image_03"])
    split_files: SplitMapConfig = field(default_factory=SplitMapConfig)
    skip_unlisted: bool = False


@dataclass
class DiodeConfig:
    """DIODE in its official layout (source ``diode``).

    Attributes:
        root: Holds ``{train,val}/{indoors,outdoor}/scene_*/scan_*/`` with ``<name>.png``,
            ``<name>_depth.npy`` (H, W, 1 float32 metres) and ``<name>_depth_mask.npy``
            (H, W, 1 = valid).
        scene_types: ``indoors``, ``outdoor`` or both.
        use_official_split: DIODE's train goes to our ``train`` and its val to
            ``val_split``; otherwise the split hashes the scene.
        val_split: The split of ours DIODE's val feeds: ``test`` (DIODE publishes no test
            depth, so its val is the held-out set) or ``val``.
    """

    root: str = ""
    scene_types: list[Literal["indoors", "outdoor"]] = field(default_factory=lambda: ["indoors", "outdoor"])
    use_official_split: bool = True
    val_split: Literal["test", "val"] = "test"


@dataclass
class TfdsSourceConfig:
    """A prepared TensorFlow Datasets dataset with an image and a depth feature (source ``tfds``).

    Nothing is downloaded: the dataset must already be prepared in ``data_dir``.

    Attributes:
        name: Dataset name, optionally with config and version (``nyu_depth_v2``,
            ``nyu_depth_v2:0.0.1``).
        data_dir: TFDS data directory; "" = TFDS's default (``~/tensorflow_datasets``).
        image_feature: Feature holding the uint8 RGB image (H, W, 3).
        depth_feature: Feature holding the depth (H, W) or (H, W, 1).
        depth_scale: Stored depth value per metre (1.0 for depth in metres).
        split_map: Per split of ours, the dataset's split that feeds it verbatim
            (``nyu_depth_v2``: ``train`` and ``validation``, the 654 official test frames).
    """

    name: str = "nyu_depth_v2"
    data_dir: str = ""
    image_feature: str = "image"
    depth_feature: str = "depth"
    depth_scale: float = 1.0
    split_map: SplitMapConfig = field(
        default_factory=lambda: SplitMapConfig(train="train", test="validation")
    )


@dataclass
class DepthConfig:
    """Every library section together, for users of keras_depth outside the pipeline."""

    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    data: DataConfig = field(default_factory=DataConfig)
