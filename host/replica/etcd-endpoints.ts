// How a replica's etcd client treats one etcd member (hostile review of #15,
// break15b #4). A member that fails a call (a deadline missed, unavailable)
// is left out at once, and is let back in only after a probe of it answers:
// its /health endpoint (the v3 HTTP gateway on the client port: leader known,
// a quorum read served) within PROBE_DEADLINE_MS, tried every PROBE_EVERY_MS.
// The circuit breaker's own half-open trial sent a real call to the member
// every 2 s, and each such call to a frozen member (SIGSTOP, a partition that
// keeps TCP open) waited out the whole call deadline: progress came in
// repeated 5-7 s stalls while the other two members had quorum.
import { circuitBreaker, ConsecutiveBreaker, handleWhen, type IPolicy } from 'cockatiel';
import { isRecoverableError } from 'etcd3';

/** How long a probe of a member that was left out may take, in ms (a healthy member answers in milliseconds). */
export const PROBE_DEADLINE_MS = 800;
/** How often a member that was left out is probed, in ms. */
export const PROBE_EVERY_MS = 1000;

/** The deadline of a read (KV range) as against other calls: reads are retried on another member sooner. */
export const readDeadlineMs = (callTimeoutMs: number) => Math.min(callTimeoutMs, 2000);

/**
 * The fault-handling policy of one member (`endpoint`, an http:// client
 * URL): used as etcd3's `faultHandling.host`. `closed()`: true once the
 * client closed (probing ends); `leftOut()`: called when the member is left
 * out (streams that may sit on it are moved).
 */
export function probedBreaker(endpoint: string, closed: () => boolean, leftOut: () => void): IPolicy {
  // halfOpenAfter is never reached: the probe below ends the isolation first.
  const breaker = circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 3_600_000, breaker: new ConsecutiveBreaker(1) });
  let probing = false;
  breaker.onBreak((reason) => {
    if (probing || (typeof reason === 'object' && reason !== null && 'isolated' in reason)) return;
    probing = true;
    const held = breaker.isolate();
    leftOut();
    const probe = async () => {
      if (closed()) return held.dispose();
      if (await healthy(endpoint)) {
        probing = false;
        return held.dispose();
      }
      setTimeout(() => void probe(), PROBE_EVERY_MS).unref();
    };
    setTimeout(() => void probe(), Math.min(PROBE_EVERY_MS, 250)).unref();
  });
  return breaker;
}

async function healthy(endpoint: string): Promise<boolean> {
  try {
    const res = await fetch(`${endpoint.replace(/\/+$/, '')}/health`, { signal: AbortSignal.timeout(PROBE_DEADLINE_MS) });
    return res.ok && /"health"\s*:\s*"true"/.test(await res.text());
  } catch {
    return false;
  }
}
