// The runner backend of the Node edition's in-process runner: calls the services directly.


import { VaultError } from "../core/errors.js";
import type { ServiceContext } from "../services/context.js";
import { abandonCapture, completeCapture, prepareCapture, type CapturePlan } from "../services/capture-jobs.js";
import { connectionFor, getClusterRow, storeFacts } from "../services/clusters.js";
import { claimRun, failAttempt, heartbeat, succeedStatement } from "../services/runs.js";
import type { ClaimedJob, RunnerBackend } from "./runner.js";

export function localBackend(ctx: ServiceContext, owner: string): RunnerBackend {
  const plans = new Map<string, CapturePlan>();
  return {
    async claim() {
      // The in-process runner is the runner without a pool: clusters bound to a pool are reached
      // only by that pool's remote runners.
      const run = await claimRun(ctx, owner, { pool: null });
      if (!run) return null;
      try {
        const cluster = await getClusterRow(ctx, run.cluster);
        const conn = await connectionFor(ctx, cluster);
        let recipients: string[] = [];
        if (run.kind === "capture") {
          const plan = await prepareCapture(ctx, run);
          plans.set(run.id, plan);
          recipients = plan.recipients;
        }
        return { runId: run.id, kind: run.kind, cluster: run.cluster, conn, recipients, leaseMs: ctx.settings.leaseMs };
      } catch (e) {
        const err = e instanceof VaultError ? e : new VaultError("internal", (e as Error).message);
        await failAttempt(ctx, run.id, owner, { code: err.code, message: err.message }, { retryable: false });
        return null;
      }
    },
    async heartbeat(job) {
      await heartbeat(ctx, job.runId, owner);
    },
    sink(job) {
      const plan = plans.get(job.runId)!;
      return async (body) => {
        const store = await ctx.storeFor(plan.target);
        await store.put(plan.objectKey, body, {
          contentType: "application/octet-stream",
          lockUntil: plan.lockUntil === null ? null : new Date(plan.lockUntil),
          lockMode: plan.lockMode,
        });
      };
    },
    async complete(job, report) {
      const plan = plans.get(job.runId)!;
      await completeCapture(ctx, plan, owner, report);
      // Only once the backup is recorded: when completing fails (the stored-size check, the
      // sidecar), the runner reports the failure next and fail() needs the plan to discard the
      // object and mark the backup failed at once, not at a later tick.
      plans.delete(job.runId);
    },
    async discovered(job, facts) {
      await storeFacts(ctx, job.cluster, facts);
      await ctx.catalog.atomically([succeedStatement(ctx, job.runId, owner, { result: facts })]);
    },
    async fail(job, err) {
      const plan = plans.get(job.runId);
      plans.delete(job.runId);
      if (plan) await abandonCapture(ctx, plan, owner, err, { pod: err.pod ?? null });
      else await failAttempt(ctx, job.runId, owner, err);
    },
  };
}

