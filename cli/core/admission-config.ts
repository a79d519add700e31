/**
 * kube-apiserver's `--admission-control-config-file` for header authentication, merged into the one
 * an API server already has. RKE2 and CIS-hardened k3s already pass that flag for PodSecurity (and
 * others for EventRateLimit and the like): a file that replaced theirs would silently drop those
 * plugins' configuration. So the user's file is kept as it is, comments included, and only the
 * MutatingAdmissionWebhook plugin's `kubeConfigFile` is set (or its entry added). The
 * ValidatingAdmissionWebhook entry is left alone: ecr-anywhere's webhook only mutates.
 */
import {
  type Document,
  isMap,
  isScalar,
  isSeq,
  parseAllDocuments,
  type YAMLMap,
  type YAMLSeq,
} from "yaml";

const PLUGIN = "MutatingAdmissionWebhook";

/** The AdmissionConfiguration versions kube-apiserver reads (the second one is the legacy group). */
const ADMISSION_CONFIGURATION_VERSIONS = [
  "apiserver.config.k8s.io/v1",
  "apiserver.k8s.io/v1alpha1",
];
/** The webhook plugins' configuration: `WebhookAdmissionConfiguration`, or its older kind. */
const WEBHOOK_CONFIGURATION_VERSIONS = [
  "apiserver.config.k8s.io/v1",
  "apiserver.config.k8s.io/v1alpha1",
];
const WEBHOOK_CONFIGURATION_KINDS = ["WebhookAdmissionConfiguration", "WebhookAdmission"];

/** Starts the header comment of a merged file: a file that has it was merged before. */
export const HEADER_AUTH_ADMISSION_MARKER = "ecr-anywhere: header authentication";

/** Why a merge was refused, in one line the CLI shows as is. */
export class AdmissionMergeError extends Error {}

/**
 * kube-apiserver resolves a relative `kubeConfigFile` against its own working directory, which no
 * distribution documents: it must be absolute (and it names a file on the API server's host, so it
 * is checked as a POSIX path whatever this machine runs).
 */
export function absoluteHostPath(path: string): string | undefined {
  if (!path.startsWith("/")) return "must be an absolute path on the API server's host";
  if (path.split("/").includes("..")) return "must not contain '..'";
  // A space or control character would be split or mangled by the flags and files it goes into.
  if ([...path].some((character) => character.charCodeAt(0) <= 0x20 || character === "\u007f"))
    return "must not contain whitespace or control characters";
  return undefined;
}

/** A new AdmissionConfiguration with only the webhook plugin: for an API server that has none. */
export function newAdmissionConfiguration(kubeconfigPath: string): Record<string, unknown> {
  return {
    apiVersion: "apiserver.config.k8s.io/v1",
    kind: "AdmissionConfiguration",
    plugins: [{ name: PLUGIN, configuration: webhookPluginConfiguration(kubeconfigPath) }],
  };
}

function webhookPluginConfiguration(kubeconfigPath: string): Record<string, unknown> {
  return {
    apiVersion: "apiserver.config.k8s.io/v1",
    kind: "WebhookAdmissionConfiguration",
    kubeConfigFile: kubeconfigPath,
  };
}

/**
 * `existing` (the text of the API server's AdmissionConfiguration, YAML or JSON) with the webhook
 * plugin pointed at `kubeconfigPath`. Everything else, other plugins, their order and comments,
 * is kept. Refused, never guessed: a plugin configured in a separate file (`path`), a configuration
 * of another kind, and a `kubeConfigFile` that already names another file (its credentials for
 * other webhooks would be lost; add ours to that file instead).
 */
