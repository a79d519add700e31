/** One moto_server for the whole test run; files share it with distinct resource names. */
import type { TestProject } from "vitest/node";
import { startMoto } from "../../testbed/moto.ts";

declare module "vitest" {
  export interface ProvidedContext {
    motoUrl: string;
  }
}

export default async function setup(project: TestProject) {
  const moto = await startMoto();
  project.provide("motoUrl", moto.url);
  return () => moto.stop();
}
