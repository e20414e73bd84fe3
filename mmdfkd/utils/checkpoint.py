"""Safe loading of untrusted checkpoints (teacher weights, resumed runs).

Checkpoints are pickles, and unpickling an arbitrary file can run arbitrary
code. Everything here therefore goes through ``torch.load(...,
weights_only=True)``, whose unpickler only rebuilds tensors, plain containers
and the explicitly allow-listed globals in :data:`CHECKPOINT_SAFE_GLOBALS`.
On top of that, this module turns the many ways a load can fail (missing
file, failed or tampered download, refused global, truncated file, weights
for another model) into one family of clear errors rooted at
:class:`CheckpointError`.
"""
import hashlib
import os
import pickle
import re
import socket
import sys
import urllib.error
import urllib.parse
from collections.abc import Mapping
from contextlib import contextmanager
from http.client import HTTPException
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from torch import nn

# Same convention as ``torch.hub.HASH_REGEX`` (``name-<sha256 prefix>.ext``),
# but a run of fewer than 8 hex digits is too likely to be part of an
# ordinary name (``model-b.pth``, ``resnet-50.pth``) to be taken as a hash.
HASH_PREFIX_REGEX = re.compile(r'-([a-f0-9]{8,64})\.')

DEFAULT_DOWNLOAD_TIMEOUT = 30.0
_MAX_LISTED_KEYS = 10
# Parameter names under which classifier heads usually live: mmpretrain's
# ``head.fc`` / ``head.layers.head``, torchvision's ``fc`` / ``classifier``
# / ``heads.head``.
_CLASSIFIER_NAME_REGEX = re.compile(r'(^|\.)(heads?|fc|classifier)(\.|$)')


class CheckpointError(RuntimeError):
    """Base class of every error raised while loading a checkpoint."""


class CheckpointDownloadError(CheckpointError):
    """A checkpoint URL could not be downloaded."""


class CheckpointHashError(CheckpointError):
    """A file's sha256 does not start with the prefix its name carries."""


class UnsafeCheckpointError(CheckpointError):
    """The checkpoint references a global that is not allow-listed.

    Attributes:
        refused_global (str): Name of the refused global (module path, type
            or call) as reported by the ``weights_only`` unpickler.
    """

    def __init__(self, message: str, refused_global: str):
        super().__init__(message)
        self.refused_global = refused_global


class CorruptCheckpointError(CheckpointError):
    """The file is truncated, corrupt or not a ``torch.save`` file at all."""


class CheckpointMismatchError(CheckpointError):
    """The checkpoint's weights do not fit the model (keys or shapes)."""


# Only these attributes may be fetched through the ``builtins.getattr``
# global: they are the statistics that every ``HistoryBuffer`` registers.
_HISTORY_BUFFER_STATISTICS = frozenset({'min', 'max', 'current', 'mean'})


def _history_buffer_statistic(owner: object, name: str) -> object:
    """Stand-in for ``builtins.getattr`` inside ``weights_only`` unpickling.

    ``HistoryBuffer.__getstate__`` stores its statistics methods
    (``HistoryBuffer.min`` ...), which pickle protocol 2 encodes as
    ``getattr(HistoryBuffer, 'min')``. Allow-listing the real ``getattr``
    would let a pickle walk from any allowed object to ``os.system``
    (``getattr(f, '__globals__')`` ...), so only that exact lookup is served.

    Args:
        owner (object): Object the pickle wants an attribute of.
        name (str): Attribute name.

    Returns:
        object: The ``HistoryBuffer`` statistics method.

    Raises:
        pickle.UnpicklingError: For any other ``getattr`` call.
    """
    if owner is HistoryBuffer and name in _HISTORY_BUFFER_STATISTICS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'GLOBAL getattr({owner!r}, {name!r}) is not allowed: only '
        'getattr(HistoryBuffer, <statistics method>) is.')


