// The Agoric-style vat the upgrade figures are measured on: buildRootObject,
// N durable records of one kind in a durable map in baggage; v2 redefines the
// kind (same shape, a new method), as an Agoric vat upgrade must.
import type { Host } from '../host/index.js';

export function agoricStyleVat(version: 'v1' | 'v2'): string {
  const extra = version === 'v2' ? `, describe: ({ state }) => 'record ' + state.i` : '';
  return `
import { Far } from '@endo/far';
import { defineDurableKind, provideKindHandle, provideDurableMapStore } from '@agoric/vat-data';
export function buildRootObject(_powers, _params, baggage) {
  const makeRecord = defineDurableKind(provideKindHandle(baggage, 'Record'), (i) => ({ i, label: 'record ' + i }), { value: ({ state }) => state.i${extra} });
  const records = provideDurableMapStore(baggage, 'records');
  return Far('root', {
    add(from, count) { for (let k = from; k < from + count; k++) records.init(k, makeRecord(k)); return records.getSize(); },
    size() { return records.getSize(); },
    value(k) { return records.get(k).value(); },
    version() { return '${version}'; },
  });
}`;
}

const BATCH = 2000;

/** Fills the vat with `count` records, BATCH per delivery. */
export async function seedRecords(host: Host, root: object, count: number): Promise<void> {
  const E = (x: object) => host.E(x) as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  for (let done = 0; done < count; done += BATCH) await E(root).add(done, Math.min(BATCH, count - done));
}
