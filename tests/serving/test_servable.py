"""A servable computes only the requested outputs.

The probe model's ``depth_full`` fails at run time whenever it is computed (a reshape to a size that
does not divide the input), so a request without it succeeding proves it was never run.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from serving.errors import ServingError
from serving.servable import Servable

IMAGE = np.zeros((1, 2, 2, 3), np.float32)  # 12 values: not a multiple of 7


class _FailingFullDepth(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def serve(self, images):
        depth = tf.reduce_mean(images, axis=-1) + 1.0
        full = tf.reduce_sum(tf.reshape(images, [-1, 7]), axis=1)  # fails when run on IMAGE
        return {"depth": depth, "log_depth": tf.math.log(depth), "depth_full": full}


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> Servable:
    path = tmp_path_factory.mktemp("probe") / "1"
    module = _FailingFullDepth()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return Servable("probe", 1, path)


def test_unrequested_outputs_are_not_computed(probe):
    outputs = probe.run("serving_default", {"images": IMAGE}, ["depth", "log_depth"])
    assert set(outputs) == {"depth", "log_depth"}
    np.testing.assert_allclose(outputs["depth"], np.ones((1, 2, 2)))
    assert set(probe.run("serving_default", {"images": IMAGE}, ["depth"])) == {"depth"}


def test_requested_outputs_are_computed(probe):
    assert probe.signatures["serving_default"].output_names == ("depth", "depth_full", "log_depth")
    for output_names in (None, ["depth_full"]):
        with pytest.raises(ServingError, match="multiple of 7"):
            probe.run("serving_default", {"images": IMAGE}, output_names)


def test_unknown_output_is_a_bad_request(probe):
    with pytest.raises(ServingError) as error:
        probe.run("serving_default", {"images": IMAGE}, ["nope"])
    assert error.value.http_status == 400 and "no outputs ['nope']" in error.value.message
