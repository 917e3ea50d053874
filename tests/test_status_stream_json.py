"""The ``status`` stream's lines are built without GlobalPinInfo values:
``GlobalPinInfo.json_from_pin_infos`` must give the same JSON, key order included."""

from __future__ import annotations

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from ipfscluster.api.rest.streaming import encode_json
from ipfscluster.testing import strategies
from ipfscluster.types import GlobalPinInfo


@settings(max_examples=300)
@given(infos=st.lists(strategies.pin_infos(), min_size=1, max_size=4))
def test_json_from_pin_infos_is_the_values_json(infos):
    cid = infos[0].cid
    infos = [attrs.evolve(i, cid=cid) for i in infos]
    assert encode_json(GlobalPinInfo.json_from_pin_infos(cid, infos)) == encode_json(
        GlobalPinInfo.from_pin_infos(cid, infos).to_json()
    )
