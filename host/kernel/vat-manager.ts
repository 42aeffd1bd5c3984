// One vat's live sandbox: loading it (image + transcript replay), delivering
// to it while recording the transcript, and snapshotting it.
import { InstanceDiscarded, Sandbox, type SandboxOptions } from '../engine/index.js';
import type { KernelState, TranscriptEntry, VatRecord } from './kernel-state.js';
import { assertCapdata, type Capdata, type VatId } from './refs.js';
import type { SnapshotImage } from '../engine/index.js';
import { syscallCost, type SyscallReply } from './syscalls.js';

export const DISPATCH = '__quickvat_dispatch';

/**
 * The GC-point delivery the kernel makes. Its marker has the host make QuickJS
 * collect reference cycles first (Sandbox.collectAtNextAllocation), live and
 * in replay. Transcripts written before the marker existed hold a bare
 * ['bringOutYourDead'], recorded without that collection, and replay without it.
 */
export const gcPointDelivery = (): unknown[] => ['bringOutYourDead', 'collectCycles'];

/** Whether `delivery` asks for QuickJS's cycle collection before it runs. */
export function collectsCycles(delivery: unknown): boolean {
  return Array.isArray(delivery) && delivery[0] === 'bringOutYourDead' && delivery[1] === 'collectCycles';
}

/**
 * Snapshot once the deliveries since the last snapshot have used this many
 * meter units (default): a reload then replays at most this much work plus
 * one delivery's budget.
 */
export const DEFAULT_SNAPSHOT_EVERY_UNITS = 1_000_000_000n;

/** What the kernel does with one live syscall: a reply and its extra cost, or a thrown SyscallError. */
export type LiveSyscall = (vat: VatId, request: unknown) => SyscallReply;

/** A syscall as the transcript keeps it: request, reply, meter units charged. */
export type RecordedSyscall = readonly [request: string, reply: string, charged?: string];

export class DeliveryFailed extends Error {
  override name = 'DeliveryFailed';
}

/** The vat's own words for why a delivery failed, without the kernel's prefix. */
export function failureCause(err: Error): string {
  return err.message.replace(/^vat \S+ failed the delivery: /, '');
}

export class ReplayDiverged extends Error {
  override name = 'ReplayDiverged';
}

export interface DeliveryResult {
  readonly syscalls: RecordedSyscall[];
  /** Meter units the delivery used, syscall charges included. */
  readonly used: bigint;
  /** What the vat returned for a start delivery (e.g. a contract's kit). */
  readonly result?: Capdata;
  /** The message's target had no such method (runtimes since break-10c #3 say so; older ones never do). */
  readonly noMethod?: true;
}

/** The guest's reply to a dispatch: {"ok":true[,"result"]} or {"error"}. */
export function parseReply(vat: VatId, reply: string): { ok: true; result?: Capdata; noMethod?: true } | { ok: false; error: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(reply);
  } catch {
    return { ok: false, error: `vat ${vat} replied to a delivery with something that is not JSON` };
  }
  const r = parsed as { ok?: unknown; error?: unknown; result?: unknown; noMethod?: unknown };
  if (r && r.ok === true) {
    const noMethod = r.noMethod === true ? ({ noMethod: true } as const) : {};
    return r.result === undefined ? { ok: true, ...noMethod } : { ok: true, result: assertCapdata(r.result, 'delivery result'), ...noMethod };
  }
  return { ok: false, error: typeof r?.error === 'string' ? r.error : 'malformed delivery reply' };
}

export class VatManager {
  private sandbox: Sandbox | null = null;

  constructor(
    readonly id: VatId,
    private readonly state: KernelState,
    private readonly sandboxOptions: SandboxOptions,
    /** Turns a transcript delivery back into what the guest receives (inlines bundles). */
    private readonly expand: (delivery: unknown) => unknown,
  ) {}

  get loaded(): boolean {
    return this.sandbox !== null && this.sandbox.alive;
  }

  /** Restores the vat from its image and replays its transcript since then. */
  load(): Sandbox {
    if (this.sandbox && this.sandbox.alive) return this.sandbox;
    const record = this.state.vat(this.id);
    const image = this.state.images.get(record.imageId);
    const sandbox = Sandbox.restore(image, { ...this.sandboxOptions, identity: record.identity ?? undefined });
    for (let pos = record.snapshotPos; pos < record.transcriptLength; pos++) {
      this.replay(sandbox, pos, this.state.transcriptEntry(this.id, pos), record);
    }
    this.sandbox = sandbox;
    return sandbox;
  }

  private replay(sandbox: Sandbox, pos: number, entry: TranscriptEntry, record: VatRecord): void {
    let i = 0;
    sandbox.onSyscall = (request) => {
      const expected = entry.sc[i++];
      if (!expected || expected[0] !== request) {
        throw new ReplayDiverged(
          `vat ${this.id} diverged replaying transcript entry ${pos}: syscall ${i} was ${request.slice(0, 120)}, ` +
            `the transcript says ${expected ? expected[0].slice(0, 120) : 'no syscall'}`,
        );
      }
      if (expected[2] !== undefined) sandbox.charge(BigInt(expected[2]));
      return expected[1];
    };
    let reply: string;
    try {
      reply = this.dispatch(sandbox, entry.d, record);
    } catch (err) {
      throw new ReplayDiverged(`vat ${this.id} failed replaying transcript entry ${pos}: ${(err as Error).message}`);
    }
    const outcome = parseReply(this.id, reply);
    if (i !== entry.sc.length || !outcome.ok) {
      const why = outcome.ok ? `made ${i} of ${entry.sc.length} syscalls` : outcome.error;
      throw new ReplayDiverged(`vat ${this.id} diverged replaying transcript entry ${pos}: ${why}`);
    }
  }

