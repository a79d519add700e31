/**
 * `onboard --dry-run`: the same run, written out for GitOps instead of applied. Nothing in the
 * cluster or AWS changes: the manifests, the record's two parts (the refresher's with a placeholder
 * for its token; `ecr-anywhere put-record` seals and stores them) and, with header authentication,
 * the API server's files go to `--out`, stdout, or one JSON document.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { KubernetesObject } from "@kubernetes/client-node";
import { stringify } from "yaml";
import {
  type RefresherRecord,
  splitClusterRecord,
  type WebhookRecord,
} from "../../../functions/core/cluster-record.ts";
import { recordTables } from "../../../functions/core/contract.ts";
import {
  admissionConfiguration,
  SECRET_POLICY_MINIMUM_MINOR,
  webhookCredentialsKubeconfig,
} from "../../../k8s/templates.ts";
import { privateDirectory, writePrivateFile } from "../../adapters/private-files.ts";
import {
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

/** What a dry run renders: every file's content, and the notes that say where each goes. */
interface Rendered {
  readonly yaml: string;
  readonly records: { readonly webhook: WebhookRecord; readonly refresher: RefresherRecord };
  readonly tables: { readonly webhook: string; readonly refresher: string };
  readonly apiServerFiles: Record<string, string>;
  readonly note: string[];
}

export class FilesTarget implements OnboardTarget {
  readonly #options: OnboardOptions;
  readonly #printer: Printer;

  constructor(options: OnboardOptions, printer: Printer) {
    this.#options = options;
    this.#printer = printer;
  }

  async check(state: OnboardState): Promise<string> {
    // Rendered for the API servers people run today; notes say how to drop it below 1.30.
    state.secretPolicy = true;
    return "nothing to check: a dry run changes nothing";
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
    return { token: webhookTokenFrom(randomBytes(32)), kept: false };
  }

  async putRecord(): Promise<string> {
    return "rendered";
  }

  async putObjects(): Promise<string> {
    return "rendered";
  }

  async verify(): Promise<string> {
    return "skipped (dry run)";
  }

  async report(state: OnboardState): Promise<void> {
    const rendered = this.#render(state);
    if (this.#printer.format === "json") {
      this.#printer.result(
        {
          ok: true,
          dryRun: true,
          clusterId: this.#options.clusterId,
          manifests: state.manifests,
          records: rendered.records,
          tables: rendered.tables,
          webhookToken: need(state.token).token,
          apiServerFiles: rendered.apiServerFiles,
          note: rendered.note,
        },
        () => "",
      );
      return;
    }
    if (this.#options.out) return this.#writeFiles(this.#options.out, rendered, state.manifests);
    this.#printer.write(commentedOutput(rendered));
  }

  close(): void {}

  #render(state: OnboardState): Rendered {
    const options = this.#options;
    const endpoints = need(state.endpoints);
    const token = need(state.token);
    const headerAuth = options.webhookAuth === "header";
    const tables = recordTables(endpoints.records);
    const url = webhookUrl(endpoints.webhookBase, options.clusterId, undefined);
    // Header auth: the token goes to kube-apiserver's host in a kubeconfig, never into a manifest.
    const apiServerFiles: Record<string, string> = headerAuth
      ? {
          "admission.yaml": stringify(admissionConfiguration(options.admissionKubeconfigPath)),
          "webhook-credentials.kubeconfig": stringify(
            webhookCredentialsKubeconfig([{ webhookUrl: url, token: token.token }]),
          ),
        }
      : {};
    return {
      yaml: state.manifests.map((manifest) => stringify(manifest)).join("---\n"),
      records: splitClusterRecord(need(state.record)),
      tables,
      apiServerFiles,
      note: notes(options, token.token, endpoints),
    };
  }

  async #writeFiles(
    out: string,
    rendered: Rendered,
    manifests: readonly KubernetesObject[],
  ): Promise<void> {
    await privateDirectory(out);
    const files: [string, string][] = [
      ["ecr-anywhere.yaml", rendered.yaml],
      [WEBHOOK_RECORD_FILE, `${JSON.stringify(rendered.records.webhook, null, 2)}\n`],
      [REFRESHER_RECORD_FILE, `${JSON.stringify(rendered.records.refresher, null, 2)}\n`],
      ...Object.entries(rendered.apiServerFiles),
    ];
    for (const [name, content] of files) await writePrivateFile(out, name, content);
    const written = files.slice(1).map(([name]) => join(out, name));
    this.#printer.write(
      [
        `Wrote ${join(out, "ecr-anywhere.yaml")} (${manifests.length} objects), ${written.join(", ")}; nothing was changed.`,
        ...rendered.note,
        "",
      ].join("\n"),
    );
  }
}

