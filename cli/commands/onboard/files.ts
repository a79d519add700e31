/**
 * `onboard --dry-run`: the same run, written out for GitOps instead of applied. Nothing in the
 * cluster or AWS changes. The files are split by what they are and where they go
 * (cli/core/gitops-layout.ts): partial Namespaces with the enabling label, the refresher's RBAC,
 * the webhook configuration (applied last), the record's two parts (the refresher's with a
 * placeholder for its token; `ecr-anywhere put-record` stores them) and, with header
 * authentication, the API server's files. They go to `--out`, stdout, or one JSON document.
 */
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { KubernetesObject } from "@kubernetes/client-node";
import { stringify } from "yaml";
import {
  type RefresherRecord,
  splitClusterRecord,
  type WebhookRecord,
} from "../../../functions/core/cluster-record.ts";
import { recordTables } from "../../../functions/core/contract.ts";
import { SECRET_POLICY_MINIMUM_MINOR } from "../../../k8s/refresher-secret-policy.ts";
import { webhookCredentialsKubeconfig } from "../../../k8s/webhook-configuration.ts";
import {
  privateDirectory,
  reusedSecretFile,
  writePrivateFile,
} from "../../adapters/private-files.ts";
import {
  AdmissionMergeError,
  mergeAdmissionConfiguration,
  newAdmissionConfiguration,
} from "../../core/admission-config.ts";
import {
  ADMISSION_FILE,
  API_SERVER_DIR,
  CREDENTIALS_FILE,
  fileHeaders,
  NAMESPACES_FILE,
  PARTIAL_NAMESPACE_ANNOTATIONS,
  RBAC_FILE,
  SYNC_WAVES,
  WEBHOOK_FILE,
  withHeader,
  withSyncWave,
} from "../../core/gitops-layout.ts";
import { InputError } from "../../core/inputs.ts";
import {
  parseWebhookToken,
  REFRESHER_NAMESPACE,
  REFRESHER_SERVICE_ACCOUNT,
  REFRESHER_TOKEN_SECONDS,
  refresherKubeconfig,
  type WebhookToken,
  webhookTokenFrom,
  webhookUrl,
} from "../../core/onboard-plan.ts";
import type { Printer } from "../../ui.ts";
import { need } from "../../ui.ts";
import type { OnboardOptions, OnboardState, OnboardTarget } from "./target.ts";

export const REFRESHER_TOKEN_PLACEHOLDER = "REPLACE-WITH-REFRESHER-TOKEN";
/** The record's two parts as files (plain JSON): what `ecr-anywhere put-record --from` reads. */
export const WEBHOOK_RECORD_FILE = "webhook-record.json";
export const REFRESHER_RECORD_FILE = "refresher-record.json";

/** One file of a dry run: its path under `--out`, and whether it holds (or will hold) a secret. */
interface RenderedFile {
  readonly name: string;
  readonly content: string;
  readonly secret: boolean;
}

/** What a dry run renders: every file, the objects of the cluster's files, and the notes. */
interface Rendered {
  readonly files: readonly RenderedFile[];
  readonly manifests: Record<string, readonly KubernetesObject[]>;
  readonly records: { readonly webhook: WebhookRecord; readonly refresher: RefresherRecord };
  readonly tables: { readonly webhook: string; readonly refresher: string };
  readonly note: string[];
}

export class FilesTarget implements OnboardTarget {
  readonly #options: OnboardOptions;
  readonly #printer: Printer;
  /** The cluster's objects by file, as the run puts them. */
  readonly #rbac: KubernetesObject[] = [];
  #webhook: KubernetesObject[] = [];
  #namespaces: KubernetesObject[] = [];
  /** The API server's AdmissionConfiguration with the webhook plugin merged in (`--admission-config`). */
  #mergedAdmission: string | undefined;
  /** The token of `--token-file`, read or made in `check`. */
  #keptToken: { token: WebhookToken; created: boolean } | undefined;

  constructor(options: OnboardOptions, printer: Printer) {
    this.#options = options;
    this.#printer = printer;
  }