# Why each entry is needed (found by loading real mmengine/mmpretrain Runner
# checkpoints with ``weights_only=True`` under numpy 2.x); all of them only
# rebuild data and cannot reach code:
CHECKPOINT_SAFE_GLOBALS: List = [
    # ``message_hub['log_scalars']`` values.
    HistoryBuffer,
    # ``HistoryBuffer.__getstate__`` -> getattr(HistoryBuffer, 'min'), ...
    (_history_buffer_statistic, 'builtins.getattr'),
    # ``HistoryBuffer._log_history`` / ``_count_history`` are ndarrays,
    # pickled as ``_reconstruct(ndarray, shape, dtype)`` + ``__setstate__``.
    np._core.multiarray._reconstruct,
    np.ndarray,
    # dtype of those arrays; numpy 2 dtypes are instances of per-type
    # classes, which the unpickler checks before calling ``__setstate__``:
    # float64 log history and int64 count history.
    np.dtype,
    np.dtypes.Float64DType,
    np.dtypes.Int64DType,
    # numpy scalars in ``message_hub['runtime_info']`` (e.g. ``eta``).
    np._core.multiarray.scalar,
]


def register_checkpoint_safe_globals() -> None:
    """Allow-list :data:`CHECKPOINT_SAFE_GLOBALS` for every ``weights_only``
    ``torch.load`` of this process.

    With torch >= 2.6, ``torch.load`` defaults to ``weights_only=True``, so
    mmengine's ``Runner.resume`` / ``load_checkpoint`` of a local Runner
    checkpoint fails on its ``HistoryBuffer`` and numpy objects. Registering
    the allow-list makes such runs resumable without ever turning
    ``weights_only`` off. Calling it again is a no-op.
    """
    registered = set(torch.serialization.get_safe_globals())
    if not registered.issuperset(CHECKPOINT_SAFE_GLOBALS):
        torch.serialization.add_safe_globals(CHECKPOINT_SAFE_GLOBALS)


def _is_url(filename: str) -> bool:
    return filename.startswith(('http://', 'https://'))


def _expected_hash_prefix(filename: str) -> Optional[str]:
    """Return the sha256 prefix that ``filename``'s name carries, if any."""
    match = HASH_PREFIX_REGEX.search(os.path.basename(filename))
    return match.group(1) if match else None


def _sha256_of_file(path: str) -> str:
    sha256 = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            sha256.update(chunk)
    return sha256.hexdigest()


def _verify_hash_prefix(path: str, expected_prefix: str, source: str,
                        delete_on_mismatch: bool) -> None:
    """Check that the sha256 of ``path`` starts with ``expected_prefix``.

    Args:
        path (str): Local file to hash.
        expected_prefix (str): Hex prefix taken from the file name.
        source (str): Where the file came from (URL or path), for messages.
        delete_on_mismatch (bool): Remove ``path`` on mismatch; used for
            cache entries so that a bad download is not reused.

    Raises:
        CheckpointHashError: If the prefixes differ.
    """
    actual = _sha256_of_file(path)
    if actual.startswith(expected_prefix):
        return
    if delete_on_mismatch:
        os.remove(path)
        consequence = (f'The cached file {path} was deleted; retrying '
                       'downloads it again.')
    else:
        consequence = 'The file was not loaded.'
    raise CheckpointHashError(
        f'sha256 mismatch for checkpoint {source}: its name expects a hash '
        f'starting with {expected_prefix!r}, but the file hashes to '
        f'{actual[:len(expected_prefix)]!r} ({actual}). The file is '
        f'corrupt or has been tampered with. {consequence}')


@contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """Apply ``seconds`` to sockets opened inside the block.

    ``torch.hub.download_url_to_file`` takes no timeout and otherwise waits
    forever on a server that accepts but never answers.
    """
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _download_to_cache(url: str, cache_dir: Optional[str], check_hash: bool,
                       timeout: float) -> str:
    """Return a verified local copy of ``url``, downloading it if needed.

    Args:
        url (str): ``http://`` or ``https://`` URL of the checkpoint.
        cache_dir (str, optional): Cache folder; defaults to torch hub's
            ``checkpoints`` folder.
        check_hash (bool): Verify the sha256 prefix carried by the name.
        timeout (float): Socket timeout in seconds.

    Returns:
        str: Path of the cached file.

    Raises:
        ValueError: If the URL does not end in a file name.
        CheckpointDownloadError: If the download fails.
        CheckpointHashError: If the file does not match its hash prefix.
    """
    file_name = os.path.basename(urllib.parse.urlparse(url).path)
    if not file_name:
        raise ValueError(f'Checkpoint URL {url} does not name a file.')
    if cache_dir is None:
        cache_dir = os.path.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(cache_dir, exist_ok=True)
    cached_file = os.path.join(cache_dir, file_name)

    if not os.path.exists(cached_file):
        try:
            with _socket_timeout(timeout):
                # The downloader writes to a temporary file and renames it
                # only when complete, so a failure leaves no cache entry.
                torch.hub.download_url_to_file(
                    url, cached_file, progress=sys.stderr.isatty())
        # URLError covers refused connections and HTTP errors, OSError
        # covers timeouts and resets, HTTPException short reads.
        except (urllib.error.URLError, OSError, HTTPException) as error:
            # A plain URLError hides the cause (e.g. connection refused) in
            # ``reason``; HTTPError's own text carries the status code.
            is_plain_url_error = (
                isinstance(error, urllib.error.URLError)
                and not isinstance(error, urllib.error.HTTPError))
            reason = error.reason if is_plain_url_error else error
            raise CheckpointDownloadError(
                f'Could not download checkpoint {url}: {reason}') from error

    expected_prefix = _expected_hash_prefix(file_name)
    if check_hash and expected_prefix:
        _verify_hash_prefix(
            cached_file, expected_prefix, url, delete_on_mismatch=True)
    return cached_file


# Messages of torch's ``weights_only`` unpickler (and of
# :func:`_history_buffer_statistic`) that mean "refused on purpose"; the
# group is the refused global. Any other failure means a broken file.
_REFUSED_GLOBAL_PATTERNS: Tuple[re.Pattern, ...] = (
    re.compile(r'GLOBAL (\S+) was not an allowed global'),
    re.compile(r'unsupported GLOBAL (\S+) whose module \S+ is blocked'),
    re.compile(r'GLOBAL (getattr\(.*\)) is not allowed'),
    re.compile(r'call reduce for unrecognized function (.+)'),
    re.compile(r"but got <class '([^']+)'>"),
)


def _refused_global(unpickling_message: str) -> Optional[str]:
    for pattern in _REFUSED_GLOBAL_PATTERNS:
        match = pattern.search(unpickling_message)
        if match:
            return match.group(1)
    return None


