"""Sharded on-disk pose dataset: the render driver that writes it (resumable) and the reader that checks it.

Layout of a dataset folder:
    manifest.json      format, version, camera names, image size, shard size, seeds, the shard list
    shard-00000.npz    images (n, cameras, H, W, 3) uint8, position (n, 3) metres in the hand frame,
                       quaternion (n, 4) w-x-y-z, intrinsics (n, cameras, 3, 3), extrinsics (n, cameras, 4, 4)
                       (OpenCV camera-from-hand, see vision.geometry), seeds (n,) int64
render_sample(seed) returns (images (cameras, H, W, 3) uint8, position (3,), quaternion (4,), camera_params) with
camera_params in either form vision.geometry.camera_matrices accepts.
Sample i has randomization seed seed_start + i and lives in shard i // shard_size. Every file is written to a
temporary name and renamed, so a shard file that exists is complete; the manifest marks which shards are done.
"""
from __future__ import annotations

import json
import math
import multiprocessing
import zipfile
import zlib
from collections import OrderedDict, deque
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from tqdm import tqdm

from sim.atomic import atomic_write
from sim.errors import InhandError
from vision.geometry import camera_matrices
from vision.preprocess import preprocess

FORMAT = "inhand-pose-dataset"
VERSION = 1
MANIFEST_NAME = "manifest.json"
ARRAY_NAMES = ("images", "position", "quaternion", "intrinsics", "extrinsics", "seeds")
PLAN_KEYS = ("format", "version", "camera_names", "image_size", "shard_size", "seed_start", "count")
# where the cube states come from; datasets written before this key existed used random actions
DEFAULT_CUBE_STATES = "random actions"

RenderSample = Callable[[int], tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]]


class DatasetError(InhandError, ValueError):
    """A dataset folder, shard or rendered sample that does not match the format."""


def shard_file_name(index: int) -> str:
    """File name of shard `index`."""
    return f"shard-{index:05d}.npz"


def expected_shapes(count: int, camera_count: int, image_size: int) -> dict[str, tuple[tuple[int, ...], str]]:
    """Array name -> (shape, dtype kind) of a shard holding `count` samples."""
    return {
        "images": ((count, camera_count, image_size, image_size, 3), "u1"),
        "position": ((count, 3), "f"),
        "quaternion": ((count, 4), "f"),
        "intrinsics": ((count, camera_count, 3, 3), "f"),
        "extrinsics": ((count, camera_count, 4, 4), "f"),
        "seeds": ((count,), "i"),
    }


def check_sample(sample: Any, seed: int, camera_count: int, image_size: int) -> dict[str, np.ndarray]:
    """Validate one render_sample(seed) result and return its arrays by name (without the batch axis)."""
    if not isinstance(sample, (tuple, list)) or len(sample) != 4:
        raise DatasetError(
            f"render_sample({seed}) must return (images, position, quaternion, camera_params), got {type(sample)}"
        )
    images, position, quaternion, camera_params = sample
    if not isinstance(camera_params, dict):
        raise DatasetError(f"render_sample({seed}): camera_params must be a dict, got {type(camera_params)}")
    try:
        intrinsics, extrinsics = camera_matrices(camera_params, image_size)
    except ValueError as error:
        raise DatasetError(f"render_sample({seed}): {error}") from None
    arrays = {
        "images": np.asarray(images),
        "position": np.asarray(position, np.float64),
        "quaternion": np.asarray(quaternion, np.float64),
        "intrinsics": intrinsics,
        "extrinsics": extrinsics,
        "seeds": np.asarray(seed, np.int64),
    }
    for name, (shape, kind) in expected_shapes(1, camera_count, image_size).items():
        array = arrays[name]
        if array.shape != shape[1:] or (kind == "u1" and array.dtype != np.uint8):
            raise DatasetError(
                f"render_sample({seed}): {name} must be {shape[1:]} {'uint8' if kind == 'u1' else 'numbers'}, "
                f"got {array.shape} {array.dtype}"
            )
        if kind == "f" and not np.all(np.isfinite(array)):
            raise DatasetError(f"render_sample({seed}): {name} holds NaN or inf")
    norm = np.linalg.norm(arrays["quaternion"])
    if abs(norm - 1.0) > 1e-3:
        raise DatasetError(f"render_sample({seed}): quaternion must be unit length, got norm {norm:.6f}")
    return arrays


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to `path` through a temporary file and a rename."""
    atomic_write(path, lambda temporary: temporary.write_text(json.dumps(data, indent=2) + "\n"))


def write_shard(path: Path, arrays: dict[str, np.ndarray], compress: bool = True) -> None:
    """Write one shard's arrays to `path` atomically."""
    def write(temporary: Path) -> None:
        with open(temporary, "wb") as handle:
            (np.savez_compressed if compress else np.savez)(handle, **arrays)

    atomic_write(path, write)


