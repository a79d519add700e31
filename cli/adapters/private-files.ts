/**
 * Files that hold a token (the dry run's manifests and record, a new credentials kubeconfig):
 * written so nobody else can read them, and so a planted symlink or a shared folder cannot
 * redirect or swap them.
 */
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { lstat, mkdir, open, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { InputError } from "../core/inputs.ts";

/**
 * `--out`: made 0700 when new. Whatever it was before, it must end up a real directory of the
 * caller's that nobody else can write to: another user able to swap a manifest between this write
 * and `kubectl apply` would own the cluster.
 */
export async function privateDirectory(out: string): Promise<void> {
  await mkdir(out, { recursive: true, mode: 0o700 }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== "EEXIST") throw error;
  });
  // Checked after mkdir: a symlink planted before it is refused here, not followed later.
  const found = await lstat(out);
  if (!found.isDirectory())
    throw new InputError(`--out ${out}: not a directory (a symlink or a file is refused)`);
  if (process.getuid && found.uid !== process.getuid())
    throw new InputError(`--out ${out}: owned by another user; use a directory of your own`);
  if ((found.mode & 0o022) !== 0)
    throw new InputError(
      `--out ${out}: writable by group or others (mode ${(found.mode & 0o777).toString(8)}); chmod go-w it or use another directory`,
    );
}

/**
 * Files that may hold the webhook token: written 0600 to a new temporary file (O_EXCL, never
 * following a symlink), then renamed over the name, so an existing world-readable file or a symlink
 * planted there is replaced, never written through; a failed write leaves no temporary behind.
 */
export async function writePrivateFile(
  directory: string,
  name: string,
  content: string,
): Promise<void> {
  const target = join(directory, name);
  const temporary = join(directory, `.${name}.${randomBytes(6).toString("hex")}.tmp`);
  const handle = await open(
    temporary,
    constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW,
    0o600,
  );
  try {
    try {
      await handle.writeFile(content);
    } finally {
      await handle.close();
    }
    await rename(temporary, target);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
}

/**
 * `--token-file`: a secret kept between runs (the webhook token, so a second render is
 * byte-identical). An existing file is read only if it is a regular file of the caller's that
 * nobody else can read or write (never through a symlink); a missing one is created 0600 with
 * `create()` (O_EXCL: a file appearing meanwhile is never overwritten).
 */
export async function reusedSecretFile(
  path: string,
  create: () => string,
): Promise<{ readonly content: string; readonly created: boolean }> {
  const existing = await readOwnPrivateFile(path);
  if (existing !== undefined) return { content: existing, created: false };
  const content = create();
  const handle = await open(
    path,
    constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW,
    0o600,
  );
  try {
    await handle.writeFile(content);
  } catch (error) {
    await handle.close();
    await unlink(path).catch(() => undefined);
    throw error;
  }
  await handle.close();
  return { content, created: true };
}

async function readOwnPrivateFile(path: string): Promise<string | undefined> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return undefined;
    if (code === "ELOOP") throw new InputError(`${path}: a symlink is refused`);
    throw error;
  }
  try {
    const found = await handle.stat();
    if (!found.isFile()) throw new InputError(`${path}: not a regular file`);
    if (process.getuid && found.uid !== process.getuid())
      throw new InputError(`${path}: owned by another user`);
    if ((found.mode & 0o077) !== 0)
      throw new InputError(
        `${path}: open to group or others (mode ${(found.mode & 0o777).toString(8)}); chmod 600 it`,
      );
    return await handle.readFile("utf8");
  } finally {
    await handle.close();
  }
}
