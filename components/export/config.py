"""Configuration of the export stage."""

from __future__ import annotations

from dataclasses import dataclass

from keras_depth.config_checks import ConfigValueError


@dataclass
class ExportConfig:
    """Export stage: SavedModel with serving signatures, pushed when blessed, and a TFLite model.

    Attributes:
        model_name: Name under the serving root (``<serving_root>/<model_name>/<version>/``).
        serving_root: Where blessed models are pushed ("" = ``<output_dir>/serving``).
        upsample_to_input: Also return ``depth_full``: depth resized to the request's image size.
        tflite: Also write ``model.tflite`` into the export artifact: the network on the stored frame
            size, float32 [1, H, W, 3] RGB 0..255 in, depth [1, h, w] metres out
            (``components.export.tflite``).
        tflite_float16: Store the TFLite model's weights as float16: about half the file, computed in
            float32 after loading; depth moves slightly (the parity test allows 1 cm).
    """

    model_name: str = "depth"
    serving_root: str = ""
    upsample_to_input: bool = True
    tflite: bool = True
    tflite_float16: bool = False

    def validate(self) -> None:
        """Raises ``ConfigValueError`` unless ``model_name`` is one directory name."""
        if self.model_name in ("", ".", "..") or "/" in self.model_name:
            raise ConfigValueError("model_name", "one directory name (not empty, no '/')", self.model_name)
