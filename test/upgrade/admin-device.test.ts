import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Host, sourceBundleFromText } from '../../host/index.js';

const QUOTER = (rule: string) => `
import { provideKindHandle, defineDurableKind } from '@quickvat/vat-data';
import { bps } from 'host:parameters';
export const defineInstallationKinds = () => (baggage) => {
  const make = defineDurableKind(provideKindHandle(baggage, 'Quoter'), () => ({}), { quote(_, a) { return ${rule}; } });
  return () => ({ publicFacet: make() });
};`;
const HOLDER = `import { Far, E } from '@endo/far';
export function buildRootObject(_p, _v, baggage) {
  return Far('holder', {
    hold(admin) { baggage.init('admin', admin); },
    setExits(x) { return E(baggage.get('admin')).setExits(x); },
    upgrade(cap, exits) { return E(baggage.get('admin')).upgrade(cap, exits === undefined ? {} : { exits }); },
    info() { return Promise.all([E(baggage.get('admin')).getInstanceId(), E(baggage.get('admin')).getIncarnation()]); },
  });
}`;

/** A quoter instance (bps 25 from its exits) and a holder vat holding its admin capability. */
async function quoterHeldByVat(host: Host) {
  const kit = host.startInstance(host.install(QUOTER('a * bps / 10000n'), { label: 'q', exits: { 'host:parameters': { data: { bps: 25n } } } })) as {
    instanceId: string;
    publicFacet: object;
    adminFacet: object;
  };
  const holder = host.startInstance(host.install(HOLDER, { label: 'holder' })).root as object;
  await host.E(holder).hold(host.adminPresence(kit.adminFacet));
  return { kit, holder };
}

describe('admin capability held by a vat', () => {
  it('lets a vat upgrade an instance (new bundle, or new exits for the same bundle), atomically, across restarts', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qv-admin-'));
    let host = await Host.open({ path: dir });
    const { kit, holder } = await quoterHeldByVat(host);
    assert.deepEqual(await host.E(holder).info(), [kit.instanceId, 1]);
    assert.deepEqual(await host.E(holder).setExits({ 'host:parameters': { data: { bps: 50n } } }), { incarnation: 2 });
    assert.equal(await host.E(kit.publicFacet).quote(10000n), 50n);
    await host.close();

    host = await Host.open({ path: dir });
    const again = host.vats().find((v) => v.name === 'holder')!.root!;
    const v3 = sourceBundleFromText(QUOTER('a * bps / 1000n'), 'v3.js');
    host.bundles.put(v3.pieces);
    assert.deepEqual(await host.E(again).upgrade(host.bundlecapPresence(host.bundles.install(v3.manifest))), { incarnation: 3 });
    const pub = (host.instanceKit(kit.instanceId) as { publicFacet: object }).publicFacet;
    assert.equal(await host.E(pub).quote(10000n), 500n);

    const broken = sourceBundleFromText('export const defineInstallationKinds = () => () => () => ({});', 'broken.js');
    host.bundles.put(broken.pieces);
    const before = host.store.stateHash(`k.vs.${kit.instanceId}.`);
    await assert.rejects(
      host.E(again).upgrade(host.bundlecapPresence(host.bundles.install(broken.manifest))),
      /upgrade failed and was rolled back: kind "Quoter" \(defined by incarnation 3\) was not redefined/,
    );
    assert.equal(host.store.stateHash(`k.vs.${kit.instanceId}.`), before);
    assert.equal(await host.E(pub).quote(10000n), 500n);
    await assert.rejects(host.E(again).setExits({ 'host:other': { data: 1 } }).then(() => host.E(host.adminPresence(host.instanceKit(kit.instanceId).adminFacet)).nope()), /an adminFacet has no method "nope"/);
    await host.close();
  });

  it('validates exit specs given through the admin capability exactly like install-time policies, storing nothing on refusal', async () => {
    const host = await Host.open();
    try {
      const { kit, holder } = await quoterHeldByVat(host);
      const v2 = sourceBundleFromText(QUOTER('a * bps / 1000n'), 'v2.js');
      host.bundles.put(v2.pieces);
      const cap = host.bundlecapPresence(host.bundles.install(v2.manifest));
      // Deliveries to the holder change its own state; what must not change is what the host keeps about policies and the instance.
      const kept = () => [host.store.stateHash('h.'), host.store.stateHash(`k.vs.${kit.instanceId}.`)];
      const before = kept();
      const bad: [unknown, RegExp][] = [
        [{ 'host:files': { power: 'filesystem' } }, /named exit host:files: unknown power "filesystem"/],
        [{ 'host:parameters': { data: 1, power: 'console' } }, /named exit host:parameters: expected exactly one of/],
        [{ 'host:parameters': 'yes' }, /named exit host:parameters: expected \{ data \}, \{ module \} or \{ power: 'console' \}, got string/],
        [{ 'host:lib': { module: 'export const = 1;' } }, /named exit host:lib: module does not compile/],
        [{ files: { data: 1 } }, /exit "files" is not a named exit/],
      ];
      for (const [exits, message] of bad) {
        await assert.rejects(host.E(holder).setExits(exits), message, `setExits(${JSON.stringify(exits)})`);
        await assert.rejects(host.E(holder).upgrade(cap, exits), message, `upgrade(cap, { exits: ${JSON.stringify(exits)} })`);
        // The same specs are refused on the host's own paths, with the same words.
        assert.throws(() => host.install(QUOTER('a'), { label: 'again', exits: exits as never }), message);
        await assert.rejects(host.upgrade(kit.adminFacet, QUOTER('a'), { exits: exits as never }), message);
      }
      assert.deepEqual(kept(), before, 'nothing was stored');
      assert.deepEqual(await host.E(holder).info(), [kit.instanceId, 1]);
      assert.equal(await host.E(kit.publicFacet).quote(10000n), 25n);
    } finally {
      await host.close();
    }
  });
});
