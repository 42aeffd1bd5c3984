// Distributed GC (issue #11): what 10,000 create-export-drop rounds leave
// behind with GC points and without, and what a GC point costs when one
// follows every delivery, against none, measured in the same run.
import { Host } from '../host/index.js';
import { compare, fmtBytes, fmtMs, verdict } from './harness.js';

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

// ---------------------------------------------------------------------------
// The kernel's sweep (issue #10, break-10c #1): a hoarder holds N presences
// from a factory (about 5 kernel rows each) and drops them all. Measured: the
// time of each crank that did sweep work, the worst and the total, and the
// worst event-loop stall a 10 ms timer saw, with the default slices
// (gcWorkPerCrank 1,000) against cycles of one crank each (gcWorkPerCrank
// 10^9: the shape of the one-crank sweep this replaced), in the same run.
const FACTORY = `
  import { Far } from '@endo/far';
  export function buildRootObject() {
    return Far('factory', { make(n) { const out = []; for (let i = 0; i < n; i++) out.push(Far('thing', { id() { return i; } })); return harden(out); } });
  }`;
const HOARDER = `
  import { Far, E } from '@endo/far';
  export function buildRootObject() {
    let kept = [];
    return Far('hoarder', { async pull(f, n) { kept.push(...(await E(f).make(n))); return kept.length; }, dropAll() { kept = []; return 0; }, ping() { return kept.length; } });
  }`;

async function sweepCost(presences: number, gcWorkPerCrank: number) {
  const host = await Host.open({ gcEvery: 10, gcWorkPerCrank });
  const factory = host.createVat(FACTORY, { name: 'factory' });
  const hoarder = host.createVat(HOARDER, { name: 'hoarder' });
  for (let done = 0; done < presences; done += 1000) await host.E(hoarder.root).pull(factory.root, 1000);
  const rows = count(host, 'k.c.') + count(host, 'k.ko.') + count(host, 'k.kp.');
  const { kernel } = host;
  const crank = kernel.crank.bind(kernel);
  const gcCranks: number[] = [];
  kernel.crank = (meter) => {
    const t = performance.now();
    const more = crank(meter);
    const ms = performance.now() - t;
    if (kernel.gcStats().lastCrankWork > 0) gcCranks.push(ms);
    return more;
  };
  let stall = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    stall = Math.max(stall, now - last - 10);
    last = now;
  }, 10);
  const cycles = kernel.gcStats().cycles;
  const t0 = performance.now();
  await host.E(hoarder.root).dropAll();
  for (let i = 0; i < 1000 && count(host, 'k.ko.') > 2; i++) await host.E(hoarder.root).ping();
  while ((await host.run()).stoppedBy !== 'idle');
  const wall = performance.now() - t0;
  clearInterval(timer);
  const result = {
    rows,
    wall,
    left: count(host, 'k.ko.'),
    cycles: kernel.gcStats().cycles - cycles,
    cranks: gcCranks.length,
    worst: Math.max(...gcCranks),
    p90: [...gcCranks].sort((a, b) => a - b)[Math.floor(gcCranks.length * 0.9)],
    total: gcCranks.reduce((a, b) => a + b, 0),
    stall,
    billed: host.vatStats(hoarder.vatId).gcUnits ?? '0',
  };
  await host.close();
  return result;
}

export async function runGcSweepBench(): Promise<void> {
  console.log('\n== GC sweep: a contract drops N presences (~5 kernel rows each): sweep crank times, event-loop stall');
  console.log('   (the stall includes the hoarder\'s and the factory\'s own GC deliveries, metered vat work of 100+ ms each)');
  const worst: Record<string, number> = {};
  for (const presences of [10_000, 20_000]) {
    const whole = await sweepCost(presences, 1_000_000_000);
    const sliced = await sweepCost(presences, 1000);
    for (const [label, r] of [
      ['one crank per cycle (gcWorkPerCrank 1e9)', whole],
      ['default slices (gcWorkPerCrank 1,000)   ', sliced],
    ] as const) {
      console.log(
        `N=${presences} ${label}: ${r.rows} kernel rows; ${r.cycles} cycles in ${r.cranks} sweep cranks; sweep crank worst ${fmtMs(r.worst)}, p90 ${fmtMs(r.p90)}, total ${fmtMs(r.total)}; worst event-loop stall ${fmtMs(r.stall)}; release phase ${fmtMs(r.wall)}; k.ko rows left ${r.left}; hoarder billed ${r.billed} units`,
      );
    }
    console.log(`N=${presences}: total sweep time sliced vs one crank per cycle: ${(sliced.total / whole.total).toFixed(2)}x`);
    worst[`whole${presences}`] = whole.worst;
    worst[`sliced${presences}`] = sliced.worst;
  }
  verdict(
    'worst sweep crank bounded',
    worst.sliced20000 < worst.whole20000 / 3,
    `at ~100k rows: worst sweep crank ${fmtMs(worst.sliced20000)} sliced vs ${fmtMs(worst.whole20000)} in one crank; sliced at ~50k rows ${fmtMs(worst.sliced10000)}`,
  );
}
