"""The names of the exported model's signatures, inputs and outputs, as serving uses them.

``serving`` imports no project code (it serves any SavedModel with these signatures, as TF Serving
would), so it keeps this copy of the names written by the export stage
(``components/serving_contract.py``); ``tests/components/test_serving_contract.py`` keeps the two equal.
"""

from __future__ import annotations

# Signature keys (TF Serving's ``signature_name``); also the TFLite model's signature.
SERVING_DEFAULT = "serving_default"
BYTES_SIGNATURE = "predict_image_bytes"
# Inputs: float32 [N, H, W, 3] RGB 0..255, and PNG/JPEG strings [N].
IMAGES_INPUT = "images"
BYTES_INPUT = "image_bytes"
# Outputs: depth and log depth [N, h, w] (metres, natural log of metres) on the network's output grid,
# and depth [N, H, W] at the request's size.
DEPTH_OUTPUT = "depth"
LOG_DEPTH_OUTPUT = "log_depth"
DEPTH_FULL_OUTPUT = "depth_full"
