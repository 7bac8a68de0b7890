"""Config loading, override parsing and the error messages users see."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
import yaml

from pipeline.config import (
    CONFIGS_DIR,
    ConfigError,
    PipelineConfig,
    config_to_dict,
    flatten,
    load_config,
    parse_override,
    save_config,
)


@pytest.mark.parametrize("preset", sorted(p.name for p in CONFIGS_DIR.glob("*.yaml")))
def test_every_preset_loads(preset):
    config = load_config(CONFIGS_DIR / preset)
    assert config.preset == Path(preset).stem


def test_paper_presets_have_the_paper_sizes_and_rates():
    nyu = load_config(CONFIGS_DIR / "nyu_eigen2014.yaml")
    kitti = load_config(CONFIGS_DIR / "kitti_eigen2014.yaml")
    assert (nyu.model.input_width, nyu.model.input_height) == (304, 228)
    assert (nyu.model.output_width, nyu.model.output_height) == (74, 55)
    assert (kitti.model.input_width, kitti.model.input_height) == (576, 172)
    assert (kitti.model.output_width, kitti.model.output_height) == (142, 27)
    for config in (nyu, kitti):
        assert config.optimizer.lr_coarse_conv == 0.001
        assert config.optimizer.lr_coarse_fc == 0.1
        assert config.optimizer.lr_fine_conv == 0.001
        assert config.optimizer.lr_fine_out == 0.01
        assert config.optimizer.momentum == 0.9
        assert (config.optimizer.fine_algorithm, config.optimizer.fine_schedule) == ("sgd", "constant")
        assert config.data.batch_size == 32
        assert config.loss.lam == 0.5
    assert (nyu.train.coarse_samples, nyu.train.fine_samples) == (2_000_000, 1_500_000)
    assert (kitti.train.coarse_samples, kitti.train.fine_samples) == (1_500_000, 1_000_000)
    assert kitti.augment.scale_max == 1.2 and kitti.augment.rotation_degrees == 0.0


def test_overrides_apply_in_order_with_yaml_values():
    config = load_config(
        CONFIGS_DIR / "smoke.yaml",
        ["loss.lam=1", "train.devices=[/cpu:0, /cpu:1]", "loss.lam=0.25", "ingest.synthetic.seed=7"],
    )
    assert config.loss.lam == 0.25 and isinstance(config.loss.lam, float)
    assert config.train.devices == ["/cpu:0", "/cpu:1"]
    assert config.ingest.synthetic.seed == 7
    # Untouched values of the nested section keep the file's values.
    assert (
        config.ingest.synthetic.num_scenes
        == load_config(CONFIGS_DIR / "smoke.yaml").ingest.synthetic.num_scenes
    )


def test_parse_override_splits_key_path():
    assert parse_override("model.width_multiplier=0.5") == (["model", "width_multiplier"], 0.5)
    assert parse_override("ingest.beam_args=[--runner=DirectRunner]") == (
        ["ingest", "beam_args"],
        ["--runner=DirectRunner"],
    )


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.fc_units=abc", "--set model.fc_units=abc: key 'model.fc_units' expects int, got str 'abc'"),
        ("model.fc_units=1.5", "key 'model.fc_units' expects int, got float"),
        ("model.fc_unit=3", "unknown key 'model.fc_unit'; expected one of:"),
        ("nonsense.key=3", "unknown key 'nonsense'"),
        ("augment.enabled=1", "key 'augment.enabled' expects bool, got int"),
        ("train.devices=/gpu:0", "key 'train.devices' expects list"),
        ("model=3", "key 'model' expects mapping (ModelConfig)"),
        ("novalue", "is not of the form section.key=value"),
    ],
)
def test_bad_overrides_name_key_source_and_type(override, message):
    with pytest.raises(ConfigError) as info:
        load_config(CONFIGS_DIR / "smoke.yaml", [override])
    assert message in str(info.value)


def test_bad_file_names_file_key_and_type(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  coarse_samples: many\n")
    with pytest.raises(ConfigError, match=rf"{path}: key 'train.coarse_samples' expects int, got str 'many'"):
        load_config(path)
    path.write_text("train:\n  coarse_sample: 3\n")
    with pytest.raises(ConfigError, match=rf"{path}: unknown key 'train.coarse_sample'"):
        load_config(path)
    path.write_text("- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(path)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_ints_widen_to_float_but_bools_do_not(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("loss:\n  lam: 1\n")
    assert load_config(path).loss.lam == 1.0
    path.write_text("loss:\n  lam: true\n")
    with pytest.raises(ConfigError, match="expects float, got bool"):
        load_config(path)


def test_saved_config_reloads_identically(tmp_path):
    config = load_config(CONFIGS_DIR / "default.yaml", ["loss.lam=1.0"])
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["loss"]["lam"] == 1.0


def test_flatten_gives_dotted_keys():
    flat = flatten(config_to_dict(PipelineConfig()))
    assert flat["ingest.synthetic.num_scenes"] == PipelineConfig().ingest.synthetic.num_scenes
    assert "model.width_multiplier" in flat


@pytest.mark.parametrize(
    "override, key, expected",
    [
        ("data.batch_size=0", "data.batch_size", "a value >= 1, got 0"),
        ("model.width_multiplier=-1", "model.width_multiplier", "a value > 0, got -1.0"),
        ("model.input_height=-3", "model.input_height", "a value >= 1, got -3"),
        ("ingest.storage_width=0", "ingest.storage_width", "a value >= 1, got 0"),
        ("ingest.train_fraction=1.5", "ingest.train_fraction", "a value in [0, 1], got 1.5"),
        ("ingest.val_fraction=0.3", "ingest.val_fraction", "a value <= 1 - train_fraction (0.8), got 0.3"),
        ("ingest.shards_per_split=0", "ingest.shards_per_split", "a value >= 1, got 0"),
        ("loss.min_depth=20", "loss.max_depth", "a value > min_depth (20.0), got 10.0"),
        ("loss.min_depth=0", "loss.min_depth", "a value > 0, got 0.0"),
        ("augment.scale_max=0.5", "augment.scale_max", "a value >= scale_min (1.0), got 0.5"),
        ("augment.flip_probability=2", "augment.flip_probability", "a value in [0, 1], got 2.0"),
        ("optimizer.momentum=1", "optimizer.momentum", "a value in [0, 1), got 1.0"),
        ("train.steps_per_epoch=0", "train.steps_per_epoch", "a value >= 1, got 0"),
        ("train.fine_samples=-5", "train.fine_samples", "a value >= 1, got -5"),
        ("evaluate.batch_size=0", "evaluate.batch_size", "a value >= 1, got 0"),
        ("evaluate.max_depth=0.0001", "evaluate.max_depth", "a value > min_depth (0.001), got 0.0001"),
        ("ingest.synthetic.num_scenes=0", "ingest.synthetic.num_scenes", "a value >= 1, got 0"),
        ("ingest.folder.depth_scale=0", "ingest.folder.depth_scale", "a value > 0, got 0.0"),
        ("model.input_width=97", "model.input_width", "a value <= ingest.storage_width (96), got 97"),
        ("export.model_name=a/b", "export.model_name", "one directory name (not empty, no '/'), got 'a/b'"),
        ("mlflow.experiment_name=''", "mlflow.experiment_name", "a non-empty value, got ''"),
        ("train.strategy=mirorred", "train.strategy", "one of 'auto', 'mirrored', 'default', 'multi_worker'"),
        ("evaluate.crop=nyu", "evaluate.crop", "one of 'none', 'nyu_eigen', 'kitti_garg', 'kitti_eigen'"),
        ("evaluate.paper_table=NYU", "evaluate.paper_table", "one of '', 'nyu', 'kitti', got str 'NYU'"),
        ("ingest.source=nyu", "ingest.source", "one of 'synthetic_rooms', 'folder',"),
        ("ingest.direct_running_mode=threads", "ingest.direct_running_mode", "one of 'multi_processing'"),
    ],
)
def test_values_out_of_range_name_the_override_and_the_key(override, key, expected):
    with pytest.raises(ConfigError) as info:
        load_config(CONFIGS_DIR / "smoke.yaml", [override])
    assert str(info.value).startswith(f"--set {override}: key '{key}' expects ")
    assert expected in str(info.value)


def test_a_bad_value_in_a_file_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("data:\n  batch_size: 0\n")
    with pytest.raises(ConfigError, match=rf"^{path}: key 'data.batch_size' expects a value >= 1, got 0$"):
        load_config(path)


def test_a_check_across_fields_names_the_override_of_either_field(tmp_path):
    path = tmp_path / "fractions.yaml"
    path.write_text("ingest:\n  val_fraction: 0.15\n")
    with pytest.raises(ConfigError, match=r"^--set ingest.train_fraction=0.9: key 'ingest.val_fraction'"):
        load_config(path, ["ingest.train_fraction=0.9", "data.batch_size=8"])
    with pytest.raises(ConfigError, match=r"^--set ingest=\{train_fraction: 1\}: key 'ingest.val_fraction'"):
        load_config(path, ["ingest={train_fraction: 1}"])
    path.write_text("ingest:\n  val_fraction: 0.3\n")
    with pytest.raises(ConfigError, match=rf"^{path}: key 'ingest.val_fraction'"):
        load_config(path, ["data.batch_size=8"])


def test_values_are_checked_after_all_overrides():
    """A range crossed only half-way through the overrides is fine when the end result is."""
    config = load_config(CONFIGS_DIR / "smoke.yaml", ["loss.min_depth=20", "loss.max_depth=30"])
    assert (config.loss.min_depth, config.loss.max_depth) == (20.0, 30.0)
    config = load_config(CONFIGS_DIR / "smoke.yaml", ["ingest.val_fraction=0.5", "ingest.train_fraction=0.5"])
    assert config.ingest.train_fraction + config.ingest.val_fraction == 1.0


def test_choice_fields_accept_exactly_what_the_code_implements():
    from components.evaluate.report import PAPER_TABLES
    from keras_depth.metrics.crops import EVAL_CROPS
    from keras_depth.sources.registry import source_names

    def choices(section, name):
        return set(typing.get_args(typing.get_type_hints(type(section))[name]))

    config = PipelineConfig()
    assert choices(config.evaluate, "crop") == set(EVAL_CROPS)
    assert choices(config.evaluate, "paper_table") == {"", *PAPER_TABLES}
    assert choices(config.ingest, "source") == set(source_names())


def test_an_error_in_a_list_item_names_the_override_of_the_list():
    override = "ingest.sources=[{source: folder}, {source: synthetic_rooms, splits: []}]"
    with pytest.raises(ConfigError, match=rf"^--set {re.escape(override)}: key 'ingest.sources\[1\].splits'"):
        load_config(CONFIGS_DIR / "smoke.yaml", [override])
