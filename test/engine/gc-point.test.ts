// A GC point (issue #11): the host can have QuickJS collect reference cycles
// at a moment it chooses, which QuickJS's own trigger (the heap grown by half
// since its last collection) would leave for later; the outcome depends only
// on the heap, so it is the same on every replica.
import assert from 'node:assert/strict';
import { Sandbox } from '../../host/engine/index.js';

const SETUP = `
  globalThis.makeCycle = () => { const a = {}; const b = { a }; a.b = b; globalThis.ref = new WeakRef(a); return 'made'; };
  globalThis.alive = () => { const fresh = {}; return String(globalThis.ref.deref() !== undefined); };
`;

function run(collect: boolean): { alive: string; hash: string } {
  const s = Sandbox.create();
  try {
    s.evaluate(SETUP);
    s.call('makeCycle', '');
    if (collect) s.collectAtNextAllocation();
    return { alive: s.call('alive', ''), hash: s.stateHash() };
  } finally {
    s.dispose();
  }
}

describe('engine: GC points', () => {
  it('collects a dropped reference cycle at the next call, which QuickJS alone would not', () => {
    assert.equal(run(false).alive, 'true', 'without a GC point the cycle waits for QuickJS’s own trigger');
    assert.equal(run(true).alive, 'false', 'after collectAtNextAllocation the cycle is gone');
  });

  it('gives the same heap on every run', () => {
    assert.equal(run(true).hash, run(true).hash);
    assert.notEqual(run(true).hash, run(false).hash);
  });
});
