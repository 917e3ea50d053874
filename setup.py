"""Packaging for ipfscluster."""

import os
import re

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def _version():
    with open(os.path.join(HERE, "ipfscluster", "__init__.py")) as f:
        return re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)


def _readme():
    with open(os.path.join(HERE, "README.rst")) as f:
        return f.read()


setup(
    name="ipfscluster",
    version=_version(),
    description="Pinset orchestration for IPFS: a Twisted implementation of ipfs-cluster",
    long_description=_readme(),
    long_description_content_type="text/x-rst",
    license="MIT OR Apache-2.0",
    python_requires=">=3.11",
    packages=find_packages(include=["ipfscluster", "ipfscluster.*"]) + ["twisted.plugins"],
    package_data={"twisted": ["plugins/ipfscluster_plugin.py"]},
    include_package_data=True,
    install_requires=[
        "Twisted[tls]>=24.7",
        "klein>=24.8",
        "treq>=24.9",
        "pyOpenSSL>=24.0",
        "cryptography>=42",
        "service-identity>=24.1",
        "attrs>=23.1",
        "zope.interface>=6.0",
        "sortedcontainers>=2.4",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-twisted>=1.14",
            "hypothesis>=6.100",
            "ipfshttpclient>=0.7",  # a real kubo client, against the fake daemon
            "multiaddr<0.1",  # ipfshttpclient's; later releases pull in trio
            "sphinx>=7",  # tests/test_docs.py builds docs/ with -W
        ],
    },
    entry_points={
        "console_scripts": [
            "ipfs-cluster-service = ipfscluster.service_cli:main",
            "ipfs-cluster-ctl = ipfscluster.ctl.main:main",
        ],
    },
    classifiers=[
        "Framework :: Twisted",
        "Programming Language :: Python :: 3",
        "Topic :: System :: Distributed Computing",
    ],
)
