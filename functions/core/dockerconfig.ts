/** The `.dockerconfigjson` document kubelet reads pull credentials from. Pure. */

export interface RegistryCredential {
  /** Registry host without scheme. */
  readonly host: string;
  readonly username: string;
  readonly password: string;
}

interface DockerAuth {
  username: string;
  password: string;
  auth: string;
}

type DockerConfig = Record<string, unknown> & { auths: Record<string, unknown> };

/**
 * Writes fresh entries for the managed hosts into an existing dockerconfigjson (base64, as stored
 * in `data`) and returns the new base64 value. Entries for other hosts and any other top-level
 * keys are kept. Content that is not a JSON object (junk a user put there) is replaced.
 */
export function mergeDockerConfig(
  existingBase64: string | undefined,
  credentials: readonly RegistryCredential[],
): string {
  const config = decodeDockerConfig(existingBase64);
  const managedHosts = new Set(credentials.map((credential) => credential.host));
  // An entry spelled with a scheme or path ("https://host/") names a managed host too; leaving it
  // would hand kubelet a stale duplicate.
  for (const key of Object.keys(config.auths)) {
    if (!managedHosts.has(key) && managedHosts.has(hostOf(key))) delete config.auths[key];
  }
  for (const { host, username, password } of credentials) {
    const entry: DockerAuth = {
      username,
      password,
      auth: Buffer.from(`${username}:${password}`).toString("base64"),
    };
    config.auths[host] = entry;
  }
  return Buffer.from(JSON.stringify(config)).toString("base64");
}

function decodeDockerConfig(existingBase64: string | undefined): DockerConfig {
  if (existingBase64 === undefined) return { auths: {} };
  try {
    const parsed: unknown = JSON.parse(Buffer.from(existingBase64, "base64").toString("utf8"));
    if (!isPlainObject(parsed)) return { auths: {} };
    const auths = isPlainObject(parsed.auths) ? parsed.auths : {};
    return { ...parsed, auths: { ...auths } };
  } catch {
    return { auths: {} };
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function hostOf(key: string): string {
  return key
    .replace(/^[a-z]+:\/\//i, "")
    .replace(/\/.*$/, "")
    .toLowerCase();
}