def plan_manifest(
    count: int, seed_start: int, shard_size: int, camera_names: Sequence[str], image_size: int, compress: bool
) -> dict[str, Any]:
    """The manifest of a dataset before any shard is written."""
    shards = []
    for index in range(math.ceil(count / shard_size)):
        first = index * shard_size
        shards.append(
            {
                "file": shard_file_name(index),
                "count": min(shard_size, count - first),
                "first_seed": seed_start + first,
                "done": False,
            }
        )
    return {
        "format": FORMAT,
        "version": VERSION,
        "camera_names": list(camera_names),
        "image_size": image_size,
        "shard_size": shard_size,
        "seed_start": seed_start,
        "count": count,
        "compress": compress,
        "complete": False,
        "shards": shards,
    }


def read_manifest(root: str | Path) -> dict[str, Any]:
    """Load and check a dataset's manifest.json."""
    path = Path(root) / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise DatasetError(f"{path}: no dataset manifest here (render one with `inhand vision render`)") from None
    except json.JSONDecodeError as error:
        raise DatasetError(f"{path}: manifest is not valid JSON: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DatasetError(f"{path}: not an {FORMAT} manifest")
    if manifest.get("version") != VERSION:
        raise DatasetError(f"{path}: manifest version {manifest.get('version')!r}, this code reads {VERSION}")
    missing = [key for key in (*PLAN_KEYS, "shards") if key not in manifest]
    if missing:
        raise DatasetError(f"{path}: manifest lacks keys {missing}")
    return manifest


def shard_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Array name -> (shape, dtype) of an npz file, read from the headers only; DatasetError if unreadable."""
    headers = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                with archive.open(member) as handle:
                    version = np.lib.format.read_magic(handle)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
                    else:
                        shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
                headers[member.removesuffix(".npy")] = (shape, dtype)
    except FileNotFoundError:
        raise DatasetError(f"{path}: shard file is missing") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, zlib.error) as error:
        raise DatasetError(f"{path}: shard file is corrupt or not an npz archive ({error})") from None
    return headers


def check_shard(path: Path, count: int, camera_count: int, image_size: int) -> None:
    """Raise DatasetError naming `path` unless its arrays have the shapes and types of `count` samples."""
    headers = shard_headers(path)
    for name, (shape, kind) in expected_shapes(count, camera_count, image_size).items():
        if name not in headers:
            raise DatasetError(f"{path}: shard lacks the array '{name}'")
        actual_shape, dtype = headers[name]
        if tuple(actual_shape) != shape:
            raise DatasetError(f"{path}: '{name}' has shape {tuple(actual_shape)}, expected {shape}")
        if not dtype.str[1:].startswith(kind):
            raise DatasetError(f"{path}: '{name}' has dtype {dtype}, expected kind '{kind}'")


def load_shard(path: Path, names: Sequence[str] = ARRAY_NAMES) -> dict[str, np.ndarray]:
    """Read arrays of one shard into memory; DatasetError naming the file if it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in names}
    except FileNotFoundError:
        raise DatasetError(f"{path}: shard file is missing") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, zlib.error) as error:
        raise DatasetError(f"{path}: shard file is corrupt ({error})") from None


def _shard_is_done(path: Path, shard: dict[str, Any], camera_count: int, image_size: int) -> bool:
    """Whether `path` holds exactly the planned shard (right shapes and seeds)."""
    if not path.exists():
        return False
    try:
        check_shard(path, shard["count"], camera_count, image_size)
        seeds = load_shard(path, ("seeds",))["seeds"]
    except DatasetError:
        return False
    return bool(np.array_equal(seeds, shard["first_seed"] + np.arange(shard["count"])))


_worker_render: RenderSample | None = None
_worker_shape: tuple[int, int] = (0, 0)


def _init_worker(render_sample: RenderSample, camera_count: int, image_size: int) -> None:
    global _worker_render, _worker_shape
    _worker_render = render_sample
    _worker_shape = (camera_count, image_size)


def _render_chunk_in_worker(seeds: list[int]) -> list[dict[str, np.ndarray]]:
    assert _worker_render is not None, "worker used before its initializer ran"
    return [check_sample(_worker_render(seed), seed, *_worker_shape) for seed in seeds]


