/** The shared memory registry (sidecar/shm/regions.ts) on files in a temporary directory. */
import t, { type Test } from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileNameOfKey, MAX_REGIONS, SharedMemoryRegions } from '../../../sidecar/shm/regions.js'

function setup (t: Test): { dir: string, regions: SharedMemoryRegions, file: (name: string, size: number) => string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'onnx-sidecar-shm-'))
  const regions = new SharedMemoryRegions({ dir })
  t.teardown(() => { regions.close(); fs.rmSync(dir, { recursive: true, force: true }) })
  const file = (name: string, size: number): string => {
    const p = path.join(dir, name)
    fs.writeFileSync(p, Buffer.alloc(size))
    return p
  }
  return { dir, regions, file }
}

const openFds = (): number => fs.readdirSync('/proc/self/fd').length

t.test('keys: one name in the directory, with or without the leading slash', async t => {
  t.equal(fileNameOfKey('/region0'), 'region0')
  t.equal(fileNameOfKey('region0'), 'region0')
  t.equal(fileNameOfKey('/a..b'), 'a..b', 'dots inside a name are a name')
  for (const bad of ['/..', '..', '/.', '/a/b', '/../etc/passwd', '//x', '/', 'a\u0000b']) {
    t.throws(() => fileNameOfKey(bad), { statusCode: 400, code: 'OS_ERR_SHM_BAD_KEY' }, JSON.stringify(bad))
  }
  t.throws(() => fileNameOfKey(''), { code: 'OS_ERR_BAD_REQUEST', message: /key must be a non-empty string/ })
  t.throws(() => fileNameOfKey(3), { code: 'OS_ERR_BAD_REQUEST', message: /key must be a non-empty string/ })
  t.throws(() => fileNameOfKey('/' + 'k'.repeat(300)), { code: 'OS_ERR_BAD_REQUEST', message: /key is longer than 256 bytes/ })
})

t.test('register, status, unregister; descriptors closed', async t => {
  const { regions, file } = setup(t)
  file('in', 64)
  file('out', 128)
  const before = openFds()
  regions.register('input', '/in', 0, 64)
  regions.register('output', 'out', 32, 96)
  t.equal(openFds(), before + 2, 'one descriptor per region')
  t.same(regions.status(), [{ name: 'input', key: '/in', offset: 0, byte_size: 64 }, { name: 'output', key: 'out', offset: 32, byte_size: 96 }])
  t.same(regions.status('output'), [{ name: 'output', key: 'out', offset: 32, byte_size: 96 }])
  t.throws(() => regions.status('nope'), { statusCode: 400, code: 'OS_ERR_SHM_REGION_NOT_FOUND', message: "Unable to find system shared memory region: 'nope'" })
  t.throws(() => regions.register('input', '/out', 0, 8), { statusCode: 409, code: 'OS_ERR_SHM_REGION_EXISTS', message: "shared memory region 'input' already in manager" })
  t.equal(openFds(), before + 2, 'a refused register keeps no descriptor')
  regions.unregister('nope')
  t.equal(regions.size, 2, 'an unknown name unregisters nothing, without error')
  regions.unregister('input')
  t.same(regions.status().map(r => r.name), ['output'])
  t.equal(openFds(), before + 1)
  regions.register('input', '/in', 0, 64)
  regions.unregister()
  t.equal(regions.size, 0, 'unregister all')
  t.equal(openFds(), before, 'every descriptor closed')
})

t.test('register refuses what it cannot serve, and changes nothing', async t => {
  const { dir, regions, file } = setup(t)
  file('small', 16)
  fs.mkdirSync(path.join(dir, 'adir'))
  fs.symlinkSync('/etc/hostname', path.join(dir, 'link'))
  const before = openFds()
  t.throws(() => regions.register('r', '/small', 0, 17), { code: 'OS_ERR_SHM_RANGE', message: "region 'r': offset 0 + byte_size 17 is past the end of '/small' (16 bytes)" })
  t.throws(() => regions.register('r', '/small', 8, 9), { code: 'OS_ERR_SHM_RANGE', message: /offset 8 \+ byte_size 9/ })
  t.throws(() => regions.register('r', '/missing', 0, 1), { statusCode: 400, code: 'OS_ERR_SHM_OPEN_FAILED', message: "unable to open shared memory region '/missing': no such shared memory object" })
  t.throws(() => regions.register('r', '/link', 0, 1), { code: 'OS_ERR_SHM_OPEN_FAILED', message: /symbolic link/ })
  t.throws(() => regions.register('r', '/adir', 0, 1), { code: 'OS_ERR_SHM_OPEN_FAILED', message: /adir/ })
  t.throws(() => regions.register('r', '/../small', 0, 1), { code: 'OS_ERR_SHM_BAD_KEY' })
  t.throws(() => regions.register('r', '/small', -1, 1), { code: 'OS_ERR_BAD_REQUEST', message: 'offset must be a non-negative integer, got -1' })
  t.throws(() => regions.register('r', '/small', 0, '8'), { code: 'OS_ERR_BAD_REQUEST', message: 'byte_size must be a non-negative integer, got "8"' })
  t.throws(() => regions.register('r', '/small', 0, undefined), { code: 'OS_ERR_BAD_REQUEST', message: /byte_size must be/ })
  t.throws(() => regions.register('', '/small', 0, 1), { code: 'OS_ERR_BAD_REQUEST', message: /name must be non-empty/ })
  t.throws(() => regions.register('n'.repeat(257), '/small', 0, 1), { code: 'OS_ERR_BAD_REQUEST', message: /longer than 256 bytes/ })
  t.equal(regions.size, 0)
  t.equal(openFds(), before, 'no descriptor left open by a refusal')
})

