// Durable records vs plain heap objects inside one vat: the price of state
// that lives in the vatstore (and survives upgrades) instead of the heap.
import { Host } from '../host/index.js';
import { compare } from './harness.js';

const VAT = `
  import { Far } from '@endo/far';
  import { makeKindHandle, defineDurableKind, makeScalarBigMapStore } from '@quickvat/vat-data';
  export function buildRootObject() {
    const make = defineDurableKind(makeKindHandle('Rec'), (i) => ({ i, label: 'record ' + i }), { i: ({ state }) => state.i });
    const durable = makeScalarBigMapStore('durable', { durable: true });
    const heap = new Map();
    let d = 0; let h = 0;
    return Far('bench', {
      durable(count) { for (let k = 0; k < count; k++) { durable.init(d, make(d)); d++; } return d; },
      heap(count) { for (let k = 0; k < count; k++) { heap.set(h, Far('Rec', { i: () => h })); h++; } return h; },
      readDurable(count) { let t = 0; for (let k = 0; k < count; k++) t += durable.get(k).i(); return t; },
      readHeap(count) { let t = 0; for (let k = 0; k < count; k++) t += heap.get(k).i(); return t; },
    });
  }`;

export async function runVatDataBench(): Promise<void> {
  console.log('\n== vat-data (100 records per delivery)');
  const host = await Host.open({ deliveryBudget: 10_000_000_000n });
  const { root } = host.createVat(VAT, { name: 'vat-data-bench' });
  const op = (method: string) => (done: () => void) => void host.E(root)[method](100).then(done);
  await host.E(root).durable(100);
  await host.E(root).heap(100);
  await compare(
    'create 100 records: durable kind + durable map store vs Far objects in a heap Map',
    { name: 'heap objects', fn: op('heap'), defer: true },
    { name: 'durable records', fn: op('durable'), defer: true },
  );
  await compare(
    'read 100 records',
    { name: 'heap objects', fn: op('readHeap'), defer: true },
    { name: 'durable records', fn: op('readDurable'), defer: true },
  );
  await host.close();
}
