"""The output-path rule: never over an input, a folder, another kind of file or a bag's contents; extensions match."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from sim.output_paths import OutputPathError, check_output_dir, check_output_file, free_sibling, is_mcap_file

MP4_HEAD = b"\x00\x00\x00\x20ftypisom" + bytes(20)


def test_an_input_is_never_written_over_even_with_force(tmp_path: Path) -> None:
    checkpoint = tmp_path / "policy.mp4"
    checkpoint.write_bytes(MP4_HEAD)
    linked = tmp_path / "hard.mp4"
    os.link(checkpoint, linked)
    symlinked = tmp_path / "soft.mp4"
    symlinked.symlink_to(checkpoint)
    for output in (checkpoint, tmp_path / "." / "policy.mp4", linked, symlinked):
        for force in (False, True):
            with pytest.raises(OutputPathError, match="an input of this command"):
                check_output_file(output, "MP4 video", [checkpoint], force, "--video")


def test_extension_must_name_the_format_written(tmp_path: Path) -> None:
    with pytest.raises(OutputPathError, match=r"--video .*out.txt: this writes an MP4 video; .*\.mp4 extension"):
        check_output_file(tmp_path / "out.txt", "MP4 video", option="--video")
    with pytest.raises(OutputPathError, match=r"\.onnx extension \(got none\)"):
        check_output_file(tmp_path / "model", "ONNX model", force=True)
    assert check_output_file(tmp_path / "plot.PNG", "PNG image") == tmp_path / "plot.PNG"


def test_another_kind_of_file_needs_force_the_same_kind_is_replaced(tmp_path: Path) -> None:
    video = tmp_path / "eval.mp4"
    video.write_bytes(b"PK\x03\x04 a torch checkpoint renamed")
    with pytest.raises(OutputPathError, match="exists and is not an MP4 video.*--force"):
        check_output_file(video, "MP4 video")
    assert check_output_file(video, "MP4 video", force=True) == video
    video.write_bytes(MP4_HEAD)  # an earlier run's video: re-running the command replaces it
    assert check_output_file(video, "MP4 video") == video
    (tmp_path / "folder.mp4").mkdir()
    with pytest.raises(OutputPathError, match="is a folder"):
        check_output_file(tmp_path / "folder.mp4", "MP4 video", force=True)


def test_inside_a_bag_or_input_folder_needs_force(tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    (bag / "sub").mkdir(parents=True)
    (bag / "bag.mcap").write_bytes(b"\x89MCAP0\r\n")
    for output in (bag / "x.png", bag / "sub" / "x.png"):
        with pytest.raises(OutputPathError, match=f"inside the bag folder {bag}.*--force"):
            check_output_file(output, "PNG image", option="--resim")
        assert check_output_file(output, "PNG image", force=True) == output
    data = tmp_path / "data"
    data.mkdir()
    (data / "metadata.yaml").write_text("source: random actions\n")  # not a rosbag2 one: data is no bag
    assert check_output_file(data / "x.png", "PNG image") == data / "x.png"
    (bag / "bag.mcap").unlink()
    (bag / "metadata.yaml").write_text("rosbag2_bagfile_information:\n  version: 8\n")
    with pytest.raises(OutputPathError, match=f"inside the bag folder {bag}"):
        check_output_file(bag / "x.png", "PNG image")
    with pytest.raises(OutputPathError, match=f"inside the input folder {data}"):
        check_output_dir(data / "eval", [data])
    with pytest.raises(OutputPathError, match="an input of this command"):
        check_output_dir(data, [data], force=True)
    with pytest.raises(OutputPathError, match="inside the bag folder"):
        check_output_dir(bag, force=False)


def test_folder_outputs(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputPathError, match="exists and is not a folder"):
        check_output_dir(tmp_path / "file", force=True)
    assert check_output_dir(tmp_path / "new") == tmp_path / "new"


def test_helpers(tmp_path: Path) -> None:
    (tmp_path / "a.mcap").write_bytes(b"\x89MCAP0\r\nrest")
    (tmp_path / "b.mcap").write_bytes(b"random bytes")
    assert is_mcap_file(tmp_path / "a.mcap") and not is_mcap_file(tmp_path / "b.mcap")
    assert not is_mcap_file(tmp_path / "missing.mcap")
    assert free_sibling(tmp_path / "bag", ".orig") == tmp_path / "bag.orig"
    (tmp_path / "bag.orig").mkdir()
    assert free_sibling(tmp_path / "bag", ".orig") == tmp_path / "bag.orig.2"
