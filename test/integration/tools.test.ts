/**
 * The test bed's own set-up of Go (testbed/tools.ts): the toolchain module as a module proxy serves
 * it, over real HTTP, unpacked into a runnable distribution only when its digest is the pinned one.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { zipSync } from "fflate";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  compareGoVersions,
  fetchGoToolchain,
  findOnPath,
  GO_TOOLCHAIN,
  goPlatform,
  neededGoVersion,
  toolCache,
  toolchainZipUrl,
} from "../../testbed/tools.ts";

const made: string[] = [];
const temporary = (name: string) => {
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  made.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

describe("the Go the test bed fetches", () => {
  it("is new enough for every control-plane module without a toolchain line of its own", () => {
    expect(neededGoVersion()).toBe("go1.26.0");
    expect(compareGoVersions(GO_TOOLCHAIN.version, neededGoVersion())).toBeGreaterThanOrEqual(0);
    for (const digest of Object.values(GO_TOOLCHAIN.sha256))
      expect(digest).toMatch(/^[0-9a-f]{64}$/);
    expect(GO_TOOLCHAIN.sha256["linux-amd64"]).toBeDefined();
  });

  it("orders Go versions by number, a missing patch counting as 0", () => {
    const sorted = ["go1.26.10", "go1.24", "go1.26.8", "go1.26.0", "go1.9.2"].sort(
      compareGoVersions,
    );
    expect(sorted).toEqual(["go1.9.2", "go1.24", "go1.26.0", "go1.26.8", "go1.26.10"]);
    expect(compareGoVersions("go1.26", "go1.26.0")).toBe(0);
  });

  it("comes from GOPROXY's first entry, at the module path cmd/go downloads toolchains from", () => {
    const zip = "golang.org/toolchain/@v/v0.0.1-go1.26.8.linux-amd64.zip";
    expect(toolchainZipUrl("go1.26.8", "linux-amd64")).toBe(`https://proxy.golang.org/${zip}`);
    expect(
      toolchainZipUrl("go1.26.8", "linux-amd64", "https://goproxy.example/mirror/,direct"),
    ).toBe(`https://goproxy.example/mirror/${zip}`);
    expect(
      toolchainZipUrl("go1.26.8", "linux-amd64", "http://10.0.0.1:3000|https://proxy.golang.org"),
    ).toBe(`http://10.0.0.1:3000/${zip}`);
    for (const goproxy of ["direct", "off", "direct,https://proxy.golang.org"])
      expect(() => toolchainZipUrl("go1.26.8", "linux-amd64", goproxy)).toThrow(/first entry/);
  });
});

describe("where tools are cached and found", () => {
  it("caches beside the control plane: ECR_ANYWHERE_CACHE, else XDG_CACHE_HOME, else ~/.cache", () => {
    expect(toolCache({ ECR_ANYWHERE_CACHE: "/c", XDG_CACHE_HOME: "/x" })).toBe("/c");
    expect(toolCache({ XDG_CACHE_HOME: "/x" })).toBe("/x/ecr-anywhere");
    expect(toolCache({ ECR_ANYWHERE_CACHE: "", XDG_CACHE_HOME: "" })).toMatch(
      /\/\.cache\/ecr-anywhere$/,
    );
  });

  it("finds only executable files on PATH, first folder first", () => {
    const [first, second] = [
      mkdtempSync(join(tmpdir(), "path-")),
      mkdtempSync(join(tmpdir(), "path-")),
    ];
    writeFileSync(join(first, "moto_server"), "not executable");
    mkdirSync(join(first, "go"));
    writeFileSync(join(second, "moto_server"), "#!/bin/sh\n", { mode: 0o755 });
    expect(findOnPath("moto_server", `${first}:${second}`)).toBe(join(second, "moto_server"));
    expect(findOnPath("go", `${first}:${second}`)).toBeUndefined();
  });
});

describe("fetching a toolchain from a module proxy", () => {
  const version = "go1.99.0";
  const prefix = `golang.org/toolchain@v0.0.1-${version}.${goPlatform()}/`;
  const encoder = new TextEncoder();
  // A distribution in miniature: a `go` that answers `go env GOVERSION`, a tool, a nested go.mod.
  const zip = zipSync({
    [`${prefix}bin/go`]: encoder.encode(`#!/bin/sh\necho ${version}\n`),
    [`${prefix}pkg/tool/${goPlatform().replace("-", "_")}/compile`]: encoder.encode("#!/bin/sh\n"),
    [`${prefix}src/_go.mod`]: encoder.encode("module std\n"),
    [`${prefix}VERSION`]: encoder.encode(version),
  });
  const toolchain = {
    version,
    sha256: { [goPlatform()]: createHash("sha256").update(zip).digest("hex") },
  };
  let proxy: Server;
  let goproxy = "";
  const requests: string[] = [];

  beforeAll(async () => {
    proxy = createServer((request, response) => {
      requests.push(request.url ?? "");
      const served =
        request.url === `/golang.org/toolchain/@v/v0.0.1-${version}.${goPlatform()}.zip`;
      response.writeHead(served ? 200 : 404).end(served ? Buffer.from(zip) : "not found");
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    goproxy = `http://127.0.0.1:${(proxy.address() as AddressInfo).port},direct`;
  });
  afterAll(() => new Promise((resolve) => proxy.close(resolve)));

  it("unpacks the pinned zip into a runnable Go, as cmd/go does, and reuses it after", async () => {
    const cache = temporary("tools-cache");
    const go = await fetchGoToolchain(toolchain, cache, goproxy);
    expect(go).toBe(join(cache, `${version}.${goPlatform()}`, "bin", "go"));
    expect(execFileSync(go, ["env", "GOVERSION"]).toString().trim()).toBe(version);
    const root = join(cache, `${version}.${goPlatform()}`);
    expect(readFileSync(join(root, "src/go.mod"), "utf8")).toBe("module std\n");
    expect(() =>
      execFileSync(join(root, `pkg/tool/${goPlatform().replace("-", "_")}/compile`)),
    ).not.toThrow();
    const fetched = requests.length;
    expect(await fetchGoToolchain(toolchain, cache, goproxy)).toBe(go);
    expect(requests.length).toBe(fetched);
  });

  it("refuses a zip whose SHA-256 is not the pinned one, leaving nothing behind", async () => {
    const cache = temporary("tools-cache");
    const tampered = { version, sha256: { [goPlatform()]: "0".repeat(64) } };
    await expect(fetchGoToolchain(tampered, cache, goproxy)).rejects.toThrow(
      /not the pinned 0{64}: refusing to run it/,
    );
    expect(existsSync(join(cache, `${version}.${goPlatform()}`))).toBe(false);
  });

  it("says which platform has no pin", async () => {
    const cache = temporary("tools-cache");
    await expect(fetchGoToolchain({ version, sha256: {} }, cache, goproxy)).rejects.toThrow(
      `no pinned Go toolchain for ${goPlatform()}`,
    );
  });
});
