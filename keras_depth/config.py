"""Typed configuration of the keras_depth library.

Each dataclass is one section of a pipeline config (``configs/*.yaml``) and is
also usable on its own from Python. Units: depth in metres, sizes in pixels,
angles in degrees. Defaults are the NYU Depth v2 sizes of Eigen et al. (2014).
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
            ``log(initial_depth)`` (about 2.5 m indoors on NYU, about 15 m on KITTI).
    """

    input_height: int = 228
    input_width: int = 304
    output_height: int = 55
    output_width: int = 74
    width_multiplier: float = 1.0
    fc_units: int = 4096
    dropout_rate: float = 0.5
    initial_depth: float = 2.5


@dataclass
class OptimizerConfig:
    """SGD with momentum and the paper's per-layer learning rates.

    Every rate is multiplied by ``lr_scale`` (one global factor, for example to
    adapt to a different batch size or a from-scratch start).
    """

    momentum: float = 0.9
    lr_coarse_conv: float = 0.001
    lr_coarse_fc: float = 0.1
    lr_fine_conv: float = 0.001
    lr_fine_out: float = 0.01
    lr_scale: float = 1.0
    clipnorm: float = 0.0  # 0 disables gradient clipping (the paper uses none)


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
    """

    batch_size: int = 32
    shuffle_buffer: int = 512
    num_parallel_reads: int = 4
    deterministic: bool = False
    seed: int = 0


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
    """

    num_scenes: int = 2000
    seed: int = 0
    height: int = 240
    width: int = 320
    max_depth: float = 10.0


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
    """

    root: str = ""
    rgb_glob: str = "**/*.png"
    depth_pattern: str = r"rgb_(\w+)\.(png|jpg)$=>depth_\1.png"
    depth_scale: float = 1000.0


@dataclass
class DepthConfig:
    """Every library section together, for users of keras_depth outside the pipeline."""

    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    data: DataConfig = field(default_factory=DataConfig)
