"""Request decoding and response encoding details the stand-in model cannot exercise."""

from __future__ import annotations

import numpy as np
import pytest

from serving.errors import ServingError
from serving.request_codec import InputSpec, decode_predict_request, dumps, encode_predict_response

SPECS = {"x": InputSpec("int64", (None, 2)), "tag": InputSpec("string", (None,))}


def test_multi_input_rows_and_columns_agree():
    rows = decode_predict_request(
        {"instances": [{"x": [1, 2], "tag": "a"}, {"x": [3, 4], "tag": {"b64": "AAE="}}]}, SPECS
    )
    columns = decode_predict_request(
        {"inputs": {"x": [[1, 2], [3, 4]], "tag": ["a", {"b64": "AAE="}]}}, SPECS
    )
    for request in (rows, columns):
        np.testing.assert_array_equal(request.inputs["x"], [[1, 2], [3, 4]])
        assert request.inputs["x"].dtype == np.int64
        assert list(request.inputs["tag"]) == [b"a", b"\x00\x01"]  # NUL bytes survive
    assert rows.row_format and not columns.row_format and rows.signature_name == "serving_default"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"instances": [{"x": [1, 2]}]}, "missing inputs ['tag']"),
        ({"instances": [{"x": [1.5, 2], "tag": "a"}]}, "non-integer numbers"),
        ({"inputs": {"x": [[1, 2]], "tag": ["a", "b"]}, "signature_name": 3}, "must be a string"),
        ({"instances": [{"x": [[1, 2]], "tag": "a"}]}, "shape [1, 1, 2]"),
    ],
)
def test_invalid_requests(payload, message):
    with pytest.raises(ServingError) as error:
        decode_predict_request(payload, SPECS)
    assert error.value.http_status == 400 and message in error.value.message


def test_columnar_inputs_may_differ_in_batch_size():
    request = decode_predict_request({"inputs": {"x": [[1, 2]], "tag": ["a", "b"]}}, SPECS)
    assert request.inputs["x"].shape == (1, 2) and request.inputs["tag"].shape == (2,)


def test_encoding_follows_tf_serving():
    single = {"depth": np.array([[1.5, np.nan]], np.float32)}
    assert encode_predict_response(single, row_format=True) == {
        "predictions": [[1.5, pytest.approx(np.nan, nan_ok=True)]]
    }
    assert dumps(encode_predict_response(single, row_format=False)) == b'{"outputs":[[1.5,NaN]]}'
    binary = {"mask_bytes": np.array([b"\x00\xff"], dtype=object), "label": np.array([b"cat"], dtype=object)}
    assert encode_predict_response(binary, row_format=True) == {
        "predictions": [{"mask_bytes": {"b64": "AP8="}, "label": "cat"}]
    }
    with pytest.raises(ServingError, match="no common batch size"):
        encode_predict_response({"a": np.zeros((2, 1)), "b": np.zeros((3, 1))}, row_format=True)
