// `npm run demo`: the main job, end to end on the embedded default store.
// (Grows with each layer; today: a zygote image and vats forked from it.)
import { compressImage, encodeImage, Sandbox } from './engine/index.js';

const ms = (t0: bigint) => `${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(1)} ms`;

const INIT = `
  globalThis.ledger = new Map();
  globalThis.mint = (req) => { const [who, n] = JSON.parse(req); ledger.set(who, (ledger.get(who) ?? 0n) + BigInt(n)); return String(ledger.get(who)); };
  globalThis.table = Array.from({ length: 20000 }, (_, i) => ({ id: i, label: 'item-' + i }));
  'initialised';
`;

let t0 = process.hrtime.bigint();
const zygote = Sandbox.create({ identity: 'installation-1' });
zygote.evaluate(INIT);
console.log(`cold start: fresh QuickJS instance + init code   ${ms(t0)}  (${zygote.lastUsed} gas units)`);

const image = zygote.snapshot();
console.log(`zygote image: ${(encodeImage(image).length / 1024).toFixed(0)} KiB sparse, ${(compressImage(image).length / 1024).toFixed(0)} KiB compressed`);

t0 = process.hrtime.bigint();
const vats = Sandbox.fork(image, ['alice-vat', 'bob-vat', 'carol-vat']);
console.log(`forked 3 vats from the zygote                     ${ms(t0)}`);

vats.forEach((vat, i) => console.log(`  vat ${i}: mint -> ${vat.call('mint', JSON.stringify(['alice', 10 * (i + 1)]))} (own ledger), random ${String(vat.evaluate('Math.random()')).slice(0, 8)}`));
console.log(`  zygote is untouched: ledger size ${zygote.evaluate('ledger.size')}`);

try {
  vats[0].evaluate('while (true) {}', { budget: 10_000_000n });
} catch (err) {
  console.log(`runaway loop in vat 0: ${(err as Error).message}`);
}
console.log(`vat 1 still answers: ${vats[1].call('mint', '["alice", 1]')}`);
const [a, b] = Sandbox.fork(image, ['same', 'same']);
a.call('mint', '["bob", 5]');
b.call('mint', '["bob", 5]');
console.log(`two replicas, same inputs -> same state hash: ${a.stateHash() === b.stateHash()} (${a.stateHash().slice(0, 16)}…)`);
