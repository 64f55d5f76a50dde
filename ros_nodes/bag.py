"""rosbag2 bags in MCAP storage (rosbag2 format version 8, readable by Humble and Jazzy) via `rosbags`.

BagWriter flushes finished chunks to disk (every flush_period_s, and on flush()), so a recorder killed by
SIGKILL leaves an MCAP file holding everything up to its last flush, but no summary and no metadata.yaml;
repair_bag() rebuilds both from the records that made it to disk. BagReader yields our message dataclasses.
"""
from __future__ import annotations

import os
import shutil
import struct
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcap.exceptions import McapError
from mcap.records import Channel, Message, Schema
from mcap.stream_reader import StreamReader
from rosbags.rosbag2 import Reader, ReaderError, StoragePlugin, Writer, WriterError
from rosbags.typesys import Stores, get_typestore

from ros_nodes.msgs import REGISTRY, CdrError, deserialize, serialize
from sim.errors import InhandError
from sim.output_paths import free_sibling, is_mcap_file

BAG_VERSION = 8  # the newest version both Humble and Jazzy read
TYPESTORE = Stores.ROS2_HUMBLE


class BagError(InhandError, RuntimeError):
    """A bag that cannot be written or read as asked, with what to do about it."""


@dataclass(frozen=True)
class BagMessage:
    """One recorded message: topic, ROS type, receive time (ns) and the message (or its CDR bytes when raw)."""

    topic: str
    ros_type: str
    timestamp_ns: int
    message: Any


class BagWriter:
    """Writes (topic, type, message or CDR bytes, time) into a new bag folder; use as a context manager."""

    def __init__(self, path: str | Path, flush_period_s: float = 1.0) -> None:
        self.path = Path(path)
        self.flush_period_s = flush_period_s
        self._typestore = get_typestore(TYPESTORE)
        try:
            self._writer = Writer(self.path, version=BAG_VERSION, storage_plugin=StoragePlugin.MCAP)
            self._writer.open()
        except WriterError as error:
            raise BagError(f"cannot create bag {self.path}: {error}") from None
        storage = self._writer.storage
        if not all(hasattr(storage, name) for name in ("close_chunk", "chunk", "bio")):
            self._writer.close()
            raise BagError("this rosbags version's MCAP writer cannot be flushed (expected rosbags 0.11)")
        self._storage = storage
        self._connections: dict[str, Any] = {}
        self._last_flush = time.monotonic()
        self.message_count = 0

    def _connection(self, topic: str, ros_type: str) -> Any:
        connection = self._connections.get(topic)
        if connection is None:
            if ros_type not in self._typestore.types:
                raise BagError(f"cannot record {topic}: type {ros_type!r} has no message definition in rosbags")
            connection = self._writer.add_connection(topic, ros_type, typestore=self._typestore)
            self._connections[topic] = connection
        elif connection.msgtype != ros_type:
            raise BagError(f"topic {topic} is recorded as {connection.msgtype}; got a message of {ros_type}")
        return connection

    def write(self, topic: str, ros_type: str, message: Any, timestamp_ns: int) -> None:
        """Append one message (our dataclass, or CDR bytes as received) stamped timestamp_ns."""
        if self._writer.storage is None:
            raise BagError(f"bag {self.path} is closed")
        if isinstance(message, (bytes, bytearray, memoryview)):
            data = bytes(message)
        elif getattr(message, "ROS_TYPE", None) == ros_type:
            data = serialize(message)
        else:
            raise BagError(f"{topic}: expected a {ros_type} message or CDR bytes, got {type(message).__name__}")
        self._writer.write(self._connection(topic, ros_type), int(timestamp_ns), data)
        self.message_count += 1
        if time.monotonic() - self._last_flush >= self.flush_period_s:
            self.flush()

    def flush(self) -> None:
        """Put everything written so far on disk as complete MCAP chunks."""
        if self._writer.storage is not None and self._storage.chunk.bio.tell():
            self._storage.close_chunk()
        if self._writer.storage is not None:
            self._storage.bio.flush()
        self._last_flush = time.monotonic()

    def close(self) -> None:
        """Write the MCAP summary and metadata.yaml."""
        if self._writer.storage is not None:
            self._writer.close()

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _mcap_file(path: Path) -> Path:
    files = sorted(path.glob("*.mcap"))
    if len(files) != 1:
        raise BagError(f"bag {path} should hold exactly one .mcap file, found {[f.name for f in files]}")
    return files[0]


def _opens(path: Path) -> bool:
    try:
        with Reader(path):
            return True
    except (ReaderError, OSError, ValueError, KeyError):
        return False


@dataclass(frozen=True)
class RepairReport:
    """What repair_bag did: whether it rebuilt the bag, messages kept, bytes dropped, where the original went."""

    repaired: bool
    message_count: int
    dropped_bytes: int
    original: Path | None = None  # the untouched original bag folder, beside the repaired one
    note: str = ""


def _complete_records(mcap_path: Path) -> tuple[list[Schema | Channel | Message], int]:
    """Every record that is complete on disk, and how many bytes at the end were not."""
    records: list[Schema | Channel | Message] = []
    size = mcap_path.stat().st_size
    with mcap_path.open("rb") as stream:
        reader = StreamReader(stream, skip_magic=False)
        try:
            for record in reader.records:
                if isinstance(record, (Schema, Channel, Message)):
                    records.append(record)
            return records, 0
        except (McapError, struct.error, EOFError):  # mcap raises struct.error when a record's header is cut short
            return records, size - _last_good_offset(mcap_path)


