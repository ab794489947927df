// ClusterAccess of the Worker edition: the control plane has no network reach into clusters, so
// discovery is handed to a runner as a `discover` run, and captures are never executed here at
// all (runners claim them through the runner routes). DESIGN: "discover then answers 202 with a
// run id if no runner finishes within 20 s".

import type { ClusterFacts, EtcdPodFact } from "../core/cluster-types.js";
import { VaultError } from "../core/errors.js";
import type { ClusterAccess, ClusterConnection, SnapshotExec } from "../core/ports.js";
import { eq } from "drizzle-orm";
import { clusters } from "../catalog/schema.js";
import type { ServiceContext } from "./context.js";
import { enqueueRun, getRunRow, runView, type RunView } from "./runs.js";

export const DISCOVERY_WAIT_MS = 20_000;
const POLL_MS = 500;

/** No runner finished the discovery in time; the run stays queued and the caller gets its id. */
export class DiscoveryQueued extends Error {
  constructor(readonly run: RunView) {
    super(`discovery of cluster '${run.cluster}' was handed to a runner (run ${run.id})`);
    this.name = "DiscoveryQueued";
  }
}

export class RunnerHandoffAccess implements ClusterAccess {
  /** `ctx` is read at call time: the Worker builds the context after this object. */
  constructor(
    private readonly ctx: () => ServiceContext,
    private readonly waitMs = DISCOVERY_WAIT_MS,
  ) {}

  async discover(cluster: ClusterConnection, signal?: AbortSignal): Promise<ClusterFacts> {
    const ctx = this.ctx();
    const queued = await enqueueRun(ctx, { kind: "discover", cluster: cluster.name });
    const deadline = Date.now() + this.waitMs;
    for (;;) {
      const run = await getRunRow(ctx, queued.id);
      if (run.state === "succeeded") return run.result as ClusterFacts;
      if (run.state === "failed" || run.state === "cancelled" || (run.state === "queued" && run.errorCode)) {
        // A failed attempt is reported now; a retry, if one is scheduled, still refreshes the facts later.
        const retry = run.state === "queued" && run.nextAttemptAt ? `; retried at ${new Date(run.nextAttemptAt).toISOString()}` : "";
        throw new VaultError(
          "upstream_failed",
          `discovery of cluster '${cluster.name}' failed on a runner (run ${run.id}): ${run.errorMessage ?? run.errorCode}${retry}`,
        );
      }
      if (Date.now() + POLL_MS > deadline || signal?.aborted) throw new DiscoveryQueued(runView(run));
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  async snapshotCandidates(): Promise<EtcdPodFact[]> {
    throw neverHere();
  }

  async execSnapshot(): Promise<SnapshotExec> {
    throw neverHere();
  }
}

const neverHere = () =>
  new VaultError("internal", "the Worker edition never executes captures; remote runners (`etcd-vault runner`) do");

/**
 * ClusterAccess of the Node edition's API: clusters without a pool are reached in-process;
 * clusters bound to a runner pool are reachable only from that pool's runners, so their
 * discovery is handed off like on the Worker.
 */
export class PoolRoutedAccess implements ClusterAccess {
  private readonly handoff: RunnerHandoffAccess;

  constructor(
    private readonly direct: ClusterAccess,
    private readonly ctx: () => ServiceContext,
    waitMs = DISCOVERY_WAIT_MS,
  ) {
    this.handoff = new RunnerHandoffAccess(ctx, waitMs);
  }

  private async pooled(name: string): Promise<boolean> {
    const row = (await this.ctx().catalog.db.select({ pool: clusters.pool }).from(clusters).where(eq(clusters.name, name)).limit(1))[0];
    return Boolean(row?.pool);
  }

  async discover(cluster: ClusterConnection, signal?: AbortSignal): Promise<ClusterFacts> {
    return (await this.pooled(cluster.name)) ? this.handoff.discover(cluster, signal) : this.direct.discover(cluster, signal);
  }

  snapshotCandidates(cluster: ClusterConnection, signal?: AbortSignal): Promise<EtcdPodFact[]> {
    return this.direct.snapshotCandidates(cluster, signal);
  }

  execSnapshot(cluster: ClusterConnection, pod: string, options: { idleTimeoutMs: number; signal?: AbortSignal }): Promise<SnapshotExec> {
    return this.direct.execSnapshot(cluster, pod, options);
  }
}
