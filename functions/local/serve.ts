/**
 * Runs the webhook on this machine behind an HTTPS function-URL server, for a demo with a local
 * cluster (kind, k3s, minikube) or for trying a cluster record before deploying.
 *
 *   npm start                       # https://127.0.0.1:8443, a fresh CA each run
 *
 * AWS access comes from the usual SDK environment (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL_*),
 * and the webhook's own settings from ECR_ANYWHERE_* exactly as in Lambda.
 * ECR_ANYWHERE_LOCAL_HOST and ECR_ANYWHERE_LOCAL_PORT choose where it listens;
 * ECR_ANYWHERE_LOCAL_BUNDLE=dist/webhook/index.mjs serves the built artifact instead of the source;
 * ECR_ANYWHERE_LOCAL_CONCURRENCY (default 50) is the concurrency the function may reach: a
 * reservation, or the share of the account's unreserved concurrency it gets (the stack reserves none
 * by default).
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type FunctionUrlHandler, startFunctionUrlServer } from "./function-url-server.ts";
import { LambdaPool } from "./lambda-pool.ts";
import { createCertificateAuthority, issueCertificate } from "./tls.ts";

const host = process.env.ECR_ANYWHERE_LOCAL_HOST ?? "127.0.0.1";
const port = Number(process.env.ECR_ANYWHERE_LOCAL_PORT ?? 8443);
const ca = await createCertificateAuthority("ecr-anywhere local webhook CA");
const tls = await issueCertificate(ca, {
  name: "webhook",
  commonName: host,
  subjectAltNames: [`IP:${host}`, "DNS:localhost", "IP:127.0.0.1"],
  usage: "server",
});
const bundle = process.env.ECR_ANYWHERE_LOCAL_BUNDLE;
const reservedConcurrency = Number(process.env.ECR_ANYWHERE_LOCAL_CONCURRENCY ?? 50);
// As Lambda runs it: isolated environments, one request each, Lambda's 429 past the limit.
const pool = new LambdaPool({
  module: bundle ?? join(import.meta.dirname, "../webhook/handler.ts"),
  reservedConcurrency,
  idleMs: 10 * 60_000,
});
const webhook: FunctionUrlHandler = pool.handler;
const server = await startFunctionUrlServer({ handler: webhook, tls, host, port });
const caBundleFile = join(ca.dir, "ca-bundle.b64");
await writeFile(caBundleFile, Buffer.from(ca.cert).toString("base64"));

process.stderr.write(
  [
    `ecr-anywhere webhook (${bundle ? `bundle ${bundle}` : "source"}) listening on ${server.url}`,
    `  as Lambda runs it: up to ${reservedConcurrency} isolated environments, one request each`,
    `  webhook URL for a cluster:  ${server.url}/v1/clusters/<cluster-id>/<token>`,
    `  health:                     ${server.url}/v1/health`,
    `  caBundle (base64):          ${caBundleFile}`,
    "  cluster records are read from DynamoDB (the webhook record table) with your AWS credentials; Ctrl-C stops.",
    "",
  ].join("\n"),
);
const stop = async () => {
  await server.close();
  await pool.close();
  const { environmentsStarted, invocations, throttles, peakConcurrency } = pool.stats;
  process.stderr.write(
    `environments started ${environmentsStarted}, invocations ${invocations}, throttled ${throttles}, peak concurrency ${peakConcurrency}\n`,
  );
  process.exit(0);
};
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