  /** Reads the local inputs a render depends on, so a bad one stops the run before any output. */
  async check(state: OnboardState): Promise<string> {
    // Rendered for the API servers people run today; rbac.yaml's header says how to drop it below 1.30.
    state.secretPolicy = true;
    const outcomes = ["nothing to check in the cluster: a dry run changes nothing"];
    const { admissionConfigFile, tokenFile } = this.#options;
    if (admissionConfigFile) {
      this.#mergedAdmission = await mergedAdmission(
        admissionConfigFile,
        this.#options.admissionKubeconfigPath,
        this.#headers(true)[`${API_SERVER_DIR}/${ADMISSION_FILE}`] ?? [],
      );
      outcomes.push(`the webhook plugin merged into ${admissionConfigFile}`);
    }
    if (tokenFile) {
      this.#keptToken = await tokenFromFile(tokenFile);
      outcomes.push(
        `webhook token ${this.#keptToken.created ? "made and kept in" : "read from"} ${tokenFile}`,
      );
    }
    return outcomes.join("; ");
  }

  async refresherKubeconfig(state: OnboardState): Promise<{ kubeconfig: string; outcome: string }> {
    const kubeconfig = refresherKubeconfig({
      clusterId: this.#options.clusterId,
      server: this.#options.apiServerUrl ?? need(state.cluster).server,
      caData: need(state.caData),
      token: REFRESHER_TOKEN_PLACEHOLDER,
    });
    return { kubeconfig, outcome: "placeholder" };
  }

  webhookToken(): { token: WebhookToken; kept: boolean } {
    if (this.#keptToken) return { token: this.#keptToken.token, kept: !this.#keptToken.created };
    return { token: webhookTokenFrom(randomBytes(32)), kept: false };
  }

  async putRecord(): Promise<string> {
    return "rendered";
  }

  async plan(state: OnboardState): Promise<string> {
    const wanted = need(state.wanted);
    return `${wanted.refresher.length + wanted.webhook.length} objects to render; the cluster is not read`;
  }

  async putObjects(state: OnboardState, part: "refresher" | "webhook"): Promise<string> {
    const wanted = need(state.wanted);
    if (part === "refresher") {
      this.#rbac.push(...wanted.refresher);
      return `rendered into ${RBAC_FILE}`;
    }
    // The webhook configuration and the labels are planned together but applied far apart.
    this.#webhook = wanted.webhook.filter(
      (object) => object.kind === "MutatingWebhookConfiguration",
    );
    this.#namespaces = wanted.webhook.filter((object) => object.kind === "Namespace");
    return `rendered into ${WEBHOOK_FILE} and ${NAMESPACES_FILE}`;
  }

  async verify(): Promise<string> {
    return "skipped (dry run)";
  }

  async report(state: OnboardState): Promise<void> {
    const rendered = this.#render(state);
    const out = this.#options.out;
    if (out) await writeFiles(out, rendered.files);
    if (this.#printer.format === "json") {
      const common = { ok: true, dryRun: true, clusterId: this.#options.clusterId };
      // With --out the secrets are in the files only; without it this document is the output.
      this.#printer.result(
        out
          ? {
              ...common,
              out,
              files: rendered.files.map(({ name, secret }) => ({ name, secret })),
              note: rendered.note,
            }
          : {
              ...common,
              manifests: rendered.manifests,
              records: rendered.records,
              tables: rendered.tables,
              ...(this.#options.tokenFile ? {} : { webhookToken: need(state.token).token }),
              apiServerFiles: Object.fromEntries(
                rendered.files
                  .filter(({ name }) => name.startsWith(`${API_SERVER_DIR}/`))
                  .map(({ name, content }) => [name, content]),
              ),
              note: rendered.note,
            },
        () => "",
      );
      return;
    }
    if (out) {
      const written = rendered.files.map(
        ({ name, secret }) => `${join(out, name)}${secret ? " (secret)" : ""}`,
      );
      this.#printer.write(
        [`Wrote ${written.join(", ")}; nothing was changed.`, ...rendered.note, ""].join("\n"),
      );
      return;
    }
    this.#printer.write(commentedOutput(rendered));
  }

  close(): void {}

  #headers(mergedAdmission: boolean): Record<string, string[]> {
    return fileHeaders({
      clusterId: this.#options.clusterId,
      webhookAuth: this.#options.webhookAuth,
      admissionKubeconfigPath: this.#options.admissionKubeconfigPath,
      mergedAdmission,
      secretPolicyMinimumMinor: SECRET_POLICY_MINIMUM_MINOR,
    });
  }

  #render(state: OnboardState): Rendered {
    const options = this.#options;
    const token = need(state.token);
    const headerAuth = options.webhookAuth === "header";
    const endpoints = need(state.endpoints);
    const headers = this.#headers(this.#mergedAdmission !== undefined);
    const manifests = {
      [NAMESPACES_FILE]: this.#namespaces.map((object) =>
        withSyncWave(object, SYNC_WAVES.namespaces, PARTIAL_NAMESPACE_ANNOTATIONS),
      ),
      [RBAC_FILE]: this.#rbac.map((object) => withSyncWave(object, SYNC_WAVES.rbac)),
      [WEBHOOK_FILE]: this.#webhook.map((object) => withSyncWave(object, SYNC_WAVES.webhook)),
    };
    const cluster = Object.entries(manifests).map(([name, objects]) => ({
      name,
      content: withHeader(
        headers[name] ?? [],
        objects.map((object) => stringify(object)).join("---\n"),
      ),
      secret: name === WEBHOOK_FILE && !headerAuth,
    }));
    const records = splitClusterRecord(need(state.record));
    const url = webhookUrl(endpoints.webhookBase, options.clusterId, undefined);
    // Header auth: the token goes to kube-apiserver's host in a kubeconfig, never into a manifest.
    const apiServer = headerAuth
      ? [
          {
            name: `${API_SERVER_DIR}/${ADMISSION_FILE}`,
            content:
              this.#mergedAdmission ??
              withHeader(
                headers[`${API_SERVER_DIR}/${ADMISSION_FILE}`] ?? [],
                stringify(newAdmissionConfiguration(options.admissionKubeconfigPath)),
              ),
            secret: false,
          },
          {
            name: `${API_SERVER_DIR}/${CREDENTIALS_FILE}`,
            content: withHeader(
              headers[`${API_SERVER_DIR}/${CREDENTIALS_FILE}`] ?? [],
              stringify(webhookCredentialsKubeconfig([{ webhookUrl: url, token: token.token }])),
            ),
            secret: true,
          },
        ]
      : [];
    return {
      files: [
        ...cluster,
        {
          name: WEBHOOK_RECORD_FILE,
          content: `${JSON.stringify(records.webhook, null, 2)}\n`,
          secret: false,
        },
        {
          name: REFRESHER_RECORD_FILE,
          content: `${JSON.stringify(records.refresher, null, 2)}\n`,
          secret: true,
        },
        ...apiServer,
      ],
      manifests,
      records,
      tables: recordTables(endpoints.records),
      note: notes(options, endpoints),
    };
  }
}

