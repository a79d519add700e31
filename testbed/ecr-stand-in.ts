/**
 * A controllable stand-in for Amazon ECR's and ECR Public's GetAuthorizationToken, speaking their
 * real awsJson1_1 protocols (targets, SigV4 scopes, answer shapes) so the real AWS SDK talks to it. moto cannot be used here: its tokens always expire in
 * 2015. It can answer with any expiry, throttle, deny or stall, and it records each call's region
 * (from the SigV4 credential scope), access key and session token, and each token it handed out.
 * A test that knows when the session behind a key ends can have it cap the token's expiry there,
 * as older ECR documentation said happens for tokens minted with temporary credentials.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";

export type EcrBehaviour = "ok" | "throttle" | "deny" | "server-error";

export interface EcrCall {
  readonly region: string;
  readonly accessKeyId: string;
  readonly target: string;
  /** The SigV4 signing name: `ecr`, or `ecr-public` for ECR Public. */
  readonly service: string;
  /** When it arrived (epoch ms, real time): for calls-per-second peaks. */
  readonly atMs: number;
  /** The SigV4 session token (`x-amz-security-token`): which session signed; none for long-term keys. */
  readonly sessionToken: string | undefined;
  /** The password handed out, when the call succeeded. */
  password?: string;
  /** The expiresAt answered (epoch ms), when the call succeeded. */
  expiresAtMs?: number;
}

export interface EcrStandIn {
  readonly url: string;
  readonly calls: EcrCall[];
  behaviour: EcrBehaviour;
  /** Token lifetime, 12 h like ECR unless a test changes it. */
  expiresInSeconds: number;
  latencyMs: number;
  /** The password ECR handed out last in each region (ECR Public's under "public"). */
  readonly lastPassword: Map<string, string>;
  /** Clock for expiresAt; tests move it with their own. */
  now: () => number;
  /**
   * When the session behind a call's credentials ends, if the test knows (epoch ms): the answered
   * expiresAt is capped there. Undefined: ECR's 12 h (or `expiresInSeconds`) alone.
   */
  sessionExpiresAtMs: ((call: EcrCall) => number | undefined) | undefined;
  callsIn(region: string): number;
  reset(): void;
  stop(): Promise<void>;
}

const TARGETS: Readonly<Record<string, string>> = {
  ecr: "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken",
  "ecr-public": "SpencerFrontendService.GetAuthorizationToken",
};

export interface EcrStandInOptions {
  /** Serve HTTPS with this certificate, as the real endpoint does. */
  readonly tls?: { readonly cert: string; readonly key: string };
}

export async function startEcrStandIn(options: EcrStandInOptions = {}): Promise<EcrStandIn> {
  const state: Omit<EcrStandIn, "url" | "stop"> = {
    calls: [],
    behaviour: "ok",
    expiresInSeconds: 12 * 3600,
    latencyMs: 0,
    lastPassword: new Map(),
    now: Date.now,
    sessionExpiresAtMs: undefined,
    callsIn: (region) => state.calls.filter((call) => call.region === region).length,
    reset: () => {
      state.calls.length = 0;
      state.behaviour = "ok";
      state.expiresInSeconds = 12 * 3600;
      state.latencyMs = 0;
      state.now = Date.now;
      state.sessionExpiresAtMs = undefined;
      state.lastPassword.clear();
    },
  };

  const serve = async (request: IncomingMessage, response: ServerResponse) => {
    await readAll(request);
    const target = String(request.headers["x-amz-target"] ?? "");
    const scope = /Credential=([^/]+)\/\d{8}\/([^/]+)\/(ecr|ecr-public)\//.exec(
      String(request.headers.authorization ?? ""),
    );
    const [, accessKeyId = "", region = "", service = ""] = scope ?? [];
    const sessionToken = request.headers["x-amz-security-token"];
    const call: EcrCall = {
      region,
      accessKeyId,
      target,
      service,
      atMs: Date.now(),
      sessionToken: typeof sessionToken === "string" ? sessionToken : undefined,
    };
    state.calls.push(call);
    if (state.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, state.latencyMs));
    const reply = (status: number, body: unknown) => {
      if (response.destroyed) return;
      response.writeHead(status, {
        "content-type": "application/x-amz-json-1.1",
        "x-amzn-requestid": randomId(),
      });
      response.end(JSON.stringify(body));
    };
    if (!scope || target !== TARGETS[service]) {
      return reply(400, {
        __type: "UnknownOperationException",
        message: `stand-in serves only ${Object.values(TARGETS).join(" and ")}`,
      });
    }
    const ecrPublic = service === "ecr-public";
    switch (state.behaviour) {
      case "throttle":
        return reply(400, { __type: "ThrottlingException", message: "Rate exceeded" });
      case "deny":
        return reply(400, {
          __type: "AccessDeniedException",
          message: `User: arn:aws:sts::123456789012:assumed-role/webhook/x is not authorized to perform: ${service}:GetAuthorizationToken on resource: * because no identity-based policy allows the ${service}:GetAuthorizationToken action`,
        });
      case "server-error":
        return reply(500, { __type: "ServerException", message: "internal error" });
      case "ok": {
        const password = `stand-in-${ecrPublic ? "public" : region}-${randomId()}`;
        state.lastPassword.set(ecrPublic ? "public" : region, password);
        const authorizationToken = Buffer.from(`AWS:${password}`).toString("base64");
        const sessionEnd = state.sessionExpiresAtMs?.(call);
        const expiresAt = Math.min(
          Math.floor(state.now() / 1000) + state.expiresInSeconds,
          sessionEnd === undefined ? Number.POSITIVE_INFINITY : Math.floor(sessionEnd / 1000),
        );
        call.password = password;
        call.expiresAtMs = expiresAt * 1000;
        // ECR Public answers with one object; ECR with a list carrying the proxy endpoint.
        return reply(
          200,
          ecrPublic
            ? { authorizationData: { authorizationToken, expiresAt } }
            : {
                authorizationData: [
                  {
                    authorizationToken,
                    expiresAt,
                    proxyEndpoint: `https://123456789012.dkr.ecr.${region}.amazonaws.com`,
                  },
                ],
              },
        );
      }
    }
  };
  const server: Server = options.tls ? createHttpsServer(options.tls, serve) : createServer(serve);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(state, {
    url: `${options.tls ? "https" : "http"}://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}

function randomId(): string {
  return randomBytes(12).toString("hex");
}

async function readAll(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
