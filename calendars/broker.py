"""The embedded broker: kombu's filesystem transport, safe for concurrent readers.

``make run`` needs a broker without a server (DESIGN.md section 4). kombu's filesystem
transport keeps one file per message in a folder, but its writer creates the file empty and
fills it afterwards, and its readers take whatever file they list: a worker that lists the
folder between the two reads an empty or half-written message and dies with a
``JSONDecodeError`` (the web server, started by the same ``make run``, goes down with it).
Its exchange tables (the bindings of fanout exchanges, used by remote control) are rewritten
in place, with the same window for a reader.

This transport keeps kombu's folder layout and file names and changes how files appear and
disappear, so that no reader ever sees a partial file:

- a message is written under a hidden temporary name, then renamed into the queue folder
  (``rename(2)`` is atomic within one file system);
- a reader claims a message by renaming it into a hidden folder of its own; only one reader's
  rename succeeds, the others move on to the next file;
- an exchange table is rewritten the same way, under an exclusive lock held by writers only;
- a file that still cannot be decoded (left by an older transport) is set aside in
  ``.unreadable/`` with a log line, never raised into the worker.

Selected by ``CELERY_BROKER_TRANSPORT`` in settings when the broker URL is ``filesystem://``.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from queue import Empty
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem, virtual
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

logger = logging.getLogger(__name__)

CLAIMED_FOLDER = ".claimed"
UNREADABLE_FOLDER = ".unreadable"


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


class Channel(filesystem.Channel):
    """kombu's filesystem channel with atomic writes and claims (see the module docstring)."""

    def _queue_file_name(self, queue: str) -> str:
        # kombu's own naming, so that files sort in the order they were written.
        return f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"

    def _put(self, queue: str, message: Any, **kwargs: Any) -> None:  # type: ignore[override]
        path = Path(self.data_folder_out) / self._queue_file_name(queue)
        try:
            _write_atomically(path, str_to_bytes(dumps(message)))
        except OSError as exc:
            raise ChannelError(f"Cannot add file {str(path)!r} to directory") from exc

    def _get(self, queue: str, timeout: float | None = None) -> Any:
        folder = Path(self.data_folder_in)
        wanted = f"{queue}.msg"
        for name in sorted(os.listdir(folder)):
            if name.startswith(".") or name.partition(".")[2] != wanted:
                continue
            claimed = folder / CLAIMED_FOLDER / name
            claimed.parent.mkdir(exist_ok=True)
            try:
                os.rename(folder / name, claimed)
            except FileNotFoundError:
                continue  # another reader claimed it first
            try:
                payload = claimed.read_bytes()
            except OSError as exc:
                raise ChannelError(f"Cannot read file {str(claimed)!r} from queue.") from exc
            try:
                message = loads(bytes_to_str(payload))
            except ValueError:
                self._set_aside(claimed)
                continue
            self._processed(claimed)
            return message
        raise Empty()

    def _processed(self, claimed: Path) -> None:
        if self.store_processed:
            target = Path(self.processed_folder)
            target.mkdir(parents=True, exist_ok=True)
            os.replace(claimed, target / claimed.name)
        else:
            claimed.unlink(missing_ok=True)

    def _set_aside(self, claimed: Path) -> None:
        target = claimed.parent.parent / UNREADABLE_FOLDER
        target.mkdir(exist_ok=True)
        os.replace(claimed, target / claimed.name)
        logger.error("embedded broker: unreadable message file %s set aside", claimed.name)

    # --- Exchange tables (fanout bindings) -------------------------------------------------

    def get_table(self, exchange: str) -> list[filesystem.exchange_queue_t]:
        file = self._exchange_file(exchange)
        try:
            table = loads(bytes_to_str(file.read_bytes()))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ChannelError(f"Cannot open {file}") from exc
        return [filesystem.exchange_queue_t(*entry) for entry in table]

    def _update_table(self, exchange: str, entry: tuple[str, str, str], *, add: bool) -> None:
        file = self._exchange_file(exchange)
        self.control_folder.mkdir(parents=True, exist_ok=True)
        lock_path = file.with_name(f".{file.name}.lock")
        try:
            with open(lock_path, "a") as lock_file:
                filesystem.lock(lock_file, filesystem.LOCK_EX)
                try:
                    queues = self.get_table(exchange)
                    value = filesystem.exchange_queue_t(*entry)
                    if add and value not in queues:
                        queues.insert(0, value)
                    elif not add and value in queues:
                        queues.remove(value)
                    else:
                        return
                    _write_atomically(file, str_to_bytes(dumps(queues)))
                finally:
                    filesystem.unlock(lock_file)
        except OSError as exc:
            raise ChannelError(f"Cannot open {file}") from exc

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str, queue: str) -> None:
        self._update_table(exchange, (routing_key or "", pattern or "", queue or ""), add=True)

    def _delete(self, queue: str, *args: Any, **kwargs: Any) -> None:
        exchange, routing_key, pattern = [*args, None, None, None][:3]
        # The virtual channel's own bookkeeping, without kombu's in-place table rewrite.
        virtual.Channel._delete(self, queue, *args, **kwargs)
        if exchange is not None:
            self._update_table(exchange, (routing_key or "", pattern or "", queue or ""), add=False)


class Transport(filesystem.Transport):
    """kombu's filesystem transport with :class:`Channel`."""

    Channel = Channel
