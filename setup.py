"""Install mmdfkd: ``pip install -e .`` (development) or ``pip install .``."""
import os.path as osp
import shutil
import warnings

from setuptools import find_packages, setup


def read_requirements(path):
    """Parse a requirements file, following ``-r`` includes and skipping
    comments, so that setup.py and ``pip install -r`` stay in sync."""
    requirements = []
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            if line.startswith('-r '):
                requirements += read_requirements(
                    osp.join(osp.dirname(path), line[3:].strip()))
            else:
                requirements.append(line)
    return requirements


def add_mim_extension():
    """Copy (or link in editable mode) configs/ and tools/ into
    ``mmdfkd/.mim`` so that ``mim`` and ``mmdfkd::`` config paths find them
    after a non-editable install."""
    mim_path = osp.join('mmdfkd', '.mim')
    if os.environ.get('MMDFKD_NO_MIM', '0') == '1':
        return
    os.makedirs(mim_path, exist_ok=True)
    for name in ('configs', 'tools', 'model-index.yml'):
        src = osp.join(osp.dirname(osp.abspath(__file__)), name)
        dst = osp.join(mim_path, name)
        if not osp.exists(src):
            continue
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        try:
            os.symlink(osp.relpath(src, mim_path), dst)
        except OSError:
            warnings.warn(f'cannot link {src}; copying it instead')
            if osp.isdir(src):
                shutil.copytree(src, dst)
            else:
                shutil.copyfile(src, dst)


import os  # noqa: E402

version = {}
with open(osp.join('mmdfkd', 'version.py')) as f:
    exec(f.read(), version)

if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='mmdfkd',
        version=version['__version__'],
        description='Data-free knowledge distillation toolbox on the '
        'OpenMMLab stack (mmengine, mmpretrain)',
        long_description=open('README.md').read()
        if osp.exists('README.md') else '',
        long_description_content_type='text/markdown',
        license='Apache License 2.0',
        packages=find_packages(exclude=('configs', 'tools', 'tests', 'benchmarks')),
        include_package_data=True,
        package_data={'mmdfkd': ['.mim/configs/**/*', '.mim/tools/**/*']},
        python_requires='>=3.9',
        install_requires=read_requirements('requirements/runtime.txt'),
        extras_require={
            'tests': read_requirements('requirements/tests.txt'),
            # pip install -e .[optional]: the sentence encoder of
            # tools/misc/compute_label_embeddings.py
            'optional': read_requirements('requirements/optional.txt'),
        },
        zip_safe=False)
