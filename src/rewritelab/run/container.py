"""The zip container of checkpoint.pt, verified whole before `torch.load` reads any of it.

`torch.load` trusts the zip's central directory (sizes, offsets, compression method, flags) and checks no
CRC; Python's `zipfile`, which checks CRCs, reads that directory differently. So a bit flipped outside the
tensor bytes could load as other data, or end in an exception deep inside torch or zipfile. This module
accepts exactly the layout that torch.save writes (torch 2.x: miniz inside `PyTorchStreamWriter`, zip64
end records always, zip64 fields past 4 GiB), and refuses anything else in one sentence:

    per member, back to back from offset 0: local header, name, extra field (a zip64 field for offsets
    or sizes past 4 GiB, then torch's 'FB' alignment padding of b'Z's), the bytes (stored), and a data
    descriptor (none for an empty member); then the central directory, the zip64 end record, the zip64
    locator and the end record, ending the file.

Every header field must hold the value torch writes (method stored, flags "sizes in a descriptor" and
"UTF-8 names" only — so no encryption —, no times, attributes or comments); each member's local header,
descriptor and central record must agree (name, sizes, CRC, flags, offset); the members must tile the file
in central-directory order, each named once; the end records must agree with each other and with the
directory; and every member's bytes must match their CRC-32. A single flipped bit anywhere breaks one of
these. The cost is one sequential read of the file.
"""

from __future__ import annotations

import os
import struct
import zlib
from typing import BinaryIO, NamedTuple

LOCAL = struct.Struct("<4sHHHHHIIIHH")  # signature ... name length, extra length
CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
DESCRIPTOR = struct.Struct("<4sIII")
DESCRIPTOR64 = struct.Struct("<4sIQQ")
ZIP64_END = struct.Struct("<4sQHHIIQQQQ")
ZIP64_LOCATOR = struct.Struct("<4sIQI")
END = struct.Struct("<4sHHHHIIH")
TAIL = ZIP64_END.size + ZIP64_LOCATOR.size + END.size  # the three end records torch writes, in order
U16, U32 = 0xFFFF, 0xFFFFFFFF
FLAGS = 0x0808  # bit 3: CRC and sizes follow the data in a descriptor; bit 11: names in UTF-8
FLAGS_EMPTY = 0x0800  # an empty member has no descriptor
PADDING_ID = 0x4246  # b"FB": torch's extra field that aligns tensor bytes, filled with b"Z"
CHUNK = 1 << 20


class Damaged(Exception):
    """What is wrong with the container, as part of a sentence."""


class NotAZip(Damaged):
    """No zip end record ends the file: not a checkpoint at all (or cut short)."""


class Member(NamedTuple):
    name: bytes
    crc: int
    size: int
    offset: int
    zip64: bytes  # the central record's zip64 extra field (b"" below 4 GiB)


def verify_container(path: str | os.PathLike) -> None:
    """Raise `Damaged` unless `path` is a zip exactly as torch.save writes it, every member's CRC intact."""
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        members, directory = _directory(file, size)
        position = 0
        for member in members:
            position = _check_member(file, member, position)
        if position != directory:
            raise Damaged(f"{directory - position} bytes between the last member and the central directory")


def _read(file: BinaryIO, offset: int, n: int) -> bytes:
    file.seek(offset)
    data = file.read(n)
    if len(data) != n:
        raise Damaged(f"a record at byte {offset} runs past the end of the file")
    return data


def _directory(file: BinaryIO, size: int) -> tuple[list[Member], int]:
    """The members the central directory lists, in its order, and the directory's offset."""
    if size < TAIL:
        raise NotAZip("no zip end record")
    tail = _read(file, size - TAIL, TAIL)
    z64 = ZIP64_END.unpack_from(tail)
    locator = ZIP64_LOCATOR.unpack_from(tail, ZIP64_END.size)
    end = END.unpack_from(tail, ZIP64_END.size + ZIP64_LOCATOR.size)
    if end[0] != b"PK\x05\x06":
        raise NotAZip("no zip end record")
    count, dir_size, offset = z64[7:]
    if (
        z64[:6] != (b"PK\x06\x06", ZIP64_END.size - 12, 0x031E, 45, 0, 0)
        or z64[6] != count
        or locator != (b"PK\x06\x07", 0, size - TAIL, 1)
        or end[1:] != (0, 0, min(count, U16), min(count, U16), min(dir_size, U32), min(offset, U32), 0)
    ):
        raise Damaged("the zip end records disagree with each other or with what torch writes")
    if offset + dir_size != size - TAIL:
        raise Damaged("the central directory's size and offset do not fit the file")
    directory = _read(file, offset, dir_size)
    members: list[Member] = []
    at = 0
    while at < dir_size:
        members.append(_central_record(directory, at))
        at += CENTRAL.size + len(members[-1].name) + len(members[-1].zip64)
    if len(members) != count:
        raise Damaged(f"the central directory lists {len(members)} members, its end record {count}")
    if len({m.name for m in members}) != len(members):
        raise Damaged("the central directory lists a member twice")
    return members, offset


