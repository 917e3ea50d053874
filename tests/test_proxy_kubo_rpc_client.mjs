// The JavaScript kubo client (kubo-rpc-client) against an IPFS proxy, in steps, so
// the Python test can check the cluster between them.  Prints what it saw as JSON.
// Usage: node test_proxy_kubo_rpc_client.mjs <api url> add|rm <cid?>
import { create } from 'kubo-rpc-client'

const ipfs = create({ url: process.argv[2] })
const step = process.argv[3]
const out = {}
const listed = async () => {
  const cids = []
  for await (const p of ipfs.pin.ls({ type: 'recursive' })) cids.push(p.cid.toString())
  return cids
}

if (step === 'add') {
  const content = new TextEncoder().encode('through the proxy from JavaScript\n')
  const added = await ipfs.add({ path: 'js.txt', content }, { cidVersion: 0 })
  out.added = added.cid.toString()
  out.pinned = (await ipfs.pin.add(added.cid)).toString()
  out.listed = await listed()
} else {
  out.removed = (await ipfs.pin.rm(process.argv[4])).toString()
  out.listed = await listed()
}
console.log(JSON.stringify(out))
