"""Recorders: forward hooks that capture intermediate tensors by module name.

The design follows MMRazor's recorders (``ModuleOutputs``, ``ModuleInputs``
on a ``source`` module name), so that distiller configs written for MMRazor
read the same here. Hooks are registered once; they only store data while
their manager is "recording" (inside a ``with`` block), so a recorder that
belongs to the generator phase costs nothing during the student phase.
"""
from abc import ABCMeta, abstractmethod
from typing import Any, List

from torch import nn


class BaseRecorder(metaclass=ABCMeta):
    """Record something produced while a model runs forward.

    Args:
        source (str): Dotted name of the module to watch, relative to the
            model passed to :meth:`prepare_from_model`. For teachers the
            name starts with the teacher's key, e.g. ``'tea.head.fc'``.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.recording = False
        self.data_buffer: List[Any] = []
        self._handles: list = []

    @abstractmethod
    def prepare_from_model(self, model: nn.Module) -> None:
        """Attach hooks to ``model``."""

    def get_record_data(self, record_idx: int = 0, data_idx=None) -> Any:
        """Return the ``record_idx``-th record (one per forward call); if
        ``data_idx`` is given, index into a tuple/list record."""
        if len(self.data_buffer) <= record_idx:
            raise RuntimeError(
                f'{type(self).__name__}(source={self.source!r}) has '
                f'{len(self.data_buffer)} record(s) but record_idx='
                f'{record_idx} was requested; did the module run forward '
                'inside the recording context?')
        record = self.data_buffer[record_idx]
        return record if data_idx is None else record[data_idx]

    def reset_data(self) -> None:
        self.data_buffer = []

    def remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


def get_submodule(model: nn.Module, source: str) -> nn.Module:
    """``model.get_submodule`` with an error that lists nearby names."""
    try:
        return model.get_submodule(source)
    except AttributeError:
        names = [n for n, _ in model.named_modules() if n]
        prefix = source.rsplit('.', 1)[0]
        close = [n for n in names if n.startswith(prefix)][:15] or names[:15]
        raise KeyError(f'recorder source {source!r} is not a module name of '
                       f'the model; names include: {close}') from None
