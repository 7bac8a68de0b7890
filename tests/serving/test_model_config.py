"""``--model_config_file``: the text-proto parser, and a server with specific versions and labels."""

from __future__ import annotations

import numpy as np
import pytest
import requests

from serving.model_config import ALL, LATEST, SPECIFIC, ModelConfigError, VersionPolicy, parse_model_config

TIMEOUT_S = 30
BLACK_IMAGE = np.zeros((1, 4, 4, 3)).tolist()
CONFIG = """
# Two versions of the depth model, labelled; version 3 is on disk but not served.
model_config_list {
  config {
    name: "depth"
    base_path: "{base_path}"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 1 versions: 2 } }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 2 }
  }
}
"""


def test_parse_full_config():
    text = """
    model_config_list: {
      config: { name: 'a' base_path: "/m/a" model_version_policy: < latest: { num_versions: 2 } > },
      config { name: "b" base_path: "rel/b" model_version_policy { all {} } }
      config { name: "c" base_path: "/m/" "c" model_version_policy { specific { versions: [3, 4] } } }  # trailing
    }
    """
    a, b, c = parse_model_config(text, "models.config")
    assert a.version_policy == VersionPolicy(kind=LATEST, num_versions=2) and a.base_path == "/m/a"
    assert b.version_policy.kind == ALL and b.base_path.endswith("rel/b")
    assert c.version_policy == VersionPolicy(kind=SPECIFIC, versions=(3, 4)) and c.base_path == "/m/c"
    assert VersionPolicy(kind=LATEST, num_versions=2).select([1, 5, 3]) == {3, 5}
    assert VersionPolicy(kind=SPECIFIC, versions=(1, 9)).select([1, 2]) == {1}


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('model_config_list {\n  config {\n    name: "a"\n  }\n}', 2, "no 'base_path'"),
        (
            'model_config_list {\n  config {\n    name: "a" base_path: "/x"\n    colour: 3\n  }\n}',
            4,
            "unsupported field 'colour'",
        ),
        ('model_config_list {\n  config {\n    name: "a" base_path: "/x"\n', 3, "missing '}'"),
        ('model_config_list {\n  config { name: "../etc" base_path: "/x" }\n}', 2, "invalid model name"),
        ('model_config_list {\n  config { name: "a" base_path: 7 }\n}', 2, "must be a str"),
        (
            'model_config_list {\n  config { name: "a" base_path: "/x" model_platform: "onnx" }\n}',
            2,
            "model_platform",
        ),
        (
            'model_config_list {\n config { name: "a" base_path: "/x"\n model_version_policy { latest {} all {} } } }',
            3,
            "exactly one",
        ),
        (
            'model_config_list {\n config { name: "a" base_path: "/x" }\n config { name: "a" base_path: "/y" }\n}',
            1,
            "more than once",
        ),
        ("model_config_list {\n  config { name: @ }\n}", 2, "unexpected text"),
    ],
)
def test_parse_errors_name_file_and_line(text, line, message):
    with pytest.raises(ModelConfigError, match=rf"^models\.config:{line}: .*{message}"):
        parse_model_config(text, "models.config")


@pytest.fixture(scope="module")
def labelled_server(tmp_path_factory, standin_versions, start_server, install):
    root = tmp_path_factory.mktemp("labelled")
    for version in (1, 2, 3):
        install(root / "depth", version, standin_versions[version])
    config_path = root / "models.config"
    config_path.write_text(CONFIG.replace("{base_path}", str(root / "depth")))
    server = start_server(
        [f"--model_config_file={config_path}", "--file_system_poll_wait_seconds=0"], "labelled_server"
    )
    server.wait_available()
    yield server
    server.stop_gracefully()


def _post(server, path: str) -> requests.Response:
    return requests.post(
        f"{server.url}/v1/models/depth{path}:predict", json={"instances": BLACK_IMAGE}, timeout=TIMEOUT_S
    )


@pytest.mark.e2e
def test_specific_versions_and_labels(labelled_server):
    status = requests.get(f"{labelled_server.url}/v1/models/depth", timeout=TIMEOUT_S).json()
    assert [(entry["version"], entry["state"]) for entry in status["model_version_status"]] == [
        ("2", "AVAILABLE"),
        ("1", "AVAILABLE"),
    ]
    for path, expected_depth in [
        ("/labels/stable", 1.0),
        ("/labels/canary", 2.0),
        ("/versions/1", 1.0),
        ("", 2.0),
    ]:
        response = _post(labelled_server, path)
        assert response.status_code == 200, response.text
        assert np.mean(response.json()["predictions"][0]["depth"]) == expected_depth
    label_status = requests.get(
        f"{labelled_server.url}/v1/models/depth/labels/stable", timeout=TIMEOUT_S
    ).json()
    assert [entry["version"] for entry in label_status["model_version_status"]] == ["1"]
    label_metadata = requests.get(
        f"{labelled_server.url}/v1/models/depth/labels/canary/metadata", timeout=TIMEOUT_S
    ).json()
    assert label_metadata["model_spec"]["version"] == "2"
    for path in ("/labels/beta", "/versions/3"):
        response = _post(labelled_server, path)
        assert response.status_code == 404 and "error" in response.json()
