from torch import nn

from mmdfkd.registry import TASK_UTILS
from .base_recorder import BaseRecorder, get_submodule


@TASK_UTILS.register_module()
class ModuleOutputs(BaseRecorder):
    """Record the output of module ``source`` at every forward call."""

    def prepare_from_model(self, model: nn.Module) -> None:
        module = get_submodule(model, self.source)
        self._handles.append(module.register_forward_hook(self._hook))

    def _hook(self, module, inputs, outputs):
        if self.recording:
            self.data_buffer.append(outputs)


@TASK_UTILS.register_module()
class ModuleInputs(BaseRecorder):
    """Record the (first) input of module ``source`` at every forward call;
    e.g. ``head.fc`` inputs are a classifier's penultimate features."""

    def prepare_from_model(self, model: nn.Module) -> None:
        module = get_submodule(model, self.source)
        self._handles.append(module.register_forward_hook(self._hook))

    def _hook(self, module, inputs, outputs):
        if self.recording:
            self.data_buffer.append(inputs[0] if len(inputs) == 1 else inputs)
