"""Plain-PyTorch reference loops: the overhead floor of ``tools/benchmark.py``.

Each module here trains the same networks with the same losses, weights,
batch sizes, optimisers and step counts as one of mmdfkd's Fashion-MNIST
configs, written as the shortest loop plain PyTorch allows (no mmengine, no
mmdfkd registry, no hooks). ``tools/benchmark.py --compare-plain`` runs it
and mmdfkd's ``train_step`` alternately and reports mmdfkd's throughput as a
ratio of this floor.
"""
