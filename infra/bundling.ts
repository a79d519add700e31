/**
 * How every Lambda is bundled, shared by `npm run build` (scripts/build.ts) and the CDK
 * NodejsFunctions, so the artifact the tests run is the one that deploys.
 */
export const BUNDLE_TARGET = "node24";

/** ESM builds of the AWS SDK tree-shake far better than its CommonJS ones (609 KB → 400 KB). */
export const BUNDLE_MAIN_FIELDS = ["module", "main"];

// Some bundled CommonJS code calls require() for Node built-ins; ESM output needs one to exist.
export const BUNDLE_REQUIRE_SHIM =
  "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);";

/**
 * Lambda always hands a function its credentials in the environment, so the SDK's full provider
 * chain (SSO, INI files, IMDS, process, login) is replaced by the environment provider
 * (400 KB → 289 KB).
 */
export const BUNDLE_ALIASES = {
  "@aws-sdk/credential-provider-node": "./functions/lib/lambda-credentials.ts",
};

/**
 * Each Lambda's entry, by the name of its bundle (`dist/<name>/index.mjs`): what `npm run build`
 * prebuilds into the package, and what the constructs bundle from sources in this repository.
 */
export const LAMBDA_ENTRY_POINTS = {
  webhook: "functions/webhook/handler.ts",
  refresher: "functions/refresher/handler.ts",
  "refresher-worker": "functions/refresher/worker-handler.ts",
  "broker-rotation": "functions/broker-rotation/handler.ts",
} as const;

export type LambdaBundleName = keyof typeof LAMBDA_ENTRY_POINTS;
