/** `onboard --dry-run`: every manifest and the record, written out for GitOps; nothing changes. */
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { stringify } from "yaml";
import type { ClusterRecord } from "../../functions/core/cluster-record.ts";
import { contractNames, DEFAULT_LABEL_PREFIX } from "../../functions/core/contract.ts";
import { admissionConfiguration, webhookCredentialsKubeconfig } from "../../k8s/templates.ts";
import { UserCluster } from "../adapters/user-cluster.ts";
import { InputError } from "../core/inputs.ts";
import {
  buildClusterRecord,
  enabledNamespaceLabel,
  REFRESHER_NAMESPACE,
  REFRESHER_SERVICE_ACCOUNT,
  REFRESHER_TOKEN_SECONDS,
  refresherKubeconfig,
  registryPartitionProblems,
  webhookTokenFrom,
  webhookUrl,
} from "../core/onboard-plan.ts";
import { emit } from "../ui.ts";
import { ourWebhookConfiguration, refresherObjects } from "./cluster-objects.ts";
import { resolveEndpoints } from "./endpoints.ts";
import type { OnboardOptions } from "./onboard.ts";
export async function onboardDryRun(options: OnboardOptions): Promise<void> {
  const prefix = options.labelPrefix ?? DEFAULT_LABEL_PREFIX;
  const names = contractNames(prefix);
  const cluster = UserCluster.load(options.kube);
  const endpoints = await resolveEndpoints(options.aws, options.caBundleFile);
  const outside = registryPartitionProblems(options.registries, endpoints.recordKeyArn);
  if (outside.length > 0) throw new InputError(`--registries: ${outside.join("; ")}`);
  const server = options.apiServerUrl ?? cluster.server;
  const token = webhookTokenFrom(randomBytes(32));
  const headerAuth = options.webhookAuth === "header";
  const url = webhookUrl(
    endpoints.webhookBase,
    options.clusterId,
    headerAuth ? undefined : token.token,
  );
  const manifests = [
    ...(await refresherObjects(options)),
    await ourWebhookConfiguration(url, endpoints.caPem, prefix),
    ...options.namespaces.map((namespace) => enabledNamespaceLabel(namespace, names)),
  ];
  const record: ClusterRecord = buildClusterRecord(
    options,
    refresherKubeconfig({
      clusterId: options.clusterId,
      server,
      caData: cluster.caData(),
      token: REFRESHER_TOKEN_PLACEHOLDER,
    }),
    [token.sha256],
  );
  const yaml = manifests.map((manifest) => stringify(manifest)).join("---\n");
  const recordName = `${endpoints.recordPrefix}${options.clusterId}`;
  // Header auth: the token goes to kube-apiserver's host in a kubeconfig, never into a manifest.
  const apiServerFiles = headerAuth
    ? {
        "admission.yaml": stringify(admissionConfiguration(options.admissionKubeconfigPath)),
        "webhook-credentials.kubeconfig": stringify(
          webhookCredentialsKubeconfig([{ webhookUrl: url, token: token.token }]),
        ),
      }
    : {};
  const note = [
    headerAuth
      ? "The webhook token is only in webhook-credentials.kubeconfig, which belongs on the API server's hosts alone (mode 0600); the manifests carry no secret."
      : `Webhook token (shown once; it is also in the MutatingWebhookConfiguration's URL, so keep that manifest encrypted or out of Git): ${token.token}`,
    ...(headerAuth
      ? [
          `Install on every API server host, before applying the manifests: webhook-credentials.kubeconfig at ${options.admissionKubeconfigPath}, and admission.yaml beside it; start kube-apiserver with --admission-control-config-file=<path of admission.yaml> (kubeadm: apiServer.extraArgs and extraVolumes; k3s/RKE2: kube-apiserver-arg).`,
        ]
      : []),
    `The record goes to Secrets Manager as ${recordName}, encrypted with ${endpoints.recordKeyArn}:`,
    `  aws secretsmanager create-secret --name ${recordName} --kms-key-id ${endpoints.recordKeyArn} --secret-string file://cluster-record.json`,
    `Before storing it, replace ${REFRESHER_TOKEN_PLACEHOLDER} in its kubeconfig with a token for the refresher (after the manifests are applied):`,
    `  kubectl create token ${REFRESHER_SERVICE_ACCOUNT} -n ${REFRESHER_NAMESPACE} --duration=${REFRESHER_TOKEN_SECONDS / 3600}h`,
    "The refresher renews that token itself from then on.",
  ];
  if (options.output === "json") {
    emit(
      "json",
      {
        ok: true,
        dryRun: true,
        clusterId: options.clusterId,
        manifests,
        record,
        recordName,
        webhookToken: token.token,
        apiServerFiles,
        note,
      },
      () => "",
    );
    return;
  }
  if (options.out) {
    await mkdir(options.out, { recursive: true });
    await writeFile(join(options.out, "ecr-anywhere.yaml"), yaml, { mode: 0o600 });
    await writeFile(
      join(options.out, "cluster-record.json"),
      `${JSON.stringify(record, null, 2)}\n`,
      { mode: 0o600 },
    );
    for (const [name, content] of Object.entries(apiServerFiles))
      await writeFile(join(options.out, name), content, { mode: 0o600 });
    process.stdout.write(
      [
        `Wrote ${join(options.out, "ecr-anywhere.yaml")} (${manifests.length} objects), ${[
          "cluster-record.json",
          ...Object.keys(apiServerFiles),
        ]
          .map((name) => join(options.out ?? "", name))
          .join(", ")}; nothing was changed.`,
        ...note,
        "",
      ].join("\n"),
    );
    return;
  }
  process.stdout.write(
    `${yaml}${[
      "",
      "Cluster record (cluster-record.json):",
      ...JSON.stringify(record, null, 2).split("\n"),
      "",
      ...Object.entries(apiServerFiles).flatMap(([name, content]) => [
        `${name} (for the API server's hosts):`,
        ...content.trimEnd().split("\n"),
        "",
      ]),
      ...note,
    ]
      .map((line) => `# ${line}`.trimEnd())
      .join("\n")}\n`,
  );
}

export const REFRESHER_TOKEN_PLACEHOLDER = "REPLACE-WITH-REFRESHER-TOKEN";
