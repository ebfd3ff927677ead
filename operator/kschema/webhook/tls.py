"""A TLS server context whose certificate follows the files on disk (cert-manager rotation)."""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path

log = logging.getLogger(__name__)


class ReloadingTLS:
    """Serves `cert_file`/`key_file` and picks up new contents without a restart.

    `context` is handed to the server once; its SNI callback (OpenSSL calls it for every handshake, with
    or without a server name) switches each new connection to the context built from the newest pair.
    Established connections keep the certificate they were opened with.
    """

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        self._cert_file = cert_file
        self._key_file = key_file
        self._loaded = self._read()
        self._current = self._build()
        self.context = self._build()
        self.context.sni_callback = self._select

    def _read(self) -> tuple[bytes, bytes]:
        return self._cert_file.read_bytes(), self._key_file.read_bytes()

    def _build(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # load_cert_chain reads the files itself: if they change between our read and this load, the
        # next check sees contents that differ from `_loaded` and loads them again.
        context.load_cert_chain(self._cert_file, self._key_file)
        return context

    def _select(
        self, sslobj: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: ssl.SSLContext
    ) -> None:
        sslobj.context = self._current

    def reload_if_changed(self) -> bool:
        """Loads the files again if their contents changed; a pair that does not load (the key and the
        certificate are mid-rotation) is retried on the next call and the old one stays in use."""
        try:
            pair = self._read()
        except OSError as exc:
            log.warning("Could not read the TLS files: error=%s", exc)
            return False
        if pair == self._loaded:
            return False
        try:
            self._current = self._build()
        except (ssl.SSLError, OSError) as exc:
            log.warning("Kept the previous TLS certificate: the new files did not load: error=%s", exc)
            return False
        self._loaded = pair
        log.info("Reloaded the TLS certificate: cert_file=%s", self._cert_file)
        return True

    async def watch(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.reload_if_changed()
