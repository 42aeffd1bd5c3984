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
    upgrade(cap) { return E(baggage.get('admin')).upgrade(cap, {}); },
    info() { return Promise.all([E(baggage.get('admin')).getInstanceId(), E(baggage.get('admin')).getIncarnation()]); },
  });
}`;

describe('admin capability held by a vat', () => {
  it('lets a vat upgrade an instance (new bundle, or new exits for the same bundle), atomically, across restarts', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qv-admin-'));
    let host = await Host.open({ path: dir });
    const kit = host.startInstance(host.install(QUOTER('a * bps / 10000n'), { label: 'q', exits: { 'host:parameters': { data: { bps: 25n } } } })) as {
      instanceId: string;
      publicFacet: object;
      adminFacet: object;
    };
    const holder = host.startInstance(host.install(HOLDER, { label: 'holder' })).root as object;
    await host.E(holder).hold(host.adminPresence(kit.adminFacet));
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
});
