// Drive a kubo RPC API with the official JavaScript client (kubo-rpc-client) and
// print what it saw as JSON.  Usage: node kubo_rpc_client_session.mjs <api url>
import { create } from 'kubo-rpc-client'

const ipfs = create({ url: process.argv[2] })
const text = (s) => new TextEncoder().encode(s)
const out = {}

const added = await ipfs.add(
  { path: 'hello.txt', content: text('hello world\n'), mode: 0o644, mtime: { secs: 5 } },
  { cidVersion: 0 })
out.added = { cid: added.cid.toString(), size: added.size, path: added.path, mode: added.mode }

out.dir = []
const files = [{ path: 'd/a.txt', content: text('a') }, { path: 'd/sub/b.txt', content: text('b') }]
for await (const e of ipfs.addAll(files, { wrapWithDirectory: true })) {
  out.dir.push({ path: e.path, cid: e.cid.toString(), size: e.size })
}

const chunks = []
for await (const c of ipfs.cat(added.cid)) chunks.push(...c)
out.cat = new TextDecoder().decode(new Uint8Array(chunks))

out.pins = []
for await (const p of ipfs.pin.ls({ type: 'recursive' })) out.pins.push(p.cid.toString())
out.removed = (await ipfs.pin.rm(added.cid)).toString()
out.pinned = (await ipfs.pin.add(added.cid)).toString()
try {
  await ipfs.pin.rm(out.dir[0].cid)
} catch (e) {
  out.rmError = e.message
}
out.id = (await ipfs.id()).id.toString()
out.version = (await ipfs.version()).version
out.objects = (await ipfs.repo.stat()).numObjects.toString()
console.log(JSON.stringify(out))
