"""Configuration of the export stage."""

from __future__ import annotations

from dataclasses import dataclass

from keras_depth.config_checks import ConfigValueError


@dataclass
class ExportConfig:
    """Export stage: SavedModel with serving signatures, pushed when blessed.

    Attributes:
        model_name: Name under the serving root (``<serving_root>/<model_name>/<version>/``).
        serving_root: Where blessed models are pushed ("" = ``<output_dir>/serving``).
        upsample_to_input: Also return ``depth_full``: depth resized to the request's image size.
    """

    model_name: str = "depth"
    serving_root: str = ""
    upsample_to_input: bool = True

    def validate(self) -> None:
        """Raises ``ConfigValueError`` unless ``model_name`` is one directory name."""
        if self.model_name in ("", ".", "..") or "/" in self.model_name:
            raise ConfigValueError("model_name", "one directory name (not empty, no '/')", self.model_name)
