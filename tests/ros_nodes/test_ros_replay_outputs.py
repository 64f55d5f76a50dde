"""`inhand replay` never writes over its bag: --video/--resim into the bag folder, --repair on what is not MCAP."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from ros_nodes import msgs
from ros_nodes.replay import main


def _bag(path: Path) -> Path:
    from ros_nodes.bag import BagWriter

    with BagWriter(path) as bag:
        for index in range(3):
            state = msgs.JointState(name=["rh_FFJ1"], position=np.array([0.1 * index]))
            bag.write("/hand/joint_states", "sensor_msgs/msg/JointState", state, 1000 + index)
    return path


def _digests(folder: Path) -> dict[str, str]:
    return {item.name: hashlib.sha256(item.read_bytes()).hexdigest() for item in sorted(folder.iterdir())}


def test_video_onto_the_recording_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bag = _bag(tmp_path / "run1")
    before = _digests(bag)
    mcap = next(bag.glob("*.mcap"))
    assert main([str(bag), "--video", str(mcap)]) == 2
    assert "--video" in capsys.readouterr().err
    mp4 = bag / "run1.mp4"  # right extension, still inside the bag: rosbag2 owns that folder
    assert main([str(bag), "--video", str(mp4)]) == 2
    assert f"inside the bag folder {bag}; write outside it, or pass --force" in capsys.readouterr().err
    assert _digests(bag) == before


def test_resim_onto_the_metadata_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bag = _bag(tmp_path / "run1")
    before = _digests(bag)
    assert main([str(bag), "--resim", str(bag / "metadata.yaml")]) == 2
    assert "--resim " in (error := capsys.readouterr().err) and "give the file a .png extension (got .yaml)" in error
    assert main([str(bag), "--resim", str(bag / "plot.png")]) == 2
    assert "inside the bag folder" in capsys.readouterr().err
    assert _digests(bag) == before


def test_repair_refuses_random_bytes_and_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bag = tmp_path / "noise"
    bag.mkdir()
    (bag / "noise.mcap").write_bytes(np.random.default_rng(0).bytes(4096))
    (bag / "metadata.yaml").write_text("rosbag2_bagfile_information: {version: 8}\n")
    before = _digests(bag)
    assert main([str(bag), "--repair"]) == 2
    assert "noise.mcap is not an MCAP file" in capsys.readouterr().err
    assert _digests(bag) == before and sorted(os.listdir(tmp_path)) == ["noise"]


def test_a_bag_given_as_its_mcap_file_names_the_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bag = _bag(tmp_path / "run1")
    mcap = next(bag.glob("*.mcap"))
    assert main([str(mcap), "--video", str(tmp_path / "x.mp4")]) == 2
    assert f"is a file: a bag is a folder with metadata.yaml and a .mcap file; give its folder {bag}" in (
        capsys.readouterr().err)
