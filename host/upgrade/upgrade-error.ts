// The one error an upgrade reports: which vat, which incarnation it tried to
// start, and the cause in the contract author's terms.
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
