"""Pure pieces of the fake daemon: dag-pb/UnixFS blocks, the importer, multipart."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipfscluster.cid import CID, DAG_PB, RAW
from ipfscluster.errors import InvalidInput
from ipfscluster.testing.fakeipfs.importer import (
    ImportOptions,
    Importer,
    parse_chunker,
)
from ipfscluster.testing.fakeipfs.multipart import (
    DirectoryEntry,
    FileEntry,
    MultipartError,
    SymlinkEntry,
    boundary_of,
    encode_multipart,
    parse_parts,
    parse_tree,
)
from ipfscluster.testing.fakeipfs.unixfs import (
    TYPE_FILE,
    PBLink,
    decode_pbnode,
    decode_unixfs,
    encode_pbnode,
    encode_unixfs,
)

# --- blocks ------------------------------------------------------------------------


def test_known_block_bytes():
    # kubo's empty file: PBNode{Data=UnixFS{Type=File, filesize=0}}
    assert encode_pbnode((), encode_unixfs(TYPE_FILE, None, 0)) == b"\x0a\x04\x08\x02\x18\x00"
    # the empty directory QmUNLL...
    block = encode_pbnode((), encode_unixfs(1))
    assert str(CID.v0(hashlib.sha256(block).digest())) == (
        "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
    )


def test_links_are_written_before_data():
    child = CID.v0(hashlib.sha256(b"x").digest())
    block = encode_pbnode([PBLink(child, "", 7)], b"\x08\x02")
    assert block[0] == 0x12  # field 2 (Links) first
    assert block.endswith(b"\x0a\x02\x08\x02")


@given(
    names=st.lists(st.text(max_size=8), max_size=4),
    sizes=st.lists(st.integers(0, 2**40), min_size=4, max_size=4),
    data=st.one_of(st.none(), st.binary(max_size=64)),
)
@settings(max_examples=50, deadline=None)
def test_pbnode_round_trip(names, sizes, data):
    links = tuple(
        PBLink(CID.v1(RAW, b"\x12\x20" + hashlib.sha256(n.encode()).digest()), n, s)
        for n, s in zip(names, sizes)
    )
    node = decode_pbnode(encode_pbnode(links, data))
    assert node.links == links and node.data == data


def test_unixfs_round_trip_and_errors():
    fs = decode_unixfs(encode_unixfs(TYPE_FILE, b"abc", 10, [3, 7]))
    assert (fs.type, fs.data, fs.filesize, fs.blocksizes) == (TYPE_FILE, b"abc", 10, (3, 7))
    with pytest.raises(InvalidInput):
        decode_unixfs(b"\x12\x01a")  # no Type
    with pytest.raises(InvalidInput):
        decode_pbnode(b"\x12\x05\x0a")  # truncated link


# --- importer ----------------------------------------------------------------------


def _tree(importer_blocks, root: CID):
    """Depth and per-level link counts of a file DAG."""
    node = decode_pbnode(importer_blocks[root])
    return [len(node.links)] + (_tree(importer_blocks, node.links[0].cid) if node.links else [])


@pytest.mark.parametrize(
    "chunks, shape",
    [
        (1, [0]),  # a single leaf is the root
        (2, [2, 0]),
        (174, [174, 0]),
        (175, [2, 174, 0]),  # the second subtree keeps its depth
        (174 * 174 + 1, [2, 174, 174, 0]),
    ],
)
def test_balanced_layout_shape(chunks, shape):
    blocks = {}
    importer = Importer(ImportOptions(chunk_size=1), lambda cid, data: blocks.setdefault(cid, data))
    root = importer.add_chunks(bytes([i % 256]) + b"" for i in range(chunks))
    assert _tree(blocks, root.cid) == shape
    assert root.filesize == chunks
    # Size: the root block plus its links' cumulative sizes
    node = decode_pbnode(blocks[root.cid])
    assert root.size == len(blocks[root.cid]) + sum(link.tsize for link in node.links)
    if chunks == 175:
        last = decode_pbnode(blocks[node.links[1].cid])
        assert len(last.links) == 1  # one leaf under its own internal node
        assert decode_unixfs(node.data).blocksizes == (174, 1)


def test_raw_leaves_and_cid_versions():
    data = b"q" * 5
    assert Importer(ImportOptions(cid_version=1)).add_bytes(data).cid.codec == RAW
    v1_pb = Importer(ImportOptions(cid_version=1, raw_leaves=False)).add_bytes(data).cid
    assert (v1_pb.version, v1_pb.codec) == (1, DAG_PB)
    mixed = Importer(ImportOptions(raw_leaves=True, chunk_size=2)).add_bytes(data)
    assert mixed.cid.version == 0  # the root stays CIDv0 dag-pb, its leaves are raw
    with pytest.raises(InvalidInput):
        ImportOptions(cid_version=2)


def test_directory_links_sorted_bytewise_and_unique():
    importer = Importer()
    a = importer.add_bytes(b"a")
    blocks = {}
    importer = Importer(put_block=lambda cid, data: blocks.setdefault(cid, data))
    root = importer.add_directory([("b", a), ("B", a), ("a", a)])
    assert [link.name for link in decode_pbnode(blocks[root.cid]).links] == ["B", "a", "b"]
    with pytest.raises(InvalidInput):
        importer.add_directory([("x", a), ("x", a)])


@pytest.mark.parametrize(
    "text, size",
    [(None, 262144), ("", 262144), ("size-1000", 1000), ("size-1048576", 1048576)],
)
def test_parse_chunker(text, size):
    assert parse_chunker(text) == size


@pytest.mark.parametrize("text", ["size-0", "size-x", "size-1048577", "rabin", "buzhash"])
def test_parse_chunker_rejects(text):
    with pytest.raises(InvalidInput):
        parse_chunker(text)


# --- multipart (reference section 15 variants) -------------------------------------


def _body(*parts, boundary=b"B0UND"):
    out = b""
    for headers, content in parts:
        out += b"--" + boundary + b"\r\n" + b"".join(h + b"\r\n" for h in headers)
        out += b"\r\n" + content + b"\r\n"
    return out + b"--" + boundary + b"--\r\n"


def test_boundary_quoted_or_not():
    assert boundary_of('multipart/form-data; boundary="a b"') == b"a b"
    assert boundary_of("multipart/form-data; boundary=xyz") == b"xyz"
    with pytest.raises(MultipartError):
        boundary_of("application/json")
    with pytest.raises(MultipartError):
        boundary_of("multipart/form-data")


def test_file_disposition_without_name_and_binary_content():
    content = b"\r\n--B0UN\r\n\x00\xff"  # looks like a boundary but is not one
    body = _body(([b'Content-Disposition: file; filename="x.bin"'], content))
    [part] = parse_parts(body, b"B0UND")
    assert (part.name, part.filename, part.body) == ("", "x.bin", content)


def test_url_encoded_filenames_and_field_metadata():
    body = _body(
        ([b'Content-Disposition: form-data; name="file"; filename="d%2Fx.txt"'], b"x"),
        (
            [
                b'Content-Disposition: form-data; name="file?mode=0755&mtime=5"; filename="a+b%20c"',
                b"Abspath: /home/u/a b c",
            ],
            b"y",
        ),
    )
    tree = parse_tree(body, "multipart/form-data; boundary=B0UND")
    assert tree[0] == DirectoryEntry("d", {"x.txt": FileEntry("d/x.txt", b"x")})
    assert tree[1] == FileEntry("a b c", b"y", mode=0o755, mtime=5, abspath="/home/u/a b c")


def test_directory_parts_symlinks_and_implicit_parents():
    body = _body(
        ([b'Content-Disposition: form-data; name="file"; filename="top"',
          b"Content-Type: application/x-directory"], b""),
        ([b'Content-Disposition: form-data; name="file"; filename="top/empty"',
          b"Content-Type: application/x-directory"], b""),
        ([b'Content-Disposition: form-data; name="file"; filename="top/l"',
          b"Content-Type: application/symlink"], b"target"),
        ([b'Content-Disposition: form-data; name="file"; filename="other/deep/f"'], b"f"),
    )
    top, other = parse_tree(body, "multipart/form-data; boundary=B0UND")
    assert list(top.children) == ["empty", "l"]
    assert top.children["l"] == SymlinkEntry("top/l", "target")
    assert other.children["deep"].children["f"].data == b"f"


def test_nested_multipart_mixed_directory():
    inner = _body(
        ([b'Content-Disposition: file; filename="dir/a"'], b"A"), boundary=b"INNER"
    )
    body = _body(
        (
            [
                b'Content-Disposition: form-data; name="file"; filename="dir"',
                b"Content-Type: multipart/mixed; boundary=INNER",
            ],
            inner,
        )
    )
    [directory] = parse_tree(body, "multipart/form-data; boundary=B0UND")
    assert directory.children["a"] == FileEntry("dir/a", b"A")


def test_unnamed_parts_stay_separate():
    body = _body(([b"Content-Disposition: form-data; name=file"], b"1"),
                 ([b"Content-Disposition: form-data; name=file"], b"2"))
    assert [e.data for e in parse_tree(body, "multipart/form-data; boundary=B0UND")] == [b"1", b"2"]


def test_truncated_body_is_an_error():
    with pytest.raises(MultipartError):
        parse_parts(b"--B0UND\r\nContent-Disposition: file\r\n\r\nabc", b"B0UND")
    with pytest.raises(MultipartError):
        parse_parts(b"no boundary here", b"B0UND")


def test_encode_multipart_round_trip():
    body, content_type = encode_multipart([("d", None), ("d/x y.txt", b"data")])
    [directory] = parse_tree(body, content_type)
    assert directory.children["x y.txt"].data == b"data"


@given(
    size=st.integers(0, 40),
    chunk=st.integers(1, 7),
    links=st.integers(2, 5),
    raw=st.booleans(),
)
@settings(max_examples=60, deadline=None)
def test_imported_files_read_back(size, chunk, links, raw):
    """Whatever the layout, walking the DAG gives the content back and the sizes add up."""
    data = bytes(range(size))
    blocks = {}
    options = ImportOptions(raw_leaves=raw, chunk_size=chunk, max_links=links)
    root = Importer(options, lambda cid, block: blocks.setdefault(cid, block)).add_bytes(data)

    def read(cid):
        if cid.codec == RAW:
            return blocks[cid], len(blocks[cid])
        node = decode_pbnode(blocks[cid])
        fs = decode_unixfs(node.data)
        parts = [read(link.cid) for link in node.links]
        assert len(node.links) <= links
        assert [link.tsize for link in node.links] == [p[1] for p in parts]
        assert fs.filesize == len(fs.data or b"") + sum(len(p[0]) for p in parts)
        total = len(blocks[cid]) + sum(p[1] for p in parts)
        return (fs.data or b"") + b"".join(p[0] for p in parts), total

    content, total = read(root.cid)
    assert content == data and total == root.size and root.filesize == size


@given(
    st.lists(
        st.tuples(
            st.lists(st.text("abc xyz%+/é", min_size=1, max_size=4), min_size=1, max_size=3),
            st.binary(max_size=30),
        ),
        max_size=5,
    )
)
@settings(max_examples=60, deadline=None)
def test_multipart_round_trip(files):
    """Bodies built like kubo's client parse back to the same files."""
    paths = {}
    for components, data in files:
        clean = [c.replace("/", "_").strip() or "_" for c in components]
        clean = [c if c not in (".", "..") else "_" for c in clean]
        paths.setdefault("/".join(clean), data)
    # a path cannot be both a file and a directory
    names = sorted(paths)
    paths = {p: d for p, d in paths.items() if not any(o.startswith(p + "/") for o in names)}
    body, content_type = encode_multipart(paths.items())
    found = {}

    def walk(entry):
        if isinstance(entry, DirectoryEntry):
            for child in entry.children.values():
                walk(child)
        else:
            found[entry.path] = entry.data

    for entry in parse_tree(body, content_type):
        walk(entry)
    assert found == paths


