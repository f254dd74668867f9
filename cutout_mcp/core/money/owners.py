"""Who holds a guard or lease: this process's name, and whether another holder's process is dead.

A holder name is `host:pid:boot:token`: the machine, the process id, the machine's boot id (Linux
`/proc/sys/kernel/random/boot_id`; empty elsewhere) and a random token for this process. It is
written into every guard row, so a restarted server can tell that the holder of a guard has died
(same machine and boot, and that pid no longer runs; or the machine has rebooted since) and answer
an identical retry at once instead of waiting for the lease to run out. A holder on another machine
is never judged: only its lease can end it.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip().replace(":", "")
    except OSError:
        return ""


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    boot: str
    token: str

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.boot}:{self.token}"

    @classmethod
    def parse(cls, holder: str) -> Owner | None:
        """The owner a holder name records (`#n` and `/x` suffixes ignored), or None for another form."""
        parts = holder.split("#", 1)[0].split("/", 1)[0].rsplit(":", 3)
        if len(parts) != 4 or not parts[1].isdigit():
            return None
        return cls(parts[0], int(parts[1]), parts[2], parts[3])


THIS_PROCESS = Owner(socket.gethostname().replace(":", "-"), os.getpid(), boot_id(), secrets.token_hex(4))


def is_dead(holder: str, me: Owner = THIS_PROCESS) -> bool:
    """True only when `holder`'s process is certainly gone: same machine, and rebooted since or pid not running
    (or the pid is this process's own, reused by a restart, with another token)."""
    owner = Owner.parse(holder)
    if owner is None or owner.host != me.host:
        return False
    if owner.boot and me.boot and owner.boot != me.boot:
        return True
    if owner.pid == me.pid:
        return owner.token != me.token
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return _is_zombie(owner.pid)


def _is_zombie(pid: int) -> bool:
    """A process that has exited but not been reaped by its parent yet (Linux; elsewhere: no)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
