"""The scale-invariant log-depth loss of Eigen, Puhrsch & Fergus (NIPS 2014), equation (4).

For one image with ``n`` valid target pixels and ``d_i = log y_i - log y*_i`` (prediction minus
target, natural log, depth in metres)::

    L = (1/n) sum_i d_i^2 - (lam/n^2) (sum_i d_i)^2

``lam = 0`` is the L2 error in log space, ``lam = 1`` the scale-invariant error (adding a constant to every
predicted log depth, i.e. scaling the predicted depth, leaves it unchanged) and ``lam = 0.5`` the paper's
training loss. A target pixel is valid when its depth is finite, positive and inside
``[min_depth, max_depth]``. The loss is evaluated per image; an image without a valid pixel contributes
exactly 0. The Keras :class:`ScaleInvariantLoss` returns one value per image, so that Keras' reduction
(``sum_over_batch_size``) and ``tf.distribute`` scale it correctly across replicas.

Every gradient is finite for every input: invalid targets are replaced by 1 before the logarithm, invalid
differences are selected away with ``tf.where`` before squaring, and sums are divided by ``max(n, 1)``.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import tensorflow as tf

from keras_depth.config import LossConfig

DEFAULT_LAMBDA = 0.5
DEFAULT_MIN_DEPTH = 0.1
DEFAULT_MAX_DEPTH = 10.0

# Placeholder for invalid target depths (metres; log 1 = 0): it keeps logs, ratios and their gradients
# finite in the branch that tf.where discards.
_SAFE_DEPTH = 1.0


def check_depth_range(min_depth: float, max_depth: float) -> None:
    """Checks that ``0 < min_depth < max_depth < inf`` (metres).

    A finite ``max_depth`` is what makes :func:`valid_depth_mask` reject NaN and infinite depths.

    Raises:
        ValueError: naming ``min_depth``/``max_depth`` and their values otherwise.
    """
    if not (0.0 < min_depth < max_depth and math.isfinite(max_depth)):
        raise ValueError(
            f"depth range must satisfy 0 < min_depth < max_depth < inf (metres); "
            f"got min_depth={min_depth}, max_depth={max_depth}"
        )


def valid_depth_mask(depth: Any, min_depth: float, max_depth: float) -> Any:
    """Which target depths are usable: finite, positive and within ``[min_depth, max_depth]``.

    Written with comparison operators only, so it works on ``tf.Tensor`` and ``np.ndarray`` alike:
    NaN fails every comparison and +-inf fails one of the range bounds (``max_depth`` is finite).

    Args:
        depth: Target depth in metres, any shape (0 or non-finite = invalid).
        min_depth: Smallest valid depth in metres (> 0).
        max_depth: Largest valid depth in metres (finite).

    Returns:
        A boolean tensor (or array, for an array input) of the shape of ``depth``.
    """
    return (depth > 0.0) & (depth >= min_depth) & (depth <= max_depth)


def flatten_images(images: tf.Tensor) -> tf.Tensor:
    """Flattens each image of a batch to one row of pixels.

    Args:
        images: Tensor of shape [B, H, W] or [B, H, W, 1] (NHWC, one channel).

    Returns:
        Tensor of shape [B, H * W], same dtype.
    """
    return tf.reshape(images, [tf.shape(images)[0], -1])


def fill_invalid_depth(depth: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Replaces invalid depths by 1 m so that logs and ratios of them, and their gradients, stay finite.

    Args:
        depth: Depth in metres, any shape.
        mask: Valid-pixel mask, bool, the shape of ``depth``.

    Returns:
        ``depth`` where ``mask`` holds, 1.0 elsewhere (same shape and dtype).
    """
    return tf.where(mask, depth, tf.constant(_SAFE_DEPTH, depth.dtype))