export function mergeAdmissionConfiguration(
  existing: string,
  kubeconfigPath: string,
  header: readonly string[] = [
    `${HEADER_AUTH_ADMISSION_MARKER}: ${PLUGIN}'s kubeConfigFile was set by ecr-anywhere onboard --dry-run; every other plugin's configuration is as it was.`,
  ],
): string {
  const pathProblem = absoluteHostPath(kubeconfigPath);
  if (pathProblem)
    throw new AdmissionMergeError(`kubeConfigFile ${kubeconfigPath}: ${pathProblem}`);
  const documents = parseAllDocuments(existing);
  if (!Array.isArray(documents) || documents.length !== 1)
    throw new AdmissionMergeError("expected exactly one YAML document (an AdmissionConfiguration)");
  const [document] = documents as Document.Parsed[];
  if (!document) throw new AdmissionMergeError("the file is empty");
  if (document.errors.length > 0)
    throw new AdmissionMergeError(`not valid YAML: ${document.errors[0]?.message.split("\n")[0]}`);
  const root: unknown = document.contents;
  if (!isMap(root)) throw new AdmissionMergeError("not an AdmissionConfiguration (no mapping)");
  const apiVersion = root.get("apiVersion");
  if (root.get("kind") !== "AdmissionConfiguration" || typeof apiVersion !== "string")
    throw new AdmissionMergeError("not an AdmissionConfiguration (kind)");
  if (!ADMISSION_CONFIGURATION_VERSIONS.includes(apiVersion))
    throw new AdmissionMergeError(
      `AdmissionConfiguration ${apiVersion} is not one kube-apiserver reads (${ADMISSION_CONFIGURATION_VERSIONS.join(", ")})`,
    );

  let plugins = root.get("plugins", true);
  // `plugins:` with nothing after it is a null scalar: no plugins yet.
  if (plugins === undefined || plugins === null || (isScalar(plugins) && plugins.value === null)) {
    root.set("plugins", document.createNode([]));
    plugins = root.get("plugins", true);
  }
  if (!isSeq(plugins)) throw new AdmissionMergeError("plugins is not a list");
  const entries = (plugins as YAMLSeq<unknown>).items.filter(
    (item): item is YAMLMap => isMap(item) && item.get("name") === PLUGIN,
  );
  if (entries.length > 1) throw new AdmissionMergeError(`plugins names ${PLUGIN} more than once`);
  const entry = entries[0];
  if (!entry) {
    (plugins as YAMLSeq<unknown>).add(
      document.createNode({
        name: PLUGIN,
        configuration: webhookPluginConfiguration(kubeconfigPath),
      }),
    );
  } else {
    setKubeConfigFile(entry, kubeconfigPath, document);
  }
  const marked = existing
    .split("\n")
    .some((line) => line.startsWith("#") && line.includes(HEADER_AUTH_ADMISSION_MARKER));
  if (!marked) addHeaderComment(document, header);
  return document.toString();
}

function setKubeConfigFile(entry: YAMLMap, kubeconfigPath: string, document: Document): void {
  if (entry.has("path"))
    throw new AdmissionMergeError(
      `${PLUGIN} is configured in a separate file (path: ${String(entry.get("path"))}): set kubeConfigFile: ${kubeconfigPath} in that file instead`,
    );
  const configuration = entry.get("configuration", true);
  if (configuration === undefined || configuration === null) {
    entry.set("configuration", document.createNode(webhookPluginConfiguration(kubeconfigPath)));
    return;
  }
  if (!isMap(configuration))
    throw new AdmissionMergeError(`${PLUGIN}'s configuration is not a mapping`);
  const kind = configuration.get("kind");
  const version = configuration.get("apiVersion");
  if (
    typeof kind !== "string" ||
    !WEBHOOK_CONFIGURATION_KINDS.includes(kind) ||
    typeof version !== "string" ||
    !WEBHOOK_CONFIGURATION_VERSIONS.includes(version)
  )
    throw new AdmissionMergeError(
      `${PLUGIN}'s configuration is ${String(version)} ${String(kind)}, not a WebhookAdmissionConfiguration this merge understands: set kubeConfigFile: ${kubeconfigPath} in it yourself`,
    );
  const current = configuration.get("kubeConfigFile");
  if (typeof current === "string" && current !== "" && current !== kubeconfigPath)
    throw new AdmissionMergeError(
      `${PLUGIN} already uses kubeConfigFile ${current}, which may hold credentials for other webhooks: add the user of webhook-credentials.kubeconfig to that file instead (the AdmissionConfiguration then needs no change)`,
    );
  configuration.set("kubeConfigFile", kubeconfigPath);
}

/** Says what changed, once (the caller checks): a second merge of a merged file adds nothing. */
function addHeaderComment(document: Document, header: readonly string[]): void {
  const before = document.commentBefore ?? "";
  const lines = header.map((line) => ` ${line}`).join("\n");
  document.commentBefore = before ? `${lines}\n${before}` : lines;
}
