// A GC sweep cycle's record (gc-sweep.ts keeps it in the store, k.gc.cycle)
// and what the rows it walks name: the references a queued item, a parked
// message or a c-list entry keeps alive.
import type { ParkedMessage, RunItem } from './kernel-state.js';
import { isKpid, type Kref, type Vref } from './refs.js';

/** Fixed-width counter in a key, so keys sort by number. */
export const pad = (n: number) => String(n).padStart(12, '0');
/** A kref's number (ko12 -> 12). */
export const numberOf = (kref: Kref) => Number(kref.slice(2));

/** Tables whose rows name references that keep them alive (c-lists, queued items, parked messages, host pins), and tables the sweep frees from. */
export const ROOT_TABLES = ['k.c.', 'k.rq.i.', 'k.pq.', 'k.gc.hostref.'] as const;
export const SWEEP_TABLES = ['k.kp.', 'k.ko.'] as const;

/** The running cycle, as the store holds it (k.gc.cycle). */
export interface Cycle {
  readonly phase: 'roots' | 'sweep' | 'clear' | 'bill';
  /** Index into the phase's tables. */
  readonly table: number;
  /** The last key of the table done. */
  readonly after?: string;
  /** A row cut short: its key and how many of its krefs were marked. */
  readonly partial?: readonly [key: string, done: number];
  /** Kernel objects and promises numbered from here were allocated during the cycle. */
  readonly koFrom: number;
  readonly kpFrom: number;
  /** Which contributions (k.gc.by.<gen>.) this cycle bills, and their total debt with the kernel's own. */
  readonly gen: number;
  readonly debt: number;
  /** Units spent on rows of objects and promises allocated during the cycle: not billed to its debtors. */
  readonly grown?: number;
  /** Units of work so far. */
  readonly work: number;
  /** Rows the roots and sweep phases visited, and how many of those this cycle freed. */
  readonly rows: number;
  readonly freed: number;
}

export type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The krefs a queued item names. */
export function itemKrefs(item: RunItem): (Kref | null)[] {
  switch (item.type) {
    case 'send':
      return [item.target, ...item.msg.args.slots, item.msg.result];
    case 'notify':
    case 'release':
      return [item.kpid];
    case 'upgrade':
      return [item.result];
    default:
      return [];
  }
}

/** Whether `kref` was allocated after the cycle began ("allocated black"). */
export function allocatedDuring(c: Cycle, kref: string): boolean {
  return numberOf(kref) >= (isKpid(kref) ? c.kpFrom : c.koFrom);
}

/** Moves the cycle to `table` (of `phase`, if given), from the table's start. */
export function next(c: Mutable<Cycle>, table: number, phase?: Cycle['phase']): void {
  if (phase) c.phase = phase;
  c.table = table;
  // The store keeps no undefined values: absent is absent.
  delete c.after;
  delete c.partial;
}

/** The krefs a root row names (a c-list entry: the kref unless it is the exporter's own object). */
export function rootKrefs(prefix: string, key: string, value: unknown): (Kref | null)[] {
  switch (prefix) {
    case 'k.c.':
      return (value as Vref).startsWith('o+') ? [] : [key.slice(key.indexOf('.', 4) + 3)];
    case 'k.rq.i.':
      return itemKrefs((value as { item: RunItem }).item);
    case 'k.pq.': {
      const { msg } = value as ParkedMessage;
      return [...msg.args.slots, msg.result];
    }
    default:
      return [key.slice(prefix.length)];
  }
}
