# NAYER on the Fashion-MNIST CPU bench without label text: the
# all-MiniLM-L6-v2 embeddings of ./nayer_lenet5_lenet5half_1xb200_fashionmnist.py
# replaced by the text-free orthogonal table (every class equally far from
# every other; see README.md). Everything else, seeds included, is the same,
# so the two runs measure what the label text adds.
_base_ = ['./nayer_lenet5_lenet5half_1xb200_fashionmnist.py']

model = dict(
    generator=dict(
        label_embeddings=dict(
            _delete_=True, type='orthogonal', num_classes=10, dim=384,
            seed=0)))
