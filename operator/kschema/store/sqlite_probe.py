"""A cheap answer to "has anything been committed to the SQLite file since I last looked?", for the change
feed's followers, which poll because writers in other processes cannot signal them.

`PRAGMA data_version` changes whenever another connection commits to the file; reading it touches only
the WAL index in shared memory, on the event loop's thread, in microseconds. A poll that finds it
unchanged skips the `max(seq)` query (a hop to a reader thread and back), so an idle follower costs
next to nothing. The probe has a busy timeout of zero: when the file is locked (WAL recovery) or the
probe is closed it answers None, and the caller queries as before."""

from __future__ import annotations

import sqlite3

__all__ = ["DataVersionProbe"]


class DataVersionProbe:
    """A read-only connection of its own, used only for `PRAGMA data_version`."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None

    def open(self) -> None:
        """Connects (blocking: call it off the event loop). A failure leaves the probe closed, which only
        costs the followers their shortcut."""
        if self._conn is not None:
            return
        try:
            conn = sqlite3.connect(self._path, timeout=0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA query_only=ON")
        except sqlite3.Error:
            return
        self._conn = conn

    def read(self) -> int | None:
        """The file's data version as this connection sees it now; None when it cannot tell."""
        conn = self._conn
        if conn is None:
            return None
        try:
            row = conn.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error:
            return None
        return int(row[0]) if row is not None else None

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
