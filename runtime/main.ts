// Entry point of the code inside every vat. Evaluated once into the base
// image; a vat is then started by a startVat delivery naming its bundle.
import './lockdown.js';
import '@endo/eventual-send/shim.js';
import { E, Far, passStyleOf } from '@endo/far';
import { makePromiseKit } from '@endo/promise-kit';
import { makeLiveSlots } from './liveslots.js';
import { loadBundle, type VatBundle } from './module-loader.js';
import { takeSyscall, type Capdata, type Resolution } from './syscall.js';

const syscall = takeSyscall();
const liveSlots = makeLiveSlots(syscall);

// Raw, ordered key/value storage that outlives the heap. Contract code
// normally uses the durable collections built on it; keys given here live in
// their own namespace so they cannot collide with those.
const USER_PREFIX = 'user.';
const vatPowers = harden({
  vatstore: {
    get: (key: string) => syscall.vatstoreGet(USER_PREFIX + key),
    set: (key: string, value: string) => syscall.vatstoreSet(USER_PREFIX + key, value),
    delete: (key: string) => syscall.vatstoreDelete(USER_PREFIX + key),
    getNextKey: (priorKey: string) => {
      const next = syscall.vatstoreGetNextKey(USER_PREFIX + priorKey);
      return next !== undefined && next.startsWith(USER_PREFIX) ? next.slice(USER_PREFIX.length) : undefined;
    },
  },
});

const farModule = harden({ E, Far, passStyleOf });
const builtins = harden({
  '@quickvat/far': farModule,
  '@endo/far': farModule,
  '@endo/promise-kit': harden({ makePromiseKit }),
});

async function startVat(bundle: VatBundle, vatParameters: Capdata): Promise<void> {
  const ns = loadBundle(bundle, builtins, { HandledPromise });
  const build = ns.buildRootObject;
  if (typeof build !== 'function') throw Error('vat bundle does not export buildRootObject');
  const params = liveSlots.unserialize(vatParameters);
  const root = await build(vatPowers, params);
  liveSlots.setRoot(root);
}

type Delivery =
  | ['startVat', VatBundle, Capdata]
  | ['deliver', string, string, Capdata, string | null]
  | ['notify', Resolution[]];

// The host calls this with one JSON delivery. Its reply (after every promise
// job has run) is '' for success or the error text for a delivery that failed
// as a whole; a method that throws is not such a failure (its result promise
// is rejected instead).
const dispatch = async (request: string): Promise<string> => {
  const d = JSON.parse(request) as Delivery;
  try {
    switch (d[0]) {
      case 'startVat':
        await startVat(d[1], d[2]);
        break;
      case 'deliver':
        liveSlots.deliver(d[1], d[2], d[3], d[4]);
        break;
      case 'notify':
        liveSlots.notify(d[1]);
        break;
      default:
        throw Error(`unknown delivery type ${JSON.stringify((d as unknown[])[0])}`);
    }
    return '';
  } catch (err) {
    return `${(err as Error)?.message ?? String(err)}` || 'delivery failed';
  }
};

Object.defineProperty(globalThis, '__quickvat_dispatch', { value: dispatch, enumerable: false, configurable: false, writable: false });
