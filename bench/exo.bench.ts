// Issue 12 figures, in one run: (1) the cost of an interface guard, a guarded
// durable exo method vs the same method on an unguarded durable kind; (2)
// zygote fork time with the runtime image that carries the Endo libraries
// (patterns, exo, errors...) vs the runtime image as it was before them,
// both images built here from the same sources.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Host } from '../host/index.js';
import { buildBaseImage, baseImage, type StoredImage } from '../host/kernel/base-image.js';
import { bundleRuntime } from '../host/kernel/runtime-bundle.js';
import { exampleContractSource } from '../host/example-contracts.js';
import { compare, compareInterleaved, fmtBytes, verdict } from './harness.js';

const CALLS = 100;
const HEAP_KEYS = 1000;

const VAT = `
  import { Far } from '@endo/far';
  import { makeKindHandle, defineDurableKind, defineDurableExoClass, M } from '@agoric/vat-data';
  import { makeScalarMapStore } from '@agoric/store';
  const CounterI = M.interface('Counter', { add: M.call(M.nat()).returns(M.nat()) });
  export function buildRootObject() {
    const makePlain = defineDurableKind(makeKindHandle('Plain'), () => ({ n: 0n }), { add: ({ state }, d) => (state.n += d) });
    const makeGuarded = defineDurableExoClass(makeKindHandle('Guarded'), CounterI, () => ({ n: 0n }), { add(d) { return (this.state.n += d); } });
    const plain = makePlain();
    const guarded = makeGuarded();
    const heap = makeScalarMapStore('heap');
    return Far('bench', {
      plain(count) { let r; for (let k = 0; k < count; k++) r = plain.add(1n); return r; },
      guarded(count) { let r; for (let k = 0; k < count; k++) r = guarded.add(1n); return r; },
      objects() { return { plain, guarded }; },
      fill(n) { for (let i = n; i > 0; i--) heap.init('k' + String(i).padStart(6, '0'), i); },
      keysUnchanged(count) { let x; for (let k = 0; k < count; k++) x = heap.keys()[0]; return x; },
      keysAfterChange(count) { let x; for (let k = 0; k < count; k++) { heap.init('tmp', 0); heap.delete('tmp'); x = heap.keys()[0]; } return x; },
    });
  }`;

// Compiled to dist/bench/; the stand-ins are TypeScript sources in bench/baseline/.
const BASELINE_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'baseline');

const pages = (image: StoredImage) => image.image.pageIndices.length;

export async function runExoBench(): Promise<void> {
  console.log(`\n== exos (issue 12): guard cost (${CALLS} method calls per delivery), fork time with the Endo libraries in the image`);
  const host = await Host.open({ deliveryBudget: 10_000_000_000n });
  const { root } = host.createVat(VAT, { name: 'exo-bench' });
  const op = (method: string) => (done: () => void) => void host.E(root)[method](CALLS).then(done);
  await host.E(root).plain(1);
  await host.E(root).guarded(1);
  const ratio = await compare(
    `${CALLS} calls to a durable object's method: unguarded kind vs guarded exo class (M.call(M.nat()).returns(M.nat()))`,
    { name: 'unguarded durable kind', fn: op('plain'), defer: true },
    { name: 'guarded durable exo', fn: op('guarded'), defer: true },
  );
  console.log(`  guard cost: ${ratio >= 1 ? 'none measurable' : `${(1 / ratio).toFixed(2)}x the unguarded call`}`);
  const { plain, guarded } = (await host.E(root).objects()) as { plain: object; guarded: object };
  const one = (target: object) => (done: () => void) => void host.E(target).add(1n).then(done);
  const perDelivery = await compare(
    'one call per delivery from outside the vat (kernel round trip included)',
    { name: 'unguarded durable kind', fn: one(plain), defer: true },
    { name: 'guarded durable exo', fn: one(guarded), defer: true },
  );
  console.log(`  guard cost per delivery: ${perDelivery >= 1 ? 'none measurable' : `${(1 / perDelivery).toFixed(2)}x`}`);
  // Heap stores keep their sorted keys until a key is added or removed
  // (break-12 item 6): keys() on an unchanged store vs keys() after a change,
  // which re-sorts (as every keys() call did before).
  await host.E(root).fill(HEAP_KEYS);
  const keysRatio = await compare(
    `10 keys() calls on a ${HEAP_KEYS}-key heap map store: after a change each time (re-sort) vs unchanged (kept order)`,
    { name: 'keys() after a change', fn: (done: () => void) => void host.E(root).keysAfterChange(10).then(done), defer: true },
    { name: 'keys() unchanged', fn: (done: () => void) => void host.E(root).keysUnchanged(10).then(done), defer: true },
  );
  verdict('kept order is faster than re-sorting', keysRatio > 1, `${keysRatio.toFixed(2)}x`);
  await host.close();

  // The runtime as it was before issue 12: same sources, with the built-in
  // module table and the exo hooks replaced by their former selves, and not
  // minified (as it was built then).
  const withoutLibs = {
    './builtin-modules.js': path.join(BASELINE_DIR, 'builtin-modules-before.ts'),
    './exo.js': path.join(BASELINE_DIR, 'exo-absent.ts'),
  };
  const before = buildBaseImage('quickvat-base', await bundleRuntime(withoutLibs, { minify: false }));
  const after = baseImage();
  const unminified = buildBaseImage('quickvat-base', await bundleRuntime({}, { minify: false }));
  const describe = (image: StoredImage) => `${pages(image)} pages (${fmtBytes(pages(image) * 4096)})`;
  console.log(`  base image before issue 12: ${describe(before)}; now (Endo libraries, minified): ${describe(after)}; now unminified: ${describe(unminified)}`);
  const LEDGER = exampleContractSource('ledger', 'v1');
  const oldHost = await Host.open({ baseImage: () => before });
  const newHost = await Host.open();
  const oldInstallation = oldHost.install(LEDGER, { label: 'ledger' });
  const newInstallation = newHost.install(LEDGER, { label: 'ledger' });
  const speed = compareInterleaved(
    'starting an instance (zygote fork): runtime image before issue 12 vs with the Endo libraries',
    { name: 'fork, image before', fn: () => void oldHost.startInstance(oldInstallation) },
    { name: 'fork, image with Endo libraries', fn: () => void newHost.startInstance(newInstallation) },
    100,
  );
  verdict('fork time within 1.2x of before', 1 / speed <= 1.2, `${(1 / speed).toFixed(2)}x the time`);
  await Promise.all([oldHost.close(), newHost.close()]);
}
