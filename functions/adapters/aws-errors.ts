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

export const THROTTLING = new Set([
  "ThrottlingException",
  "Throttling",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "LimitExceededException",
]);

export const DENIED = new Set([
  "AccessDeniedException",
  "AccessDenied",
  "UnrecognizedClientException",
  "InvalidClientTokenId",
  "ExpiredTokenException",
  "ExpiredToken",
]);

/** STS refused the session policy itself: the record is what must change. */
export const POLICY_REFUSED = new Set(["PackedPolicyTooLarge", "MalformedPolicyDocument"]);

/** The signing key is not (or no longer) a valid access key: the broker's was replaced. */
export const KEY_REFUSED = new Set(["InvalidClientTokenId", "SignatureDoesNotMatch"]);

/** Name and message, the message cut short: SDK metadata and stacks stay out of messages. */
export function awsErrorParts(error: unknown): { name: string; message: string } {
  if (error instanceof Error) return { name: error.name, message: error.message.slice(0, 300) };
  return { name: "Error", message: String(error).slice(0, 300) };
}

export function isTimeout(name: string): boolean {
  return name === "AbortError" || name === "TimeoutError";
}
