/**
 * The AWS side of onboarding, with the SDK's usual credential chain and `AWS_ENDPOINT_URL_*`: the
 * stack's outputs (CloudFormation), and cluster records (Secrets Manager, encrypted with the
 * stack's KMS key). Record contents are never logged or put in an error.
 */
import { CloudFormationClient, DescribeStacksCommand } from "@aws-sdk/client-cloudformation";
import { DescribeKeyCommand, KMSClient } from "@aws-sdk/client-kms";
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  ListSecretsCommand,
  PutSecretValueCommand,
  RestoreSecretCommand,
  SecretsManagerClient,
  UpdateSecretCommand,
} from "@aws-sdk/client-secrets-manager";
import { type ClusterRecord, parseClusterRecord } from "../../functions/core/cluster-record.ts";
import { canonicalJson } from "../core/onboard-plan.ts";

/** A problem found in AWS: the command exits 1. */
export class AwsProblem extends Error {
  override readonly name = "AwsProblem";
}

/** `--region` and `--profile`: given to every client; unset, the SDK's usual chain decides. */
export interface AwsClientConfig {
  readonly region?: string;
  readonly profile?: string;
}

export interface StackOutputs {
  readonly webhookUrl: string;
  readonly recordPrefix: string;
  readonly recordKeyArn: string;
}

export async function readStackOutputs(
  stackName: string,
  aws: AwsClientConfig = {},
): Promise<StackOutputs> {
  const client = new CloudFormationClient(aws);
  try {
    const { Stacks } = await client.send(new DescribeStacksCommand({ StackName: stackName }));
    const outputs = new Map(
      (Stacks?.[0]?.Outputs ?? []).map((output) => [output.OutputKey, output.OutputValue]),
    );
    const get = (key: string) => {
      const value = outputs.get(key);
      if (!value)
        throw new AwsProblem(
          `stack ${stackName} has no output ${key}: is it an ecr-anywhere stack, fully deployed?`,
        );
      return value;
    };
    return {
      webhookUrl: get("WebhookUrl"),
      recordPrefix: get("ClusterRecordPrefix"),
      recordKeyArn: get("ClusterRecordKeyArn"),
    };
  } catch (error) {
    if (error instanceof AwsProblem) throw error;
    throw new AwsProblem(
      `cannot read the outputs of stack ${stackName}: ${awsMessage(error)} (deploy it with npm run deploy, pass --stack, or give --webhook-url and --record-key-arn)`,
    );
  } finally {
    client.destroy();
  }
}

export interface StoredRecord {
  /** The parsed record, or undefined when the stored text is not a valid record. */
  readonly record: ClusterRecord | undefined;
  readonly invalid?: string;
  readonly kmsKeyId: string | undefined;
  /** Scheduled for deletion (offboarded within the recovery window). */
  readonly deleted: boolean;
}

export type WriteOutcome = "created" | "updated" | "unchanged" | "restored";

export class RecordStore {
  readonly #secrets: SecretsManagerClient;
  readonly #prefix: string;
  readonly #aws: AwsClientConfig;

  constructor(prefix: string, aws: AwsClientConfig = {}) {
    this.#prefix = prefix;
    this.#aws = aws;
    this.#secrets = new SecretsManagerClient(aws);
  }

  nameOf(clusterId: string): string {
    return `${this.#prefix}${clusterId}`;
  }

