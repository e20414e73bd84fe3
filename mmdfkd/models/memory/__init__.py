from .disk_shard_storage import DiskShardStorage
from .feature_queue import FeatureQueue
from .instance_feature_bank import InstanceFeatureBank
from .synthetic_memory_bank import SyntheticMemoryBank

__all__ = [
    'DiskShardStorage', 'FeatureQueue', 'InstanceFeatureBank',
    'SyntheticMemoryBank'
]
