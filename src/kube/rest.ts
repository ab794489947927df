// REST calls through client-node's generated API with a per-call deadline and the caller's
// AbortSignal (node-fetch takes the signal from the request context, set by a middleware), and
// failures mapped to VaultErrors.

import { Observable, type ConfigurationOptions, type RequestContext, type ResponseContext } from "@kubernetes/client-node";
import { VaultError } from "../core/errors.js";
import { upstreamFailure } from "./failures.js";
import type { LoadedCluster } from "./connection.js";

export interface CallScope {
  cluster: LoadedCluster;
  timeoutMs: number;
  signal?: AbortSignal;
}

export function cancelled(host: string): VaultError {
  return new VaultError("cancelled", `Kubernetes API ${host}: cancelled`);
}

/** Runs one API call; rejects with `upstream_failed` (or `cancelled` when the caller aborted). */
export async function call<T>(scope: CallScope, fn: (options: ConfigurationOptions) => Promise<T>): Promise<T> {
  return (await run(scope, fn, [])) as T;
}

/** Like `call`, but an answer with one of `statuses` (e.g. 403, 404: "not visible to us") gives null. */
export async function callOrNull<T>(scope: CallScope, statuses: readonly number[], fn: (options: ConfigurationOptions) => Promise<T>): Promise<T | null> {
  return run(scope, fn, statuses);
}

async function run<T>(scope: CallScope, fn: (options: ConfigurationOptions) => Promise<T>, tolerated: readonly number[]): Promise<T | null> {
  const { host, secrets } = scope.cluster;
  if (scope.signal?.aborted) throw cancelled(host);
  const deadline = AbortSignal.timeout(scope.timeoutMs);
  const signal = scope.signal ? AbortSignal.any([scope.signal, deadline]) : deadline;
  const options: ConfigurationOptions = {
    middleware: [
      {
        pre: (ctx: RequestContext) => {
          ctx.setSignal(signal);
          return new Observable(Promise.resolve(ctx));
        },
        post: (res: ResponseContext) => new Observable(Promise.resolve(res)),
      },
    ],
    middlewareMergeStrategy: "append",
  };
  try {
    return await fn(options);
  } catch (e) {
    if (scope.signal?.aborted) throw cancelled(host);
    const status = apiStatus(e);
    if (status !== undefined && tolerated.includes(status)) return null;
    if (deadline.aborted) throw new VaultError("upstream_failed", `Kubernetes API ${host}: timeout: no answer within ${Math.round(scope.timeoutMs / 1000)}s`);
    throw upstreamFailure(host, e, secrets);
  }
}

/** HTTP status of an ApiException, for calls whose 403/404 mean "not visible" rather than failure. */
export function apiStatus(e: unknown): number | undefined {
  const code = (e as { code?: unknown })?.code;
  return typeof code === "number" ? code : undefined;
}
