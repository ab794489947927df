// A manual backup: validated at request time (cluster, target, recipients), then queued as a run
// that a runner executes. One capture per cluster at a time.
import { conflict } from "../core/errors.js";
import type { RequestContext } from "./context.js";
import { getClusterRow } from "./clusters.js";
import { resolveRecipients } from "./capture-jobs.js";
import { activeCapture, enqueueRun, type RunRow } from "./runs.js";
import { getTargetRow } from "./targets.js";

export async function requestManualBackup(
  ctx: RequestContext,
  clusterName: string,
  input: { recipients?: string[]; target?: string },
): Promise<RunRow> {
  const cluster = await getClusterRow(ctx, clusterName);
  if (input.target) await getTargetRow(ctx, input.target);
  resolveRecipients(ctx, { request: input.recipients, cluster: cluster.recipients });
  const busy = await activeCapture(ctx, clusterName);
  if (busy) throw conflict(`cluster '${clusterName}' already has a capture ${busy.state} (run ${busy.id})`);
  return enqueueRun(ctx, {
    kind: "capture",
    cluster: clusterName,
    options: { ...(input.recipients?.length ? { recipients: input.recipients } : {}), ...(input.target ? { target: input.target } : {}) },
  });
}
