// Durable promise watchers (Agoric's watchPromise / providePromiseWatcher):
// a watch outlives the incarnation that made it. The table of watches lives
// in a durable map store keyed by vpid; each incarnation, once its kinds are
// redefined, subscribes again to every watched vpid, so a settlement (or the
// upgrade disconnection of a promise the old incarnation decided) reaches the
// watcher in whichever incarnation is running.
import { passStyleOf } from '@endo/pass-style';

export interface WatchHooks {
  /** The vpid for a promise, made known to the kernel (allocated and subscribed if new). */
  exportPromise(p: Promise<unknown>): string;
  /** The promise for a vpid (an imported one is subscribed to). */
  slotToVal(vpid: string): unknown;
  /** Where in value something non-durable sits, or undefined. */
  findNonDurable(value: unknown, path: string): string | undefined;
  /** The durable map store for the watch table; created only when asked to (first watch). */
  watchTable(create: boolean): any;
  provideKindHandle(baggage: unknown, name: string): unknown;
  defineDurableKind(handle: unknown, init: () => object, behavior: Record<string, (...args: any[]) => unknown>): () => object;
  provide(baggage: unknown, key: unknown, make: () => unknown): unknown;
}

type Watcher = { onFulfilled?: (v: unknown, ...args: unknown[]) => unknown; onRejected?: (r: unknown, ...args: unknown[]) => unknown };

export function makeWatchedPromises(hooks: WatchHooks) {
  let table: any;
  const watches = () => (table ??= hooks.watchTable(true));

  // Settlement runs each watch of the vpid once, in the order they were made.
  const follow = (p: Promise<unknown>, vpid: string) => {
    const settle = (value: unknown, fulfilled: boolean) => {
      const t = watches();
      if (!t.has(vpid)) return;
      const list = t.get(vpid) as [Watcher, ...unknown[]][];
      t.delete(vpid);
      for (const [watcher, ...args] of list) {
        if (fulfilled) void watcher.onFulfilled?.(value, ...args);
        else if (watcher.onRejected) void watcher.onRejected(value, ...args);
      }
    };
    p.then(
      (v) => settle(v, true),
      (r) => settle(r, false),
    );
  };

  /**
   * Calls watcher.onFulfilled(value, ...args) or watcher.onRejected(reason,
   * ...args) when `p` settles, in this incarnation or a later one. The
   * watcher must be a durable object (see providePromiseWatcher) and args
   * durable data. Throws at once (naming the argument) otherwise.
   */
  const watchPromise = (p: unknown, watcher: unknown, ...args: unknown[]) => {
    if (passStyleOf(p as any) !== 'promise') throw Error(`watchPromise watches promises, got a ${passStyleOf(p as any)}`);
    const w = watcher as Watcher;
    if (typeof w?.onFulfilled !== 'function' && typeof w?.onRejected !== 'function') {
      throw Error('a promise watcher needs an onFulfilled or onRejected method');
    }
    const bad = hooks.findNonDurable(harden([watcher, ...args]), 'watch');
    if (bad) throw Error(`watchPromise: ${bad.replace(/^watch\[0\]/, 'the watcher').replace(/^watch\[(\d+)\]/, (_m, i) => `args[${Number(i) - 1}]`)}; watches must survive upgrades`);
    // A later turn: a promise just returned by E() gets its vpid when the send
    // is made, which eventual-send does in a later turn.
    void Promise.resolve().then(() => {
      const vpid = hooks.exportPromise(p as Promise<unknown>);
      const t = watches();
      if (t.has(vpid)) {
        t.set(vpid, harden([...t.get(vpid), [watcher, ...args]]));
      } else {
        t.init(vpid, harden([[watcher, ...args]]));
        follow(p as Promise<unknown>, vpid);
      }
    });
  };

  /**
   * A durable watcher object named `name` in `baggage`, calling the given
   * handlers (this incarnation's): every incarnation must call it again, as
   * it redefines a durable kind.
   */
  const providePromiseWatcher = (
    baggage: unknown,
    name: string,
    onFulfilled: (v: unknown, ...args: unknown[]) => unknown = () => {},
    onRejected?: (r: unknown, ...args: unknown[]) => unknown,
  ) => {
    if (typeof name !== 'string' || name === '') throw Error('providePromiseWatcher needs a non-empty name');
    if (typeof onFulfilled !== 'function') throw Error(`promise watcher ${name}: onFulfilled must be a function`);
    if (onRejected !== undefined && typeof onRejected !== 'function') throw Error(`promise watcher ${name}: onRejected must be a function`);
    const handle = hooks.provideKindHandle(baggage, `promiseWatcher:${name}`);
    const make = hooks.defineDurableKind(handle, () => ({}), {
      onFulfilled: (_context: unknown, v: unknown, ...args: unknown[]) => onFulfilled(v, ...args),
      onRejected: (_context: unknown, r: unknown, ...args: unknown[]) => {
        if (onRejected) return onRejected(r, ...args);
        throw r;
      },
    });
    return hooks.provide(baggage, `promiseWatcher:${name}:instance`, () => make());
  };

  /** After a new incarnation redefined its kinds: follow every watched vpid again. */
  const revive = () => {
    table ??= hooks.watchTable(false);
    if (table === undefined) return;
    const t = table;
    for (const vpid of [...t.keys()] as string[]) follow(hooks.slotToVal(vpid) as Promise<unknown>, vpid);
  };

  return { watchPromise, providePromiseWatcher, revive };
}
