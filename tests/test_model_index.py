"""model-index.yml (OpenMMLab style) lists a metafile.yml per method folder;
each metafile lists every config of its folder exactly once, with teacher,
student, dataset and results, and every result it states is the one the
method's README reports."""
import glob
import os.path as osp
import re

import pytest
import yaml

from conftest import ROOT

DATASET_NAMES = {
    'cifar10': 'CIFAR-10',
    'cifar100': 'CIFAR-100',
    'tinyimagenet': 'Tiny-ImageNet',
    'fashionmnist': 'Fashion-MNIST',
}
METHOD_FOLDERS = sorted(
    osp.basename(d) for d in glob.glob(osp.join(ROOT, 'configs', '*'))
    if osp.isdir(d) and osp.basename(d) not in ('_base_', 'teachers'))


def load_yaml(relpath):
    with open(osp.join(ROOT, relpath)) as f:
        return yaml.safe_load(f)


def test_model_index_imports_one_metafile_per_method_folder():
    index = load_yaml('model-index.yml')
    assert sorted(index['Import']) == sorted(
        f'configs/{folder}/metafile.yml' for folder in METHOD_FOLDERS)
    assert {'dafl', 'dfad', 'zskt', 'deepinv'} <= set(METHOD_FOLDERS)


@pytest.mark.parametrize('folder', METHOD_FOLDERS)
def test_metafile_lists_every_config(folder):
    for name in ('metafile.yml', 'README.md'):
        assert osp.isfile(osp.join(ROOT, 'configs', folder, name)), (
            f'configs/{folder} has no {name}: every method folder documents '
            'its configs and results (and model-index.yml imports the '
            'metafile)')
    metafile = load_yaml(f'configs/{folder}/metafile.yml')
    collections = {c['Name']: c for c in metafile['Collections']}
    for collection in collections.values():
        assert collection['Paper']['URL'].startswith('https://')
        assert osp.isfile(osp.join(ROOT, collection['README']))
        assert osp.isfile(osp.join(ROOT, collection['Code']['URL']))

    listed = [model['Config'] for model in metafile['Models']]
    assert len(listed) == len(set(listed)), 'a config is listed twice'
    on_disk = sorted(
        osp.relpath(p, ROOT)
        for p in glob.glob(osp.join(ROOT, 'configs', folder, '*.py')))
    assert sorted(listed) == on_disk

    for model in metafile['Models']:
        config = model['Config']
        assert osp.isfile(osp.join(ROOT, config)), config
        assert model['Name'] == osp.splitext(osp.basename(config))[0]
        assert model['In Collection'] in collections
        meta = model['Metadata']
        assert meta['Teacher'] and meta['Student']
        dataset_key = model['Name'].rsplit('_', 1)[-1]
        assert meta['Dataset'] == DATASET_NAMES[dataset_key]
        for result in model['Results']:
            assert result['Task'] == 'Image Classification'
            assert result['Dataset'] == meta['Dataset']
            assert result['Metrics'], f'{model["Name"]} states no result'
        assert model['Paper']['URL'] == (
            collections[model['In Collection']]['Paper']['URL'])


@pytest.mark.parametrize('folder', METHOD_FOLDERS)
def test_metafile_numbers_are_the_readme_numbers(folder):
    """Every accuracy in the metafile is quoted in the folder's README, so
    the two cannot drift apart silently."""
    if not osp.isfile(osp.join(ROOT, 'configs', folder, 'metafile.yml')):
        pytest.fail(f'configs/{folder} has no metafile.yml')
    metafile = load_yaml(f'configs/{folder}/metafile.yml')
    with open(osp.join(ROOT, 'configs', folder, 'README.md')) as f:
        readme_numbers = {float(n) for n in re.findall(r'\d+\.\d+', f.read())}
    for model in metafile['Models']:
        for result in model['Results']:
            for metric, value in result['Metrics'].items():
                assert float(value) in readme_numbers, (
                    f'{model["Name"]}: {metric} {value} is not in '
                    f'configs/{folder}/README.md')