@pytest.mark.parametrize(
    "text, value",
    [("10", 10), ("-10", -10), ("+7", 7), ("010", 8), ("0x1f", 31), ("0o17", 15), ("0b101", 5),
     ("0", 0), ("1_000", 1000), ("", None), ("--1", None), ("9223372036854775808", None)],
)
def test_parse_go_int(text, value):
    from ipfscluster.testing.fakeipfs.call import parse_go_int

    if value is None:
        with pytest.raises(ValueError):
            parse_go_int(text)
    else:
        assert parse_go_int(text) == value


# murmur3 x64 128 (seed 0), first half, as computed by the independent mmh3 package
MURMUR3_VECTORS = {
    b"": 0x0,
    b"a": 0x85555565F6597889,
    b"hello": 0xCBD8A7B341BD9B02,
    b"0123456789abcdef": 0x4BE06D94CF4AD1A7,
    b"0123456789abcdefXYZ": 0x99D375026C4A901D,
}


@pytest.mark.parametrize("data, expected", list(MURMUR3_VECTORS.items()))
def test_murmur3_known_answers(data, expected):
    from ipfscluster.testing.fakeipfs.hamt import murmur3_64

    assert murmur3_64(data) == expected


def test_sharded_directory_structure_and_lookup():
    from ipfscluster.testing.fakeipfs.hamt import FANOUT, HASH_MURMUR3, name_hash, needs_sharding

    child = Importer().add_bytes(b"x")
    entries = [(f"{i:0200d}", child) for i in range(1200)]  # 1200 * 234 bytes > 256 KiB
    assert needs_sharding(entries) and not needs_sharding(entries[:1000])
    blocks = {}
    importer = Importer(put_block=lambda cid, data: blocks.setdefault(cid, data))
    root = decode_pbnode(blocks[importer.add_directory(entries).cid])
    fs = decode_unixfs(root.data)
    assert (fs.type, fs.hash_type, fs.fanout) == (5, HASH_MURMUR3, FANOUT)
    assert int.from_bytes(fs.data, "big").bit_count() == len(root.links)
    assert [link.name[:2] for link in root.links] == sorted(link.name[:2] for link in root.links)
    # every name is found by following its hash bytes
    for name, _ in entries[:50]:
        node, found = root, None
        for byte in name_hash(name):
            prefix = f"{byte:02X}"
            link = next(link for link in node.links if link.name.startswith(prefix))
            if link.name == prefix:
                node = decode_pbnode(blocks[link.cid])
                continue
            found = link
            break
        assert found is not None and found.name == prefix + name
