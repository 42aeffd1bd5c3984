// Uses quickvat as a dependency would: install, start, call, restart, call again.
import { Host, bundleSource } from 'quickvat';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qv-consumer-state-'));
let host = await Host.open({ path: dir });
const cap = host.bundles.add(await bundleSource(new URL('./counter.js', import.meta.url).pathname));
const installation = host.install(cap, { label: 'counter' });
const { publicFacet } = host.startInstance(installation);
const counter = await host.E(publicFacet).makeCounter('a', 5n);
await host.E(counter).increment();
const ref = host.refOf(counter);
await host.close();

host = await Host.open({ path: dir });
const value = await host.E(host.presence(ref)).increment(2n);
await host.close();
fs.rmSync(dir, { recursive: true, force: true });
if (value !== 8n) throw new Error(`expected 8n after a restart, got ${String(value)}`);
console.log(`consumer: ${ref} answered ${value}n after a restart`);
