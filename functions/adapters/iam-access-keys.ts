/**
 * The token broker user's access keys, through IAM's query API (ListAccessKeys, CreateAccessKey,
 * DeleteAccessKey). Requests are signed with the AWS SDK's own SigV4 signer (`@smithy/signature-v4`)
 * and answers read with its XML parser (`@aws-sdk/xml-builder`), both already in the SDK clients
 * this project uses; the project's dependencies include no IAM client, and three calls of one
 * rotation function do not justify one. The endpoint follows the SDK's conventions:
 * `AWS_ENDPOINT_URL_IAM` when set (tests, moto), else IAM's global endpoint of the partition.
 */
import { createHash, createHmac, type Hash, type Hmac } from "node:crypto";
import { fromEnv } from "@aws-sdk/credential-provider-env";
import { parseXML } from "@aws-sdk/xml-builder";
import { SignatureV4 } from "@smithy/signature-v4";
import type { AwsCredentialIdentityProvider, SourceData } from "@smithy/types";
import type { AccessKeyInfo, AccessKeys, NewAccessKey } from "../core/broker-key.ts";
import { type Partition, partitionOf } from "../core/registry-kind.ts";

const API_VERSION = "2010-05-08";

/** IAM is global: one endpoint per partition, signed for that partition's home region. */
const IAM_ENDPOINTS: Readonly<
  Record<Partition, { readonly url: string; readonly region: string }>
> = {
  aws: { url: "https://iam.amazonaws.com", region: "us-east-1" },
  "aws-cn": { url: "https://iam.cn-north-1.amazonaws.com.cn", region: "cn-north-1" },
  "aws-us-gov": { url: "https://iam.us-gov.amazonaws.com", region: "us-gov-west-1" },
};

/** An IAM error answer, by its code (`LimitExceeded`, `NoSuchEntity`, `AccessDenied`, …). */
export class IamError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(`IAM ${code}: ${message}`);
    this.name = code;
    this.code = code;
  }
}

/** SHA-256 (and its HMAC) for the signer, from node:crypto. */
class Sha256 {
  readonly #hash: Hash | Hmac;
  constructor(secret?: SourceData) {
    this.#hash =
      secret === undefined ? createHash("sha256") : createHmac("sha256", toBuffer(secret));
  }
  update(data: SourceData): void {
    this.#hash.update(toBuffer(data));
  }
  async digest(): Promise<Uint8Array> {
    return this.#hash.digest();
  }
}

function toBuffer(data: SourceData): Buffer {
  if (typeof data === "string") return Buffer.from(data, "utf8");
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

export interface IamAccessKeysOptions {
  /** The function's region: IAM's endpoint is that of its partition. */
  readonly region: string;
  /** `AWS_ENDPOINT_URL_IAM`, as the SDK reads it. */
  readonly endpoint?: string | undefined;
  readonly credentials?: AwsCredentialIdentityProvider;
}

/** Signed calls to IAM's query API: an action and its parameters, the `<Action>Result` back. */
export class IamQueryClient {
  readonly #url: URL;
  readonly #signer: SignatureV4;

  constructor(options: IamAccessKeysOptions) {
    const home = IAM_ENDPOINTS[partitionOf(options.region)];
    this.#url = new URL(options.endpoint ?? home.url);
    this.#signer = new SignatureV4({
      service: "iam",
      region: home.region,
      credentials: options.credentials ?? fromEnv(),
      sha256: Sha256,
    });
  }

  async call(
    action: string,
    parameters: Readonly<Record<string, string>>,
    signal: AbortSignal,
  ): Promise<unknown> {
    const body = new URLSearchParams({ Action: action, Version: API_VERSION, ...parameters });
    const signed = await this.#signer.sign({
      method: "POST",
      protocol: this.#url.protocol,
      hostname: this.#url.hostname,
      ...(this.#url.port ? { port: Number(this.#url.port) } : {}),
      path: this.#url.pathname,
      query: {},
      headers: {
        host: this.#url.host,
        "content-type": "application/x-www-form-urlencoded; charset=utf-8",
      },
      body: body.toString(),
    });
    const answer = await fetch(this.#url, {
      method: "POST",
      headers: signed.headers,
      body: body.toString(),
      signal,
    });
    const parsed: unknown = parseXML(await answer.text());
    if (!answer.ok) {
      const error = field(field(parsed, "ErrorResponse"), "Error");
      throw new IamError(
        String(field(error, "Code") ?? `HTTP ${answer.status}`),
        String(field(error, "Message") ?? answer.statusText),
      );
    }
    return field(field(parsed, `${action}Response`), `${action}Result`);
  }
}

export class IamAccessKeys implements AccessKeys {
  readonly #iam: IamQueryClient;

  constructor(options: IamAccessKeysOptions) {
    this.#iam = new IamQueryClient(options);
  }

  async list(userName: string, signal: AbortSignal): Promise<AccessKeyInfo[]> {
    const result = await this.#iam.call("ListAccessKeys", { UserName: userName }, signal);
    const members = [field(field(result, "AccessKeyMetadata"), "member") ?? []].flat();
    // A user has at most two keys; a truncated answer means something else is wrong.
    if (field(result, "IsTruncated") === "true")
      throw new IamError("Truncated", "more access keys than IAM allows a user");
    return members.map((member) => ({
      accessKeyId: text(member, "AccessKeyId"),
      createdAtMs: Date.parse(text(member, "CreateDate")),
    }));
  }

  async create(userName: string, signal: AbortSignal): Promise<NewAccessKey> {
    const result = await this.#iam.call("CreateAccessKey", { UserName: userName }, signal);
    const key = field(result, "AccessKey");
    return {
      accessKeyId: text(key, "AccessKeyId"),
      secretAccessKey: text(key, "SecretAccessKey"),
      createdAtMs: Date.parse(text(key, "CreateDate")),
    };
  }

  async delete(userName: string, accessKeyId: string, signal: AbortSignal): Promise<void> {
    const parameters = { UserName: userName, AccessKeyId: accessKeyId };
    await this.#iam.call("DeleteAccessKey", parameters, signal);
  }
}

function field(node: unknown, name: string): unknown {
  return typeof node === "object" && node !== null
    ? (node as Record<string, unknown>)[name]
    : undefined;
}

function text(node: unknown, name: string): string {
  const value = field(node, name);
  if (typeof value !== "string" || value === "")
    throw new IamError("MalformedAnswer", `IAM's answer has no ${name}`);
  return value;
}
