// The ClusterAccess port on @kubernetes/client-node 1.4 (the only place that imports it): discovery
// of cluster facts, the snapshot candidates `d8 backup etcd` would try, and the snapshot exec.

import type { ClusterFacts, EtcdPodFact, EtcdSettings } from "../core/cluster-types.js";
import type { ClusterAccess, ClusterConnection, Clock, Logger, SnapshotExec } from "../core/ports.js";
import { loadCluster, type LoadedCluster } from "./connection.js";
import { candidates, controlPlaneNodes, deckhouseVersion, etcdPods, etcdVersionFromImages, kubernetesVersion, podFact } from "./discovery.js";
import { openExec } from "./exec-stream.js";
import type { CallScope } from "./rest.js";
import { versionFromEtcdctl } from "./versions.js";

export interface KubeAccessOptions {
  /** Deadline for each REST call (default 15 s). */
  requestTimeoutMs?: number;
  /** Idle timeout of the `etcdctl version` fallback exec (default 15 s). */
  versionExecTimeoutMs?: number;
  /** stdout bytes buffered for a slow snapshot consumer before the socket is paused (default 1 MiB). */
  execHighWaterMark?: number;
  clock?: Clock;
  /** Warnings (never with kubeconfig contents): e.g. the etcdctl version fallback failing. */
  log?: Logger;
  /** Let kubeconfig exec plugins (and auth-provider cmd-path) run here (core/kubeconfig.ts). */
  allowCredentialCommands?: boolean;
}

const VERSION_OUTPUT_LIMIT = 64 * 1024;

export class KubeClusterAccess implements ClusterAccess {
  private readonly requestTimeoutMs: number;
  private readonly versionExecTimeoutMs: number;
  private readonly clock: Clock;

  constructor(private readonly options: KubeAccessOptions = {}) {
    this.requestTimeoutMs = options.requestTimeoutMs ?? 15_000;
    this.versionExecTimeoutMs = options.versionExecTimeoutMs ?? 15_000;
    this.clock = options.clock ?? { now: () => new Date() };
  }

  async discover(cluster: ClusterConnection, signal?: AbortSignal): Promise<ClusterFacts> {
    const scope = this.scope(cluster, signal);
    // /version first: the cheapest call, and the one that surfaces TLS/auth/reachability clearly.
    const k8sVersion = await kubernetesVersion(scope);
    const [masters, pods, d8Version] = await Promise.all([
      controlPlaneNodes(scope),
      etcdPods(scope, cluster.etcd),
      deckhouseVersion(scope),
    ]);
    let etcdVersion = etcdVersionFromImages(pods, cluster.etcd);
    if (!etcdVersion) {
      const first = candidates(pods, cluster.etcd)[0];
      if (first?.metadata?.name) etcdVersion = await this.etcdctlVersion(scope.cluster, cluster.etcd, first.metadata.name, signal);
    }
    return {
      masters,
      etcdPods: pods.map(podFact),
      etcdVersion,
      kubernetesVersion: k8sVersion,
      deckhouseVersion: d8Version,
      multiMaster: masters.length > 1,
      discoveredAt: this.clock.now().toISOString(),
    };
  }

  async snapshotCandidates(cluster: ClusterConnection, signal?: AbortSignal): Promise<EtcdPodFact[]> {
    const pods = await etcdPods(this.scope(cluster, signal), cluster.etcd);
    return candidates(pods, cluster.etcd).map(podFact);
  }

  async execSnapshot(
    cluster: ClusterConnection,
    pod: string,
    options: { idleTimeoutMs: number; signal?: AbortSignal },
  ): Promise<SnapshotExec> {
    return openExec(loadCluster(cluster, this.options.allowCredentialCommands), {
      namespace: cluster.etcd.namespace,
      pod,
      container: cluster.etcd.container,
      argv: cluster.etcd.command,
      idleTimeoutMs: options.idleTimeoutMs,
      signal: options.signal,
      highWaterMark: this.options.execHighWaterMark,
    });
  }

  private scope(cluster: ClusterConnection, signal?: AbortSignal): CallScope {
    return { cluster: loadCluster(cluster, this.options.allowCredentialCommands), timeoutMs: this.requestTimeoutMs, signal };
  }

  /**
   * `etcdctl version` in the etcd container, for images without a version tag (Deckhouse pins
   * images by digest). Uses the etcdctl of the configured snapshot command when it is one.
   * Best effort: a failure leaves the version unknown rather than failing discovery.
   */
  private async etcdctlVersion(cluster: LoadedCluster, etcd: EtcdSettings, pod: string, signal?: AbortSignal): Promise<string | null> {
    const first = etcd.command[0] ?? "";
    const etcdctl = first.split("/").pop() === "etcdctl" ? first : "etcdctl";
    try {
      const exec = await openExec(cluster, {
        namespace: etcd.namespace,
        pod,
        container: etcd.container,
        argv: [etcdctl, "version"],
        idleTimeoutMs: this.versionExecTimeoutMs,
        signal,
      });
      const decoder = new TextDecoder();
      let text = "";
      for await (const chunk of exec.stdout) {
        if (text.length < VERSION_OUTPUT_LIMIT) text += decoder.decode(chunk, { stream: true });
      }
      await exec.done;
      return versionFromEtcdctl(text);
    } catch (e) {
      if (signal?.aborted) throw e;
      this.options.log?.warn("etcd version: `etcdctl version` exec failed; version unknown", {
        host: cluster.host,
        pod,
        error: e instanceof Error ? e.message : String(e),
      });
      return null;
    }
  }
}
