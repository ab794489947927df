// Cluster facts from the Kubernetes API. The calls, in order — deploy/cluster-rbac.yaml must grant
// exactly these and nothing more:
//   1. GET  /version                                          (nonResourceURL; public-info-viewer)
//   2. list nodes, labelSelector node-role.kubernetes.io/control-plane
//      (again with node-role.kubernetes.io/master only when the first finds none: old clusters)
//   3. list pods in <etcd.namespace>, labelSelector <etcd.selector>
//   4. get  deployments.apps `deckhouse` in `d8-system`         (optional: 403/404 → version null)
//   5. only when no etcd image carries a version tag: exec `etcdctl version` in <etcd.container>
//      of the first Ready etcd pod — pods/exec, verbs create + get (a WebSocket exec is an HTTP
//      GET; API servers before the WebSocket-upgrade authorization change check `get`).
// Snapshots need 3 and pods/exec only.

import { AppsV1Api, CoreV1Api, VersionApi, type V1Node, type V1Pod } from "@kubernetes/client-node";
import type { EtcdPodFact, EtcdSettings, MasterFact } from "../core/cluster-types.js";
import { call, callOrNull, type CallScope } from "./rest.js";
import { versionFromImage } from "./versions.js";

const CONTROL_PLANE = "node-role.kubernetes.io/control-plane";
const LEGACY_MASTER = "node-role.kubernetes.io/master";
const DECKHOUSE_VERSION_ANNOTATION = "core.deckhouse.io/version";

export async function kubernetesVersion(scope: CallScope): Promise<string | null> {
  const api = scope.cluster.kc.makeApiClient(VersionApi);
  const info = await call(scope, (o) => api.getCode({}, o));
  return info.gitVersion || null;
}

function masterFact(n: V1Node): MasterFact {
  const ip = n.status?.addresses?.find((a) => a.type === "InternalIP")?.address ?? null;
  return { name: n.metadata?.name ?? "", internalIP: ip };
}

export async function controlPlaneNodes(scope: CallScope): Promise<MasterFact[]> {
  const api = scope.cluster.kc.makeApiClient(CoreV1Api);
  let list = await call(scope, (o) => api.listNode({ labelSelector: CONTROL_PLANE }, o));
  if (!list.items.length) list = await call(scope, (o) => api.listNode({ labelSelector: LEGACY_MASTER }, o));
  return list.items.map(masterFact);
}

export async function etcdPods(scope: CallScope, etcd: EtcdSettings): Promise<V1Pod[]> {
  const api = scope.cluster.kc.makeApiClient(CoreV1Api);
  const list = await call(scope, (o) => api.listNamespacedPod({ namespace: etcd.namespace, labelSelector: etcd.selector }, o));
  return list.items;
}

export function isReady(p: V1Pod): boolean {
  return p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

export function podFact(p: V1Pod): EtcdPodFact {
  return { name: p.metadata?.name ?? "", node: p.spec?.nodeName ?? null, ready: isReady(p) };
}

/** Ready pods that have the configured container, in API order (what `d8 backup etcd` tries). */
export function candidates(pods: V1Pod[], etcd: EtcdSettings): V1Pod[] {
  return pods.filter((p) => isReady(p) && (p.spec?.containers ?? []).some((c) => c.name === etcd.container));
}

/** The etcd version from the etcd container's image tag, Ready pods first; null if no tag has one. */
export function etcdVersionFromImages(pods: V1Pod[], etcd: EtcdSettings): string | null {
  const ordered = [...pods.filter(isReady), ...pods.filter((p) => !isReady(p))];
  for (const p of ordered) {
    const image = p.spec?.containers?.find((c) => c.name === etcd.container)?.image;
    const v = image ? versionFromImage(image) : null;
    if (v) return v;
  }
  return null;
}

/** Deckhouse's version when the deployment is visible: its annotation, else a version-like image tag. */
export async function deckhouseVersion(scope: CallScope): Promise<string | null> {
  const api = scope.cluster.kc.makeApiClient(AppsV1Api);
  const d = await callOrNull(scope, [403, 404], (o) => api.readNamespacedDeployment({ name: "deckhouse", namespace: "d8-system" }, o));
  if (!d) return null;
  const annotated = d.metadata?.annotations?.[DECKHOUSE_VERSION_ANNOTATION];
  if (annotated) return annotated;
  const image = d.spec?.template?.spec?.containers?.find((c) => c.name === "deckhouse")?.image;
  const v = image ? versionFromImage(image) : null;
  return v ? `v${v}` : null;
}
