// The durability and key matrix (issue #11, part 6): every kind of value into
// every virtual and durable place, as a value and as a key, behaving as in
// Agoric: durable places refuse non-durables naming where they sit, virtual
// places take any passable, keys must be scalars or remotables, weak keys
// remotables.
import assert from 'node:assert/strict';
import { Host } from '../../host/index.js';
import { MATRIX, ORACLE } from '../fixtures/liveslots-vats.js';

const VALUES = ['string', 'number', 'heapFar', 'virtualObject', 'durableObject', 'virtualStore', 'durableStore', 'kindHandle', 'presence', 'promise', 'error', 'array', 'record'];
const REMOTABLES = ['heapFar', 'virtualObject', 'durableObject', 'virtualStore', 'durableStore', 'kindHandle', 'presence'];
const NON_DURABLE = ['heapFar', 'virtualObject', 'virtualStore', 'promise'];
const SCALARS = ['string', 'number'];

/** 'ok' or a RegExp the refusal must match. */
function expected(value: string, place: string): 'ok' | RegExp {
  const durable = place.startsWith('durable');
  if (place.endsWith('value') || place.endsWith('state') || place.endsWith('init')) {
    if (durable && NON_DURABLE.includes(value)) return /non-durable|is a promise/;
    return 'ok';
  }
  const weak = place.includes('weak');
  if (weak && !REMOTABLES.includes(value)) return /keys must be remotables/;
  if (!weak && !REMOTABLES.includes(value) && !SCALARS.includes(value)) return /keys must be scalars or remotables/;
  if (durable && NON_DURABLE.includes(value)) return /non-durable/;
  return 'ok';
}

describe('liveslots: durability and key matrix (issue #11)', () => {
  it('every value in every virtual and durable place, as value and key, behaves as in Agoric', async () => {
    const host = await Host.open();
    try {
      const presence = host.createVat(ORACLE, { name: 'other' }).root;
      const root = host.createVat(MATRIX, { name: 'matrix' }).root;
      const table = (await host.E(root).run(presence)) as Record<string, Record<string, string>>;
      const wrong: string[] = [];
      let cells = 0;
      for (const value of VALUES) {
        for (const [place, outcome] of Object.entries(table[value])) {
          cells++;
          const want = expected(value, place);
          const good = want === 'ok' ? outcome === 'ok' : outcome.startsWith('refused: ') && want.test(outcome);
          if (!good) wrong.push(`${value} as ${place}: got ${outcome}, expected ${want}`);
        }
      }
      assert.equal(cells, VALUES.length * 14);
      assert.deepEqual(wrong, []);
      // Durable refusals name where the value sits.
      assert.match(table.heapFar['durable object state'], /D\.state\.x is a non-durable object \(an ordinary Far object\)/);
      assert.match(table.promise['durable map value'], /collection "m" value for "k" is a promise/);
    } finally {
      await host.close();
    }
  });
});