t.test('at most MAX_REGIONS regions', async t => {
  const { regions, file } = setup(t)
  file('r', 8)
  for (let i = 0; i < MAX_REGIONS; i++) regions.register(`r${i}`, '/r', 0, 8)
  t.throws(() => regions.register('one-more', '/r', 0, 8), { code: 'OS_ERR_SHM_TOO_MANY', message: /256 shared memory regions/ })
  regions.unregister('r0')
  regions.register('one-more', '/r', 0, 8)
  t.equal(regions.size, MAX_REGIONS)
})

t.test('read and write at offsets, checked against the region and the file', async t => {
  const { regions, file } = setup(t)
  const p = file('data', 64)
  fs.writeFileSync(p, Buffer.from(Array.from({ length: 64 }, (_, i) => i)))
  regions.register('d', '/data', 16, 32)
  const got = regions.read("input 'x'", { region: 'd', offset: 4, byteSize: 8 })
  t.same([...got], [20, 21, 22, 23, 24, 25, 26, 27], 'region offset + tensor offset')
  t.equal(got.byteOffset, 0, 'a buffer of its own, which a typed array can view')
  t.throws(() => regions.read("input 'x'", { region: 'd', offset: 30, byteSize: 4 }), { code: 'OS_ERR_SHM_RANGE', message: "input 'x': shared_memory_offset 30 + shared_memory_byte_size 4 is past the end of region 'd' (32 bytes)" })
  t.throws(() => regions.read("input 'x'", { region: 'zz', offset: 0, byteSize: 4 }), { code: 'OS_ERR_SHM_REGION_NOT_FOUND' })
  regions.write("output 'y'", { region: 'd', offset: 8, byteSize: 4 }, Uint8Array.of(9, 8, 7))
  t.same([...fs.readFileSync(p).subarray(24, 28)], [9, 8, 7, 27], 'written at region offset + tensor offset')
  t.throws(() => regions.write("output 'y'", { region: 'd', offset: 0, byteSize: 2 }, Uint8Array.of(1, 2, 3)),
    { code: 'OS_ERR_SHM_RANGE', message: "output 'y': shared memory size specified with the request (2 bytes) should be at least 3 bytes to hold the results" })
  regions.check("output 'y'", { region: 'd', offset: 0, byteSize: 32 })
  fs.truncateSync(p, 20)
  t.throws(() => regions.read("input 'x'", { region: 'd', offset: 0, byteSize: 8 }), { code: 'OS_ERR_SHM_RANGE', message: /now 20 bytes \(was it truncated\?\)/ }, 'the real size is checked again at use')
})

t.test('a region the sidecar may only read serves inputs only', { skip: process.getuid?.() === 0 ? 'root ignores file modes' : false }, async t => {
  const { regions, file } = setup(t)
  const p = file('ro', 8)
  fs.chmodSync(p, 0o444)
  regions.register('ro', '/ro', 0, 8)
  t.equal(regions.read("input 'x'", { region: 'ro', offset: 0, byteSize: 8 }).byteLength, 8)
  t.throws(() => regions.write("output 'y'", { region: 'ro', offset: 0, byteSize: 8 }, Uint8Array.of(1)), { message: /read-only to the sidecar/ })
})

t.test('close releases every region and refuses new ones', async t => {
  const { regions, file } = setup(t)
  file('c', 8)
  const before = openFds()
  regions.register('c', '/c', 0, 8)
  regions.close()
  t.equal(regions.size, 0)
  t.equal(openFds(), before)
  t.throws(() => regions.register('c', '/c', 0, 8), { statusCode: 503, code: 'OS_ERR_SHUTTING_DOWN' })
})