  /** Problems reaching the store and the key, each one line; empty when both answer. */
  async problems(keyArn: string | undefined): Promise<string[]> {
    const problems: string[] = [];
    try {
      await this.#secrets.send(
        new ListSecretsCommand({
          MaxResults: 1,
          Filters: [{ Key: "name", Values: [this.#prefix] }],
        }),
      );
    } catch (error) {
      problems.push(`Secrets Manager (cluster records): ${awsMessage(error)}`);
    }
    if (keyArn) {
      const kms = new KMSClient(this.#aws);
      try {
        const { KeyMetadata } = await kms.send(new DescribeKeyCommand({ KeyId: keyArn }));
        if (!KeyMetadata?.Enabled)
          problems.push(`KMS key ${keyArn} is ${KeyMetadata?.KeyState ?? "not enabled"}`);
      } catch (error) {
        problems.push(`KMS key ${keyArn}: ${awsMessage(error)}`);
      } finally {
        kms.destroy();
      }
    }
    return problems;
  }

  async read(clusterId: string): Promise<StoredRecord | undefined> {
    const name = this.nameOf(clusterId);
    let description: { KmsKeyId?: string | undefined; DeletedDate?: Date | undefined };
    try {
      description = await this.#secrets.send(new DescribeSecretCommand({ SecretId: name }));
    } catch (error) {
      if ((error as Error).name === "ResourceNotFoundException") return undefined;
      throw new AwsProblem(`read cluster record ${name}: ${awsMessage(error)}`);
    }
    if (description.DeletedDate)
      return { record: undefined, kmsKeyId: description.KmsKeyId, deleted: true };
    try {
      const { SecretString } = await this.#secrets.send(
        new GetSecretValueCommand({ SecretId: name }),
      );
      const parsed = parseClusterRecord(SecretString ?? "", clusterId);
      return parsed.ok
        ? { record: parsed.value, kmsKeyId: description.KmsKeyId, deleted: false }
        : {
            record: undefined,
            invalid: parsed.error,
            kmsKeyId: description.KmsKeyId,
            deleted: false,
          };
    } catch (error) {
      throw new AwsProblem(`read cluster record ${name}: ${awsMessage(error)}`);
    }
  }

  /** Writes the record only when it differs from what is stored; always under `keyArn`. */
  async write(
    record: ClusterRecord,
    keyArn: string,
    existing: StoredRecord | undefined,
  ): Promise<WriteOutcome> {
    const name = this.nameOf(record.clusterId);
    const text = JSON.stringify(record);
    try {
      if (!existing) {
        await this.#secrets.send(
          new CreateSecretCommand({
            Name: name,
            KmsKeyId: keyArn,
            SecretString: text,
            Description: `ecr-anywhere cluster record for ${record.clusterId}`,
          }),
        );
        return "created";
      }
      if (existing.deleted) await this.#secrets.send(new RestoreSecretCommand({ SecretId: name }));
      if (existing.kmsKeyId !== keyArn)
        await this.#secrets.send(new UpdateSecretCommand({ SecretId: name, KmsKeyId: keyArn }));
      if (
        !existing.deleted &&
        existing.kmsKeyId === keyArn &&
        existing.record &&
        canonicalJson(existing.record) === canonicalJson(record)
      )
        return "unchanged";
      await this.#secrets.send(new PutSecretValueCommand({ SecretId: name, SecretString: text }));
      return existing.deleted ? "restored" : "updated";
    } catch (error) {
      throw new AwsProblem(`write cluster record ${name}: ${awsMessage(error)}`);
    }
  }

  /** Schedules deletion with a recovery window: `aws secretsmanager restore-secret` undoes it. */
  async scheduleDeletion(clusterId: string, recoveryDays: number): Promise<"scheduled" | "absent"> {
    const name = this.nameOf(clusterId);
    try {
      await this.#secrets.send(
        new DeleteSecretCommand({ SecretId: name, RecoveryWindowInDays: recoveryDays }),
      );
      return "scheduled";
    } catch (error) {
      if ((error as Error).name === "ResourceNotFoundException") return "absent";
      throw new AwsProblem(`delete cluster record ${name}: ${awsMessage(error)}`);
    }
  }

  /** Every cluster id with a record under the prefix (not those scheduled for deletion). */
  async clusterIds(): Promise<string[]> {
    const ids: string[] = [];
    let next: string | undefined;
    try {
      do {
        const page = await this.#secrets.send(
          new ListSecretsCommand({
            Filters: [{ Key: "name", Values: [this.#prefix] }],
            NextToken: next,
          }),
        );
        for (const secret of page.SecretList ?? [])
          if (secret.Name?.startsWith(this.#prefix) && !secret.DeletedDate)
            ids.push(secret.Name.slice(this.#prefix.length));
        next = page.NextToken;
      } while (next);
    } catch (error) {
      throw new AwsProblem(`list cluster records: ${awsMessage(error)}`);
    }
    return ids.sort();
  }

  close(): void {
    this.#secrets.destroy();
  }
}

/** The AWS error's name and message, or the network failure's code: never request data. */
export function awsMessage(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code =
    (error as { code?: string }).code ?? (error.cause as { code?: string } | undefined)?.code;
  if (error.name === "CredentialsProviderError")
    return "no AWS credentials found (set AWS_PROFILE, or run aws configure)";
  if (error.message === "Region is missing")
    return "no AWS region: pass --region, or set AWS_REGION or a profile's region";
  return code && !error.message.includes(code)
    ? `${error.name}: ${error.message} (${code})`
    : `${error.name}: ${error.message}`;
}
