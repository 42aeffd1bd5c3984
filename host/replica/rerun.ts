// A task that runs at most once at a time: asked to run while it runs, it
// runs once more afterwards (an etcd event that arrives mid-check is not
// lost). A failure (etcd out of reach) ends the round; the next event or poll
// starts another.

export class Rerun {
  private running = false;
  private again = false;

  constructor(
    private readonly task: () => Promise<void>,
    /** False when no more rounds should run (the replica stopped or halted). */
    private readonly live: () => boolean,
  ) {}

  get busy(): boolean {
    return this.running;
  }

  run(): void {
    if (!this.live()) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void (async () => {
      try {
        do {
          this.again = false;
          await this.task();
        } while (this.again && this.live());
      } catch {
        // etcd unreachable: the next event or poll runs it again
      } finally {
        this.running = false;
      }
    })();
  }
}