def _central_record(directory: bytes, at: int) -> Member:
    if at + CENTRAL.size > len(directory):
        raise Damaged("the central directory ends inside a record")
    record = CENTRAL.unpack_from(directory, at)
    sig, made_by, needed, flags, method, time, date, crc, csize, usize, n, extra = record[:12]
    comment, disk, iattr, eattr, offset = record[12:]
    name = directory[at + CENTRAL.size : at + CENTRAL.size + n]
    field = directory[at + CENTRAL.size + n : at + CENTRAL.size + n + extra]
    what = f"the central directory record of {_show(name)}"
    if len(name) + len(field) != n + extra:
        raise Damaged(f"{what} runs past the central directory")
    if method != 0:
        raise Damaged(f"{what} names compression method {method}; torch stores members uncompressed (0)")
    if (sig, made_by, needed, time, date, comment, disk, iattr, eattr) != (b"PK\x01\x02", *[0] * 8):
        raise Damaged(f"{what} is not one torch writes (signature, versions, time, attributes or comment)")
    if csize != usize:
        raise Damaged(f"{what} gives stored bytes two sizes")
    size, offset = _zip64_values(field, usize, offset, what)
    if flags != (FLAGS if size else FLAGS_EMPTY):
        raise Damaged(f"{what} has flags {flags:#06x}, not the {FLAGS:#06x} torch writes (0x0001: encrypted)")
    return Member(name, crc, size, offset, field)


def _zip64_values(field: bytes, usize: int, offset: int, what: str) -> tuple[int, int]:
    """(size, offset) of a member whose 32-bit fields may defer to a zip64 extra field, which must be the
    one torch writes for those values (both sizes when the size reaches 4 GiB, the offset when it does)."""
    values = struct.unpack_from(f"<{(len(field) - 4) // 8}Q", field, 4) if len(field) >= 12 else ()
    wide_size, wide_offset = usize == U32, offset == U32
    if len(values) == 2 * wide_size + wide_offset:
        size = values[0] if wide_size else usize
        offset = values[-1] if wide_offset else offset
        if field == _zip64_field(size, size, offset):
            return size, offset
    raise Damaged(f"{what} has a zip64 field that does not match its sizes and offset")


def _zip64_field(size: int, csize: int, offset: int) -> bytes:
    """The zip64 extra field miniz writes for a member (b"" when neither size nor offset needs one)."""
    values = ([size, csize] if size >= U32 else []) + ([offset] if offset >= U32 else [])
    if not values:
        return b""
    return struct.pack(f"<HH{len(values)}Q", 1, 8 * len(values), *values)


def _check_member(file: BinaryIO, member: Member, position: int) -> int:
    """Check one member's local header, bytes and descriptor, starting at `position` (where the previous
    member ended); return where this one ends."""
    what = _show(member.name)
    if member.offset != position:
        raise Damaged(f"{what} is not where the previous member ends (its offset is {member.offset})")
    header = LOCAL.unpack(_read(file, position, LOCAL.size))
    flags = FLAGS if member.size else FLAGS_EMPTY
    if header[:9] != (b"PK\x03\x04", 0, flags, 0, 0, 0, 0, 0, 0) or header[9] != len(member.name):
        raise Damaged(f"the local header of {what} disagrees with its central directory record")
    name_and_extra = _read(file, position + LOCAL.size, header[9] + header[10])
    name, extra = name_and_extra[: header[9]], name_and_extra[header[9] :]
    zip64 = _zip64_field(member.size, 0, member.offset)  # miniz writes the size still unknown as 0 here
    filler = len(extra) - len(zip64) - 4  # the b"Z"s after the padding field's id and length
    padding = struct.pack("<HH", PADDING_ID, filler) + b"Z" * filler if filler >= 0 else None
    if name != member.name or padding is None or extra != zip64 + padding:
        raise Damaged(f"the local header of {what} disagrees with its central directory record")
    start = position + LOCAL.size + len(name_and_extra)
    if _crc(file, start, member.size) != member.crc:
        raise Damaged(f"{what} fails its CRC-32 check")
    end = start + member.size
    if not member.size:
        return end
    form = DESCRIPTOR64 if member.zip64 else DESCRIPTOR  # 64-bit sizes where the member has a zip64 field
    if form.unpack(_read(file, end, form.size)) != (b"PK\x07\x08", member.crc, member.size, member.size):
        raise Damaged(f"the data descriptor of {what} disagrees with its central directory record")
    return end + form.size


def _crc(file: BinaryIO, start: int, size: int) -> int:
    file.seek(start)
    crc, left = 0, size
    while left:
        chunk = file.read(min(CHUNK, left))
        if not chunk:
            raise Damaged(f"a member's bytes run past the end of the file (at byte {start + size - left})")
        crc, left = zlib.crc32(chunk, crc), left - len(chunk)
    return crc


def _show(name: bytes) -> str:
    """A member's name for a one-line message: escaped where not printable (a damaged name may hold any
    byte, a newline included), cut at 80 characters."""
    text = name.decode("utf-8", "backslashreplace")
    text = text if text.isprintable() else repr(text)
    return text if len(text) <= 80 else text[:79] + "…"
