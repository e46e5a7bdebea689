"""Recording files, opened safely: the one place that turns a stored path into bytes a browser may get.

Both the signed CRM links (`/r/<token>`) and the panel's player (`/recordings/<id>/audio`)
serve through here, so the rules live once: the real path (symlinks followed) must lie inside
a configured `[recordings]` folder and be a regular file, opened without following a link
swapped in meanwhile, and streamed from that open file with Range support.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

#: what browsers and CRMs play inline; any other file goes out as bytes, never as something to render


class Refused(Exception):
    """The stored recording path may not be served; the message says why, for the log."""


def resolve(stored: str, folders: Sequence[Path]) -> str:
    """The real path of the file `stored` names, inside one of `folders`; raises Refused otherwise.

    The path is taken literally (never URL-decoded). An absolute one must resolve inside a
    folder; a relative one is tried in each folder and must resolve inside that folder.
    """
    if "\x00" in stored:
        raise Refused("the stored path holds a NUL byte")
    if ".." in re.split(r"[/\\]", stored):
        raise Refused("the stored path climbs out with '..'")
    if not folders:
        raise Refused("no [recordings] folders are configured: name the PBX's recording folders there")
    absolute = os.path.isabs(stored)
    seen: set[str] = set()  # what the path is in each folder: "out", "other" (not a file), "missing"
    for folder in folders:
        root = os.path.realpath(folder)
        real = os.path.realpath(os.path.join(root, stored))  # an absolute `stored` replaces `root`
        if os.path.commonpath([real, root]) != root:
            if not absolute:  # a relative path leaving its folder: a link in there leads out
                seen.add("out")
        elif real != root and os.path.isfile(real):  # `real` has no symlinks left to follow
            return real
        else:
            seen.add("other" if os.path.lexists(real) else "missing")
    if "out" in seen or not seen:
        raise Refused(
            "the file lies outside the [recordings] folders (or a link leads out of them): "
            "add its folder there if it should be served"
        )
    if "other" in seen:
        raise Refused("the stored path is a folder (or a pipe, a device), not a recording file")
    raise Refused("no such file in the recording folders (deleted or moved?)")


def open_regular(real: str) -> tuple[BinaryIO, os.stat_result]:
    """The file opened for reading, if it is still a regular file (not swapped for a link meanwhile)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(real, flags)  # O_NONBLOCK: a FIFO put there must not hold the thread
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise Refused("the stored path is not a regular file")
    return os.fdopen(fd, "rb"), st
