/** One real control plane and one moto_server for the whole end-to-end run. */
import type { TestProject } from "vitest/node";
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
  }
}

export default async function setup(project: TestProject) {
  const [moto, controlPlane] = await Promise.all([startMoto(), startControlPlane()]);
  project.provide("motoUrl", moto.url);
  project.provide("kubeServer", controlPlane.server);
  project.provide("kubeCaPem", controlPlane.ca.cert);
  project.provide("adminKubeconfig", controlPlane.adminKubeconfig);
  project.provide("kubeMinor", controlPlane.version.minor);
  console.log(`end-to-end tests against kube-apiserver ${controlPlane.version.gitVersion}`);
  return async () => {
    await Promise.all([moto.stop(), controlPlane.stop()]);
  };
}