  /**
   * Delivers live. Throws DeliveryFailed (or the engine's MeterExhausted /
   * InstanceTrapped) when the delivery must be aborted; the sandbox is then
   * dropped, since its memory holds the aborted work.
   */
  deliver(delivery: unknown, syscall: LiveSyscall): DeliveryResult {
    const sandbox = this.load();
    let result: DeliveryResult;
    try {
      result = this.run(sandbox, delivery, syscall);
    } catch (err) {
      this.drop();
      throw err;
    }
    this.state.appendTranscript(this.id, { d: delivery, sc: result.syscalls }, result.used);
    return result;
  }

  /**
   * Starts a new incarnation in a fresh sandbox from `image`. On success the
   * new sandbox replaces the old one and the transcript restarts from this
   * delivery; on failure the new sandbox is discarded and the old one keeps
   * serving, untouched.
   */
  startIncarnation(
    imageId: string,
    image: SnapshotImage,
    identity: string,
    incarnation: number,
    delivery: unknown,
    syscall: LiveSyscall,
    /** Runs on the started sandbox before it replaces the old one; a throw discards it as a failed start would. */
    check?: (started: Sandbox) => void,
  ): DeliveryResult {
    const fresh = Sandbox.restore(image, { ...this.sandboxOptions, identity });
    let result: DeliveryResult;
    try {
      result = this.run(fresh, delivery, syscall);
      check?.(fresh);
    } catch (err) {
      fresh.dispose();
      throw err;
    }
    const record = this.state.vat(this.id);
    this.state.setVat(this.id, { ...record, imageId, identity, incarnation, snapshotPos: record.transcriptLength, unitsSinceSnapshot: '0' });
    this.state.pruneTranscript(this.id);
    this.state.appendTranscript(this.id, { d: delivery, sc: result.syscalls }, result.used);
    if (record.imageId !== imageId) this.state.images.release();
    this.sandbox?.dispose();
    this.sandbox = fresh;
    return result;
  }

  // Live and in replay alike: a GC point (bringOutYourDead) first has QuickJS
  // collect everything unreachable, cycles included, so liveslots sees every
  // dropped import and replay reproduces the same heap.
  private dispatch(sandbox: Sandbox, delivery: unknown, record: VatRecord): string {
    if (collectsCycles(delivery)) sandbox.collectAtNextAllocation();
    return sandbox.call(DISPATCH, JSON.stringify(this.expand(delivery)), { budget: BigInt(record.budget) });
  }

  private run(sandbox: Sandbox, delivery: unknown, syscall: LiveSyscall): DeliveryResult {
    const record = this.state.vatSettings(this.id);
    const syscalls: RecordedSyscall[] = [];
    let illegal: Error | null = null;
    sandbox.onSyscall = (request) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(request);
      } catch {
        illegal ??= new DeliveryFailed(`vat ${this.id} made a syscall that is not JSON`);
        throw illegal;
      }
      try {
        const [reply, extra] = syscall(this.id, parsed);
        const cost = syscallCost(request.length + reply.length, extra);
        sandbox.charge(cost);
        syscalls.push([request, reply, String(cost)]);
        return reply;
      } catch (err) {
        // The guest may catch this; the crank is aborted regardless.
        illegal ??= err as Error;
        throw err;
      }
    };
    try {
      let reply: string;
      try {
        reply = this.dispatch(sandbox, delivery, record);
      } catch (err) {
        // An illegal syscall is the cause, whatever the guest did with its error.
        throw illegal ?? err;
      }
      if (illegal) throw illegal;
      const outcome = parseReply(this.id, reply);
      if (!outcome.ok) throw new DeliveryFailed(`vat ${this.id} failed the delivery: ${outcome.error}`);
      return { syscalls, result: outcome.result, used: sandbox.lastUsed, ...(outcome.noMethod ? { noMethod: true } : {}) };
    } finally {
      sandbox.onSyscall = null;
    }
  }

  /**
   * Takes a snapshot when the vat's policy says one is due (deliveries or
   * meter units since the last one), so that reloading the vat replays a
   * bounded amount of work; part of the current crank.
   */
  snapshotIfDue(): void {
    if (this.snapshotDue()) this.snapshot();
  }

  /** Whether snapshotIfDue would take a snapshot now. */
  snapshotDue(): boolean {
    if (!this.sandbox) return false;
    const record = this.state.vatSettings(this.id);
    const { length, units } = this.state.transcriptPosition(this.id);
    const byDeliveries = length - record.snapshotPos >= record.snapshotEvery;
    const byUnits = units >= BigInt(record.snapshotEveryUnits ?? DEFAULT_SNAPSHOT_EVERY_UNITS);
    return byDeliveries || byUnits;
  }

  snapshot(): void {
    if (!this.sandbox) this.load();
    const record = this.state.vat(this.id);
    // Only pages the store lacks are written; the image it replaces is
    // collected once no vat names it.
    const imageId = this.state.images.put(this.sandbox!.snapshot());
    this.state.setVat(this.id, { ...record, imageId, identity: null, snapshotPos: record.transcriptLength, unitsSinceSnapshot: '0' });
    this.state.pruneTranscript(this.id);
    if (record.imageId !== imageId) this.state.images.release();
  }

  stateHash(): string {
    return this.load().stateHash();
  }

  drop(): void {
    this.sandbox?.dispose();
    this.sandbox = null;
  }

  get sandboxForTests(): Sandbox {
    if (!this.sandbox) throw new InstanceDiscarded('vat not loaded');
    return this.sandbox;
  }
}
