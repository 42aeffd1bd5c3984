// The one error an upgrade reports: which vat, which incarnation it tried to
// start, and the cause in the contract author's terms.
import { GuestError, MeterExhausted } from '../engine/index.js';
import { failureCause } from '../kernel/vat-manager.js';

/** Why a new incarnation failed, in the contract author's terms; trial vats say it the same way. */
export function upgradeReason(err: Error): string {
  if (err instanceof MeterExhausted) return `the new incarnation exhausted its compute budget (${err.used} of ${err.budget} units)`;
  if (err instanceof GuestError && /did not settle/.test(err.message)) return 'its start-up promise never settled';
  return failureCause(err);
}

export class UpgradeError extends Error {
  override name = 'UpgradeError';
  constructor(
    readonly instanceId: string,
    readonly attemptedIncarnation: number,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`upgrade of ${instanceId} to incarnation ${attemptedIncarnation} failed and was rolled back: ${reason}`, options);
  }
}

/** An upgrade refused because pre-flight found problems (issue 13); nothing changed. */
export class PreflightRefused extends UpgradeError {
  override name = 'PreflightRefused';
  constructor(
    instanceId: string,
    attemptedIncarnation: number,
    readonly problems: readonly { readonly code: string; readonly message: string }[],
  ) {
    super(
      instanceId,
      attemptedIncarnation,
      `pre-flight found ${problems.length} problem${problems.length === 1 ? '' : 's'}: ${problems.map((p) => `[${p.code}] ${p.message}`).join('; ')}`,
    );
    this.message = `upgrade of ${instanceId} to incarnation ${attemptedIncarnation} refused: ${this.reason} (nothing changed; force the upgrade to enact it anyway)`;
  }
}
