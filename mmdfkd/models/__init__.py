from .algorithms import *  # noqa: F401,F403
from .backbones import *  # noqa: F401,F403
from .distillers import *  # noqa: F401,F403
from .generators import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .memory import *  # noqa: F401,F403
from .recorders import *  # noqa: F401,F403
from .wrappers import *  # noqa: F401,F403
