import torch
from mmengine.model import MMSeparateDistributedDataParallel
from mmengine.model.wrappers import MMDistributedDataParallel
from mmengine.device import get_device

from mmdfkd.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class DataFreeDistributedDataParallel(MMSeparateDistributedDataParallel):
    """Wrap the student and the generator in separate DDPs (MMRazor's and
    mmengine's separate-DDP design: the two are updated by different
    optimisers at different times), and make it run on CPU with gloo.

    Two deliberate departures from ``MMSeparateDistributedDataParallel``:

    * ``device_ids`` are dropped when the modules are not on CUDA: mmengine
      0.10.7's ``Runner.wrap_model`` always passes
      ``device_ids=[LOCAL_RANK]``, which DDP rejects for CPU modules.
    * Submodules flagged ``rank_local = True`` (e.g. ``LearnableImages``:
      each rank optimises its own pixels) and frozen modules (teachers) are
      not wrapped, so their gradients are never averaged across ranks.
    """

    def __init__(self,
                 module: torch.nn.Module,
                 broadcast_buffers: bool = False,
                 find_unused_parameters: bool = False,
                 **kwargs) -> None:
        device = get_device()
        if not str(device).startswith('cuda'):
            kwargs.pop('device_ids', None)
            kwargs.pop('output_device', None)
        # nn.Module's __init__ only (as the parent does): DDP's own would wrap
        # the whole algorithm, and the parent's would wrap rank-local modules
        torch.nn.Module.__init__(self)
        self.module = module
        for name, sub_module in module._modules.items():
            sub_module = sub_module.to(device)
            trainable = any(p.requires_grad for p in sub_module.parameters())
            if trainable and not getattr(sub_module, 'rank_local', False):
                sub_module = MMDistributedDataParallel(
                    module=sub_module,
                    broadcast_buffers=broadcast_buffers,
                    find_unused_parameters=find_unused_parameters,
                    **kwargs)
            module._modules[name] = sub_module