def render_dataset(
    render_sample: RenderSample,
    count: int,
    out_dir: str | Path,
    *,
    camera_names: Sequence[str],
    image_size: int,
    seed_start: int = 0,
    shard_size: int = 256,
    workers: int = 0,
    compress: bool = True,
    start_method: str = "spawn",
    progress: bool = True,
    cube_states: str = DEFAULT_CUBE_STATES,
) -> dict[str, Any]:
    """Render `count` samples with render_sample(seed) into shards under `out_dir`; resumes a partial dataset.

    Shards already complete on disk are kept untouched; only missing ones are rendered. `workers` > 0 renders in
    that many processes started with `start_method` ("spawn" or "forkserver": EGL hangs in forked children);
    render_sample must then be picklable (a module-level function or functools.partial of one).
    `cube_states` names where render_sample's cube states come from; a partial dataset only resumes with the
    same. Returns the final manifest.
    """
    if count < 1 or shard_size < 1:
        raise DatasetError(f"count and shard_size must be >= 1, got {count} and {shard_size}")
    if start_method not in ("spawn", "forkserver"):
        raise DatasetError(f"start_method must be 'spawn' or 'forkserver' (EGL hangs after fork), got {start_method!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = {**plan_manifest(count, seed_start, shard_size, camera_names, image_size, compress),
                "cube_states": cube_states}
    manifest_path = out_dir / MANIFEST_NAME
    if manifest_path.exists():
        existing = {"cube_states": DEFAULT_CUBE_STATES, **read_manifest(out_dir)}
        for key in (*PLAN_KEYS, "cube_states"):
            if existing[key] != manifest[key]:
                raise DatasetError(
                    f"{manifest_path}: existing dataset has {key}={existing[key]!r} but this run asks for "
                    f"{manifest[key]!r}; use another folder or the same settings to resume"
                )
    for stale in out_dir.glob(".*.tmp-*"):
        stale.unlink()
    camera_count = len(camera_names)
    for shard in manifest["shards"]:
        shard["done"] = _shard_is_done(out_dir / shard["file"], shard, camera_count, image_size)
    write_json_atomic(manifest_path, manifest)

    pending = [shard for shard in manifest["shards"] if not shard["done"]]
    seeds = [shard["first_seed"] + offset for shard in pending for offset in range(shard["count"])]
    done_count = count - len(seeds)
    with tqdm(total=count, initial=done_count, desc="render", unit="sample", disable=not progress) as bar:
        samples = _render_stream(render_sample, seeds, workers, start_method, camera_count, image_size)
        try:
            for shard in pending:
                arrays = [next(samples) for _ in range(shard["count"])]
                batch = {name: np.stack([sample[name] for sample in arrays]) for name in ARRAY_NAMES}
                write_shard(out_dir / shard["file"], batch, compress)
                shard["done"] = True
                write_json_atomic(manifest_path, manifest)
                bar.update(shard["count"])
        finally:
            samples.close()
    manifest["complete"] = True
    write_json_atomic(manifest_path, manifest)
    return manifest


