// One vat's live sandbox: loading it (image + transcript replay), delivering
// to it while recording the transcript, and snapshotting it.
import { InstanceDiscarded, Sandbox, type SandboxOptions } from '../engine/index.js';
import { decodeStoredImage, storedImage } from './base-image.js';
import type { KernelState, TranscriptEntry, VatRecord } from './kernel-state.js';
import type { VatId } from './refs.js';

export const DISPATCH = '__quickvat_dispatch';

/** What the kernel does with one live syscall: a reply, or a thrown SyscallError. */
export type LiveSyscall = (vat: VatId, request: unknown) => string;

export class DeliveryFailed extends Error {
  override name = 'DeliveryFailed';
}

export class ReplayDiverged extends Error {
  override name = 'ReplayDiverged';
}

export interface DeliveryResult {
  readonly syscalls: (readonly [string, string])[];
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
    const image = decodeStoredImage(record.imageId, () => this.state.image(record.imageId));
    const sandbox = Sandbox.restore(image, { ...this.sandboxOptions, identity: record.reseed ? this.id : undefined });
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
      return expected[1];
    };
    let reply: string;
    try {
      reply = sandbox.call(DISPATCH, JSON.stringify(this.expand(entry.d)), { budget: BigInt(record.budget) });
    } catch (err) {
      throw new ReplayDiverged(`vat ${this.id} failed replaying transcript entry ${pos}: ${(err as Error).message}`);
    }
    if (i !== entry.sc.length || reply !== '') {
      throw new ReplayDiverged(`vat ${this.id} diverged replaying transcript entry ${pos}: ${reply || `made ${i} of ${entry.sc.length} syscalls`}`);
    }
  }

  /**
   * Delivers live. Throws DeliveryFailed (or the engine's MeterExhausted /
   * InstanceTrapped) when the delivery must be aborted; the sandbox is then
   * dropped, since its memory holds the aborted work.
   */
  deliver(delivery: unknown, syscall: LiveSyscall): DeliveryResult {
    const sandbox = this.load();
    const record = this.state.vat(this.id);
    const syscalls: (readonly [string, string])[] = [];
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
        const reply = syscall(this.id, parsed);
        syscalls.push([request, reply]);
        return reply;
      } catch (err) {
        // The guest may catch this; the crank is aborted regardless.
        illegal ??= err as Error;
        throw err;
      }
    };
    try {
      const reply = sandbox.call(DISPATCH, JSON.stringify(this.expand(delivery)), { budget: BigInt(record.budget) });
      if (illegal) throw illegal;
      if (reply !== '') throw new DeliveryFailed(`vat ${this.id} failed the delivery: ${reply}`);
    } catch (err) {
      this.drop();
      throw err;
    } finally {
      sandbox.onSyscall = null;
    }
    this.state.appendTranscript(this.id, { d: delivery, sc: syscalls });
    return { syscalls };
  }

  /** Takes a snapshot when the vat's policy says one is due; part of the current crank. */
  snapshotIfDue(): void {
    const record = this.state.vat(this.id);
    if (record.transcriptLength - record.snapshotPos < record.snapshotEvery || !this.sandbox) return;
    this.snapshot();
  }

  snapshot(): void {
    if (!this.sandbox) this.load();
    const record = this.state.vat(this.id);
    const stored = storedImage(this.sandbox!.snapshot());
    this.state.putImage(stored.id, stored.compressed);
    // An image of the vat's own (not a shared base or zygote) is replaced.
    if (!record.reseed && record.imageId !== stored.id) this.state.deleteImage(record.imageId);
    this.state.setVat(this.id, { ...record, imageId: stored.id, reseed: false, snapshotPos: record.transcriptLength });
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
