/**
 * Stands in for `@aws-sdk/credential-provider-node` inside Lambda bundles (see infra/bundling.ts).
 * Lambda hands every function its execution role's credentials in the environment, so the full
 * provider chain (SSO, INI files, IMDS, process, login) is dead weight in bundle size and cold start.
 */
import { fromEnv } from "@aws-sdk/credential-provider-env";

export const defaultProvider = (init?: Parameters<typeof fromEnv>[0]) => fromEnv(init);
