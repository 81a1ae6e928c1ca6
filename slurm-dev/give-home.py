#!/usr/bin/env python3
"""give-home HOME USER [KEEP...]: give USER every file and folder in HOME it
does not own yet, the symbolic links themselves included, leaving the folders
KEEP (relative to HOME; the host's folders, which keep their owner) alone.

Run by root at the login node's start while the learner may still have
processes: it holds each folder open while it works in it (os.fwalk), and
never follows a link, at any depth, so a folder swapped for a link meanwhile
cannot lead it outside HOME. It changes nothing when HOME's owner record
(HOME/../.lab-owner-USER, which the learner cannot write) already names the
learner's uid and gid; it writes that record when done."""

from __future__ import annotations

import os
import pwd
import sys


def give(home: str, uid: int, gid: int, keep: set[str]) -> int:
    changed = 0
    for top, folders, files, top_fd in os.fwalk(home, follow_symlinks=False):
        if top == home:
            folders[:] = [name for name in folders if name not in keep]
        for name in (*folders, *files):
            info = os.stat(name, dir_fd=top_fd, follow_symlinks=False)
            if (info.st_uid, info.st_gid) != (uid, gid):
                os.chown(name, uid, gid, dir_fd=top_fd, follow_symlinks=False)
                changed += 1
    if (os.lstat(home).st_uid, os.lstat(home).st_gid) != (uid, gid):
        os.chown(home, uid, gid, follow_symlinks=False)
        changed += 1
    return changed


def main(argv: list[str]) -> int:
    home, user, *keep = argv
    entry = pwd.getpwnam(user)
    record = os.path.join(os.path.dirname(os.path.abspath(home)), f".lab-owner-{user}")
    owner = f"{entry.pw_uid}:{entry.pw_gid}"
    try:
        with open(record) as handle:
            if handle.read().strip() == owner:
                return 0  # the learner's uid is what it was: nothing to give
    except FileNotFoundError:
        pass
    changed = give(home, entry.pw_uid, entry.pw_gid, set(keep))
    with open(f"{record}.tmp", "w") as handle:
        handle.write(owner + "\n")
    os.replace(f"{record}.tmp", record)
    print(f"give-home: {changed} file(s) in {home} given to {user} ({owner})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