async function mergedAdmission(
  file: string,
  kubeconfigPath: string,
  header: readonly string[],
): Promise<string> {
  let existing: string;
  try {
    existing = await readFile(file, "utf8");
  } catch {
    throw new InputError(`--admission-config: cannot read ${file}`);
  }
  try {
    return mergeAdmissionConfiguration(existing, kubeconfigPath, header);
  } catch (error) {
    if (error instanceof AdmissionMergeError)
      throw new InputError(`--admission-config ${file}: ${error.message}`);
    throw error;
  }
}

async function tokenFromFile(file: string): Promise<{ token: WebhookToken; created: boolean }> {
  const { content, created } = await reusedSecretFile(
    file,
    () => `${webhookTokenFrom(randomBytes(32)).token}\n`,
  );
  const token = parseWebhookToken(content);
  // Not echoed: whatever is in the file may be a secret of another kind.
  if (!token)
    throw new InputError(`--token-file ${file}: not a webhook token (43 base64url characters)`);
  return { token, created };
}

/** Every file 0600 in a private `--out` (and its API server folder), never through a symlink. */
async function writeFiles(out: string, files: readonly RenderedFile[]): Promise<void> {
  await privateDirectory(out);
  for (const { name, content } of files) {
    const [directory, base] = name.includes("/")
      ? [join(out, name.slice(0, name.lastIndexOf("/"))), name.slice(name.lastIndexOf("/") + 1)]
      : [out, name];
    if (directory !== out) await privateDirectory(directory);
    await writePrivateFile(directory, base, content);
  }
}

