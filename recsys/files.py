"""Reading data files at the boundary: what may be opened, how big, in which encoding.

Every byte a loader reads from a user's copy comes through here, so every copy gets
the same checks: only regular files (a device such as /dev/zero or a FIFO would be read
forever or block), a size limit per file (for a zip member, on the size its header
declares, which zipfile never reads past), text that decodes, and tables whose every
line has the right fields.
"""
from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from recsys.errors import UserError

GiB = 1 << 30
MiB = 1 << 20
# ML-25M's ratings.csv, the largest table read, is 0.68 GB: 4 GiB leaves room for a
# synthetic copy of about 150M ratings and still stops a runaway read.
MAX_RATINGS_BYTES = 4 * GiB
# Movies and users tables are read whole into Python; ML-25M's movies.csv is 3 MB.
MAX_TABLE_BYTES = 256 * MiB


def check_path(path: Path) -> Path:
    """`path` if it is an existing folder or regular file, else a one-line UserError."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise UserError(f"data path {path} does not exist") from None
    except OSError as exc:
        raise UserError(f"cannot read data path {path}: {exc.strerror or exc}") from None
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        raise UserError(f"data path {path} is not a regular file or folder")
    return path


def check_file(path: Path, limit: int) -> int:
    """The size of the regular file at `path`, or a UserError if it is not one or is over `limit`."""
    try:
        st = os.stat(path)  # follows symlinks: a link to /dev/zero is a device
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"{path} is not a regular file")
    if st.st_size > limit:
        raise UserError(f"{path} is {st.st_size:,} bytes, over the {limit:,}-byte limit for this table")
    return st.st_size


class Container:
    """A GroupLens copy, a folder or a zip, whose tables are opened through the checks.

    A table is found as `<folder>/<name>` for the first of `folders` that has it, else as
    `<name>`; in a zip, under one of `folders`, else as the only member of that name.
    """

    def __init__(self, path: str | os.PathLike, folders: tuple[str, ...] = ()):
        self.path = check_path(Path(path))
        self.folders = folders  # sub-folders to look in first, most preferred first
        self._zip: zipfile.ZipFile | None = None
        self._members: dict[str, list[zipfile.ZipInfo]] = {}
        if not self.path.is_dir():
            check_file(self.path, MAX_RATINGS_BYTES)
            try:
                self._zip = zipfile.ZipFile(self.path)
            except (zipfile.BadZipFile, OSError):
                raise UserError(f"data path {self.path} is neither a MovieLens folder nor a zip") from None
            for info in self._zip.infolist():
                if not info.is_dir():
                    self._members.setdefault(Path(info.filename).name, []).append(info)

    def __enter__(self) -> "Container":
        return self

    def __exit__(self, *exc) -> None:
        if self._zip is not None:
            self._zip.close()

    # ------------------------------------------------------------------ finding tables
    def _dir_file(self, name: str) -> Path | None:
        for base in [self.path / f for f in self.folders] + [self.path]:
            if os.path.lexists(base / name):
                return base / name
        return None

    def _zip_member(self, name: str) -> zipfile.ZipInfo | None:
        infos = self._members.get(name, [])
        for folder in self.folders:
            for info in infos:
                if Path(info.filename).parent.name == folder:
                    return info
        return infos[0] if len(infos) == 1 else None

    def has(self, name: str) -> bool:
        """Whether the copy holds a table called `name`."""
        return (self._dir_file(name) if self._zip is None else self._zip_member(name)) is not None

    def location(self, name: str) -> str:
        """Where `name` is, for messages: a path, or zip:member."""
        if self._zip is None:
            found = self._dir_file(name)
            return str(found) if found else str(self.path / name)
        info = self._zip_member(name)
        return f"{self.path}:{info.filename}" if info else f"{self.path}:{name}"

    def hint(self) -> str:
        """The name of the folder the tables sit in (a dataset hint), or ''."""
        if self._zip is None:
            for name in ("u.data", "ratings.dat", "ratings.csv"):
                found = self._dir_file(name)
                if found:
                    return found.resolve().parent.name
            return self.path.resolve().name
        for name in ("u.data", "ratings.dat", "ratings.csv"):
            info = self._zip_member(name)
            if info:
                return Path(info.filename).parent.name or self.path.stem
        return self.path.stem

    # ------------------------------------------------------------------ reading tables
    def open(self, name: str, limit: int) -> BinaryIO:
        """A binary stream of table `name`, failing past `limit` bytes."""
        if self._zip is None:
            found = self._dir_file(name)
            if found is None:
                raise UserError(f"{self.path}: no {name} in this copy")
            check_file(found, limit)
            return open(found, "rb")
        info = self._zip_member(name)
        if info is None:
            raise UserError(f"{self.path}: no {name} in this zip")
        if info.file_size > limit:
            raise UserError(f"{self.location(name)} is {info.file_size:,} bytes, over the {limit:,}-byte limit")
        # zipfile stops a member at the size its header declares (a member that would
        # inflate past it fails its CRC check), so the check above bounds the read.
        return self._zip.open(info)

    def read(self, name: str, limit: int | None = None) -> bytes:
        """All bytes of table `name` (at most `limit`, default `MAX_TABLE_BYTES`)."""
        try:
            with self.open(name, MAX_TABLE_BYTES if limit is None else limit) as stream:
                return stream.read()
        except (OSError, zipfile.BadZipFile, EOFError) as exc:
            raise UserError(f"cannot read {self.location(name)}: {exc}") from None


# ---------------------------------------------------------------------- text tables
def decode(raw: bytes, where: str, native: str) -> str:
    """Text of a table written in `native` encoding, or in UTF-8.

    A GroupLens Latin-1 file re-saved as UTF-8 is valid UTF-8 and decodes to the same
    titles, so it is read as UTF-8 (same content, same fingerprint, same run ids).
    Latin-1 text with accents is practically never valid UTF-8 (an accented letter is
    one byte >= 0x80 followed by ASCII), so valid UTF-8 is taken as UTF-8 and anything
    else as the native encoding; a native-UTF-8 table that does not decode is refused.
    """
    if b"\x00" in raw:
        raise UserError(f"{where}: binary data (NUL bytes), not a text table")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if native.lower().replace("_", "-") in ("utf-8", "utf8"):
            line = raw.count(b"\n", 0, exc.start) + 1
            raise UserError(f"{where}: line {line}: not UTF-8 text") from None
        return raw.decode(native)


def lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) for every non-blank line, without its line ending.

    Splits on \\n only: str.splitlines would also split on \\x85, a Latin-1 byte.
    """
    for number, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if line.strip():
            yield number, line


