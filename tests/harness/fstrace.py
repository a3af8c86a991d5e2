"""File-system syscalls of a process under strace, and what they prove.

`STRACE_ARGV` runs a command under `strace -f` with every byte written kept (hex), `parse()`
turns the trace into ordered file operations, and two readers judge them:

* `atomic_write_problems(ops, target)`: every time `target` was replaced, it was by a temp file
  in the same directory, written whole, fsynced, renamed over `target`, and the directory
  fsynced after the rename; `target` itself was never opened for writing. A writer that writes
  in place, skips an fsync or renames across directories fails here, whatever the timing.
* `power_loss_image(ops, initial)`: the files as a power loss at the end of the trace could leave
  them when metadata (creates, renames, truncates) reached the disk but file data only up to
  each file's last fsync: the classic zero-length file after a rename without fsync.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

SYSCALLS = ("open,openat,creat,write,pwrite64,fsync,fdatasync,rename,renameat,renameat2,close,"
            "unlink,unlinkat,ftruncate,clone,clone3,fork,vfork")
STRACE_ARGV = ["strace", "-f", "-qq", "-y", "-xx", "-s", "1048576", "-e", f"trace={SYSCALLS}"]

_LINE = re.compile(r"^(\d+)\s+(.*)$")
_CALL = re.compile(r"^(\w+)\((.*)\)\s+=\s+(-?\d+)")
_STRING = re.compile(r'"((?:\\x[0-9a-fA-F]{2}|[^"\\]|\\.)*)"')


def _unescape(text: str) -> bytes:
    if "\\" not in text:
        return text.encode()
    return re.sub(rb"\\x([0-9a-fA-F]{2})", lambda m: bytes([int(m.group(1), 16)]),
                  text.encode()).decode("unicode_escape").encode("latin-1")


@dataclass
class Op:
    """One completed file operation, in trace order."""
    pid: int
    call: str
    result: int
    path: str = ""         # the file (open, write, fsync, close, unlink), or rename's source
    dest: str = ""         # rename's destination
    fd: int = -1
    flags: str = ""
    data: bytes = b""
    index: int = 0
    extra: dict = field(default_factory=dict)


def _split_args(args: str) -> list[str]:
    out, depth, cur, quoted = [], 0, "", False
    for ch in args:
        if ch == '"' and not cur.endswith("\\"):
            quoted = not quoted
        if not quoted:
            if ch in "[{(<":
                depth += 1
            elif ch in "]})>":
                depth -= 1
            elif ch == "," and depth == 0:
                out.append(cur.strip())
                cur = ""
                continue
        cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def _string_arg(arg: str) -> str:
    m = _STRING.search(arg)
    return _unescape(m.group(1)).decode("utf-8", "replace") if m else ""


def _fd_arg(arg: str) -> tuple[int, str]:
    """`3</some/path>` (strace -y) -> (3, "/some/path")."""
    m = re.match(r"(-?\d+)(?:<(.*)>)?$", arg.strip())
    if not m:
        return -1, ""
    return int(m.group(1)), _unescape(m.group(2)).decode("utf-8", "replace") if m.group(2) else ""


def parse(text: str) -> list[Op]:
    """Completed file operations in the order they returned (unfinished calls are joined)."""
    pending: dict[int, str] = {}
    ops: list[Op] = []
    fd_paths: dict[tuple[int, int], str] = {}  # (pid, fd) -> path it was opened as
    tgids: dict[int, int] = {}  # thread -> its process (threads share one fd table)
    for raw in text.splitlines():
        m = _LINE.match(raw)
        if not m:
            continue
        pid, rest = int(m.group(1)), m.group(2)
        if rest.endswith("<unfinished ...>"):
            pending[pid] = rest[: -len("<unfinished ...>")].rstrip()
            continue
        resumed = re.match(r"<\.\.\. (\w+) resumed>(.*)$", rest)
        if resumed:
            rest = pending.pop(pid, resumed.group(1) + "(") + resumed.group(2)
        call = _CALL.match(rest)
        if not call:
            continue
        name, args, result = call.group(1), _split_args(call.group(2)), int(call.group(3))
        op = Op(pid=pid, call=name, result=result, index=len(ops))
        tgid = tgids.setdefault(pid, pid)
        op.extra["tgid"] = tgid
        if name in ("clone", "clone3", "fork", "vfork"):
            if result > 0:
                tgids[result] = tgid if "CLONE_THREAD" in call.group(2) else result
            continue
        if name in ("open", "creat"):
            op.path, op.flags = _string_arg(args[0]), args[1] if len(args) > 1 else ""
        elif name == "openat":
            op.path, op.flags = _string_arg(args[1]), args[2] if len(args) > 2 else ""
            base = _fd_arg(args[0])[1]
            if base and not op.path.startswith("/"):
                op.path = os.path.join(base, op.path)
        elif name in ("write", "pwrite64", "fsync", "fdatasync", "close", "ftruncate"):
            op.fd, annotated = _fd_arg(args[0])
            op.path = fd_paths.get((tgid, op.fd), annotated)
            if name in ("write", "pwrite64"):
                op.data = _unescape(_STRING.search(args[1]).group(1)) if _STRING.search(
                    args[1]) else b""
                op.data = op.data[:result] if result >= 0 else b""
                if name == "pwrite64":
                    op.extra["offset"] = int(args[3])
            if name == "ftruncate":
                op.extra["length"] = int(args[1])
        elif name == "rename":
            op.path, op.dest = _string_arg(args[0]), _string_arg(args[1])
        elif name in ("renameat", "renameat2"):
            op.path, op.dest = _string_arg(args[1]), _string_arg(args[3])
        elif name == "unlink":
            op.path = _string_arg(args[0])
        elif name == "unlinkat":
            op.path = _string_arg(args[1])
        if result < 0:
            continue  # failed calls change nothing
        if name in ("open", "openat", "creat"):
            op.fd = result
            fd_paths[(tgid, result)] = op.path
        elif name == "close":
            fd_paths.pop((tgid, op.fd), None)
        ops.append(op)
    for i, op in enumerate(ops):
        op.index = i
    return ops


def _opened_for_writing(op: Op) -> bool:
    return op.call == "creat" or (op.call in ("open", "openat")
                                  and ("O_WRONLY" in op.flags or "O_RDWR" in op.flags))


def atomic_write_problems(ops: list[Op], target: str, every_durable: bool = True) -> list[str]:
    """What is wrong with how `target` was replaced (empty: every replacement was atomic and
    durable: temp in the same dir -> write -> fsync(temp) -> rename -> fsync(dir)).
    every_durable=False (state.json): every replacement atomic, and the durable ones (the stage,
    a completion about to be sent, a completion done) complete with both fsyncs; whether the
    right ones are durable is judged by the power-loss rows, on behaviour."""
    target = os.path.normpath(target)
    name = os.path.basename(target)
    directory = os.path.dirname(target)
    problems = []
    for op in ops:
        if _opened_for_writing(op) and os.path.normpath(op.path) == target:
            problems.append(f"{name} itself opened for writing ({op.flags}): not atomic")
            break
    renames = [op for op in ops if op.call.startswith("rename")
               and os.path.normpath(op.dest) == target]
    if not renames:
        return problems + [f"{name} never replaced by a rename"]
    durable_renames = 0
    for rn in renames:
        src = os.path.normpath(rn.path)
        if os.path.dirname(src) != directory:
            problems.append(f"{name} renamed from another directory ({src})")
        opened = [op for op in ops[: rn.index] if op.call in ("open", "openat", "creat")
                  and os.path.normpath(op.path) == src]
        if not opened:
            problems.append(f"{name}: the temp file {os.path.basename(src)} was not opened here")
            continue
        fd_open = opened[-1]
        span = ops[fd_open.index: rn.index]
        same_fd = [op for op in span if op.fd == fd_open.fd and op.call != "open"]
        writes = [op for op in same_fd if op.call in ("write", "pwrite64")]
        closed_at = next((op.index for op in same_fd if op.call == "close"), rn.index)
        synced = [op for op in same_fd if op.call in ("fsync", "fdatasync")
                  and op.index < closed_at and (not writes or op.index > writes[-1].index)]
        if not synced:
            if not every_durable:
                continue  # a non-durable replacement: atomic is all it promises
            problems.append(f"{name}: temp file not fsynced between its last write and the "
                            "rename")
        else:
            durable_renames += 1
        after = ops[rn.index + 1:]
        next_rename = next((op.index for op in after if op.call.startswith("rename")
                            and os.path.normpath(op.dest) == target), len(ops))
        dir_fds = {op.fd for op in ops[: next_rename] if op.call in ("open", "openat")
                   and os.path.normpath(op.path) == directory}
        if not any(op.call in ("fsync", "fdatasync") and op.fd in dir_fds
                   and os.path.normpath(op.path) == directory
                   for op in after if op.index < next_rename):
            problems.append(f"{name}: directory not fsynced after the rename")
    if not every_durable and not durable_renames:
        problems.append(f"{name}: no replacement was made durable")
    # One message per kind is enough for the table.
    return list(dict.fromkeys(problems))


@dataclass
class _Inode:
    live: bytearray
    durable: bytes


def power_loss_image(ops: list[Op], initial: dict[str, bytes]) -> dict[str, bytes | None]:
    """Every path the trace touched -> its bytes after a power loss at the end of the trace
    (None: the path does not exist). `initial`: contents before the trace, taken as durable."""
    names: dict[str, _Inode] = {p: _Inode(bytearray(b), b) for p, b in initial.items()}
    fds: dict[tuple[int, int], tuple[_Inode, int]] = {}  # -> (inode, offset)
    touched: set[str] = set(initial)
    for op in ops:
        path = os.path.normpath(op.path) if op.path else ""
        key = (op.extra["tgid"], op.fd)
        if op.call in ("open", "openat", "creat"):
            inode = names.get(path)
            creating = op.call == "creat" or "O_CREAT" in op.flags
            if inode is None:
                if not creating:
                    continue  # a file outside the picture (not in `initial`, not created here)
                inode = names[path] = _Inode(bytearray(), b"")
                touched.add(path)
            if op.call == "creat" or "O_TRUNC" in op.flags:
                inode.live = bytearray()
                inode.durable = b""  # the truncate is metadata: it lands, the data may not
            fds[(op.extra["tgid"], op.result)] = (inode, 0)
        elif op.call in ("write", "pwrite64") and key in fds:
            inode, offset = fds[key]
            at = op.extra.get("offset", offset)
            end = at + len(op.data)
            if len(inode.live) < at:
                inode.live.extend(b"\0" * (at - len(inode.live)))
            inode.live[at:end] = op.data
            if op.call == "write":
                fds[key] = (inode, end)
        elif op.call == "ftruncate" and key in fds:
            inode, _ = fds[key]
            del inode.live[op.extra["length"]:]
            inode.durable = inode.durable[: op.extra["length"]]
        elif op.call in ("fsync", "fdatasync") and key in fds:
            inode, _ = fds[key]
            inode.durable = bytes(inode.live)
        elif op.call == "close":
            fds.pop(key, None)
        elif op.call.startswith("rename"):
            src, dest = path, os.path.normpath(op.dest)
            if src in names:
                names[dest] = names.pop(src)
                touched.update((src, dest))
        elif op.call.startswith("unlink"):
            names.pop(path, None)
            touched.add(path)
    return {p: (names[p].durable if p in names else None) for p in touched}