def _render_stream(
    render_sample: RenderSample, seeds: list[int], workers: int, start_method: str, camera_count: int, image_size: int
) -> Iterator[dict[str, np.ndarray]]:
    """Checked samples for `seeds`, in order, rendered here or in a process pool with a bounded queue."""
    if workers <= 0:
        for seed in seeds:
            yield check_sample(render_sample(seed), seed, camera_count, image_size)
        return
    chunk = max(1, min(8, len(seeds) // (4 * workers)))
    chunks = iter([seeds[start : start + chunk] for start in range(0, len(seeds), chunk)])
    context = multiprocessing.get_context(start_method)
    # An executor (unlike multiprocessing.Pool) fails loudly when a worker dies instead of replacing it forever.
    with ProcessPoolExecutor(workers, context, _init_worker, (render_sample, camera_count, image_size)) as executor:
        in_flight: deque[Future] = deque()
        try:
            for seeds_chunk in chunks:
                in_flight.append(executor.submit(_render_chunk_in_worker, seeds_chunk))
                if len(in_flight) >= 2 * workers:
                    yield from in_flight.popleft().result()
            while in_flight:
                yield from in_flight.popleft().result()
        finally:
            for future in in_flight:
                future.cancel()


def validation_mask(seeds: np.ndarray, fraction: float) -> np.ndarray:
    """Which samples (by randomization seed) are held out: a fixed hash of the seed below `fraction`."""
    with np.errstate(over="ignore"):
        hashed = (np.atleast_1d(np.asarray(seeds, dtype=np.uint64)) + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
    uniform = (hashed >> np.uint64(11)).astype(np.float64) / float(2**53)
    return uniform < fraction


class PoseDataset(torch.utils.data.Dataset):
    """One or more rendered dataset folders as a torch Dataset of preprocessed samples.

    Opening checks every manifest and every shard's presence, readability and array shapes, raising DatasetError
    naming the file; folders read together must share cameras and image size. Items are dicts: images (cameras, S,
    S, 3) float32 from vision.preprocess at `input_size`, position (3,) and quaternion (4,) float32, index (int).
    Shards load whole and the last `cache_shards` stay in memory, so iterate in shard-grouped order (see
    shard_grouped_batches).
    """

    def __init__(
        self,
        roots: str | Path | Sequence[str | Path],
        input_size: int,
        camera_count: int | None = None,
        allow_incomplete: bool = False,
        cache_shards: int = 2,
        crop: float = 1.0,
    ):
        self.roots = [Path(roots)] if isinstance(roots, (str, Path)) else [Path(root) for root in roots]
        if not self.roots:
            raise DatasetError("no dataset folder given")
        manifests = [read_manifest(root) for root in self.roots]
        self.manifest = manifests[0]
        for root, manifest in zip(self.roots[1:], manifests[1:]):
            for key in ("camera_names", "image_size"):
                if manifest[key] != self.manifest[key]:
                    raise DatasetError(
                        f"{root / MANIFEST_NAME}: {key} {manifest[key]} differs from {self.manifest[key]} in "
                        f"{self.roots[0] / MANIFEST_NAME}; datasets read together must share it"
                    )
        self.input_size = input_size
        self.crop = crop
        self.camera_count = len(self.manifest["camera_names"])
        if camera_count is not None and camera_count != self.camera_count:
            raise DatasetError(
                f"{self.roots[0] / MANIFEST_NAME}: dataset has {self.camera_count} cameras, the model takes "
                f"{camera_count}"
            )
        self.cache_shards = max(1, cache_shards)
        self._cache: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()
        self.shard_paths: list[Path] = []
        counts, seeds, positions = [], [], []
        for root, manifest in zip(self.roots, manifests):
            shards = manifest["shards"]
            if not manifest.get("complete", False) and not allow_incomplete:
                done = sum(1 for shard in shards if shard.get("done"))
                raise DatasetError(
                    f"{root / MANIFEST_NAME}: dataset incomplete ({done} of {len(shards)} shards done); "
                    "resume `inhand vision render` with the same settings"
                )
            finished = [shard for shard in shards if shard.get("done")]
            if not finished:
                raise DatasetError(f"{root / MANIFEST_NAME}: dataset holds no finished shard")
            for shard in finished:
                path = root / shard["file"]
                check_shard(path, shard["count"], self.camera_count, self.manifest["image_size"])
                labels = load_shard(path, ("seeds", "position"))
                seeds.append(labels["seeds"])
                positions.append(labels["position"])
                self.shard_paths.append(path)
                counts.append(shard["count"])
        self.seeds = np.concatenate(seeds)
        self.positions = np.concatenate(positions)  # (N, 3) m, for the position normalization without images
        self.shard_starts = np.concatenate(([0], np.cumsum(counts)))
        self.shard_of_index = np.repeat(np.arange(len(counts)), counts)

    def __len__(self) -> int:
        return int(self.shard_starts[-1])

    def raw(self, index: int) -> dict[str, np.ndarray]:
        """Stored arrays of sample `index` (images at the stored size, camera parameters, seed)."""
        if not 0 <= index < len(self):
            raise IndexError(f"sample index {index} outside [0, {len(self)})")
        shard_index = int(self.shard_of_index[index])
        arrays = self._shard(shard_index)
        offset = index - int(self.shard_starts[shard_index])
        return {name: array[offset] for name, array in arrays.items()}

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.raw(int(index))
        return {
            "images": preprocess(sample["images"], self.input_size, self.camera_count, self.crop)[0],
            "position": torch.as_tensor(sample["position"], dtype=torch.float32),
            "quaternion": torch.as_tensor(sample["quaternion"], dtype=torch.float32),
            "index": int(index),
        }

    def _shard(self, shard_index: int) -> dict[str, np.ndarray]:
        if shard_index in self._cache:
            self._cache.move_to_end(shard_index)
            return self._cache[shard_index]
        arrays = load_shard(self.shard_paths[shard_index])
        self._cache[shard_index] = arrays
        while len(self._cache) > self.cache_shards:
            self._cache.popitem(last=False)
        return arrays


def shard_grouped_batches(
    indices: np.ndarray, shard_of_index: np.ndarray, batch_size: int, rng: np.random.Generator
) -> list[list[int]]:
    """Batches of `indices` in random order that visit one shard at a time, so each shard loads once per epoch."""
    indices = np.asarray(indices)
    groups = [indices[shard_of_index[indices] == shard] for shard in np.unique(shard_of_index[indices])]
    order = np.concatenate([rng.permutation(groups[i]) for i in rng.permutation(len(groups))]) if groups else indices
    return [order[start : start + batch_size].tolist() for start in range(0, len(order), batch_size)]
