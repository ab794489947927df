// A single-consumer byte queue between a push source (WebSocket frames) and an async iterator.
// Why not a Readable: its async iterator calls `read()`, which concatenates everything buffered
// into a new Buffer — a copy of every byte of a snapshot and twice the garbage. Here chunks are
// handed over as they came, and the producer learns exactly when to pause (`push` → false) and
// when to resume (`onDrain`, once the consumer has taken the queue below half the mark).

export interface ChunkQueueHooks {
  /** The consumer took the queue below half the high-water mark after a `push` returned false. */
  onDrain(): void;
  /** The consumer stopped iterating before the end (break, return, throw in its loop). */
  onStop(): void;
}

export class ChunkQueue implements AsyncIterable<Uint8Array> {
  private readonly chunks: Uint8Array[] = [];
  private queued = 0;
  private full = false;
  private ended = false;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;
  private iterating = false;

  constructor(
    private readonly highWaterMark: number,
    private readonly hooks: ChunkQueueHooks,
  ) {}

  /** Queues a chunk; false means "pause the source until onDrain". */
  push(chunk: Uint8Array): boolean {
    if (this.ended || this.failure) return true;
    this.chunks.push(chunk);
    this.queued += chunk.length;
    this.signal();
    if (this.queued >= this.highWaterMark) this.full = true;
    return !this.full;
  }

  end(): void {
    this.ended = true;
    this.signal();
  }

  /** Ends the stream with an error: the consumer gets it instead of any chunks still queued. */
  fail(err: Error): void {
    if (this.ended || this.failure) return;
    this.failure = err;
    this.chunks.length = 0;
    this.queued = 0;
    this.signal();
  }

  get bufferedBytes(): number {
    return this.queued;
  }

  private signal(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array, void, undefined> {
    if (this.iterating) throw new Error("the stream has one consumer only");
    this.iterating = true;
    let finished = false;
    try {
      for (;;) {
        if (this.failure) throw this.failure;
        const chunk = this.chunks.shift();
        if (chunk) {
          this.queued -= chunk.length;
          if (this.full && this.queued < this.highWaterMark / 2) {
            this.full = false;
            this.hooks.onDrain();
          }
          yield chunk;
          continue;
        }
        if (this.ended) {
          finished = true;
          return;
        }
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
    } finally {
      if (!finished && !this.failure) this.hooks.onStop();
    }
  }
}
