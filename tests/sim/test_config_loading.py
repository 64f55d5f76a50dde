"""The one YAML reader: files named in every error, duplicate keys, empty and binary documents refused."""
from __future__ import annotations

from pathlib import Path

import pytest

from sim.config import EnvConfig
from sim.config_loading import ConfigError, load_config, parse_yaml, read_yaml


def test_a_key_given_twice_is_refused_with_both_places(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("ppo:\n  clip: 0.1\nrunner:\n  seed: 1\nppo:\n  clip: 0.3\n")
    message = r"line 5 column 1: not valid YAML: key 'ppo' appears twice \(first 1:1\)"
    with pytest.raises(ConfigError, match=rf"{path}, {message}"):
        read_yaml(path)
    one_line = r"^inline, line 1 column 18: not valid YAML: key 'clip' appears twice[^\n]+$"
    with pytest.raises(ConfigError, match=one_line):
        parse_yaml("ppo: {clip: 0.1, clip: 0.2}", "inline")
    # a merge key may be overridden on purpose: that is not a duplicate
    assert parse_yaml("base: &b {x: 1, y: 2}\nchild:\n  <<: *b\n  x: 3\n")["child"] == {"x": 3, "y": 2}


def test_a_second_document_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "env.yaml"
    path.write_text("task: {}\n---\ntask: {}\n")
    message = r"line 2 column 1: not valid YAML: but found another document \(expected a single document"
    with pytest.raises(ConfigError, match=rf"{path}, {message}"):
        read_yaml(path)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_an_empty_config_is_refused_not_read_as_defaults(tmp_path: Path, text: str) -> None:
    path = tmp_path / "env.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"{path}: the config file is empty; expected a mapping"):
        load_config(EnvConfig, path)
    path.write_text("{}\n")  # all defaults, said on purpose
    assert load_config(EnvConfig, path) == EnvConfig()
    path.write_text("- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping at the top level of the config file, got list"):
        load_config(EnvConfig, path)


def test_a_binary_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "random.yaml"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ConfigError, match=rf"{path}: not a YAML params file: byte 128 is not UTF-8"):
        read_yaml(path, "params file")
    with pytest.raises(ConfigError, match=f"{tmp_path}: is a folder"):
        read_yaml(tmp_path)
