/**
 * Where an onboard run puts what it plans: the cluster and AWS (apply), or files for GitOps
 * (`--dry-run`). The run itself (cli/commands/onboard.ts) is the same for both: it plans the
 * objects, token and record, and hands each to the target in the same order.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import type { ClusterRecord } from "../../../functions/core/cluster-record.ts";
import type { OnboardInputs, WebhookToken } from "../../core/onboard-plan.ts";
import type { OperatorCluster } from "../../factory.ts";
import type { StepRecord } from "../../ui.ts";
import type { PlanRun } from "../plan-run.ts";
import type { AwsTarget, Endpoints } from "./endpoints.ts";

export interface OnboardOptions extends OnboardInputs {
  readonly aws: AwsTarget;
  readonly caBundleFile?: string | undefined;
  readonly apiServerUrl?: string | undefined;
  /** Accept calls with a URL token from any address (no `allowedSourceCidrs`). */
  readonly allowAnySource: boolean;
  /** Source CIDRs in private ranges are accepted (the local test bed, whose API server is on loopback). */
  readonly allowPrivateSources: boolean;
  readonly rotateToken: boolean;
  readonly replaceExisting: boolean;
  readonly dryRun: boolean;
  /** Where the webhook token travels: the URL path, or a header from kube-apiserver's admission kubeconfig. */
  readonly webhookAuth: "url" | "header";
  /** With header auth: where the credentials kubeconfig will live on the API server's host. */
  readonly admissionKubeconfigPath: string;
  /** With header auth: the API server's own AdmissionConfiguration, to merge into. */
  readonly admissionConfigFile?: string | undefined;
  /** With `--dry-run`: the webhook token is read from this file, or made and kept there. */
  readonly tokenFile?: string | undefined;
  readonly out?: string | undefined;
  readonly verifyTimeoutSeconds: number;
}

/** The objects one run wants in the cluster, by the step that puts them there. */
export interface WantedObjects {
  readonly refresher: readonly KubernetesObject[];
  /** Our webhook configuration first, then the namespace labels. */
  readonly webhook: readonly KubernetesObject[];
}

/** What the run found and decided so far; each step adds to it. */
export interface OnboardState {
  cluster?: OperatorCluster;
  caData?: string;
  endpoints?: Endpoints;
  /** Whether the refresher's Secret writes are narrowed by a ValidatingAdmissionPolicy (1.30+). */
  secretPolicy?: boolean;
  /** The refresher's kubeconfig for the record. */
  kubeconfig?: string;
  token?: WebhookToken;
  /** The token was kept (from the cluster's configuration or `--token-file`), not made anew. */
  tokenKept?: boolean;
  record?: ClusterRecord;
  /** What the run puts (or would put) in the cluster, decided in the plan step. */
  wanted?: WantedObjects;
}

export interface OnboardTarget {
  /** What this target must check before anything changes; a short outcome. */
  check(state: OnboardState): Promise<string>;
  /** Decides what changes (the cluster) or what is rendered (files); a short outcome. */
  plan(state: OnboardState): Promise<string>;
  /** The plan being carried out, when there is one: what an interrupted run says is left. */
  readonly run?: PlanRun | undefined;
  /** The refresher's kubeconfig for the record, and how it was obtained. */
  refresherKubeconfig(state: OnboardState): Promise<{ kubeconfig: string; outcome: string }>;
  /** The webhook token: kept from the cluster's configuration, or new. */
  webhookToken(state: OnboardState): { token: WebhookToken; kept: boolean };
  putRecord(state: OnboardState, record: ClusterRecord): Promise<string>;
  /**
   * One part of the wanted objects, in order. The webhook part holds our webhook configuration
   * (first), and conflicting in-cluster webhooks are replaced just before it, never earlier.
   */
  putObjects(state: OnboardState, part: "refresher" | "webhook"): Promise<string>;
  verify(state: OnboardState, progress: (text: string) => void): Promise<string>;
  /** The run's result, printed once every step is done. */
  report(state: OnboardState, done: readonly StepRecord[]): Promise<void>;
  close(): void;
}
