"""The workspace size limit: a watcher that measures the step's workspace while it runs.

RLIMIT_FSIZE caps each file, not their sum, and the workspace is an ordinary host directory
(bind-mounted by bwrap and docker, so later steps can copy its artifacts), so the total is
measured from the host: every ``INTERVAL_S`` while the command runs, and once more when it has
ended. The command is killed as soon as the total passes the limit. Each entry counts the
larger of its apparent size, its allocated blocks and one 4 KiB block, so sparse files and
floods of empty files count too (and a flood of files cannot make the scan itself slow: it
stops as soon as the limit is passed).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

INTERVAL_S = 0.05
_MIN_ENTRY = 4096


def usage(root: Path, stop_above: int) -> int:
    """Bytes charged to ``root``'s tree (links not followed); stops counting above ``stop_above``."""
    total = 0
    pending = [str(root)]
    while pending:
        try:
            listing = os.scandir(pending.pop())
        except OSError:
            continue  # removed or unreadable while we looked: the next scan sees it again
        with listing:
            for entry in listing:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                total += max(st.st_size, st.st_blocks * 512, _MIN_ENTRY)
                if total > stop_above:
                    return total
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
    return total


async def over(root: Path, limit: int) -> bool:
    """Whether ``root`` holds more than ``limit`` bytes now (the scan runs in a thread)."""
    return await asyncio.to_thread(usage, root, limit) > limit


async def watch(root: Path, limit: int) -> None:
    """Return once ``root`` holds more than ``limit`` bytes; run as a task and cancel it."""
    while True:
        await asyncio.sleep(INTERVAL_S)
        if await over(root, limit):
            return
