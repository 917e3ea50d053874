// Independent reference for the fake daemon's importer: computes the CIDs and
// cumulative sizes that `ipfs add` gives, with the npm ipfs-unixfs-importer set to
// kubo's legacy defaults.  Input (stdin, JSON): {"cases": [...]}, each case
//   {"id", "cidVersion", "files": [{"path", "source"}], "dirs": ["path", ...], "wrap",
//    optional "rawLeaves", "chunkSize", "maxLinks" overriding kubo's defaults}
// where "source" is a file on disk holding the content.  Output (stdout, JSON):
//   {"<id>": [{"path", "cid", "size"}, ...]} with every entry the importer yields.
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { MemoryBlockstore } from 'blockstore-core/memory'
import * as fs from 'node:fs'

function kuboOptions (c) {
  return {
    cidVersion: c.cidVersion,
    rawLeaves: c.rawLeaves ?? c.cidVersion === 1,
    reduceSingleLeafToSelf: true,
    leafType: 'file',
    chunker: fixedSize({ chunkSize: c.chunkSize ?? 262144 }),
    layout: balanced({ maxChildrenPerNode: c.maxLinks ?? 174 }),
    wrapWithDirectory: !!c.wrap
  }
}

async function readStdin () {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  return JSON.parse(Buffer.concat(chunks).toString('utf8'))
}

const request = await readStdin()
const out = {}
for (const c of request.cases) {
  const source = []
  for (const d of (c.dirs || [])) source.push({ path: d })
  for (const f of c.files) source.push({ path: f.path, content: fs.createReadStream(f.source) })
  const blockstore = new MemoryBlockstore()
  const entries = []
  for await (const entry of importer(source, blockstore, kuboOptions(c))) {
    entries.push({ path: entry.path ?? '', cid: entry.cid.toString(), size: entry.size.toString() })
  }
  out[c.id] = entries
}
process.stdout.write(JSON.stringify(out))
