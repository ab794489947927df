// Builds a client-node KubeConfig for one cluster connection, after the runtime-neutral check in
// core (which gives the clean `invalid_input` messages). Also collects the credential strings, so
// error messages can be scrubbed of them whatever a library put into its own message.

import { KubeConfig } from "@kubernetes/client-node";
import { invalidInput } from "../core/errors.js";
import { loadableKubeconfig } from "../core/kubeconfig.js";
import type { ClusterConnection } from "../core/ports.js";

export interface LoadedCluster {
  kc: KubeConfig;
  /** `hostname:port` of the API server, for messages. */
  host: string;
  /** Secret strings from the kubeconfig that must never appear in a message. */
  secrets: string[];
}

export function loadCluster(conn: ClusterConnection, allowCredentialCommands = false): LoadedCluster {
  const { summary, json } = loadableKubeconfig(conn.kubeconfig, conn.context ?? undefined, { allowCommands: allowCredentialCommands });
  const kc = new KubeConfig();
  try {
    // The document as validated (JSON), never the original text: see KubeconfigSummary.json.
    kc.loadFromString(json);
    kc.setCurrentContext(summary.contextName);
  } catch {
    throw invalidInput("kubeconfig", "could not be loaded by the Kubernetes client");
  }
  const user = kc.getCurrentUser();
  // What client-node itself will use, checked once more: no file reads, no commands unless allowed.
  const cluster = kc.getCurrentCluster();
  const provider = user?.authProvider as { name?: string; config?: Record<string, unknown> } | undefined;
  if (cluster?.caFile || user?.certFile || user?.keyFile || provider?.config?.tokenFile != null) {
    throw invalidInput("kubeconfig", "refers to a file on this host; embed the data instead");
  }
  const runs = user?.exec != null || provider?.name === "exec" || provider?.config?.exec != null || provider?.config?.["cmd-path"] != null;
  if (runs && !allowCredentialCommands) {
    throw invalidInput("kubeconfig", "its user runs a command on the etcd-vault host; set ETCD_VAULT_ALLOW_CREDENTIAL_COMMANDS=true to allow that");
  }
  const secrets = [user?.token, user?.password, user?.keyData, user?.certData, ...proxyPasswords(kc.getCurrentCluster()?.proxyUrl)].filter(
    (s): s is string => !!s && s.length >= 4,
  );
  return { kc, host: summary.host, secrets };
}

/** A `proxy-url`'s password (`socks5://user:password@host`), as written and percent-decoded. */
function proxyPasswords(proxyUrl: string | undefined): string[] {
  if (!proxyUrl) return [];
  try {
    const password = new URL(proxyUrl).password;
    if (!password) return [];
    let decoded = password;
    try {
      decoded = decodeURIComponent(password);
    } catch {
      // not valid percent-encoding: the raw form is the one that can appear
    }
    return decoded === password ? [password] : [password, decoded];
  } catch {
    return [];
  }
}