/** The order to apply the files in, and the steps only a person can take. */
function notes(
  options: OnboardOptions,
  endpoints: { readonly records: string; readonly recordKeyArn: string },
): string[] {
  const tables = recordTables(endpoints.records);
  const headerAuth = options.webhookAuth === "header";
  const apply = "kubectl apply --server-side --field-manager=ecr-anywhere -f";
  return [
    headerAuth
      ? `The webhook token is only in ${API_SERVER_DIR}/${CREDENTIALS_FILE}${options.tokenFile ? ` and ${options.tokenFile}` : ""}: every other file is free of it.`
      : `The webhook token is in ${WEBHOOK_FILE}'s URL${options.tokenFile ? ` and in ${options.tokenFile}` : ""}: commit ${WEBHOOK_FILE} only encrypted (e.g. SOPS), or keep it out of Git.`,
    "Apply in this order (docs/onboard-gitops.md; Argo CD sync waves carry it):",
    `  1. ${apply} ${NAMESPACES_FILE}   then   ${apply} ${RBAC_FILE}`,
    ...(headerAuth
      ? [
          `  2. On every API server host: ${API_SERVER_DIR}/${CREDENTIALS_FILE} at ${options.admissionKubeconfigPath} (0600), ${API_SERVER_DIR}/${ADMISSION_FILE} as kube-apiserver's --admission-control-config-file, then restart it (docs/onboard-platforms.md: k3s, RKE2, kubeadm).`,
          ...(options.admissionConfigFile
            ? []
            : [
                `     If the API server already has an --admission-control-config-file (RKE2, CIS-hardened k3s: PodSecurity), render again with --admission-config <that file>: ${ADMISSION_FILE} alone would drop its plugins.`,
              ]),
        ]
      : []),
    `  3. The record: in ${REFRESHER_RECORD_FILE}'s kubeconfig replace ${REFRESHER_TOKEN_PLACEHOLDER} with`,
    `       kubectl create token ${REFRESHER_SERVICE_ACCOUNT} -n ${REFRESHER_NAMESPACE} --duration=${REFRESHER_TOKEN_SECONDS / 3600}h`,
    `     then: ecr-anywhere put-record ${options.clusterId} --from <this folder> --records ${endpoints.records} --record-key-arn ${endpoints.recordKeyArn}`,
    `     (${WEBHOOK_RECORD_FILE}, table ${tables.webhook}: nothing secret; ${REFRESHER_RECORD_FILE}, table ${tables.refresher}: a token, keep it out of Git). The refresher renews that token itself from then on.`,
    `  4. Last: ${apply} ${WEBHOOK_FILE}. Before the record exists the webhook would refuse every managed Secret write.`,
  ];
}

/** The cluster's files for a pipe; the record, API server files and notes as YAML comments. */
function commentedOutput(rendered: Rendered): string {
  const cluster = rendered.files.filter(
    ({ name }) => name.endsWith(".yaml") && !name.includes("/"),
  );
  const comments = [
    "",
    `Cluster record, webhook's part (${WEBHOOK_RECORD_FILE}, table ${rendered.tables.webhook}):`,
    ...JSON.stringify(rendered.records.webhook, null, 2).split("\n"),
    `Cluster record, refresher's part (${REFRESHER_RECORD_FILE}, table ${rendered.tables.refresher}):`,
    ...JSON.stringify(rendered.records.refresher, null, 2).split("\n"),
    "",
    ...rendered.files
      .filter(({ name }) => name.startsWith(`${API_SERVER_DIR}/`))
      .flatMap(({ name, content }) => [
        `${name} (for the API server's hosts):`,
        ...content.trimEnd().split("\n"),
        "",
      ]),
    ...rendered.note,
  ];
  return `${cluster.map(({ content }) => content).join("---\n")}${comments.map((line) => `# ${line}`.trimEnd()).join("\n")}\n`;
}