def load_checkpoint_file(filename: str,
                         map_location='cpu',
                         cache_dir: Optional[str] = None,
                         check_hash: bool = True,
                         timeout: float = DEFAULT_DOWNLOAD_TIMEOUT) -> dict:
    """Load an untrusted checkpoint from a local path or an http(s) URL.

    URLs are downloaded into ``cache_dir`` (reusing an earlier download).
    When the file name carries a sha256 prefix (``name-a8aa36a6.pth``), the
    file is verified against it. The file is always unpickled with
    ``weights_only=True`` plus :data:`CHECKPOINT_SAFE_GLOBALS`, so no code
    in it can run.

    Args:
        filename (str): Local path, or ``http://`` / ``https://`` URL.
        map_location: Passed to :func:`torch.load`. Defaults to ``'cpu'``.
        cache_dir (str, optional): Download cache folder. Defaults to
            ``<torch.hub.get_dir()>/checkpoints``.
        check_hash (bool): Verify the sha256 prefix carried by the file
            name, for URLs and local files alike. Defaults to True.
        timeout (float): Socket timeout of a download, in seconds.

    Returns:
        dict: The loaded checkpoint.

    Raises:
        FileNotFoundError: If a local ``filename`` does not exist.
        CheckpointDownloadError: If the URL cannot be downloaded.
        CheckpointHashError: If the file does not match its hash prefix (a
            cached download is deleted).
        UnsafeCheckpointError: If the pickle references a global outside
            the allow-list (e.g. code such as ``os.system``).
        CorruptCheckpointError: If the file is truncated, corrupt or not a
            checkpoint.
    """
    filename = os.fspath(filename)
    if _is_url(filename):
        local_path = _download_to_cache(filename, cache_dir, check_hash,
                                        timeout)
    else:
        if not os.path.isfile(filename):
            raise FileNotFoundError(f'Checkpoint file not found: {filename}')
        expected_prefix = _expected_hash_prefix(filename)
        if check_hash and expected_prefix:
            _verify_hash_prefix(
                filename, expected_prefix, filename, delete_on_mismatch=False)
        local_path = filename

    register_checkpoint_safe_globals()
    try:
        return torch.load(
            local_path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        # torch re-raises the unpickler's error wrapped in advice to retry
        # with weights_only=False, which is wrong for an untrusted file; the
        # unpickler's own error is kept as the context.
        reason = str(error.__context__ or error).strip()
        refused = _refused_global(reason)
        if refused is not None:
            raise UnsafeCheckpointError(
                f'Refused to load checkpoint {filename}: it references '
                f'{refused}, which is not an allow-listed global. Loading '
                'it could run arbitrary code, so it was not unpickled.',
                refused_global=refused) from error
        raise CorruptCheckpointError(
            f'Checkpoint {filename} is corrupt or not a torch checkpoint: '
            f'{reason}') from error
    # A malformed file makes torch's zip reader and the unpickler fail in
    # open-ended ways (RuntimeError from miniz, EOFError, KeyError,
    # struct.error, OSError ...); all of them mean the file is unusable.
    except Exception as error:
        raise CorruptCheckpointError(
            f'Checkpoint {filename} is truncated or corrupt: '
            f'{type(error).__name__}: {error}') from error


def _extract_state_dict(checkpoint: object, filename: str) -> Mapping:
    """Find the model weights in a loaded checkpoint.

    Raises:
        CheckpointMismatchError: If no state dict can be found.
    """
    if isinstance(checkpoint, Mapping):
        for key in ('state_dict', 'model'):
            if isinstance(checkpoint.get(key), Mapping):
                return checkpoint[key]
        if checkpoint and all(
                isinstance(value, torch.Tensor)
                for value in checkpoint.values()):
            return checkpoint
        found = f'top-level keys {sorted(map(str, checkpoint))[:10]}'
    else:
        found = f'a {type(checkpoint).__name__}'
    raise CheckpointMismatchError(
        f'Checkpoint {filename} holds no model weights: expected a '
        "'state_dict' or 'model' entry or a plain state dict, found "
        f'{found}.')


def _revise_keys(state_dict: Mapping, revise_keys: Iterable[Tuple[str, str]],
                 filename: str) -> dict:
    """Apply regex key renames, refusing renames that merge two keys.

    Raises:
        CheckpointMismatchError: If two keys end up with the same name, as
            one would silently overwrite the other.
    """
    revised = {}
    for key, value in state_dict.items():
        new_key = key
        for pattern, replacement in revise_keys:
            new_key = re.sub(pattern, replacement, new_key)
        if new_key in revised:
            raise CheckpointMismatchError(
                f'Checkpoint {filename}: renaming keys with {revise_keys} '
                f'maps more than one key to {new_key!r}.')
        revised[new_key] = value
    return revised


def _format_keys(keys: Sequence[str]) -> str:
    listed = ', '.join(keys[:_MAX_LISTED_KEYS])
    hidden = len(keys) - _MAX_LISTED_KEYS
    return listed + (f', ... and {hidden} more' if hidden > 0 else '')


def _wrong_class_count(model: nn.Module, key: str, checkpoint_shape,
                       model_shape) -> Optional[str]:
    """Describe a shape mismatch as a wrong number of classes, if it is one:
    the weight of a classifier-head ``nn.Linear`` differing only in its
    output (first) dimension."""
    module_name, _, param_name = key.rpartition('.')
    module = dict(model.named_modules()).get(module_name)
    if (param_name == 'weight' and isinstance(module, nn.Linear)
            and _CLASSIFIER_NAME_REGEX.search(module_name)
            and len(checkpoint_shape) == len(model_shape) == 2
            and checkpoint_shape[1:] == model_shape[1:]):
        return (f'wrong number of classes: checkpoint has '
                f'{checkpoint_shape[0]}, model has {model_shape[0]} ({key})')
    return None


def _lazily_created_keys(model: nn.Module, keys: Iterable[str]) -> set:
    """The keys a submodule registers only when it loads them: those under
    one of its ``lazy_state_prefixes`` (e.g. the running averages of
    :class:`BNStatisticsLoss`, created on first use, so that a freshly built
    model does not have them yet)."""
    prefixes = tuple(
        f'{name}.{prefix}' if name else prefix
        for name, module in model.named_modules()
        for prefix in getattr(module, 'lazy_state_prefixes', ()))
    return {key for key in keys if prefixes and key.startswith(prefixes)}


def check_weights_fit(model: nn.Module, state_dict: Mapping,
                      filename: str) -> None:
    """Check that ``state_dict`` has exactly the keys and shapes of
    ``model.state_dict()``, before anything is copied.

    Args:
        model (nn.Module): The model the weights are meant for.
        state_dict (Mapping): The checkpoint's weights (keys already
            revised).
        filename (str): The checkpoint, for the message.

    Raises:
        CheckpointMismatchError: If keys are missing or unexpected, or
            shapes differ (a classifier head with another class count is
            reported as "wrong number of classes").
    """
    model_state = model.state_dict()
    missing = [key for key in model_state if key not in state_dict]
    lazy = _lazily_created_keys(model, state_dict)
    unexpected = [
        key for key in state_dict if key not in model_state and key not in lazy
    ]
    shape_mismatches = []
    wrong_class_counts = []
    for key, model_value in model_state.items():
        value = state_dict.get(key)
        if not (isinstance(value, torch.Tensor)
                and isinstance(model_value, torch.Tensor)):
            continue
        if value.shape != model_value.shape:
            checkpoint_shape = tuple(value.shape)
            model_shape = tuple(model_value.shape)
            shape_mismatches.append(
                f'{key}: checkpoint {checkpoint_shape} vs model '
                f'{model_shape}')
            class_count_message = _wrong_class_count(model, key,
                                                     checkpoint_shape,
                                                     model_shape)
            if class_count_message:
                wrong_class_counts.append(class_count_message)

    if missing or unexpected or shape_mismatches:
        problems = wrong_class_counts[:]
        if missing:
            problems.append(
                f'missing keys ({len(missing)}): {_format_keys(missing)}')
        if unexpected:
            problems.append(f'unexpected keys ({len(unexpected)}): '
                            f'{_format_keys(unexpected)}')
        if shape_mismatches:
            problems.append(f'shape mismatches ({len(shape_mismatches)}): '
                            f'{_format_keys(shape_mismatches)}')
        raise CheckpointMismatchError(
            f'Checkpoint {filename} does not fit {type(model).__name__}:\n  ' +
            '\n  '.join(problems))


def load_teacher_weights(
    model: nn.Module,
    filename: str,
    map_location='cpu',
    revise_keys: Sequence[Tuple[str, str]] = ((r'^module\.', ''), )
) -> None:
    """Load an untrusted checkpoint into ``model``, all or nothing.

    The weights are taken from ``checkpoint['state_dict']``, else
    ``checkpoint['model']``, else the checkpoint itself when it is a plain
    state dict. Keys and shapes are compared with ``model.state_dict()``
    before anything is copied (:func:`check_weights_fit`), so a mismatch
    never leaves the model half-loaded.

    Args:
        model (nn.Module): Model to load the weights into.
        filename (str): Local path or http(s) URL, see
            :func:`load_checkpoint_file`.
        map_location: Passed to :func:`torch.load`. Defaults to ``'cpu'``.
        revise_keys (Sequence[Tuple[str, str]]): ``(pattern, replacement)``
            regex renames applied to every checkpoint key, in order.
            Defaults to stripping a ``module.`` (DataParallel) prefix.

    Raises:
        CheckpointMismatchError: If keys are missing or unexpected, or
            shapes differ (a classifier head with another class count is
            reported as "wrong number of classes").
        FileNotFoundError, CheckpointError: See :func:`load_checkpoint_file`.
    """
    checkpoint = load_checkpoint_file(filename, map_location=map_location)
    state_dict = _revise_keys(
        _extract_state_dict(checkpoint, filename), revise_keys, filename)
    check_weights_fit(model, state_dict, filename)
    model.load_state_dict(state_dict, strict=True)