def bad_line(where: str, number: int, line: str, problem: str) -> UserError:
    """The one-line error for a malformed line, quoting (the start of) the line."""
    shown = line if len(line) <= 60 else line[:57] + "..."
    return UserError(f"{where}: line {number}: {problem}: {shown!r}")


# ---------------------------------------------------------------------- numeric tables
def read_numeric(open_stream: Callable[[], BinaryIO], where: str, delimiter: str,
                 columns: dict[str, pa.DataType], header: tuple[str, ...] | None = None,
                 empty: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """A delimited table of numbers as NumPy columns, read by pyarrow (columnar, fast).

    `columns` names every field in order with its type; fields listed in `empty` must be
    empty on every line (how "a::b" splits on ":"). With `header`, the first line must be
    exactly those names. Any malformed line gives a one-line error naming its number.
    """
    names = list(columns)
    read_opts = pacsv.ReadOptions(column_names=None if header else names, block_size=16 * MiB)
    parse_opts = pacsv.ParseOptions(delimiter=delimiter, quote_char=False)
    convert = pacsv.ConvertOptions(
        column_types=({h: columns[n] for h, n in zip(header, names)} if header else columns),
        null_values=[], strings_can_be_null=False, quoted_strings_can_be_null=False)
    try:
        with open_stream() as stream:
            table = pacsv.read_csv(stream, read_options=read_opts, parse_options=parse_opts,
                                   convert_options=convert)
    except pa.ArrowInvalid as exc:
        if "Empty CSV" in str(exc):
            raise UserError(f"{where}: empty file") from None
        raise _diagnose(open_stream, where, delimiter, columns, header, empty, str(exc)) from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise UserError(f"cannot read {where}: {exc}") from None
    if header and tuple(table.column_names) != header:
        raise UserError(f"{where}: header is {','.join(table.column_names)!r}, expected {','.join(header)!r}")
    table = table.rename_columns(names)
    for name in empty:
        if len(table) and pc.max(pc.utf8_length(table[name])).as_py() > 0:
            raise _diagnose(open_stream, where, delimiter, columns, header, empty, "non-empty separator field")
    table = table.drop_columns(list(empty))
    out = {}
    for name in table.column_names:  # one column at a time, each freed once copied
        out[name] = table[name].to_numpy()
        table = table.drop_columns([name])
    del table
    pa.default_memory_pool().release_unused()  # give the parser's buffers back to the system
    return out


def _diagnose(open_stream, where, delimiter, columns, header, empty, arrow_message) -> UserError:
    """Find the first malformed line (a slow scan, run only when reading failed)."""
    shown_sep = "::" if empty else delimiter
    want = len(columns) - len(empty)
    kinds = [t for n, t in columns.items() if n not in empty]
    try:
        with open_stream() as stream:
            for number, raw in enumerate(io.TextIOWrapper(stream, encoding="latin-1", newline="\n"), 1):
                line = raw.rstrip("\r\n")
                if number == 1 and header:
                    continue
                if not line:
                    continue
                fields = line.split(shown_sep)
                if len(fields) != want:
                    return bad_line(where, number, line, f"expected {want} fields separated by {shown_sep!r}, got {len(fields)}")
                for value, kind in zip(fields, kinds):
                    try:
                        int(value) if pa.types.is_integer(kind) else float(value)
                    except ValueError:
                        what = "an integer" if pa.types.is_integer(kind) else "a number"
                        return bad_line(where, number, line, f"{value!r} is not {what}")
    except UserError as exc:
        return exc
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        return UserError(f"cannot read {where}: {exc}")
    return UserError(f"{where}: malformed table: {arrow_message.splitlines()[0]}")
