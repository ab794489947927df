// Cluster-related shapes shared by core, kube adapter, catalog and API (DESIGN "Resource shapes").

export interface EtcdSettings {
  namespace: string;
  /** Label selector for etcd pods, e.g. `component=etcd`. */
  selector: string;
  container: string;
  command: string[];
}

/** The exact argv `d8 backup etcd` runs: Deckhouse's patched etcdctl streams the snapshot to stdout. */
export const DECKHOUSE_SNAPSHOT_COMMAND: readonly string[] = [
  "/usr/bin/etcdctl",
  "--endpoints",
  "https://127.0.0.1:2379/",
  "--key",
  "/etc/kubernetes/pki/etcd/ca.key",
  "--cert",
  "/etc/kubernetes/pki/etcd/ca.crt",
  "--cacert",
  "/etc/kubernetes/pki/etcd/ca.crt",
  "snapshot",
  "pipe",
];

export const DEFAULT_ETCD_SETTINGS: EtcdSettings = {
  namespace: "kube-system",
  selector: "component=etcd",
  container: "etcd",
  command: [...DECKHOUSE_SNAPSHOT_COMMAND],
};

export interface MasterFact {
  name: string;
  internalIP: string | null;
}

export interface EtcdPodFact {
  name: string;
  node: string | null;
  ready: boolean;
}

export interface ClusterFacts {
  masters: MasterFact[];
  etcdPods: EtcdPodFact[];
  etcdVersion: string | null;
  kubernetesVersion: string | null;
  deckhouseVersion: string | null;
  multiMaster: boolean;
  discoveredAt: string;
}
