"""Install mmssod.

A wheel (``pip install .``, ``python -m build``, built from the checkout or from the sdist) ships
``mmssod/.mim/{configs,tools,model-index.yml}``, copied from the source tree, so that ``mim train mmssod
<config>`` and ``_base_ = ['mmssod::<config>']`` find them. An editable install (``pip install -e .``) links
them instead (``mmssod/.mim/configs -> ../../configs``), so they follow the checkout.
"""

import os
import os.path as osp
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = osp.dirname(osp.abspath(__file__))
MIM_FILES = ('configs', 'tools', 'model-index.yml')
NOT_SHIPPED = shutil.ignore_patterns('__pycache__', '*.py[cod]', '*.nbi', '*.nbc')  # caches


def read_version():
    scope = {}
    with open(osp.join(HERE, 'mmssod', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def read_requirements(name):
    with open(osp.join(HERE, 'requirements', name)) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line]


def _remove(path):
    if osp.isdir(path) and not osp.islink(path):
        shutil.rmtree(path)
    elif osp.lexists(path):
        os.remove(path)


def mim_sources():
    """Paths of the files that go to ``mmssod/.mim``; an error naming the first one that is missing."""
    sources = [osp.join(HERE, name) for name in MIM_FILES]
    for src in sources:
        if not osp.exists(src):
            raise FileNotFoundError(
                f'{src} is missing, so mmssod/.mim would lack it: build from a source checkout or from an '
                f'sdist made by `python -m build --sdist` (MANIFEST.in puts configs/, tools/ and '
                f'model-index.yml in it)'
            )
    return sources


def place_mim_files(mim_dir, link):
    """Copy configs/, tools/ and model-index.yml into ``mim_dir`` (a wheel's ``mmssod/.mim``), or link them
    there (an editable install: ``mmssod/.mim/configs -> ../../configs``)."""
    os.makedirs(mim_dir, exist_ok=True)
    for src in mim_sources():
        dst = osp.join(mim_dir, osp.basename(src))
        _remove(dst)
        if link:
            os.symlink(osp.relpath(src, mim_dir), dst)
        elif osp.isdir(src):
            shutil.copytree(src, dst, ignore=NOT_SHIPPED)
        else:
            shutil.copyfile(src, dst)


class BuildPyWithMim(build_py):
    """``build_py`` that also provides ``mmssod/.mim``: copied into the built package, or linked in the
    source tree for an editable install."""

    def run(self):
        super().run()
        if self.editable_mode:
            place_mim_files(osp.join(HERE, 'mmssod', '.mim'), link=True)
        else:
            place_mim_files(osp.join(self.build_lib, 'mmssod', '.mim'), link=False)


if __name__ == '__main__':
    setup(
        name='mmssod',
        version=read_version(),
        description='OpenMMLab model-zoo add-on: ACRST, Cal-DETR, SpCL and DDeP for MMDetection / '
        'MMEngine / MMPretrain',
        long_description=open(osp.join(HERE, 'README.md')).read()
        if osp.exists(osp.join(HERE, 'README.md'))
        else '',
        long_description_content_type='text/markdown',
        license='Apache-2.0',
        python_requires='>=3.9',
        packages=find_packages(exclude=('configs', 'tools', 'tests', 'tests.*')),
        cmdclass={'build_py': BuildPyWithMim},
        install_requires=read_requirements('runtime.txt'),
        extras_require={
            'pretrained': read_requirements('pretrained.txt'),
            'tests': read_requirements('tests.txt'),
        },
        zip_safe=False,
    )
