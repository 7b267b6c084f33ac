"""Safe file and process primitives: atomic writes, checksums, kernel locks, process identity.

Everything the run store and the job queue build on. Writes go to a unique temporary
name and are renamed into place, so a reader sees the old file or the new one, never a
half-written one, and two writers never share a temporary file. Locks are `flock`s:
the kernel releases them when their holder dies, even by kill -9, so no lock outlives
its process. A pid stored in a file is paired with the process's start time, because
pids are reused (after a reboot pid 1 is always alive).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator


def write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically, through a temporary file unique to this call."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; stored files stay readable as before
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json(path: Path, obj) -> None:
    """Write JSON atomically (unique temp file + rename)."""
    write_bytes(path, json.dumps(obj, indent=2, sort_keys=True).encode())


def sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_record(path: Path) -> dict:
    """What a checksum check compares: size and sha256."""
    return {"size": Path(path).stat().st_size, "sha256": sha256(path)}


def matches(path: Path, record: dict | None) -> str | None:
    """None when `path` has the recorded size and sha256, else why it does not."""
    path = Path(path)
    if not record or "sha256" not in record:
        return f"{path.name} has no recorded checksum"
    try:
        size = path.stat().st_size
    except OSError:
        return f"{path.name} is missing"
    if size != record.get("size"):
        return f"{path.name} has {size} bytes, {record.get('size')} were written"
    if sha256(path) != record["sha256"]:
        return f"{path.name} does not match its checksum"
    return None


def remove_tree(path: Path) -> None:
    """Remove a folder (or a symlink to one: only the link) so no reader sees it half-deleted.

    The folder is first renamed to a unique hidden name beside it, then removed; a
    process still writing into it (an index build) writes into the trash, not into a
    folder that looks like the run.
    """
    path = Path(path)
    if path.is_symlink() or path.is_file():
        path.unlink()
        return
    trash = path.with_name(f".trash-{path.name}-{uuid.uuid4().hex[:8]}")
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


# --------------------------------------------------------------------------- locks
class Locked(Exception):
    """The lock is held by another process (or another open file in this one)."""


@contextlib.contextmanager
def flock(path: Path, blocking: bool = True) -> Iterator[int]:
    """Hold an exclusive `flock` on `path` (created if missing) for the `with` block.

    Raises Locked at once when `blocking` is False and someone else holds it.
    """
    fd = open_lock(path, blocking)
    try:
        yield fd
    finally:
        os.close(fd)  # closing the file releases the lock


def open_lock(path: Path, blocking: bool = True) -> int:
    """Take an exclusive `flock` on `path` and return its fd; closing the fd releases it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        raise Locked(str(path)) from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_lock_within(path: Path, seconds: float) -> int:
    """Like `open_lock`, but wait at most `seconds` for the lock; Locked after that.

    For locks of a process just killed: its main thread is a zombie ("dead" by its
    /proc state) a moment before its other threads close its files and so its locks.
    """
    deadline = time.monotonic() + seconds
    while True:
        try:
            return open_lock(path, blocking=False)
        except Locked:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def is_locked(path: Path) -> bool:
    """True when some process holds the `flock` on `path` right now."""
    try:
        with flock(path, blocking=False):
            return False
    except Locked:
        return True


# --------------------------------------------------------------------------- processes
def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # the command name may hold spaces and ")"
    if fields[0] in ("Z", "X"):  # a zombie has finished
        return None
    return int(fields[19])  # fields[0] is field 3 (state): field 22 is fields[19]


@dataclass(frozen=True)
class ProcessId:
    """A process as a (pid, start time) pair: a reused pid is a different process."""

    pid: int
    start: int

    @classmethod
    def me(cls) -> "ProcessId":
        """This process."""
        return cls.of(os.getpid())

    @classmethod
    def of(cls, pid: int) -> "ProcessId":
        """The process that has `pid` now (start 0 if it is gone)."""
        return cls(pid, start_time(pid) or 0)

    def alive(self) -> bool:
        """True while this very process (same pid and start time) runs."""
        return self.start != 0 and start_time(self.pid) == self.start

    def to_dict(self) -> dict:
        """For JSON files."""
        return {"pid": self.pid, "start": self.start}

    @classmethod
    def from_dict(cls, d) -> "ProcessId | None":
        """Inverse of `to_dict`; None for anything malformed."""
        try:
            return cls(int(d["pid"]), int(d["start"]))
        except (TypeError, KeyError, ValueError):
            return None
