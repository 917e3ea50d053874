"""Adding content through the cluster (``POST /add``): the daemon imports, the cluster pins.

:func:`add` sends the uploaded multipart parts to this peer's IPFS daemon with
``pin=false`` (the daemon builds the DAG exactly as ``ipfs add`` would), reads the
objects it answers, chooses the *roots* and cluster-pins each of them with the pin
options of the query.  The objects come back as :class:`~ipfscluster.types.AddedOutput`
values in the daemon's order; the roots carry their allocations.

Roots (:func:`choose_roots`): with ``wrap-with-directory`` the last object (the
wrapping directory); otherwise every top-level object (a name without ``/``): the
files and folders given on the command line, whose recursive pins cover what is
inside them.

Query keys understood on top of the pin options (``PinOptions.from_query``):
``no-pin`` (import only), ``cid-version``, ``raw-leaves``, ``wrap-with-directory``,
``chunker``, ``hidden``, ``layout`` (``trickle`` → kubo's ``trickle``), ``hash``,
``nocopy`` (passed to the daemon as kubo options).  Content is not streamed to the
daemon block by block as upstream's cluster-side importer does: the daemon imports it
in one request, which gives the same CIDs.
"""

from __future__ import annotations

from typing import AsyncIterator

from ipfscluster.api.multipart import encode_parts
from ipfscluster.cid import CID
from ipfscluster.errors import IPFSError
from ipfscluster.types import AddedOutput, PinOptions

#: REST ``/add`` keys passed to kubo's ``add`` unchanged
KUBO_OPTIONS = ("cid-version", "raw-leaves", "wrap-with-directory", "chunker", "hidden", "hash", "nocopy")
_TRUE = ("1", "t", "T", "TRUE", "true", "True")


def choose_roots(names_and_cids: list[tuple[str, str]], wrap: bool) -> list[str]:
    """The CIDs to pin among the daemon's ``(name, cid)`` answers (see the module
    docstring), without duplicates, in order."""
    if not names_and_cids:
        return []
    if wrap:
        return [names_and_cids[-1][1]]
    roots = [cid for name, cid in names_and_cids if "/" not in name.strip("/")]
    return list(dict.fromkeys(roots))


def kubo_params(query: dict) -> list[tuple[str, str]]:
    """The kubo ``add`` options of a REST ``/add`` query."""
    params = [(key, query[key]) for key in KUBO_OPTIONS if query.get(key) not in (None, "")]
    if query.get("layout") == "trickle":
        params.append(("trickle", "true"))
    return params


async def add(cluster, connector, parts, query: dict, now_ns: int) -> AsyncIterator[AddedOutput]:
    """Import ``parts`` through ``connector`` and cluster-pin the roots with ``cluster``.

    ``cluster.pin(cid, options)`` commits each root; ``query`` is the REST query
    (one string per key).  Yields the daemon's objects as ``AddedOutput``.  Raises
    InvalidParameter for bad pin options and what the daemon or the pin raise.
    """
    options = PinOptions.from_query(query, now_ns)
    body, content_type = encode_parts(parts)
    objects = await connector.add(body, content_type, kubo_params(query))
    outputs = []
    for obj in objects:
        if not obj.get("Hash"):
            continue  # a progress object
        try:
            cid = CID.parse(obj["Hash"])
        except Exception:
            raise IPFSError(f"the IPFS daemon answered add with an invalid CID {obj.get('Hash')!r}") from None
        size = obj.get("Size") or "0"
        if not str(size).isdigit():
            raise IPFSError(f"the IPFS daemon answered add with an invalid Size {size!r}")
        outputs.append(AddedOutput(obj.get("Name", ""), cid, size=int(size)))
    wrap = query.get("wrap-with-directory", "") in _TRUE
    roots = choose_roots([(o.name, str(o.cid)) for o in outputs], wrap)
    allocations = {}
    if query.get("no-pin", "") not in _TRUE:
        for root in roots:
            if root in allocations:
                continue
            pin = await cluster.pin(CID.parse(root), options)
            allocations[root] = pin.allocations
    for out in outputs:
        allocs = allocations.get(str(out.cid))
        if allocs:
            yield AddedOutput(out.name, out.cid, size=out.size, allocations=tuple(allocs))
        else:
            yield out


__all__ = ["KUBO_OPTIONS", "add", "choose_roots", "kubo_params"]
