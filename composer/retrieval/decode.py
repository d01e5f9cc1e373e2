"""Read, hash, decode and preprocess library files on a thread pool, a batch or two ahead of the
encoder, so that on a small CPU decoding overlaps the forward pass instead of adding to it.

JPEGs are draft-decoded (DCT scaling) straight to about the encoder's input size: a 12-megapixel
photo then costs a fraction of a full decode. Files whose content is already known (a copy, or a
touched but unchanged file) are hashed but never decoded.
"""
from __future__ import annotations

import collections
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import torch

from composer.images import MAX_FILE_BYTES, ImageError, decode_image_bytes, sha256_bytes
from composer.retrieval.scan import FileEntry


@dataclass(frozen=True)
class Decoded:
    entry: FileEntry
    sha256: str
    width: int
    height: int
    pixels: torch.Tensor | None  # None when the content is already embedded


@dataclass(frozen=True)
class Failed:
    entry: FileEntry
    reason: str


Result = Decoded | Failed


def decode_batches(
    entries: Sequence[FileEntry],
    preprocess: Callable,
    decode_size: int,
    is_known: Callable[[str], bool],
    batch_size: int,
    workers: int,
    prefetch_batches: int = 2,
) -> Iterator[list[Result]]:
    """Yield results batch by batch, in input order, with up to `prefetch_batches` batches being
    decoded while the caller works on the current one."""
    batches = [entries[i : i + batch_size] for i in range(0, len(entries), batch_size)]
    if not batches:
        return
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="library-decode") as pool:
        pending: collections.deque[list[Future]] = collections.deque()
        task = lambda e: _decode_one(e, preprocess, decode_size, is_known)  # noqa: E731
        next_batch = 0
        try:
            while next_batch < len(batches) or pending:
                while next_batch < len(batches) and len(pending) <= prefetch_batches:
                    pending.append([pool.submit(task, e) for e in batches[next_batch]])
                    next_batch += 1
                yield [f.result() for f in pending.popleft()]
        finally:
            for futures in pending:  # the caller stopped early (error, interrupt): drop queued work
                for f in futures:
                    f.cancel()


def _decode_one(entry: FileEntry, preprocess: Callable, decode_size: int, is_known: Callable[[str], bool]) -> Result:
    try:
        data = _read(entry)
        sha = sha256_bytes(data)
        if is_known(sha):
            return Decoded(entry, sha, 0, 0, None)
        loaded = decode_image_bytes(data, entry.path, draft_size=(decode_size, decode_size), sha256=sha)
        return Decoded(entry, sha, loaded.ref.width, loaded.ref.height, preprocess(loaded.image))
    except ImageError as exc:
        return Failed(entry, exc.reason)
    except MemoryError:
        return Failed(entry, "out of memory while decoding")
    except Exception as exc:  # one odd file must never abort a sync of thousands
        return Failed(entry, f"cannot decode ({type(exc).__name__}: {exc})")


def _read(entry: FileEntry) -> bytes:
    # The same checks composer.images.load_image makes, kept here because we hash before decoding.
    if entry.size == 0:
        raise ImageError(entry.path, "empty file")
    if entry.size > MAX_FILE_BYTES:
        raise ImageError(entry.path, f"file too large ({entry.size // (1024 * 1024)} MiB)")
    try:
        data = entry.path.read_bytes()
    except OSError as exc:
        raise ImageError(entry.path, f"cannot read file ({exc.strerror or exc})") from exc
    if not data:
        raise ImageError(entry.path, "empty file")
    return data
