"""Install mmssod. A normal ``pip install .`` ships ``mmssod/.mim/{configs,tools}`` so that
``mim train mmssod <config>`` finds the project's configs and tools."""

import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))
MIM_FILES = ('configs', 'tools', 'model-index.yml')


def read_version():
    scope = {}
    with open(osp.join(HERE, 'mmssod', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def read_requirements(name):
    with open(osp.join(HERE, 'requirements', name)) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line]


def add_mim_extension():
    """Copy configs/tools into ``mmssod/.mim`` for wheel/sdist builds (mim looks there)."""
    if any(cmd in sys.argv for cmd in ('develop', 'editable_wheel')):
        return  # an editable install reads them from the source tree
    mim_dir = osp.join(HERE, 'mmssod', '.mim')
    os.makedirs(mim_dir, exist_ok=True)
    for name in MIM_FILES:
        src, dst = osp.join(HERE, name), osp.join(mim_dir, name)
        if osp.isdir(dst) and not osp.islink(dst):
            shutil.rmtree(dst)
        elif osp.exists(dst) or osp.islink(dst):
            os.remove(dst)
        if osp.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        elif osp.isfile(src):
            shutil.copyfile(src, dst)


if __name__ == '__main__':
    add_mim_extension()
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
        include_package_data=True,
        package_data={'mmssod': ['.mim/**/*', '.mim/*']},
        install_requires=read_requirements('runtime.txt'),
        extras_require={
            'pretrained': read_requirements('pretrained.txt'),
            'tests': read_requirements('tests.txt'),
        },
        zip_safe=False,
    )
