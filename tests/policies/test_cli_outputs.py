"""`inhand train/eval/export` never write over their inputs, and find their default config from any folder."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from inhand.cli import main
from ros_nodes.bench_system import write_untrained_checkpoint


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_untrained_checkpoint(tmp_path_factory.mktemp("ck") / "policy.pt", dense_size=32, lstm_size=16)


def test_eval_video_over_its_checkpoint_is_refused(checkpoint: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    before = _digest(checkpoint)
    assert main(["eval", str(checkpoint), "--episodes", "1", "--num-envs", "1", "--video", str(checkpoint)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("inhand eval: --video") and len(error.strip().splitlines()) == 1
    assert "this writes an MP4 video" in error
    linked = tmp_path / "policy.mp4"  # the same file under an .mp4 name: refused as the input it is
    linked.hardlink_to(checkpoint)
    assert main(["eval", str(checkpoint), "--episodes", "1", "--video", str(linked), "--force"]) == 2
    assert "an input of this command" in capsys.readouterr().err
    assert _digest(checkpoint) == before
    assert main(["eval", str(checkpoint), "--episodes", "1", "--video", str(tmp_path / "out.txt")]) == 2
    assert "give the file a .mp4 extension (got .txt)" in capsys.readouterr().err


def test_export_over_its_checkpoint_is_refused(checkpoint: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _digest(checkpoint)
    assert main(["export", str(checkpoint), "--out-dir", str(checkpoint.parent)]) == 2
    assert f"{checkpoint}, an input of this command" in capsys.readouterr().err
    assert _digest(checkpoint) == before


def test_train_run_dir_that_is_a_file_is_refused(checkpoint: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--run-dir", str(checkpoint), "--no-progress"]) == 2
    assert "--run-dir" in capsys.readouterr().err and checkpoint.is_file()


def test_defaults_resolve_from_the_package_not_the_current_folder(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from policies.cli import default_config
    from policies.config import load_train_config
    from sim import paths
    from vision.config import load_vision_config

    monkeypatch.chdir(tmp_path)
    assert default_config().is_absolute() and load_train_config(default_config()).env.num_envs > 0
    assert load_vision_config().model.input_size > 0
    # a wheel install: no source checkout above the package, the data under <prefix>/share/inhand
    prefix = tmp_path / "prefix"
    (prefix / "share" / "inhand" / "config").mkdir(parents=True)
    (prefix / "share" / "inhand" / "config" / "train.yaml").write_text("{}\n")
    monkeypatch.setattr(paths, "SOURCE_ROOT", tmp_path / "site-packages")
    monkeypatch.setattr(paths.sys, "prefix", str(prefix))
    assert default_config() == prefix / "share" / "inhand" / "config" / "train.yaml"
    with pytest.raises(FileNotFoundError, match="is inhand installed"):
        paths.data_path("config/env.yaml")


def test_an_env_yaml_named_by_a_checkpoint_resolves_from_any_folder(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from sim.config import load_env_config
    from sim.config_loading import ConfigError

    monkeypatch.chdir(tmp_path)
    assert load_env_config("config/env_nominal.yaml") == load_env_config(
        Path(__file__).resolve().parents[2] / "config" / "env_nominal.yaml")
    with pytest.raises(ConfigError, match="^config/nope.yaml: config file not found$"):
        load_env_config("config/nope.yaml")
