"""``add`` gives kubo's CIDs and sizes: checked against an independent importer.

The reference is the npm package ``ipfs-unixfs-importer`` (with ``blockstore-core``'s
MemoryBlockstore), run by ``node`` and configured like kubo's defaults (fixed 256 KiB
chunks, balanced layout with 174 links, UnixFS leaves and CIDv0, or raw leaves with
CIDv1).  The ``npm_cache`` session fixture (conftest) installs it once into
``.cache/npm-unixfs`` (git-ignored).  The reference itself is first checked on
kubo's known answers.
"""

from __future__ import annotations

import json
import random
import subprocess

import pytest

from ipfscluster.cid import CID
from ipfscluster.testing.fakeipfs.multipart import encode_multipart
from ipfscluster.testing.fakeipfs.unixfs import decode_pbnode, decode_unixfs

CHUNK = 262144

PATTERN = bytes(range(251))  # no chunk of a patterned file repeats another
SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 174 * CHUNK + 1, 20 * 1024 * 1024]


@pytest.fixture(scope="session")
def reference(npm_cache):
    """A function running the node reference on cases; see unixfs_reference.mjs."""
    node, script = npm_cache.script("unixfs_reference.mjs")

    def run(cases):
        done = subprocess.run(
            [node, script],
            input=json.dumps({"cases": cases}),
            cwd=npm_cache.folder,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    return run


@pytest.fixture(scope="module")
def contents(tmp_path_factory):
    """The test files: size -> (path on disk, bytes)."""
    folder = tmp_path_factory.mktemp("contents")
    rng = random.Random(20)
    made = {}
    for size in SIZES:
        data = rng.randbytes(size) if size == SIZES[-1] else (PATTERN * (size // 251 + 1))[:size]
        path = folder / f"f{size}"
        path.write_bytes(data)
        made[size] = (str(path), data)
    return made


def test_reference_gives_kubos_known_answers(reference, tmp_path):
    hello = tmp_path / "hello"
    hello.write_bytes(b"hello world\n")
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    out = reference(
        [
            {"id": "hello", "cidVersion": 0, "files": [{"path": "h", "source": str(hello)}]},
            {"id": "empty", "cidVersion": 0, "files": [{"path": "e", "source": str(empty)}]},
        ]
    )
    assert out["hello"][0]["cid"] == "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
    assert out["empty"][0]["cid"] == "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"


@pytest.mark.slow
@pytest.mark.parametrize("cid_version", [0, 1])
def test_add_files_match_the_reference(reference, contents, stub, cid_version):
    cases = [
        {
            "id": str(size),
            "cidVersion": cid_version,
            "files": [{"path": f"f{size}", "source": path}],
        }
        for size, (path, _) in contents.items()
    ]
    expected = reference(cases)
    for size, (_, data) in contents.items():
        body, content_type = encode_multipart([(f"f{size}", data)])
        reply = stub.post(
            "add", [("cid-version", str(cid_version))], body=body, content_type=content_type
        )
        event = reply.lines()[-1]
        want = expected[str(size)][0]
        assert (size, event["Hash"], event["Size"]) == (size, want["cid"], want["size"])


def _add_wrapped(reference, stub, cid_version, directories, files):
    """Add ``files`` (``(path, source file, content)``) under ``directories`` with
    wrap-with-directory through the fake and the reference; assert every entry's
    CID and Size agree and return them by name."""
    expected = reference(
        [
            {
                "id": "wrapped",
                "cidVersion": cid_version,
                "wrap": True,
                "files": [{"path": p, "source": s} for p, s, _ in files],
            }
        ]
    )["wrapped"]
    upload = [(d, None) for d in directories] + [(p, data) for p, _, data in files]
    reply = stub.post(
        "add",
        [("cid-version", str(cid_version)), ("wrap-with-directory", "true")],
        files=upload,
    )
    got = {e["Name"]: (e["Hash"], e["Size"]) for e in reply.lines()}
    assert got == {e["path"]: (e["cid"], e["size"]) for e in expected}
    assert reply.lines()[-1]["Name"] == ""
    return got


@pytest.mark.parametrize("cid_version", [0, 1])
def test_add_wrapped_nested_directory_matches_the_reference(
    reference, contents, tmp_path, stub, cid_version
):
    small = tmp_path / "small"
    small.write_bytes(b"small file\n")
    tree = [
        ("top/a.txt", str(small)),
        ("top/big.bin", contents[CHUNK + 1][0]),
        ("top/sub/b.txt", contents[1][0]),
        ("top/sub/deeper/empty.bin", contents[0][0]),
        ("top/z.txt", str(small)),
    ]
    directories = ["top", "top/sub", "top/sub/deeper"]
    files = [(p, s, open(s, "rb").read()) for p, s in tree]
    got = _add_wrapped(reference, stub, cid_version, directories, files)
    assert "" in got and "top/sub/deeper" in got


@pytest.mark.slow
@pytest.mark.parametrize("cid_version", [0, 1])
def test_add_sharded_directory_matches_the_reference(reference, tmp_path, stub, cid_version):
    """A directory past kubo's 256 KiB estimate becomes a HAMT; sub-shards included."""
    count = 1300  # 1300 links of ~234 bytes: over the threshold, with slot collisions
    sources = []
    for i in range(count):
        path = tmp_path / f"c{i}"
        path.write_bytes(b"entry %d\n" % i)
        sources.append((f"big/{'n' * 190}{i:010d}", str(path), b"entry %d\n" % i))
    got = _add_wrapped(reference, stub, cid_version, ["big"], sources)
    shard = decode_pbnode(stub.daemon.blockstore.get(CID.parse(got["big"][0])))
    assert decode_unixfs(shard.data).type == 5  # a HAMT shard, not a plain directory
    name = sources[7][0]
    assert stub.post("cat", [("arg", f"/ipfs/{got[''][0]}/{name}")]).body == b"entry 7\n"


@pytest.mark.parametrize(
    "options, params",
    [
        ({"cidVersion": 0, "rawLeaves": True}, [("raw-leaves", "true")]),
        ({"cidVersion": 1, "rawLeaves": False}, [("cid-version", "1"), ("raw-leaves", "false")]),
        (
            {"cidVersion": 0, "chunkSize": 1000, "maxLinks": 11},
            [("chunker", "size-1000"), ("max-file-links", "11")],
        ),
    ],
)
def test_add_options_match_the_reference(reference, contents, stub, options, params):
    """Other leaf kinds, chunk sizes and widths: a deep tree from a 262145-byte file."""
    path, data = contents[CHUNK + 1]
    expected = reference([dict(options, id="o", files=[{"path": "f", "source": path}])])["o"][0]
    event = stub.add(data, name="f", params=params)
    assert (event["Hash"], event["Size"]) == (expected["cid"], expected["size"])
