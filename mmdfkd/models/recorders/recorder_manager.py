from typing import Dict, Optional

from torch import nn

from mmdfkd.registry import TASK_UTILS
from .base_recorder import BaseRecorder


class RecorderManager:
    """Build a dict of recorders and switch them on as a context manager.

    ``with manager:`` clears old records and records until the block ends.
    """

    def __init__(self, recorders: Optional[Dict[str, dict]] = None) -> None:
        self.recorders: Dict[str, BaseRecorder] = {
            name: TASK_UTILS.build(cfg)
            for name, cfg in (recorders or {}).items()
        }

    def __bool__(self) -> bool:
        return bool(self.recorders)

    def prepare_from_model(self, model: nn.Module) -> None:
        for recorder in self.recorders.values():
            recorder.prepare_from_model(model)

    def get_recorder(self, name: str) -> BaseRecorder:
        if name not in self.recorders:
            raise KeyError(f'no recorder named {name!r}; known recorders: '
                           f'{sorted(self.recorders)}')
        return self.recorders[name]

    def __enter__(self):
        for recorder in self.recorders.values():
            recorder.reset_data()
            recorder.recording = True
        return self

    def __exit__(self, *exc):
        for recorder in self.recorders.values():
            recorder.recording = False
