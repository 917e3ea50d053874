"""The component contracts: documented, self-contained, usable with verifyObject."""

from __future__ import annotations

import ast
import inspect

import pytest
from twisted.application.service import IService, Service
from zope.interface import implementer
from zope.interface.exceptions import BrokenImplementation, BrokenMethodImplementation
from zope.interface.interface import Method
from zope.interface.verify import verifyObject

from ipfscluster import interfaces

# value modules a contract may mention; everything else under ipfscluster is a component
_ALLOWED_OWN_MODULES = {
    "ipfscluster.types",
    "ipfscluster.errors",
    "ipfscluster.cid",
    "ipfscluster.multiaddr",
    "ipfscluster.identity",
}

_COMPONENTS = [i for i in interfaces.ALL_INTERFACES if i is not interfaces.IComponent]


def _own_members(iface):
    """Names declared directly by ``iface`` (not inherited)."""
    return list(iface.names(all=False))


def test_every_component_of_the_design_has_an_interface():
    names = {i.__name__ for i in interfaces.ALL_INTERFACES}
    design = "IConsensus IState IPinTracker IIPFSConnector IPeerMonitor IInformer"
    assert names >= set((design + " IPinAllocator IAPI IRPCClient").split())
    assert sorted(interfaces.__all__[:-1]) == sorted(names)


@pytest.mark.parametrize("iface", interfaces.ALL_INTERFACES, ids=lambda i: i.__name__)
def test_interface_and_every_member_are_documented(iface):
    assert (iface.__doc__ or "").strip(), f"{iface.__name__} has no docstring"
    undocumented = [
        name for name in _own_members(iface) if not (iface[name].__doc__ or "").strip()
    ]
    assert undocumented == [], f"{iface.__name__}: no docstring on {undocumented}"


@pytest.mark.parametrize("iface", _COMPONENTS, ids=lambda i: i.__name__)
def test_every_interface_declares_something(iface):
    assert _own_members(iface), f"{iface.__name__} declares no method or attribute"


def test_method_docstrings_say_what_deferred_methods_fire_with():
    """A method documented as returning a Deferred says what it fires with."""
    vague = []
    for iface in interfaces.ALL_INTERFACES:
        for name in _own_members(iface):
            member = iface[name]
            doc = member.__doc__ or ""
            if isinstance(member, Method) and "Deferred" in doc and "fir" not in doc:
                vague.append(f"{iface.__name__}.{name}")
    assert vague == []


def test_long_lived_components_are_services():
    for iface in (
        interfaces.IConsensus,
        interfaces.IPinTracker,
        interfaces.IIPFSConnector,
        interfaces.IPeerMonitor,
        interfaces.IInformer,
        interfaces.IAPI,
    ):
        assert iface.extends(IService), iface.__name__
    # pure or passive contracts are not services
    assert not interfaces.IState.extends(IService)
    assert not interfaces.IPinAllocator.extends(IService)


def test_module_imports_no_component_package():
    tree = ast.parse(inspect.getsource(interfaces))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                imported.add("." * node.level + (node.module or ""))
            else:
                imported.add(node.module)
    own = {m for m in imported if m.startswith(("ipfscluster", "."))}
    assert own <= _ALLOWED_OWN_MODULES, f"component imports: {own - _ALLOWED_OWN_MODULES}"
    third_party = {m.split(".")[0] for m in imported if m not in own}
    assert third_party <= {"__future__", "twisted", "zope"}


def test_an_implementation_passes_verify_object():
    @implementer(interfaces.IPinAllocator)
    class Allocator:
        def metrics(self):
            return ["freespace"]

        def allocate(self, cid, current, candidates, priority):
            return []

    assert verifyObject(interfaces.IPinAllocator, Allocator())


def test_verify_object_catches_a_missing_method_and_a_wrong_signature():
    @implementer(interfaces.IAPI)
    class MissingAddresses(Service):
        pass

    with pytest.raises(BrokenImplementation):
        verifyObject(interfaces.IAPI, MissingAddresses())

    @implementer(interfaces.IPinAllocator)
    class WrongArity:
        def metrics(self):
            return []

        def allocate(self, cid):
            return []

    with pytest.raises(BrokenMethodImplementation):
        verifyObject(interfaces.IPinAllocator, WrongArity())


def test_a_service_component_passes_verify_object():
    @implementer(interfaces.IAPI)
    class API(Service):
        def addresses(self):
            return []

    assert verifyObject(interfaces.IAPI, API())