def _mask_image_extremes(depth: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Removes from ``mask`` the pixels equal to each image's smallest or largest valid depth.

    Args:
        depth: Target depth in metres, shape [B, P].
        mask: Valid-pixel mask, bool, shape [B, P].

    Returns:
        The narrowed mask, bool, shape [B, P]; an image whose valid depths are all equal loses them all.
    """
    image_min = tf.reduce_min(tf.where(mask, depth, math.inf), axis=1, keepdims=True)
    image_max = tf.reduce_max(tf.where(mask, depth, -math.inf), axis=1, keepdims=True)
    return mask & tf.not_equal(depth, image_min) & tf.not_equal(depth, image_max)


def scale_invariant_loss(
    true_depth: tf.Tensor,
    log_pred: tf.Tensor,
    lam: float = DEFAULT_LAMBDA,
    min_depth: float = DEFAULT_MIN_DEPTH,
    max_depth: float = DEFAULT_MAX_DEPTH,
    mask_image_extremes: bool = False,
) -> tf.Tensor:
    """The scale-invariant log loss of every image of a batch (computed in float32).

    Evaluated in the equivalent centred form ``mean((d - m)^2) + (1 - lam) m^2`` with ``m = mean(d)``
    over the valid pixels, which avoids the cancellation of ``mean(d^2) - lam m^2`` (it is never
    negative for ``lam <= 1``) and has the same value and gradient.

    Args:
        true_depth: Target depth in metres, shape [B, H, W, 1] or [B, H, W]; 0, non-finite and
            out-of-range values are invalid.
        log_pred: Predicted natural-log depth (log metres), with the same number of pixels per image
            as ``true_depth`` (shape [B, H, W, 1] or [B, H, W]).
        lam: The paper's lambda (0 = L2 in log space, 0.5 = training loss, 1 = scale-invariant error).
        min_depth: Smallest valid target depth in metres.
        max_depth: Largest valid target depth in metres.
        mask_image_extremes: Also ignore the pixels equal to each image's smallest and largest valid
            target depth (the paper's NYU protocol: windows and specular surfaces).

    Returns:
        float32 tensor of shape [B]: the loss of each image, 0 for an image without valid pixels.
    """
    check_depth_range(min_depth, max_depth)
    depth = flatten_images(tf.cast(true_depth, tf.float32))
    log_pred = flatten_images(tf.cast(log_pred, tf.float32))
    mask = valid_depth_mask(depth, min_depth, max_depth)
    if mask_image_extremes:
        mask = _mask_image_extremes(depth, mask)
    log_true = tf.math.log(fill_invalid_depth(depth, mask))
    diff = tf.where(mask, log_pred - log_true, 0.0)
    count = tf.maximum(tf.reduce_sum(tf.cast(mask, tf.float32), axis=1), 1.0)
    mean_diff = tf.reduce_sum(diff, axis=1) / count
    centred = tf.where(mask, diff - mean_diff[:, tf.newaxis], 0.0)
    variance = tf.reduce_sum(tf.square(centred), axis=1) / count
    return variance + (1.0 - lam) * tf.square(mean_diff)


@keras.saving.register_keras_serializable(package="keras_depth")
class ScaleInvariantLoss(keras.losses.Loss):
    """Keras loss wrapping :func:`scale_invariant_loss`: one value per image, reduced by Keras.

    Args:
        lam: The paper's lambda (0 = L2 in log space, 0.5 = training loss, 1 = scale-invariant error).
        min_depth: Smallest valid target depth in metres.
        max_depth: Largest valid target depth in metres.
        mask_image_extremes: Also ignore each image's smallest and largest valid target depth.
        name: Name of the loss.
        reduction: Keras reduction over the per-image values (default ``"sum_over_batch_size"``:
            the batch mean, which ``tf.distribute`` scales by the number of replicas).

    Call arguments:
        y_true: Target depth in metres, shape [B, H, W, 1] or [B, H, W].
        y_pred: Predicted log depth, shape [B, H, W, 1] or [B, H, W].
    """

    def __init__(
        self,
        lam: float = DEFAULT_LAMBDA,
        min_depth: float = DEFAULT_MIN_DEPTH,
        max_depth: float = DEFAULT_MAX_DEPTH,
        mask_image_extremes: bool = False,
        name: str = "scale_invariant_loss",
        reduction: str | None = "sum_over_batch_size",
    ) -> None:
        super().__init__(name=name, reduction=reduction)
        check_depth_range(min_depth, max_depth)
        self.lam = float(lam)
        self.min_depth = float(min_depth)
        self.max_depth = float(max_depth)
        self.mask_image_extremes = bool(mask_image_extremes)

    @classmethod
    def from_config_section(cls, loss_cfg: LossConfig, **kwargs: Any) -> ScaleInvariantLoss:
        """Builds the loss from the ``loss`` section of a pipeline config.

        Args:
            loss_cfg: The :class:`~keras_depth.config.LossConfig` section.
            **kwargs: ``name`` and ``reduction``, passed on to the constructor.

        Returns:
            The configured loss.
        """
        return cls(
            lam=loss_cfg.lam,
            min_depth=loss_cfg.min_depth,
            max_depth=loss_cfg.max_depth,
            mask_image_extremes=loss_cfg.mask_image_extremes,
            **kwargs,
        )

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        """Returns the loss of each image, shape [B]."""
        return scale_invariant_loss(
            y_true,
            y_pred,
            lam=self.lam,
            min_depth=self.min_depth,
            max_depth=self.max_depth,
            mask_image_extremes=self.mask_image_extremes,
        )

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, for ``from_config`` and ``.keras`` saving."""
        return {
            **super().get_config(),
            "lam": self.lam,
            "min_depth": self.min_depth,
            "max_depth": self.max_depth,
            "mask_image_extremes": self.mask_image_extremes,
        }
