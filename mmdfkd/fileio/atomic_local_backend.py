"""Crash-safe writes of local files (checkpoints, ``last_checkpoint``)."""
import os
import os.path as osp
import re
import tempfile
from pathlib import Path
from typing import List, Union

from mmengine.fileio import LocalBackend, register_backend

# Temporary files are hidden, name their target and carry this marker, so
# that leftovers of a killed process can be recognised and removed safely.
_TEMP_MARKER = '.atomic-'
_TEMP_FILE_REGEX = re.compile(r'^\..+' + re.escape(_TEMP_MARKER) +
                              r'[A-Za-z0-9_]+\.tmp$')
# the process umask, read once (reading it means setting it)
_UMASK = os.umask(0)
os.umask(_UMASK)


def _fsync_directory(directory: str) -> None:
    """Make a rename in ``directory`` durable (POSIX: fsync the folder)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. platforms that cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(data: Union[bytes, str],
                 filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
    """Write ``data`` to ``filepath`` so that readers (and a later run) see
    either the old file or the complete new one, never a partial file.

    The data go to a temporary file in the same folder (a rename is only
    atomic within one file system), which is flushed and fsynced before
    ``os.replace`` swaps it in; the folder is then fsynced so that the
    rename survives a power loss. On any failure the temporary file is
    removed and ``filepath`` is left untouched.

    Args:
        data (bytes or str): Content; ``str`` is encoded with ``encoding``.
        filepath (str or Path): Target path; missing folders are created.
        encoding (str): Encoding of ``str`` data. Defaults to 'utf-8'.
    """
    filepath = os.fspath(filepath)
    directory = osp.dirname(osp.abspath(filepath))
    os.makedirs(directory, exist_ok=True)
    if isinstance(data, str):
        data = data.encode(encoding)
    fd, temp_path = tempfile.mkstemp(
        dir=directory,
        prefix=f'.{osp.basename(filepath)}{_TEMP_MARKER}',
        suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates the file 0600; give it the permissions a plain
        # open() would have given it
        os.chmod(temp_path, 0o666 & ~_UMASK)
        os.replace(temp_path, filepath)
    except BaseException:
        # also on KeyboardInterrupt: no half-written leftovers
        if osp.exists(temp_path):
            os.remove(temp_path)
        raise
    _fsync_directory(directory)


def stale_temporary_files(directory: str) -> List[str]:
    """Temporary files that :func:`atomic_write` left in ``directory`` when
    its process was killed mid-write (their targets are intact)."""
    if not osp.isdir(directory):
        return []
    return sorted(
        osp.join(directory, name) for name in os.listdir(directory)
        if _TEMP_FILE_REGEX.match(name))


@register_backend('atomic_local')
class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend with atomic ``put`` / ``put_text``.

    mmengine's ``save_checkpoint`` serialises a checkpoint to memory and
    hands the bytes to ``get_file_backend(path, backend_args).put``; the
    stock ``LocalBackend`` writes them in place, so a process killed during
    the write leaves a truncated checkpoint under the final name. Selected
    with ``backend_args=dict(backend='atomic_local')`` (e.g. in
    ``CheckpointHook``), this backend writes through :func:`atomic_write`
    instead; every other operation is ``LocalBackend``'s.
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        """Write bytes to ``filepath`` atomically."""
        atomic_write(obj, filepath)

    def put_text(self,
                 obj: str,
                 filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        """Write text to ``filepath`` atomically."""
        atomic_write(obj, filepath, encoding=encoding)
