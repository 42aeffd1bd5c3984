// Printable references (issue 14): host.refOf(presence) -> "ko12", and
// host.presence(ref) back, in this process and after Host.open on the store.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Host } from '../../host/index.js';
import { V1, V2 } from '../fixtures/upgrade-contracts.js';
import { BOB_VAT } from '../fixtures/vats.js';

describe('references that outlive a restart', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qv-refs-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('gives durable and heap objects a ref that answers with their state after close + Host.open', async () => {
    let host = await Host.open({ path: dir });
    const kit = host.startInstance(host.install(V1, { label: 'counters' })) as { publicFacet: object; instanceId: string };
    const durable = (await host.E(kit.publicFacet).makeCounter('a', 5n)) as object;
    await host.E(durable).increment();
    const bob = host.createVat(BOB_VAT, { name: 'bob' }).root;
    const heap = (await host.E(bob).makeCounter(40)) as object;
    await host.E(heap).increment();

    const durableRef = host.refOf(durable);
    const heapRef = host.refOf(heap);
    assert.match(durableRef, /^ko\d+$/);
    assert.notEqual(durableRef, heapRef);
    assert.equal(host.presence(durableRef), durable, 'the same presence in this process');
    assert.equal(host.interfaceOf(durable), 'Alleged: Counter');
    assert.equal(host.interfaceOf(heap), 'Alleged: counter');
    await host.close();

    host = await Host.open({ path: dir });
    try {
      assert.equal(await host.E(host.presence(durableRef)).increment(), 7n);
      assert.equal(await host.E(host.presence(heapRef)).increment(), 42);
      // And after an upgrade, the durable object keeps its ref and its state.
      await host.upgrade(host.adminFacet(kit.instanceId), V2);
      assert.equal(await host.E(host.presence(durableRef)).read(), 7n);
    } finally {
      await host.close();
    }
  });

  it('refuses what is not a presence, and refs this store never issued', async () => {
    const host = await Host.open();
    try {
      assert.throws(() => host.refOf({}), /refOf needs a presence/);
      assert.throws(() => host.presence('ko4242'), /no object "ko4242" on this host/);
      assert.throws(() => host.presence('kp1'), /references look like ko12/);
    } finally {
      await host.close();
    }
  });
});
