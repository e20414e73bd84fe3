from .synthetic_image_visualization_hook import SyntheticImageVisualizationHook

__all__ = ['SyntheticImageVisualizationHook']
from .collapse_guard_hook import CollapseGuardHook, TrainingCollapseError
from .random_state_hook import RandomStateHook
from .resumable_checkpoint_hook import ResumableCheckpointHook

__all__ += [
    'CollapseGuardHook', 'TrainingCollapseError', 'RandomStateHook',
    'ResumableCheckpointHook'
]
