from mmdfkd.registry import TASK_UTILS


@TASK_UTILS.register_module()
class LinearWeightCurriculum:
    """A loss weight that ramps linearly between two epochs and is frozen
    outside them: the adversarial-weight curriculum of CuDFKD (Li et al.,
    "Dynamic Data-Free Knowledge Distillation by Easy-to-Hard Learning
    Strategy", arXiv 2208.13648; ``get_alpha_adv(type='linear')`` in its
    code), where the generator's adversarial term grows from easy to hard
    samples::

        e    = t // iters_per_epoch            (0-based epoch of iteration t)
        w(t) = start + slope * clip(e - begin, 0, end - begin)

    so w = start up to epoch ``begin``, rises by ``slope`` per epoch and
    stays at ``start + slope * (end - begin)`` from epoch ``end`` on. The
    reference updates the weight after each epoch from the epoch just
    finished, with fractions b, e of E epochs: its ramp is this one with
    ``begin = int(b * E) + 1`` and ``end = int(e * E) + 1``.

    The same form gives AdaDFKD's sliding window of hard negatives,
    h(e) = clip((1 - length) * (e - bE) / ((e - b) E), 0, 1 - length):
    ``start=0, slope=(1 - length) / ((e - b) E), begin=bE, end=eE``.

    The weight is a pure function of the iteration, so a resumed run gets
    the same weights without storing anything.

    Args:
        start (float): Weight before the ramp. Defaults to 0.
        slope (float): Change per epoch during the ramp. Defaults to 0.
        begin (float): First epoch of the ramp. Defaults to 0.
        end (float): Epoch at which the ramp stops; >= ``begin``.
        iters_per_epoch (int): Iterations per epoch. Defaults to 1 (t is
            then the epoch).
    """

    def __init__(self,
                 end: float,
                 start: float = 0.0,
                 slope: float = 0.0,
                 begin: float = 0.0,
                 iters_per_epoch: int = 1) -> None:
        if end < begin:
            raise ValueError(f'end ({end}) must not precede begin ({begin})')
        if not isinstance(iters_per_epoch, int) or iters_per_epoch < 1:
            raise ValueError('iters_per_epoch must be a positive int, got '
                             f'{iters_per_epoch!r}')
        self.start = float(start)
        self.slope = float(slope)
        self.begin = begin
        self.end = end
        self.iters_per_epoch = iters_per_epoch

    def __call__(self, iteration: int) -> float:
        epoch = int(iteration) // self.iters_per_epoch
        progress = min(max(epoch - self.begin, 0), self.end - self.begin)
        return self.start + self.slope * progress

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(start={self.start}, slope='
                f'{self.slope}, begin={self.begin}, end={self.end}, '
                f'iters_per_epoch={self.iters_per_epoch})')
