/**
 * The webhook's health path, `GET /v1/health` (docs/contract.md, "Health"). Pure. It answers
 * static facts only: the version, and whether an `Authorization` header reached the function (a
 * function URL is not documented to pass it on, and header mode depends on it). It reads no
 * record and no token, and never echoes the header, so its answer is the same for a valid token,
 * an invalid one and none: it tells a caller nothing about any cluster.
 */

/** Outside `/v1/clusters/`, so no cluster id can ever name it. */
export const HEALTH_PATH = "/v1/health";

export const HEALTH_SERVICE = "ecr-anywhere-webhook";

export interface HealthReport {
  readonly service: typeof HEALTH_SERVICE;
  readonly version: string;
  /** An `Authorization` header arrived with this request: its value is never looked at. */
  readonly authorizationHeaderReceived: boolean;
}

export interface HealthRequest {
  readonly method: string;
  readonly rawPath: string;
  readonly authorizationHeaderPresent: boolean;
}

export type HealthAnswer =
  | { readonly kind: "report"; readonly report: HealthReport }
  | { readonly kind: "method-not-allowed" };

/** The answer to a request for the health path; undefined when it asks for something else. */
export function answerHealth(request: HealthRequest, version: string): HealthAnswer | undefined {
  if (request.rawPath !== HEALTH_PATH) return undefined;
  if (request.method !== "GET") return { kind: "method-not-allowed" };
  return {
    kind: "report",
    report: {
      service: HEALTH_SERVICE,
      version,
      authorizationHeaderReceived: request.authorizationHeaderPresent,
    },
  };
}
