// Type-checked against the shipped declarations (tsc --noEmit); not run.
import { Host, bundleSource, UpgradeError, type Installation, type InstanceKit } from 'quickvat';

export async function run(entry: string): Promise<bigint> {
  const host: Host = await Host.open();
  const cap = host.bundles.add(await bundleSource(entry));
  const installation: Installation = host.install(cap, { label: 'counter' });
  const kit: InstanceKit = host.startInstance(installation, { parameters: { start: 1 } });
  const counter = (await host.E(kit.publicFacet).makeCounter('a', 5n)) as object;
  const ref: string = host.refOf(counter);
  try {
    await host.upgrade(kit.adminFacet, cap);
  } catch (err) {
    if (!(err instanceof UpgradeError)) throw err;
  }
  const value = (await host.E(host.presence(ref)).read()) as bigint;
  await host.close();
  return value;
}
