from .disk_shard_storage import DiskShardStorage
from .synthetic_memory_bank import SyntheticMemoryBank

__all__ = ['DiskShardStorage', 'SyntheticMemoryBank']
