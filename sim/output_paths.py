"""One rule for every path a command writes, so no command destroys data it was given or did not make.

A command checks each output before it starts work:
- never over one of its own inputs (same resolved path, or the same file through a hard link: st_dev/st_ino),
  not even with --force: the command would destroy what it reads;
- never over a folder where a file goes, nor over a file where a folder goes;
- the extension must name the format written (an MP4 goes to *.mp4);
- unless --force: not over an existing file of another kind (a checkpoint renamed *.mp4), and not inside a
  rosbag2 bag folder or an input folder (a bag's reader expects only its own files there).
The write itself stays atomic (sim.atomic).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from sim.errors import InhandError

MCAP_MAGIC = b"\x89MCAP0\r\n"

# format -> (accepted extensions, test on the first bytes of an existing file: is it this format?)
FORMATS: dict[str, tuple[tuple[str, ...], Callable[[bytes], bool]]] = {
    "MP4 video": ((".mp4",), lambda head: head[4:8] == b"ftyp"),
    "PNG image": ((".png",), lambda head: head.startswith(b"\x89PNG\r\n\x1a\n")),
    # an ONNX ModelProto is protobuf whose first field is ir_version (field 1, varint): tag byte 0x08
    "ONNX model": ((".onnx",), lambda head: head[:1] == b"\x08"),
    # torch.save writes a zip archive
    "torch checkpoint": ((".pt", ".pth"), lambda head: head.startswith(b"PK\x03\x04")),
    "JSON file": ((".json",), lambda head: head.lstrip()[:1] in (b"{", b"[")),
}


_ARTICLES = {"MP4 video": "an", "ONNX model": "an"}  # said "em-pee-four", "onnx"; the others take "a"


def _a(kind: str) -> str:
    return f"{_ARTICLES.get(kind, 'a')} {kind}"


class OutputPathError(InhandError):
    """An output path that would overwrite an input, another kind of file, or a bag's contents."""


def is_bag_folder(path: Path) -> bool:
    """A rosbag2 folder: a rosbag2 metadata.yaml or an .mcap file directly inside."""
    if not path.is_dir():
        return False
    try:
        with (path / "metadata.yaml").open("rb") as metadata:
            if b"rosbag2_bagfile_information" in metadata.read(4096):
                return True
    except OSError:
        pass
    return any(path.glob("*.mcap"))


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def _same_file(first: Path, second: Path) -> bool:
    """True for one path twice: the same resolved path, or one file behind two names (a hard link)."""
    if first.resolve() == second.resolve():
        return True
    identity = _identity(first)
    return identity is not None and identity == _identity(second)


def _within(path: Path, folder: Path) -> bool:
    return folder.is_dir() and path.resolve().is_relative_to(folder.resolve())


def _guarded_folder(path: Path, inputs: list[Path]) -> Path | None:
    """The bag folder or input folder that `path` (a file or folder to write) would land in, if any."""
    for folder in (path, *path.resolve().parents):
        if is_bag_folder(folder):
            return folder
    return next((folder for folder in inputs if folder.is_dir() and _within(path, folder)), None)


def _check_common(path: Path, inputs: list[Path], force: bool, option: str, force_hint: str) -> None:
    for source in inputs:
        if _same_file(path, source):
            raise OutputPathError(f"{option} {path}: that is {source}, an input of this command; "
                                  f"choose another path (the input would be lost)")
    folder = None if force else _guarded_folder(path, inputs)
    if folder is not None:
        what = "the bag folder" if is_bag_folder(folder) else "the input folder"
        raise OutputPathError(f"{option} {path}: inside {what} {folder}; write outside it{force_hint}")


def check_output_file(path: str | Path, kind: str, inputs: Iterable[str | Path | None] = (), force: bool = False,
                      option: str = "output") -> Path:
    """Raise OutputPathError unless `path` may receive a file of `kind` (a FORMATS key); returns it as a Path.

    `inputs` are every file and folder the same command reads; `option` names the argument in messages."""
    path = Path(path)
    suffixes, looks_like = FORMATS[kind]
    sources = [Path(source) for source in inputs if source is not None]
    force_hint = ", or pass --force" if not force else ""
    if path.suffix.lower() not in suffixes:
        raise OutputPathError(f"{option} {path}: this writes {_a(kind)}; give the file a {' or '.join(suffixes)} "
                              f"extension (got {path.suffix or 'none'})")
    if path.is_dir():
        raise OutputPathError(f"{option} {path}: is a folder; give the path of the {kind} file to write")
    _check_common(path, sources, force, option, force_hint)
    if not force and path.is_file() and path.stat().st_size:
        with path.open("rb") as existing:
            head = existing.read(16)
        if not looks_like(head):
            raise OutputPathError(f"{option} {path}: exists and is not {_a(kind)}; it would be replaced. "
                                  f"Choose another name{force_hint}")
    return path


def check_output_dir(path: str | Path, inputs: Iterable[str | Path | None] = (), force: bool = False,
                     option: str = "output folder") -> Path:
    """Raise OutputPathError unless `path` may be created or written into as a folder; returns it as a Path."""
    path = Path(path)
    sources = [Path(source) for source in inputs if source is not None]
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{option} {path}: exists and is not a folder; choose another path")
    _check_common(path, sources, force, option, ", or pass --force" if not force else "")
    return path


def is_mcap_file(path: Path) -> bool:
    """True when `path` starts with the MCAP magic."""
    try:
        with path.open("rb") as stream:
            return stream.read(len(MCAP_MAGIC)) == MCAP_MAGIC
    except OSError:
        return False


def free_sibling(path: Path, suffix: str) -> Path:
    """`path` + suffix, or + suffix.2, .3, ...: the first name beside `path` that does not exist yet."""
    candidate, number = path.with_name(path.name + suffix), 2
    while os.path.lexists(candidate):
        candidate, number = path.with_name(f"{path.name}{suffix}.{number}"), number + 1
    return candidate
