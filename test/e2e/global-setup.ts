/**
 * One real control plane and one moto_server for the whole end-to-end run, and the CLI as it
 * ships: bundled from the current sources into a temporary folder (about a second), so a suite
 * never runs a stale dist/ nor races a concurrent `npm run build` rewriting it.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { buildCli } from "../../scripts/build.ts";
import { startControlPlane } from "../../testbed/control-plane.ts";
import { startMoto } from "../../testbed/moto.ts";

declare module "vitest" {
  export interface ProvidedContext {
    motoUrl: string;
    kubeServer: string;
    kubeCaPem: string;
    adminKubeconfig: string;
    /** The shared API server's Kubernetes minor (ECR_ANYWHERE_KUBE_VERSION chooses it), e.g. 32. */
    kubeMinor: number;
    /** The built CLI (`dist/cli/ecr-anywhere.mjs` as the package ships it), to run with node. */
    cliPath: string;
  }
}

export default async function setup(project: TestProject) {
  const cliDir = await mkdtemp(join(tmpdir(), "ecr-anywhere-e2e-cli-"));
  const [moto, controlPlane, cliPath] = await Promise.all([
    startMoto(),
    startControlPlane(),
    buildCli(cliDir),
  ]);
  project.provide("cliPath", cliPath);
  project.provide("motoUrl", moto.url);
  project.provide("kubeServer", controlPlane.server);
  project.provide("kubeCaPem", controlPlane.ca.cert);
  project.provide("adminKubeconfig", controlPlane.adminKubeconfig);
  project.provide("kubeMinor", controlPlane.version.minor);
  console.log(`end-to-end tests against kube-apiserver ${controlPlane.version.gitVersion}`);
  return async () => {
    await Promise.all([moto.stop(), controlPlane.stop()]);
    await rm(cliDir, { recursive: true, force: true });
  };
}