def _last_good_offset(mcap_path: Path) -> int:
    """Offset after the last complete top-level record (the magic and opcode/length framing of MCAP)."""
    data = mcap_path.read_bytes()
    offset = 8
    while offset + 9 <= len(data):
        length = int.from_bytes(data[offset + 1 : offset + 9], "little")
        if offset + 9 + length > len(data):
            break
        offset += 9 + length
    return min(offset, len(data))


def check_bag_folder(path: Path) -> None:
    """Raise a BagError naming what to give instead when `path` is not a bag folder at all."""
    if path.is_file():
        hint = f"; give its folder {path.parent}" if path.suffix == ".mcap" or path.name == "metadata.yaml" else ""
        raise BagError(f"bag {path} is a file: a bag is a folder with metadata.yaml and a .mcap file{hint}")
    if not path.is_dir():
        raise BagError(f"bag {path} does not exist (a bag is a folder with metadata.yaml and a .mcap file)")


def repair_bag(path: str | Path) -> RepairReport:
    """Rebuild the MCAP summary and metadata.yaml of a bag whose writer did not close it; keep every complete
    message. A bag that opens already is left alone. Nothing is destroyed: the rebuilt bag takes the bag's path
    and the original folder, untouched, moves beside it to BAG.orig (BAG.orig.2, ...); a file that is not MCAP
    at all is refused."""
    path = Path(path)
    check_bag_folder(path)
    if (path / "metadata.yaml").exists() and _opens(path):
        with Reader(path) as reader:
            return RepairReport(False, reader.message_count, 0, note="the bag opens as it is; nothing to repair")
    mcap_path = _mcap_file(path)
    if not is_mcap_file(mcap_path):
        raise BagError(f"cannot repair {path}: {mcap_path.name} is not an MCAP file (it does not start with the "
                       f"MCAP magic); nothing was changed")
    records, dropped = _complete_records(mcap_path)
    schemas = {r.id: r for r in records if isinstance(r, Schema)}
    channels = {r.id: r for r in records if isinstance(r, Channel)}
    typestore = get_typestore(TYPESTORE)
    workdir = Path(tempfile.mkdtemp(prefix=f".{path.name}.repair-", dir=path.parent))
    try:
        rebuilt = workdir / path.name
        writer = Writer(rebuilt, version=BAG_VERSION, storage_plugin=StoragePlugin.MCAP)
        writer.open()
        connections: dict[int, Any] = {}
        count = 0
        for record in records:
            if not isinstance(record, Message) or record.channel_id not in channels:
                continue
            if record.channel_id not in connections:
                channel = channels[record.channel_id]
                ros_type = schemas[channel.schema_id].name
                if ros_type not in typestore.types:
                    raise BagError(f"cannot repair {path}: topic {channel.topic} has type {ros_type} unknown to "
                                   f"rosbags; nothing was changed")
                connections[record.channel_id] = writer.add_connection(channel.topic, ros_type, typestore=typestore)
            writer.write(connections[record.channel_id], record.log_time, record.data)
            count += 1
        writer.close()
        # two renames in one folder: killed between them, both the original and the rebuilt bag are on disk
        original = free_sibling(path, ".orig")
        os.rename(path, original)
        os.rename(rebuilt, path)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return RepairReport(True, count, dropped, original, f"the original bag is kept in {original}")


class BagReader:
    """Reads a bag's messages in time order as BagMessage(topic, ros_type, timestamp_ns, message)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        check_bag_folder(self.path)
        if not (self.path / "metadata.yaml").exists():
            raise BagError(
                f"bag {self.path} has no metadata.yaml: its writer did not close it (killed?). "
                f"`inhand replay {self.path} --repair` rebuilds it from the data on disk"
            )
        self._reader = Reader(self.path)
        try:
            self._reader.open()
        except (ReaderError, OSError, ValueError) as error:
            raise BagError(
                f"cannot open bag {self.path}: {error} The MCAP file is truncated or was not closed; "
                f"`inhand replay {self.path} --repair` keeps every complete message"
            ) from None

    @property
    def topics(self) -> dict[str, str]:
        """topic -> ROS type."""
        return {c.topic: c.msgtype for c in self._reader.connections}

    @property
    def message_count(self) -> int:
        """Messages in the bag, all topics."""
        return self._reader.message_count

    def messages(self, topics: Iterable[str] | None = None, raw: bool = False) -> Iterator[BagMessage]:
        """Messages of `topics` (all by default); raw=True yields CDR bytes and accepts any type."""
        wanted = set(self.topics) if topics is None else set(topics)
        missing = wanted - set(self.topics)
        if missing:
            raise BagError(f"bag {self.path} has no topic {sorted(missing)}; it has {sorted(self.topics)}")
        connections = [c for c in self._reader.connections if c.topic in wanted]
        unknown = sorted(f"{c.topic} ({c.msgtype})" for c in connections if c.msgtype not in REGISTRY)
        if unknown and not raw:
            raise BagError(
                f"bag {self.path}: ros_nodes.msgs has no type for {', '.join(unknown)}; "
                "leave those topics out (topics=...) or read raw=True"
            )
        count = 0
        try:
            for connection, timestamp, data in self._reader.messages(connections=connections):
                if raw:
                    message: Any = bytes(data)
                else:
                    try:
                        message = deserialize(data, connection.msgtype)
                    except CdrError as error:
                        raise BagError(f"bag {self.path}: {connection.topic} at {timestamp} ns: {error}") from None
                yield BagMessage(connection.topic, connection.msgtype, timestamp, message)
                count += 1
        except (ReaderError, McapError, EOFError, ValueError) as error:
            raise BagError(f"bag {self.path} is corrupt after {count} messages: {error}") from None

    def close(self) -> None:
        """Release the file."""
        self._reader.close()

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
