// What the kernel owes the host once a block commits: the host promises its
// cranks settled and the observers (shadows) its deliveries feed. A crank's
// additions are dropped with it when it aborts; nothing reaches the host
// before the store has committed (issue #10's durability contract).
import type { Store } from '../store/index.js';
import type { Capdata, Kref } from './refs.js';
import { errorData } from './syscalls.js';

/** Resolution of a kernel promise the host waits on. */
export type HostWaiter = (rejected: boolean, data: Capdata) => void;

const LOG_LINES = 1000;
/** Lines an aborted crank's vats wrote that stay in the log, marked (break16 #5); the rest are counted, not kept. */
export const ABORTED_CRANK_LINES = 10;
const ABORTED_MARK = '(aborted crank, rolled back)';

/**
 * A vat's text as one log line: every control, line-separating or
 * bidirectional-formatting character is written as an escape, so the text
 * cannot start a line of its own that reads like a kernel note or another
 * vat's line, nor make the rest of its line display reordered (break-16c #3).
 */
export function logText(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}

export class CrankOutbox {
  private readonly waiters = new Map<Kref, HostWaiter[]>();
  private settled: [Kref, boolean, Capdata][] = [];
  private observers: (() => void)[] = [];
  /** Vats' console lines of the open crank: they reach the log when it ends, marked and capped if it aborts. */
  private vatLines: string[] = [];
  /** Lengths at the open crank's start; null between cranks. */
  private marks: { settled: number; observers: number } | null = null;

  constructor(
    private readonly store: Store,
    /** Recent diagnostics: vats' console lines, aborted cranks, host callbacks that threw. */
    readonly log: string[],
  ) {}

  get inCrank(): boolean {
    return this.marks !== null;
  }

  /**
   * Appends one diagnostic line, keeping the most recent ones. Escaped by
   * logText: error messages carry vats' words too.
   */
  note(line: string): void {
    this.log.push(logText(line));
    if (this.log.length > LOG_LINES) this.log.shift();
  }

  /**
   * A line a vat wrote (its console). Inside a
   * crank it waits for the crank's end: a crank that aborts (a refused
   * upgrade, a failed delivery) keeps at most ABORTED_CRANK_LINES of its
   * lines, each marked as rolled back, so it cannot flush the log.
   */
  vatLine(vat: string, level: string, text: string): void {
    const line = `${vat} ${level}: ${text}`;
    if (this.marks) this.vatLines.push(line);
    else this.note(line);
  }

  begin(): void {
    this.store.beginCrank();
    this.marks = { settled: this.settled.length, observers: this.observers.length };
    this.vatLines = [];
  }

  end(): void {
    this.store.endCrank();
    this.marks = null;
    for (const line of this.takeVatLines()) this.note(line);
  }

  abort(): void {
    this.store.abortCrank();
    if (this.marks) {
      this.settled.length = this.marks.settled;
      this.observers.length = this.marks.observers;
    }
    this.marks = null;
    const lines = this.takeVatLines();
    for (const line of lines.slice(0, ABORTED_CRANK_LINES)) this.note(`${ABORTED_MARK} ${line}`);
    if (lines.length > ABORTED_CRANK_LINES) this.note(`${ABORTED_MARK} ${lines.length - ABORTED_CRANK_LINES} more vat log lines of this crank dropped`);
  }

  private takeVatLines(): string[] {
    const lines = this.vatLines;
    this.vatLines = [];
    return lines;
  }

  /** A kernel promise the host subscribed to settled in this crank. */
  settle(kp: Kref, rejected: boolean, data: Capdata): void {
    this.settled.push([kp, rejected, data]);
  }

  /** Runs `fn` after the commit (a shadow fed a committed delivery). */
  observe(fn: () => void): void {
    this.observers.push(fn);
  }

  addWaiter(kp: Kref, waiter: HostWaiter): void {
    const list = this.waiters.get(kp) ?? [];
    list.push(waiter);
    this.waiters.set(kp, list);
  }

  /** Commits the open block and tells the host and observers what it settled. */
  commit(): void {
    this.store.commit();
    // A held store (a replica applying a block) has committed nothing yet:
    // nobody may hear of results until the block's one commit.
    if (this.store.holding) return;
    const after = this.observers;
    this.observers = [];
    // Observers and waiters are the host's code: one that throws must not stop
    // the others, nor the kernel (its failure is logged for the operator).
    for (const fn of after) this.guarded('a delivery observer', fn);
    const done = this.settled;
    this.settled = [];
    for (const [kp, rejected, data] of done) {
      const waiters = this.waiters.get(kp);
      this.waiters.delete(kp);
      for (const w of waiters ?? []) this.guarded('a host waiter', () => w(rejected, data));
    }
  }

  /** Rejects every host waiter still pending (the host is closing). */
  abandon(reason: string): void {
    const waiting = [...this.waiters.values()];
    this.waiters.clear();
    for (const list of waiting) for (const w of list) this.guarded('a host waiter', () => w(true, errorData(reason)));
  }

  private guarded(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.note(`host: ${what} threw: ${(err as Error)?.message ?? String(err)}`);
    }
  }
}