/** Where each rendered file goes, and the steps only a person can take. */
function notes(
  options: OnboardOptions,
  token: string,
  endpoints: { readonly records: string; readonly recordKeyArn: string },
): string[] {
  const tables = recordTables(endpoints.records);
  const headerAuth = options.webhookAuth === "header";
  return [
    headerAuth
      ? "The webhook token is only in webhook-credentials.kubeconfig, which belongs on the API server's hosts alone (mode 0600); the manifests carry no secret."
      : `Webhook token (shown once; it is also in the MutatingWebhookConfiguration's URL, so keep that manifest encrypted or out of Git): ${token}`,
    ...(headerAuth
      ? [
          `Install on every API server host, before applying the manifests: webhook-credentials.kubeconfig at ${options.admissionKubeconfigPath}, and admission.yaml beside it; start kube-apiserver with --admission-control-config-file=<path of admission.yaml> (kubeadm: apiServer.extraArgs and extraVolumes; k3s/RKE2: kube-apiserver-arg).`,
        ]
      : []),
    `ecr-anywhere.yaml includes a ValidatingAdmissionPolicy and its binding (ecr-anywhere-refresher-secrets) that let the refresher write only managed Secrets: they need Kubernetes 1.${SECRET_POLICY_MINIMUM_MINOR}+; on an older API server leave those two objects out.`,
    `The record is two items: ${WEBHOOK_RECORD_FILE} for table ${tables.webhook} (token hashes and grants: nothing secret) and ${REFRESHER_RECORD_FILE} for table ${tables.refresher} (the refresher's kubeconfig: keep it out of Git).`,
    `After the manifests are applied, replace ${REFRESHER_TOKEN_PLACEHOLDER} in ${REFRESHER_RECORD_FILE}'s kubeconfig with a token for the refresher:`,
    `  kubectl create token ${REFRESHER_SERVICE_ACCOUNT} -n ${REFRESHER_NAMESPACE} --duration=${REFRESHER_TOKEN_SECONDS / 3600}h`,
    `then store both (the kubeconfig sealed with the record key; the refresher's item first, then the webhook's):`,
    `  ecr-anywhere put-record ${options.clusterId} --from <dir of the two files> --records ${endpoints.records} --record-key-arn ${endpoints.recordKeyArn}`,
    "The refresher renews that token itself from then on.",
  ];
}

/** Manifests for a pipe, with the record, API server files and notes as YAML comments. */
function commentedOutput(rendered: Rendered): string {
  const comments = [
    "",
    `Cluster record, webhook's part (${WEBHOOK_RECORD_FILE}, table ${rendered.tables.webhook}):`,
    ...JSON.stringify(rendered.records.webhook, null, 2).split("\n"),
    `Cluster record, refresher's part (${REFRESHER_RECORD_FILE}, table ${rendered.tables.refresher}):`,
    ...JSON.stringify(rendered.records.refresher, null, 2).split("\n"),
    "",
    ...Object.entries(rendered.apiServerFiles).flatMap(([name, content]) => [
      `${name} (for the API server's hosts):`,
      ...content.trimEnd().split("\n"),
      "",
    ]),
    ...rendered.note,
  ];
  return `${rendered.yaml}${comments.map((line) => `# ${line}`.trimEnd()).join("\n")}\n`;
}
