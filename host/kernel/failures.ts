// What the sender of a failed message is told. The text reaches another vat,
// so it names the method and the kind of failure, never the receiving vat's
// references, kernel numbers or compute counts (issue #10: no cross-vat
// information in errors). Operators find the details in kernel.vatLog.
import { GuestError, InstanceTrapped, MeterExhausted } from '../engine/index.js';
import type { RunItem } from './kernel-state.js';
import type { Capdata, Kref } from './refs.js';
import { SyscallError } from './refs.js';
import { DeliveryFailed, failureCause } from './vat-manager.js';

export function describeFailure(item: RunItem, err: Error): string {
  const what =
    item.type === 'send'
      ? `${item.msg.method.slice(0, 80)}`
      : item.type === 'notify'
        ? 'a promise notification'
        : item.type === 'upgrade'
          ? 'the upgrade'
          : 'garbage collection';
  const rolledBack = item.type === 'upgrade' ? 'the vat keeps its previous incarnation' : 'the receiving vat was rolled back';
  if (err instanceof MeterExhausted) return `${what} failed: the receiving vat exhausted its compute budget; ${rolledBack}`;
  if (err instanceof SyscallError) return `${what} failed: the receiving vat made an illegal syscall; ${rolledBack}`;
  if (err instanceof InstanceTrapped) return `${what} failed: the receiving vat's instance trapped; ${rolledBack}`;
  if (err instanceof DeliveryFailed || err instanceof GuestError) {
    // The receiving vat's own words (what its code threw), without kernel prefixes.
    return item.type === 'upgrade' ? `upgrade failed and was rolled back: ${failureCause(err)}` : failureCause(err);
  }
  return `${what} failed: the delivery was aborted; ${rolledBack}`;
}

/** The kref a promise was fulfilled with, if its value is exactly one remotable. */
export function presenceSlot(data: Capdata): Kref | undefined {
  if (data.slots.length === 1 && /^#"\$0(\.[^"]*)?"$/.test(data.body) && data.slots[0].startsWith('ko')) return data.slots[0];
  return undefined;
}
