// Typed failures of the engine layer. Each names what went wrong and carries
// the figures a caller needs to act on it.

/** Base class so callers can tell engine failures from their own bugs. */
export class EngineError extends Error {
  override name = 'EngineError';
}

/** The per-call compute budget ran out; the instance that ran it was discarded. */
export class MeterExhausted extends EngineError {
  override name = 'MeterExhausted';
  constructor(
    readonly budget: bigint,
    readonly used: bigint,
  ) {
    super(`compute budget exhausted: used ${used} of ${budget} units`);
  }
}

/**
 * The wasm instance trapped (abort, unreachable, native stack overflow, a
 * NULL write from the glue near the memory cap). Its memory can no longer be
 * trusted, so it was discarded.
 */
export class InstanceTrapped extends EngineError {
  override name = 'InstanceTrapped';
  constructor(
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`sandbox instance trapped and was discarded: ${reason}`, options);
  }
}

/**
 * The guest nested deeper than the native stack budget every guest entry gets
 * (STACK_GUARD.hardBytes of charged frames; see docs/operators-guide.md,
 * "Native stack budget"). Deterministic: the same input trips it at the same
 * point on every host. Nesting that QuickJS checks (the parser, JSON.parse,
 * regular expressions, JS calls) gets the guest's catchable
 * `InternalError: stack overflow` well before this; this is the backstop for
 * native recursion QuickJS does not check. The instance was discarded: a
 * deterministic outcome, like MeterExhausted.
 */
export class StackLimitExceeded extends InstanceTrapped {
  override name = 'StackLimitExceeded';
  constructor(readonly budgetBytes: number) {
    super(`the guest exceeded its native stack budget (${budgetBytes} bytes of charged frames): nesting too deep for QuickJS`);
  }
}

/**
 * The host's own (V8) stack ran out during a guest call: in the host's
 * frames, or in wasm frames when the entry began with less free stack than
 * the native budget (docs/operators-guide.md, "Native stack budget"). This
 * depends on the host, not on the guest's input, so it is a host fault, not a
 * delivery outcome: never commit it; retry from a shallower call. The
 * instance was discarded.
 */
export class HostStackOverflow extends InstanceTrapped {
  override name = 'HostStackOverflow';
  constructor(options?: { cause?: unknown }) {
    super('host stack overflow (a host fault, not a guest outcome: do not commit; retry from a shallower call)', options);
  }
}

/** Any use of an instance after it trapped or was disposed. */
export class InstanceDiscarded extends EngineError {
  override name = 'InstanceDiscarded';
  constructor(readonly why: string) {
    super(`sandbox instance is no longer usable: ${why}`);
  }
}

/** Guest code threw (or rejected); the instance is intact and usable. */
export class GuestError extends EngineError {
  override name = 'GuestError';
  constructor(
    readonly guestName: string,
    readonly guestMessage: string,
    readonly guestStack: string | undefined,
  ) {
    super(`${guestName}: ${guestMessage}`);
  }
}

/** A snapshot image that cannot be restored here (wrong binary, damaged bytes). */
export class SnapshotError extends EngineError {
  override name = 'SnapshotError';
}

/** The guest is not at a point where it can be snapshotted. */
export class NotQuiescent extends EngineError {
  override name = 'NotQuiescent';
}
