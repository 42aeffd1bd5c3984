// Distributed GC (issue #11): what 10,000 create-export-drop rounds leave
// behind with GC points and without, and what a GC point costs when one
// follows every delivery, against none, measured in the same run.
import { Host } from '../host/index.js';
import { compare, fmtBytes, verdict } from './harness.js';

// Each round: the producer makes a virtual object and exports it; the
// consumer uses it once and forgets it.
const PRODUCER = `
  import { Far } from '@endo/far';
  import { defineKind } from '@agoric/vat-data';
  export function buildRootObject() {
    const makeTicket = defineKind('Ticket', (n) => ({ n, note: 'ticket ' + n }), { use({ state }) { return state.n; } });
    let made = 0;
    return Far('producer', { make() { made += 1; return makeTicket(made); }, trivial() { return 'ok'; } });
  }`;
const CONSUMER = `
  import { Far, E } from '@endo/far';
  export function buildRootObject() {
    return Far('consumer', {
      async rounds(producer, n) { let t = 0; for (let i = 0; i < n; i++) t += await E(await E(producer).make()).use(); return t; },
    });
  }`;

function count(host: Host, prefix: string): number {
  let n = 0;
  for (const _ of host.store.entries(prefix)) n++;
  return n;
}

async function rounds(gcEvery: number, total: number, every: number) {
  const host = await Host.open({ gcEvery, deliveryBudget: 10_000_000_000n });
  const producer = host.createVat(PRODUCER, { name: 'producer' });
  const consumer = host.createVat(CONSUMER, { name: 'consumer' });
  const rows: { rounds: number; vatstoreKeys: number; producerMemory: number; consumerMemory: number; clist: number; kernelObjects: number; kernelPromises: number }[] = [];
  for (let done = 0; done < total; ) {
    await host.E(consumer.root).rounds(producer.root, every);
    done += every;
    rows.push({
      rounds: done,
      vatstoreKeys: count(host, `k.vs.${producer.vatId}.`),
      producerMemory: host.kernel.vatMemoryBytes(producer.vatId),
      consumerMemory: host.kernel.vatMemoryBytes(consumer.vatId),
      clist: count(host, `k.c.${producer.vatId}.`),
      kernelObjects: count(host, 'k.ko.'),
      kernelPromises: count(host, 'k.kp.'),
    });
    process.stderr.write(`  gc bench (gcEvery ${gcEvery}): ${done}/${total} rounds\n`);
  }
  await host.close();
  return rows;
}

export async function runGcBench(): Promise<void> {
  console.log('\n== distributed GC: 10,000 create-export-drop rounds (virtual object made, exported, used once, forgotten)');
  const print = (label: string, rows: Awaited<ReturnType<typeof rounds>>) => {
    for (const r of rows) {
      console.log(
        `${label} after ${String(r.rounds).padStart(6)} rounds: producer vatstore keys ${r.vatstoreKeys}, c-list ${r.clist}, kernel objects ${r.kernelObjects}, kernel promises ${r.kernelPromises}, memory producer ${fmtBytes(r.producerMemory)} consumer ${fmtBytes(r.consumerMemory)}`,
      );
    }
  };
  const withGc = await rounds(100, 10_000, 2_500);
  print('GC every 100 deliveries              ', withGc);
  const without = await rounds(0, 2_000, 1_000);
  print('no GC points                         ', without);
  const first = withGc[0];
  const last = withGc[withGc.length - 1];
  verdict(
    'flat with GC',
    last.vatstoreKeys <= first.vatstoreKeys + 100 && last.producerMemory === first.producerMemory && last.kernelObjects <= first.kernelObjects + 100,
    `vatstore keys ${first.vatstoreKeys} -> ${last.vatstoreKeys}, producer memory ${fmtBytes(first.producerMemory)} -> ${fmtBytes(last.producerMemory)}, kernel objects ${first.kernelObjects} -> ${last.kernelObjects}`,
  );
  const growth = (without[1].vatstoreKeys - without[0].vatstoreKeys) / 1000;
  console.log(`without GC points the producer's vatstore grows by ${growth.toFixed(2)} keys per round`);

  console.log('\n== cost of a GC point after every delivery vs none (host.E(producer).trivial() round trips)');
  const every = await Host.open({ gcEvery: 1 });
  const none = await Host.open({ gcEvery: 0 });
  const send = (host: Host) => {
    const { root } = host.createVat(PRODUCER, { name: 'producer' });
    return (done: () => void) => void host.E(root).trivial().then(done);
  };
  const sendNone = send(none);
  await compare('round trip with a GC point after every delivery vs no GC points', { name: 'no GC points', fn: sendNone, defer: true }, { name: 'GC point after every delivery', fn: send(every), defer: true });
  const byDefault = await Host.open();
  await compare('round trip with the default GC points (every 1,000 deliveries) vs no GC points', { name: 'no GC points', fn: sendNone, defer: true }, { name: 'default GC points', fn: send(byDefault), defer: true });
  await every.close();
  await none.close();
  await byDefault.close();
}
