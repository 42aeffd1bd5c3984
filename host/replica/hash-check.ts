// A replica's check of its own state hashes against the other members'
// (issue #15; the rule is divergence.ts). Every height the replica applied
// stays on its list until a majority of the current members confirm its hash.
// Each check reads the published hashes of all listed heights in one range
// read and judges every height, in order: an undecided height does not stop
// the later ones from being checked (a height whose hashes are gone would
// otherwise turn the checks off for good; hostile review of #15).
import type { EtcdLog } from './etcd-log.js';
import { judgeHashes } from './divergence.js';
import { Rerun } from './rerun.js';

/** Heights kept for checking at most: the oldest go first (a lasting divergence shows at later heights too). */
const MAX_UNCONFIRMED = 10_000;

export interface Dispute {
  readonly height: number;
  readonly detail: string;
}

export interface HashCheckEvents {
  /** The first height whose hash another member's hash outvotes, or that no majority can confirm. */
  diverged(height: number, reason: string): void;
  /** A dispute began, changed, or ended (null). */
  disputed(dispute: Dispute | null): void;
  /** This replica is no longer a member (removed): it must stop. */
  removed(): void;
}

export class HashCheck {
  /** Own hashes of heights not yet confirmed. */
  private readonly unconfirmed = new Map<number, string>();
  private readonly rerun = new Rerun(
    () => this.checkOnce(),
    () => !this.stopped,
  );
  dispute: Dispute | null = null;
  stopped = false;

  constructor(
    private readonly log: EtcdLog,
    private readonly name: string,
    private readonly events: HashCheckEvents,
  ) {}

  /** Lists `height` (whose hash this replica published) for checking. */
  add(height: number, hash: string): void {
    this.unconfirmed.set(height, hash);
    if (this.unconfirmed.size > MAX_UNCONFIRMED) this.unconfirmed.delete(Math.min(...this.unconfirmed.keys()));
  }

  get pending(): number {
    return this.unconfirmed.size;
  }

  /** Checks now, or once more after the check under way. */
  check(): void {
    this.rerun.run();
  }

  get busy(): boolean {
    return this.rerun.busy;
  }

  private async checkOnce(): Promise<void> {
    if (this.unconfirmed.size === 0 || this.stopped) return this.setDispute(null);
    const members = await this.log.members();
    if (!members.includes(this.name)) return this.events.removed();
    const heights = [...this.unconfirmed.keys()].sort((a, b) => a - b);
    const published = await this.log.allHashes(heights[0], heights[heights.length - 1]);
    let dispute: Dispute | null = null;
    let pruned: number | undefined;
    for (const height of heights) {
      if (this.stopped) return;
      const mine = this.unconfirmed.get(height)!;
      // Its own hash, not what etcd holds under its name: a write of it may
      // have been fenced off, and after a lapse the name may be another
      // process's (break15b #3).
      const hashes = new Map(published.get(height) ?? []).set(this.name, mine);
      const verdict = judgeHashes(hashes, this.name, members);
      if (verdict.kind === 'agreed') this.unconfirmed.delete(height);
      else if (verdict.kind === 'diverged') {
        return this.events.diverged(height, `state hash ${mine} after block ${height} differs from ${verdict.detail}; first divergent block: ${height}`);
      } else if (verdict.kind === 'disputed') dispute ??= { height, detail: verdict.detail };
      else if (!members.some((m) => m !== this.name && hashes.has(m))) {
        // Nobody else's hash is left here: if a prune deleted them (it
        // deletes only confirmed heights), this height can never be decided,
        // and would be read again at every check for good (break15b #6b).
        pruned ??= await this.log.pruned();
        if (height <= pruned) this.unconfirmed.delete(height);
      }
    }
    this.setDispute(dispute);
  }

  private setDispute(dispute: Dispute | null): void {
    if (JSON.stringify(dispute) === JSON.stringify(this.dispute)) return;
    this.dispute = dispute;
    this.events.disputed(dispute);
  }
}
