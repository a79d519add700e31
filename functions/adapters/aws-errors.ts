/**
 * What an AWS SDK error is, for the denial messages of the token provider and its sessions: a
 * failure an operator can act on, with the HTTP status the admission denial carries.
 */

export class CredentialError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = "CredentialError";
    this.status = status;
  }
}

const THROTTLING = new Set([
  "ThrottlingException",
  "Throttling",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "LimitExceededException",
]);

const DENIED = new Set([
  "AccessDeniedException",
  "AccessDenied",
  "UnrecognizedClientException",
  "InvalidClientTokenId",
  "ExpiredTokenException",
  "ExpiredToken",
]);

/** STS refused the session policy itself: the record is what must change. */
const POLICY_REFUSED = new Set(["PackedPolicyTooLarge", "MalformedPolicyDocument"]);

/** The signing key is not (or no longer) a valid access key: the broker's was replaced. */
export const KEY_REFUSED = new Set(["InvalidClientTokenId", "SignatureDoesNotMatch"]);

/** Name and message, the message cut short: SDK metadata and stacks stay out of messages. */
export function awsErrorParts(error: unknown): { name: string; message: string } {
  if (error instanceof Error) return { name: error.name, message: error.message.slice(0, 300) };
  return { name: "Error", message: String(error).slice(0, 300) };
}

function isTimeout(name: string): boolean {
  return name === "AbortError" || name === "TimeoutError";
}

/** A call, in the words its denial messages use. */
export interface AwsCall {
  /** The service as messages name it: "ECR", "STS". */
  readonly service: string;
  /** What was asked: "GetAuthorizationToken in us-east-1", "AssumeRole on <role>". */
  readonly operation: string;
  /** Said after "try again shortly" when throttled. */
  readonly throttled?: string;
  /** What a denial means ("AWS denied <action> in <region>"), and what to check. */
  readonly denied: string;
  readonly check: string;
}

/** An SDK error as a denial an operator can act on; a CredentialError passes through. */
export function explainAwsError(error: unknown, call: AwsCall): Error {
  if (error instanceof CredentialError) return error;
  const { name, message } = awsErrorParts(error);
  const asked = `${call.service} ${call.operation}`;
  if (isTimeout(name))
    return new CredentialError(504, `timed out waiting for ${asked}; try again shortly`);
  if (THROTTLING.has(name))
    return new CredentialError(
      429,
      `${call.service} is throttling ${call.operation}; try again shortly${call.throttled ?? ""}`,
    );
  if (POLICY_REFUSED.has(name))
    return new CredentialError(
      400,
      `STS refused the session policy of this cluster's record (${name}): ${message} List fewer registries or repositories.`,
    );
  if (DENIED.has(name) || KEY_REFUSED.has(name))
    return new CredentialError(403, `${call.denied} (${name}): ${message} ${call.check}`);
  return new CredentialError(502, `${asked} failed (${name}): ${message}`);
}
