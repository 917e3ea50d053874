import re

import ipfscluster


def test_version_is_semver():
    assert re.fullmatch(r"\d+\.\d+\.\d+", ipfscluster.__version__)
